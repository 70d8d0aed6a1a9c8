"""Samplers: plain functions with one contract, returning a ``Trajectory``.

``model`` is anything callable as model(x, t) → ε̂ (DDPM, DDIM) or model(x, σ) → score (Langevin), with x the
(N, 2) standardised points and t/σ a scalar shared by the step: a trained network or the exact denoiser.
``x_T`` is the initial noise, N(0, I) in standardised space. ``callback(StepInfo)`` runs after each step;
returning True cancels (the sampler raises ``Cancelled``). ``normaliser`` maps the frames back to data
coordinates. Every random draw comes from ``generator``: same generator state, same trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.parametrization import x0_from_eps, x0_from_score
from diffvis.core.schedules import Schedule, SigmaLadder, ddim_timesteps
from diffvis.core.trajectory import Callback, Recorder, Trajectory, check_init
from diffvis.errors import ConfigError

VARIANCES = ("beta", "beta_tilde")


@dataclass(frozen=True)
class DdpmStep:
    """The constants of Algorithm 2's step from timestep t: x_{t−1} = (x_t − c_ε ε̂)/√α_t + σ_t z with
    c_ε = β_t/√(1 − ᾱ_t), σ_t² = β_t or β̃_t, and σ_t = 0 at t = 0 (no noise at the last step)."""

    t: int
    alpha: float
    abar: float
    beta: float
    sigma: float

    @classmethod
    def at(cls, schedule: Schedule, t: int, variance: str) -> DdpmStep:
        var = schedule.betas if variance == "beta" else schedule.posterior_variance
        sigma = float(np.sqrt(var[t])) if t > 0 else 0.0
        return cls(t, float(schedule.alphas[t]), float(schedule.alphas_cumprod[t]), float(schedule.betas[t]), sigma)

    @property
    def eps_coefficient(self) -> float:
        return self.beta / float(np.sqrt(1 - self.abar))

    def update(self, x: torch.Tensor, eps: torch.Tensor, z: torch.Tensor | None, out: torch.Tensor | None = None):
        """x_{t−1} (into ``out`` when given); z None where σ_t = 0."""
        out = torch.sub(x, eps, alpha=self.eps_coefficient, out=out).div_(float(np.sqrt(self.alpha)))
        return out if z is None else out.add_(z, alpha=self.sigma)


@dataclass(frozen=True)
class DdimStep:
    """The constants of DDIM's step from the k-th visited timestep t to the next, t_prev (ᾱ_prev = 1 after the
    last): x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂ + σ z with
    σ = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev) (eq. 16)."""

    t: int
    t_prev: int
    abar: float
    abar_prev: float
    sigma: float

    @classmethod
    def at(cls, alphas_cumprod: np.ndarray, ts: np.ndarray, k: int, eta: float) -> DdimStep:
        t, t_prev = int(ts[k]), int(ts[k + 1]) if k + 1 < len(ts) else -1
        abar, abar_prev = float(alphas_cumprod[t]), float(alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
        sigma = float(eta * np.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)))
        return cls(t, t_prev, abar, abar_prev, sigma)

    @property
    def direction(self) -> float:
        """√(1 − ᾱ_prev − σ²), the weight of ε̂."""
        return float(np.sqrt(max(1 - self.abar_prev - self.sigma**2, 0.0)))

    def update(self, x0_hat: torch.Tensor, eps: torch.Tensor, z: torch.Tensor | None, out: torch.Tensor | None = None):
        """x_prev (into ``out`` when given); z None where σ = 0."""
        out = torch.mul(eps, self.direction, out=out).add_(x0_hat, alpha=self.abar_prev**0.5)
        return out if z is None else out.add_(z, alpha=self.sigma)


def langevin_update(x: torch.Tensor, score: torch.Tensor, z: torch.Tensor, alpha: float,
                    out: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """x + α/2 · s(x, σ_i) + √α z, one step of Algorithm 1."""
    return torch.add(x, score, alpha=alpha / 2, out=out).add_(z, alpha=alpha**0.5)


@torch.inference_mode()
def sample_ddpm(
    model,
    x_T: torch.Tensor,
    schedule: Schedule,
    *,
    variance: str = "beta_tilde",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    normaliser: Normaliser | None = None,
    start: int | None = None,
) -> Trajectory:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2), t = T−1 … 0:

    x_{t−1} = 1/√α_t · (x_t − β_t/√(1 − ᾱ_t) · ε̂) + σ_t z,  σ_t² = β_t or β̃_t,  no noise at the last step.
    With ``start`` = k, x_T is the points of frame k (at t = T−1−k) and the steps before it are skipped.
    """
    if variance not in VARIANCES:
        raise ConfigError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    check_init(x_T)
    s = schedule
    rec = Recorder(x_T, np.arange(s.T - 1, -2, -1), callback, start)
    model = rec.counted(model)
    for k, t in enumerate(range(s.T - 1, -1, -1)):
        if k < rec.start:
            continue
        x = rec.frames[k]
        eps = model(x, t)
        x0_from_eps(x, eps, float(s.alphas_cumprod[t]), out=rec.x0_hat[k])
        rec.report(k)
        step = DdpmStep.at(s, t, variance)
        step.update(x, eps, rec.noise(k, x, generator) if step.sigma > 0 else None, out=rec.frames[k + 1])
        rec.arrived(k + 1)
    rec.x0_hat[s.T] = rec.frames[s.T]
    rec.report(s.T)
    return rec.finish("ddpm", {"variance": variance}, normaliser)


