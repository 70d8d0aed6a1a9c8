"""Colours shared by the views: an Okabe–Ito palette (colour-blind safe) for classes and series."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
DATA_COLOUR = "#0072B2"
SAMPLE_COLOUR = "#D55E00"


def class_brushes(labels: np.ndarray | None, default: str = DATA_COLOUR, alpha: int = 200) -> list | pg.QtGui.QBrush:
    """One brush per point coloured by class label, or a single brush when there are no labels."""
    if labels is None:
        return pg.mkBrush(pg.mkColor(default).red(), pg.mkColor(default).green(), pg.mkColor(default).blue(), alpha)
    brushes = []
    for colour in PALETTE:
        c = pg.mkColor(colour)
        c.setAlpha(alpha)
        brushes.append(pg.mkBrush(c))
    return [brushes[int(k) % len(brushes)] for k in labels]


def sample_brushes(traj, classes, default: str) -> list | pg.QtGui.QBrush:
    """The brushes of a trajectory's points: by the class each was drawn for (coloured as the data's raw label),
    or ``default`` for unconditional samples."""
    if traj.labels is None or classes is None:
        return pg.mkBrush(default)
    return class_brushes(np.asarray(classes.values)[traj.labels], alpha=220)


def faint_brush(colour: str, alpha: int) -> pg.QtGui.QBrush:
    c = pg.mkColor(colour)
    c.setAlpha(alpha)
    return pg.mkBrush(c)


def equal_aspect_plot(title: str = "") -> pg.PlotWidget:
    """A plot in data coordinates with a faint grid at the major ticks only: the minor grid doubles the cost of
    every redraw (the axes repaint their grid lines whenever the points under them move)."""
    plot = pg.PlotWidget(title=title)
    style_data_plot(plot.getPlotItem())
    return plot


def style_data_plot(plot: pg.PlotItem) -> None:
    """Equal aspect, and the faint grid at the major ticks only (see ``equal_aspect_plot``)."""
    plot.setAspectLocked(True)
    plot.showGrid(x=True, y=True, alpha=0.15)
    for side in ("left", "bottom"):
        plot.getAxis(side).setStyle(maxTickLevel=0)


def corner_caption(plot_item: pg.PlotItem) -> pg.LabelItem:
    """A line of text pinned to the top-left corner of the plot area (it stays put when the plot pans), so a
    saved frame says what it shows.

    A child of the view box at a fixed position: the top-left corner never moves in the box's own coordinates, so
    it needs none of pyqtgraph's anchoring, which moves the label from a Python slot on the box's geometryChanged
    and so ran while Qt destroyed the box (its Python side already gone: a RuntimeError in whatever event loop
    ran the deletion)."""
    label = pg.LabelItem(justify="left")
    label.setParentItem(plot_item.getViewBox())
    label.setPos(6, 2)
    return label
