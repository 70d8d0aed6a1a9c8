"""Reflow (Liu, Gong & Liu 2023, §2.3): straighten a trained flow by training a new one on its own pairs.

The k-rectified flow's ODE carries each source point x₀ to x₁ = ψ(x₀); the (k + 1)-rectified flow is trained on
those fixed pairs (x₀, ψ(x₀)) with the same loss, ‖v_θ(x_t, t) − (x₁ − x₀)‖². Its paths cannot cross (the pairs
come from a flow), so it comes out straighter, and one Euler step lands nearly where the whole ODE does. Reflowing a
reflowed run chains: each run records k, how many times its flow was rectified.

The pairs come from the base run's own ODE, solved finely (dopri5, every particle within rtol = atol = 1e-6),
from its own source, in its standardised coordinates; a class-conditional run draws the classes in proportion
and keeps each pair's label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from diffvis.core.pipeline import sample_request
from diffvis.core.request import SampleRequest
from diffvis.core.run import Run, SamplingModel
from diffvis.core.training import Progress, TrainControl, Trainer
from diffvis.errors import Cancelled, ConfigError

PAIR_SOLVER = ("dopri5", {"steps": 1, "rtol": 1e-6, "atol": 1e-6})
PAIR_CHUNK = 5_000  # pairs solved at once: progress between chunks
DEFAULT_PAIRS = 20_000  # the pairs a reflow draws unless told


@dataclass(frozen=True)
class Pairs:
    """Fixed (x₀, x₁) pairs in a run's standardised coordinates, (N, 2) each, with the dense class ids (N,) they
    were drawn for, or None."""

    source: np.ndarray
    target: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.source)


def pair_request(n: int, seed: int = 0) -> SampleRequest:
    """The solve that gives n pairs: ``PAIR_SOLVER`` from n source points drawn with ``seed`` (a conditional model's
    classes drawn in proportion)."""
    return SampleRequest(PAIR_SOLVER[0], PAIR_SOLVER[1], n=n, seed=seed, objective="flow")


def ode_pairs(model: SamplingModel, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """n source points x₀ and their ends ψ(x₀) under the model's flow (``pair_request``), both (n, 2) in data
    coordinates, and the dense class ids they were drawn for (or None)."""
    traj = sample_request(model, pair_request(n, seed))
    return traj.frames[0].astype(np.float64), traj.samples.astype(np.float64), traj.labels


class _Interruptible(torch.nn.Module):
    """A network that refuses every evaluation once ``cancelled()`` says so (``Cancelled``)."""

    def __init__(self, net: torch.nn.Module, cancelled: Callable[[], bool]):
        super().__init__()
        self.net, self.cancelled = net, cancelled

    def forward(self, *args):
        if self.cancelled():
            raise Cancelled("cancelled while solving the flow")
        return self.net(*args)


def interruptible(model: SamplingModel, cancelled: Callable[[], bool]) -> SamplingModel:
    """``model`` whose network asks ``cancelled()`` before every evaluation, so that a long solve stops within one
    (an exact model is left as it is: its solve stops at its next frame)."""
    if not isinstance(model.model, torch.nn.Module):
        return model
    return replace(model, model=_Interruptible(model.model, cancelled))


def draw_pairs(run: Run, n: int, *, seed: int = 0, report: Callable[[int, int], bool] | None = None,
               cancelled: Callable[[], bool] | None = None) -> Pairs:  # fmt: skip
    """n pairs (x₀, ψ(x₀)) of the run's flow (``ode_pairs``), in chunks of ``PAIR_CHUNK``; ``report(done, n)`` after
    each chunk may cancel (``Cancelled``), and so may ``cancelled()``, asked at every network evaluation."""
    if run.objective != "flow":
        raise ConfigError(f"reflow straightens a flow-matching run; this one was trained for {run.objective}")
    model = SamplingModel.of_run(run)
    if cancelled is not None:
        model = interruptible(model, cancelled)
    parts = []
    for i, start in enumerate(range(0, n, PAIR_CHUNK)):
        count = min(PAIR_CHUNK, n - start)
        source, target, labels = ode_pairs(model, count, seed=seed + i)
        parts.append((run.normaliser.to_std(source), run.normaliser.to_std(target), labels))
        if report is not None and report(start + count, n):
            raise Cancelled("reflow cancelled while drawing its pairs")
    source, target, labels = zip(*parts, strict=True)
    return Pairs(np.concatenate(source), np.concatenate(target), None if labels[0] is None else np.concatenate(labels))


def reflow_trainer(run: Run, pairs: Pairs, *, steps: int | None = None, seed: int | None = None) -> Trainer:
    """A trainer of the next rectified flow: the base run's network and settings, trained afresh on ``pairs``."""
    cfg = replace(run.train_config, coupling="reflow", steps=steps or run.train_config.steps,
                  seed=run.train_config.seed if seed is None else seed)  # fmt: skip
    return Trainer(pairs.target, run.model_config, cfg, classes=run.classes, labels=pairs.labels, pairs=pairs.source)


def reflow_run(run: Run, pairs: Pairs, *, steps: int | None = None, seed: int | None = None,
               on_progress: Callable[[Progress], None] | None = None,
               control: TrainControl | None = None) -> Run:  # fmt: skip
    """Train the (k + 1)-rectified flow of ``run`` on ``pairs`` (``reflow_trainer``, then ``reflowed``)."""
    trainer = reflow_trainer(run, pairs, steps=steps, seed=seed)
    trainer.run(on_progress, control)
    return reflowed(run, trainer)


def reflowed(run: Run, trainer: Trainer) -> Run:
    """The run of a reflow trainer of ``run`` as it stands: it keeps the base run's data description, normaliser,
    classes and tables, and records k and the number of pairs."""
    k = rectified_steps(run) + 1
    info = {**run.data_info, "reflow": {"k": k, "pairs": len(trainer.partners)}}
    new = Run.from_trainer(trainer, run.normaliser, info)
    new.ladder, new.schedule, new.source_points = run.ladder, run.schedule, run.source_points
    return new


def rectified_steps(run: Run) -> int:
    """k: how many times the run's flow was rectified (0 for a flow trained from its coupling)."""
    return int(run.data_info.get("reflow", {}).get("k", 0))
