"""Plot titles that fit their plot: elided in a small window, whole in their tooltip."""

from __future__ import annotations

import pyqtgraph as pg
import shiboken6


class FittedTitle(pg.LabelItem):
    """A plot title that never widens its plot. pyqtgraph's title asks for its whole text's width as its minimum,
    so a long title in a small window pushes the plots past their widget's edge (the title, the plots to its right
    and their legends are cut off there). This one asks for no width and, in a plot narrower than its text, shows
    the text ending in '…', whole in its tooltip. ``whole`` is the text it was given."""

    def __init__(self, parent: pg.PlotItem):
        super().__init__("", size="11pt", parent=parent)
        self.whole = ""

    def setText(self, text: str, **args) -> None:
        self.whole = text
        super().setText(self._fitted(), **args)

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)

    def sizeHint(self, which, constraint=None):
        hint = super().sizeHint(which, constraint)
        return pg.QtCore.QSizeF(0, hint.height()) if which == pg.QtCore.Qt.SizeHint.MinimumSize else hint

    def resizeEvent(self, ev) -> None:
        if not shiboken6.isValid(self.item):  # a window torn down in no particular order may resize it last
            return
        super().resizeEvent(ev)
        fitted = self._fitted()
        if fitted != self.text:  # (setText lays the label out again, which comes back here with the same text)
            super().setText(fitted)

    def _fitted(self) -> str:
        """``whole``, elided to the label's width (all of it before the label has one)."""
        font = pg.QtGui.QFont(self.item.font())
        size = str(self.opts.get("size", ""))
        if size.endswith("pt"):
            font.setPointSizeF(float(size[:-2]))
        room = self.width() - 2 * self.item.document().documentMargin()
        metrics = pg.QtGui.QFontMetricsF(font)
        if room <= 0 or metrics.horizontalAdvance(self.whole) <= room:
            self.setToolTip("")
            return self.whole
        self.setToolTip(self.whole)
        return metrics.elidedText(self.whole, pg.QtCore.Qt.TextElideMode.ElideRight, room)


def fit_title(plot: pg.PlotItem, text: str) -> FittedTitle:
    """Title ``plot`` with ``text`` in a ``FittedTitle`` (which takes the place of pyqtgraph's own title label)."""
    label = plot.titleLabel
    if not isinstance(label, FittedTitle):
        plot.layout.removeItem(label)
        label.setVisible(False)  # kept, as the plot's hidden child: items taken out of a live scene can crash it
        fitted = FittedTitle(plot)
        fitted.replaced = label
        plot.layout.addItem(fitted, 0, 1)
        plot.titleLabel = fitted
    plot.setTitle(text)
    return plot.titleLabel
