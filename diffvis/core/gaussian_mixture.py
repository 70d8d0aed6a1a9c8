"""Gaussian mixtures with a known density: the distributions whose exact log p, score, denoiser and velocity
diffvis knows at every noise level, and the built-in sets drawn from them (``gmm8``, ``grid25``, ``tree``).

    p(x) = Σ_k w_k N(x; μ_k, Σ_k),        p(x | y) = Σ_{k ∈ y} w_k N(x; μ_k, Σ_k) / Σ_{k ∈ y} w_k

for components k with weights w_k (Σ w_k = 1) and, for a labelled mixture, a class y_k each. A noised mixture is
a mixture: if x ~ p and x_a,s = a x + s ε with ε ~ N(0, I), then

    p_a,s(x) = Σ_k w_k N(x; a μ_k, a² Σ_k + s² I),

which covers every objective's marginal (DDPM: a = √ᾱ_t, s = √(1 − ᾱ_t); NCSN: a = 1, s = σ; flow from N(0, I):
a = t, s = 1 − t). Its score is the responsibility-weighted sum of the components' scores,

    ∇ log p_a,s(x) = Σ_k r_k(x) C_k⁻¹ (a μ_k − x),   C_k = a² Σ_k + s² I,   r_k ∝ w_k N(x; a μ_k, C_k),

written in plain torch so that autograd reaches through it (its divergence is the likelihood's, ``likelihood``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.errors import ConfigError

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class GaussianMixture:
    """``means`` (K, 2), ``covs`` (K, 2, 2) symmetric positive definite, ``weights`` (K,) summing to 1, all float64;
    ``labels`` (K,) the class of each component (0 … C−1) or None; ``class_names`` name the classes. A singular
    covariance (a component of zero spread) can be drawn from but has no density."""

    means: np.ndarray
    covs: np.ndarray
    weights: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.means)
        if self.means.shape != (k, 2) or self.covs.shape != (k, 2, 2) or self.weights.shape != (k,) or k == 0:
            raise ConfigError("a mixture needs K ≥ 1 means (K, 2), covariances (K, 2, 2) and weights (K,)")
        if not np.isclose(self.weights.sum(), 1.0) or (self.weights <= 0).any():
            raise ConfigError("a mixture's weights must be positive and sum to 1")
        if (np.linalg.eigvalsh(self.covs) < 0).any():
            raise ConfigError("a mixture's covariances must be positive semi-definite")

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """n points drawn i.i.d. and their classes (None for an unlabelled mixture)."""
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        eigenvalues, vectors = np.linalg.eigh(self.covs)
        root = vectors * np.sqrt(eigenvalues)[:, None, :]  # Σ_k = root_k root_kᵀ, singular Σ_k included
        points = self.means[k] + np.einsum("nij,nj->ni", root[k], rng.standard_normal((n, 2)))
        return points, None if self.labels is None else self.labels[k].astype(np.int64)

    def standardised(self, mean: tuple[float, float], scale: float) -> GaussianMixture:
        """The mixture of (x − mean)/scale: the same distribution in a run's standardised coordinates."""
        means = (self.means - np.asarray(mean)) / scale
        return GaussianMixture(means, self.covs / scale**2, self.weights, self.labels, self.class_names)

    def log_prob(self, x: torch.Tensor, a: float = 1.0, s: float = 0.0, label=None) -> torch.Tensor:
        """log p_a,s(x | y) of (N, 2) points, in float64; ``label`` None or negative (∅): the whole mixture, else a
        class id, or one per row."""
        return torch.logsumexp(self._log_terms(x, a, s, label)[0], dim=1)

    def score(self, x: torch.Tensor, a: float = 1.0, s: float = 0.0, label=None) -> torch.Tensor:
        """∇ log p_a,s(x | y) of (N, 2) points (see the module), in x's float type, computed in float64."""
        log_terms, diff, precision = self._log_terms(x, a, s, label)
        r = torch.softmax(log_terms, dim=1)  # (N, K) responsibilities
        return torch.einsum("nk,kij,nkj->ni", r, precision, -diff).to(x.dtype)

    def mean(self, label=None) -> np.ndarray:
        """E[x | y] (∅ or None: the whole mixture's mean), shape (2,)."""
        w = self._class_weights(label)
        return (w[:, None] * self.means).sum(0) / w.sum()

    def of_class(self, label: int) -> GaussianMixture:
        """p(x | y = label): the components of that class, their weights renormalised."""
        keep = self._class_weights(label) > 0
        if not keep.any():
            raise ConfigError(f"this mixture has no class {label}")
        w = self.weights[keep]
        return GaussianMixture(self.means[keep], self.covs[keep], w / w.sum(), self.labels[keep], self.class_names)

    def class_shares(self) -> tuple[float, ...]:
        """Each class's share of the mass, Σ_{k ∈ y} w_k, for the classes 0 … C−1."""
        return tuple(float(self.weights[self.labels == y].sum()) for y in range(int(self.labels.max()) + 1))

    def _class_weights(self, label) -> np.ndarray:
        if label is None or int(label) < 0:
            return self.weights
        if self.labels is None:
            raise ConfigError("this mixture has no classes; it cannot be conditioned")
        return np.where(self.labels == int(label), self.weights, 0.0)

    def _log_terms(self, x: torch.Tensor, a: float, s: float, label):
        """log w_k|y + log N(x; a μ_k, C_k) per row and component (N, K), x − a μ_k (N, K, 2) and C_k⁻¹ (K, 2, 2)."""
        x64 = x.to(torch.float64)
        means = torch.as_tensor(a * self.means, device=x.device)
        covs = torch.as_tensor(a * a * self.covs + s * s * np.eye(2), device=x.device)
        precision = torch.linalg.inv(covs)
        logdet = torch.logdet(covs)
        diff = x64[:, None, :] - means[None]
        mahalanobis = torch.einsum("nki,kij,nkj->nk", diff, precision, diff)
        log_w = torch.as_tensor(self._log_weights(label, len(x)), device=x.device)
        return log_w - 0.5 * (mahalanobis + logdet + 2 * LOG_2PI), diff, precision

    def _log_weights(self, label, n: int) -> np.ndarray:
        """log w_k / Σ_{k ∈ y} w_k, (1, K) for one label or (N, K) for one per row (−inf off the class)."""
        labels = np.asarray([-1] if label is None else torch.as_tensor(label).cpu().numpy()).reshape(-1)
        rows = []
        for y in np.unique(labels):
            w = self._class_weights(y)
            with np.errstate(divide="ignore"):
                rows.append((y, np.log(w / w.sum())))
        if len(rows) == 1:
            return rows[0][1][None]
        table = dict(rows)
        return np.stack([table[y] for y in np.broadcast_to(labels, (n,))])


