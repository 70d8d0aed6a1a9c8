"""The one result type of every sampler, and the recorder samplers fill it with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.errors import Cancelled, ConfigError


@dataclass(frozen=True)
class Trajectory:
    """A sampler's path, as CPU float32 numpy so that scrubbing only indexes.

    frames:  (F, N, 2) the points after each step, frame 0 the initial noise, F = steps + 1 (+1 for a final
             denoising step), in data coordinates.
    times:   (F,) what each frame's time is, as ``levels`` says: 't' a timestep index (−1 marks clean output), 'sigma'
             a noise level σ, 'time' a flow's t in [0, 1].
    x0_hat:  (F, N, 2) the model's estimate of the clean points at each frame, in data coordinates.
    nfe:     number of model evaluations.
    evals:   (F,) the model evaluations spent to reach each frame (0 at the start; nfe at the end), or None.
    labels:  (N,) the class each point was drawn for (dense ids), or None for unconditional sampling.
    draws:   for each step k that drew noise, the state its generator had just before (``noise``), so that the
             z of any step can be drawn again exactly; empty for deterministic samplers.
    """

    frames: np.ndarray
    times: np.ndarray
    x0_hat: np.ndarray
    nfe: int
    name: str
    params: dict = field(default_factory=dict)
    evals: np.ndarray | None = None
    labels: np.ndarray | None = None
    levels: str = "t"
    draws: dict[int, NoiseDraw] = field(default_factory=dict)

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

    def noise(self, k: int) -> np.ndarray | None:
        """(N, 2) the standard normal z the step from frame k drew (standardised units), drawn again from the
        generator state it had; None where that step drew none."""
        return self.draws[k].replay() if k in self.draws else None

    def take(self, frames: np.ndarray) -> Trajectory:
        """The trajectory seen only at the given frame indices (same nfe, name and params)."""
        f = frames
        evals = self.evals[f] if self.evals is not None else None
        return replace(self, frames=self.frames[f], times=self.times[f], x0_hat=self.x0_hat[f], evals=evals, draws={})


@dataclass(frozen=True)
class NoiseDraw:
    """One step's draw z ~ N(0, I) of ``shape``: the generator's state before it, and the device it ran on."""

    state: torch.Tensor
    device: str
    shape: tuple[int, ...]

    def replay(self) -> np.ndarray:
        generator = torch.Generator(device=self.device)
        generator.set_state(self.state)
        return torch.randn(self.shape, generator=generator, device=self.device).cpu().numpy()


@dataclass(frozen=True)
class StepInfo:
    """What a sampler tells its callback after step ``i`` of ``total``; x and x0_hat are standardised."""

    i: int
    total: int
    t: float
    x: torch.Tensor
    x0_hat: torch.Tensor


Callback = Callable[[StepInfo], bool | None]


class Recorder:
    """Preallocated frame and x̂₀ buffers; samplers write each step straight into them (no copies).

    ``times`` gives the timestep or σ of every frame. A sampler started at frame ``start`` > 0 has NaN frames
    and x̂₀ before it: the particle appears there. Samplers call the model through ``counted`` and say when a
    frame is written (``arrived``), so every frame knows what it cost."""

    def __init__(self, x_start: torch.Tensor, times: np.ndarray, callback: Callback | None, start: int | None = None):
        start = start or 0  # None: x_start is the sampler's starting noise (frame 0)
        if not 0 <= start < len(times) - 1:
            raise ConfigError(f"the start frame must be between 0 and {len(times) - 2}, got {start}")
        self.frames = torch.empty((len(times), *x_start.shape), dtype=torch.float32, device=x_start.device)
        self.x0_hat = torch.empty_like(self.frames)
        self.frames[:start] = self.x0_hat[:start] = float("nan")
        self.frames[start] = x_start
        self.times = np.asarray(times, dtype=np.float32)
        self.callback = callback
        self.start = start
        self.calls = 0
        self.evals = np.zeros(len(times), dtype=np.int64)
        self.draws: dict[int, NoiseDraw] = {}

    def noise(self, k: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """z ~ N(0, I) shaped like ``like`` for the step from frame k, from ``generator`` (its state kept, so that
        ``Trajectory.noise`` draws the same z again)."""
        if generator is not None:
            self.draws[k] = NoiseDraw(generator.get_state(), str(generator.device), tuple(like.shape))
        return noise_like(like, generator)

    def counted(self, model):
        """``model``, with each evaluation counted."""

        def evaluate(x, t):
            self.calls += 1
            return model(x, t)

        return evaluate

    def arrived(self, k: int) -> None:
        """Frame k is written: it cost the evaluations made so far."""
        self.evals[k] = self.calls

    def report(self, k: int) -> None:
        """Frame k and its x̂₀ are written; tell the callback, which may cancel."""
        if k > self.start and self.callback is not None:
            info = StepInfo(k, len(self.times) - 1, float(self.times[k]), self.frames[k], self.x0_hat[k])
            if self.callback(info):
                raise Cancelled("sampling cancelled")

    def finish(self, name: str, params: dict, normaliser: Normaliser | None, levels: str = "t") -> Trajectory:
        frames, x0_hat = self.frames.cpu(), self.x0_hat.cpu()
        if normaliser is not None:
            frames, x0_hat = normaliser.to_data(frames), normaliser.to_data(x0_hat)
        return Trajectory(frames.numpy(), self.times, x0_hat.numpy(), self.calls, name, params, self.evals,
                          levels=levels, draws=self.draws)  # fmt: skip


def noise_like(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def check_init(x_T: torch.Tensor) -> None:
    if x_T.ndim != 2 or x_T.shape[1] != 2 or len(x_T) == 0:
        raise ConfigError(f"initial noise must have shape (N, 2) with N ≥ 1, got {tuple(x_T.shape)}")
    if not torch.isfinite(x_T).all():
        raise ConfigError("initial noise contains NaN or infinite values")
