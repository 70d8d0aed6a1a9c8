"""The drawing brush without Qt: whether the data view's canvas draws, the brush's radius, erasing, and the class
of the points it paints; the data panel edits it, the data view paints with it.

    brush = Brush(drawing=True, radius=0.5, label=1)
    data, info = brush.dab(data, 0.3, -1.2, rng)   # POINTS_PER_DAB new points of class 1 around (0.3, −1.2)
"""

from __future__ import annotations

import numpy as np

from diffvis.app.models.evented import EventedModel
from diffvis.core.datasets import PointSet

DRAWN = "drawn"  # the source of drawn points
POINTS_PER_DAB = 4


def drawn(points: np.ndarray, labels: np.ndarray | None) -> tuple[PointSet, dict]:
    """A drawn point set and its source info, as ``LabState.set_data`` takes them."""
    return PointSet(points, labels, DRAWN), {"source": DRAWN, "n": len(points)}


class Brush(EventedModel):
    """``drawing``: clicks and drags on the canvas paint; ``radius`` in data units; ``erase``: they remove the
    points in the disc instead; ``label``: the class of the painted points (0 alone: no classes)."""

    FIELDS = {"drawing": False, "radius": 0.2, "erase": False, "label": 0}

    def dab(self, data: PointSet, x: float, y: float, rng: np.random.Generator) -> tuple[PointSet, dict]:
        """The drawn points after one dab at (x, y) on ``data`` (the points drawn so far): POINTS_PER_DAB points
        uniform in the disc, or the disc emptied; the labels are dropped while every point is of class 0."""
        points = data.points
        labels = data.labels if data.labels is not None else np.zeros(len(points), dtype=np.int64)
        if self.erase:
            keep = np.hypot(points[:, 0] - x, points[:, 1] - y) > self.radius
            points, labels = points[keep], labels[keep]
        else:
            r = self.radius * np.sqrt(rng.uniform(size=POINTS_PER_DAB))
            angle = rng.uniform(0, 2 * np.pi, POINTS_PER_DAB)
            new = np.stack([x + r * np.cos(angle), y + r * np.sin(angle)], axis=1)
            points = np.concatenate([points, new])
            labels = np.concatenate([labels, np.full(POINTS_PER_DAB, self.label, dtype=np.int64)])
        return drawn(points, labels if len(labels) and labels.max() > 0 else None)
