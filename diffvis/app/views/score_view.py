"""The score field: arrows of the learned score ∇ log p_t on a grid at the current t (or σ on a σ ladder), over the
data noised to that level; the exact score of the noised data as an overlay, and a heatmap of how far the
learned score is from it. A click adds a probe that follows the field down to t = 0.

For a class, the unconditional, conditional and guided fields (∇ log p_t(x), ∇ log p_t(x | c) and
u + w (c − u)) are switchable at once: both are computed, and guiding only combines them. The view draws a
``ScoreModel`` and writes every setting back through it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox

from diffvis.app.models.scene import levels_of
from diffvis.app.models.score import ScoreFields, ScoreModel
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import ClassPicker, GuidanceSlider, classes_in_use, compact_combo
from diffvis.app.views.probes import ProbeLayer
from diffvis.app.views.sampling_widgets import model_choice, offer_density
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import class_brushes
from diffvis.app.views.titles import fit_title
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.quiver import QuiverItem
from diffvis.core.flow import exact_mismatch
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import SamplingModel

FIELD_TITLES = {"unconditional": "∇ log p_t(x)", "conditional": "∇ log p_t(x | c)", "guided": "guided, w"}
NONE = np.zeros((0, 2))


def level_label(model: SamplingModel, level: float) -> str:
    if levels_of(model.objective) == "sigma":
        return f"σ = {level:.3g}"
    if levels_of(model.objective) == "time":
        return f"t = {level:.3g}"
    return f"t = {int(level)} · ᾱ = {model.schedule.alphas_cumprod[int(level)]:.4f}"


def field_name(model: SamplingModel) -> tuple[str, str]:
    """What the view's arrows are, and their short name: a flow model's velocity, else the score."""
    if levels_of(model.objective) == "time":
        return "Velocity field v(x, t)", "|v|"
    return "Score field ∇ log p_t", "|score|"


class ScoreView(SceneView):
    OVERLAYS = ("field", "guidance", "show_exact", "show_error", "show_samples")

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "", parent)
        fit_title(self.plot.getPlotItem(), "Score field ∇ log p_t (data coordinates)")
        self.plot.setToolTip("Click to add a probe particle that follows the model from this level")
        self.model_choice = model_choice(density=True)
        compact_combo(self.model_choice)
        offer_density(self.model_choice, state.data)
        state.data_changed.connect(lambda data: offer_density(self.model_choice, data))
        self.resolution = QSpinBox(minimum=6, maximum=64)
        self.resolution.setToolTip("arrows per side of the grid")
        self.levels = QSpinBox(minimum=2, maximum=1000)
        self.levels.setToolTip("DDPM: how many timesteps from T − 1 to 0 the slider visits (NCSN: its σ ladder)")
        self.show_exact = QCheckBox("exact score")
        self.show_exact.setToolTip("the exact score of the noised data set, in red")
        self.show_error = QCheckBox("error heatmap")
        self.show_error.setToolTip("‖learned − exact‖ / ‖exact‖ per grid cell, from 0 (white) to 1 or more (dark)")
        self.show_samples = QCheckBox("noised data")
        self.class_picker = ClassPicker(offer_all=False)
        self.field = QComboBox()
        compact_combo(self.field)
        for key, title in FIELD_TITLES.items():
            self.field.addItem(title, key)
        self.field.setToolTip("for the chosen class: the unconditional field, the conditional one, or the guided "
                              "u + w (c − u)")  # fmt: skip
        self.guidance = GuidanceSlider()
        for label, widget in [("Model", self.model_choice), ("Grid", self.resolution), ("Levels", self.levels),
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
        self.probe_layer = ProbeLayer(self.plot)

        self.bind(ScoreModel())
        self.formula_panel = self.add_formula_panel(self.plot)
        model = self.model
        self.write(
            self.model_choice.currentIndexChanged,
            lambda: setattr(model, "exact", self.model_choice.currentData()),
        )
        for name in ("resolution", "levels"):
            self.write(
                getattr(self, name).valueChanged, lambda name=name: setattr(model, name, getattr(self, name).value())
            )
        for name in ("show_exact", "show_error", "show_samples"):
            self.write(
                getattr(self, name).toggled, lambda name=name: setattr(model, name, getattr(self, name).isChecked())
            )
        self.write(self.field.currentIndexChanged, lambda: setattr(model, "field", self.field.currentData()))
        self.write(self.guidance.changed, lambda: setattr(model, "guidance", self.guidance.w))
        self.write(self.class_picker.currentIndexChanged, lambda: setattr(model, "label", self.class_picker.label))
        state.model_changed.connect(self._refresh_classes)
        state.data_changed.connect(lambda _: self._refresh_classes())
        self._refresh_classes()

    def on_setting(self, name: str, value) -> None:
        if name == "exact":
            with QSignalBlocker(self.model_choice):
                self.model_choice.setCurrentIndex(self.model_choice.findData(value))
            self._refresh_classes()
        elif name in ("resolution", "levels"):
            getattr(self, name).setValue(value)
        elif name in ("show_exact", "show_error", "show_samples"):
            getattr(self, name).setChecked(value)
        elif name == "field":
            self.field.setCurrentIndex(self.field.findData(value))
        elif name == "guidance":
            if self.guidance.w != value:
                self.guidance.set_w(value)
        elif name == "label":
            self._on_class_change(value)

    def _refresh_classes(self) -> None:
        exact = self.model.exact or self.state.model_run is None
        self.class_picker.set_classes(classes_in_use(self.state, exact))

    def _on_class_change(self, label) -> None:
        """Show the class chosen; fields of another class are computed again (at once, even hidden)."""
        with QSignalBlocker(self.class_picker):
            self.class_picker.choose(label)
        if self.class_picker.label != label:  # not offered: the picker's choice instead
            self.model.label = self.class_picker.label
            return
        chosen = label is not None
        self.field.setEnabled(chosen)
        self.guidance.setEnabled(chosen)
        if self.job.busy or (self.result is not None and self.result.label != label):
            self.compute()

    # --- drawing and exporting ------------------------------------------------------------------------------
    def take(self, result: ScoreFields | None) -> None:
        if result is None:
            return
        series = result.unconditional
        labels = self.state.data.labels
        noised = len(series.noised[0])
        self.samples.setData(pos=series.noised[0], brush=class_brushes(None if labels is None else labels[:noised],
                                                                       alpha=90))  # fmt: skip
        xs, ys = series.xs, series.ys
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]))
        self.probe_layer.arrow_length = 1.5 * self.model.spacing
        fit_title(self.plot.getPlotItem(), f"{field_name(result.model)[0]} (data coordinates)")

    def show_frame(self, frame: int) -> None:
        model, series = self.model, self.model.series
        if series is None:
            return
        frame = min(frame, len(series.times) - 1)
        grid, longest = series.points, 0.9 * model.spacing
        self.quiver.set_field(grid, series.shown[frame].reshape(-1, 2), longest)
        if model.show_exact:
            self.exact_quiver.set_field(grid, series.exact[frame].reshape(-1, 2), longest)
        else:
            self.exact_quiver.clear_field()
        self._show_error(frame)
        self.samples.move_to(series.noised[frame] if model.show_samples else NONE)
        self.probe_layer.show(model.probes, frame)
        lo, hi = self.quiver.magnitude_range
        sampling = model.result.model
        text = f"{level_label(sampling, series.times[frame])} · {field_name(sampling)[1]} {lo:.2g} … {hi:.2g}"
        if series.learned is not None:
            text += f" · median error vs exact {np.median(series.relative_error(frame)):.2f}"
            run = self.state.model_run
            if run is not None and OBJECTIVES[run.objective].transports:
                why = exact_mismatch(run.train_config.source, run.train_config.coupling)
                text += f" ({why})" if why else ""
        params = model.guidance_params
        if "guidance" in params:  # a class's field (the unconditional one names none)
            text += f" · {sampling.classes.names[params['label']]}, w = {params['guidance']:g}"
        self.describe(text)

    def _show_error(self, frame: int) -> None:
        s = self.model.series
        if not self.model.show_error or s.learned is None:
            self.error_image.clear()
            return
        self.error_image.setImage(np.clip(s.relative_error(frame), 0.0, 1.0), levels=(0.0, 1.0))
        half = self.model.spacing / 2
        self.error_image.setRect(QRectF(s.xs[0] - half, s.ys[0] - half, s.xs[-1] - s.xs[0] + 2 * half,
                                        s.ys[-1] - s.ys[0] + 2 * half))  # fmt: skip

    def frame_points(self, frame: int) -> np.ndarray:
        return self.model.series.noised[frame]

    def formula_points(self, frame: int) -> np.ndarray:
        """The arrows' grid points: hovering explains the arrow under the pointer."""
        return self.model.series.points

    def all_points(self) -> np.ndarray:
        return self.model.series.noised
