"""Runaway samples: how many land far from every data point, from all noises and from far-out ones.

A sample is *far* when its distance to the nearest point of a fresh draw of the data, in the run's standardised
units (the data's overall standard deviation), exceeds a limit (1 and 3 by default). ε-prediction flings a few
samples far off, all from noises in the Gaussian's tail (README, "Runaway samples"); the check therefore also
samples from noises conditioned on ‖x_T‖ > R: for 2D N(0, I), ‖x_T‖² is exponential with mean 2, so
‖x_T‖ = √(R² − 2 ln U), U ~ U(0, 1], at a uniform angle, is exactly that conditional draw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from diffvis.core.metrics import nearest_distances
from diffvis.core.pipeline import sample_request
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel

LIMITS = (1.0, 3.0)
FAR_NOISE = 3.5  # ‖x_T‖ of the far-out noises (0.2 % of N(0, I) in 2D lies beyond)


@dataclass(frozen=True)
class Tails:
    """Of ``n`` samples: how many lie farther than each limit from the data (``far``), and the largest distance."""

    n: int
    far: dict[float, int]
    largest: float

    def line(self) -> str:
        counts = ", ".join(f"{count} beyond {limit:g}" for limit, count in self.far.items())
        return f"{counts} of {self.n:,} (farthest {self.largest:.2f})"


def tails_of(samples: np.ndarray, data: np.ndarray, normaliser, limits=LIMITS) -> Tails:
    """``samples`` against ``data`` (both in data coordinates), distances in the standardised units."""
    d = nearest_distances(normaliser.to_std(samples), normaliser.to_std(data))
    return Tails(len(samples), {limit: int((d > limit).sum()) for limit in limits}, float(d.max()))


def far_noise(n: int, radius: float, seed: int) -> torch.Tensor:
    """n points of N(0, I) in 2D conditioned on ‖x‖ > ``radius`` (see the module)."""
    g = torch.Generator().manual_seed(seed)
    u = 1 - torch.rand(n, generator=g, dtype=torch.float64)  # (0, 1]
    r = torch.sqrt(radius**2 - 2 * torch.log(u))
    angle = 2 * torch.pi * torch.rand(n, generator=g, dtype=torch.float64)
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1).float()


def tail_check(model: SamplingModel, request: SampleRequest, data: np.ndarray, radius: float = FAR_NOISE):
    """(from all noises, from noises beyond ``radius``): ``request``'s samples (its n and seed) against ``data``."""
    everywhere = sample_request(model, request).samples.astype(np.float64)
    x_T = far_noise(request.n, radius, request.seed).to(model.device)
    far_out = sample_request(model, replace(request, seed=request.seed + 1), x_T=x_T).samples.astype(np.float64)
    return tails_of(everywhere, data, model.normaliser), tails_of(far_out, data, model.normaliser)
