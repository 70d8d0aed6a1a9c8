"""The reverse process: a sampler's whole trajectory, computed once in a worker and scrubbed frame by frame,
with the model's x̂₀ of the current frame as an overlay and the data as a faint backdrop."""

from __future__ import annotations

import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffvis.app.controller import FunctionWorker
from diffvis.app.state import LabState
from diffvis.app.views.style import DATA_COLOUR, SAMPLE_COLOUR
from diffvis.app.widgets.timeline import Timeline
from diffvis.core.pipeline import reverse_trajectory
from diffvis.core.trajectory import Trajectory


class ReverseView(QWidget):
    computed = Signal()

    def __init__(self, state: LabState, parent=None):
        super().__init__(parent)
        self.state = state
        self.trajectory: Trajectory | None = None
        self.worker: FunctionWorker | None = None
        self.cancel = threading.Event()
        self.sampler = QComboBox()
        self.sampler.addItems(["ddim", "ddpm", "langevin"])
        self.steps = QSpinBox(minimum=1, maximum=1000, value=50)
        self.eta = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, decimals=2)
        self.model = QComboBox()
        self.model.addItem("trained", False)
        self.model.addItem("exact", True)
        self.model.setToolTip("exact: the exact denoiser of the data, a perfect model that memorises it")
        self.points = QSpinBox(minimum=10, maximum=20_000, value=2000, singleStep=500)
        self.compute_button = QPushButton("Sample")
        self.show_x0 = QCheckBox("show x̂₀")
        controls = QGridLayout()
        for i, (label, widget) in enumerate([("Sampler", self.sampler), ("Steps", self.steps), ("η", self.eta),
                                             ("Model", self.model), ("Points", self.points)]):  # fmt: skip
            controls.addWidget(QLabel(label), i // 3, 2 * (i % 3))
            controls.addWidget(widget, i // 3, 2 * (i % 3) + 1)
        controls.addWidget(self.show_x0, 1, 4)
        controls.addWidget(self.compute_button, 1, 5)
        controls.setColumnStretch(6, 1)
        self.plot = pg.PlotWidget(title="Reverse process (data coordinates)")
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        faint = pg.mkColor(DATA_COLOUR)
        faint.setAlpha(40)
        self.backdrop = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(faint))
        self.x0_scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(0, 158, 115, 140))
        self.scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(SAMPLE_COLOUR))
        for item in (self.backdrop, self.x0_scatter, self.scatter):
            self.plot.addItem(item)
        self.timeline = Timeline(fps=30)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.timeline)

        self.compute_button.clicked.connect(self.compute)
        self.show_x0.toggled.connect(lambda _: self.show_frame(self.timeline.frame))
        self.timeline.frame_changed.connect(self.show_frame)
        state.data_changed.connect(self._on_data_change)
        state.run_changed.connect(lambda _: self._mark_stale())
        self._on_data_change(state.data)

    def _on_data_change(self, data) -> None:
        self.backdrop.setData(pos=data.points[:3000])
        if len(data) >= 2:  # frame the data (a few far-flung samples of a weak model must not shrink it)
            self.plot.disableAutoRange()
            lo, hi = data.points.min(0), data.points.max(0)
            pad = 0.6 * (hi - lo).max()
            self.plot.setRange(xRange=(lo[0] - pad, hi[0] + pad), yRange=(lo[1] - pad, hi[1] + pad))
        self._mark_stale()

    def _mark_stale(self) -> None:
        """A new model or new data: the cached trajectory no longer shows them."""
        if self.trajectory is not None:
            self.timeline.set_label("stale: press Sample to recompute")

    def compute(self) -> bool:
        """Sample the whole trajectory in a worker; the view stays responsive and scrubs it when done."""
        if self.worker is not None or len(self.state.data) < 2:
            return False
        run = self.state.run
        exact = bool(self.model.currentData()) or run is None
        sampler, steps = self.sampler.currentText(), self.steps.value()
        params = {"ddim": {"steps": steps, "eta": self.eta.value()}, "ddpm": {},
                  "langevin": {"steps_per_level": steps}}[sampler]  # fmt: skip
        points, n = self.state.data.points, self.points.value()
        cancel = self.cancel = threading.Event()
        self.worker = FunctionWorker(
            lambda: reverse_trajectory(
                run, points, sampler, n=n, exact=exact, callback=lambda _: cancel.is_set(), **params
            )  # fmt: skip
        )
        self.worker.done.connect(self._on_computed)
        self.worker.failed.connect(self._on_failed)
        self.compute_button.setEnabled(False)
        self.timeline.set_label("sampling…")
        self.worker.start()
        return True

    def _on_computed(self, trajectory: Trajectory) -> None:
        self._finish_worker()
        self.trajectory = trajectory
        self.timeline.set_count(len(trajectory.frames))
        self.timeline.slider.setValue(0)
        self.show_frame(0)
        self.computed.emit()

    def _on_failed(self, message: str) -> None:
        self._finish_worker()
        self.state.say(message)
        self.timeline.set_label(message)

    def _finish_worker(self) -> None:
        self.worker.wait()
        self.worker.deleteLater()
        self.worker = None
        self.compute_button.setEnabled(True)

    def shutdown(self) -> None:
        """Cancel a sampling in flight (the sampler checks after every step) and wait for its thread."""
        if self.worker is not None:
            self.cancel.set()
            self.worker.blockSignals(True)
            self.worker.wait()
            self.worker = None

    def show_frame(self, frame: int) -> None:
        traj = self.trajectory
        if traj is None:
            return
        frame = min(frame, len(traj.frames) - 1)
        self.scatter.setData(pos=traj.frames[frame])
        self.x0_scatter.setData(pos=traj.x0_hat[frame] if self.show_x0.isChecked() else np.zeros((0, 2)))
        t = traj.times[frame]
        when = ("clean" if t < 0 else f"t = {int(t)}") if traj.name != "langevin" else f"σ = {t:.3g}"
        self.timeline.set_label(f"{traj.name} · frame {frame}/{len(traj.frames) - 1} · {when} · {traj.nfe} NFE")
