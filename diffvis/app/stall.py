"""Measure how long the GUI thread's event loop goes without turning: a timer that should fire every
``interval_ms`` records the largest lateness, which is the longest stretch the thread was busy."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class StallMeter(QObject):
    def __init__(self, interval_ms: int = 5, parent: QObject | None = None):
        super().__init__(parent)
        self.interval = interval_ms / 1000
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.stalls: list[tuple[float, float]] = []  # (seconds since start, stall in seconds)
        self._start = self._last = 0.0

    def start(self) -> None:
        self.stalls, self._start = [], time.perf_counter()
        self._last = self._start
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def longest(self, after: float = 0.0) -> float:
        """The longest stall (seconds) that ended more than ``after`` seconds after the start."""
        return max((stall for at, stall in self.stalls if at > after), default=0.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.stalls.append((now - self._start, max(0.0, now - self._last - self.interval)))
        self._last = now
