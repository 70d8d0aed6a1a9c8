"""A logarithmic axis whose tick labels never overlap.

pyqtgraph labels every minor tick of a log axis (2, 3, … 9 times each power of ten) whenever fewer than three
decades show. Those ticks crowd towards the top of each decade, so in a small plot their labels run into each
other ('0.9' over '0.8'; '5·10¹6·10¹7·10¹' along an NFE axis). ``LogAxis`` labels the powers of ten and, of the
minor ticks, only those with room for their label (2 and 5 first), drawing the rest as bare ticks; and it writes
numbers from 0.001 to 9999 plainly ('20', '0.3'), in powers of ten beyond.

Use: ``pg.PlotWidget(axisItems={"bottom": LogAxis("bottom")})`` or ``plot.setAxisItems({"left": LogAxis("left")})``,
then ``setLogMode`` as usual.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

PREFERRED = {2: 0, 5: 1, 3: 2, 4: 3, 6: 4, 7: 5, 8: 6, 9: 7}  # which minor ticks get a label first
GAP = 6  # px between neighbouring labels


class LogAxis(pg.AxisItem):
    def __init__(self, orientation: str, **kwargs):
        super().__init__(orientation, **kwargs)
        self.setStyle(maxTextLevel=1)  # level 0: powers of ten, 1: minor ticks with room; 2: minor, unlabelled

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        """Powers of ten, the minor ticks whose label fits between its labelled neighbours, and the rest (unlabelled):
        always three levels, so that ``maxTextLevel`` = 1 leaves the last unlabelled."""
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        every = sorted({float(v) for _, values in ticks for v in values})
        major = [v for v in every if _mantissa(v) == 1]  # (pyqtgraph lists them among the minor ticks too)
        minor = [v for v in every if _mantissa(v) != 1]
        if maxVal <= minVal or size <= 0:
            return [(1.0, major), (None, []), (None, minor)]
        px = size / (maxVal - minVal)  # pixels per decade
        labelled, bare = [], []
        for v in sorted(minor, key=lambda v: PREFERRED.get(_mantissa(v), 9)):
            room = self._label_extent(v)
            if all(abs(v - w) * px >= (room + self._label_extent(w)) / 2 + GAP for w in major + labelled):
                labelled.append(v)
            else:
                bare.append(v)
        return [(1.0, major), (None, sorted(labelled)), (None, sorted(bare))]

    def logTickStrings(self, values, scale, spacing):
        """Plain numbers from 0.001 to 9999 ('20', '0.3', '1000'); pyqtgraph's powers of ten beyond."""
        strings = super().logTickStrings(values, scale, spacing)
        for i, v in enumerate(values):
            x = 10**v * scale
            if 1 <= abs(x) < 1e4:
                strings[i] = f"{round(x):d}" if abs(x - round(x)) < 1e-6 * abs(x) else f"{x:.4g}"
            elif 1e-3 <= abs(x) < 1:
                strings[i] = f"{x:.3g}"
        return strings

    def _label_extent(self, v: float) -> float:
        """The label's length along the axis, in pixels: its width on a horizontal axis, its height on a vertical."""
        font = self.style.get("tickFont") or self.font()
        metrics = pg.QtGui.QFontMetricsF(font)
        if self.orientation in ("left", "right"):
            return metrics.height()
        return metrics.horizontalAdvance(self.logTickStrings([v], 1.0, None)[0])


def _mantissa(v: float) -> int:
    """The leading digit of 10**v for a tick at v (a log tick sits at d × 10^k, d = 1 … 9)."""
    return round(10 ** (v - math.floor(v + 1e-9)))
