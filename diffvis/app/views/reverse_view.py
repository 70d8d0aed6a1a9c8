"""The reverse process: a sampler's whole trajectory, computed once in a worker and scrubbed frame by frame, with
trails for a subset of points, the model's x̂₀ of the current frame, a density heatmap of the current frame, the
data as a faint backdrop, and probe particles placed by clicking. The view draws a ``ReverseModel`` and writes
every setting back through it; a new class or guidance scale samples again."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker
from PySide6.QtWidgets import QCheckBox, QPushButton, QSpinBox

from diffvis.app.models.reverse import ReverseModel, Sampled
from diffvis.app.models.scene import frame_time
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import ClassPicker, GuidanceSlider, GuideChoice, classes_in_use
from diffvis.app.views.class_table import ClassTable
from diffvis.app.views.probes import ProbeLayer
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import SAMPLE_COLOUR, class_brushes, sample_brushes
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.sampler_controls import SamplerControls
from diffvis.core.fields import density_grid, padded_extent

DENSITY_BINS = 80
BACKDROP_POINTS = 3000
NONE = np.zeros((0, 2))


class ReverseView(SceneView):
    compute_text = "Sample"
    OVERLAYS = ("trails", "show_x0", "show_density")

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "Reverse process (data coordinates)", parent)
        self.plot.setToolTip("Click to add a probe particle at this frame")
        self.add_sampling_settings(SamplerControls())
        self.trails = QSpinBox(minimum=0, maximum=1000, singleStep=10)
        self.trails.setToolTip("how many points draw their path so far (0: none)")
        self.show_x0 = QCheckBox("x̂₀")
        self.show_x0.setToolTip("the model's prediction of the clean points at this frame")
        self.show_density = QCheckBox("density")
        self.clear_probes = QPushButton("Clear probes")
        self.class_picker = ClassPicker()
        self.guidance = GuidanceSlider()
        self.guide = GuideChoice()
        for label, widget in [("Trails", self.trails), ("Class", self.class_picker), ("Guidance", self.guidance),
                              ("Guide", self.guide), ("", self.compute_button), ("", self.show_x0),
                              ("", self.show_density), ("", self.clear_probes)]:  # fmt: skip
            self.add_setting(label, widget, columns_per_row=3)
        self.class_table = ClassTable()
        self.layout().insertWidget(2, self.class_table)

        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255, 0), (86, 30, 140, 210)]))
        self.backdrop = pg.ScatterPlotItem(size=3, pen=None)
        self.trail_curve = pg.PlotCurveItem(pen=pg.mkPen(120, 120, 120, 110, width=1), connect="finite")
        self.x0_scatter = MovingScatter(size=3, pen=None, brush=pg.mkBrush(0, 158, 115, 140))
        self.scatter = MovingScatter(size=3, pen=None, brush=pg.mkBrush(SAMPLE_COLOUR))
        for item in (self.density, self.backdrop, self.trail_curve, self.x0_scatter, self.scatter):
            self.plot.addItem(item)
        self.extent = (-1.0, 1.0, -1.0, 1.0)
        self.probe_layer = ProbeLayer(self.plot)

        self.bind(ReverseModel())
        self.formula_panel = self.add_formula_panel(self.plot)
        model = self.model
        self.write_request_widgets(self.model_choice, self.points, self.controls)
        self.write(self.trails.valueChanged, lambda: setattr(model, "trails", self.trails.value()))
        self.write(self.show_x0.toggled, lambda: setattr(model, "show_x0", self.show_x0.isChecked()))
        self.write(self.show_density.toggled, lambda: setattr(model, "show_density", self.show_density.isChecked()))
        self.write(
            self.class_picker.currentIndexChanged, lambda: setattr(model, "label", self.class_picker.request_label)
        )
        self.write(self.guidance.settled, lambda: setattr(model, "guidance", self.guidance.w))
        self.write(self.guide.chosen, lambda: setattr(model, "guide", self.guide.guide))
        self.clear_probes.clicked.connect(model.clear_probes)
        state.model_changed.connect(self._refresh_classes)
        state.data_changed.connect(self._on_data_change)
        self._on_data_change(state.data)

    def on_setting(self, name: str, value) -> None:
        if name == "request":
            self.controls.set_sampler(value.sampler, value.params)
            with QSignalBlocker(self.model_choice), QSignalBlocker(self.points):
                self.model_choice.setCurrentIndex(self.model_choice.findData(value.exact))
                self.points.setValue(value.n)
            self._refresh_classes()
        elif name == "label":
            with QSignalBlocker(self.class_picker):
                self.class_picker.choose(value)
            if self.class_picker.request_label != value:  # not offered: the picker's choice instead
                self.model.label = self.class_picker.request_label
            self.guidance.setEnabled(self.model.guides)
            self._recompute()
        elif name == "guide":
            self.guide.show_guide(value)
            self.guidance.setEnabled(self.model.guides)
            self._recompute()
        elif name == "guidance":
            if self.guidance.w != value:
                self.guidance.set_w(value)
            self._recompute()
        elif name == "trails":
            self.trails.setValue(value)
        else:
            {"show_x0": self.show_x0, "show_density": self.show_density}[name].setChecked(value)

    def _on_model_change(self) -> None:
        """A new run (or none): first its kind's sampler when the request's cannot drive it, then recompute."""
        run = self.state.model_run
        self.model.follow(None if run is None else run.objective)
        super()._on_model_change()

    def _refresh_classes(self) -> None:
        """Offer the classes of the model the request samples (the picker then says which one is chosen)."""
        exact = self.model.request.exact or self.state.model_run is None
        self.class_picker.set_classes(classes_in_use(self.state, exact))

    def _recompute(self) -> None:
        """A new class or guidance scale: sample again, if something is shown (or being computed)."""
        if self.result is None and not self.job.busy:
            return
        if self.isVisible():
            self.compute()
        else:
            self.stale = True

    def _on_data_change(self, data) -> None:
        labels = None if data.labels is None else data.labels[:BACKDROP_POINTS]
        self.backdrop.setData(pos=data.points[:BACKDROP_POINTS], brush=class_brushes(labels, alpha=45))
        self._refresh_classes()
        if len(data) >= 2:  # frame the data (a few far-flung samples of a weak model must not shrink it)
            self.extent = padded_extent(data.points)
            x_min, x_max, y_min, y_max = self.extent
            self.plot.disableAutoRange()
            self.plot.setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)
            self.probe_layer.arrow_length = 0.08 * (x_max - x_min)

    # --- drawing and exporting ------------------------------------------------------------------------------
    def take(self, result: Sampled | None) -> None:
        if result is not None:
            traj = result.trajectory
            self.scatter.setData(pos=traj.frames[0], brush=sample_brushes(traj, result.model.classes, SAMPLE_COLOUR))
        self.class_table.show_scores([] if result is None else result.class_scores)

    def show_frame(self, frame: int) -> None:
        model, traj = self.model, self.model.trajectory
        if traj is None:
            return
        frame = min(frame, traj.steps)
        points = traj.frames[frame]
        self.scatter.move_to(points)
        self.x0_scatter.move_to(traj.x0_hat[frame] if model.show_x0 else NONE)
        trails = model.trails_at(frame)
        self.trail_curve.setData(trails[:, 0], trails[:, 1])
        self._show_density(points)
        self.probe_layer.show(model.probes, frame)
        which = model.result.request.exact_text or (" · exact" if model.result.model.exact else "")
        text = f"{traj.name}{which} · frame {frame}/{traj.steps} · {frame_time(traj, frame)} · {traj.nfe} NFE"
        if frame == traj.steps:
            result = model.result
            text += f" · {100 * result.landed:.0f} % of samples sit on a training point"
            chance = result.landed_by_chance
            text += " (memorised)" if chance is None else f" (fresh data: {100 * chance:.0f} %)"
        self.describe(text)

    def _show_density(self, points: np.ndarray) -> None:
        if not self.model.show_density:
            self.density.clear()
            return
        grid = density_grid(points, self.extent, DENSITY_BINS)
        occupied = grid[grid > 0]
        self.density.setImage(grid, levels=(0.0, float(np.percentile(occupied, 99)) if occupied.size else 1.0))
        x_min, x_max, y_min, y_max = self.extent
        self.density.setRect(QRectF(x_min, y_min, x_max - x_min, y_max - y_min))

    def frame_points(self, frame: int) -> np.ndarray:
        return self.model.trajectory.frames[frame]

    def all_points(self) -> np.ndarray:
        return self.model.trajectory.frames
