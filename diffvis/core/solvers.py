"""Probability-flow ODE solvers for an ε-model: Euler, Heun (Karras et al. 2022, Algorithm 1 without noise) and
DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2).

In Karras et al.'s variables, x̃ = x_t / √ᾱ_t and σ_t = √((1 − ᾱ_t) / ᾱ_t), the probability-flow ODE of DDPM is

    dx̃/dσ = ε̂(x_t, t),   with the denoiser x̂₀ = x̃ − σ ε̂.

The solvers step between the S timesteps that DDIM would visit (same spacings) and end at σ = 0. Frames are
recorded as x_t = √ᾱ_t x̃, like every other sampler's, so all start from the same x_T and compare frame by frame.
Euler on this ODE is DDIM with η = 0 (Song, Meng & Ermon 2021, eq. 14); Heun and DPM-Solver++(2M) are of second
order. Heun spends two evaluations per step (one on the last, which ends at σ = 0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.parametrization import x0_from_eps
from diffvis.core.schedules import Schedule, ddim_timesteps
from diffvis.core.trajectory import Callback, Recorder, Trajectory, check_init

# step(k, x̃, ε̂, x̂₀, σ_k, σ_{k+1}) → the next x̃; ``evaluate(x̃, k)`` gives ε̂ at frame k for a second stage
Step = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]


def karras_sigmas(schedule: Schedule, ts: np.ndarray) -> np.ndarray:
    """σ_t = √((1 − ᾱ_t)/ᾱ_t) at each visited timestep, then 0 (the clean end)."""
    abar = schedule.alphas_cumprod[ts]
    return np.append(np.sqrt((1 - abar) / abar), 0.0)


def _solve(model, x_T, schedule, steps, spacing, callback, normaliser, start, name, make_step) -> Trajectory:
    check_init(x_T)
    ts = ddim_timesteps(schedule.T, steps, spacing)
    sigmas = karras_sigmas(schedule, ts)
    scale = 1 / np.sqrt(1 + sigmas**2)  # √ᾱ of each frame (1 at the clean end)
    rec = Recorder(x_T, np.append(ts, -1), callback, start)
    model = rec.counted(model)

    def evaluate(x_tilde: torch.Tensor, k: int) -> torch.Tensor:
        return model(x_tilde * float(scale[k]), int(ts[k]))

    step = make_step(evaluate)
    x_tilde = x_T / float(scale[rec.start])
    for k in range(rec.start, len(ts)):
        sigma, sigma_next = float(sigmas[k]), float(sigmas[k + 1])
        eps = model(rec.frames[k], int(ts[k]))
        x0_from_eps(rec.frames[k], eps, float(scale[k]) ** 2, out=rec.x0_hat[k])  # x̂₀ = x̃ − σ ε̂, better conditioned
        rec.report(k)
        x_tilde = step(k, x_tilde, eps, rec.x0_hat[k], sigma, sigma_next)
        torch.mul(x_tilde, float(scale[k + 1]), out=rec.frames[k + 1])
        rec.arrived(k + 1)
    rec.x0_hat[len(ts)] = rec.frames[len(ts)]
    rec.report(len(ts))
    return rec.finish(name, {"steps": steps, "spacing": spacing}, normaliser)


def _euler(evaluate) -> Step:
    """x̃ + (σ_next − σ) ε̂, written x̂₀ + σ_next ε̂: x̃ and σ ε̂ nearly cancel at large σ in float32."""
    return lambda k, x, eps, x0, sigma, sigma_next: x0 + sigma_next * eps


def _heun(evaluate) -> Step:
    """x̃ + (σ_next − σ)(ε̂ + ε̂′)/2 with ε̂′ at the Euler point, written from x̂₀ as in ``_euler``."""

    def step(k, x, eps, x0, sigma, sigma_next):
        x_euler = x0 + sigma_next * eps
        if sigma_next == 0:
            return x_euler
        return x_euler + (sigma_next - sigma) * 0.5 * (evaluate(x_euler, k + 1) - eps)

    return step


def _dpmpp_2m(evaluate) -> Step:
    """With λ = −log σ and h = λ_next − λ: x̃ ← (σ_next/σ) x̃ − (e^{−h} − 1) D, where D = x̂₀ on the first step and
    D = (1 + 1/2r) x̂₀ − (1/2r) x̂₀_prev after it (r = h_prev / h); the last step lands on x̂₀."""
    previous: dict = {}

    def step(k, x, eps, x0, sigma, sigma_next):
        if sigma_next == 0:
            return x0.clone()
        h = float(np.log(sigma / sigma_next))
        d = x0
        if previous:
            r = previous["h"] / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous["x0"]
        previous.update(h=h, x0=x0.clone())
        return (sigma_next / sigma) * x - float(np.expm1(-h)) * d

    return step


def _ode_sampler(name: str, make_step) -> Callable[..., Trajectory]:
    @torch.inference_mode()
    def sample(
        model,
        x_T: torch.Tensor,
        schedule: Schedule,
        *,
        steps: int = 50,
        spacing: str = "trailing",
        generator: torch.Generator | None = None,
        callback: Callback | None = None,
        normaliser: Normaliser | None = None,
        start: int | None = None,
    ) -> Trajectory:
        del generator  # deterministic: accepted so that every sampler takes the same arguments
        return _solve(model, x_T, schedule, steps, spacing, callback, normaliser, start, name, make_step)

    sample.__name__ = f"sample_{name}"
    sample.__doc__ = f"Solve the probability-flow ODE from x_T with {name} in ``steps`` steps (see the module)."
    return sample


sample_euler = _ode_sampler("euler", _euler)
sample_heun = _ode_sampler("heun", _heun)
sample_dpmpp_2m = _ode_sampler("dpmpp_2m", _dpmpp_2m)
