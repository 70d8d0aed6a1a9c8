"""The density view: a heatmap of the model's log p_θ(x) through its probability-flow ODE, of the reference log p
(the exact density of a known set, else a kernel density estimate of the data) on the same colour scale, or of
their difference on a diverging scale centred at 0; the data faint on top and the model's samples coloured by the
value shown. A click solves that point's ODE: its log p in the caption, its path to the source drawn, and −∫∇·f
accumulated along it written at the path's ends. The view draws a ``DensityModel`` and writes every setting back
through it; one image, colour bar, scatter and curve are reused for every map."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox

from diffvis.app.models.density import TOLERANCES, Densities, DensityModel
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import compact_combo
from diffvis.app.views.probes import PROBE_COLOUR
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.titles import fit_title
from diffvis.core.density import EXACT, MAPS
from diffvis.core.likelihood import ADAPTIVE, METHODS

LOG_P_MAP = pg.colormap.get("CET-L17")  # white (unlikely: the plot's own background) – orange – purple – blue
DIFFERENCE_MAP = pg.colormap.get("CET-D1")  # blue (model too low) – white (0) – red (model too high)
TITLES = {"learned": "learned log p_θ(x)", "reference": "reference log p(x)", "difference": "log p_θ(x) − log p(x)"}
DATA_SHOWN = 5000  # the data drawn on top, evenly chosen
DATA_BRUSH = pg.mkBrush(0, 0, 0, 40)
NONE = np.zeros((0, 2))


def tolerance_text(tolerance: float) -> str:
    """'1e-4'."""
    return f"{tolerance:.0e}".replace("e-0", "e-")


def solver_text(solver: dict) -> str:
    """'dopri5 at rtol = atol = 1e-4' or 'rk4 × 100'."""
    if solver["method"] == ADAPTIVE:
        return f"{ADAPTIVE} at rtol = atol = {tolerance_text(solver['rtol'])}"
    return f"{solver['method']} × {solver['steps']}"


class DensityView(SceneView):
    compute_text = "Compute"
    OVERLAYS = ("show", "show_samples")

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "", parent)
        self.plot.setToolTip("Click a point: its log p, and its ODE path to the source with −∫∇·f along it")
        self.show_box = QComboBox()
        for key in MAPS:
            self.show_box.addItem(TITLES[key], key)
        compact_combo(self.show_box, 10)
        self.resolution = QSpinBox(minimum=8, maximum=256, singleStep=8)
        self.resolution.setToolTip("grid points per side: each is one ODE solve")
        self.method = QComboBox()
        for name in METHODS:
            self.method.addItem(name, name)
        self.method.setToolTip("the likelihood ODE's solver: adaptive dopri5 (the reference) or fixed steps")
        self.steps = QSpinBox(minimum=1, maximum=5000, singleStep=10)
        self.steps.setToolTip("steps of a fixed-step solver")
        self.tolerance = QComboBox()
        for tol in TOLERANCES:
            self.tolerance.addItem(tolerance_text(tol), tol)
        self.tolerance.setToolTip(f"{ADAPTIVE}: the relative and absolute tolerance")
        self.show_samples = QCheckBox("samples")
        self.show_samples.setToolTip("the model's samples, coloured by the value the map shows")
        for label, widget in [("Show", self.show_box), ("Grid", self.resolution), ("Solver", self.method),
                              ("Steps", self.steps), ("Tolerance", self.tolerance), ("", self.show_samples),
                              ("", self.compute_button)]:  # fmt: skip
            self.add_setting(label, widget, columns_per_row=3)  # three rows: a narrow window keeps the figure wide

        plot = self.plot.getPlotItem()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.bar = pg.ColorBarItem(colorMap=LOG_P_MAP, interactive=False, label="nats")
        self.bar.setImageItem(self.image, insert_in=plot)
        self.data_scatter = pg.ScatterPlotItem(size=2, pen=None, brush=DATA_BRUSH)
        self.samples = pg.ScatterPlotItem(size=6, pen=pg.mkPen(0, 0, 0, 160, width=0.8))
        self.path = pg.PlotCurveItem(pen=pg.mkPen(PROBE_COLOUR, width=2))
        self.ends = pg.ScatterPlotItem(size=13, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush(PROBE_COLOUR))
        self.end_labels = [pg.TextItem(color=PROBE_COLOUR, fill=pg.mkBrush(255, 255, 255, 200), anchor=(0, 1))
                           for _ in range(2)]  # fmt: skip
        for item in (self.image, self.data_scatter, self.samples, self.path, self.ends, *self.end_labels):
            plot.addItem(item)
        for z, item in enumerate((self.path, self.ends, *self.end_labels)):
            item.setZValue(10 + z)
        for label in self.end_labels:
            label.setVisible(False)  # (a filled TextItem draws its box even with no text)

        self.bind(DensityModel())
        self.formula_panel = self.add_formula_panel(self.plot, pick=False)
        model = self.model
        self.write(self.show_box.currentIndexChanged, lambda: setattr(model, "show", self.show_box.currentData()))
        self.write(self.resolution.valueChanged, lambda: setattr(model, "resolution", self.resolution.value()))
        self.write(self.method.currentIndexChanged, lambda: setattr(model, "method", self.method.currentData()))
        self.write(self.steps.valueChanged, lambda: setattr(model, "steps", self.steps.value()))
        self.write(self.tolerance.currentIndexChanged,
                   lambda: setattr(model, "tolerance", self.tolerance.currentData()))  # fmt: skip
        self.write(self.show_samples.toggled, lambda: setattr(model, "show_samples", self.show_samples.isChecked()))

    def on_setting(self, name: str, value) -> None:
        if name in ("show", "method", "tolerance"):
            box = {"show": self.show_box, "method": self.method, "tolerance": self.tolerance}[name]
            with QSignalBlocker(box):
                box.setCurrentIndex(box.findData(value))
        elif name == "show_samples":
            self.show_samples.setChecked(value)
        else:
            getattr(self, name).setValue(value)
        fixed = self.model.method != ADAPTIVE
        self.steps.setEnabled(fixed)
        self.tolerance.setEnabled(not fixed)
        if name not in self.OVERLAYS and (self.result is not None or self.job.busy):  # drawn for the old setting
            self.compute()

    # --- drawing and exporting ------------------------------------------------------------------------------
    def take(self, result: Densities | None) -> None:
        if result is None:
            self.image.clear()
            for item in (self.data_scatter, self.samples):
                item.setData([], [])  # (x, y) both empty: the only empty call every pyqtgraph item takes
            self._show_click()  # (none: a new result drops the click)
            return
        x_min, x_max, y_min, y_max = result.map.extent
        points = result.data.points
        self.data_scatter.setData(pos=points[:: max(1, len(points) // DATA_SHOWN)])
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)

    def show_frame(self, frame: int) -> None:
        model, result = self.model, self.result
        if result is None:
            return
        difference = model.show == "difference"
        colours = DIFFERENCE_MAP if difference else LOG_P_MAP
        lo, hi = model.levels()
        self.image.setImage(model.shown(), autoLevels=False)
        x_min, x_max, y_min, y_max = result.map.extent
        self.image.setRect(QRectF(x_min, y_min, x_max - x_min, y_max - y_min))  # after the image: it scales it
        self.bar.setColorMap(colours)
        self.bar.setLevels((lo, hi))
        if model.show_samples:
            at = np.clip((model.shown_at_samples() - lo) / (hi - lo), 0.0, 1.0)
            self.samples.setData(pos=result.map.samples, brush=[pg.mkBrush(c) for c in colours.map(at, "qcolor")])
        else:
            self.samples.setData([], [])
        reference = "exact" if result.map.reference_name == EXACT else "KDE"
        title = TITLES[model.show].replace("log p(x)", f"log p_{reference}(x)")
        fit_title(self.plot.getPlotItem(), f"Density: {title} (nats, data coordinates)")
        what, samples = self._caption()
        self.describe(what)
        self.caption.setText(f"{self.caption.text}<br>{samples}")
        self._show_click()

    def _caption(self) -> tuple[str, str]:
        """What the map shows, and one number of it over the model's samples (two lines of the caption)."""
        model, result = self.model, self.result
        m = result.map
        count = len(m.samples)
        if model.show == "learned":
            return (f"{result.about} · {solver_text(result.solver)}, {m.nfe} evaluations per point",
                    f"its {count} samples: mean log p_θ {m.sample_log_p.mean():.3f} nats")  # fmt: skip
        if model.show == "reference":
            return result.reference, f"the model's {count} samples: mean log p {m.sample_reference.mean():.3f} nats"
        gap = m.sample_log_p - m.sample_reference  # a sample far out weighs on the mean: the median beside it
        return (f"learned − reference: {result.reference}", f"the model's {count} samples: mean {gap.mean():+.3f} "
                f"nats (≈ KL(p_θ ‖ p)), median {np.median(gap):+.3f}")  # fmt: skip

    def _show_click(self) -> None:
        """The clicked point's path to the source, −∫∇·f at its ends, and its numbers in the caption."""
        clicked = self.model.clicked
        if clicked is None:
            self.path.setData([], [])
            self.ends.setData([], [])
            for label in self.end_labels:
                label.setVisible(False)
            return
        probe = clicked.probe
        self.path.setData(probe.path[:, 0], probe.path[:, 1])
        self.ends.setData(pos=probe.path[[0, -1]], symbol=["star", "o"])
        ends = ((0, f"log p_θ {probe.log_p:.2f}"), (-1, f"−∫∇·f {probe.accumulated[-1]:+.2f}"))
        for label, (k, text) in zip(self.end_labels, ends, strict=True):
            label.setText(text)
            label.setPos(*probe.path[k])
            label.setVisible(True)
        x, y = probe.point
        self.caption.setText(
            f"{self.caption.text}<br>at ({x:.3g}, {y:.3g}): log p_θ = {probe.log_p:.3f} = log p_source "
            f"{probe.prior:.3f} + (−∫∇·f) {probe.flow_term:+.3f} + scale {probe.scale_term:+.3f} nats · reference "
            f"{clicked.reference:.3f}"
        )  # fmt: skip

    def _on_failed(self, message: str) -> None:
        """A map that cannot be computed (a flow from a data set, a point set with no density) says why in the
        plot, where its picture would be; shown again (a model trained since), the view tries again."""
        super()._on_failed(message)
        if message != "cancelled":
            self.model.result = None
            self.shown_before = False
            fit_title(self.plot.getPlotItem(), "Density: no log p to map")
            self.caption.setText(message)

    def frame_points(self, frame: int) -> np.ndarray:
        """(M, 2) the model's samples."""
        return self.result.map.samples

    def all_points(self) -> np.ndarray:
        return self.frame_points(0)[None]
