"""Log-density maps: a model's log p_θ on a grid beside a reference log p of its data, the log p of the model's own
samples, and one clicked point's ODE path (all in nats, data coordinates; the ODE is ``likelihood``'s).

The reference is the exact log p of a built-in set drawn from a known mixture (gmm8, grid25, tree), else a Gaussian
kernel density estimate of the n data points x_i (Scott's rule in d = 2 dimensions, per axis):

    p̂(x) = (1/n) Σ_i N(x; x_i, diag(h₁², h₂²)),        h_k = n^(−1/(d+4)) σ_k = n^(−1/6) σ_k,

σ_k the data's standard deviation along axis k.

The solver: dopri5 at rtol = atol = 1e-4 (``DEFAULT_SOLVER``). Measured on a 64 × 64 grid (4,096 points) of the
default network (width 64, depth 3) trained on grid25, one torch thread on a busy two-core machine: 242 evaluations
per point in 4.9 s, within 0.0015 nats of rtol 1e-5 (440 evaluations, 9.4 s) wherever the map is coloured; rtol
1e-3 saves a third (3.5 s) but is 0.035 nats off, and RK4 × 20 steps 1.6 nats. A class-conditional model scores
its class mixture Σ_y π_y p(x | y) (what it samples): C classes cost C times as much (the 8-class gmm8 flow: 53 s).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.datasets import PointSet
from diffvis.core.fields import Extent, grid_points, padded_extent
from diffvis.core.likelihood import model_log_likelihood
from diffvis.core.pipeline import sample_request
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.run import Run, SamplingModel
from diffvis.core.schedules import Schedule
from diffvis.errors import ConfigError

DEFAULT_RESOLUTION = 64
DEFAULT_SOLVER = {"method": "dopri5", "rtol": 1e-4, "atol": 1e-4}
SAMPLES = 500  # the model's samples scored beside the grid
PROBE_FRAMES = 30
EXACT, KDE = "exact", "kernel density estimate"
MAPS = ("learned", "reference", "difference")  # what a density view shows: log p_θ, log p_ref, log p_θ − log p_ref
KDE_PAIRS = 1 << 22  # queries × data points of one chunk of the kernel density estimate
TICKS = 1000  # ``cancelled(done, TICKS)``: the share of the whole work done
NO_DENSITY = ("the exact model of a point set is a sum of spikes, with no log-density to map: train a model, or "
              "choose gmm8, grid25 or tree, whose density is known")  # fmt: skip


@dataclass(frozen=True)
class DensityMap:
    """``learned`` and ``reference`` (R, R) log p at (xs[i], ys[j]) in [j, i] (image layout: row j at y), their
    reference's name (``EXACT`` or ``KDE``), the model's ``samples`` (M, 2) with their log p_θ and log p_ref (M,),
    and the model evaluations per point of the grid's solve (``nfe``)."""

    xs: np.ndarray
    ys: np.ndarray
    learned: np.ndarray
    reference: np.ndarray
    reference_name: str
    samples: np.ndarray
    sample_log_p: np.ndarray
    sample_reference: np.ndarray
    nfe: int

    @property
    def difference(self) -> np.ndarray:
        """(R, R) log p_θ − log p_ref."""
        return self.learned - self.reference

    @property
    def points(self) -> np.ndarray:
        """(R², 2) the grid points, in the order of ``learned.ravel()``."""
        return grid_points(self.xs, self.ys)

    @property
    def extent(self) -> Extent:
        """(x_min, x_max, y_min, y_max) of the pixels: the grid points are their centres."""
        hx, hy = (self.xs[1] - self.xs[0]) / 2, (self.ys[1] - self.ys[0]) / 2
        return (self.xs[0] - hx, self.xs[-1] + hx, self.ys[0] - hy, self.ys[-1] + hy)


@dataclass(frozen=True)
class DensityProbe:
    """One point's log p and its parts (see ``likelihood.Likelihood``), its ODE ``path`` (F, 2) from the point
    (frame 0) to the prior (last frame) and ``accumulated`` (F,) −∫_u^{u_end} ∇·f du along it (0 at the point)."""

    point: np.ndarray
    log_p: float
    prior: float
    flow_term: float
    scale_term: float
    path: np.ndarray
    accumulated: np.ndarray
    nfe: int


def density_model(run: Run | None, data: PointSet, objective: str, schedule: Schedule) -> SamplingModel:
    """The model whose density is mapped: the run's network; with no run, the exact model of the distribution the
    data were drawn from (``data.density``), in the data's coordinates, unconditional: its whole mixture in one
    solve (the class mixture Σ_y π_y p(x | y) is the same density, in C solves that the adaptive solver finds harder:
    0.007 nats off at rtol 1e-4 where the whole mixture is 0.0008). Points of no known density are refused
    (``NO_DENSITY``)."""
    if run is not None:
        return SamplingModel.of_run(run)
    if data.density is None:
        raise ConfigError(NO_DENSITY)
    return SamplingModel.exact_of(data.points, objective, schedule, mixture=data.density)


def scott_bandwidth(points: np.ndarray) -> np.ndarray:
    """(2,) h_k = n^(−1/6) σ_k: Scott's rule for a 2D Gaussian kernel (see the module)."""
    return len(points) ** (-1 / 6) * points.std(axis=0, ddof=1)


