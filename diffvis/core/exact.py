"""The exact denoiser and score of an empirical point set.

For q(x) = mean_i N(x; a·x0_i, s² I) the score is ∇ log q(x) = Σ_i w_i(x) (a·x0_i − x) / s², with
w_i(x) = softmax_i(−‖x − a·x0_i‖² / 2s²). The DDPM marginal q_t has a = √ᾱ_t, s² = 1 − ᾱ_t, so the optimal
noise prediction is E[ε | x_t] = −√(1 − ᾱ_t) ∇ log q_t(x_t); the NCSN marginal has a = 1, s = σ. A sampler
driven by these models reaches what a perfect network would: it reproduces the training points.

For flow matching with the linear interpolant x_t = (1 − t) x₀ + t x₁ from a N(0, I) source (``diffvis.core.flow``)
the marginal of x_t is the same mixture with a = t, s = 1 − t; by Tweedie t E[x₁ | x_t = x] = x + s² ∇ log q_t(x),
so the exact velocity, the posterior mean of the conditional velocities (x₁ − x)/(1 − t), is
v(x, t) = (E[x₁ | x] − x)/(1 − t) = (x + s ∇ log q_t(x))/t, and at t = 0 (every weight equal) v = mean_i x0_i − x.

Given class labels, the exact conditional model of class y is the same mixture restricted to the points of
class y, q_t(x | y) = mean_{i: y_i = y} N(x; a·x0_i, s² I); the label ∅ (``NULL_LABEL``) keeps every point.

The exact model of a known distribution (a ``GaussianMixture``: ``gmm8``, ``grid25``, ``tree``) is the same
three models with q_t that mixture noised, p_a,s (``diffvis.core.gaussian_mixture``): what a perfect network
trained on unlimited fresh data would learn, where the point set's model is what one trained on those points
alone would.
"""

from __future__ import annotations

import numpy as np
import torch

from diffvis.core.classes import NULL_LABEL
from diffvis.core.gaussian_mixture import GaussianMixture
from diffvis.core.mixture import PointIndex, default_tol, mixture_score_of, planned_price
from diffvis.core.schedules import Schedule
from diffvis.errors import ConfigError


def mixture_score(x: torch.Tensor, centres: torch.Tensor, s: float) -> torch.Tensor:
    """∇ log mean_i N(x; centres_i, s² I) for x (N, 2) and centres (M, 2), exact to float precision in bounded
    memory (see ``diffvis.core.mixture``)."""
    if len(centres) == 0:
        return torch.zeros_like(x)
    return mixture_score_of(x, PointIndex.build(centres.to(x)), 1.0, s)


def class_mixture_score(x: torch.Tensor, centres: torch.Tensor, s: float, centre_labels, label) -> torch.Tensor:
    """The score of each row of x under the mixture of the centres of its label (a scalar or one per row;
    None or ∅: all centres). ``centre_labels`` (M,) are the centres' dense class ids."""
    return per_class(x, centre_labels, label, lambda xs, y: mixture_score(xs, _subset(centres, centre_labels, y), s))


def per_class(x: torch.Tensor, centre_labels, label, score) -> torch.Tensor:
    """``score(rows of x, class y)`` for each class y among the labels of the rows (y None: no label given)."""
    if label is None:
        return score(x, None)
    if centre_labels is None:
        raise ConfigError("the exact model has no class labels; it cannot be conditioned")
    label = torch.as_tensor(label, dtype=torch.long, device=x.device).expand(len(x))
    out = torch.empty_like(x)
    for y in label.unique().tolist():
        rows = label == y
        out[rows] = score(x[rows], y)
    return out


def _subset(centres: torch.Tensor, centre_labels, y) -> torch.Tensor:
    """The centres of class y (None or ∅: all of them)."""
    if y is None or y == NULL_LABEL:
        return centres
    return centres[centre_labels.to(centres.device) == y]


