"""The DDPM variational bound on −log p(x₀) (Ho et al. 2020, eq. 5), term by term, in nats.

    L = L_T + Σ_{t=2}^{T} L_{t−1} + L_0 ≥ −log p_θ(x₀)

With the code's 0-based timesteps i = t − 1 (the network's input; ᾱ_i = ``alphas_cumprod[i]``) and ε the noise of
x_i = √ᾱ_i x₀ + √(1 − ᾱ_i) ε, each term is closed form given ε̂ = ε_θ(x_i, i):

    prior     L_T = KL(q(x_{T−1} | x₀) ‖ N(0, I)) = ½ ᾱ_{T−1} ‖x₀‖² − ᾱ_{T−1} − ln(1 − ᾱ_{T−1})       (d = 2)
    i ≥ 1     KL(q(x_{i−1} | x_i, x₀) ‖ p_θ(x_{i−1} | x_i))
                = β_i² / (2 σ_i² α_i (1 − ᾱ_i)) ‖ε − ε̂‖² + (β̃_i/σ_i² − 1 − ln(β̃_i/σ_i²))         (eqs. 6–12)
    i = 0     L_0 = −log N(x₀; μ_θ(x_0, 0), β_0 I) = ‖ε − ε̂‖² / (2 α_0) + ln(2π β_0)  (a Gaussian decoder: 2D
              points are continuous, where Ho et al.'s images had a discrete one)

σ_i² is the reverse process's variance, β̃_i or β_i (the DDPM sampler's ``variance``). Each expectation over ε is
one Monte-Carlo draw per point and timestep. Everything is computed in the run's standardised coordinates; the
normaliser's 2 ln scale (data coordinates) is added to L_0 so that the terms sum to the bound on the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.schedules import Schedule
from diffvis.errors import Cancelled


@dataclass(frozen=True)
class VariationalBound:
    """``terms`` (T,): the mean over the points of each timestep's term (index 0: L_0, with the 2 ln scale);
    ``prior``: the mean L_T; ``per_point`` (N,): each point's bound, L_T + Σ_i term_i. In nats."""

    terms: np.ndarray
    prior: float
    per_point: np.ndarray

    @property
    def total(self) -> tuple[float, float]:
        """The mean bound over the points and its standard error."""
        n = len(self.per_point)
        return float(self.per_point.mean()), float(self.per_point.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0


def reverse_variance(schedule: Schedule, variance: str) -> np.ndarray:
    """σ_i² of p_θ(x_{i−1} | x_i): β_i ('beta') or β̃_i ('beta_tilde'), as the DDPM sampler takes them."""
    return schedule.betas if variance == "beta" else schedule.posterior_variance


@torch.inference_mode()
def variational_bound(model, schedule: Schedule, points: np.ndarray, normaliser, *, variance: str = "beta_tilde",
                      seed: int = 0, cancelled: Callable[[int, int], bool] | None = None
                      ) -> VariationalBound:  # fmt: skip
    """The bound of ``points`` (N, 2, data coordinates) under the ε-model ``model`` (callable as model(x, i), a
    class label already bound), ε drawn from ``seed``; ``cancelled(i, T)`` is asked after each timestep."""
    x0 = torch.as_tensor(normaliser.to_std(np.asarray(points, dtype=np.float64)), dtype=torch.float32)
    s = schedule
    sigma2 = reverse_variance(s, variance)
    generator = torch.Generator().manual_seed(seed)
    per_t = np.empty((s.T, len(x0)))
    for i in range(s.T):
        eps = torch.randn(x0.shape, generator=generator)
        abar = float(s.alphas_cumprod[i])
        eps_hat = model(abar**0.5 * x0 + (1 - abar) ** 0.5 * eps, i)
        error = (eps - eps_hat).double().pow(2).sum(1).numpy()
        if i == 0:
            per_t[i] = error / (2 * s.alphas[0]) + math.log(2 * math.pi * s.betas[0]) + 2 * math.log(normaliser.scale)
        else:
            ratio = s.posterior_variance[i] / sigma2[i]
            weight = s.betas[i] ** 2 / (2 * sigma2[i] * s.alphas[i] * (1 - s.alphas_cumprod[i]))
            per_t[i] = weight * error + (ratio - 1 - math.log(ratio))
        if cancelled is not None and cancelled(i + 1, s.T):
            raise Cancelled("variational bound cancelled")
    abar_T = float(s.alphas_cumprod[-1])
    prior = 0.5 * abar_T * x0.double().pow(2).sum(1).numpy() - abar_T - math.log(1 - abar_T)
    return VariationalBound(per_t.mean(1), float(prior.mean()), prior + per_t.sum(0))


def has_bound(objective: str) -> bool:
    """True for an objective whose models step DDPM's schedule (ε-prediction over its timesteps): the bound's."""
    from diffvis.core.registry import OBJECTIVES

    return OBJECTIVES[objective].tables == "schedule"


BOUND_POINTS = 500  # fresh points the training view's bound and ODE NLL are measured on
BOUND_SEED = 31  # their draw


@dataclass(frozen=True)
class BoundReport:
    """A DDPM model's bound beside its ODE NLL on the same points (nats per point): ``conditional`` when each point
    was scored under its own class (−log p(x | y))."""

    bound: VariationalBound
    ode_nll: tuple[float, float]
    conditional: bool


def bound_report(model, points: np.ndarray, labels: np.ndarray | None = None, *, variance: str = "beta_tilde",
                 seed: int = 0, cancelled: Callable[[int, int], bool] | None = None) -> BoundReport:  # fmt: skip
    """The bound and the ODE NLL (dopri5, ``likelihood.model_log_likelihood``) of a DDPM ``SamplingModel`` on
    ``points``, each under its own class when ``labels`` (dense ids) are given and the model is conditional, else
    unconditionally; ``cancelled(done, total)`` sees the bound's T steps, then the solve's share."""
    from diffvis.core.classes import UNCONDITIONAL
    from diffvis.core.guidance import guided
    from diffvis.core.likelihood import PROGRESS_TICKS, model_log_likelihood

    conditional = labels is not None and model.classes is not None
    label = torch.as_tensor(labels) if conditional else None
    T = model.schedule.T
    total = T + PROGRESS_TICKS
    bound = variational_bound(
        guided(model.model, label),
        model.schedule,
        points,
        model.normaliser,
        variance=variance,
        seed=seed,
        cancelled=None if cancelled is None else lambda i, n: cancelled(i, total),
    )
    ode = model_log_likelihood(
        model,
        points,
        label=label if conditional else UNCONDITIONAL,
        cancelled=None if cancelled is None else lambda d, n: cancelled(T + d, total),
    )
    return BoundReport(bound, ode.nll, conditional)


def run_bound_report(run, data_info: dict, data, *, cancelled=None) -> BoundReport:
    """``bound_report`` of a trained DDPM run on ``BOUND_POINTS`` fresh points of its data (``data_info``,
    ``data``: see ``sources.fresh_sets``), each under its own class for a conditional run."""
    from diffvis.core.run import SamplingModel
    from diffvis.core.sources import fresh_sets

    fresh = fresh_sets(data_info, data, BOUND_POINTS)(BOUND_SEED)
    labels = None if run.classes is None or fresh.labels is None else run.classes.encode(fresh.labels)
    return bound_report(SamplingModel.of_run(run), fresh.points, labels, cancelled=cancelled)
