"""Built-in 2D data sets and the standardising transform.

Every maker has the signature ``make_<name>(n, *, noise, seed) -> PointSet`` and draws its points i.i.d.
(random positions along the curve or inside the region, never evenly spaced), so two draws with different
seeds are independent samples of one distribution. ``noise`` is the standard deviation of isotropic Gaussian
jitter added in the set's own data coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from diffvis.core.gaussian_mixture import GaussianMixture, gmm8, grid25, known_density, tree
from diffvis.core.validation import check_seed, is_real, is_whole
from diffvis.errors import ConfigError

MAX_POINTS = 1_000_000
MAX_COORDINATE = 1e12  # |x| and |y| of a data point: beyond, squares and float32 samples lose all precision
MIN_SCALE = 1e-12


@dataclass(frozen=True)
class PointSet:
    """``points``: (N, 2) float64 in data coordinates; ``labels``: (N,) int64 class ids, or None;
    ``class_names[v]`` names class id v (a file's classes are named by their ids); ``density``: the mixture the
    points were drawn from, where it is known (``gaussian_mixture``), else None."""

    points: np.ndarray
    labels: np.ndarray | None = None
    name: str = "points"
    class_names: tuple[str, ...] | None = None
    density: GaussianMixture | None = None

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ConfigError(f"points must have shape (N, 2), got {self.points.shape}")
        if self.labels is not None and self.labels.shape != (len(self.points),):
            raise ConfigError("labels must have one entry per point")

    def __len__(self) -> int:
        return len(self.points)

    def class_name(self, label: int) -> str:
        names = self.class_names
        return names[label] if names is not None and 0 <= label < len(names) else str(label)


def _jitter(rng: np.random.Generator, xy: np.ndarray, noise: float) -> np.ndarray:
    return xy + noise * rng.standard_normal(xy.shape)


def make_butterfly(n: int, *, noise: float, seed: int) -> PointSet:
    """Fay's butterfly: r = e^cos t − 2 cos 4t + sin⁵(t/12), x = r sin t, y = r cos t, t ~ U[0, 12π)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 12 * math.pi, n)
    r = np.exp(np.cos(t)) - 2 * np.cos(4 * t) + np.sin(t / 12) ** 5
    xy = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    return PointSet(_jitter(rng, xy, noise), None, "butterfly")


def make_spirals(n: int, *, noise: float, seed: int) -> PointSet:
    """Two interleaved Archimedean arms r = θ/π, θ ∈ [π/2, 4π], drawn uniformly in arc length (θ² uniform)."""
    rng = np.random.default_rng(seed)
    lo, hi = math.pi / 2, 4 * math.pi
    theta = np.sqrt(rng.uniform(lo**2, hi**2, n))
    arm = rng.integers(0, 2, n)
    r = theta / math.pi
    angle = theta + math.pi * arm
    xy = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return PointSet(_jitter(rng, xy, noise), arm.astype(np.int64), "spirals", ("arm 1", "arm 2"))


def make_swiss_roll(n: int, *, noise: float, seed: int) -> PointSet:
    """The 2D swiss roll of scikit-learn: t ~ U[1.5π, 4.5π], (x, y) = (t cos t, t sin t) / 5."""
    rng = np.random.default_rng(seed)
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0.0, 1.0, n))
    xy = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5
    return PointSet(_jitter(rng, xy, noise), None, "swiss_roll")


def make_moons(n: int, *, noise: float, seed: int) -> PointSet:
    """Two interleaved half circles: (cos θ, sin θ) and (1 − cos θ, 0.5 − sin θ), θ ~ U[0, π]."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.0, math.pi, n)
    moon = rng.integers(0, 2, n)
    upper = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], axis=1)
    xy = np.where(moon[:, None] == 0, upper, lower)
    return PointSet(_jitter(rng, xy, noise), moon.astype(np.int64), "moons", ("upper", "lower"))


def make_rings(n: int, *, noise: float, seed: int) -> PointSet:
    """Three concentric circles of radius 1, 2, 3; a point's ring is drawn with probability ∝ radius."""
    rng = np.random.default_rng(seed)
    radii = np.array([1.0, 2.0, 3.0])
    ring = rng.choice(3, size=n, p=radii / radii.sum())
    theta = rng.uniform(0.0, 2 * math.pi, n)
    r = radii[ring]
    xy = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return PointSet(_jitter(rng, xy, noise), ring.astype(np.int64), "rings", ("r = 1", "r = 2", "r = 3"))


def make_gmm8(n: int, *, noise: float, seed: int) -> PointSet:
    """The mixture ``gaussian_mixture.gmm8``: eight Gaussians of standard deviation ``noise`` at radius 2, angles
    kπ/4, equal weights, labelled by component."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 8, n)
    mixture = gmm8(noise)
    points = _jitter(rng, mixture.means[k], noise)
    return PointSet(points, k.astype(np.int64), "gmm8", mixture.class_names, known_density("gmm8", noise))


def make_grid25(n: int, *, noise: float, seed: int) -> PointSet:
    """The mixture ``gaussian_mixture.grid25``: a 5 × 5 grid of Gaussians of standard deviation ``noise``."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 25, n)
    return PointSet(_jitter(rng, grid25(noise).means[k], noise), None, "grid25", None, known_density("grid25", noise))


def make_tree(n: int, *, noise: float, seed: int) -> PointSet:
    """The mixture ``gaussian_mixture.tree``: two classes of thin Gaussians along branching lines, ``noise``
    their spread across the trunk."""
    mixture = tree(noise)
    points, labels = mixture.sample(n, np.random.default_rng(seed))
    return PointSet(points, labels, "tree", mixture.class_names, known_density("tree", noise))


