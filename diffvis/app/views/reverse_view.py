"""The reverse process: a sampler's whole trajectory, computed once in a worker and scrubbed frame by frame, with
trails for a subset of points, the model's x̂₀ of the current frame, a density heatmap of the current frame, the
data as a faint backdrop, and probe particles placed by clicking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QCheckBox, QComboBox, QPushButton, QSpinBox

from diffvis.app.state import LabState
from diffvis.app.views.class_controls import ClassPicker, GuidanceSlider, classes_in_use
from diffvis.app.views.class_table import ClassTable
from diffvis.app.views.probes import Probe, ProbeLayer
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import SAMPLE_COLOUR, class_brushes, sample_brushes
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.sampler_controls import SamplerControls
from diffvis.core.classes import UNCONDITIONAL
from diffvis.core.compare import METRIC_POINTS
from diffvis.core.fields import density_grid, padded_extent, trajectory_scores
from diffvis.core.metrics import memorised_fraction
from diffvis.core.pipeline import ClassScore, probe_trajectory, request_model, sample_request, score_classes
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule
from diffvis.core.sources import fresh_sets
from diffvis.core.trajectory import Trajectory

DENSITY_BINS = 80
MEMORISED_TOL = 1e-3  # a sample this close to a training point (× the data's extent) sits on it
BACKDROP_POINTS = 3000


@dataclass(frozen=True)
class Sampled:
    """What the reverse view computes: the model and the request (probes reuse them), the trajectory, and the
    fraction of its final samples that sit on a training point, and per class how its samples fare (empty for
    unconditional sampling)."""

    model: SamplingModel
    request: SampleRequest
    trajectory: Trajectory
    landed: float
    class_scores: list[ClassScore]


def model_choice() -> QComboBox:
    """Trained network or exact denoiser: the choice every sampling view offers."""
    box = QComboBox()
    box.addItem("trained", False)
    box.addItem("exact", True)
    box.setToolTip("exact: the exact denoiser of the data, a perfect model that memorises it\n"
                   "(used while no model has been trained)")  # fmt: skip
    return box


def frame_time(traj: Trajectory, k: int) -> str:
    """Where frame k of a trajectory is: 't = …' (DDPM, DDIM, ODE solvers), 'σ = …' (Langevin) or 'clean'."""
    t = traj.times[k]
    if traj.name == "langevin":
        return f"σ = {t:.3g}"
    return "clean" if t < 0 else f"t = {int(t)}"


def trail_paths(frames: np.ndarray, upto: int, count: int) -> np.ndarray:
    """(…, 2) the paths of ``count`` evenly chosen points over frames 0 … upto, separated by NaN rows."""
    n = frames.shape[1]
    index = np.unique(np.linspace(0, n - 1, min(count, n)).astype(int))
    paths = frames[: upto + 1, index].transpose(1, 0, 2)  # (count, upto + 1, 2)
    gap = np.full((len(index), 1, 2), np.nan, dtype=frames.dtype)
    return np.concatenate([paths, gap], axis=1).reshape(-1, 2)


class ReverseView(SceneView):
    compute_text = "Sample"

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "Reverse process (data coordinates)", parent)
        self.plot.setToolTip("Click to add a probe particle at this frame")
        self.trajectory: Trajectory | None = None
        self.controls = SamplerControls()
        self.seed = 0
        self.model = model_choice()
        self.points = QSpinBox(minimum=10, maximum=20_000, value=2000, singleStep=500)
        self.trails = QSpinBox(minimum=0, maximum=1000, value=30, singleStep=10)
        self.trails.setToolTip("how many points draw their path so far (0: none)")
        self.show_x0 = QCheckBox("x̂₀")
        self.show_x0.setToolTip("the model's prediction of the clean points at this frame")
        self.show_density = QCheckBox("density")
        self.clear_probes = QPushButton("Clear probes")
        self.class_picker = ClassPicker()
        self.guidance = GuidanceSlider()
        self.add_setting("Sampler", self.controls.combo, columns_per_row=3)
        self.add_setting("", self.controls.pages, columns_per_row=3)
        for label, widget in [("Model", self.model), ("Points", self.points), ("Trails", self.trails),
                              ("Class", self.class_picker), ("Guidance", self.guidance), ("", self.compute_button),
                              ("", self.show_x0), ("", self.show_density), ("", self.clear_probes)]:  # fmt: skip
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
        self.probes = ProbeLayer(self.plot)

        for box in (self.show_x0, self.show_density):
            box.toggled.connect(lambda _: self.show_frame(self.timeline.frame))
        self.trails.valueChanged.connect(lambda _: self.show_frame(self.timeline.frame))
        self.clear_probes.clicked.connect(lambda: self.probes.clear())
        self.class_picker.currentIndexChanged.connect(self._on_class_change)
        self.guidance.settled.connect(lambda _: self.recompute())
        self.model.currentIndexChanged.connect(lambda _: self._refresh_classes())
        state.model_changed.connect(self._refresh_classes)
        state.data_changed.connect(self._on_data_change)
        self._on_data_change(state.data)
        self._on_class_change()

    def _refresh_classes(self) -> None:
        exact = bool(self.model.currentData()) or self.state.model_run is None
        self.class_picker.set_classes(classes_in_use(self.state, exact))

    def _on_class_change(self) -> None:
        self.guidance.setEnabled(self.class_picker.label is not None)
        self.recompute()

    def recompute(self) -> None:
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
            self.probes.arrow_length = 0.08 * (x_max - x_min)

    # --- computing ------------------------------------------------------------------------------------------
    def request(self) -> SampleRequest:
        """What the settings ask for: the sampler and its settings, the model, the class and guidance, the points."""
        label = self.class_picker.request_label
        guided = label is not None and label != UNCONDITIONAL
        return SampleRequest(self.controls.sampler, self.controls.params(), exact=bool(self.model.currentData()),
                             label=label, guidance=self.guidance.w if guided else 1.0, n=self.points.value(),
                             seed=self.seed)  # fmt: skip

    def set_request(self, request: SampleRequest) -> None:
        """Show ``request``'s settings (the class picker keeps its choice: the classes depend on the model)."""
        self.controls.set_sampler(request.sampler, request.params)
        self.model.setCurrentIndex(self.model.findData(request.exact))
        self.points.setValue(request.n)
        self.guidance.set_w(request.guidance)
        self.seed = request.seed

    def work(self):
        run, request = self.state.model_run, self.request()
        cfg = self.state.train_config
        schedule = Schedule.make(cfg.schedule, cfg.timesteps)
        data = self.state.data
        fresh = fresh_sets(self.state.data_info, data, min(request.n, METRIC_POINTS))

        def compute(progress):
            model, _ = request_model(request, run, data, schedule)
            traj = sample_request(model, request, callback=lambda s: progress(s.i, s.total))
            points = data.points
            landed = memorised_fraction(traj.samples, points, MEMORISED_TOL * float(np.ptp(points, axis=0).max()))
            scores = []
            if traj.labels is not None:
                m = METRIC_POINTS
                scores = score_classes(traj.samples[:m].astype(np.float64), traj.labels[:m], model.classes, fresh)
            return Sampled(model, request, traj, landed, scores)

        return compute

    def accept(self, result) -> int:
        self.trajectory = traj = result.trajectory
        self.probes.clear()
        self.scatter.setData(pos=traj.frames[0], brush=sample_brushes(traj, result.model.classes, SAMPLE_COLOUR))
        self.class_table.show_scores(result.class_scores)
        return len(self.trajectory.frames)

    # --- probes ---------------------------------------------------------------------------------------------
    def probe(self, position: np.ndarray) -> bool:
        """A particle at ``position`` in the current frame, sampled on from there with the same sampler."""
        if self.result is None or self.job.busy:
            return False
        frame = self.timeline.frame
        if frame >= self.trajectory.steps:
            self.state.say("a probe starts before the last frame: scrub back, then click")
            return False
        model, request = self.result.model, self.result.request
        seed = 1 + len(self.probes.probes)

        def compute(progress):
            traj = probe_trajectory(model, request, position[None], start=frame, seed=seed)
            return Probe(traj, trajectory_scores(traj, model))

        self.probe_job.start(compute)
        return True

    # --- drawing and exporting ------------------------------------------------------------------------------
    def show_frame(self, frame: int) -> None:
        traj = self.trajectory
        if traj is None:
            return
        frame = min(frame, traj.steps)
        points = traj.frames[frame]
        self.scatter.move_to(points)
        self.x0_scatter.move_to(traj.x0_hat[frame] if self.show_x0.isChecked() else np.zeros((0, 2)))
        trails = trail_paths(traj.frames, frame, self.trails.value()) if self.trails.value() else np.zeros((0, 2))
        self.trail_curve.setData(trails[:, 0], trails[:, 1])
        self._show_density(points)
        self.probes.show(frame)
        text = f"{traj.name} · frame {frame}/{traj.steps} · {frame_time(traj, frame)} · {traj.nfe} NFE"
        if frame == traj.steps:
            text += f" · {100 * self.result.landed:.0f} % of samples are copies of training points (memorised)"
        self.describe(text)

    def _show_density(self, points: np.ndarray) -> None:
        if not self.show_density.isChecked():
            self.density.clear()
            return
        grid = density_grid(points, self.extent, DENSITY_BINS)
        occupied = grid[grid > 0]
        self.density.setImage(grid, levels=(0.0, float(np.percentile(occupied, 99)) if occupied.size else 1.0))
        x_min, x_max, y_min, y_max = self.extent
        self.density.setRect(QRectF(x_min, y_min, x_max - x_min, y_max - y_min))

    def frame_points(self, frame: int) -> np.ndarray:
        return self.trajectory.frames[frame]

    def all_points(self) -> np.ndarray:
        return self.trajectory.frames