class ExactModel:
    """The exact model of the empirical set ``points`` (standardised, (M, 2)), with their dense class ids
    ``labels`` (M,) when conditioning on classes; or, given ``mixture`` (standardised), of that distribution
    (``points`` are then its means). The sorted index of each class's points is built on first use, per device
    and float type."""

    def __init__(self, points: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor | None = None,
                 mixture: GaussianMixture | None = None):  # fmt: skip
        self.mixture = mixture
        if mixture is not None:
            points, labels = mixture.means, mixture.labels
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        self._indexes: dict = {}

    def index(self, x: torch.Tensor, y) -> PointIndex | None:
        """The index of the points of class y (None or ∅: all) on x's device and float type (None if empty)."""
        key = (x.device, x.dtype, None if y == NULL_LABEL else y)
        if key not in self._indexes:
            subset = _subset(self.points, self.labels, y).to(x)
            self._indexes[key] = PointIndex.build(subset) if len(subset) else None
        return self._indexes[key]

    def score(self, x: torch.Tensor, a: float, s: float, label) -> torch.Tensor:
        """∇ log mean_{i: y_i = y} N(x; a·x0_i, s² I) for the label of each row of x (of a mixture: ∇ log p_a,s)."""
        if self.mixture is not None:
            return self.mixture.score(x, a, s, label)

        def of_class(xs: torch.Tensor, y) -> torch.Tensor:
            index = self.index(xs, y)
            return torch.zeros_like(xs) if index is None else mixture_score_of(xs, index, a, s)

        return per_class(x, self.labels, label, of_class)

    def price(self, n: int, a: float, s: float) -> float:
        """The predicted price (in dense pairs, see ``diffvis.core.mixture``) of scoring n queries at (a, s):
        planned for 256 noised points a·x0_i + s·ε standing in for the queries, as a sampler's particles at that
        noise level are spread like them. A mixture's score is dense: n × K pairs."""
        if self.mixture is not None:
            return float(n * len(self.points))
        g = torch.Generator().manual_seed(0)
        pick = torch.randint(len(self.points), (256,), generator=g)
        proxy = a * self.points[pick.to(self.points.device)] + s * torch.randn(256, 2, generator=g).to(self.points)
        index = self.index(proxy, None)
        return planned_price(proxy, index.scaled(a), s, default_tol(proxy.dtype), n)


class ExactNoisePredictor(ExactModel):
    """E[ε | x_t, y] = −√(1 − ᾱ_t) ∇ log q_t(x_t | y); callable as model(x, t[, label]), t a timestep, whole or
    (for an ODE solver's stage between timesteps) fractional: ``Schedule.abar_at``."""

    def __init__(self, points, schedule: Schedule, labels=None, mixture: GaussianMixture | None = None):
        super().__init__(points, labels, mixture)
        self.schedule = schedule

    def __call__(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        abar = self.schedule.abar_at(float(t))
        return -((1 - abar) ** 0.5) * self.score(x, abar**0.5, (1 - abar) ** 0.5, label)

    def work(self, n: int, t) -> float:
        """The predicted price of ``self(x, t)`` for n points (see ``ExactModel.price``)."""
        abar = self.schedule.abar_at(float(t))
        return self.price(n, abar**0.5, (1 - abar) ** 0.5)


class ExactScore(ExactModel):
    """∇ log mean_{i: y_i = y} N(x; x0_i, σ² I); callable as model(x, σ[, label])."""

    def __call__(self, x: torch.Tensor, sigma, label=None) -> torch.Tensor:
        return self.score(x, 1.0, float(sigma), label)

    def work(self, n: int, sigma) -> float:
        """The predicted price of ``self(x, σ)`` for n points (see ``ExactModel.price``)."""
        return self.price(n, 1.0, float(sigma))


class ExactVelocity(ExactModel):
    """v(x, t) = E[x₁ − x₀ | x_t = x] for the linear interpolant from N(0, I) to the points (class y's points
    given a label); callable as model(x, t[, label]) with t in [0, 1]. Computed in float64: (x + s ∇ log q_t)/t
    loses about ulp(x)/t to cancellation, which float32 would make visible at small t. v is singular at t = 1
    (every point pulls its neighbourhood onto itself); there it is taken at t = 1 − ``T_END_GAP``."""

    T_END_GAP = 1e-4

    def __call__(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        t = min(float(t), 1.0 - self.T_END_GAP)
        x64 = x.double()
        if t <= 0.0:
            v = per_class(x64, self.labels, label, lambda xs, y: self._mean(xs, y) - xs)
        else:
            v = (x64 + (1.0 - t) * self.score(x64, t, 1.0 - t, label)) / t
        return v.to(x.dtype)

    def _mean(self, x: torch.Tensor, y) -> torch.Tensor:
        if self.mixture is not None:
            return torch.as_tensor(self.mixture.mean(y)).to(x)
        points = _subset(self.points, self.labels, y).to(x)
        return points.mean(0) if len(points) else x

    def work(self, n: int, t) -> float:
        """The predicted price of ``self(x, t)`` for n points (see ``ExactModel.price``)."""
        t = min(max(float(t), self.T_END_GAP), 1.0 - self.T_END_GAP)
        return self.price(n, t, 1.0 - t)


def exact_model(points, objective: str, schedule: Schedule, labels=None,
                mixture: GaussianMixture | None = None) -> ExactModel:  # fmt: skip
    """The exact model of standardised ``points`` (or of the standardised ``mixture``) that a sampler of
    ``objective`` drives: the ε-predictor for 'ddpm', the score for 'ncsn' and 'edm', the velocity for 'flow'."""
    if objective == "ddpm":
        return ExactNoisePredictor(points, schedule, labels, mixture)
    return (ExactVelocity if objective == "flow" else ExactScore)(points, labels, mixture)
