"""A scatter whose points move from frame to frame without being rebuilt.

``ScatterPlotItem.setData`` looks every point's symbol up in its atlas again (a Python loop: about 7 ms for
5,000 points, half a frame's budget at 60 fps). Scrubbing moves the same points, so ``move_to`` keeps each
point's symbol, size, pen and brush and only replaces the coordinates.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


class MovingScatter(pg.ScatterPlotItem):
    def move_to(self, pos: np.ndarray) -> None:
        """Show the points at ``pos`` (N, 2); a new N (or none yet) goes through ``setData``."""
        if len(pos) == 0 or len(pos) != len(self.data):
            self.setData(pos=pos)
            return
        self.data["x"] = pos[:, 0]
        self.data["y"] = pos[:, 1]
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.bounds = [None, None]
        self.invalidate()
        self.sigPlotChanged.emit(self)
