"""Owns the training worker's life: start (training on the data, or a reflow of the trained flow run), pause,
resume, stop, reset, and a clean shutdown."""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal

from diffvis.app.jobs import FunctionWorker
from diffvis.app.state import LabState
from diffvis.app.workers import Setup, TrainWorker, data_training, preview_samples, reflow_training, reflowable
from diffvis.core.reflow import DEFAULT_PAIRS
from diffvis.core.run import Run


class TrainingController(QObject):
    """``ended(outcome)`` after every run: 'done', 'stopped', 'diverged' or 'failed'; ``preparing(done, total)``
    while a reflow draws its pairs. ``reflow_pairs``: how many pairs a reflow draws."""

    ended = Signal(str)
    preparing = Signal(int, int)

    def __init__(self, state: LabState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.worker: TrainWorker | None = None
        self.helpers: list[QThread] = []
        self.reflow_pairs = DEFAULT_PAIRS
        self._base: Run | None = None  # the run a reflow started from, until its training begins

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, preview_every: int = 500, *, keep_run: bool = False) -> bool:
        """Train on the state's data with its settings. With ``keep_run`` the state's run stays the model the views
        sample until the new one is done (``diffvis --demo``: an example run beside a fresh training)."""
        if self.busy or len(self.state.data) < 2:
            return False
        if keep_run:
            self.state.clear_progress()
        else:
            self.state.set_run(None)
        setup = data_training(self.state.data, self.state.model_config, self.state.train_config, self.state.data_info)
        self._launch(setup, "training", preview_every)
        return True

    @property
    def can_reflow(self) -> bool:
        """A trained run of an objective that transports is loaded, and nothing trains."""
        return not self.busy and reflowable(self.state.run)

    def start_reflow(self, preview_every: int = 500) -> bool:
        """Reflow the state's run: draw ``reflow_pairs`` pairs from its ODE, then train the next rectified flow for
        as many steps as it was trained. The run stays the state's while the pairs are drawn (a stop then keeps
        it); the new one replaces it when done."""
        if not self.can_reflow:
            return False
        self._base = self.state.run
        self._launch(reflow_training(self.state.run, self.reflow_pairs), "reflow", preview_every)
        self.state.say("reflow: drawing pairs from the run's ODE…")
        return True

    def _launch(self, setup: Setup, what: str, preview_every: int) -> None:
        worker = TrainWorker(setup, what=what, preview_every=preview_every)
        worker.prepared.connect(self.preparing)
        worker.began.connect(self._on_began)
        worker.progressed.connect(self.state.add_progress)
        worker.previewed.connect(self.state.add_preview)
        worker.ended.connect(self._on_ended)
        self.worker = worker
        self.state.set_status("training")
        self.state.say(f"{what}…")
        worker.start()

    def _on_began(self) -> None:
        """A reflow's pairs are drawn: its training's progress and previews start afresh."""
        if self._base is not None:
            self._base = None
            self.state.set_run(None)

    def pause(self) -> None:
        if self.worker is not None:
            self.worker.pause()
            self.state.set_status("paused")
            self.state.say("paused")

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.resume()
            self.state.set_status("training")
            self.state.say("training…")

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def reset(self) -> None:
        if not self.busy:
            self.state.set_run(None)
            self.state.say("reset: the trained model was discarded")

    def _on_ended(self, run: Run | None, outcome: str, message: str) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self._base = None  # a reflow stopped while drawing its pairs leaves its base run the state's
        if run is not None:
            self.state.set_run(run)
        self.state.set_status("idle")
        self.state.say(message)
        self.ended.emit(outcome)

    def refresh_preview(self, run: Run) -> None:
        """Sample a preview of an opened run off the GUI thread."""
        helper = FunctionWorker(lambda: preview_samples(run))
        helper.done.connect(
            lambda samples: self.state.add_preview(run.step, samples) if self.state.run is run else None
        )
        helper.finished.connect(lambda: self.helpers.remove(helper) if helper in self.helpers else None)
        self.helpers.append(helper)
        helper.start()

    def shutdown(self) -> None:
        """Stop every thread and wait until it has ended: a QThread destroyed while running aborts the process.
        Training checks for cancellation between steps, so this takes milliseconds."""
        if self.worker is not None:
            self.worker.stop()
            self.worker.blockSignals(True)
            self.worker.wait()
            self.worker = None
        for helper in list(self.helpers):
            helper.blockSignals(True)
            helper.wait()
        self.helpers.clear()
