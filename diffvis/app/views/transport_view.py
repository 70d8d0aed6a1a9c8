"""The transport view: a grid of lines and the data-coloured points carried along one ODE (the flow map ψ_t, or a
diffusion model's probability flow), scrubbed from the source to the data, so that space is seen to fold and
stretch; trails coloured by how much each path bends, and probe particles with the straight chord from where each
was placed to where it ends drawn as a dashed ghost. The view draws a ``TransportModel`` and writes every setting
back through it. The grid is one curve (its lines separated by NaN), so a frame is one ``setData``."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QPushButton, QSpinBox

from diffvis.app.models.scene import frame_time
from diffvis.app.models.transport import BEND_BINS, ODE_SAMPLERS, Transported, TransportModel
from diffvis.app.state import LabState
from diffvis.app.views.probes import ProbeLayer
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import class_brushes
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.sampler_controls import SamplerControls
from diffvis.core.fields import padded_extent
from diffvis.core.registry import SAMPLERS

GRID_PEN = pg.mkPen(70, 90, 120, 150, width=1)
GHOST_PEN = pg.mkPen(26, 26, 26, 140, width=1.5, style=Qt.PenStyle.DashLine)
BEND_COLOURS = pg.colormap.get("viridis").getLookupTable(0.0, 0.9, BEND_BINS, alpha=False)  # straight: dark


GRID_FRAMED = 10.0  # the starting grid is framed when it spans at most this many times what the points land on


def framed_grid(grid: np.ndarray, landed: np.ndarray) -> np.ndarray:
    """The starting grid's points when the view frames them: a flow's source square and NCSN's σ_1-wide prior are
    framed with the data, EDM's σ_max = 80 prior (hundreds of units wide) is not, lest the data shrink to a dot."""
    finite = grid[np.isfinite(grid).all(1)]
    span = lambda p: float(np.ptp(p, axis=0).max()) if len(p) else 0.0  # noqa: E731
    return finite if span(finite) <= GRID_FRAMED * span(landed) else finite[:0]


class TransportView(SceneView):
    compute_text = "Transport"
    OVERLAYS = ("trails",)

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "Transport of a grid (data coordinates)", parent)
        self.plot.setToolTip("Click to add a probe particle at this frame; its dashed ghost is the straight path")
        self.add_sampling_settings(SamplerControls([SAMPLERS[name] for name in ODE_SAMPLERS]))
        self.lines = QSpinBox(minimum=2, maximum=200, singleStep=5)
        self.lines.setToolTip("grid lines in each direction")
        self.trails = QSpinBox(minimum=0, maximum=1000, singleStep=10)
        self.trails.setToolTip("how many points draw their path so far, coloured by how much it bends (0: none)")
        self.clear_probes = QPushButton("Clear probes")
        for label, widget in [("Grid lines", self.lines), ("Trails", self.trails), ("", self.compute_button),
                              ("", self.clear_probes)]:  # fmt: skip
            self.add_setting(label, widget, columns_per_row=3)

        self.grid_curve = pg.PlotCurveItem(pen=GRID_PEN, connect="finite")
        self.trail_curves = [pg.PlotCurveItem(pen=pg.mkPen(*c, 200, width=1.5), connect="finite") for c in BEND_COLOURS]
        self.scatter = MovingScatter(size=3, pen=None)
        self.ghost = pg.PlotCurveItem(pen=GHOST_PEN, connect="finite")
        for item in (self.grid_curve, *self.trail_curves, self.scatter, self.ghost):
            self.plot.addItem(item)
        self.ghost.setZValue(9)  # under the probes' paths, over everything else
        self.probe_layer = ProbeLayer(self.plot)

        self.bind(TransportModel())
        self.formula_panel = self.add_formula_panel(self.plot)
        model = self.model
        self.write_request_widgets(self.model_choice, self.points, self.controls)
        self.write(self.lines.valueChanged, lambda: setattr(model, "lines", self.lines.value()))
        self.write(self.trails.valueChanged, lambda: setattr(model, "trails", self.trails.value()))
        self.clear_probes.clicked.connect(model.clear_probes)

    def on_setting(self, name: str, value) -> None:
        if name == "request":
            self.controls.set_sampler(value.sampler, value.params)
            with QSignalBlocker(self.model_choice), QSignalBlocker(self.points):
                self.model_choice.setCurrentIndex(self.model_choice.findData(value.exact))
                self.points.setValue(value.n)
        else:
            {"lines": self.lines, "trails": self.trails}[name].setValue(value)

    # --- drawing and exporting ------------------------------------------------------------------------------
    def take(self, result: Transported | None) -> None:
        if result is None:
            return
        self.scatter.setData(pos=result.trajectory.frames[0], brush=class_brushes(result.landed_labels, alpha=220))
        landed = result.trajectory.samples
        shown = np.vstack([framed_grid(result.grid[0], landed), landed])  # the square grid and where the points land
        x_min, x_max, y_min, y_max = map(float, padded_extent(shown[np.isfinite(shown).all(1)], pad=0.04))
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)
        self.probe_layer.arrow_length = 0.05 * (x_max - x_min)

    def show_frame(self, frame: int) -> None:
        model, result = self.model, self.model.result
        if result is None:
            return
        traj = result.trajectory
        frame = min(frame, traj.steps)
        grid = model.grid_at(frame)
        self.grid_curve.setData(grid[:, 0], grid[:, 1])
        self.scatter.move_to(traj.frames[frame])
        for curve, paths in zip(self.trail_curves, model.trails_at(frame), strict=True):
            curve.setData(paths[:, 0], paths[:, 1])
        self.probe_layer.show(model.probes, frame)
        ghosts = model.ghosts()
        self.ghost.setData(ghosts[:, 0], ghosts[:, 1])
        mean = result.mean_bend
        self.describe(f"{result.request.label_text} · frame {frame}/{traj.steps} · {frame_time(traj, frame)} · "
                      f"mean bend {mean:.3f} (straightness {1 - mean:.3f})")  # fmt: skip
        self.caption.setText(f"{self.caption.text}<br>{self._legend()}")

    def _legend(self) -> str:
        """What the trails' colours mean: the bend 1 − chord/length, from the first colour to the last."""
        if not self.model.trails:
            return "bend = 1 − chord/length of a path (0: straight)"
        top = self.model.bend_edges()[-1]
        swatches = "".join(f"<span style='color:#{r:02x}{g:02x}{b:02x}'>■</span>" for r, g, b in BEND_COLOURS)
        return f"trail colour = bend 1 − chord/length: 0 {swatches} {top:.2g}"

    def frame_points(self, frame: int) -> np.ndarray:
        return self.model.trajectory.frames[frame]

    def all_points(self) -> np.ndarray:
        return self.model.trajectory.frames
