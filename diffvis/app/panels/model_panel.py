"""Model, schedule and optimiser settings, validated as they are typed: an invalid set cannot start a run."""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QWidget,
)

from diffvis.app.state import LabState
from diffvis.app.views.class_controls import compact_combo
from diffvis.core.coupling import COUPLINGS
from diffvis.core.datasets import DATASETS
from diffvis.core.flow import SOURCES
from diffvis.core.models import ACTIVATIONS, DEFAULT_PREDICTION, PREDICTING, ModelConfig
from diffvis.core.parametrization import PREDICTION_TITLES, PREDICTIONS
from diffvis.core.registry import OBJECTIVES
from diffvis.core.schedules import MAX_T, MIN_T, SCHEDULE_KINDS
from diffvis.core.training import TrainConfig
from diffvis.errors import ConfigError


class ModelPanel(QGroupBox):
    validity_changed = Signal(bool)

    def __init__(self, state: LabState, parent: QWidget | None = None):
        super().__init__("Model and training", parent)
        self.state = state
        m, t = state.model_config, state.train_config
        self.objective = QComboBox()
        for info in OBJECTIVES.values():
            self.objective.addItem(info.title, info.name)
            self.objective.setItemData(self.objective.count() - 1, f"{info.paper}: predicts {info.predicts}", 3)
        self.prediction = QComboBox()
        for name in PREDICTIONS:
            self.prediction.addItem(PREDICTION_TITLES[name], name)
        self.prediction.setToolTip("DDPM: what the network predicts; ε-prediction flings a few samples far off "
                                   "from far-out noise (ε̂'s error is amplified 1/√ᾱ_t ≈ 160× in x̂₀), v does "
                                   "not")  # fmt: skip
        self.schedule = QComboBox()
        self.schedule.addItems(SCHEDULE_KINDS)
        self.timesteps = QSpinBox(minimum=MIN_T, maximum=MAX_T, value=t.timesteps, singleStep=100)
        self.width = QSpinBox(minimum=8, maximum=4096, value=m.width, singleStep=16)
        self.depth = QSpinBox(minimum=1, maximum=32, value=m.depth)
        self.activation = QComboBox()
        self.activation.addItems(list(ACTIVATIONS))
        self.lr = QDoubleSpinBox(minimum=1e-5, maximum=1.0, decimals=5, value=t.lr, singleStep=1e-4)
        self.batch = QSpinBox(minimum=1, maximum=1_000_000, value=t.batch, singleStep=128)
        self.steps = QSpinBox(minimum=1, maximum=10_000_000, value=t.steps, singleStep=1000)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=t.seed)
        self.device = QComboBox()
        self.device.addItem("auto", "auto")
        self.device.addItem("CPU", "cpu")
        if torch.cuda.is_available():
            self.device.addItem(f"CUDA ({torch.cuda.get_device_name(0)})", "cuda")
        self.source = QComboBox()
        for name in SOURCES:
            self.source.addItem(name if name in DATASETS else f"{name}: N(0, I)", name)
        self.source.setToolTip("flow matching: where the paths start, Gaussian noise or a data set (data to data)")
        self.coupling = QComboBox()
        self.coupling.addItems(COUPLINGS)
        self.coupling.setToolTip("flow matching: how each batch pairs source and data points, independently (I-CFM) "
                                 "or by minibatch optimal transport (OT-CFM: straighter paths)")  # fmt: skip
        for combo in (self.objective, self.prediction, self.schedule, self.activation, self.device, self.source,
                      self.coupling):  # fmt: skip
            compact_combo(combo, 8)  # a narrow panel elides 'NCSN (denoising score matching)' or a GPU's name
        self.conditional = QCheckBox("condition on classes", checked=t.conditional)
        self.conditional.setToolTip("labelled data (two classes or more) trains one network for ε(x, t, class) and, "
                                    "by label dropout, ε(x, t, ∅)")  # fmt: skip
        self.p_uncond = QDoubleSpinBox(minimum=0.0, maximum=0.95, decimals=2, value=t.p_uncond, singleStep=0.05)
        self.p_uncond.setToolTip("label dropout: the share of training points shown without their label (∅)")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d0453a")

        form = QFormLayout(self)
        for label, widget in [
            ("Objective", self.objective), ("Prediction", self.prediction), ("Source", self.source),
            ("Coupling", self.coupling),
            ("Schedule", self.schedule), ("Timesteps T", self.timesteps),
            ("Width", self.width), ("Depth", self.depth), ("Activation", self.activation),
            ("Learning rate", self.lr), ("Batch size", self.batch), ("Steps", self.steps), ("Seed", self.seed),
            ("Device", self.device), ("Labels", self.conditional), ("Label dropout", self.p_uncond),
        ]:  # fmt: skip
            form.addRow(label, widget)
        form.addRow(self.error)
        for combo in (self.objective, self.prediction, self.schedule, self.activation, self.device, self.source,
                      self.coupling):  # fmt: skip
            combo.currentIndexChanged.connect(self.apply)
        for spin in (self.timesteps, self.width, self.depth, self.lr, self.batch, self.steps, self.seed, self.p_uncond):
            spin.valueChanged.connect(self.apply)
        self.conditional.toggled.connect(self.apply)
        self.valid = True
        state.train_config_changed.connect(lambda cfg: self.load(self.state.model_config.to_dict(), cfg.to_dict()))
        state.model_config_changed.connect(lambda m: self.load(m.to_dict(), self.state.train_config.to_dict()))

    def load(self, model: dict, train: dict) -> None:
        """Show saved settings (from the last session); unknown or invalid values keep the defaults."""
        try:
            m, t = ModelConfig.from_dict({**ModelConfig().to_dict(), **model}), TrainConfig.from_dict(train)
        except (ConfigError, KeyError, TypeError, ValueError):
            return
        widgets = [self.objective, self.schedule, self.timesteps, self.width, self.depth, self.activation, self.lr,
                   self.batch, self.steps, self.seed, self.device, self.conditional, self.p_uncond, self.source,
                   self.coupling, self.prediction]  # fmt: skip
        for w in widgets:
            w.blockSignals(True)
        self.objective.setCurrentIndex(max(0, self.objective.findData(m.objective)))
        self.prediction.setCurrentIndex(max(0, self.prediction.findData(m.prediction or DEFAULT_PREDICTION)))
        self.schedule.setCurrentText(t.schedule)
        self.activation.setCurrentText(m.activation)
        self.device.setCurrentIndex(max(0, self.device.findData(t.device)))
        if self.source.findData(t.source) < 0:  # a point file a run started from (`train --source FILE`)
            self.source.addItem(Path(t.source).name, t.source)
        self.source.setCurrentIndex(self.source.findData(t.source))
        self.coupling.setCurrentIndex(max(0, self.coupling.findText(t.coupling)))  # a reflowed run's: independent
        values = [(self.timesteps, t.timesteps), (self.width, m.width), (self.depth, m.depth), (self.lr, t.lr),
                  (self.batch, t.batch), (self.steps, t.steps), (self.seed, t.seed),
                  (self.p_uncond, t.p_uncond)]  # fmt: skip
        for spin, value in values:
            spin.setValue(value)
        self.conditional.setChecked(t.conditional)
        for w in widgets:
            w.blockSignals(False)
        self.apply()

    def apply(self) -> None:
        """Validate the widgets' values and write them to the state; show the reason when they do not fit. Source and
        coupling are offered, and written, only for an objective that transports (the defaults otherwise), the
        prediction only for DDPM."""
        transports = OBJECTIVES[self.objective.currentData()].transports
        predicts = self.objective.currentData() == PREDICTING
        self.prediction.setEnabled(predicts)
        self.source.setEnabled(transports)
        self.coupling.setEnabled(transports)
        flow = {"source": self.source.currentData(), "coupling": self.coupling.currentText()} if transports else {}
        try:
            model = ModelConfig(
                objective=self.objective.currentData(), width=self.width.value(), depth=self.depth.value(),
                activation=self.activation.currentText(),
                prediction=self.prediction.currentData() if predicts else None,
            )  # fmt: skip
            train = TrainConfig(
                steps=self.steps.value(), batch=self.batch.value(), lr=self.lr.value(), seed=self.seed.value(),
                schedule=self.schedule.currentText(), timesteps=self.timesteps.value(),
                device=self.device.currentData(), conditional=self.conditional.isChecked(),
                p_uncond=self.p_uncond.value(), **flow,
            )  # fmt: skip
        except ConfigError as e:
            self._set_valid(False, str(e))
            return
        self.state.set_model_config(model)
        self.state.set_train_config(train)
        self._set_valid(True, "")

    def _set_valid(self, valid: bool, reason: str) -> None:
        self.error.setText(reason)
        if valid != self.valid:
            self.valid = valid
            self.validity_changed.emit(valid)
