"""Train / Pause / Stop / Reset, and Reflow of a trained flow run, with a progress bar, steps per second and time
left."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QProgressBar, QPushButton, QWidget

from diffvis.app.state import LabState
from diffvis.app.workers import reflowable


class TrainingPanel(QGroupBox):
    train_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    reset_requested = Signal()
    reflow_requested = Signal()

    def __init__(self, state: LabState, parent: QWidget | None = None):
        super().__init__("Training", parent)
        self.state = state
        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.reset_button = QPushButton("Reset")
        self.reflow_button = QPushButton("Reflow")
        self.reflow_button.setToolTip("train the next rectified flow on pairs (x₀, ψ(x₀)) drawn from this run's own "
                                      "ODE (Liu et al. 2023): straighter paths, good in fewer steps")  # fmt: skip
        self.bar = QProgressBar()
        self.rate = QLabel("")
        self.rate.setWordWrap(True)
        layout = QGridLayout(self)
        layout.addWidget(self.train_button, 0, 0)
        layout.addWidget(self.pause_button, 0, 1)
        layout.addWidget(self.stop_button, 1, 0)
        layout.addWidget(self.reset_button, 1, 1)
        layout.addWidget(self.reflow_button, 2, 0, 1, 2)
        layout.addWidget(self.bar, 3, 0, 1, 2)
        layout.addWidget(self.rate, 4, 0, 1, 2)
        self.inputs_valid = True

        self.train_button.clicked.connect(self.train_requested)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_requested)
        self.reset_button.clicked.connect(self.reset_requested)
        self.reflow_button.clicked.connect(self.reflow_requested)
        state.status_changed.connect(self._on_status_change)
        state.progress_changed.connect(self._on_progress_change)
        state.run_changed.connect(self._on_run_change)
        state.data_changed.connect(lambda _: self._on_status_change(self.state.status))
        self._on_status_change(state.status)

    def set_inputs_valid(self, valid: bool) -> None:
        self.inputs_valid = valid
        self._on_status_change(self.state.status)

    def toggle_pause(self) -> None:
        """Pause a running training, resume a paused one."""
        (self.resume_requested if self.state.status == "paused" else self.pause_requested).emit()

    def _on_status_change(self, status: str) -> None:
        busy = status in ("training", "paused")
        enough_points = len(self.state.data) >= 2
        self.train_button.setEnabled(not busy and self.inputs_valid and enough_points)
        self.train_button.setToolTip("" if enough_points else "Training needs at least two points")
        self.pause_button.setEnabled(busy)
        self.pause_button.setText("Resume" if status == "paused" else "Pause")
        self.stop_button.setEnabled(busy)
        self.reset_button.setEnabled(not busy)
        self.reflow_button.setEnabled(not busy and reflowable(self.state.run))

    def show_preparation(self, done: int, total: int) -> None:
        """A reflow's pairs drawn so far, before its training reports."""
        self.bar.setMaximum(max(total, 1))
        self.bar.setValue(done)
        self.rate.setText(f"reflow: {done:,} / {total:,} pairs drawn from the run's ODE")

    def _on_progress_change(self, progress) -> None:
        if progress is None:
            self.bar.setValue(0)
            self.rate.setText("")
            return
        self.bar.setMaximum(progress.total)
        self.bar.setValue(progress.step)
        self.rate.setText(
            f"step {progress.step:,} / {progress.total:,} · {progress.steps_per_second:,.0f} steps/s · "
            f"{progress.time_left()} · loss {progress.loss:.4f}"
        )

    def _on_run_change(self, run) -> None:
        """An opened run has no live progress: show how far it was trained."""
        self._on_status_change(self.state.status)
        if run is not None and not self.state.progress_history:
            self.bar.setMaximum(max(run.train_config.steps, 1))
            self.bar.setValue(min(run.step, run.train_config.steps))
            loss = f" · final loss {run.loss_history[-1]:.4f}" if run.loss_history else ""
            self.rate.setText(f"trained {run.step:,} steps{loss}")