def make_checkerboard(n: int, *, noise: float, seed: int) -> PointSet:
    """Uniform points on the 8 dark squares of a 4 × 4 board spanning [−4, 4]²."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    y = rng.uniform(0.0, 1.0, n) - 2 * rng.integers(0, 2, n) + np.floor(x) % 2
    xy = 2 * np.stack([x, y], axis=1)
    return PointSet(_jitter(rng, xy, noise), None, "checkerboard")


@dataclass(frozen=True)
class DatasetSpec:
    make: Callable[..., PointSet]
    default_noise: float
    description: str


DATASETS: dict[str, DatasetSpec] = {
    "butterfly": DatasetSpec(make_butterfly, 0.03, "Fay's butterfly curve"),
    "spirals": DatasetSpec(make_spirals, 0.05, "two interleaved spirals (labelled by arm)"),
    "swiss_roll": DatasetSpec(make_swiss_roll, 0.05, "2D swiss roll"),
    "moons": DatasetSpec(make_moons, 0.05, "two moons (labelled)"),
    "rings": DatasetSpec(make_rings, 0.05, "three concentric rings (labelled)"),
    "gmm8": DatasetSpec(make_gmm8, 0.1, "eight Gaussians on a circle (labelled; known density)"),
    "grid25": DatasetSpec(make_grid25, 0.1, "a 5 × 5 grid of Gaussians (known density)"),
    "tree": DatasetSpec(make_tree, 0.05, "two branching trees of thin Gaussians (labelled; known density)"),
    "checkerboard": DatasetSpec(make_checkerboard, 0.0, "checkerboard"),
}
ALIASES = {"gaussians8": "gmm8"}  # names runs and scripts used before a set was renamed


def canonical_name(name):
    """The built-in set an old name stands for (``ALIASES``); any other value comes back as it is."""
    return ALIASES.get(name, name) if isinstance(name, str) else name


def make_dataset(name: str, n: int, *, noise: float | None = None, seed: int = 0) -> PointSet:
    """Draw ``n`` points of the built-in set ``name`` (``noise=None`` takes the set's default)."""
    name = canonical_name(name)
    check_draw(name, n, noise, seed)
    spec = DATASETS[name]
    return spec.make(n, noise=spec.default_noise if noise is None else noise, seed=seed)


def check_draw(name, n, noise, seed) -> None:
    """Refuse, with the reason, a draw ``make_dataset`` cannot make: an unknown set, n not a whole number from 1
    to MAX_POINTS, noise not None or a number in [0, 100], a seed not a whole number from 0 to MAX_SEED."""
    if canonical_name(name) not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if not is_whole(n) or not 1 <= n <= MAX_POINTS:
        raise ConfigError(f"n must be a whole number from 1 to {MAX_POINTS:,}, got {n!r}")
    if noise is not None and not (is_real(noise) and 0 <= noise <= 100):
        raise ConfigError(f"noise must be a number from 0 to 100, got {noise!r}")
    check_seed(seed)


def first_bad_point(points: np.ndarray) -> int | None:
    """The index of the first row with a value that is NaN, infinite or beyond ±MAX_COORDINATE; None if none."""
    bad = ~(np.abs(points) <= MAX_COORDINATE).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


@dataclass(frozen=True)
class Normaliser:
    """x_std = (x − mean) / scale with one scalar scale, the overall standard deviation (keeps aspect ratio)."""

    mean: tuple[float, float]
    scale: float

    def __post_init__(self) -> None:
        if not (len(self.mean) == 2 and all(is_real(m) and abs(m) <= MAX_COORDINATE for m in self.mean)):
            raise ConfigError(f"the normaliser's mean must be two numbers within ±{MAX_COORDINATE:g}")
        if not (is_real(self.scale) and MIN_SCALE < self.scale <= MAX_COORDINATE):
            raise ConfigError(f"the normaliser's scale must be a number above {MIN_SCALE:g} and at most "
                              f"{MAX_COORDINATE:g}, got {self.scale!r}")  # fmt: skip
        object.__setattr__(self, "mean", (float(self.mean[0]), float(self.mean[1])))
        object.__setattr__(self, "scale", float(self.scale))

    @classmethod
    def fit(cls, points: np.ndarray) -> Normaliser:
        if first_bad_point(points) is not None:
            raise ConfigError(f"every coordinate must be a finite number within ±{MAX_COORDINATE:g}")
        mean = points.mean(axis=0)
        scale = float(np.sqrt(((points - mean) ** 2).mean()))
        if scale <= MIN_SCALE:
            raise ConfigError("the data set has no spread: all points coincide")
        return cls((float(mean[0]), float(mean[1])), scale)

    def to_std(self, points):
        """Data → standardised coordinates; works on numpy arrays and torch tensors."""
        return (points - _like(self.mean, points)) / self.scale

    def to_data(self, points):
        """Standardised → data coordinates; works on numpy arrays and torch tensors."""
        return points * self.scale + _like(self.mean, points)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> Normaliser:
        """The normaliser ``to_dict`` wrote; anything else raises ConfigError."""
        if not (isinstance(d, dict) and isinstance(d.get("mean"), list)):
            raise ConfigError("the normaliser must be an object with a list 'mean' and a number 'scale'")
        return cls(tuple(d["mean"]), d.get("scale"))


def _like(values: tuple[float, float], array):
    if isinstance(array, np.ndarray):
        return np.asarray(values, dtype=array.dtype)
    import torch

    return torch.tensor(values, dtype=array.dtype, device=array.device)
