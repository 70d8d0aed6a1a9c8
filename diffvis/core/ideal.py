"""The exact (ideal) denoiser and score of an empirical point set.

For q(x) = mean_i N(x; a·x0_i, s² I) the score is ∇ log q(x) = Σ_i w_i(x) (a·x0_i − x) / s², with
w_i(x) = softmax_i(−‖x − a·x0_i‖² / 2s²). The DDPM marginal q_t has a = √ᾱ_t, s² = 1 − ᾱ_t, so the optimal
noise prediction is E[ε | x_t] = −√(1 − ᾱ_t) ∇ log q_t(x_t); the NCSN marginal has a = 1, s = σ. A sampler
driven by these models reaches what a perfect network would: it reproduces the training points.
"""

from __future__ import annotations

import numpy as np
import torch

from diffvis.core.schedules import Schedule

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


class IdealNoisePredictor:
    """E[ε | x_t] for the empirical set ``points`` (standardised, (M, 2)); callable as model(x, t)."""

    def __init__(self, points: np.ndarray | torch.Tensor, schedule: Schedule):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.schedule = schedule

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        abar = float(self.schedule.alphas_cumprod[int(t)])
        score = mixture_score(x, abar**0.5 * self.points.to(x), (1 - abar) ** 0.5)
        return -((1 - abar) ** 0.5) * score


class IdealScore:
    """∇ log mean_i N(x; x0_i, σ² I) for the empirical set ``points``; callable as model(x, σ)."""

    def __init__(self, points: np.ndarray | torch.Tensor):
        self.points = torch.as_tensor(points, dtype=torch.float32)

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return mixture_score(x, self.points.to(x), float(sigma))
