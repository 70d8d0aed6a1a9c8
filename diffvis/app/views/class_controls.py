"""The class picker and guidance slider of the sampling views: which class to sample (none, every class in
proportion, or one) and the classifier-free guidance scale w from 0 to 10."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL, Classes

W_STEPS_PER_UNIT = 10  # the slider moves w in steps of 0.1
MAX_W = 10
SETTLE_MS = 150  # a dragged slider recomputes once it rests this long


def compact_combo(box: QComboBox, characters: int = 5) -> None:
    """A combo box as narrow as ``characters`` letters, whatever its items: long names must not widen a small
    window (the popup still shows them whole)."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(characters)


def classes_in_use(state, exact: bool) -> Classes | None:
    """The classes the chosen model knows: the run's, or the data's for the exact model (or with no run)."""
    run = state.model_run
    return Classes.of(state.data) if exact or run is None else run.classes


class ClassPicker(QComboBox):
    """None (unconditional), ``ALL_CLASSES`` or a dense class id, offered for the classes of the model in use."""

    DEFAULT_TEXT = "all, in proportion"

    def __init__(self, parent=None, *, offer_all: bool = True):
        super().__init__(parent)
        self.classes: Classes | None = None
        self.offer_all = offer_all
        compact_combo(self)
        self.setToolTip("the class to sample: text-to-image's prompt, in 2D\n"
                        "(needs a model trained on labelled data, or the exact model of labelled data)")  # fmt: skip
        self.set_classes(None)

    def set_classes(self, classes: Classes | None) -> None:
        """Offer ``classes`` (None: only 'unconditional'), keeping a choice among classes when it is still offered;
        a model that newly has classes starts on 'all, in proportion' (where a conditional model is best)."""
        if classes == self.classes and self.count():
            return
        # by name: the same id may be another class of other data
        keep = self.currentText() if self.classes is not None else self.DEFAULT_TEXT
        self.classes = classes
        self.blockSignals(True)
        self.clear()
        self.addItem("unconditional", None)
        if classes is not None:
            if self.offer_all:
                self.addItem(self.DEFAULT_TEXT, ALL_CLASSES)
            for i, name in enumerate(classes.names):
                self.addItem(name, i)
        index = self.findText(keep)
        self.setCurrentIndex(index if index >= 0 else max(self.findText(self.DEFAULT_TEXT), 0))
        self.setEnabled(classes is not None)
        self.blockSignals(False)
        self.currentIndexChanged.emit(self.currentIndex())

    @property
    def label(self):
        return self.currentData()

    @property
    def request_label(self):
        """The class a sampler is asked for: the choice, or ``UNCONDITIONAL`` when a model with classes is to be
        sampled without one (None alone would mean its default, every class in proportion)."""
        if self.label is None and self.classes is not None:
            return UNCONDITIONAL
        return self.label


class GuidanceSlider(QWidget):
    """w from 0 to 10 in steps of 0.1; ``settled(w)`` fires once the slider rests, ``changed(w)`` at every move."""

    changed = Signal(float)
    settled = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=MAX_W * W_STEPS_PER_UNIT, value=10)
        self.slider.setToolTip("classifier-free guidance ε̃ = ε(∅) + w (ε(c) − ε(∅)): 0 unconditional,\n"
                               "1 plain conditional, more pushes samples into the class's core")  # fmt: skip
        self.readout = QLabel()
        self.readout.setMinimumWidth(52)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.readout)
        self.timer = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self.timer.timeout.connect(lambda: self.settled.emit(self.w))
        self.slider.valueChanged.connect(self._on_move)
        self._on_move(self.slider.value(), quiet=True)

    @property
    def w(self) -> float:
        return self.slider.value() / W_STEPS_PER_UNIT

    def set_w(self, w: float) -> None:
        self.slider.setValue(round(w * W_STEPS_PER_UNIT))

    def _on_move(self, _value: int, quiet: bool = False) -> None:
        self.readout.setText(f"w = {self.w:.1f}")
        if not quiet:
            self.changed.emit(self.w)
            self.timer.start()
