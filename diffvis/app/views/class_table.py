"""Per-class figures of conditional samples: a row per class, hidden for unconditional sampling."""

from __future__ import annotations

from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from diffvis.core.pipeline import ClassScore

COLUMNS = [("class", None), ("samples", None), ("nearest own class", None), ("energy", "energy"),
           ("NN precision", "nn_precision"), ("NN recall", "nn_recall")]  # fmt: skip
MAX_HEIGHT = 150


class ClassTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels([title for title, _ in COLUMNS])
        self.setToolTip("each class's samples against that class's fresh data: the share whose nearest data point "
                        "is of their class,\nand each metric as a ratio to its floor (the same metric between two "
                        "fresh draws of the class)")  # fmt: skip
        self.verticalHeader().setVisible(False)
        self.scores: list[ClassScore] = []
        self.setVisible(False)

    def show_scores(self, scores: list[ClassScore]) -> None:
        self.scores = scores
        self.setVisible(bool(scores))
        self.setRowCount(len(scores))
        for row, score in enumerate(scores):
            cells = [score.name, f"{score.count}", f"{100 * score.accuracy:.1f} %"]
            cells += [f"{score.metrics[key].ratio:.2f}× floor" for _, key in COLUMNS[3:]]
            for col, text in enumerate(cells):
                self.setItem(row, col, QTableWidgetItem(text))
        self.resizeColumnsToContents()
        self._fit_height()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()  # narrower than its columns, it grows by the scroll bar that then covers its last row

    def _fit_height(self) -> None:
        """As tall as the header and every row (at most MAX_HEIGHT), and the sideways scroll bar when it shows."""
        rows = sum(self.rowHeight(r) for r in range(self.rowCount()))
        wide = self.horizontalHeader().length() > self.viewport().width()
        bar = self.horizontalScrollBar().sizeHint().height() if wide else 0
        height = min(MAX_HEIGHT, self.horizontalHeader().height() + rows + bar + 2 * self.frameWidth())
        if height != self.height() or self.minimumHeight() != height:
            self.setFixedHeight(height)
