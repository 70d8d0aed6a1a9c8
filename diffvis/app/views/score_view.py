"""The score field: arrows of the learned score ∇ log p_t on a grid at the current t (or σ for NCSN), over the
data noised to that level; the exact score of the noised data as an overlay, and a heatmap of how far the
learned score is from it. A click adds a probe that follows the field down to t = 0.

For a class, the unconditional, conditional and guided fields (∇ log p_t(x), ∇ log p_t(x | c) and
u + w (c − u)) are switchable at once: both are computed, and guiding only combines them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox

from diffvis.app.state import LabState
from diffvis.app.views.class_controls import ClassPicker, GuidanceSlider, classes_in_use, compact_combo
from diffvis.app.views.probes import Probe, ProbeLayer
from diffvis.app.views.reverse_view import model_choice
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import class_brushes
from diffvis.app.views.titles import fit_title
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.quiver import QuiverItem
from diffvis.core.classes import UNCONDITIONAL, dense_labels
from diffvis.core.fields import FieldSeries, field_series, guided_series, padded_extent, trajectory_scores
from diffvis.core.pipeline import probe_trajectory, sampling_model
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule

PROBE_STEPS_PER_LEVEL = 20
FIELDS = {"unconditional": "∇ log p_t(x)", "conditional": "∇ log p_t(x | c)", "guided": "guided, w"}


def level_label(model: SamplingModel, level: float) -> str:
    if model.objective == "ncsn":
        return f"σ = {level:.3g}"
    return f"t = {int(level)} · ᾱ = {model.schedule.alphas_cumprod[int(level)]:.4f}"


@dataclass(frozen=True)
class ScoreFields:
    """What the score view computes: the model, the unconditional fields, and those of class ``label`` (None when
    no class is chosen)."""

    model: SamplingModel
    unconditional: FieldSeries
    conditional: FieldSeries | None
    label: int | None


class ScoreView(SceneView):
    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "", parent)
        fit_title(self.plot.getPlotItem(), "Score field ∇ log p_t (data coordinates)")
        self.plot.setToolTip("Click to add a probe particle that follows the model from this level")
        self.series: FieldSeries | None = None
        self.model = model_choice()
        compact_combo(self.model)
        self.resolution = QSpinBox(minimum=6, maximum=64, value=24)
        self.resolution.setToolTip("arrows per side of the grid")
        self.levels = QSpinBox(minimum=2, maximum=1000, value=50)
        self.levels.setToolTip("DDPM: how many timesteps from T − 1 to 0 the slider visits (NCSN: its σ ladder)")
        self.show_exact = QCheckBox("exact score")
        self.show_exact.setToolTip("the exact score of the noised data set, in red")
        self.show_error = QCheckBox("error heatmap")
        self.show_error.setToolTip("‖learned − exact‖ / ‖exact‖ per grid cell, from 0 (white) to 1 or more (dark)")
        self.show_samples = QCheckBox("noised data")
        self.show_samples.setChecked(True)
        self.class_picker = ClassPicker(offer_all=False)
        self.field = QComboBox()
        compact_combo(self.field)
        for key, title in FIELDS.items():
            self.field.addItem(title, key)
        self.field.setToolTip("for the chosen class: the unconditional field, the conditional one, or the guided "
                              "u + w (c − u)")  # fmt: skip
        self.guidance = GuidanceSlider()
        for label, widget in [("Model", self.model), ("Grid", self.resolution), ("Levels", self.levels),
                              ("Class", self.class_picker), ("Field", self.field), ("Guidance", self.guidance),
                              ("", self.show_exact), ("", self.show_error), ("", self.show_samples),
                              ("", self.compute_button)]:  # fmt: skip
            self.add_setting(label, widget, columns_per_row=3)

        self.error_image = pg.ImageItem(axisOrder="row-major")
        self.error_image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255, 0), (120, 20, 60, 200)]))
        self.samples = MovingScatter(size=3, pen=None)
        self.quiver = QuiverItem()
        self.exact_quiver = QuiverItem(width=1.2, colour="#d0453a", alpha=200)
        for item in (self.error_image, self.samples, self.quiver, self.exact_quiver):
            self.plot.addItem(item)
        self.probes = ProbeLayer(self.plot)
        for box in (self.show_exact, self.show_error, self.show_samples):
            box.toggled.connect(lambda _: self.show_frame(self.timeline.frame))
        self.field.currentIndexChanged.connect(lambda _: self._choose_field())
        self.guidance.changed.connect(lambda _: self._choose_field())
        self.class_picker.currentIndexChanged.connect(self._on_class_change)
        self.model.currentIndexChanged.connect(lambda _: self._refresh_classes())
        state.model_changed.connect(self._refresh_classes)
        state.data_changed.connect(lambda _: self._refresh_classes())
        self._refresh_classes()
        self._on_class_change()

    def _refresh_classes(self) -> None:
        exact = bool(self.model.currentData()) or self.state.model_run is None
        self.class_picker.set_classes(classes_in_use(self.state, exact))

    def _on_class_change(self) -> None:
        chosen = self.class_picker.label is not None
        self.field.setEnabled(chosen)
        self.guidance.setEnabled(chosen)
        if self.job.busy or (self.result is not None and self.result.label != self.class_picker.label):
            self.compute()

    # --- computing ------------------------------------------------------------------------------------------
    def work(self):
        run = self.state.model_run
        exact = bool(self.model.currentData()) or run is None
        objective = run.objective if run is not None else self.state.model_config.objective
        cfg = self.state.train_config
        schedule = Schedule.make(cfg.schedule, cfg.timesteps)
        data, label = self.state.data, self.class_picker.label
        points, extent = data.points, padded_extent(data.points)
        resolution, frames = self.resolution.value(), self.levels.value()

        def compute(progress):
            model = sampling_model(run, data, objective, exact=exact, schedule=schedule)
            labels = dense_labels(model.classes, data)
            common = {"resolution": resolution, "frames": frames, "labels": labels}
            unconditional = field_series(model, points, extent, cancelled=progress, **common)
            conditional = None if label is None else field_series(model, points, extent, label=label, **common)
            return ScoreFields(model, unconditional, conditional, label)

        return compute

    def _choose_field(self) -> None:
        """Show the unconditional, conditional or guided fields of the computed class."""
        if self.result is None:
            return
        fields, kind = self.result, self.field.currentData()
        if fields.conditional is None or kind == "unconditional":
            self.series = fields.unconditional
        elif kind == "conditional":
            self.series = fields.conditional
        else:
            self.series = guided_series(fields.unconditional, fields.conditional, self.guidance.w)
        self.show_frame(self.timeline.frame)

    @property
    def guidance_params(self) -> dict:
        """The class and guidance scale of the field shown, for probes (none for the unconditional field)."""
        fields, kind = self.result, self.field.currentData()
        if fields.conditional is None:
            return {}
        if kind == "unconditional":
            return {"label": UNCONDITIONAL}
        return {"label": fields.label, "guidance": self.guidance.w if kind == "guided" else 1.0}

    def accept(self, result) -> int:
        self.series = result.unconditional
        labels = self.state.data.labels
        noised = len(self.series.noised[0])
        self.samples.setData(
            pos=self.series.noised[0], brush=class_brushes(None if labels is None else labels[:noised], alpha=90)
        )
        self._choose_field()
        xs, ys = self.series.xs, self.series.ys
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]))
        self.probes.arrow_length = 1.5 * self.spacing
        self.probes.clear()
        return len(self.series.times)

    @property
    def spacing(self) -> float:
        """The grid's spacing: the longest arrow."""
        return float(self.series.xs[1] - self.series.xs[0])

    # --- probes ---------------------------------------------------------------------------------------------
    def probe(self, position: np.ndarray) -> bool:
        """A particle placed at this level that follows the model down: DDIM with η = 0 over the slider's
        timesteps (the probability-flow path), or annealed Langevin from this σ for NCSN."""
        if self.result is None or self.job.busy:
            return False
        model, series, guidance = self.result.model, self.series, self.guidance_params
        frame = self.timeline.frame
        seed = 1 + len(self.probes.probes)

        def compute(progress):
            if model.objective == "ddpm":
                params = {"steps": len(series.times), "eta": 0.0, "spacing": "linspace"}
                request = SampleRequest("ddim", params, **guidance)
                traj = probe_trajectory(model, request, position[None], start=frame, seed=seed)
                return Probe(traj, trajectory_scores(traj, model))
            K = PROBE_STEPS_PER_LEVEL
            request = SampleRequest("langevin", {"steps_per_level": K}, **guidance)
            traj = probe_trajectory(model, request, position[None], start=frame * K, seed=seed)
            at_levels = np.append(np.arange(len(series.times)) * K, traj.steps)  # the frame entering each level
            return Probe(traj.take(at_levels), trajectory_scores(traj, model)[at_levels])

        self.probe_job.start(compute)
        return True

    # --- drawing and exporting ------------------------------------------------------------------------------
    def show_frame(self, frame: int) -> None:
        if self.series is None:
            return
        model, series = self.result.model, self.series
        frame = min(frame, len(series.times) - 1)
        grid = series.points
        self.quiver.set_field(grid, series.shown[frame].reshape(-1, 2), 0.9 * self.spacing)
        if self.show_exact.isChecked():
            self.exact_quiver.set_field(grid, series.exact[frame].reshape(-1, 2), 0.9 * self.spacing)
        else:
            self.exact_quiver.clear_field()
        self._show_error(frame)
        self.samples.move_to(series.noised[frame] if self.show_samples.isChecked() else np.zeros((0, 2)))
        self.probes.show(frame)
        lo, hi = self.quiver.magnitude_range
        error = np.median(series.relative_error(frame))
        text = f"{level_label(model, series.times[frame])} · |score| {lo:.2g} … {hi:.2g}"
        if series.learned is not None:
            text += f" · median error vs exact {error:.2f}"
        params = self.guidance_params
        if params:
            text += f" · {model.classes.names[params['label']]}, w = {params['guidance']:g}"
        self.describe(text)

    def _show_error(self, frame: int) -> None:
        if not self.show_error.isChecked() or self.series.learned is None:
            self.error_image.clear()
            return
        s = self.series
        self.error_image.setImage(np.clip(s.relative_error(frame), 0.0, 1.0), levels=(0.0, 1.0))
        half = self.spacing / 2
        self.error_image.setRect(QRectF(s.xs[0] - half, s.ys[0] - half, s.xs[-1] - s.xs[0] + 2 * half,
                                        s.ys[-1] - s.ys[0] + 2 * half))  # fmt: skip

    def frame_points(self, frame: int) -> np.ndarray:
        return self.series.noised[frame]

    def all_points(self) -> np.ndarray:
        return self.series.noised
