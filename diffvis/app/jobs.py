"""Work off the GUI thread: ``FunctionWorker`` runs one function in a QThread; ``BackgroundJob`` runs one
cancellable computation at a time for a view, reporting progress, and drops results that were superseded."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal

from diffvis.core.progress import ReportProgress
from diffvis.errors import Cancelled


class FunctionWorker(QThread):
    """Runs ``fn()`` off the GUI thread and emits its result (or the error's message)."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn, parent=None):
        super().__init__(parent)
        self.fn = fn

    def run(self) -> None:
        try:
            self.done.emit(self.fn())
        except Cancelled:
            self.failed.emit("cancelled")
        except Exception as e:  # reported to the user, never raised into Qt
            self.failed.emit(str(e))


class BackgroundJob(QObject):
    """One computation at a time: ``start(fn)`` cancels the one running and runs ``fn(progress)`` in a worker.

    ``done(result)`` or ``failed(message)`` arrive on the GUI thread for the newest job only; ``progressed(i, n)``
    at most once per percent. ``cancel()`` is seen by the job at its next progress call."""

    done = Signal(object)
    failed = Signal(str)
    progressed = Signal(int, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.worker: FunctionWorker | None = None
        self._cancel = threading.Event()
        self._retired: list[FunctionWorker] = []

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, fn: Callable[[ReportProgress], object]) -> None:
        self.cancel()
        cancel = self._cancel = threading.Event()
        last = [-1]

        def progress(i: int, n: int) -> bool:
            percent = 100 * i // max(n, 1)
            if percent != last[0]:
                last[0] = percent
                self.progressed.emit(i, n)
            return cancel.is_set()

        worker = self.worker = FunctionWorker(lambda: fn(progress))
        worker.done.connect(lambda result: self._finish(worker, self.done, result))
        worker.failed.connect(lambda message: self._finish(worker, self.failed, message))
        worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop; its result, if any still comes, is dropped."""
        self._cancel.set()
        if self.worker is not None:
            self._retired.append(self.worker)
            self.worker.finished.connect(lambda w=self.worker: self._forget(w))
            self.worker = None

    def _finish(self, worker: FunctionWorker, signal, value) -> None:
        if worker is not self.worker:
            return
        worker.wait()
        worker.deleteLater()
        self.worker = None
        signal.emit(value)

    def _forget(self, worker: FunctionWorker) -> None:
        if worker in self._retired:
            self._retired.remove(worker)
            worker.deleteLater()

    def shutdown(self) -> None:
        """Cancel and wait for every worker: a QThread destroyed while running aborts the process."""
        self.cancel()
        for worker in list(self._retired):
            worker.blockSignals(True)
            worker.wait()
        self._retired.clear()
