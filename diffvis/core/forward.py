"""The forward (noising) process of DDPM.

one step    q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I)
closed form q(x_t | x_0)     = N(√ᾱ_t x_0, (1 − ᾱ_t) I),  i.e. x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
"""

from __future__ import annotations

import numpy as np
import torch

from diffvis.core.schedules import Schedule


def q_sample(x0: torch.Tensor, abar, noise: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ x_0 + √(1 − ᾱ) ε; ``abar`` a float or a tensor broadcasting against x0 (one per point)."""
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
