"""LabState: the one place the app keeps what it knows, emitting a signal per field (napari's pattern).

Views and panels read it, connect ``<field>_changed`` to ``_on_<field>_change`` and write back through it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from diffvis.core.datasets import PointSet
from diffvis.core.models import ModelConfig
from diffvis.core.run import Run
from diffvis.core.training import Progress, TrainConfig


class LabState(QObject):
    data_changed = Signal(object)  # PointSet
    model_config_changed = Signal(object)  # ModelConfig
    train_config_changed = Signal(object)  # TrainConfig
    run_changed = Signal(object)  # Run | None
    progress_changed = Signal(object)  # Progress | None
    previews_changed = Signal()  # a snapshot was added to ``previews``, or they were cleared
    model_changed = Signal()  # ``model_run`` changed: a new run, or a newer snapshot of the one in training
    status_changed = Signal(str)  # 'idle', 'training', 'paused'
    message = Signal(str)  # a line for the status bar
    failed = Signal(str)  # a user's action could not be done: the window shows the reason in a dialog

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.data: PointSet = PointSet(np.zeros((0, 2)))
        self.data_info: dict = {}
        self.model_config = ModelConfig()
        self.train_config = TrainConfig()
        self.run: Run | None = None
        self.runs: list[Run] = []  # this session's finished runs on the current data, newest last (comparisons)
        self.progress_history: list[Progress] = []
        self.previews: list[tuple[int, np.ndarray]] = []  # (training step, (N, 2) samples in data coordinates)
        self.snapshot: Run | None = None  # the EMA weights of the newest preview while training runs
        self.status = "idle"

    def set_data(self, data: PointSet, info: dict) -> None:
        """New training points: the run trained on the old ones no longer matches them (the earlier runs are kept
        for comparisons when the points are the same)."""
        same = len(data) == len(self.data) and np.array_equal(data.points, self.data.points)
        self.data, self.data_info = data, info
        if not same:
            self.runs = []
        self.data_changed.emit(data)
        self.set_run(None)

    def set_model_config(self, config: ModelConfig) -> None:
        if config != self.model_config:
            self.model_config = config
            self.model_config_changed.emit(config)

    def set_train_config(self, config: TrainConfig) -> None:
        if config != self.train_config:
            self.train_config = config
            self.train_config_changed.emit(config)

    def update_train_config(self, **changes) -> None:
        self.set_train_config(replace(self.train_config, **changes))

    def set_run(self, run: Run | None) -> None:
        self.run, self.snapshot = run, None
        if run is not None:
            self.runs = [r for r in self.runs if r is not run] + [run]
        self.run_changed.emit(run)
        if run is None:
            self.clear_progress()
        self.model_changed.emit()

    def clear_progress(self) -> None:
        """Forget the training progress and previews (a new training begins)."""
        self.progress_history = []
        self.progress_changed.emit(None)
        self.previews = []
        self.previews_changed.emit()

    @property
    def model_run(self) -> Run | None:
        """The model the views sample: the finished run, or the newest snapshot of the one in training."""
        return self.run if self.run is not None else self.snapshot

    def add_progress(self, progress: Progress) -> None:
        self.progress_history.append(progress)
        self.progress_changed.emit(progress)

    def add_preview(self, step: int, samples: np.ndarray, snapshot: Run | None = None) -> None:
        self.previews.append((step, samples))
        self.previews_changed.emit()
        if snapshot is not None and self.run is None:
            self.snapshot = snapshot
            self.model_changed.emit()

    @property
    def preview(self) -> np.ndarray | None:
        """The newest snapshot of samples, or None."""
        return self.previews[-1][1] if self.previews else None

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.status_changed.emit(status)

    def say(self, text: str) -> None:
        self.message.emit(text)

    def fail(self, text: str) -> None:
        """Say why what the user asked for was refused, in the status bar and in a dialog."""
        self.message.emit(text)
        self.failed.emit(text)
