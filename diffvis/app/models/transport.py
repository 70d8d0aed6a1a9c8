"""The transport view's state without Qt: a grid of lines and n points carried along one ODE (the flow map ψ_t,
or a DDPM or NCSN model's probability flow), each point's bend, the frame shown, the trails and the probes.

    model = TransportModel()
    model.request = replace(model.request, params={"steps": 20}, exact=True, n=500)   # Euler, the default
    model.result = model.work(state)(progress)   # the view runs this in its worker
    model.grid_at(7)        # (L·(P + 1), 2): ψ_{t_7} of the grid, NaN between lines
    model.trails_at(7)      # one NaN-separated polyline per bend bin

The grid and the points follow the same request, so they share frames; a conditional model is followed without a
class (its marginal flow: one map for all the source), and each point is coloured by the class of the training
point nearest to where it lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from diffvis.app.models.scene import SampledScene, lab_schedule, nan_separated
from diffvis.core.classes import UNCONDITIONAL
from diffvis.core.metrics import nearest_labels
from diffvis.core.pipeline import request_model, sample_request
from diffvis.core.progress import ReportProgress
from diffvis.core.registry import ALL_ODES, OBJECTIVES, SAMPLERS
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.trajectory import Trajectory
from diffvis.core.transport import bend, grid_lines, push_grid
from diffvis.errors import ConfigError

ODE_SAMPLERS = tuple(name for name, info in SAMPLERS.items() if info.objectives == ALL_ODES)  # what it offers
_FLOW = next(info for info in OBJECTIVES.values() if info.transports)
# The default solve: a flow's preview sampler (Euler, 25 steps). Cheap, and stable where the exact model's velocity
# (x̂₁ − x)/(1 − t) grows stiff near t = 1: there RK4 and Heun at 20 steps miss the data by far, and dopri5 spends
# hundreds of evaluations on every point.
DEFAULT_REQUEST = SampleRequest(_FLOW.preview_sampler, _FLOW.preview_params, label=UNCONDITIONAL)
POINTS_PER_LINE = 40
BEND_BINS = 6  # trails are drawn in this many colours, from straight to the most bent path shown


@dataclass(frozen=True)
class Transported:
    """What the transport view computes: the model and request (probes reuse them), the grid's polyline at every
    frame (F, L·(P + 1), 2; NaN between lines), the points' trajectory, each point's bend (N,) and the raw class
    label of the training point nearest to where each lands (N,; None for unlabelled data)."""

    model: SamplingModel
    request: SampleRequest
    grid: np.ndarray
    trajectory: Trajectory
    bends: np.ndarray
    landed_labels: np.ndarray | None

    @property
    def mean_bend(self) -> float:
        return float(self.bends.mean())


class TransportModel(SampledScene):
    """``request``: an ODE sampler and its settings, the trained or exact model, the points and the seed (always
    without a class); ``lines``: grid lines per direction; ``trails``: how many points draw their path."""

    FIELDS = {**SampledScene.FIELDS, "request": DEFAULT_REQUEST, "lines": 40, "trails": 60}

    def __setattr__(self, name: str, value) -> None:
        if name == "request":
            if value.sampler not in ODE_SAMPLERS:
                raise ConfigError(f"the transport view follows an ODE: choose {', '.join(ODE_SAMPLERS)}, not "
                                  f"{value.sampler}")  # fmt: skip
            value = replace(value, label=UNCONDITIONAL, guidance=1.0)
        super().__setattr__(name, value)

    def frames_of(self, result: Transported) -> int:
        return len(result.grid)

    @property
    def trajectory(self) -> Trajectory | None:
        return None if self.result is None else self.result.trajectory

    def work(self, state) -> Callable[[ReportProgress], Transported]:
        run, data, lines = state.model_run, state.data, self.lines
        objective = run.objective if run is not None else state.model_config.objective
        request = self.request.bound(objective)
        schedule = lab_schedule(state)

        def compute(progress: ReportProgress) -> Transported:
            model, _ = request_model(request, run, data, schedule)
            grid = grid_lines(model, lines, POINTS_PER_LINE)
            grid = push_grid(model, request, grid, callback=lambda s: progress(s.i, 2 * s.total))
            traj = sample_request(model, request, callback=lambda s: progress(s.total + s.i, 2 * s.total))
            landed = None if data.labels is None else nearest_labels(traj.samples, data.points, data.labels)
            return Transported(model, request, nan_separated(grid.frames), traj, bend(traj.frames), landed)

        return compute

    def grid_at(self, frame: int) -> np.ndarray:
        """(L·(P + 1), 2) ψ_t of the grid at ``frame``, NaN between lines."""
        return self.result.grid[frame]

    def trail_indices(self) -> np.ndarray:
        """The points that draw their path: ``trails`` of them, evenly chosen."""
        n = len(self.result.bends)
        return np.unique(np.linspace(0, n - 1, min(self.trails, n)).astype(int)) if self.trails else np.zeros(0, int)

    def bend_edges(self) -> np.ndarray:
        """(BEND_BINS + 1,) the bends at the edges of the trails' colours: 0 to the most bent trail."""
        bends = self.result.bends[self.trail_indices()]
        return np.linspace(0.0, max(float(bends.max(initial=0.0)), 1e-6), BEND_BINS + 1)

    def trails_at(self, frame: int) -> list[np.ndarray]:
        """Per colour bin (straight first), the NaN-separated paths over frames 0 … ``frame`` of the trailed points
        whose bend lies in it ((0, 2) where none)."""
        index = self.trail_indices()
        bins = np.clip(np.digitize(self.result.bends[index], self.bend_edges()[1:-1]), 0, BEND_BINS - 1)
        frames = self.trajectory.frames[: frame + 1]
        return [nan_separated(frames[:, index[bins == b]].transpose(1, 0, 2)) for b in range(BEND_BINS)]

    def ghosts(self) -> np.ndarray:
        """(3·probes, 2) each probe's straight chord from where it was placed to where it ends, NaN-separated."""
        chords = []
        for probe in self.probes:
            path = probe.trajectory.frames[:, 0]
            placed = path[np.isfinite(path).all(1)]
            chords.append(np.stack([placed[0], placed[-1]]))
        return nan_separated(np.array(chords).reshape(-1, 2, 2)) if chords else np.zeros((0, 2))
