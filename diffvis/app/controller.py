"""Owns the training worker's life: start, pause, resume, stop, reset, and a clean shutdown."""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal

from diffvis.app.jobs import FunctionWorker
from diffvis.app.state import LabState
from diffvis.app.workers import TrainWorker, preview_samples
from diffvis.core.run import Run


class TrainingController(QObject):
    """``ended(outcome)`` after every run: 'done', 'stopped', 'diverged' or 'failed'."""

    ended = Signal(str)

    def __init__(self, state: LabState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.worker: TrainWorker | None = None
        self.helpers: list[QThread] = []

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, preview_every: int = 500) -> bool:
        if self.busy or len(self.state.data) < 2:
            return False
        self.state.set_run(None)
        worker = TrainWorker(self.state.data, self.state.model_config, self.state.train_config,
                             self.state.data_info, preview_every=preview_every)  # fmt: skip
        worker.progressed.connect(self.state.add_progress)
        worker.previewed.connect(self.state.add_preview)
        worker.ended.connect(self._on_ended)
        self.worker = worker
        self.state.set_status("training")
        self.state.say("training…")
        worker.start()
        return True

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