@torch.inference_mode()
def sample_ddim(
    model,
    x_T: torch.Tensor,
    schedule: Schedule,
    *,
    steps: int = 50,
    eta: float = 0.0,
    spacing: str = "leading",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    normaliser: Normaliser | None = None,
    start: int | None = None,
) -> Trajectory:
    """DDIM (Song, Meng & Ermon 2021, eq. 12) from each visited t to the next one, t_prev (ᾱ = 1 after the last):

    x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂ + σ z,
    σ = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)   (eq. 16; η = 0 deterministic, η = 1 with S = T is DDPM
    with β̃). With ``start`` = k, x_T is the points of frame k and the steps before it are skipped.
    """
    if not 0.0 <= eta <= 1.0:
        raise ConfigError(f"eta must be in [0, 1], got {eta}")
    check_init(x_T)
    ts = ddim_timesteps(schedule.T, steps, spacing)
    abars = schedule.alphas_cumprod
    rec = Recorder(x_T, np.append(ts, -1), callback, start)
    model = rec.counted(model)
    for k, t in enumerate(ts):
        if k < rec.start:
            continue
        x, x_next, x0_hat = rec.frames[k], rec.frames[k + 1], rec.x0_hat[k]
        step = DdimStep.at(abars, ts, k, eta)
        eps = model(x, int(t))
        x0_from_eps(x, eps, step.abar, out=x0_hat)
        rec.report(k)
        step.update(x0_hat, eps, rec.noise(k, x, generator) if step.sigma > 0 else None, out=x_next)
        rec.arrived(k + 1)
    rec.x0_hat[len(ts)] = rec.frames[len(ts)]
    rec.report(len(ts))
    params = {"steps": steps, "eta": eta, "spacing": spacing}
    return rec.finish("ddim", params, normaliser)


def langevin_times(ladder: SigmaLadder, steps_per_level: int, denoise: bool = True) -> np.ndarray:
    """The σ of every frame of an annealed Langevin run: each σ_i for K frames, σ_L once more for the frame
    the last step lands on, and 0 for the denoised frame."""
    times = np.append(np.repeat(ladder.sigmas, steps_per_level), ladder.sigmas[-1])
    return np.append(times, 0.0) if denoise else times


@dataclass(frozen=True)
class LangevinFrame:
    """Where frame k of an annealed Langevin run sits: level i (0-based) of L, inner step j of K, its σ_i and its
    step size α_i = ε σ_i²/σ_L². The frames after the last step (k ≥ L·K) report the last level, j = K."""

    level: int
    inner: int
    sigma: float
    step_size: float


def langevin_frame(ladder: SigmaLadder, steps_per_level: int, step_size: float, k: int) -> LangevinFrame:
    level, inner = divmod(k, steps_per_level)
    if level >= ladder.L:
        level, inner = ladder.L - 1, steps_per_level
    sigma = float(ladder.sigmas[level])
    return LangevinFrame(level, inner, sigma, step_size * (sigma / ladder.sigmas[-1]) ** 2)


@torch.inference_mode()
def sample_langevin(
    model,
    x_T: torch.Tensor,
    ladder: SigmaLadder,
    *,
    steps_per_level: int = 100,
    step_size: float = 5e-5,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    normaliser: Normaliser | None = None,
    start: int | None = None,
) -> Trajectory:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1), starting from x = σ_1 · x_T:

    for i = 1…L: α_i = ε σ_i²/σ_L²; repeat K times: x ← x + α_i/2 · s(x, σ_i) + √α_i z.
    With ``denoise`` a final Tweedie step x ← x + σ_L² s(x, σ_L) removes the last noise (Song & Ermon 2020).
    x̂₀ of a frame is its Tweedie estimate x + σ² s(x, σ) at the level of the step that follows it.
    With ``start`` = k (0 included), x_T is the points of frame k as they are (not scaled by σ_1) and the steps
    before it are skipped.
    """
    K = steps_per_level
    if not 1 <= K <= 100_000:
        raise ConfigError(f"steps per level must be between 1 and 100,000, got {K}")
    if not (np.isfinite(step_size) and step_size > 0):
        raise ConfigError(f"the step size ε must be positive, got {step_size}")
    check_init(x_T)
    times = langevin_times(ladder, K, denoise)
    rec = Recorder(float(ladder.sigmas[0]) * x_T if start is None else x_T, times, callback, start)
    model = rec.counted(model)
    n_steps = ladder.L * K
    for k in range(rec.start, n_steps):
        x, sigma = rec.frames[k], float(times[k])
        alpha = langevin_frame(ladder, K, step_size, k).step_size
        score = model(x, sigma)
        x0_from_score(x, score, sigma, out=rec.x0_hat[k])
        rec.report(k)
        langevin_update(x, score, rec.noise(k, x, generator), alpha, out=rec.frames[k + 1])
        rec.arrived(k + 1)
    sigma_L = float(ladder.sigmas[-1])
    x0_from_score(rec.frames[n_steps], model(rec.frames[n_steps], sigma_L), sigma_L, out=rec.x0_hat[n_steps])
    rec.report(n_steps)
    if denoise:
        rec.frames[n_steps + 1] = rec.x0_hat[n_steps + 1] = rec.x0_hat[n_steps]
        rec.arrived(n_steps + 1)
        rec.report(n_steps + 1)
    params = {"levels": ladder.L, "steps_per_level": K, "step_size": step_size, "denoise": denoise}
    return rec.finish("langevin", params, normaliser, "sigma")
