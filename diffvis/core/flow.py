"""Flow matching and rectified flow: the convention every flow module follows, written once.

A source sample x₀ (N(0, I) in standardised space, or points of a built-in data set, ``source_points``) and a
data point x₁ are joined by the linear interpolant, t ∈ [0, 1] running from the source (t = 0) to the data
(t = 1):

    x_t = (1 − t) x₀ + t x₁,        dx_t/dt = x₁ − x₀,

and a network v_θ(x_t, t) is regressed on that conditional velocity:

    L(θ) = E_{t ~ U[0, 1], (x₀, x₁) ~ π} ‖v_θ(x_t, t) − (x₁ − x₀)‖²

(Lipman et al. 2023, eqs. 20–23 with σ_min = 0: the conditional OT path μ_t = t x₁, σ_t = 1 − t; Liu, Gong & Liu
2023, eq. 1, the rectified flow of the coupling π). With π the independent coupling q₀ × q₁ this is I-CFM; with π
a minibatch optimal-transport plan it is OT-CFM (Tong et al. 2024, ``diffvis.core.coupling``). Sampling solves
dx/dt = v_θ(x, t) from a source sample at t = 0 to t = 1 (``diffvis.core.ode``); the data point it heads for at
time t is x̂₁ = x + (1 − t) v_θ(x, t), one Euler step to the end. As in training, the loss is a mean over the two
coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffvis.core.datasets import DATASETS, Normaliser, make_dataset
from diffvis.core.pointfiles import SUFFIXES as POINT_SUFFIXES
from diffvis.core.pointfiles import load_points
from diffvis.errors import DataFileError

SOURCES = ("noise", *DATASETS)  # N(0, I) in standardised space, or a built-in data set (data-to-data transport)
# … or a point file, named by its path (``is_source``): its points are kept in the run (``Run.source_points``)
SOURCE_POOL = 20_000  # the points a data set source is drawn from, with replacement
SOURCE_SEED = 7_777  # the seed of that draw: a run's source is the same set every time it is rebuilt


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 − t) x₀ + t x₁ for (B, 2) source and data points and (B,) times."""
    return torch.lerp(x0, x1, t[:, None])


def target_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The conditional velocity x₁ − x₀ that v_θ(x_t, t) is regressed on."""
    return x1 - x0


@dataclass(frozen=True)
class LinearPath:
    """The table a flow model is sampled over, as a DDPM model is over its ``Schedule``: the frames of an S-step
    solve sit at t_k = k/S, k = 0 … S, from the source to the data."""

    def grid(self, steps: int) -> np.ndarray:
        return np.linspace(0.0, 1.0, steps + 1)


LINEAR_PATH = LinearPath()


def source_points(source: str, normaliser: Normaliser) -> np.ndarray | None:
    """The points a flow run's paths start from, in the run's standardised coordinates (the target data's), so
    that data-to-data transport is drawn where both sets lie: a built-in set's ``SOURCE_POOL`` points, or every
    point of a point file (read as training data is, ``pointfiles.load_points``); None for the N(0, I) source."""
    if source == "noise":
        return None
    if source in DATASETS:
        return normaliser.to_std(make_dataset(source, SOURCE_POOL, seed=SOURCE_SEED).points)
    points = load_points(source).points
    if len(points) < 2:
        raise DataFileError(f"{Path(source).name}: a source needs at least two points, got {len(points)}")
    return normaliser.to_std(points)


def exact_mismatch(source: str, coupling: str) -> str | None:
    """Why a flow trained from ``source`` with ``coupling`` does not learn the exact velocity (``exact``: N(0, I)
    paired independently with the data), or None when it does: another coupling or source learns another field."""
    if source != SOURCES[0]:
        return f"the exact field starts from {SOURCES[0]}, this run from {Path(source).name}"
    if coupling != "independent":
        return f"the exact field pairs independently, this run by {coupling}: it learns another field"
    return None


def is_source(source: str) -> bool:
    """True for a source a flow may start from: a name of ``SOURCES`` or a point file's path."""
    return source in SOURCES or Path(source).suffix.lower() in POINT_SUFFIXES


def draw_source(points: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
    """n source points: N(0, I) (``points`` None), or a draw with replacement from ``points``."""
    if points is None:
        return torch.randn(n, 2, generator=generator, device=generator.device)
    index = torch.randint(len(points), (n,), generator=generator, device=generator.device)
    return points.to(generator.device)[index]
