"""Each objective's regression, written once: what the network sees, what it outputs and what that is fitted to.
Training takes the mean of ``LossTerms.per_sample`` over a batch; the training view's formula panel shows the
terms of one sample.

    ddpm   x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε       F(x_t, t) → ε, x₀ or v (``parametrization.ddpm_target``)
    ncsn   x = x₀ + σ_i ε                     σ_i s(x, σ_i) → −ε       (denoising score matching, σ²-weighted)
    edm    x = x₀ + σ ε, ln σ ~ N(P_mean, P_std²)   F(c_in x; c_noise) → (x₀ − c_skip x)/c_out
    flow   x_t = (1 − t) x₀' + t x₁           v(x_t, t) → x₁ − x₀'     (x₀' the source point, x₁ the data)

The loss of a sample is the mean over the two coordinates of (output − target)².
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffvis.core.edm import EDM
from diffvis.core.flow import interpolate, target_velocity
from diffvis.core.forward import q_sample
from diffvis.core.parametrization import ddpm_target, edm_preconditioning

N_BUCKETS = 10  # the loss is reported per bucket of the conditions: tenths of the T timesteps, L levels or [0, 1)


@dataclass(frozen=True)
class LossTables:
    """What an objective's loss needs besides the model: the DDPM ᾱ table (T,) or the NCSN σ ladder (L,) as
    tensors, the DDPM prediction, EDM's σ_data and its ln σ distribution."""

    objective: str
    abar: torch.Tensor | None = None
    sigmas: torch.Tensor | None = None
    prediction: str | None = None
    sigma_data: float = 1.0
    p_mean: float = 0.0
    p_std: float = 1.0

    @classmethod
    def of(cls, model_config, train_config, schedule, ladder, device) -> LossTables:
        """The tables of a run's (or a trainer's) configuration, on ``device``."""
        abar, sigmas = (torch.tensor(a, dtype=torch.float32, device=device) for a in (schedule.alphas_cumprod,
                                                                                      ladder.sigmas))  # fmt: skip
        return cls(model_config.objective, abar, sigmas, model_config.prediction, model_config.sigma_data,
                   train_config.p_mean, train_config.p_std)  # fmt: skip

    def edm_sigma(self, u: torch.Tensor) -> torch.Tensor:
        """σ = exp(P_mean + P_std Φ⁻¹(u)) for quantiles u (B,): (B, 1)."""
        return torch.exp(self.p_mean + self.p_std * torch.special.ndtri(u.clamp(1e-6, 1 - 1e-6)))[:, None]


@dataclass(frozen=True)
class LossTerms:
    """The network's ``inputs`` (B, 2) at its ``condition`` (B,: the timestep, σ or t it was given), its
    ``output`` and the ``target`` it is fitted to (B, 2)."""

    inputs: torch.Tensor
    condition: torch.Tensor
    output: torch.Tensor
    target: torch.Tensor

    @property
    def per_sample(self) -> torch.Tensor:
        """(B,) the mean over the coordinates of (output − target)²."""
        return (self.output - self.target).square().mean(1)


def loss_terms(tables: LossTables, model, x0: torch.Tensor, k: torch.Tensor, labels=None, *,
               noise: torch.Tensor | None = None, source: torch.Tensor | None = None) -> LossTerms:  # fmt: skip
    """The terms of data points ``x0`` (B, 2) at condition indices ``k`` (B,: timesteps, σ levels, EDM's
    quantiles of ln σ, or a flow's times) with ``noise`` ε (B, 2), or a flow's ``source`` points (see the module)."""
    if tables.objective == "flow":
        x_t = interpolate(source, x0, k)
        return LossTerms(x_t, k, model(x_t, k, labels), target_velocity(source, x0))
    if tables.objective == "ddpm":
        abar = tables.abar[k, None]
        x_t = q_sample(x0, abar, noise)
        return LossTerms(x_t, k, model(x_t, k, labels), ddpm_target(tables.prediction, x0, noise, abar))
    if tables.objective == EDM:
        sigma = tables.edm_sigma(k)
        x = x0 + sigma * noise
        target = edm_preconditioning(tables.sigma_data).target(x, sigma, x0)
        return LossTerms(x, sigma[:, 0], model.raw(x, sigma, labels), target)
    sigma = tables.sigmas[k]
    x = x0 + sigma[:, None] * noise
    return LossTerms(x, sigma, sigma[:, None] * model(x, sigma, labels), -noise)


def bucket_of(k: torch.Tensor, count: int) -> torch.Tensor:
    """The bucket 0 … N_BUCKETS − 1 of each condition index: its share of ``count`` discrete conditions (timesteps,
    levels), or of [0, 1) for a continuous one (``count`` 0: a flow's t, EDM's quantile of ln σ)."""
    if count == 0:
        return (k * N_BUCKETS).long().clamp_(0, N_BUCKETS - 1)
    return k * N_BUCKETS // count
