"""The formula panel: beside a scrubbable view, the equation of the step at the current frame in the paper's
notation, with the numbers of the frame substituted for one point (the pinned one, or the one under the pointer),
as Qt rich text, and a *Copy as LaTeX* action. It draws a ``FormulaModel`` and writes the pinned point back."""

from __future__ import annotations

import html
import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from diffvis.app.models.formula import FormulaModel
from diffvis.core.explain import Explanation, number_text

MATH = "font-family: 'DejaVu Serif', 'Times New Roman', serif;"  # its accents sit on their letters (x̂₀)
MIN_WIDTH = 160  # px: the panel's narrowest (its buttons); the splitter beside the plot widens it
WIDTH = 330  # px: the width it asks for, where the window has room
_SUB = re.compile(r"_\{([^{}]*)\}|_([^\s{(·,;/)])")
_SUP = re.compile(r"\^\{([^{}]*)\}")


def rich(text: str) -> str:
    """Plain formula text ('x_{t−1} = √ᾱ_{t−1} x̂₀', 'σ_t²') as Qt rich text with sub- and superscripts."""
    out = _SUB.sub(lambda m: f"<sub>{m.group(1) or m.group(2)}</sub>", html.escape(text, quote=False))
    return _SUP.sub(lambda m: f"<sup>{m.group(1)}</sup>", out)


def explanation_html(e: Explanation) -> str:
    """The step as rich text: what it is, its equation, each term with its value, the equation with the numbers
    in it, and the result (standardised and in data coordinates)."""
    step = e.step
    rows = "".join(f"<tr><td align='right'><span style=\"{MATH}\">{rich(t.symbol)}</span></td><td>&nbsp;=&nbsp;</td>"
                   f"<td>{number_text(t.value)}</td></tr>" for t in step.terms)  # fmt: skip
    result = number_text(step.result.value)
    if step.result.is_vector:
        result += f" (data: {number_text(e.result_data)})"
    lines = [f"<b>{html.escape(e.title)}</b>, {html.escape(e.where)}<br>",
             f"<small>{html.escape(e.paper)}</small>",
             f"<p style=\"{MATH} font-size: large\">{rich(e.formula)}</p>",
             f"<table cellspacing='0' cellpadding='1'>{rows}</table>"]  # fmt: skip
    if step.combination:
        lines.append(f'<p style="{MATH}">{rich(e.substituted())}<br>= {result}</p>')
    else:
        lines.append(f'<p style="{MATH}">{rich(step.result.symbol)} = {result}</p>')
    lines.append(f"<small>{html.escape(e.note)}</small>")
    return "".join(lines)


class FormulaPanel(QWidget):
    """The rich-text equation, the pinned point's number, and *Copy as LaTeX* (a ``QAction``, Ctrl+Shift+L)."""

    def __init__(self, model: FormulaModel, parent=None, *, pick: bool = True):
        super().__init__(parent)
        self.model = model
        self.text = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # the text wraps to whatever width the splitter leaves it: it never widens the window (1024 px must do)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(MIN_WIDTH)
        self.point = QSpinBox(minimum=0, maximum=20_000)
        self.point.setToolTip("the sample explained; hover over a sample in the plot to see its step instead")
        self.copy_action = QAction("Copy as LaTeX", self)
        self.copy_action.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(self.copy_action)
        copy = QPushButton("Copy as LaTeX")
        copy.setToolTip("copy the equation with its numbers as a LaTeX align* block (Ctrl+Shift+L)")
        copy.clicked.connect(self.copy_action.trigger)
        row = QHBoxLayout()
        row.addWidget(QLabel("Point"))
        row.addWidget(self.point, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        if pick:  # (the density view explains its clicked point, not a sample)
            layout.addLayout(row)
        else:
            for widget in (self.point, *(row.itemAt(i).widget() for i in range(row.count()))):
                widget.hide()
        layout.addWidget(copy)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)  # never taller than the view
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.text)
        layout.addWidget(scroll, 1)

        self.copy_action.triggered.connect(self._copy)
        self.point.valueChanged.connect(lambda value: setattr(model, "point", value))
        model.events.connect(self._on_model_event)
        self._show()

    def sizeHint(self) -> QSize:
        """As wide as an equation reads well (``WIDTH``); the splitter gives it less in a narrow window."""
        return QSize(WIDTH, super().sizeHint().height())

    def _on_model_event(self, name: str, value) -> None:
        if name == "point" and self.point.value() != value:
            self.point.setValue(value)
        if name in ("explanation", "reason"):
            self._show()

    def _show(self) -> None:
        e = self.model.explanation
        if e is None:
            self.text.setText(html.escape(self.model.reason))
        else:
            self.text.setText(explanation_html(e))

    def _copy(self, checked: bool = False) -> None:
        del checked  # QAction.triggered passes it
        latex = self.model.latex()
        if latex:
            QGuiApplication.clipboard().setText(latex)


HOVER_PIXELS = 8  # a sample this near the pointer (in screen pixels) is the one the formula panel explains


class FormulaHost:
    """For a view with a ``figure`` in its layout, a ``model`` (a SceneModel) and ``frame_points(frame)``:
    ``add_formula_panel(plot)`` puts a formula panel to the right of the figure, the two in a splitter, and
    hovering over a sample of ``plot`` explains that one."""

    formula: FormulaModel | None = None

    def add_formula_panel(self, plot=None, *, pick: bool = True, room: int = 0) -> FormulaPanel:
        """``pick``: the samples of ``plot`` are chosen by hovering and by number (False: the view explains what
        its model says, e.g. a clicked point). ``room``: the width the figure needs; where the panel would leave
        it less, the panel starts folded against the right edge (drag the handle to open it)."""
        self.formula = FormulaModel()
        self.formula.follow(self.model)
        panel = FormulaPanel(self.formula, pick=pick)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setHandleWidth(8)
        self.formula_splitter, self._formula_room = splitter, room
        self.figure.parentWidget().layout().replaceWidget(self.figure, splitter)
        splitter.addWidget(self.figure)
        splitter.addWidget(panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self._hovered_plot = plot
        if pick and plot is not None:  # (None: the view tells the formula model what is hovered itself)
            self.hover_proxy = pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_hover)
        return panel

    def fold_formula_if_cramped(self) -> None:
        """On first show: fold the panel away where, at its asked-for width, it would leave the figure less than
        its ``room``."""
        splitter = self.formula_splitter
        if self._formula_room and splitter.width() - WIDTH < self._formula_room:
            splitter.setSizes([splitter.width(), 0])

    def formula_points(self, frame: int) -> np.ndarray:
        """(N, 2) what hovering picks from at ``frame``, in the order the model's ``explain`` numbers it: the
        samples of the frame (a view whose panel explains something else says so)."""
        return self.frame_points(frame)

    def _on_hover(self, event) -> None:
        """The sample of the frame shown nearest the pointer, within a few pixels, is the one explained."""
        view_box = self._hovered_plot.getPlotItem().vb
        if self.model.result is None or not view_box.sceneBoundingRect().contains(event[0]):
            self.formula.hovered = None
            return
        here = view_box.mapSceneToView(event[0])
        pixel = view_box.viewPixelSize()
        points = self.formula_points(self.model.frame)
        gaps = np.hypot((points[:, 0] - here.x()) / pixel[0], (points[:, 1] - here.y()) / pixel[1])
        nearest = int(np.nanargmin(gaps)) if np.isfinite(gaps).any() else -1
        self.formula.hovered = nearest if nearest >= 0 and gaps[nearest] <= HOVER_PIXELS else None
