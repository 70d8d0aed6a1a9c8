"""Quality against model evaluations: one of each sampler family of the comparison's panels (their settings but
the step count) run at each of the model's step counts, DDPM once at T, in a background job; one line per family
of a metric's ratio to its floor against NFE, both axes logarithmic."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget

from diffvis.app.jobs import BackgroundJob
from diffvis.app.models.compare import CompareModel
from diffvis.app.state import LabState
from diffvis.app.views.axes import LogAxis
from diffvis.app.views.style import PALETTE
from diffvis.core.compare import SweepPoint, parse_step_counts
from diffvis.errors import ConfigError

METRIC_TITLES = {"energy": "energy", "sliced_w1": "sliced W1", "nn_precision": "NN precision",
                 "nn_recall": "NN recall", "frechet": "Fréchet", "w2": "W2"}  # fmt: skip


class SweepTab(QWidget):
    """The metric to plot, the step counts (the model's ``step_counts``, edited as text), the Sweep button and its
    progress bar above the plot; ``swept`` fires when new points are drawn."""

    swept = Signal()

    def __init__(self, state: LabState, model: CompareModel, parent=None):
        super().__init__(parent)
        self.state, self.model = state, model
        self.points: list[SweepPoint] = []
        axes = {side: LogAxis(side) for side in ("left", "bottom")}  # labels that never run together
        self.plot = pg.PlotWidget(title="Quality against model evaluations", axisItems=axes)
        self.plot.setLogMode(x=True, y=True)
        self.plot.setLabel("bottom", "NFE")
        self.plot.setLabel("left", "× floor")
        self.plot.addLegend(offset=(-10, 10))
        self.metric = QComboBox()
        for key, title in METRIC_TITLES.items():
            self.metric.addItem(title, key)
        self.steps = QLineEdit()
        self.steps.setToolTip("the step counts to try, separated by commas")
        self.button = QPushButton("Sweep")
        self.bar = QProgressBar()
        controls = QHBoxLayout()
        for widget in (self.metric, self.steps, self.button, self.bar):
            controls.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)
        self.job = BackgroundJob(self)
        self.job.done.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.progressed.connect(lambda i, n: (self.bar.setMaximum(n), self.bar.setValue(i)))
        self.button.clicked.connect(self.start)
        self.steps.editingFinished.connect(self._write_steps)
        self.metric.currentIndexChanged.connect(lambda _: self.draw())
        model.events.connect(self._on_model)
        self._show_steps()

    def _on_model(self, name: str, _value) -> None:
        if name == "step_counts":
            self._show_steps()

    def _show_steps(self) -> None:
        """The model's step counts in the field, unless the field already says them."""
        try:
            if tuple(parse_step_counts(self.steps.text())) == self.model.step_counts:
                return
        except ConfigError:
            pass
        self.steps.setText(", ".join(map(str, self.model.step_counts)))

    def _write_steps(self) -> bool:
        try:
            self.model.set_step_counts(self.steps.text())
        except ConfigError as e:
            self.state.say(f"{e}, e.g. 5, 10, 20")
            return False
        return True

    def start(self) -> bool:
        """Sweep the step counts of the field; False (with a message for bad step counts) when there is nothing to
        sweep."""
        if not self._write_steps() or len(self.state.data) < 2:
            return False
        self.button.setEnabled(False)
        self.job.start(self.model.sweep_work(self.state))
        return True

    def _on_done(self, points: list[SweepPoint]) -> None:
        self.button.setEnabled(True)
        self.points = points
        self.draw()
        self.swept.emit()

    def _on_failed(self, message: str) -> None:
        self.button.setEnabled(True)
        self.state.say(message)

    def draw(self) -> None:
        """One line per sampler family: the chosen metric's ratio to its floor against NFE."""
        self.plot.clear()
        metric = self.metric.currentData()
        families = list(dict.fromkeys(p.label for p in self.points))
        for i, family in enumerate(families):
            rows = sorted((p.nfe, p.metrics[metric].ratio) for p in self.points if p.label == family)
            nfe, ratio = np.array(rows, dtype=float).T
            colour = PALETTE[i % len(PALETTE)]
            self.plot.plot(nfe, ratio, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6, symbolBrush=colour,
                           name=family)  # fmt: skip

    def shutdown(self) -> None:
        self.job.shutdown()
