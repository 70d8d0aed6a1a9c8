"""Arrows for a vector field, drawn with a few line items (pyqtgraph has no quiver).

Each arrow points along its vector; its length grows with the magnitude up to ``length`` (reached at the 90th
percentile, so a few huge vectors far from the data do not shrink the rest) and its colour runs through viridis
(dark purple to green) with the log-magnitude, in ``BINS`` bands: one PlotCurveItem per band, drawn as
disconnected segment pairs.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

BINS = 6
HEAD_ANGLE = np.deg2rad(25)
HEAD_FRACTION = 0.35
SHORTEST = 0.2  # the smallest arrow, as a fraction of ``length``


class QuiverItem(pg.ItemGroup):
    """``colour`` draws every arrow in one colour instead of by magnitude."""

    def __init__(self, width: float = 1.5, alpha: int = 220, colour: str | None = None):
        super().__init__()
        colours = pg.colormap.get("viridis").getLookupTable(0.0, 0.8, BINS, alpha=False)
        self.curves = []
        for rgb in colours:
            c = pg.mkColor(colour) if colour is not None else pg.mkColor(*map(int, rgb))
            c.setAlpha(alpha)
            curve = pg.PlotCurveItem(pen=pg.mkPen(c, width=width), connect="pairs")
            curve.setParentItem(self)
            self.curves.append(curve)
        self.base = self.vectors = np.zeros((0, 2))
        self.magnitude_range = (0.0, 0.0)

    def set_field(self, base: np.ndarray, vectors: np.ndarray, length: float) -> None:
        """Draw an arrow at each base point (M, 2) along its vector (M, 2); NaN vectors are left out."""
        keep = np.isfinite(vectors).all(1) & (np.linalg.norm(vectors, axis=1) > 0)
        self.base, self.vectors = base[keep], vectors[keep]
        magnitude = np.linalg.norm(self.vectors, axis=1)
        if len(magnitude) == 0:
            self.magnitude_range = (0.0, 0.0)
            for curve in self.curves:
                curve.setData([], [])
            return
        self.magnitude_range = (float(magnitude.min()), float(magnitude.max()))
        scale = length * np.clip(magnitude / np.percentile(magnitude, 90), SHORTEST, 1.0)
        segments = arrow_segments(self.base, self.vectors / magnitude[:, None], scale)  # (M, 6, 2)
        band = magnitude_bands(magnitude)
        for b, curve in enumerate(self.curves):
            xy = segments[band == b].reshape(-1, 2)
            curve.setData(xy[:, 0], xy[:, 1])

    def clear_field(self) -> None:
        self.set_field(np.zeros((0, 2)), np.zeros((0, 2)), 1.0)


def arrow_segments(base: np.ndarray, direction: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(M, 6, 2): the shaft (base → tip) and the two barbs of the head (tip → back at ±HEAD_ANGLE) as 3 pairs."""
    tip = base + direction * length[:, None]
    barbs = []
    for angle in (HEAD_ANGLE, -HEAD_ANGLE):
        c, s = np.cos(angle), np.sin(angle)
        back = -np.stack([c * direction[:, 0] - s * direction[:, 1], s * direction[:, 0] + c * direction[:, 1]], 1)
        barbs.append(tip + back * (HEAD_FRACTION * length)[:, None])
    return np.stack([base, tip, tip, barbs[0], tip, barbs[1]], axis=1)


def magnitude_bands(magnitude: np.ndarray) -> np.ndarray:
    """The colour band 0 … BINS − 1 of each magnitude, evenly spaced in log-magnitude over its range."""
    log = np.log(magnitude)
    span = log.max() - log.min()
    if span <= 0:
        return np.zeros(len(magnitude), dtype=int)
    return np.minimum(((log - log.min()) / span * BINS).astype(int), BINS - 1)
