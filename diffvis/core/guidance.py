"""Guidance as a model wrapper, so that every sampler stays unchanged: classifier-free guidance (Ho & Salimans
2021), limited to an interval of noise levels (Kynkäänniemi et al. 2024), and autoguidance (Karras et al. 2024).

For a model f(x, t, y), an ε-network, score network, denoiser or velocity field alike (each is affine in the
denoiser D at a fixed (x, t), so guiding any of them guides D the same way):

    CFG:           f̃(x, t) = f(x, t, ∅) + w · (f(x, t, c) − f(x, t, ∅))
    autoguidance:  f̃(x, t) = f_weak(x, t, c) + w · (f(x, t, c) − f_weak(x, t, c))

with f_weak a weaker version of the same model (an earlier snapshot of its training, or another, smaller run);
c may be None for an unconditional model. w = 1 is the plain model; w > 1 pushes samples towards where the good
model is more confident than its reference (the unconditional model, or the weak one): for the exact scores CFG
samples p(x | c)^w p(x)^(1 − w). With an interval [σ_lo, σ_hi] the guided f̃ is used where the step's noise level
σ lies in (σ_lo, σ_hi] and the plain f(x, t, c) elsewhere; σ is the model's own (``noise_level``). CFG's two
evaluations run as one forward pass over the batch [x; x] with labels [∅; c].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from diffvis.core.classes import NULL_LABEL
from diffvis.core.flow import LinearPath
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.errors import ConfigError

MAX_GUIDANCE = 100.0
MAX_SIGMA = 1e4  # the largest bound of a guidance interval


def check_guidance(w: float) -> None:
    if not (math.isfinite(w) and 0 <= w <= MAX_GUIDANCE):
        raise ConfigError(f"the guidance scale w must be between 0 and {MAX_GUIDANCE:g}, got {w}")


def check_interval(interval) -> None:
    """An interval is (σ_lo, σ_hi) with 0 ≤ σ_lo < σ_hi ≤ ``MAX_SIGMA``."""
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ConfigError(f"a guidance interval is two noise levels σ_lo,σ_hi, got {interval!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi <= MAX_SIGMA):
        raise ConfigError(f"a guidance interval needs 0 ≤ σ_lo < σ_hi ≤ {MAX_SIGMA:g}, got {lo:g},{hi:g}")


def noise_level(tables) -> Callable[[float], float]:
    """u ↦ σ, the noise level of a model's condition in the variance-exploding units x = y + σ n: a DDPM timestep's
    σ = √((1 − ᾱ_t)/ᾱ_t), an NCSN or EDM σ as it is, a flow time's (1 − t)/t (x_t/t = x₁ + ((1 − t)/t) x₀)."""
    if isinstance(tables, Schedule):
        return lambda t: tables.sigma_at(float(t))
    if isinstance(tables, SigmaLadder):
        return float
    if isinstance(tables, LinearPath):
        return lambda t: math.inf if float(t) <= 0 else (1 - float(t)) / float(t)
    raise ConfigError(f"no noise level over {type(tables).__name__}")


def guided(model, label, w: float = 1.0, *, weak=None, interval=None, level: Callable[[float], float] | None = None):
    """model(x, t) → f̃ for class ``label`` (a dense id, or a (N,) tensor of one per point; None: unconditional) at
    scale ``w``: CFG, or autoguidance by ``weak`` (a model of the same kind) when given; only where
    ``level(t)`` lies in ``interval`` when that is given (see the module).

    Without ``weak``, ``label`` None gives the unconditional f(x, t, ∅) whatever w. w = 1, and CFG's w = 0, need
    one evaluation only."""
    check_guidance(w)
    if interval is not None:
        check_interval(interval)
        if level is None:
            raise ConfigError("a guidance interval needs the model's noise levels")
    if weak is None and label is None:
        return model
    plain = lambda x, t: model(x, t, label)  # noqa: E731
    if w == 1:
        return plain
    if weak is None and w == 0:
        return lambda x, t: model(x, t, NULL_LABEL)
    guide = _autoguided(model, weak, label, float(w)) if weak is not None else _cfg(model, label, float(w))
    if interval is None:
        return guide
    lo, hi = (float(v) for v in interval)
    return lambda x, t: guide(x, t) if lo < level(t) <= hi else plain(x, t)


def _cfg(model, label, w: float):
    def evaluate(x: torch.Tensor, t) -> torch.Tensor:
        y = torch.as_tensor(label, dtype=torch.long, device=x.device).expand(len(x))
        both = model(torch.cat([x, x]), t, torch.cat([torch.full_like(y, NULL_LABEL), y]))
        unconditional, conditional = both.chunk(2)
        return torch.lerp(unconditional, conditional, w)

    return evaluate


def _autoguided(model, weak, label, w: float):
    def evaluate(x: torch.Tensor, t) -> torch.Tensor:
        return torch.lerp(weak(x, t, label), model(x, t, label), w)

    return evaluate
