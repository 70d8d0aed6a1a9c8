"""The forward (noising) process of DDPM.

one step    q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I)
closed form q(x_t | x_0)     = N(√ᾱ_t x_0, (1 − ᾱ_t) I),  i.e. x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.schedules import Schedule


def q_sample(x0, abar, noise):
    """x_t = √ᾱ x_0 + √(1 − ᾱ) ε for tensors or numpy arrays; ``abar`` a float or broadcasting against x0."""
    return abar**0.5 * x0 + (1 - abar) ** 0.5 * noise


def forward_chain(x0: torch.Tensor, schedule: Schedule, generator: torch.Generator | None = None) -> torch.Tensor:
    """Run the Markov chain one step at a time: frames (T + 1, N, 2), frame 0 the data, frame t+1 = x after step t.

    Each point keeps its own noise path, so a slider over t shows every point drifting into the Gaussian.
    """
    frames = torch.empty((schedule.T + 1, *x0.shape), dtype=x0.dtype)
    frames[0] = x0
    for t in range(schedule.T):
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        frames[t + 1] = float(np.sqrt(schedule.alphas[t])) * frames[t] + float(np.sqrt(schedule.betas[t])) * z
    return frames


@dataclass(frozen=True)
class PriorGap:
    """How far q(x_T) is from the sampler's starting point N(0, I).

    kl: the prior term L_T of Ho et al. (2020), E_x0 KL(q(x_T | x_0) ‖ N(0, I)) in nats per point, with
        KL(N(√ᾱ x_0, (1 − ᾱ) I) ‖ N(0, I)) = ½ (ᾱ ‖x_0‖² + d (−ᾱ − ln(1 − ᾱ))) in d = 2 dimensions.
    signal: √ᾱ_T, the fraction of the data still in x_T.
    """

    kl: float
    signal: float

    @property
    def too_far(self) -> bool:
        """True when sampling from N(0, I) measurably misses q(x_T): more than 0.01 nats per point."""
        return self.kl > 0.01


def prior_gap(schedule: Schedule, x0_std: np.ndarray) -> PriorGap:
    """Measure ``PriorGap`` for standardised data x0_std (N, 2)."""
    abar = float(schedule.alphas_cumprod[-1])
    mean_sq = float((np.asarray(x0_std) ** 2).sum(1).mean())
    kl = 0.5 * (abar * mean_sq + 2 * (-abar - np.log1p(-abar)))
    return PriorGap(kl, float(np.sqrt(abar)))
