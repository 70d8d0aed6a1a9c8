"""What a network predicts, and how each prediction becomes every other one: written once.

One denoiser parametrisation (Karras et al. 2022, "EDM", Table 1). In σ-space a noisy point is x = y + σ n (y a
data point, n ~ N(0, I)); a DDPM point is x_t = √ᾱ x with σ = √((1 − ᾱ)/ᾱ), so √ᾱ = 1/√(1 + σ²). Every network
F is read as a denoiser

    D(x; σ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x; c_noise(σ)),

and its preconditioning (c_skip, c_out, c_in) says which quantity F predicts:

    prediction        c_skip            c_out               c_in             F
    eps   (DDPM)      1                 −σ                  1/√(1 + σ²)      ε̂
    x0    (DDPM)      0                 1                   1/√(1 + σ²)      x̂₀
    v     (DDPM)      1/(1 + σ²)        −σ/√(1 + σ²)        1/√(1 + σ²)      v̂ = √ᾱ ε − √(1 − ᾱ) x₀ (Salimans & Ho 2022)
    score (NCSN)      1                 σ                   1                σ ∇ log p_σ (our ScoreNetwork's f)
    edm               σ_d²/(σ² + σ_d²)  σ σ_d/√(σ² + σ_d²)  1/√(σ² + σ_d²)   trained on (y − c_skip x)/c_out

with c_noise: the timestep t(σ) (DDPM), ln σ (NCSN), ¼ ln σ (EDM). From D, at (x, σ):

    ε̂ = (x − D)/σ,    ∇ log p_σ(x) = (D − x)/σ²,    x̂₀ = D,    and F = (D − c_skip x)/c_out for any row above.

The older per-pair forms below (x0_from_eps, …) are the same identities written for the samplers, in the DDPM
variables x_t and ᾱ or the NCSN x and σ; ``out`` lets a sampler write straight into its trajectory buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from diffvis.errors import ConfigError

PREDICTIONS = ("eps", "x0", "v")  # what a DDPM network may predict (``--prediction``)
PREDICTION_TITLES = {"eps": "ε (noise)", "x0": "x₀ (clean point)", "v": "v (velocity, Salimans & Ho 2022)"}


@dataclass(frozen=True)
class Preconditioning:
    """One row of the table above: c_skip, c_out, c_in as functions of σ (a float or a tensor)."""

    name: str
    c_skip: Callable
    c_out: Callable
    c_in: Callable

    def denoise(self, x, sigma, f):
        """D(x; σ) = c_skip x + c_out F."""
        return self.c_skip(sigma) * x + self.c_out(sigma) * f

    def target(self, x, sigma, d):
        """The F whose denoiser gives ``d`` at (x, σ): (D − c_skip x)/c_out."""
        return (d - self.c_skip(sigma) * x) / self.c_out(sigma)


def _vp_in(s):
    return (1 + s * s) ** -0.5


PRECONDITIONINGS = {
    "eps": Preconditioning("eps", lambda s: 1.0 + 0 * s, lambda s: -s, _vp_in),
    "x0": Preconditioning("x0", lambda s: 0.0 * s, lambda s: 1.0 + 0 * s, _vp_in),
    "v": Preconditioning("v", lambda s: 1 / (1 + s * s), lambda s: -s * _vp_in(s), _vp_in),
    "score": Preconditioning("score", lambda s: 1.0 + 0 * s, lambda s: s, lambda s: 1.0 + 0 * s),
}


def edm_preconditioning(sigma_data: float) -> Preconditioning:
    """EDM's row for data of standard deviation σ_d (Karras et al. 2022, Table 1 and eq. 7)."""
    d2 = sigma_data * sigma_data
    return Preconditioning("edm", lambda s: d2 / (s * s + d2), lambda s: s * sigma_data * (s * s + d2) ** -0.5,
                           lambda s: (s * s + d2) ** -0.5)  # fmt: skip


def edm_weight(sigma, sigma_data: float):
    """λ(σ) = (σ² + σ_d²)/(σ σ_d)² = 1/c_out²: the EDM loss λ ‖D − y‖² is ‖F − target‖² with weight 1."""
    return (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data) ** 2


def eps_from_denoised(x, d, sigma):
    return (x - d) / sigma


def score_from_denoised(x, d, sigma):
    return (d - x) / (sigma * sigma)


def ddpm_target(prediction: str, x0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """What a DDPM network of ``prediction`` is regressed on for x_t = √ᾱ x₀ + √(1 − ᾱ) ε (ᾱ of shape (B, 1)):
    ε, x₀, or v = √ᾱ ε − √(1 − ᾱ) x₀."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0
    raise ConfigError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")


def eps_coefficients(prediction: str, abar):
    """(a, b) with ε̂ = a x_t + b F for a DDPM network predicting F: from ε̂ = (x − D)/σ with x = x_t/c_in
    (eps: (0, 1); x0: (1/√(1 − ᾱ), −√(ᾱ/(1 − ᾱ))); v: (√(1 − ᾱ), √ᾱ))."""
    sigma = ((1 - abar) / abar) ** 0.5
    p = PRECONDITIONINGS[prediction]
    return (1 - p.c_skip(sigma)) / (sigma * p.c_in(sigma)), -p.c_out(sigma) / sigma


class EpsilonView(nn.Module):
    """A DDPM network that predicts x₀ or v, seen as the ε-predictor every DDPM sampler drives:
    model(x_t, t[, label]) → ε̂ = a(t) x_t + b(t) F(x_t, t) (``eps_coefficients``), t one timestep for every
    point, whole or fractional (``Schedule.abar_at``)."""

    def __init__(self, net: nn.Module, schedule, prediction: str):
        super().__init__()
        self.net, self.schedule, self.prediction = net, schedule, prediction

    def forward(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        a, b = eps_coefficients(self.prediction, self.schedule.abar_at(float(t)))
        return self.net(x, t, label).mul_(float(b)).add_(x, alpha=float(a))  # in place: one (N, 2) less a step


def as_eps_model(net: nn.Module, schedule, prediction: str) -> nn.Module:
    """The ε-predictor of a DDPM network of ``prediction`` (the network itself for 'eps')."""
    return net if prediction == "eps" else EpsilonView(net, schedule, prediction)


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, abar: float, out: torch.Tensor | None = None) -> torch.Tensor:
    return torch.sub(x_t, eps, alpha=(1 - abar) ** 0.5, out=out).div_(abar**0.5)


def score_from_eps(eps: torch.Tensor, abar) -> torch.Tensor:
    return -eps / (1 - abar) ** 0.5


def eps_from_score(score: torch.Tensor, abar) -> torch.Tensor:
    return -((1 - abar) ** 0.5) * score


def x0_from_score(x: torch.Tensor, score: torch.Tensor, sigma: float, out: torch.Tensor | None = None) -> torch.Tensor:
    return torch.add(x, score, alpha=sigma**2, out=out)