def kde_log_density(data: np.ndarray, queries: np.ndarray, bandwidth: np.ndarray | None = None) -> np.ndarray:
    """(M,) log p̂ of the kernel density estimate of ``data`` (n, 2) at ``queries`` (M, 2), kernel N(0, diag(h²))
    (default h: ``scott_bandwidth``), in chunks of ``KDE_PAIRS`` pairs."""
    h = scott_bandwidth(data) if bandwidth is None else np.asarray(bandwidth, dtype=np.float64)
    z = torch.as_tensor(data / h, dtype=torch.float64)
    q = torch.as_tensor(np.asarray(queries, dtype=np.float64) / h)
    norm = math.log(len(data)) + math.log(2 * math.pi) + float(np.log(h).sum())
    chunk = max(1, KDE_PAIRS // len(data))
    parts = [torch.logsumexp(-0.5 * torch.cdist(q[i : i + chunk], z).square(), dim=1) for i in range(0, len(q), chunk)]
    return torch.cat(parts).numpy() - norm if parts else np.zeros(0)


def reference_log_density(data: PointSet, queries: np.ndarray) -> tuple[np.ndarray, str]:
    """log p_ref of ``queries`` (M, 2) and its name: the exact density of points drawn from a known mixture
    (``EXACT``), else the kernel density estimate of the points (``KDE``)."""
    if data.density is None:
        return kde_log_density(data.points, queries), KDE
    return data.density.log_prob(torch.as_tensor(queries, dtype=torch.float64)).numpy(), EXACT


def model_samples(model: SamplingModel, n: int = SAMPLES, seed: int = 0, callback=None) -> np.ndarray:
    """(n, 2) samples of ``model`` with its objective's preview sampler (Euler × 25 for a flow, DDIM × 25, Langevin),
    every class in proportion for a conditional model (the density scored is their mixture)."""
    info = OBJECTIVES[model.objective]
    request = SampleRequest(info.preview_sampler, info.preview_params, n=n, seed=seed, objective=model.objective)
    return sample_request(model, request, callback=callback).samples.astype(np.float64)


def density_map(model: SamplingModel, data: PointSet, *, resolution: int = DEFAULT_RESOLUTION,
                samples: int = SAMPLES, seed: int = 0, cancelled: Callable[[int, int], bool] | None = None,
                **solver) -> DensityMap:  # fmt: skip
    """log p_θ of ``model`` on a resolution × resolution grid over ``padded_extent`` of the data and of ``samples``
    of its samples, beside ``reference_log_density`` there. ``solver``: ``model_log_likelihood``'s method,
    steps, rtol, atol (default ``DEFAULT_SOLVER``). ``cancelled(done, TICKS)`` is asked throughout and stops the
    work (``Cancelled``)."""
    solver = {**DEFAULT_SOLVER, **solver}
    x_min, x_max, y_min, y_max = padded_extent(data.points)
    xs, ys = np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution)
    grid = grid_points(xs, ys)
    share = len(grid) / (len(grid) + samples)  # of the work: the grid's solve, then the samples' (drawn, solved)
    learned = model_log_likelihood(model, grid, cancelled=_part(cancelled, 0.0, share), **solver)
    drawn = model_samples(model, samples, seed, callback=_step_part(cancelled, share, share))
    scored = model_log_likelihood(model, drawn, cancelled=_part(cancelled, share, 1.0), **solver)
    reference, name = reference_log_density(data, np.concatenate([grid, drawn]))
    shape, cells = (resolution, resolution), len(grid)
    return DensityMap(xs, ys, learned.log_p.reshape(shape), reference[:cells].reshape(shape), name, drawn,
                      scored.log_p, reference[cells:], learned.nfe)  # fmt: skip


def _part(cancelled, start: float, end: float):
    """``cancelled`` for a part of the work spanning ``start`` … ``end`` of the whole (shares of 1)."""
    if cancelled is None:
        return None
    return lambda done, total: cancelled(round(TICKS * (start + (end - start) * done / total)), TICKS)


def _step_part(cancelled, start: float, end: float):
    """A sampler's callback telling ``cancelled`` its share of the work (see ``_part``)."""
    part = _part(cancelled, start, end)
    return None if part is None else lambda step: part(step.i, step.total)


def probe_density(model: SamplingModel, point: np.ndarray, *, frames: int = PROBE_FRAMES,
                  cancelled: Callable[[int, int], bool] | None = None, **solver) -> DensityProbe:  # fmt: skip
    """log p_θ of one ``point`` (2,) and its ODE path (``solver`` as ``density_map``'s): ``frames`` frames for
    dopri5, the S + 1 u that a fixed-step method visits."""
    point = np.asarray(point, dtype=np.float64).reshape(2)
    result = model_log_likelihood(model, point[None], frames=frames, cancelled=cancelled,
                                  **{**DEFAULT_SOLVER, **solver})  # fmt: skip
    return DensityProbe(point, float(result.log_p[0]), float(result.prior[0]), float(result.flow_term[0]),
                        result.scale_term, result.path[:, 0], result.accumulated[:, 0], result.nfe)  # fmt: skip
