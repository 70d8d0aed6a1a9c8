"""The data set as a scatter plot, and a canvas to paint points with the mouse."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

from diffvis.app.state import LabState
from diffvis.app.views.exporting import ExportActions
from diffvis.app.views.style import class_brushes
from diffvis.app.views.titles import fit_title
from diffvis.core.datasets import PointSet

POINTS_PER_DAB = 4


class DrawViewBox(pg.ViewBox):
    """A ViewBox that, while ``drawing`` is on, turns left-button presses and drags into ``dabbed(x, y)``."""

    dabbed = Signal(float, float)

    def __init__(self):
        super().__init__()
        self.drawing = False

    def mouseClickEvent(self, ev):
        if self.drawing and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._dab(ev.pos())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):
        if self.drawing and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._dab(ev.pos())
        else:
            super().mouseDragEvent(ev, axis)

    def _dab(self, pos: QPointF) -> None:
        p = self.mapToView(pos)
        self.dabbed.emit(p.x(), p.y())


class DataView(ExportActions, pg.GraphicsLayoutWidget):
    """Shows ``state.data``; with drawing on, each dab adds points in the brush disc (or erases them). Exports
    (File ▸ Export view…) as a still: one frame, the data's points."""

    def __init__(self, state: LabState, panel, parent=None):
        super().__init__(parent)
        self.state, self.panel = state, panel
        self.box = DrawViewBox()
        self.plot = self.addPlot(viewBox=self.box)
        fit_title(self.plot, "Training data")
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.scatter = pg.ScatterPlotItem(size=3, pen=None)
        self.plot.addItem(self.scatter)
        self.figure, self.svg_item = self, self.plot
        self.rng = np.random.default_rng(0)
        self.box.dabbed.connect(self.dab)
        panel.draw.toggled.connect(self._on_draw_toggle)
        state.data_changed.connect(self._on_data_change)
        self._on_data_change(state.data)

    def _on_draw_toggle(self, on: bool) -> None:
        self.box.drawing = on
        if on and len(self.state.data) == 0:
            self.plot.setRange(xRange=(-4, 4), yRange=(-4, 4))

    def dab(self, x: float, y: float) -> None:
        """Paint (or erase) around (x, y) in data coordinates with the panel's brush radius and class."""
        data = self.state.data if self.state.data_info.get("source") == "drawn" else PointSet(np.zeros((0, 2)))
        points = data.points
        labels = data.labels if data.labels is not None else np.zeros(len(points), dtype=np.int64)
        radius = self.panel.brush.value()
        if self.panel.erase.isChecked():
            keep = np.hypot(points[:, 0] - x, points[:, 1] - y) > radius
            points, labels = points[keep], labels[keep]
        else:
            r = radius * np.sqrt(self.rng.uniform(size=POINTS_PER_DAB))
            angle = self.rng.uniform(0, 2 * np.pi, POINTS_PER_DAB)
            new = np.stack([x + r * np.cos(angle), y + r * np.sin(angle)], axis=1)
            points = np.concatenate([points, new])
            labels = np.concatenate([labels, np.full(POINTS_PER_DAB, self.panel.label.value(), dtype=np.int64)])
        has_classes = len(labels) > 0 and labels.max() > 0
        self.panel.set_drawn_points(points, labels if has_classes else None)

    def _on_data_change(self, data: PointSet) -> None:
        self.scatter.setData(pos=data.points, brush=class_brushes(data.labels))
        if not self.box.drawing:
            self.plot.autoRange()

    def has_content(self) -> bool:
        return len(self.state.data) > 0

    def frame_count(self) -> int:
        return 1 if self.has_content() else 0

    def current_frame(self) -> int:
        return 0

    def show_frame(self, frame: int) -> None:
        """A still: every frame is the data."""

    def frame_points(self, frame: int) -> np.ndarray:
        return self.state.data.points

    def all_points(self) -> np.ndarray:
        return self.state.data.points[None]
