"""Score fields ∇ log p on a grid, for drawing arrows: learned (a trained network) or exact (a point set);
series of them over the noise levels a view scrubs; and the density of points on a grid. A flow model's field is
its velocity v(x, t) instead.

Score functions here map standardised points (N, 2) to standardised scores. ``score_field`` evaluates one on a
grid given in data coordinates and returns data-coordinate vectors: with x = m + c·x_std,
∇_x log p(x) = ∇_std log p_std(x_std) / c, and a velocity dx/dt = c · v_std.

  learned, DDPM at step t:  −ε_θ(x, t) / √(1 − ᾱ_t)      learned, NCSN at level σ:  s_θ(x, σ)
  exact,   DDPM at step t:  ∇ log mean_i N(x; √ᾱ_t x0_i, (1 − ᾱ_t) I)
  exact,   NCSN at level σ: ∇ log mean_i N(x; x0_i, σ² I)
  learned, flow at time t:  v_θ(x, t)                   exact, flow at time t: E[x₁ − x₀ | x_t = x]

For a class-conditional model the fields are those of a class c at guidance w (see ``guidance.guided``):
w = 0 the unconditional field, w = 1 the conditional one, w > 1 the guided one; learned and exact alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.exact import exact_model
from diffvis.core.forward import q_sample
from diffvis.core.guidance import guided
from diffvis.core.parametrization import score_from_eps
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import SamplingModel
from diffvis.core.samplers import ddim_timesteps
from diffvis.core.schedules import Schedule
from diffvis.core.trajectory import Trajectory
from diffvis.errors import Cancelled

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def ddpm_score(model, schedule: Schedule, t: int) -> ScoreFn:
    abar = float(schedule.alphas_cumprod[t])
    return lambda x: score_from_eps(model(x, t), abar)


def ncsn_score(model, sigma: float) -> ScoreFn:
    return lambda x: model(x, float(sigma))


@dataclass(frozen=True)
class ScoreField:
    """``vectors[j, i]`` is the score at (xs[i], ys[j]), all in data coordinates."""

    xs: np.ndarray
    ys: np.ndarray
    vectors: np.ndarray

    @property
    def points(self) -> np.ndarray:
        return grid_points(self.xs, self.ys)


def grid_points(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(ny·nx, 2) the points of the grid xs × ys, row by row (the layout of a field's ``vectors``)."""
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


@torch.inference_mode()
def score_field(
    score: ScoreFn,
    normaliser: Normaliser,
    extent: tuple[float, float, float, float],
    resolution: int = 32,
    velocity: bool = False,
) -> ScoreField:
    """Evaluate ``score`` (a ``velocity`` field when asked) on a resolution × resolution grid over extent =
    (x_min, x_max, y_min, y_max)."""
    x_min, x_max, y_min, y_max = extent
    xs = np.linspace(x_min, x_max, resolution)
    ys = np.linspace(y_min, y_max, resolution)
    x_std = torch.as_tensor(normaliser.to_std(grid_points(xs, ys)), dtype=torch.float32)
    vectors = score(x_std).cpu().numpy().astype(np.float64)
    vectors = vectors * normaliser.scale if velocity else vectors / normaliser.scale
    return ScoreField(xs, ys, vectors.reshape(resolution, resolution, 2))


Extent = tuple[float, float, float, float]
NOISE_SEED = 1234  # the fixed ε of the noised data in the forward and score views


def padded_extent(points: np.ndarray, pad: float = 0.3) -> Extent:
    """(x_min, x_max, y_min, y_max): the points' bounding box grown by ``pad`` × its longer side on every side."""
    lo, hi = points.min(0), points.max(0)
    margin = pad * float((hi - lo).max())
    return (lo[0] - margin, hi[0] + margin, lo[1] - margin, hi[1] + margin)


@dataclass(frozen=True)
class FieldSeries:
    """Score fields (a flow's velocity fields) at the noise levels a view scrubs, all in data coordinates.

    times:   (F,) timestep t (ddpm, from T − 1 down to 0), σ (ncsn, the ladder from σ_1 down) or a flow's t (from 0
             up) of frame k.
    learned: (F, ny, nx, 2) the network's score, or None for the exact model.
    exact:   (F, ny, nx, 2) the exact score of the noised data set.
    noised:  (F, N, 2) the data noised to each level with one fixed ε per point (the samples the score is of).
    """

    xs: np.ndarray
    ys: np.ndarray
    times: np.ndarray
    learned: np.ndarray | None
    exact: np.ndarray
    noised: np.ndarray

    @property
    def points(self) -> np.ndarray:
        """(ny·nx, 2) the grid points, in the order of ``shown[k].reshape(-1, 2)``."""
        return grid_points(self.xs, self.ys)

    @property
    def shown(self) -> np.ndarray:
        """The field a view draws: the learned one where there is one."""
        return self.exact if self.learned is None else self.learned

    def relative_error(self, k: int) -> np.ndarray:
        """(ny, nx) ‖s_θ − s‖ / ‖s‖ at frame k: how far the learned score is from the exact one (0 for exact)."""
        if self.learned is None:
            return np.zeros(self.exact.shape[1:3])
        diff = np.linalg.norm(self.learned[k] - self.exact[k], axis=-1)
        return diff / np.maximum(np.linalg.norm(self.exact[k], axis=-1), 1e-12)


