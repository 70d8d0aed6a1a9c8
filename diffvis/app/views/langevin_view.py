"""Annealed Langevin dynamics (Song & Ermon 2019) animated level by level: the particles, the score arrows of the
current noise level behind them, and where the run is: level i of L, σ_i, inner step j of K, step size α_i."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

from diffvis.app.state import LabState
from diffvis.app.views.reverse_view import model_choice
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import DATA_COLOUR, SAMPLE_COLOUR, faint_brush
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.quiver import QuiverItem
from diffvis.core.fields import FieldSeries, field_series, padded_extent
from diffvis.core.pipeline import sample_request, sampling_model
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.samplers import langevin_frame
from diffvis.core.schedules import Schedule
from diffvis.core.trajectory import Trajectory


@dataclass(frozen=True)
class Annealed:
    """What the Langevin view computes: the model, its trajectory, its score field at every level, and which
    score it is, in words."""

    model: SamplingModel
    trajectory: Trajectory
    series: FieldSeries
    source: str


class LangevinView(SceneView):
    compute_text = "Sample"

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "Annealed Langevin dynamics (data coordinates)", parent)
        self.trajectory: Trajectory | None = None
        self.series: FieldSeries | None = None
        self.model = model_choice()
        self.model.setItemText(1, "exact score")
        self.steps = QSpinBox(minimum=1, maximum=1000, value=20)
        self.steps.setToolTip("K: Langevin steps at each noise level")
        self.step_size = QDoubleSpinBox(decimals=7, minimum=1e-7, maximum=1e-2, singleStep=1e-5)
        self.step_size.setValue(5e-5)  # after the decimals: a value set first is rounded to the default two
        self.step_size.setToolTip("ε: the step at the smallest σ; level i steps α_i = ε σ_i² / σ_L²")
        self.points = QSpinBox(minimum=10, maximum=20_000, value=1000, singleStep=500)
        self.resolution = QSpinBox(minimum=6, maximum=64, value=20)
        settings = [("Model", self.model), ("Steps K", self.steps), ("ε", self.step_size), ("Points", self.points),
                    ("Grid", self.resolution), ("", self.compute_button)]  # fmt: skip
        for label, widget in settings:
            self.add_setting(label, widget, columns_per_row=3)
        self.backdrop = pg.ScatterPlotItem(size=3, pen=None, brush=faint_brush(DATA_COLOUR, 35))
        self.quiver = QuiverItem(width=1.2, alpha=150)
        self.scatter = MovingScatter(size=3, pen=None, brush=pg.mkBrush(SAMPLE_COLOUR))
        for item in (self.backdrop, self.quiver, self.scatter):
            self.plot.addItem(item)
        self._trained_offered = True
        self._offer_models()

    def _on_model_change(self) -> None:
        self._offer_models()  # first: a recomputation must use the model the picker now offers
        super()._on_model_change()

    def _offer_models(self) -> None:
        """Offer 'trained' only for an NCSN run (a score network), named for what the run is; else the exact score
        is chosen, and the item says why."""
        run = self.state.model_run
        trained = run is not None and run.objective == "ncsn"
        item = self.model.model().item(0)
        item.setEnabled(trained)
        if trained:
            item.setText("trained NCSN")
        else:
            item.setText("trained: none yet" if run is None else f"trained: none (the run is {run.objective.upper()})")
        if trained != self._trained_offered:
            self.model.setCurrentIndex(0 if trained else 1)
        self._trained_offered = trained

    def work(self):
        """The trained score when it is an NCSN model; otherwise (no run, a DDPM run, or chosen) the exact score."""
        run = self.state.model_run
        exact = bool(self.model.currentData()) or run is None or run.objective != "ncsn"
        source = "exact score" if exact else "trained NCSN"
        cfg = self.state.train_config
        schedule = Schedule.make(cfg.schedule, cfg.timesteps)
        data, n = self.state.data, self.points.value()
        points, extent, resolution = data.points, padded_extent(data.points), self.resolution.value()
        request = SampleRequest("langevin", {"steps_per_level": self.steps.value(),
                                             "step_size": self.step_size.value()}, n=n)  # fmt: skip

        def compute(progress):
            model = sampling_model(run, data, "ncsn", exact=exact, schedule=schedule)
            traj = sample_request(model, request, callback=lambda s: progress(s.i, s.total))
            series = field_series(model, points, extent, resolution=resolution, max_noised=1)
            return Annealed(model, traj, series, source)

        return compute

    def accept(self, result) -> int:
        self.trajectory, self.series = result.trajectory, result.series
        xs, ys = self.series.xs, self.series.ys
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(xs[0], xs[-1]), yRange=(ys[0], ys[-1]))
        self.backdrop.setData(pos=self.state.data.points[:3000])
        return len(self.trajectory.frames)

    def show_frame(self, frame: int) -> None:
        traj = self.trajectory
        if traj is None:
            return
        model = self.result.model
        frame = min(frame, traj.steps)
        K, eps = traj.params["steps_per_level"], traj.params["step_size"]
        where = langevin_frame(model.ladder, K, eps, frame)
        s = self.series
        grid = s.points
        self.quiver.set_field(grid, s.shown[where.level].reshape(-1, 2), 0.9 * float(s.xs[1] - s.xs[0]))
        self.scatter.move_to(traj.frames[frame])
        if traj.times[frame] == 0:
            text = "denoised: x + σ_L² s(x, σ_L) (Tweedie)"
        else:
            text = (f"level {where.level + 1}/{model.ladder.L} · σ = {where.sigma:.3g} · "
                    f"step {where.inner}/{K} · α = {where.step_size:.2e}")  # fmt: skip
        self.describe(f"{self.result.source} · frame {frame}/{traj.steps} · {text}")

    def frame_points(self, frame: int) -> np.ndarray:
        return self.trajectory.frames[frame]

    def all_points(self) -> np.ndarray:
        return self.trajectory.frames
