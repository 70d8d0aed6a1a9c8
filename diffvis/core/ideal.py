"""The exact (ideal) denoiser and score of an empirical point set.

For q(x) = mean_i N(x; a·x0_i, s² I) the score is ∇ log q(x) = Σ_i w_i(x) (a·x0_i − x) / s², with
w_i(x) = softmax_i(−‖x − a·x0_i‖² / 2s²). The DDPM marginal q_t has a = √ᾱ_t, s² = 1 − ᾱ_t, so the optimal
noise prediction is E[ε | x_t] = −√(1 − ᾱ_t) ∇ log q_t(x_t); the NCSN marginal has a = 1, s = σ. A sampler
driven by these models reaches what a perfect network would: it reproduces the training points.

Given class labels, the exact conditional model of class y is the same mixture restricted to the points of
class y, q_t(x | y) = mean_{i: y_i = y} N(x; a·x0_i, s² I); the label ∅ (``NULL_LABEL``) keeps every point.
"""

from __future__ import annotations

import numpy as np
import torch

from diffvis.core.classes import NULL_LABEL
from diffvis.core.schedules import Schedule
from diffvis.errors import ConfigError

_CHUNK = 4096


def mixture_score(x: torch.Tensor, centres: torch.Tensor, s: float) -> torch.Tensor:
    """∇ log mean_i N(x; centres_i, s² I) for x (N, 2) and centres (M, 2); evaluated in row chunks."""
    out = torch.empty_like(x)
    for start in range(0, len(x), _CHUNK):
        xs = x[start : start + _CHUNK]
        diff = centres[None, :, :] - xs[:, None, :]  # (n, M, 2)
        w = torch.softmax(-(diff**2).sum(-1) / (2 * s * s), dim=1)  # (n, M)
        out[start : start + _CHUNK] = torch.einsum("nm,nmd->nd", w, diff) / (s * s)
    return out


def class_mixture_score(x: torch.Tensor, centres: torch.Tensor, s: float, centre_labels, label) -> torch.Tensor:
    """The score of each row of x under the mixture of the centres of its label (a scalar or one per row;
    None or ∅: all centres). ``centre_labels`` (M,) are the centres' dense class ids."""
    if label is None:
        return mixture_score(x, centres, s)
    if centre_labels is None:
        raise ConfigError("the exact model has no class labels; it cannot be conditioned")
    label = torch.as_tensor(label, dtype=torch.long, device=x.device).expand(len(x))
    out = torch.empty_like(x)
    for y in label.unique().tolist():
        rows = label == y
        subset = centres if y == NULL_LABEL else centres[centre_labels.to(centres.device) == y]
        out[rows] = mixture_score(x[rows], subset, s)
    return out


class IdealModel:
    """The exact model of the empirical set ``points`` (standardised, (M, 2)), with their dense class ids
    ``labels`` (M,) when conditioning on classes."""

    def __init__(self, points: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor | None = None):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)

    def score(self, x: torch.Tensor, a: float, s: float, label) -> torch.Tensor:
        return class_mixture_score(x, a * self.points.to(x), s, self.labels, label)


class IdealNoisePredictor(IdealModel):
    """E[ε | x_t, y] = −√(1 − ᾱ_t) ∇ log q_t(x_t | y); callable as model(x, t[, label])."""

    def __init__(self, points, schedule: Schedule, labels=None):
        super().__init__(points, labels)
        self.schedule = schedule

    def __call__(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        abar = float(self.schedule.alphas_cumprod[int(t)])
        return -((1 - abar) ** 0.5) * self.score(x, abar**0.5, (1 - abar) ** 0.5, label)


class IdealScore(IdealModel):
    """∇ log mean_{i: y_i = y} N(x; x0_i, σ² I); callable as model(x, σ[, label])."""

    def __call__(self, x: torch.Tensor, sigma, label=None) -> torch.Tensor:
        return self.score(x, 1.0, float(sigma), label)
