"""The data set as a scatter plot, and a canvas to paint points with the mouse."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

from diffvis.app.models.brush import DRAWN, Brush
from diffvis.app.state import LabState
from diffvis.app.views.exporting import ExportActions
from diffvis.app.views.style import class_brushes
from diffvis.app.views.titles import fit_title
from diffvis.core.datasets import PointSet


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
    """Shows ``state.data``; while ``brush`` draws, each dab paints points in its disc (or erases them). Exports
    (File ▸ Export view…) as a still: one frame, the data's points."""

    def __init__(self, state: LabState, brush: Brush, parent=None):
        super().__init__(parent)
        self.state, self.brush = state, brush
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
        brush.events.connect(self._on_brush_change)
        state.data_changed.connect(self._on_data_change)
        self._on_data_change(state.data)

    def _on_brush_change(self, name: str, on) -> None:
        if name != "drawing":
            return
        self.box.drawing = on
        if on and len(self.state.data) == 0:
            self.plot.setRange(xRange=(-4, 4), yRange=(-4, 4))

    def dab(self, x: float, y: float) -> None:
        """Paint (or erase) around (x, y) in data coordinates with the brush, on the points drawn so far."""
        data = self.state.data if self.state.data_info.get("source") == DRAWN else PointSet(np.zeros((0, 2)))
        self.state.set_data(*self.brush.dab(data, x, y, self.rng))

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
