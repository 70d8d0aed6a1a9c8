"""Data set controls: a built-in set with n, noise and seed (live preview), a point file, or drawing (the brush's
settings: the data view paints with them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffvis.app.models.brush import DRAWN, Brush, drawn
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import compact_combo
from diffvis.core.datasets import DATASETS, MAX_POINTS, PointSet
from diffvis.core.sources import load_source
from diffvis.errors import DiffvisError


class DataPanel(QGroupBox):
    """Writes the chosen points to ``state.data``; the draw controls edit ``brush``, which the data view's canvas
    paints with."""

    def __init__(self, state: LabState, brush: Brush, parent: QWidget | None = None):
        super().__init__("Data", parent)
        self.state, self.brush = state, brush
        self.source = QComboBox()
        self.source.addItems(list(DATASETS))
        compact_combo(self.source, 8)  # a loaded file's long name must not widen the panel
        self.n = QSpinBox(minimum=2, maximum=MAX_POINTS, value=20_000, singleStep=1000)
        self.noise = QDoubleSpinBox(minimum=0.0, maximum=10.0, decimals=3, singleStep=0.01)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.load_button = QPushButton("Load points…")
        self.draw = QCheckBox("Draw points")
        self.brush_radius = QDoubleSpinBox(minimum=0.01, maximum=5.0, value=brush.radius, singleStep=0.05,
                                           decimals=2)  # fmt: skip
        self.erase = QCheckBox("Erase")
        self.label = QSpinBox(minimum=0, maximum=9, value=brush.label)
        self.clear_button = QPushButton("Clear")
        self.summary = QLabel()
        self.summary.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Data set", self.source)
        form.addRow("Points", self.n)
        form.addRow("Noise", self.noise)
        form.addRow("Seed", self.seed)
        draw = QGridLayout()
        draw.addWidget(self.draw, 0, 0)
        draw.addWidget(self.erase, 0, 1)
        draw.addWidget(self.clear_button, 0, 2)
        draw.addWidget(QLabel("Brush"), 1, 0)
        draw.addWidget(self.brush_radius, 1, 1)
        draw.addWidget(QLabel("Class"), 2, 0)
        draw.addWidget(self.label, 2, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.load_button)
        layout.addLayout(draw)
        layout.addWidget(self.summary)

        self.source.currentTextChanged.connect(self._on_source_change)
        for spin in (self.n, self.noise, self.seed):
            spin.valueChanged.connect(self.regenerate)
        self.load_button.clicked.connect(self.choose_file)
        self.clear_button.clicked.connect(self.clear_drawing)
        self.draw.toggled.connect(lambda on: setattr(brush, "drawing", on))
        self.brush_radius.valueChanged.connect(lambda r: setattr(brush, "radius", r))
        self.erase.toggled.connect(lambda on: setattr(brush, "erase", on))
        self.label.valueChanged.connect(lambda c: setattr(brush, "label", c))
        brush.events.connect(self._on_brush_change)
        self.state.data_changed.connect(self._on_data_change)
        self._on_source_change(self.source.currentText())

    def _on_brush_change(self, name: str, value) -> None:
        editor = {"drawing": self.draw, "radius": self.brush_radius, "erase": self.erase, "label": self.label}[name]
        editor.blockSignals(True)
        if isinstance(editor, QCheckBox):
            editor.setChecked(value)
        else:
            editor.setValue(value)
        editor.blockSignals(False)

    def _on_source_change(self, name: str) -> None:
        if name in DATASETS:
            self.noise.blockSignals(True)
            self.noise.setValue(DATASETS[name].default_noise)
            self.noise.blockSignals(False)
            self.regenerate()
        for w in (self.n, self.noise, self.seed):
            w.setEnabled(name in DATASETS)

    def regenerate(self) -> None:
        """Draw the chosen built-in set again (live preview of n, noise and seed)."""
        name = self.source.currentText()
        if name not in DATASETS:
            return
        try:
            points, info = load_source(name, n=self.n.value(), noise=self.noise.value(), seed=self.seed.value())
        except DiffvisError as e:
            self.state.say(str(e))
            return
        self.state.set_data(points, info)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load points", "", "Point files (*.csv *.txt *.npy)")
        if path:
            self.load_file(path)

    def load_file(self, path: str | Path) -> bool:
        """Load a point file; a bad one leaves the current data untouched and says why (a dialog)."""
        try:
            points, info = load_source(str(path), n=0)
        except DiffvisError as e:
            self.state.fail(str(e))
            return False
        self._select_source(Path(path).name)
        self.state.set_data(points, info)
        return True

    def show_source(self, info: dict) -> None:
        """Show where the current points came from (an opened run's data) without drawing them again."""
        name = info.get("source", "")
        if name in DATASETS:
            widgets = (self.source, self.n, self.noise, self.seed)
            for w in widgets:
                w.blockSignals(True)
            self.source.setCurrentText(name)
            self.n.setValue(int(info.get("n", self.n.value())))
            self.noise.setValue(float(info.get("noise", DATASETS[name].default_noise)))
            self.seed.setValue(int(info.get("seed", 0)))
            for w in widgets:
                w.blockSignals(False)
                w.setEnabled(True)
        elif name:
            self._select_source(Path(name).name)

    def clear_drawing(self) -> None:
        self.state.set_data(*drawn(np.zeros((0, 2)), None))

    def restore(self, settings: dict) -> None:
        """Draw a built-in set again with the n, noise and seed saved in ``settings`` (what is not a number is
        left as it is)."""
        self.show_source({k: v for k, v in settings.items() if k == "source" or isinstance(v, int | float)})
        self.regenerate()

    def _select_source(self, name: str) -> None:
        self.source.blockSignals(True)
        if self.source.findText(name) < 0:
            self.source.addItem(name)
        self.source.setCurrentText(name)
        self.source.blockSignals(False)
        for w in (self.n, self.noise, self.seed):
            w.setEnabled(False)

    def _on_data_change(self, data: PointSet) -> None:
        if self.state.data_info.get("source") == DRAWN:  # painted on the data view's canvas
            self._select_source(DRAWN)
        if len(data) == 0:
            self.summary.setText("No points yet: draw some, or pick a data set.")
            return
        lo, hi = data.points.min(0), data.points.max(0)
        classes = "" if data.labels is None else f", {len(np.unique(data.labels))} classes"
        self.summary.setText(
            f"{len(data):,} points{classes}\nx ∈ [{lo[0]:.2f}, {hi[0]:.2f}], y ∈ [{lo[1]:.2f}, {hi[1]:.2f}]"
        )
