"""Sample-quality metrics of 2D point sets, each also as a ratio to its floor.

The floor of a metric is its value between two independent fresh draws of the data set: what a perfect sampler
scores. It is noisy, so it is averaged over several pairs and reported with its spread.

  energy       D² = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖  (V-statistic: pairs include i = j)
  sliced_w1    mean over random unit directions θ of W1(θ·X, θ·Y), W1 = ∫ |F_X − F_Y|
  nn_precision mean distance from each sample to its nearest data point
  nn_recall    mean distance from each data point to its nearest sample
  frechet      ‖μ_X − μ_Y‖² + tr(C_X + C_Y − 2 (C_X C_Y)^½), with tr (C_X C_Y)^½ = √(tr M + 2 √det M) in 2D
  w2           W₂ = (min_π Σ π_ij ‖x_i − y_j‖²)^½ between the two empirical measures: exact optimal transport (POT's
               network simplex) on at most W2_POINTS of each; in comparisons and sweeps, its floor is the mean
               over four fresh draws against the samples' own reference (``floors``; a solve costs about a second)

For a flow's trajectory, ``normalised_path_energy``: NPE = (E Σ_k ‖x_{k+1} − x_k‖²/(t_{k+1} − t_k) − W₂²(x₀, x₁))
/ W₂²(x₀, x₁) (Tong et al. 2024), the energy of the recorded path over the least energy that carries the start
points to the end points: 0 for straight paths of an optimal coupling. A class-conditional flow carries each class
on its own, so its least energy is each class's W₂² in proportion, Σ_c w_c W₂²(x₀^c, x₁^c), and NPE is the
excess over that sum.

For labelled samples: ``class_accuracy``, the share of samples whose nearest data point has the class they were
drawn for (a 1-nearest-neighbour classifier, the 2D stand-in for a classifier's accuracy), and
``class_quality``, every metric of each class's samples against that class's fresh data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.errors import Cancelled

_CHUNK = 4096
N_PROJECTIONS = 256


def _as_tensor(points: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(points), dtype=torch.float64)


def _mean_pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    total = sum(torch.cdist(a[i : i + _CHUNK], b).sum().item() for i in range(0, len(a), _CHUNK))
    return total / (len(a) * len(b))


def _nearest_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each row of a, the distance to its nearest row of b."""
    return torch.cat([torch.cdist(a[i : i + _CHUNK], b).min(1).values for i in range(0, len(a), _CHUNK)])


def nearest_distances(samples: np.ndarray, data: np.ndarray) -> np.ndarray:
    """(N,) each sample's distance to its nearest data point."""
    return _nearest_distances(_as_tensor(samples), _as_tensor(data)).numpy()


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    a, b = _as_tensor(x), _as_tensor(y)
    return 2 * _mean_pairwise_distance(a, b) - _mean_pairwise_distance(a, a) - _mean_pairwise_distance(b, b)


def sliced_w1(x: np.ndarray, y: np.ndarray, n_projections: int = N_PROJECTIONS, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(n_projections, generator=g, dtype=torch.float64) * math.pi
    dirs = torch.stack([torch.cos(angles), torch.sin(angles)], 1)  # (P, 2)
    px, py = (dirs @ _as_tensor(x).T).sort(1).values, (dirs @ _as_tensor(y).T).sort(1).values
    grid = torch.cat([px, py], 1).sort(1).values  # (P, n + m) all breakpoints
    left = grid[:, :-1].contiguous()
    fx = torch.searchsorted(px, left, right=True).double() / px.shape[1]  # float64: int64 / int is float32
    fy = torch.searchsorted(py, left, right=True).double() / py.shape[1]
    return float(((fx - fy).abs() * grid.diff(dim=1)).sum(1).mean())


def nn_precision(samples: np.ndarray, data: np.ndarray) -> float:
    return float(_nearest_distances(_as_tensor(samples), _as_tensor(data)).mean())


def nn_recall(samples: np.ndarray, data: np.ndarray) -> float:
    return float(_nearest_distances(_as_tensor(data), _as_tensor(samples)).mean())


def memorised_fraction(samples: np.ndarray, data: np.ndarray, tol: float) -> float:
    """The fraction of samples within ``tol`` of a training point: near 1 for a model that memorises (the exact
    denoiser), small for one that generalises."""
    return float((_nearest_distances(_as_tensor(samples), _as_tensor(data)) <= tol).double().mean())


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    m = cx @ cy
    tr_sqrt = math.sqrt(max(np.trace(m) + 2 * math.sqrt(max(np.linalg.det(m), 0.0)), 0.0))
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cx) + np.trace(cy) - 2 * tr_sqrt)


W2_POINTS = 2000


def wasserstein2(x: np.ndarray, y: np.ndarray) -> float:
    """W₂ between the uniform empirical measures of the first ``W2_POINTS`` rows of x and of y (exact)."""
    import ot  # POT loads scipy: only where W₂ is asked for

    a, b = np.asarray(x, np.float64)[:W2_POINTS], np.asarray(y, np.float64)[:W2_POINTS]
    cost = ot.dist(a, b)  # squared Euclidean
    return math.sqrt(max(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost, numItermax=10**7),
                         0.0))  # fmt: skip