def guided_series(unconditional: FieldSeries, conditional: FieldSeries, w: float) -> FieldSeries:
    """The guided fields u + w (c − u) of one class from its unconditional (u) and conditional (c) series, learned
    and exact alike: a score is linear in ε, so guiding the fields equals the field of the guided ε."""

    def lerp(u, c):
        return None if u is None else u + w * (c - u)

    return replace(conditional, learned=lerp(unconditional.learned, conditional.learned),
                   exact=lerp(unconditional.exact, conditional.exact))  # fmt: skip


def field_times(model: SamplingModel, frames: int = 50) -> np.ndarray:
    """The levels a score view scrubs: ``frames`` timesteps from T − 1 to 0 (ddpm), the σ ladder (ncsn, edm), or
    ``frames`` times t = k/frames from the source, k = 0 … frames − 1 (flow: the field is singular at t = 1)."""
    if model.objective == "flow":
        return np.arange(frames) / frames
    if OBJECTIVES[model.objective].tables == "ladder":
        return model.ladder.sigmas.copy()
    return ddim_timesteps(model.schedule.T, min(frames, model.schedule.T), "linspace")


def field_series(
    model: SamplingModel,
    points: np.ndarray,
    extent: Extent,
    *,
    resolution: int = 24,
    frames: int = 50,
    max_noised: int = 2000,
    labels: np.ndarray | None = None,
    label: int | None = None,
    guidance: float = 1.0,
    cancelled: Callable[[int, int], bool] | None = None,
) -> FieldSeries:
    """Evaluate the learned and the exact score of ``points`` (data coordinates; an exact ``model`` is its own
    exact score: of those points, or of their known density) at every level of ``field_times``, for class
    ``label`` at ``guidance`` (None: unconditional; ``labels`` are the points' dense class ids, needed then);
    ``cancelled(k, F)`` is asked after each frame and stops the work (``Cancelled``)."""
    times = field_times(model, frames)
    norm = model.normaliser
    std = torch.as_tensor(norm.to_std(points), dtype=torch.float32)
    own = model.model if model.exact else exact_model(std, model.objective, model.schedule, labels)
    exact_guided = guided(own, label, guidance)
    learned_model = guided(model.model, label, guidance)
    x0 = norm.to_std(points[:max_noised])
    eps = np.random.default_rng(NOISE_SEED).standard_normal(x0.shape)
    learned, exact, noised = [], [], []
    velocity = model.objective == "flow"
    for k, level in enumerate(times):
        if velocity:
            exact_fn, learned_fn = (lambda x, m=m, t=float(level): m(x, t) for m in (exact_guided, learned_model))
            x = (1 - level) * eps + level * x0
        elif OBJECTIVES[model.objective].tables == "ladder":
            exact_fn, learned_fn = ncsn_score(exact_guided, level), ncsn_score(learned_model, level)
            x = x0 + level * eps
        else:
            t = int(level)
            exact_fn, learned_fn = (ddpm_score(m, model.schedule, t) for m in (exact_guided, learned_model))
            x = q_sample(x0, float(model.schedule.alphas_cumprod[t]), eps)
        exact.append(score_field(exact_fn, norm, extent, resolution, velocity).vectors)
        if not model.exact:
            learned.append(score_field(learned_fn, norm, extent, resolution, velocity).vectors)
        noised.append(norm.to_data(x))
        if cancelled is not None and cancelled(k + 1, len(times)):
            raise Cancelled("score fields cancelled")
    xs, ys = np.linspace(extent[0], extent[1], resolution), np.linspace(extent[2], extent[3], resolution)
    return FieldSeries(xs, ys, times, np.stack(learned) if learned else None, np.stack(exact), np.stack(noised))


def trajectory_scores(traj: Trajectory, model: SamplingModel) -> np.ndarray:
    """(F, N, 2) the score at every frame's points in data coordinates, recovered from the frame's clean estimate
    x̂ (Tweedie): (√ᾱ_t x̂₀ − x)/(1 − ᾱ_t) at a timestep t, (x̂₀ − x)/σ² at a level σ, (t x̂₁ − x)/(1 − t)² at a
    flow's time t (its marginal is the data scaled by t plus noise of standard deviation 1 − t); NaN at the
    clean frames."""
    norm = model.normaliser
    x, x0 = norm.to_std(traj.frames.astype(np.float64)), norm.to_std(traj.x0_hat.astype(np.float64))
    scores = np.full_like(x, np.nan)
    for k, level in enumerate(traj.times.astype(np.float64)):
        if traj.levels == "sigma" and level > 0:
            scores[k] = (x0[k] - x[k]) / level**2
        elif traj.levels == "time" and level < 1:
            scores[k] = (level * x0[k] - x[k]) / (1 - level) ** 2
        elif traj.levels == "t" and level >= 0:
            abar = float(model.schedule.alphas_cumprod[int(level)])
            scores[k] = (abar**0.5 * x0[k] - x[k]) / (1 - abar)
    return scores / norm.scale


def density_grid(points: np.ndarray, extent: Extent, bins: int = 64) -> np.ndarray:
    """(bins, bins) points per unit area on a grid over ``extent``, row j at y, column i at x (image layout)."""
    x_min, x_max, y_min, y_max = extent
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=bins, range=[[x_min, x_max], [y_min, y_max]])
    cell = (x_max - x_min) * (y_max - y_min) / bins**2
    return counts.T / cell
