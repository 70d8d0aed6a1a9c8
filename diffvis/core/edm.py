"""EDM (Karras et al. 2022): the σ range its models are trained and sampled over, and its stochastic sampler.

An EDM model is a variance-exploding one, like NCSN: x = y + σ n, its network preconditioned as
``parametrization.edm_preconditioning`` says, trained at ln σ ~ N(P_mean, P_std²) and sampled from
x = σ_max · N(0, I) down the ρ-spaced levels of ``schedules.karras_sigmas``. Its model is callable as a score
model(x, σ) → ∇ log p_σ(x), so that every sampler of the variance-exploding ODE drives it; the denoiser is
D(x; σ) = x + σ² ∇ log p_σ(x).

Algorithm 2 (stochastic sampler), levels t_0 > … > t_{N−1} > t_N = 0, for i = 0 … N−1:

    γ_i = min(S_churn/N, √2 − 1) if S_tmin ≤ t_i ≤ S_tmax else 0;   t̂ = t_i (1 + γ_i)
    x̂ = x_i + √(t̂² − t_i²) S_noise z                                   (churn: add noise, raise the level)
    d = (x̂ − D(x̂; t̂))/t̂;   x_{i+1} = x̂ + (t_{i+1} − t̂) d               (Euler)
    if t_{i+1} ≠ 0:  d' = (x_{i+1} − D(x_{i+1}; t_{i+1}))/t_{i+1};  x_{i+1} = x̂ + (t_{i+1} − t̂)(d + d')/2  (Heun)

With S_churn = 0 it is Algorithm 1, the deterministic Heun solve (2N − 1 evaluations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.parametrization import x0_from_score
from diffvis.core.schedules import SigmaLadder, karras_sigmas
from diffvis.core.trajectory import Callback, Recorder, Trajectory, check_init

EDM = "edm"  # the objective whose models this module samples (``registry.OBJECTIVES``)
SIGMA_MAX, SIGMA_MIN, RHO = 80.0, 0.002, 7.0  # the sampling range of Karras et al. 2022, Table 1
P_MEAN, P_STD = -1.2, 1.2  # ln σ ~ N(P_mean, P_std²) during training (Karras et al. 2022, Table 1)
S_TMAX = 1000.0  # S_tmax's default: above every ladder's σ_max, so churn (when on) acts at every level (EDM: ∞)
NOISE_EMBEDDING = 100.0  # the network embeds 100 · c_noise = 25 ln σ (a range like a DDPM timestep's tenth)


def edm_ladder(levels: int) -> SigmaLadder:
    """The levels an EDM run is sampled over: ``levels`` ρ-spaced from σ_max to σ_min (an ODE solver spaces its
    own S steps between the same ends alike)."""
    return SigmaLadder.karras(SIGMA_MAX, SIGMA_MIN, levels, RHO)


def churn(sigma: float, steps: int, s_churn: float, s_tmin: float, s_tmax: float) -> float:
    """γ_i of Algorithm 2."""
    return min(s_churn / steps, math.sqrt(2) - 1) if s_tmin <= sigma <= s_tmax else 0.0


@dataclass(frozen=True)
class EdmStep:
    """What one step of Algorithm 2 computed: the churned point x̂ at t̂, D₀ = D(x̂; t̂), the Euler point x' at
    t_{i+1}, D₁ = D(x'; t_{i+1}) (None at t_{i+1} = 0, where the step stays Euler) and x_{i+1}."""

    x_hat: torch.Tensor
    d0: torch.Tensor
    x_euler: torch.Tensor
    d1: torch.Tensor | None
    x_next: torch.Tensor


def edm_step(model, x: torch.Tensor, z: torch.Tensor | None, t: float, t_hat: float, t_next: float, s_noise: float, *,
             report=None, x0_out: torch.Tensor | None = None, out: torch.Tensor | None = None) -> EdmStep:  # fmt: skip
    """Step i of Algorithm 2 from x_i at t_i (see the module), z the churn's noise (None when t̂ = t_i); ``report``
    is called once D₀ is written (into ``x0_out``), x_{i+1} goes into ``out``."""
    x_hat = x if z is None else x + z * (math.sqrt(t_hat**2 - t**2) * s_noise)
    d0 = x0_from_score(x_hat, model(x_hat, t_hat), t_hat, out=x0_out)
    if report is not None:
        report()
    x_euler = torch.lerp(x_hat, d0, 1 - t_next / t_hat)  # x̂ + (t' − t̂)(x̂ − D₀)/t̂
    if t_next == 0:
        return EdmStep(x_hat, d0, x_euler, None, x_euler if out is None else out.copy_(x_euler))
    d1 = x0_from_score(x_euler, model(x_euler, t_next), t_next)
    slope = (x_hat - d0).div_(t_hat).add_((x_euler - d1).div_(t_next))  # (x̂ − D₀)/t̂ + (x' − D₁)/t'
    return EdmStep(x_hat, d0, x_euler, d1, torch.add(x_hat, slope, alpha=(t_next - t_hat) / 2, out=out))


@torch.inference_mode()
def sample_edm(
    model,
    x_T: torch.Tensor,
    ladder: SigmaLadder,
    *,
    steps: int = 18,
    rho: float = RHO,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = S_TMAX,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    normaliser: Normaliser | None = None,
    start: int | None = None,
) -> Trajectory:
    """Algorithm 2 (see the module) over N = ``steps`` levels ρ-spaced between the ladder's ends, from
    x_0 = t_0 · x_T. Frame i holds x_i at t_i (the last, t_N = 0); its x̂₀ is D(x̂; t̂), the estimate the step from
    it used. With ``start`` = k, x_T is the points of frame k and the steps before it are skipped."""
    check_init(x_T)
    sigmas = np.append(karras_sigmas(float(ladder.sigmas[0]), float(ladder.sigmas[-1]), steps, rho), 0.0)
    rec = Recorder(float(sigmas[0]) * x_T if start is None else x_T, sigmas, callback, start)
    model = rec.counted(model)
    for i in range(rec.start, steps):
        t, t_next = float(sigmas[i]), float(sigmas[i + 1])
        t_hat = t * (1 + churn(t, steps, s_churn, s_tmin, s_tmax))
        x = rec.frames[i]
        z = rec.noise(i, x, generator) if t_hat > t else None
        edm_step(model, x, z, t, t_hat, t_next, s_noise, report=lambda i=i: rec.report(i), x0_out=rec.x0_hat[i],
                 out=rec.frames[i + 1])  # fmt: skip
        rec.arrived(i + 1)
    rec.x0_hat[steps] = rec.frames[steps]
    rec.report(steps)
    params = {"steps": steps, "rho": rho, "s_churn": s_churn, "s_tmin": s_tmin, "s_tmax": s_tmax, "s_noise": s_noise}
    return rec.finish("edm", params, normaliser, "sigma")
