"""An honest time left for a sampling run whose steps cost different amounts.

The exact model is cheap at high noise and dear at low noise, so the seconds per step of the first steps say
little about the last ones. Instead, each frame gets a predicted amount of work (the model's own price of each
evaluation, ``work(n, t)``; one unit per evaluation for a network, whose steps all cost the same), and the time
left is the time spent so far scaled by the work left over the work done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

ReportProgress = Callable[[int, int], bool]  # report(i, n) after step i of n → True to cancel


def frame_work(model, sampler: str, x_T: torch.Tensor, **kwargs) -> np.ndarray:
    """The predicted work of reaching each frame of ``model.sample(sampler, x_T, **kwargs)`` (a ``SamplingModel``)
    from the one before (F − 1 values): a dry run on one particle with a stand-in network that returns zeros and
    records the time t of each evaluation, each evaluation then priced by ``model.model.work(len(x_T), t)``.
    The dry run draws its noise from a generator of its own, so the caller's is left as it was."""
    calls = []

    def stand_in(x, t, label=None):
        calls.append(t)
        return torch.zeros_like(x)

    if kwargs.get("generator") is not None:
        kwargs = {**kwargs, "generator": torch.Generator().manual_seed(0)}
    dry = replace(model, model=stand_in).sample(sampler, x_T[:1].detach().cpu(), **kwargs)
    work, price = getattr(model.model, "work", None), {}
    for t in calls:  # in the sampler's order: a one-time cost is priced where the run first meets it
        if t not in price:
            price[t] = work(len(x_T), t) if work else 1.0
    done = np.concatenate([[0.0], np.cumsum([price[t] for t in calls])])
    return np.diff(done[dry.evals])


class TimeLeft:
    """The time left after each frame, measured from the first frame reported on (which carries the start-up
    costs: the point index, the first moments): elapsed since then × (work left / work done since then)."""

    def __init__(self, work: np.ndarray, clock=time.perf_counter):
        self.done = np.concatenate([[0.0], np.cumsum(work)])
        self.clock, self.first = clock, None

    def seconds(self, frame: int) -> float | None:
        """Seconds left after ``frame``; None at the first frame reported."""
        if self.first is None:
            self.first = (frame, self.clock())
            return None
        start, t0 = self.first
        done = self.done[frame] - self.done[start]
        return (self.clock() - t0) * (self.done[-1] - self.done[frame]) / max(done, 1e-12)

    def __call__(self, frame: int) -> str:
        """'estimating time left', '45 s left', '3 min 05 s left' or '2 h 10 min left' (as training says it)."""
        seconds = self.seconds(frame)
        if seconds is None:
            return "estimating time left"
        s = int(round(seconds))
        if s < 60:
            return f"{s} s left"
        return f"{s // 60} min {s % 60:02d} s left" if s < 3600 else f"{s // 3600} h {s % 3600 // 60:02d} min left"