def normalised_path_energy(frames: np.ndarray, times: np.ndarray, labels: np.ndarray | None = None) -> float:
    """NPE of a flow's frames (F, N, 2) at times t (F,) increasing from 0 to 1 (see the module), on at most
    ``W2_POINTS`` particles; with their class ``labels`` (N,), against the classes' least energies."""
    path = np.asarray(frames, np.float64)[:, :W2_POINTS]
    dt = np.diff(np.asarray(times, np.float64))
    energy = float((((path[1:] - path[:-1]) ** 2).sum(-1) / dt[:, None]).sum(0).mean())
    classes = np.zeros(path.shape[1], int) if labels is None else np.asarray(labels)[: path.shape[1]]
    least = sum(
        np.mean(classes == c) * wasserstein2(path[0, classes == c], path[-1, classes == c]) ** 2
        for c in np.unique(classes)
    )
    return (energy - least) / least


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "energy": energy_distance,
    "sliced_w1": sliced_w1,
    "nn_precision": nn_precision,
    "nn_recall": nn_recall,
    "frechet": frechet_distance,
}


@dataclass(frozen=True)
class MetricResult:
    """A metric's value next to its floor (mean and standard deviation over independent pairs of draws)."""

    name: str
    value: float
    floor: float
    floor_std: float

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor > 0 else math.inf

    @property
    def within_floor_spread(self) -> bool:
        """True when the value is no more than two standard deviations above the floor's mean."""
        return self.value <= self.floor + 2 * self.floor_std


def floors(
    draw: Callable[[int], np.ndarray],
    n_pairs: int = 8,
    seed: int = 10_000,
    cancelled: Callable[[], bool] | None = None,
    *,
    w2_pairs: int = 0,
    reference: np.ndarray | None = None,
) -> dict[str, tuple]:
    """(mean, std) of every metric between ``n_pairs`` pairs of independent draws ``draw(seed)``, and of W₂ over
    ``w2_pairs`` draws; ``cancelled()`` is asked before each pair and stops the work (``Cancelled``).

    W₂'s floor is taken against the ``reference`` the samples are scored against, when given: W₂ between 2,000
    points is dominated by the draws' own sampling noise (on the moons a fresh draw scores 0.04 to 0.15 against one
    reference, mostly by how the points split between the two moons), so the floor must share the samples'
    reference for a perfect sampler to score 1. Exact transport costs about a second a pair of 2,000 points."""
    metrics = {**METRICS, "w2": wasserstein2} if w2_pairs else METRICS
    values = {name: [] for name in metrics}
    for p in range(max(n_pairs, w2_pairs)):
        if cancelled is not None and cancelled():
            raise Cancelled("floors cancelled")
        a, b = draw(seed + 2 * p), draw(seed + 2 * p + 1)
        for name, fn in metrics.items():
            if name == "w2" and p < w2_pairs:
                values[name].append(fn(a if reference is None else reference, b))
            elif name != "w2" and p < n_pairs:
                values[name].append(fn(a, b))
    return {name: (float(np.mean(v)), float(np.std(v, ddof=1) if len(v) > 1 else 0.0)) for name, v in values.items()}


def quality_report(
    samples: np.ndarray, draw: Callable[[int], np.ndarray], *, n_pairs: int = 8, seed: int = 10_000
) -> dict[str, MetricResult]:
    """Every metric of ``samples`` against a fresh draw, next to its floor.

    ``draw(seed)`` returns a fresh data set of the same size as ``samples`` (in the same coordinates).
    """
    return score_samples(samples, draw(seed - 1), floors(draw, n_pairs, seed))


def score_samples(samples: np.ndarray, reference: np.ndarray, floor: dict[str, tuple]) -> dict[str, MetricResult]:
    """Every metric of ``samples`` against one fresh ``reference`` draw, next to ``floors``' (mean, std); W₂ too
    when ``floor`` has its floor (``floors(…, w2_pairs=…)``)."""
    metrics = {**METRICS, "w2": wasserstein2} if "w2" in floor else METRICS
    return {name: MetricResult(name, fn(samples, reference), *floor[name]) for name, fn in metrics.items()}


def nearest_labels(samples: np.ndarray, data: np.ndarray, data_labels: np.ndarray) -> np.ndarray:
    """(N,) the label of each sample's nearest data point."""
    a, b = _as_tensor(samples), _as_tensor(data)
    nearest = torch.cat([torch.cdist(a[i : i + _CHUNK], b).argmin(1) for i in range(0, len(a), _CHUNK)])
    return np.asarray(data_labels)[nearest.numpy()]


def class_accuracy(samples: np.ndarray, labels: np.ndarray, data: np.ndarray, data_labels: np.ndarray) -> float:
    """The fraction of samples whose nearest data point carries the sample's own label."""
    return float((nearest_labels(samples, data, data_labels) == np.asarray(labels)).mean())


LabelledDraw = Callable[[int], tuple[np.ndarray, np.ndarray]]  # seed → (points, labels) of fresh data


def class_quality(
    samples: np.ndarray, labels: np.ndarray, draw: LabelledDraw, *, n_pairs: int = 4, seed: int = 10_000
) -> dict[int, dict[str, MetricResult]]:
    """For each label present in ``labels``: every metric of its samples against the points of that label in a
    fresh draw, next to the floor between the points of that label in independent draws."""
    out = {}
    for label in np.unique(labels).tolist():

        def draw_class(s: int, label=label) -> np.ndarray:
            points, point_labels = draw(s)
            return points[point_labels == label]

        out[label] = quality_report(samples[labels == label], draw_class, n_pairs=n_pairs, seed=seed)
    return out


def random_subset(count: int, n: int, seed: int) -> np.ndarray:
    """n random row indices of ``count`` rows (with replacement if n > count)."""
    return np.random.default_rng(seed).choice(count, size=n, replace=n > count)
