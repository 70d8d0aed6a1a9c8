"""Conversions between the three things a network may predict, written once.

For x_t = √ᾱ x_0 + √(1 − ᾱ) ε (DDPM) and x = x_0 + σ z (NCSN)::

    x̂_0 = (x_t − √(1 − ᾱ) ε̂) / √ᾱ          ε̂ = (x_t − √ᾱ x̂_0) / √(1 − ᾱ)
    ∇ log q_t(x_t) = −ε̂ / √(1 − ᾱ)          ε̂ = −√(1 − ᾱ) · score
    x̂_0 = x + σ² · score  (Tweedie)

``abar`` and ``sigma`` are Python floats (one noise level for all points). ``out`` lets a sampler write the
result straight into its trajectory buffer.
"""

from __future__ import annotations

import torch


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, abar: float, out: torch.Tensor | None = None) -> torch.Tensor:
    return torch.sub(x_t, eps, alpha=(1 - abar) ** 0.5, out=out).div_(abar**0.5)


def score_from_eps(eps: torch.Tensor, abar) -> torch.Tensor:
    return -eps / (1 - abar) ** 0.5


def eps_from_score(score: torch.Tensor, abar) -> torch.Tensor:
    return -((1 - abar) ** 0.5) * score


def x0_from_score(x: torch.Tensor, score: torch.Tensor, sigma: float, out: torch.Tensor | None = None) -> torch.Tensor:
    return torch.add(x, score, alpha=sigma**2, out=out)
