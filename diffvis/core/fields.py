"""Score fields ∇ log p on a grid, for drawing arrows: learned (a trained network) or exact (a point set).

Score functions here map standardised points (N, 2) to standardised scores. ``score_field`` evaluates one on a
grid given in data coordinates and returns data-coordinate scores: with x = m + c·x_std,
∇_x log p(x) = ∇_std log p_std(x_std) / c.

  learned, DDPM at step t:  −ε_θ(x, t) / √(1 − ᾱ_t)      learned, NCSN at level σ:  s_θ(x, σ)
  exact,   DDPM at step t:  ∇ log mean_i N(x; √ᾱ_t x0_i, (1 − ᾱ_t) I)
  exact,   NCSN at level σ: ∇ log mean_i N(x; x0_i, σ² I)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.ideal import mixture_score
from diffvis.core.parametrization import score_from_eps
from diffvis.core.schedules import Schedule

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def ddpm_score(model, schedule: Schedule, t: int) -> ScoreFn:
    abar = float(schedule.alphas_cumprod[t])
    return lambda x: score_from_eps(model(x, t), abar)


def ncsn_score(model, sigma: float) -> ScoreFn:
    return lambda x: model(x, float(sigma))


def exact_ddpm_score(points_std: torch.Tensor, schedule: Schedule, t: int) -> ScoreFn:
    abar = float(schedule.alphas_cumprod[t])
    centres = abar**0.5 * torch.as_tensor(points_std, dtype=torch.float32)
    return lambda x: mixture_score(x, centres.to(x), (1 - abar) ** 0.5)


def exact_ncsn_score(points_std: torch.Tensor, sigma: float) -> ScoreFn:
    centres = torch.as_tensor(points_std, dtype=torch.float32)
    return lambda x: mixture_score(x, centres.to(x), float(sigma))


@dataclass(frozen=True)
class ScoreField:
    """``vectors[j, i]`` is the score at (xs[i], ys[j]), all in data coordinates."""

    xs: np.ndarray
    ys: np.ndarray
    vectors: np.ndarray

    @property
    def points(self) -> np.ndarray:
        """(ny·nx, 2) grid points, row by row."""
        gx, gy = np.meshgrid(self.xs, self.ys)
        return np.stack([gx.ravel(), gy.ravel()], axis=1)


@torch.inference_mode()
def score_field(
    score: ScoreFn, normaliser: Normaliser, extent: tuple[float, float, float, float], resolution: int = 32
) -> ScoreField:
    """Evaluate ``score`` on a resolution × resolution grid over extent = (x_min, x_max, y_min, y_max)."""
    x_min, x_max, y_min, y_max = extent
    xs = np.linspace(x_min, x_max, resolution)
    ys = np.linspace(y_min, y_max, resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    x_std = torch.as_tensor(normaliser.to_std(grid), dtype=torch.float32)
    vectors = score(x_std).cpu().numpy().astype(np.float64) / normaliser.scale
    return ScoreField(xs, ys, vectors.reshape(resolution, resolution, 2))
