"""The class picker and guidance slider of the sampling views: which class to sample (none, every class in
proportion, or one) and the classifier-free guidance scale w from 0 to 10; and compact combo boxes, which give way
in a small window and then show their text elided, whole in the tooltip."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QWidget,
)

from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL, Classes
from diffvis.core.compare import GUIDES

W_STEPS_PER_UNIT = 10  # the slider moves w in steps of 0.1
MAX_W = 10
SETTLE_MS = 150  # a dragged slider recomputes once it rests this long


def compact_combo(box: QComboBox, characters: int = 5) -> None:
    """A combo box that asks for room for its longest item but gets by with ``characters`` letters: long names
    must not widen a small window. Squeezed below its longest item, the box draws its text ending in '…' and
    carries it whole in its tooltip (the popup still shows every item whole)."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # size hint: the longest item
    box.setMinimumContentsLength(characters)  # minimum size hint: this many letters
    if box.findChild(_ComboElider) is None:
        _ComboElider(box)


def combo_text_room(box: QComboBox) -> int:
    """The width in pixels a (not editable) combo box gives its current text, as its style draws it."""
    option = QStyleOptionComboBox()
    box.initStyleOption(option)
    field = box.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                       QStyle.SubControl.SC_ComboBoxEditField, box)  # fmt: skip
    icon = option.iconSize.width() + 4 if not option.currentIcon.isNull() else 0
    return field.width() - 2 - icon  # the style draws the label 1 px in from each side of the field


def combo_text_fits(box: QComboBox) -> bool:
    """Whether the box shows its current text whole."""
    return box.fontMetrics().horizontalAdvance(box.currentText()) <= combo_text_room(box)


class _ComboElider(QObject):
    """Draws a squeezed combo box's text elided, and keeps its tooltip: the box's own tip, after the whole text
    while the text does not fit."""

    def __init__(self, box: QComboBox):
        super().__init__(box)
        self.box = box
        self.own_tip = self.shown_tip = box.toolTip()
        box.installEventFilter(self)
        box.currentIndexChanged.connect(lambda _: self.update_tip())  # (a class picker refills with signals blocked,
        box.currentTextChanged.connect(lambda _: self.update_tip())  # then says only that the index changed)

    def update_tip(self) -> None:
        box = self.box
        if box.toolTip() != self.shown_tip:  # set by its owner since: that is the box's own tip now
            self.own_tip = box.toolTip()
        fits = box.isEditable() or combo_text_fits(box)
        self.shown_tip = self.own_tip if fits else "\n".join(t for t in (box.currentText(), self.own_tip) if t)
        box.setToolTip(self.shown_tip)

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.ToolTip):
            self.update_tip()
        elif kind == QEvent.Type.Paint and not self.box.isEditable() and not combo_text_fits(self.box):
            self._paint_elided()
            return True
        return False

    def _paint_elided(self) -> None:
        """QComboBox's own painting, with the current text elided to the room the style gives it."""
        box = self.box
        painter = QStylePainter(box)
        option = QStyleOptionComboBox()
        box.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = box.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideRight,
                                                          combo_text_room(box))  # fmt: skip
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)
        painter.end()


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

    def choose(self, label) -> None:
        """Choose ``label`` as ``request_label`` gives it (``UNCONDITIONAL``: 'unconditional'); None, a request's
        "the model's default", and a class not offered choose the default: 'all, in proportion' where offered."""
        default = max(self.findText(self.DEFAULT_TEXT), 0)
        if isinstance(label, str) and label == UNCONDITIONAL:
            self.setCurrentIndex(0)
        else:
            index = -1 if label is None else self.findData(label)
            self.setCurrentIndex(index if index >= 0 else default)

    @property
    def request_label(self):
        """The class a sampler is asked for: the choice, or ``UNCONDITIONAL`` when a model with classes is to be
        sampled without one (None alone would mean its default, every class in proportion)."""
        if self.label is None and self.classes is not None:
            return UNCONDITIONAL
        return self.label


OTHER_RUN = "autoguidance by another run…"


def pick_run_folder(parent) -> str | None:
    """Ask for a saved run (its run.json); its folder, or None when the dialog is cancelled."""
    from PySide6.QtWidgets import QFileDialog

    from diffvis.app.settings import runs_dir

    path, _ = QFileDialog.getOpenFileName(parent, "Guide with a weaker run", str(runs_dir()), "diffvis run (run.json)")
    return str(Path(path).parent) if path else None


class GuideChoice(QComboBox):
    """How the guidance scale w guides, as (interval, guide_with): the core's ``GUIDES`` (classifier-free; in an
    interval of noise levels; autoguidance by the run's half-way snapshot), the runs picked so far, and
    'autoguidance by another run…', which asks for a run folder (``pick``) and adds it. ``chosen`` fires with the
    new guide when the user picks one (a cancelled pick keeps the last)."""

    chosen = Signal(object)

    def __init__(self, pick=pick_run_folder, parent=None):
        super().__init__(parent)
        self.pick = pick
        for title, guide in GUIDES:
            self.addItem(title, guide)
        self.addItem(OTHER_RUN, None)
        self._last = 0
        self.setToolTip("how w guides: classifier-free (Ho & Salimans 2021), only in an interval of noise levels "
                        "(Kynkäänniemi et al. 2024), or by a weaker version of the run itself, its EMA weights "
                        "half-way through training, or another, weaker run on the same data (autoguidance, Karras "
                        "et al. 2024; any run, with or without classes)")  # fmt: skip
        compact_combo(self, 8)
        self.currentIndexChanged.connect(self._on_choice)

    @property
    def guide(self) -> tuple:
        return self.itemData(self.currentIndex())

    def show_guide(self, guide: tuple) -> None:
        """Show ``guide`` (silently), adding a picked run's entry when it is not offered yet."""
        with QSignalBlocker(self):
            index = next((i for i in range(self.count()) if self.itemData(i) == guide), None)
            if index is None:
                index = self.count() - 1
                self.insertItem(index, f"autoguidance by {Path(guide[1]).name}", guide)
            self.setCurrentIndex(index)
            self._last = index

    def _on_choice(self, index: int) -> None:
        if self.itemData(index) is None:  # another run: ask for it
            folder = self.pick(self)
            if not folder:
                with QSignalBlocker(self):
                    self.setCurrentIndex(self._last)
                return
            self.show_guide((None, folder))
        self._last = self.currentIndex()
        self.chosen.emit(self.guide)


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
