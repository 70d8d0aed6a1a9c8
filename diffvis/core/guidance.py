"""Classifier-free guidance (Ho & Salimans 2021) as a model wrapper, so that every sampler stays unchanged.

For a class-conditional model f(x, t, y), an ε-network or a score network alike (guidance is linear in f):

    f̃(x, t) = f(x, t, ∅) + w · (f(x, t, c) − f(x, t, ∅))

w = 0 is the unconditional model, w = 1 the plain conditional one, w > 1 pushes samples towards where class c
is most typical relative to the whole data (p(x | c)^w p(x)^(1 − w), for the exact scores). Both evaluations
run as one forward pass over the batch [x; x] with labels [∅; c].
"""

from __future__ import annotations

import math

import torch

from diffvis.core.classes import NULL_LABEL
from diffvis.errors import ConfigError

MAX_GUIDANCE = 100.0


def check_guidance(w: float) -> None:
    if not (math.isfinite(w) and 0 <= w <= MAX_GUIDANCE):
        raise ConfigError(f"the guidance scale w must be between 0 and {MAX_GUIDANCE:g}, got {w}")


def guided(model, label, w: float = 1.0):
    """model(x, t) → f̃ for class ``label`` (a dense id, or a (N,) tensor of one per point) at scale ``w``.

    ``label`` None gives the unconditional f(x, t, ∅) whatever w; w = 0 and w = 1 need one evaluation only."""
    check_guidance(w)
    if label is None:
        return model
    if w == 0:
        return lambda x, t: model(x, t, NULL_LABEL)
    if w == 1:
        return lambda x, t: model(x, t, label)

    def evaluate(x: torch.Tensor, t) -> torch.Tensor:
        y = torch.as_tensor(label, dtype=torch.long, device=x.device).expand(len(x))
        both = model(torch.cat([x, x]), t, torch.cat([torch.full_like(y, NULL_LABEL), y]))
        unconditional, conditional = both.chunk(2)
        return torch.lerp(unconditional, conditional, float(w))

    return evaluate
