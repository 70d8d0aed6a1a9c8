"""A sampler picker and the chosen sampler's settings, built from the registry's parameter specs.

Each sampler of the list has a row of editors, one per ``Param`` (a spin box for a number, a combo box for a
choice, a check box for a switch), labelled with the parameter's symbol and carrying its help, range and default
as a tooltip; only the chosen sampler's row shows, and each row keeps its values while another is chosen. A
sampler added to the registry appears here with its settings, nothing else to change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QSpinBox,
    QStackedWidget,
    QWidget,
)

from diffvis.core.registry import SAMPLERS, Param, SamplerInfo

LOG_SPAN = 1000  # a number whose range spans this factor or more steps by doubling and halving


class ScaledSpinBox(QDoubleSpinBox):
    """A float spin box that shows '5e-05' rather than '0.00005000', and over a range of many decades steps by
    doubling and halving."""

    def __init__(self, minimum: float, maximum: float, parent=None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.log = minimum > 0 and maximum / minimum >= LOG_SPAN
        self.setSingleStep(0.1 if maximum - minimum <= 10 else 1.0)

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        return float(text)

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        try:
            float(text)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos

    def stepBy(self, steps: int) -> None:
        if self.log:
            self.setValue(self.value() * math.pow(2.0, steps))
        else:
            super().stepBy(steps)


def param_editor(param: Param) -> QWidget:
    """The editor of one setting, at its default, with its help as the tooltip."""
    if param.kind is bool:
        editor = QCheckBox(param.name.replace("_", " "))
        editor.setChecked(bool(param.default))
    elif param.choices:
        editor = QComboBox()
        editor.addItems(list(param.choices))
        editor.setCurrentText(str(param.default))
    elif param.kind is int:
        editor = QSpinBox(minimum=int(param.minimum), maximum=int(param.maximum), value=int(param.default))
    else:
        editor = ScaledSpinBox(param.minimum, param.maximum)
        editor.setValue(float(param.default))
    editor.setToolTip(param.describe())
    return editor


def editor_value(editor: QWidget):
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        return editor.currentText()
    return editor.value()


def set_editor_value(editor: QWidget, value) -> None:
    if isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QComboBox):
        editor.setCurrentText(str(value))
    else:
        editor.setValue(value)


def editor_changed(editor: QWidget):
    """The signal an editor emits when its value changes."""
    if isinstance(editor, QCheckBox):
        return editor.toggled
    if isinstance(editor, QComboBox):
        return editor.currentIndexChanged
    return editor.valueChanged


PER_ROW = 4  # settings side by side: EDM's six take two rows, so a view stays narrow enough for a 1024 px window


class SamplerSettings(QWidget):
    """One sampler's editors, ``PER_ROW`` to a row."""

    def __init__(self, info: SamplerInfo, parent=None):
        super().__init__(parent)
        self.info = info
        self.editors: dict[str, QWidget] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, param in enumerate(info.params):
            editor = self.editors[param.name] = param_editor(param)
            row, col = divmod(i, PER_ROW)
            if param.kind is not bool:
                label = QLabel(param.symbol or param.name.replace("_", " "))
                label.setToolTip(param.describe())
                grid.addWidget(label, row, 2 * col)
            grid.addWidget(editor, row, 2 * col + 1)
        if not info.params:
            grid.addWidget(QLabel("(no settings)"), 0, 0)
        grid.setColumnStretch(2 * PER_ROW, 1)

    def params(self) -> dict:
        return {name: editor_value(editor) for name, editor in self.editors.items()}

    def set_params(self, params: dict) -> None:
        for name, value in params.items():
            set_editor_value(self.editors[name], value)


class SamplerControls(QWidget):
    """``changed`` fires when the sampler or any of its settings changes; ``sampler`` and ``params()`` read them,
    ``set_request`` writes a sampler and its settings."""

    changed = Signal()

    def __init__(self, samplers: Iterable[SamplerInfo] | None = None, parent=None):
        super().__init__(parent)
        self.combo = QComboBox()
        self.pages = QStackedWidget()
        self.settings: dict[str, SamplerSettings] = {}
        for info in samplers or SAMPLERS.values():
            self.combo.addItem(info.title, info.name)
            self.combo.setItemData(self.combo.count() - 1, f"{info.title}: {info.paper}\n{info.formula}", 3)
            page = self.settings[info.name] = SamplerSettings(info)
            self.pages.addWidget(page)
            for editor in page.editors.values():
                editor_changed(editor).connect(lambda *_: self.changed.emit())
        self.combo.currentIndexChanged.connect(self._on_sampler)
        self._on_sampler()

    @property
    def sampler(self) -> str:
        return self.combo.currentData()

    @property
    def info(self) -> SamplerInfo:
        return self.settings[self.sampler].info

    def params(self) -> dict:
        """The chosen sampler's settings, every one of them."""
        return self.settings[self.sampler].params()

    def set_sampler(self, sampler: str, params: dict | None = None) -> None:
        """Choose ``sampler`` and set the settings given (the others keep their values)."""
        self.settings[sampler].set_params(params or {})
        self.combo.setCurrentIndex(self.combo.findData(sampler))

    def _on_sampler(self) -> None:
        page = self.settings[self.sampler]
        self.pages.setCurrentWidget(page)
        self.combo.setToolTip(self.combo.itemData(self.combo.currentIndex(), 3))
        self.changed.emit()
