"""What every scrubbable view shows, without Qt: the result it computed, the frame shown, and probe particles.

    model.result = result    # one 'result' event: the frame is kept (or moves to the last one), the probes go
    model.frame = 7          # one 'frame' event, clamped to 0 … count − 1
    model.add_probe(probe)   # one 'probes' event

A subclass says how many frames a result has (``frames_of``) and may compute results (``work(state)``: a
function of ``progress`` that runs off the GUI thread) and probes (``probe(position)``). ``state`` is anything
with LabState's ``model_run``, ``data``, ``data_info`` and ``train_config``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from diffvis.app.models.evented import EventedModel
from diffvis.core.explain import Explanation, explain_frame
from diffvis.core.fields import trajectory_scores
from diffvis.core.pipeline import probe_trajectory
from diffvis.core.progress import ReportProgress
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule
from diffvis.core.trajectory import Trajectory
from diffvis.errors import ConfigError


@dataclass(frozen=True)
class Probe:
    """One particle's trajectory (1 point per frame, NaN before it was placed) and its score (F, 1, 2)."""

    trajectory: Trajectory
    scores: np.ndarray


class SceneModel(EventedModel):
    """``result``: what the view computed (None: nothing yet); ``frame``: the frame shown, 0 … ``count`` − 1;
    ``probes``: the particles placed in the result. ``OPEN_AT_END``: a first result opens on its last frame."""

    FIELDS = {"result": None, "frame": 0, "probes": ()}
    OPEN_AT_END = True
    FORMULA_HINT = "Sample to see the equation of each step here."  # the formula panel, before there is one
    FORMULA_FIELDS = ("result", "frame", "probes")  # the fields whose change changes what ``explain`` says

    def frames_of(self, result) -> int:
        """How many frames ``result`` has."""
        raise NotImplementedError

    @property
    def count(self) -> int:
        return 0 if self.result is None else self.frames_of(self.result)

    def __setattr__(self, name: str, value) -> None:
        if name == "result":
            self._take(value)
            return
        if name == "frame":
            value = min(max(int(value), 0), max(self.count - 1, 0))
        super().__setattr__(name, value)

    def _take(self, result) -> None:
        """A new result, announced once: it keeps the frame shown, unless that was the last one (it stays last)
        or lies past the new end; a first result opens on its last frame (or first); old probes are dropped."""
        if result is self.result:
            return
        count = 0 if result is None else self.frames_of(result)
        if self.result is None:
            frame = count - 1 if self.OPEN_AT_END else 0
        elif self.frame >= self.count - 1:
            frame = count - 1
        else:
            frame = min(self.frame, count - 1)
        for name, value in (("probes", ()), ("frame", max(frame, 0)), ("result", result)):
            object.__setattr__(self, name, value)
        self.events.emit("result", result)

    def work(self, state) -> Callable[[ReportProgress], object]:
        """``fn(progress)`` computing a result from ``state`` and the model's settings as they are now."""
        raise NotImplementedError

    def probe(self, position: np.ndarray) -> Callable[[ReportProgress], Probe] | None:
        """``fn(progress)`` computing a particle placed at ``position`` (data coordinates) in the frame shown;
        None where this view takes no probes. ConfigError says why a probe cannot start here."""
        return None

    def explain(self, point: int, frame: int) -> Explanation | None:
        """What the formula panel shows for sample ``point`` at ``frame``: the step from that frame of the result's
        trajectory (at the last frame, the step that led to it), for a result that holds the sampling ``model``,
        the ``request`` and the ``trajectory``; None for nothing to explain; ConfigError for a point it lacks."""
        result = self.result
        if result is None or not all(hasattr(result, a) for a in ("model", "request", "trajectory")):
            return None
        traj = result.trajectory
        return explain_frame(result.model, result.request, traj, point, min(frame, traj.steps - 1))

    def explain_probe(self, frame: int) -> Explanation | None:
        """The newest probe's step at ``frame`` (None: no probe, or this scene explains none)."""
        return None

    def add_probe(self, probe: Probe) -> None:
        self.probes = (*self.probes, probe)

    def clear_probes(self) -> None:
        self.probes = ()


def lab_schedule(state) -> Schedule:
    """The schedule the training settings give: an exact model's, when there is no run."""
    cfg = state.train_config
    return Schedule.make(cfg.schedule, cfg.timesteps)


def levels_of(objective: str) -> str:
    """What an objective's models are sampled over: timesteps 't', noise levels 'sigma' or flow times 'time'."""
    return OBJECTIVES[objective].levels


def frame_time(traj: Trajectory, k: int) -> str:
    """Where frame k of a trajectory is: 't = …' (a timestep or a flow's time), 'σ = …' (a noise level) or
    'clean'."""
    t = traj.times[k]
    if traj.levels == "sigma":
        return f"σ = {t:.3g}"
    if traj.levels == "time":
        return f"t = {t:.3g}"
    return "clean" if t < 0 else f"t = {int(t)}"


def follow(model: SamplingModel, request: SampleRequest, position: np.ndarray, *, start: int, seed: int,
           progress: ReportProgress) -> Trajectory:  # fmt: skip
    """The trajectory of one particle placed at ``position`` (data coordinates) at frame ``start`` of ``request``'s
    sampler, telling ``progress`` after every step (so that a cancel stops it at the next one)."""
    return probe_trajectory(model, request, np.asarray(position, dtype=np.float64)[None], start=start, seed=seed,
                            callback=lambda s: progress(s.i, s.total))  # fmt: skip


class SampledScene(SceneModel):
    """A scene whose ``result`` holds the sampling ``model`` and the ``request`` of the ``trajectory`` it shows."""

    def explain_probe(self, frame: int) -> Explanation | None:
        """The newest probe's step from ``frame`` (from its first frame, if placed later), explained as a sample's
        is: its own trajectory, model and request, its noise drawn again from its own generator."""
        if not self.probes or self.result is None:
            return None
        traj = self.probes[-1].trajectory
        first = int(np.flatnonzero(np.isfinite(traj.frames[:, 0, 0]))[0])
        k = min(max(frame, first), traj.steps - 1)
        e = explain_frame(self.result.model, self.result.request, traj, 0, k)
        return replace(e, heading=f"probe {len(self.probes)}: frame {k} → {k + 1}")

    def probe(self, position: np.ndarray) -> Callable[[ReportProgress], Probe] | None:
        """A particle at ``position`` in the frame shown, sampled on from there as the trajectory was (None before
        a result; ConfigError at the last frame)."""
        if self.result is None:
            return None
        frame = self.frame
        if frame >= self.trajectory.steps:
            raise ConfigError("a probe starts before the last frame: scrub back, then click")
        model, request, seed = self.result.model, self.result.request, 1 + len(self.probes)

        def compute(progress: ReportProgress) -> Probe:
            traj = follow(model, request, position, start=frame, seed=seed, progress=progress)
            return Probe(traj, trajectory_scores(traj, model))

        return compute


def nan_separated(paths: np.ndarray) -> np.ndarray:
    """(…, L·(P + 1), 2): the L paths of P points each of ``paths`` (…, L, P, 2) in one polyline per leading index,
    each path followed by a NaN row (what a curve drawn with connect='finite' takes as a break)."""
    gap = np.full((*paths.shape[:-2], 1, 2), np.nan, dtype=paths.dtype)
    joined = np.concatenate([paths, gap], axis=-2)
    return joined.reshape(*paths.shape[:-3], -1, 2)
