"""The one result type of every sampler."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Trajectory:
    """A sampler's path, as CPU float32 numpy so that scrubbing only indexes.

    frames:  (F, N, 2) the points after each step, frame 0 the initial noise, F = steps + 1 (+1 for a final
             denoising step), in data coordinates.
    times:   (F,) the timestep index (DDPM/DDIM; −1 marks clean output) or noise level σ (Langevin) of a frame.
    x0_hat:  (F, N, 2) the model's estimate of the clean points at each frame, in data coordinates.
    nfe:     number of model evaluations.
    """

    frames: np.ndarray
    times: np.ndarray
    x0_hat: np.ndarray
    nfe: int
    name: str
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = self.frames
        if f.ndim != 3 or f.shape[2] != 2 or self.x0_hat.shape != f.shape or self.times.shape != (len(f),):
            raise ValueError("inconsistent trajectory shapes")

    @property
    def samples(self) -> np.ndarray:
        """(N, 2) the final points."""
        return self.frames[-1]

    @property
    def steps(self) -> int:
        return len(self.frames) - 1

    def take(self, frames: np.ndarray) -> Trajectory:
        """The trajectory seen only at the given frame indices (same nfe, name and params)."""
        f = frames
        return Trajectory(self.frames[f], self.times[f], self.x0_hat[f], self.nfe, self.name, self.params)


@dataclass(frozen=True)
class StepInfo:
    """What a sampler tells its callback after step ``i`` of ``total``; x and x0_hat are standardised."""

    i: int
    total: int
    t: float
    x: torch.Tensor
    x0_hat: torch.Tensor
