"""The coupling picture (as in the rectified-flow papers' figures): each source point x₀ joined by a line to its
partner x₁, under the independent coupling, minibatch OT, or the model's own flow ψ(x₀) (what a reflowed run trains
on), with the mean squared pair distance in the title. The view draws a ``CouplingModel``; the lines are one curve
(``connect="finite"``: a NaN row between pairs), the source points and the partners two scatters."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QSpinBox

from diffvis.app.models.coupling import Coupled, CouplingModel
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import compact_combo
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import SAMPLE_COLOUR, faint_brush
from diffvis.app.views.titles import fit_title
from diffvis.core.coupling_lines import PICTURED, SHORTEST, TITLES

SOURCE_COLOUR = "#7f7f7f"


class CouplingView(SceneView):
    compute_text = "Draw"

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "", parent)
        self.kind = QComboBox()
        for kind in PICTURED:
            self.kind.addItem(TITLES[kind], kind)
        compact_combo(self.kind, 10)
        self.n = QSpinBox(minimum=2, maximum=5_000, singleStep=100)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        for label, widget in [("Coupling", self.kind), ("Lines", self.n), ("Seed", self.seed),
                              ("", self.compute_button)]:  # fmt: skip
            self.add_setting(label, widget, columns_per_row=2)  # two rows: a narrow window keeps the figure wide
        self.lines = pg.PlotCurveItem(connect="finite", pen=pg.mkPen(150, 150, 150, 110, width=1))
        self.sources = pg.ScatterPlotItem(size=4, pen=None, brush=faint_brush(SOURCE_COLOUR, 220))
        self.partners = pg.ScatterPlotItem(size=4, pen=None, brush=faint_brush(SAMPLE_COLOUR, 230))
        for item in (self.lines, self.sources, self.partners):
            self.plot.addItem(item)
        self.bind(CouplingModel())
        model = self.model
        self.write(self.kind.currentIndexChanged, lambda: setattr(model, "kind", self.kind.currentData()))
        self.write(self.n.valueChanged, lambda: setattr(model, "n", self.n.value()))
        self.write(self.seed.valueChanged, lambda: setattr(model, "seed", self.seed.value()))

    def on_setting(self, name: str, value) -> None:
        if name == "kind":
            with QSignalBlocker(self.kind):
                self.kind.setCurrentIndex(self.kind.findData(value))
        else:
            getattr(self, name).setValue(value)
        if self.result is not None or self.job.busy:  # what is drawn was for the old setting
            self.compute()

    # --- drawing and exporting ------------------------------------------------------------------------------
    def take(self, result: Coupled | None) -> None:
        if result is None:
            for item in (self.lines, self.sources, self.partners):
                item.setData([], [])  # (x, y) both empty: the only empty call every pyqtgraph item takes
            return
        lines = result.lines
        segments = np.stack([lines.source, lines.partner, np.full_like(lines.source, np.nan)], axis=1).reshape(-1, 2)
        self.lines.setData(segments[:, 0], segments[:, 1])
        self.sources.setData(pos=lines.source)
        self.partners.setData(pos=lines.partner)
        self.plot.autoRange()

    def show_frame(self, frame: int) -> None:
        result = self.result
        if result is None:
            return
        lines = result.lines
        least = " (least of any pairing)" if lines.kind == SHORTEST else ""  # of these source and data points
        text = f"{TITLES[lines.kind]}: E‖x₁ − x₀‖² = {lines.mean_squared_length:.3g}{least}"
        fit_title(self.plot.getPlotItem(), text)
        self.describe(f"{len(lines.source)} pairs x₀ (grey) → x₁ (orange) · {result.model}")

    def frame_points(self, frame: int) -> np.ndarray:
        """(2n, 2): the n source points, then their n partners in the same order."""
        return np.concatenate([self.result.lines.source, self.result.lines.partner])

    def all_points(self) -> np.ndarray:
        return self.frame_points(0)[None]
