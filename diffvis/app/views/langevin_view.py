"""Annealed Langevin dynamics (Song & Ermon 2019) animated level by level: the particles, the score arrows of the
current noise level behind them, and where the run is: level i of L, σ_i, inner step j of K, step size α_i. The
view draws a ``LangevinModel`` and writes every setting back through it; K and ε are edited as the registry
describes them."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QSpinBox

from diffvis.app.models.langevin import Annealed, LangevinModel
from diffvis.app.state import LabState
from diffvis.app.views.sampling_widgets import model_choice, offer_density
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import DATA_COLOUR, SAMPLE_COLOUR, faint_brush
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.quiver import QuiverItem
from diffvis.app.widgets.sampler_controls import editor_changed, editor_value, param_editor, set_editor_value

BACKDROP_POINTS = 3000


class LangevinView(SceneView):
    compute_text = "Sample"

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "Annealed Langevin dynamics (data coordinates)", parent)
        model = LangevinModel()
        info = model.request.info
        self.model_choice = model_choice(density=True)
        self.model_choice.setItemText(1, "exact score")
        offer_density(self.model_choice, state.data)
        state.data_changed.connect(lambda data: offer_density(self.model_choice, data))
        self.editors = {name: param_editor(info.param(name)) for name in ("steps_per_level", "step_size")}
        self.points = QSpinBox(minimum=10, maximum=20_000, singleStep=500)
        self.resolution = QSpinBox(minimum=6, maximum=64)
        steps, step_size = (info.param(name) for name in self.editors)
        settings = [("Model", self.model_choice), (f"Steps {steps.symbol}", self.editors["steps_per_level"]),
                    (step_size.symbol, self.editors["step_size"]), ("Points", self.points),
                    ("Grid", self.resolution), ("", self.compute_button)]  # fmt: skip
        for label, widget in settings:
            self.add_setting(label, widget, columns_per_row=3)
        self.backdrop = pg.ScatterPlotItem(size=3, pen=None, brush=faint_brush(DATA_COLOUR, 35))
        self.quiver = QuiverItem(width=1.2, alpha=150)
        self.scatter = MovingScatter(size=3, pen=None, brush=pg.mkBrush(SAMPLE_COLOUR))
        for item in (self.backdrop, self.quiver, self.scatter):
            self.plot.addItem(item)

        self.bind(model)
        self.formula_panel = self.add_formula_panel(self.plot)
        self.write_request_widgets(self.model_choice, self.points)
        for editor in self.editors.values():
            self.write(editor_changed(editor), lambda: self.write_request(params=self._params()))
        self.write(self.resolution.valueChanged, lambda: setattr(model, "resolution", self.resolution.value()))
        self._offered_trained = True
        self._offer_models()

    def _params(self) -> dict:
        return {**self.model.request.params, **{name: editor_value(e) for name, e in self.editors.items()}}

    def on_setting(self, name: str, value) -> None:
        if name == "resolution":
            self.resolution.setValue(value)
            return
        for param, editor in self.editors.items():
            set_editor_value(editor, value.params[param])
        with QSignalBlocker(self.model_choice):
            self.model_choice.setCurrentIndex(self.model_choice.findData(value.exact))
        self.points.setValue(value.n)

    def _on_model_change(self) -> None:
        self._offer_models()  # first: a recomputation must use the model the picker now offers
        super()._on_model_change()

    def _offer_models(self) -> None:
        """Offer 'trained' only for a run of the objective the sampler drives (a score network), named for what
        the run is; otherwise the exact score is chosen, and the item says why."""
        run, objective = self.state.model_run, self.model.request.bound(None).objective
        trained = run is not None and run.objective == objective
        item = self.model_choice.model().item(0)
        item.setEnabled(trained)
        if trained:
            item.setText(f"trained {objective.upper()}")
        else:
            item.setText("trained: none yet" if run is None else f"trained: none (the run is {run.objective.upper()})")
        if trained != self._offered_trained:  # newly offered, or no longer: choose it, or the exact score
            self.write_request(exact=not trained)
        self._offered_trained = trained

    # --- drawing and exporting ------------------------------------------------------------------------------
    def take(self, result: Annealed | None) -> None:
        if result is None:
            return
        xs, ys = result.series.xs, result.series.ys
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]))
        self.backdrop.setData(pos=self.state.data.points[:BACKDROP_POINTS])

    def show_frame(self, frame: int) -> None:
        result = self.model.result
        if result is None:
            return
        traj, s, ladder = result.trajectory, result.series, result.model.ladder
        frame = min(frame, traj.steps)
        where = self.model.where(frame)
        self.quiver.set_field(s.points, s.shown[where.level].reshape(-1, 2), 0.9 * float(s.xs[1] - s.xs[0]))
        self.scatter.move_to(traj.frames[frame])
        if traj.times[frame] == 0:
            text = "denoised: x + σ_L² s(x, σ_L) (Tweedie)"
        else:
            K = traj.params["steps_per_level"]
            text = (f"level {where.level + 1}/{ladder.L} · σ = {where.sigma:.3g} · "
                    f"step {where.inner}/{K} · α = {where.step_size:.2e}")  # fmt: skip
        self.describe(f"{result.source} · frame {frame}/{traj.steps} · {text}")

    def frame_points(self, frame: int) -> np.ndarray:
        return self.model.result.trajectory.frames[frame]

    def all_points(self) -> np.ndarray:
        return self.model.result.trajectory.frames
