"""QThread workers around core calls. Workers never touch widgets: they report by signals, and hand over
copies of the EMA weights, never the live network."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PySide6.QtCore import QThread, Signal

from diffvis.core.datasets import PointSet
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import make_trainer
from diffvis.core.progress import ReportProgress
from diffvis.core.reflow import draw_pairs, reflow_trainer, reflowed
from diffvis.core.registry import OBJECTIVES
from diffvis.core.run import Run, sample_run
from diffvis.core.training import Progress, TrainConfig, TrainControl, Trainer
from diffvis.errors import Cancelled, DiffvisError, TrainingDiverged

PREVIEW_POINTS = 1000
GUI_HEAD_START_MS = 100  # the GUI repaints the new state (tab, buttons, cleared plots) before training competes


@dataclass(frozen=True)
class Training:
    """What a ``TrainWorker`` trains: ``trainer``, and ``run_of(trainer)``, its EMA weights so far as a Run."""

    trainer: Trainer
    run_of: Callable[[Trainer], Run]


Setup = Callable[[TrainControl, ReportProgress], Training]
"""Builds a ``Training`` in the worker thread; it may report a preparation's progress (done, total) and stops with
``Cancelled`` when the control is cancelled."""


def data_training(data: PointSet, model_config: ModelConfig, cfg: TrainConfig, data_info: dict) -> Setup:
    """Training on ``data`` (a point set; its labels condition the model) with the core loop."""

    def setup(control: TrainControl, prepare: ReportProgress) -> Training:
        trainer, normaliser = make_trainer(data, model_config, cfg)
        return Training(trainer, lambda t: Run.from_trainer(t, normaliser, data_info))

    return setup


def reflowable(run: Run | None) -> bool:
    """Whether ``run`` can be reflowed: a trained run of an objective that transports."""
    return run is not None and OBJECTIVES[run.objective].transports


def reflow_training(run: Run, pairs: int, *, seed: int = 0) -> Setup:
    """Reflow: ``pairs`` pairs drawn from ``run``'s own ODE (``draw_pairs``: paused and stopped within one network
    evaluation), then the next rectified flow trained on them for the base run's steps."""

    def setup(control: TrainControl, prepare: ReportProgress) -> Training:
        drawn = draw_pairs(run, pairs, seed=seed, report=prepare, cancelled=control.wait)
        return Training(reflow_trainer(run, drawn), lambda t: reflowed(run, t))

    return setup


class TrainWorker(QThread):
    """Trains what ``setup`` builds (``data_training``, ``reflow_training``) with the core loop; emits the
    preparation's progress, training progress, preview samples and the resulting run. ``what`` names the job in
    its messages.

    ``prepared(done, total)``: the setup's progress (reflow's pairs drawn); ``began``: the trainer is built and
    its first step is next. ``ended(run, outcome, message)``: outcome 'done', 'stopped' (run holds the weights so
    far; None when stopped before training began), 'diverged' (run holds the last good EMA weights) or 'failed'
    (run is None).
    """

    prepared = Signal(int, int)
    began = Signal()
    progressed = Signal(object)  # Progress
    previewed = Signal(int, object, object)  # training step, (PREVIEW_POINTS, 2) samples, a Run of the EMA copy
    ended = Signal(object, str, str)

    def __init__(self, setup: Setup, *, what: str = "training", preview_every: int = 500, parent=None):
        super().__init__(parent)
        self.setup, self.what, self.preview_every = setup, what, preview_every
        self.control = TrainControl()
        self.stage = "waiting"  # then 'preparing' (the setup runs), then 'training'
        self._training: Training | None = None

    @property
    def _trainer(self) -> Trainer | None:
        return None if self._training is None else self._training.trainer

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def stop(self) -> None:
        self.control.cancel()

    def run(self) -> None:  # runs in the worker thread
        yield_cpu_to_gui()
        if self.control.sleep(GUI_HEAD_START_MS / 1000):
            self.ended.emit(None, "stopped", f"{self.what} stopped before it began")
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the GUI
        try:
            self.stage = "preparing"
            self._training = training = self.setup(self.control, self._prepare)
            self.stage = "training"
            self.began.emit()
            training.trainer.run(self._report, self.control)
            outcome, message = "done", f"{self.what} finished: {training.trainer.step:,} steps"
        except Cancelled:
            outcome, message = "stopped", f"{self.what} stopped at step {self._step():,}"
        except TrainingDiverged as e:
            outcome, message = "diverged", str(e)
        except DiffvisError as e:
            self.ended.emit(None, "failed", str(e))
            return
        except Exception as e:  # a bug: say so in the app, keep the traceback for the report
            traceback.print_exc(file=sys.stderr)
            self.ended.emit(None, "failed", f"{self.what} failed unexpectedly: {e}")
            return
        finally:
            torch.set_num_threads(threads)
        if self._training is None:
            self.ended.emit(None, outcome, f"{self.what} stopped before its training began")
            return
        self.ended.emit(self._training.run_of(self._training.trainer), outcome, message)

    def _prepare(self, done: int, total: int) -> bool:
        self.prepared.emit(done, total)
        return self.control.cancelled

    def _step(self) -> int:
        return self._trainer.step if self._trainer is not None else 0

    def _report(self, progress: Progress) -> None:
        self.progressed.emit(progress)
        if progress.step % self.preview_every == 0 or progress.step == progress.total:
            run = self._training.run_of(self._training.trainer)
            self.previewed.emit(progress.step, preview_samples(run), run)


def warm_up() -> None:
    """Train two steps of a tiny model and sample it once, so that torch's lazy imports and first-call set-up
    happen at start-up, not in the worker while the GUI waits for the interpreter lock."""
    points = np.random.default_rng(0).standard_normal((64, 2))
    trainer, normaliser = make_trainer(points, ModelConfig(width=8, depth=1), TrainConfig(steps=2, batch=8))
    trainer.run(lambda p: None)
    preview_samples(Run.from_trainer(trainer, normaliser, {}), n=8)


def yield_cpu_to_gui(niceness: int = 10) -> None:
    """Lower the calling thread's scheduling priority (Linux threads have their own nice value, and the OpenMP
    threads torch starts from it inherit it): with 2 cores, training would otherwise starve the GUI's repaints.
    The GUI is idle most of the time, so training loses little."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def preview_samples(run: Run, n: int = PREVIEW_POINTS, seed: int = 0) -> np.ndarray:
    """A fast look at what the EMA network draws now: the objective's preview sampler (DDIM in 25 steps, annealed
    Langevin with K = 10 for NCSN)."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, 2, generator=g)
    objective = OBJECTIVES[run.objective]
    return sample_run(run, objective.preview_sampler, x_T, generator=g, **objective.preview_params).samples