def isotropic(means: np.ndarray, std: float, labels: np.ndarray | None = None, names=None) -> GaussianMixture:
    """Equal-weight components N(μ_k, std² I)."""
    k = len(means)
    covs = np.broadcast_to(std**2 * np.eye(2), (k, 2, 2)).copy()
    return GaussianMixture(np.asarray(means, dtype=np.float64), covs, np.full(k, 1.0 / k), labels, names)


def gmm8(std: float) -> GaussianMixture:
    """Eight N(μ_k, std² I), μ_k = 2 (cos kπ/4, sin kπ/4), equal weights; class k is component k."""
    angles = np.arange(8) * math.pi / 4
    means = 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return isotropic(means, std, np.arange(8), tuple(f"{45 * i}°" for i in range(8)))


def grid25(std: float) -> GaussianMixture:
    """A 5 × 5 grid of N(μ, std² I), μ ∈ {−2, −1, 0, 1, 2}², equal weights, unlabelled."""
    g = np.arange(-2.0, 3.0)
    return isotropic(np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2), std)


TREE_DEPTH = 5  # branchings of each class's tree
TREE_PIECES = 3  # Gaussians along each branch
TREE_SPREAD = math.radians(28)  # each child branch turns this far from its parent's direction
TREE_SHRINK = 0.72  # a child branch is this much shorter and thinner than its parent
TREE_ROOTS = {"left": math.radians(115), "right": math.radians(65)}  # each class's trunk direction


def tree(std: float) -> GaussianMixture:
    """Two classes, each a binary tree grown from the origin (the toy of Karras et al. 2024, Autoguidance, Fig. 1):
    a trunk of length 1.6 in the class's direction, each branch splitting into two turned ±``TREE_SPREAD``,
    ``TREE_DEPTH`` levels; each branch is ``TREE_PIECES`` Gaussians elongated along it (standard deviation half a
    piece's length along, ``std`` × shrink^depth across) with weight ∝ length. The classes share their root."""
    means, covs, weights, labels = [], [], [], []
    for label, root in enumerate(TREE_ROOTS.values()):
        branches = [(np.zeros(2), root, 1.6, std)]
        for _ in range(TREE_DEPTH):
            children = []
            for start, angle, length, width in branches:
                direction = np.array([math.cos(angle), math.sin(angle)])
                piece = length / TREE_PIECES
                rotation = np.array([direction, [-direction[1], direction[0]]]).T
                for j in range(TREE_PIECES):
                    means.append(start + (j + 0.5) * piece * direction)
                    covs.append(rotation @ np.diag([(piece / 2) ** 2, width**2]) @ rotation.T)
                    weights.append(piece)
                    labels.append(label)
                end = start + length * direction
                children += [(end, angle + turn, length * TREE_SHRINK, width * TREE_SHRINK)
                             for turn in (-TREE_SPREAD, TREE_SPREAD)]  # fmt: skip
            branches = children
    w = np.asarray(weights)
    return GaussianMixture(np.asarray(means), np.asarray(covs), w / w.sum(), np.asarray(labels),
                           tuple(TREE_ROOTS))  # fmt: skip


KNOWN_DENSITIES = {"gmm8": gmm8, "grid25": grid25, "tree": tree}  # data set name → mixture of its ``noise``


def known_density(name: str, noise: float | None) -> GaussianMixture | None:
    """The mixture the built-in set ``name`` draws from at ``noise`` (its components' spread), or None when the set
    has no known density (or ``noise`` is 0: the points sit on the means, a density of Dirac spikes)."""
    if name not in KNOWN_DENSITIES or not noise:
        return None
    return KNOWN_DENSITIES[name](float(noise))
