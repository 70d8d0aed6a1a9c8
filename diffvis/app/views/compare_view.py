"""Samplers side by side: 2 to 6 panels from the same initial noise on one shared timeline of normalised
progress (pure noise → final samples), each with its own sampler and settings, its current t and the model
evaluations spent so far; hovering a point highlights the same point in every panel (a click pins it). Below:
the metrics table (best figure of each column highlighted) and the quality-versus-NFE sweep (``sweep_view``).

The view draws a ``CompareModel`` and writes every setting back through it. Every panel frames the data
(``padded_extent``, as the other sampling views do), never the samples: a trained network flings about one DDIM
sample in 500 far away, and framing those shrank the data to a dot. A change of preset, panel count or any
panel's settings empties the panels and the table at once (old samples never sit under new labels) and, when the
view is visible and was comparing, compares again once the settings rest."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from diffvis.app.models.compare import (
    MAX_PANELS,
    MIN_PANELS,
    PROGRESS_FRAMES,
    SETTINGS,
    CompareModel,
    Panel,
    model_choices,
    panel_frame,
)
from diffvis.app.models.scene import frame_time
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import ClassPicker, GuideChoice, classes_in_use, compact_combo
from diffvis.app.views.sampling_widgets import DENSITY_TIP, offer_density
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import (
    DATA_COLOUR,
    SAMPLE_COLOUR,
    corner_caption,
    faint_brush,
    sample_brushes,
    style_data_plot,
)
from diffvis.app.views.sweep_view import METRIC_TITLES, SweepTab
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.sampler_controls import SamplerControls
from diffvis.core.compare import NLL_POINTS, PRESETS, PanelResult
from diffvis.core.fields import padded_extent
from diffvis.core.request import EXACT_DENSITY, SampleRequest

METRICS = tuple(METRIC_TITLES)  # the table's metric columns: the core's quality metrics and W₂
BEST_COLOUR = "#fff0a8"  # a pale yellow behind the best figure of each column
AXIS_WIDTH = 40  # pixels: the panels' left axes, whatever their tick labels
AXIS_HEIGHT = 25  # pixels: about the bottom axis of a panel
REST_MS = 400  # changed settings compare again once they rest this long (a spin box typed digit by digit)
BACKDROP_POINTS = 3000


def panel_columns(count: int, width: float, height: float) -> int:
    """How many columns give ``count`` panels in a ``width`` × ``height`` figure the largest square plot area each
    (equal-aspect data fill a square best): one row of four in a wide, low window, two by two in a square picture;
    the fewer columns when tied."""

    def side(columns: int) -> float:
        rows = -(-count // columns)
        return min(width / columns - AXIS_WIDTH, height / rows - AXIS_HEIGHT)

    return max(range(1, count + 1), key=lambda columns: (side(columns), -columns))


class PanelEditor(QGroupBox):
    """One panel's sampler and its settings (from the registry), the model it samples (the lab's run, the exact
    model, or the newest run of a kind: ``model_choices``), and the guidance scale; ``changed`` fires when any of
    them changes."""

    changed = Signal()

    def __init__(self, index: int):
        super().__init__(f"Panel {index + 1}")
        self.controls = SamplerControls()
        self.choices = model_choices()
        self.model_choice = QComboBox()
        for title, _, exact in self.choices:
            self.model_choice.addItem(title, exact if exact == EXACT_DENSITY else None)
        self.model_choice.setToolTip("the lab's trained run, the exact denoiser (or score, or velocity) of the data, "
                                     f"or the newest run of this session of a kind\n{DENSITY_TIP}")  # fmt: skip
        compact_combo(self.model_choice, 8)
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=10.0, singleStep=0.5, decimals=1, value=1.0, prefix="w = ")
        self.guidance.setToolTip("guidance scale w: classifier-free when the view samples a class, or "
                                 "autoguidance's")  # fmt: skip
        self.guide = GuideChoice()
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 2, 4, 2)
        grid.addWidget(self.controls.combo, 0, 0)
        grid.addWidget(self.model_choice, 0, 1)
        grid.addWidget(self.guidance, 0, 2)
        grid.addWidget(self.guide, 0, 3)
        grid.addWidget(self.controls.pages, 1, 0, 1, 4)
        grid.setColumnStretch(0, 1)
        for signal in (self.controls.changed, self.model_choice.currentIndexChanged, self.guidance.valueChanged,
                       self.guide.chosen):  # fmt: skip
            signal.connect(lambda *_: self.changed.emit())

    def panel(self) -> Panel:
        _, role, exact = self.choices[self.model_choice.currentIndex()]
        request = SampleRequest(self.controls.sampler, self.controls.params(), exact)
        return Panel(request, self.guidance.value(), role, self.guide.guide)

    def set_panel(self, panel: Panel) -> None:
        """Show ``panel`` (silently: a half-shown panel is never written back)."""
        chosen = [(role, exact) for _, role, exact in self.choices].index((panel.role, panel.request.exact))
        with QSignalBlocker(self):
            self.controls.set_sampler(panel.request.sampler, panel.request.params)
            self.model_choice.setCurrentIndex(chosen)
            self.guidance.setValue(panel.guidance)
            self.guide.show_guide(panel.guide)


class ComparePanel:
    """One plot of the grid: the backdrop, the samples, the highlighted point and its path, a caption.

    The first panel leads: it keeps the equal aspect, and the others follow its ranges through pyqtgraph's links
    (equal aspect on them too, since every panel has the same size). Linked views that each locked their aspect
    corrected one another whenever their sizes differed by a pixel (or a hidden panel kept an old size), and the
    ranges ran away to hundreds of units around the data."""

    def __init__(self, plot: pg.PlotItem, leader: pg.ViewBox | None = None):
        self.plot = plot
        style_data_plot(plot)
        plot.getAxis("left").setWidth(AXIS_WIDTH)  # every panel's view box the same size
        if leader is not None:
            plot.setAspectLocked(False)
            plot.setXLink(leader)
            plot.setYLink(leader)
        self.backdrop = pg.ScatterPlotItem(size=3, pen=None, brush=faint_brush(DATA_COLOUR, 35))
        self.scatter = MovingScatter(size=3, pen=None, brush=pg.mkBrush(SAMPLE_COLOUR))
        self.path = pg.PlotCurveItem(pen=pg.mkPen("#1a1a1a", width=1.5))
        self.marker = pg.ScatterPlotItem(size=14, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush("#1a1a1a"),
                                         symbol="star")  # fmt: skip
        for item in (self.backdrop, self.scatter, self.path, self.marker):
            plot.addItem(item)
        plot.disableAutoRange()  # framed on the data by the view: the samples' outliers must not widen it
        self.caption = corner_caption(plot)
        self.result: PanelResult | None = None

    def clear(self, caption: str) -> None:
        """Show no samples (only the data behind), captioned ``caption``."""
        self.result = None
        self.scatter.setData(pos=np.zeros((0, 2)))
        self.path.setData([], [])
        self.marker.setData(pos=np.zeros((0, 2)))
        self.caption.setText(caption)

    def show(self, progress: int, highlight: int | None) -> None:
        traj = self.result.trajectory
        k = panel_frame(progress, len(traj.frames))
        self.scatter.move_to(traj.frames[k])
        if highlight is None:
            self.path.setData([], [])
            self.marker.setData(pos=np.zeros((0, 2)))
        else:
            path = traj.frames[: k + 1, highlight]
            self.path.setData(path[:, 0], path[:, 1])
            self.marker.setData(pos=path[-1:])
        when = frame_time(traj, k)
        nfe = traj.evals[k] if traj.evals is not None else traj.nfe
        self.caption.setText(f"{self.result.label} · {when} · NFE {nfe}/{traj.nfe}")


class CompareView(SceneView):
    """``model`` holds every setting and what the panels show; the widgets only draw it and write to it."""

    compute_text = "Compare"

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "", parent)
        self.panels: list[ComparePanel] = []
        self.highlight: int | None = None  # the point followed in every panel
        self.pinned = False
        self.following = False  # a change of settings compares again (until a comparison is cancelled or fails)
        self.extent = None  # the data's padded extent, which every panel frames
        self.rest = QTimer(self, singleShot=True, interval=REST_MS)
        self.rest.timeout.connect(self._on_rest)
        self.preset = QComboBox()
        for key, preset in PRESETS.items():
            self.preset.addItem(preset.title, key)
        compact_combo(self.preset, 10)
        self.count = QSpinBox(minimum=MIN_PANELS, maximum=MAX_PANELS)
        self.class_picker = ClassPicker()
        self.points = QSpinBox(minimum=10, maximum=20_000, singleStep=500)
        self.new_noise = QPushButton("New noise")
        self.new_noise.setToolTip("draw new initial noise for every panel and compare again")
        settings = [("Preset", self.preset), ("Panels", self.count), ("Points", self.points),
                    ("Class", self.class_picker), ("", self.new_noise), ("", self.compute_button)]  # fmt: skip
        for label, widget in settings:
            self.add_setting(label, widget, columns_per_row=3)
        self.editors = [PanelEditor(i) for i in range(MAX_PANELS)]
        model = CompareModel()
        self.sweep = SweepTab(state, model)
        self._split(self._editor_row(), self._build_bottom())

        self.preset.activated.connect(lambda _: self.model.apply_preset(self.preset.currentData()))
        self.write(self.count.valueChanged, lambda: setattr(self.model, "panel_count", self.count.value()))
        self.write(self.points.valueChanged, lambda: setattr(self.model, "n", self.points.value()))
        self.write(self.class_picker.currentIndexChanged, self._write_label)
        for i, editor in enumerate(self.editors):
            self.write(editor.changed, lambda i=i: self.model.set_panel(i, self.editors[i].panel()))
        self.new_noise.clicked.connect(self.reseed)
        self.sweep.swept.connect(lambda: self.bottom.setCurrentWidget(self.sweep))
        state.data_changed.connect(lambda _: self._on_data())
        state.model_changed.connect(self._refresh_classes)
        self.figure.scene().sigMouseMoved.connect(self._on_hover)
        self.figure.scene().sigMouseClicked.connect(self._on_pin)
        self.bind(model)
        self.formula_panel = self.add_formula_panel()
        self._on_data()
        self._show_stale(f"press {self.compute_text}", "")

    # --- building ---------------------------------------------------------------------------------------------
    def build_figure(self, title: str):
        self.grid = pg.GraphicsLayoutWidget()
        self.grid.installEventFilter(self)  # a new shape may want another grid
        self.columns = 0
        leader = ComparePanel(self.grid.addPlot(row=0, col=0))
        box = leader.plot.getViewBox()
        self.all_panels = [leader] + [ComparePanel(self.grid.addPlot(row=0, col=i), box) for i in range(1, MAX_PANELS)]
        return self.grid, self.grid.ci

    def _editor_row(self) -> QScrollArea:
        """The editors side by side; six are wider than a small window: they scroll sideways there."""
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for editor in self.editors:
            layout.addWidget(editor)
        editors = QScrollArea()
        editors.setWidget(row)
        editors.setWidgetResizable(True)
        editors.setFrameShape(QFrame.Shape.NoFrame)
        editors.setMaximumHeight(row.sizeHint().height() + editors.horizontalScrollBar().sizeHint().height())
        return editors

    def _build_bottom(self) -> QTabWidget:
        self.table = QTableWidget(0, 8 + len(METRICS))
        self.table.setHorizontalHeaderLabels(["panel", "NFE", "time (s)", *(METRIC_TITLES[m] for m in METRICS), "NPE",
                                              "NLL (nats)", "in class support", "class recall",
                                              "class NLL (nats)"])  # fmt: skip
        self.table.setToolTip("each metric against one fresh draw of the data, with its ratio to the floor (the same "
                              "metric between two fresh draws); the best of each column is highlighted. NPE: a flow's "
                              "normalised path energy, 0 for straight optimal-transport paths. NLL: for an ODE solver, "
                              f"the mean negative log-likelihood of {NLL_POINTS:,} fresh points under the density the "
                              "model defines through that solver, ± its standard error. For one class of data of known "
                              "density (tree, gmm8, grid25): the share of samples inside the region holding 99 % of "
                              "the class's mass, NN recall against a fresh draw of the class (× its floor), and the "
                              "samples' mean −log p(x | class), beside the class's entropy")  # fmt: skip
        self.bottom = QTabWidget()
        self.bottom.addTab(self.table, "Metrics")
        self.bottom.addTab(self.sweep, "Quality vs NFE")
        return self.bottom

    def _split(self, editors: QWidget, bottom: QWidget) -> None:
        """Editors, panels (with their timeline) and the metrics in a vertical splitter: the panels take what a
        window gains, and in a small window the editors and the table give way (drag to see more of them)."""
        layout = self.layout()
        middle = QWidget()
        column = QVBoxLayout(middle)
        column.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.figure, 1), (self.timeline, 0)):
            layout.removeWidget(widget)
            column.addWidget(widget, stretch)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        for widget in (editors, middle, bottom):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([editors.maximumHeight(), 10_000, 130])
        layout.addWidget(self.splitter, 1)

    def _layout_panels(self) -> None:
        """Show the model's ``panel_count`` panels in the grid that gives each the most room (``panel_columns``);
        their editors follow. The six plots live as long as the view and only move in the grid layout: plot items
        taken out of a scene and collected later can take a pending repaint down with them."""
        count = self.model.panel_count
        with self.syncing():
            self.count.setValue(count)
        self.columns = panel_columns(count, self.grid.width(), self.grid.height())
        for i, editor in enumerate(self.editors):
            editor.setVisible(i < count)
        layout = self.grid.ci.layout
        while layout.count():
            layout.removeAt(layout.count() - 1)
        for panel in self.all_panels:
            panel.plot.setVisible(False)
        self.panels = self.all_panels[:count]
        for i, panel in enumerate(self.panels):
            layout.addItem(panel.plot, i // self.columns, i % self.columns)
            panel.plot.setVisible(True)
        self.show_backdrop()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self.grid and getattr(self, "panels", None):
            size = event.size()
            if panel_columns(len(self.panels), size.width(), size.height()) != self.columns:
                self._layout_panels()
        return super().eventFilter(watched, event)

    def _on_data(self) -> None:
        for editor in self.editors:
            offer_density(editor.model_choice, self.state.data)
        points = self.state.data.points
        self.extent = padded_extent(points) if len(points) >= 2 else None
        self.show_backdrop()
        self._refresh_classes()

    def show_backdrop(self) -> None:
        """The data behind every panel, and every panel framed on it (the first leads the others); call again once
        laid out."""
        points = self.state.data.points[:BACKDROP_POINTS]
        for panel in self.panels:
            panel.backdrop.setData(pos=points)
        if self.extent is not None and self.panels:
            x_min, x_max, y_min, y_max = self.extent
            self.panels[0].plot.setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)

    def _refresh_classes(self) -> None:
        """Offer the classes of the trained model, or of the data (the exact model's) when it has none."""
        self.class_picker.set_classes(classes_in_use(self.state, False) or classes_in_use(self.state, True))

    # --- the model and the widgets ------------------------------------------------------------------------------
    def on_setting(self, name: str, _value) -> None:
        """Show the model's setting in its widget; a setting a comparison is computed from makes it stale."""
        sync = {"preset": self._sync_preset, "panels": self._sync_editors, "panel_count": self._layout_panels,
                "label": self._sync_label, "n": self._sync_points}.get(name)  # fmt: skip
        if sync is not None:
            sync()
        if name in SETTINGS:
            self._on_settings_change()

    def _write_label(self) -> None:
        self.model.label = self.class_picker.request_label

    def _sync_preset(self) -> None:
        self.preset.setCurrentIndex(self.preset.findData(self.model.preset))

    def _sync_editors(self) -> None:
        for editor, panel in zip(self.editors, self.model.panels, strict=True):
            editor.set_panel(panel)

    def _sync_points(self) -> None:
        self.points.setValue(self.model.n)

    def _sync_label(self) -> None:
        """Choose the model's class; one the picker does not offer falls back to its default, written back."""
        label, picker = self.model.label, self.class_picker
        picker.choose(label)
        if picker.request_label != label:
            self._write_label()

    # --- stale results ---------------------------------------------------------------------------------------
    def _on_settings_change(self) -> None:
        """New settings (the model has emptied the panels): a computation in flight is cancelled, and a view that
        was comparing compares again once the settings rest, or when next shown."""
        if self.job.busy:
            self.job.cancel()
            self._idle("")
        if not self.following:
            self._show_stale(f"press {self.compute_text}", f"settings changed: press {self.compute_text}")
        elif self.isVisible():
            self.rest.start()
            self._show_stale("computing…", "settings changed: comparing again…")
        else:
            self.stale = True
            self._show_stale("compared when shown", "settings changed: compared again when shown")

    def _on_rest(self) -> None:
        if self.isVisible():
            self.compute()
        else:  # hidden while the settings rested
            self.stale = True

    def _show_stale(self, caption: str, label: str | None = None) -> None:
        """No result on show: each panel only names its settings, the metrics table is empty."""
        labels = [request.label_text for request in self.model.requests()]
        for i, panel in enumerate(self.all_panels):
            panel.clear(f"{labels[i]} · {caption}" if i < len(labels) else "")
        self.table.setRowCount(0)
        if label is not None:
            self.timeline.set_label(label)

    # --- computing ------------------------------------------------------------------------------------------
    def reseed(self) -> None:
        self.model.reseed()
        self.compute()

    def compute(self) -> bool:
        """Compare from the model's settings; until the results come, the panels show none."""
        self.rest.stop()
        if not super().compute():
            return False
        self.following = True
        self.model.result = None
        self._show_stale("computing…")
        return True

    def _idle(self, label: str) -> None:
        super()._idle(label)
        if label:  # cancelled or failed: changed settings wait for the button again
            self.following = False
            if not self.has_content():
                self._show_stale(f"press {self.compute_text}")

    def take(self, results) -> None:
        """New results in the panels (each point coloured by its class) and the table; None: empty panels."""
        if results is None:
            self._show_stale(f"press {self.compute_text}")
            return
        for panel, result in zip(self.panels, results, strict=True):
            panel.result = result
            traj = result.trajectory
            brushes = sample_brushes(traj, self.class_picker.classes, SAMPLE_COLOUR)
            panel.scatter.setData(pos=traj.frames[0], brush=brushes)
        self._fill_table(results)
        self.highlight, self.pinned = None, False

    def _fill_table(self, results: list[PanelResult]) -> None:
        """A row per panel, then the floors (each metric between two fresh draws: what a perfect sampler scores);
        a flow's NPE and an ODE solver's NLL last (empty for other samplers)."""
        self.table.setRowCount(len(results) + 1)
        columns = [[r.trajectory.nfe for r in results], [r.seconds for r in results]]
        columns += [[r.metrics[m].value if m in r.metrics else np.inf for r in results] for m in METRICS]
        columns.append([np.inf if r.npe is None else r.npe for r in results])
        columns.append([np.inf if r.nll is None else r.nll[0] for r in results])
        columns.append([np.inf if r.class_fit is None else -r.class_fit.in_support for r in results])  # most is best
        columns.append([np.inf if r.class_fit is None else r.class_fit.recall.ratio for r in results])
        for row, r in enumerate(results):
            cells = [r.label, f"{r.trajectory.nfe}", f"{r.seconds:.3f}"]
            cells += [
                f"{r.metrics[m].value:.3g} ({r.metrics[m].ratio:.2f}×)" if m in r.metrics else "" for m in METRICS
            ]
            cells.append("" if r.npe is None else f"{r.npe:.3g}")
            cells.append("" if r.nll is None else f"{r.nll[0]:.3f} ± {r.nll[1]:.3f}")
            fit = r.class_fit
            cells += ["", "", ""] if fit is None else [f"{100 * fit.in_support:.1f} %", f"{fit.recall.ratio:.2f}×",
                                                       f"{fit.nll:.2f} (entropy {fit.entropy:.2f})"]  # fmt: skip
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        floor = results[0].metrics
        cells = ["floor (fresh data)", "", ""]
        cells += [f"{floor[m].floor:.3g} ± {floor[m].floor_std:.2g}" if m in floor else "" for m in METRICS]
        for col, text in enumerate(cells):
            self.table.setItem(len(results), col, QTableWidgetItem(text))
        bold = QFont()
        bold.setBold(True)
        for col, values in enumerate(columns, start=1):
            if np.isfinite(values).any():
                best = self.table.item(int(np.argmin(values)), col)
                best.setFont(bold)
                best.setBackground(QBrush(QColor(BEST_COLOUR)))
        self.table.resizeColumnsToContents()

    def shutdown(self) -> None:
        self.rest.stop()
        self.sweep.shutdown()
        super().shutdown()

    # --- drawing, highlighting, exporting -------------------------------------------------------------------
    def show_frame(self, frame: int) -> None:
        if not self.has_content():
            return
        for panel in self.panels:
            panel.show(frame, self.highlight)
        self.timeline.set_label(f"progress {frame} %")

    def _nearest(self, scene_pos) -> int | None:
        """The index of the point nearest the mouse in the panel under it, or None; that panel is the one the
        formula panel explains."""
        for i, panel in enumerate(self.panels):
            box = panel.plot.getViewBox()
            if panel.result is not None and box.sceneBoundingRect().contains(scene_pos):
                p = box.mapSceneToView(scene_pos)
                traj = panel.result.trajectory
                frame = traj.frames[panel_frame(self.model.frame, len(traj.frames))]
                self.model.formula_panel = i
                return int(np.argmin((frame[:, 0] - p.x()) ** 2 + (frame[:, 1] - p.y()) ** 2))
        return None

    def _on_hover(self, scene_pos) -> None:
        if self.pinned:
            return
        index = self._nearest(scene_pos)
        if index is not None and index != self.highlight:
            self.highlight = index
            self.formula.point = index
            self.show_frame(self.model.frame)

    def _on_pin(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.pinned = not self.pinned
            if self.pinned:
                self.highlight = self._nearest(event.scenePos())
                if self.highlight is not None:
                    self.formula.point = self.highlight
            self.show_frame(self.model.frame)

    def frame_points(self, frame: int) -> np.ndarray:
        """Every panel's points at this progress, panel after panel."""
        return np.concatenate([p.result.trajectory.frames[panel_frame(frame, len(p.result.trajectory.frames))]
                               for p in self.panels])  # fmt: skip

    def all_points(self) -> np.ndarray:
        return np.stack([self.frame_points(k) for k in range(PROGRESS_FRAMES + 1)])
