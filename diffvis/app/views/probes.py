"""Probe particles: clicked into a reverse or score view, each follows its own trajectory from the frame it was
placed at (a ``Probe`` of the view's model); drawn as its path, its position now, its x̂₀ now and its score arrow
now."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg

from diffvis.app.models.scene import Probe
from diffvis.app.widgets.quiver import QuiverItem

PROBE_COLOUR = "#1a1a1a"  # near-black: apart from every colour the views use for points and arrows


class ProbeLayer:
    """The plot items that draw a view's probes; ``show(probes, frame)`` draws them at that frame."""

    def __init__(self, plot: pg.PlotWidget, arrow_length: float = 0.3):
        self.arrow_length = arrow_length
        self.path = pg.PlotCurveItem(pen=pg.mkPen(PROBE_COLOUR, width=2), connect="finite")
        self.x0 = pg.ScatterPlotItem(size=13, pen=pg.mkPen(PROBE_COLOUR, width=2), brush=pg.mkBrush(255, 255, 255, 160),
                                     symbol="o")  # fmt: skip
        self.marker = pg.ScatterPlotItem(size=16, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush(PROBE_COLOUR),
                                         symbol="star")  # fmt: skip
        self.arrows = QuiverItem(width=2.5, colour=PROBE_COLOUR)
        for item in (self.path, self.arrows, self.x0, self.marker):
            item.setZValue(10)
            plot.addItem(item)

    def show(self, probes: Sequence[Probe], frame: int) -> None:
        paths = [np.vstack([p.trajectory.frames[:, 0], [[np.nan, np.nan]]]) for p in probes]
        path = np.vstack(paths) if paths else np.zeros((0, 2))
        self.path.setData(path[:, 0], path[:, 1])
        at = [min(frame, p.trajectory.steps) for p in probes]
        here = np.array([p.trajectory.frames[k, 0] for p, k in zip(probes, at, strict=True)]).reshape(-1, 2)
        x0 = np.array([p.trajectory.x0_hat[k, 0] for p, k in zip(probes, at, strict=True)]).reshape(-1, 2)
        score = np.array([p.scores[k, 0] for p, k in zip(probes, at, strict=True)]).reshape(-1, 2)
        placed = np.isfinite(here).all(1)
        self.marker.setData(pos=here[placed])
        self.x0.setData(pos=x0[placed & np.isfinite(x0).all(1)])
        self.arrows.set_field(here[placed], score[placed], self.arrow_length)
