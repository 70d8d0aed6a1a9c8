"""Samplers side by side: 2 to 6 panels from the same initial noise on one shared timeline of normalised
progress (pure noise → final samples), each with its own sampler and settings, its current t and the model
evaluations spent so far; hovering a point highlights the same point in every panel (a click pins it). Below:
the metrics table (best figure of each column highlighted) and the quality-versus-NFE sweep.

Every panel frames the data (``padded_extent``, as the other sampling views do), never the samples: a trained
network flings about one DDIM sample in 500 far away, and framing those shrank the data to a dot. A change of
preset, panel count or any panel's settings empties the panels and the table at once (old samples never sit under
new labels) and, when the view is visible and had a comparison, compares again once the settings rest."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
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

from diffvis.app.jobs import BackgroundJob
from diffvis.app.state import LabState
from diffvis.app.views.axes import LogAxis
from diffvis.app.views.class_controls import ClassPicker, classes_in_use, compact_combo
from diffvis.app.views.reverse_view import frame_time
from diffvis.app.views.scene_view import SceneView
from diffvis.app.views.style import (
    DATA_COLOUR,
    PALETTE,
    SAMPLE_COLOUR,
    corner_caption,
    faint_brush,
    sample_brushes,
    style_data_plot,
)
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.sampler_controls import SamplerControls
from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.compare import METRIC_POINTS, PRESETS, PanelResult, Reference, compare, parse_step_counts, sweep
from diffvis.core.fields import padded_extent
from diffvis.core.metrics import METRICS
from diffvis.core.request import SampleRequest
from diffvis.core.schedules import Schedule
from diffvis.core.sources import fresh_draw
from diffvis.errors import ConfigError

BEST_COLOUR = "#fff0a8"  # a pale yellow behind the best figure of each column
PROGRESS_FRAMES = 100  # the shared slider runs over 0 … 100 % of every panel's trajectory
MAX_PANELS = 6
SWEEP_STEPS = "5, 10, 20, 50, 100, 250, 1000"
AXIS_WIDTH = 40  # pixels: the panels' left axes, whatever their tick labels
AXIS_HEIGHT = 25  # pixels: about the bottom axis of a panel
REST_MS = 400  # changed settings compare again once they rest this long (a spin box typed digit by digit)
METRIC_TITLES = {"energy": "energy", "sliced_w1": "sliced W1", "nn_precision": "NN precision",
                 "nn_recall": "NN recall", "frechet": "Fréchet"}  # fmt: skip


def panel_columns(count: int, width: float, height: float) -> int:
    """How many columns give ``count`` panels in a ``width`` × ``height`` figure the largest square plot area each
    (equal-aspect data fill a square best): one row of four in a wide, low window, two by two in a square picture;
    the fewer columns when tied."""

    def side(columns: int) -> float:
        rows = -(-count // columns)
        return min(width / columns - AXIS_WIDTH, height / rows - AXIS_HEIGHT)

    return max(range(1, count + 1), key=lambda columns: (side(columns), -columns))


def panel_frame(progress: int, frames: int) -> int:
    """The frame of a trajectory with ``frames`` frames at shared slider position ``progress`` (0 … 100)."""
    return round(progress / PROGRESS_FRAMES * (frames - 1))


class PanelEditor(QGroupBox):
    """One panel's sampler and its settings (from the registry), the exact model, and the guidance scale."""

    def __init__(self, index: int, request: SampleRequest):
        super().__init__(f"Panel {index + 1}")
        self.controls = SamplerControls()
        self.exact = QCheckBox("exact")
        self.exact.setToolTip("the exact denoiser (or exact score) of the data instead of the trained model")
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=10.0, singleStep=0.5, decimals=1, value=1.0, prefix="w = ")
        self.guidance.setToolTip("classifier-free guidance scale, when the view samples a class")
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 2, 4, 2)
        grid.addWidget(self.controls.combo, 0, 0)
        grid.addWidget(self.exact, 0, 1)
        grid.addWidget(self.controls.pages, 1, 0, 1, 2)
        grid.addWidget(self.guidance, 2, 0, 1, 2)
        self.set_spec(request)

    def changed_signals(self) -> list:
        """The signals of every widget the request is read from."""
        return [self.controls.changed, self.exact.toggled, self.guidance.valueChanged]

    def set_spec(self, request: SampleRequest) -> None:
        self.controls.set_sampler(request.sampler, request.params)
        self.exact.setChecked(request.exact)
        self.guidance.setValue(request.guidance)

    def spec(self, label=None) -> SampleRequest:
        """The panel's request; for class ``label`` (a dense id or 'all'), guided at the editor's w (None: the
        model's default, every class for a conditional one; ``UNCONDITIONAL``: f(x, t, ∅))."""
        choice = {}
        if label == UNCONDITIONAL:
            choice = {"label": label}
        elif label is not None and (label != ALL_CLASSES or self.guidance.value() != 1.0):
            choice = {"label": label, "guidance": self.guidance.value()}  # else the model's default: every class
        return SampleRequest(self.controls.sampler, self.controls.params(), self.exact.isChecked(), **choice)


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
    compute_text = "Compare"

    def __init__(self, state: LabState, parent=None):
        super().__init__(state, "", parent)
        self.panels: list[ComparePanel] = []
        self.highlight: int | None = None  # the point followed in every panel
        self.pinned = False
        self.preset = QComboBox()
        for key, (title, _) in PRESETS.items():
            self.preset.addItem(title, key)
        compact_combo(self.preset, 10)
        self.count = QSpinBox(minimum=2, maximum=MAX_PANELS, value=3)
        self.class_picker = ClassPicker()
        self.points = QSpinBox(minimum=10, maximum=20_000, value=2000, singleStep=500)
        self.seed = 0
        self.shown_request = None  # what the panels show: (specs, points, seed), or None
        self.running_request = None  # what the computation in flight computes
        self.rest = QTimer(self, singleShot=True, interval=REST_MS)
        self.rest.timeout.connect(self._on_rest)
        self.new_noise = QPushButton("New noise")
        self.new_noise.setToolTip("draw new initial noise for every panel and compare again")
        settings = [("Preset", self.preset), ("Panels", self.count), ("Points", self.points),
                    ("Class", self.class_picker), ("", self.new_noise), ("", self.compute_button)]  # fmt: skip
        for label, widget in settings:
            self.add_setting(label, widget, columns_per_row=3)
        specs = PRESETS["ddpm-vs-ddim"][1]
        self.editors = [PanelEditor(i, specs[i % len(specs)]) for i in range(MAX_PANELS)]
        editor_row = QWidget()
        editor_layout = QHBoxLayout(editor_row)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        for editor in self.editors:
            editor_layout.addWidget(editor)
        editors = QScrollArea()  # six editors are wider than a small window: they scroll sideways there
        editors.setWidget(editor_row)
        editors.setWidgetResizable(True)
        editors.setFrameShape(QFrame.Shape.NoFrame)
        editors.setMaximumHeight(editor_row.sizeHint().height() + editors.horizontalScrollBar().sizeHint().height())
        self._split(editors, self._build_bottom())
        self.sweep_job = BackgroundJob(self)
        self.sweep_job.done.connect(self._on_sweep)
        self.sweep_job.failed.connect(self._on_sweep_failed)
        self.sweep_job.progressed.connect(lambda i, n: (self.sweep_bar.setMaximum(n), self.sweep_bar.setValue(i)))

        self.preset.activated.connect(lambda _: self.apply_preset(self.preset.currentData()))
        self.count.valueChanged.connect(self._layout_panels)
        self.new_noise.clicked.connect(self.reseed)
        state.data_changed.connect(lambda _: self.show_backdrop())
        state.data_changed.connect(lambda _: self._refresh_classes())
        state.model_changed.connect(self._refresh_classes)
        self._refresh_classes()
        self.figure.scene().sigMouseMoved.connect(self._on_hover)
        self.figure.scene().sigMouseClicked.connect(self._on_pin)
        self.apply_preset("ddpm-vs-ddim")
        for signal in [self.count.valueChanged, self.points.valueChanged, self.class_picker.currentIndexChanged,
                       *(s for editor in self.editors for s in editor.changed_signals())]:  # fmt: skip
            signal.connect(lambda *_: self._on_settings_change())

    # --- building ---------------------------------------------------------------------------------------------
    def build_figure(self, title: str):
        self.grid = pg.GraphicsLayoutWidget()
        self.grid.installEventFilter(self)  # a new shape may want another grid
        self.columns = 0
        leader = ComparePanel(self.grid.addPlot(row=0, col=0))
        box = leader.plot.getViewBox()
        self.all_panels = [leader] + [ComparePanel(self.grid.addPlot(row=0, col=i), box) for i in range(1, MAX_PANELS)]
        return self.grid, self.grid.ci

    def _build_bottom(self) -> QTabWidget:
        self.table = QTableWidget(0, 3 + len(METRICS))
        self.table.setHorizontalHeaderLabels(["panel", "NFE", "time (s)", *(METRIC_TITLES[m] for m in METRICS)])
        self.table.setToolTip("each metric against one fresh draw of the data, with its ratio to the floor (the same "
                              "metric between two fresh draws); the best of each column is highlighted")  # fmt: skip
        axes = {side: LogAxis(side) for side in ("left", "bottom")}  # labels that never run together
        self.sweep_plot = pg.PlotWidget(title="Quality against model evaluations", axisItems=axes)
        self.sweep_plot.setLogMode(x=True, y=True)
        self.sweep_plot.setLabel("bottom", "NFE")
        self.sweep_plot.setLabel("left", "× floor")
        self.sweep_plot.addLegend(offset=(-10, 10))
        self.sweep_metric = QComboBox()
        for key, title in METRIC_TITLES.items():
            self.sweep_metric.addItem(title, key)
        self.sweep_steps = QLineEdit(SWEEP_STEPS)
        self.sweep_steps.setToolTip("the step counts to try, separated by commas")
        self.sweep_button = QPushButton("Sweep")
        self.sweep_bar = QProgressBar()
        controls = QHBoxLayout()
        for widget in (self.sweep_metric, self.sweep_steps, self.sweep_button, self.sweep_bar):
            controls.addWidget(widget)
        sweep_page = QWidget()
        sweep_layout = QVBoxLayout(sweep_page)
        sweep_layout.setContentsMargins(0, 0, 0, 0)
        sweep_layout.addLayout(controls)
        sweep_layout.addWidget(self.sweep_plot, 1)
        self.sweep_button.clicked.connect(self.start_sweep)
        self.sweep_metric.currentIndexChanged.connect(lambda _: self._draw_sweep())
        self.sweep_points: list = []
        self.bottom = QTabWidget()
        self.bottom.addTab(self.table, "Metrics")
        self.bottom.addTab(sweep_page, "Quality vs NFE")
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
        """Show ``count`` panels in the grid that gives each the most room (``panel_columns``); their editors follow.
        The six plots live as long as the view and only move in the grid layout: plot items taken out of a scene
        and collected later can take a pending repaint down with them."""
        count = self.count.value()
        self.columns = panel_columns(count, self.grid.width(), self.grid.height())
        for i, editor in enumerate(self.editors):
            editor.setVisible(i < count)
        layout = self.grid.ci.layout
        while layout.count():
            layout.removeAt(layout.count() - 1)
        for panel in self.all_panels:
            panel.plot.setVisible(False)
        columns = self.columns
        self.panels = self.all_panels[:count]
        for i, panel in enumerate(self.panels):
            layout.addItem(panel.plot, i // columns, i % columns)
            panel.plot.setVisible(True)
        self.show_backdrop()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self.grid and getattr(self, "panels", None):
            size = event.size()
            if panel_columns(len(self.panels), size.width(), size.height()) != self.columns:
                self._layout_panels()
        return super().eventFilter(watched, event)

    def show_backdrop(self) -> None:
        """The data behind every panel, and every panel framed on it (the first leads the others); call again once
        laid out."""
        points = self.state.data.points[:3000]
        for panel in self.panels:
            panel.backdrop.setData(pos=points)
        if len(self.state.data) >= 2 and self.panels:
            x_min, x_max, y_min, y_max = padded_extent(self.state.data.points)
            self.panels[0].plot.setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)

    def _refresh_classes(self) -> None:
        """Offer the classes of the trained model, or of the data (the exact model's) when it has none."""
        self.class_picker.set_classes(classes_in_use(self.state, False) or classes_in_use(self.state, True))

    def apply_preset(self, key: str) -> None:
        _, specs = PRESETS[key]
        self.preset.setCurrentIndex(self.preset.findData(key))
        label = specs[0].label or ALL_CLASSES  # a preset without a class takes the default, every class
        self.class_picker.setCurrentIndex(max(self.class_picker.findData(label), 0))
        for editor, spec in zip(self.editors, specs, strict=False):
            editor.set_spec(spec)
        self.count.setValue(len(specs))
        self._layout_panels()
        self._on_settings_change()

    def specs(self) -> list[SampleRequest]:
        label = self.class_picker.request_label
        return [editor.spec(label) for editor in self.editors[: self.count.value()]]

    def request(self) -> tuple:
        """Everything a comparison is computed from, besides the model and the data."""
        return tuple(self.specs()), self.points.value(), self.seed

    # --- stale results ---------------------------------------------------------------------------------------
    def _on_settings_change(self) -> None:
        """New settings: unless the panels show them (or they are being computed), the panels and the table are
        emptied at once, and a visible view that had a comparison compares again once the settings rest."""
        request = self.request()
        if request == self.shown_request or (self.job.busy and request == self.running_request):
            self.rest.stop()  # back to what is shown or computed
            return
        busy = self.job.busy
        if busy:
            self.job.cancel()
            self._idle("")
        again = busy or self.shown_request is not None or self.rest.isActive() or self.stale
        if again and self.isVisible():
            self.rest.start()
            self._show_stale("computing…", "settings changed: comparing again…")
        elif again:
            self.stale = True  # compared again when shown
            self._show_stale("compared when shown", "settings changed: compared again when shown")
        else:
            self._show_stale(f"press {self.compute_text}", f"settings changed: press {self.compute_text}")

    def _on_rest(self) -> None:
        if self.isVisible():
            self.compute()
        else:  # hidden while the settings rested
            self.stale = True

    def _show_stale(self, caption: str, label: str | None = None) -> None:
        """No result on show: each panel only names its settings, the metrics table is empty."""
        self.shown_request = None
        labels = [spec.label for spec in self.specs()]
        for i, panel in enumerate(self.all_panels):
            panel.clear(f"{labels[i]} · {caption}" if i < len(labels) else "")
        self.table.setRowCount(0)
        if label is not None:
            self.timeline.set_label(label)

    # --- computing ------------------------------------------------------------------------------------------
    def reseed(self) -> None:
        self.seed += 1
        self.compute()

    def compute(self) -> bool:
        """Compare from the current settings; until the results come, the panels show none."""
        self.rest.stop()
        if not super().compute():
            return False
        self._show_stale("computing…")
        return True

    def _idle(self, label: str) -> None:
        super()._idle(label)
        if label and not self.has_content():  # cancelled or failed: nothing computed to show
            self._show_stale(f"press {self.compute_text}")

    def _context(self):
        """What every computation needs, read on the GUI thread: run, points, schedule and a fresh-data draw."""
        run = self.state.model_run
        cfg = self.state.train_config
        schedule = run.schedule if run is not None else Schedule.make(cfg.schedule, cfg.timesteps)
        data, n = self.state.data, self.points.value()
        draw = fresh_draw(self.state.data_info, data.points, min(n, METRIC_POINTS))
        return run, data, schedule, draw, n

    def work(self):
        specs, seed = self.specs(), self.seed
        run, points, schedule, draw, n = self._context()
        self.running_request = self.request()

        def compute_all(progress):
            reference = Reference.draw(draw, cancelled=lambda: progress(0, 1000))
            return compare(specs, run, points, schedule, reference, n=n, seed=seed, progress=progress)

        return compute_all

    def has_content(self) -> bool:
        return bool(self.panels) and all(panel.result is not None for panel in self.panels)

    def accept(self, results) -> int:
        if len(results) != len(self.panels):  # the panel count changed while computing: show what was computed
            self.count.blockSignals(True)
            self.count.setValue(len(results))
            self.count.blockSignals(False)
            self._layout_panels()
        for panel, result in zip(self.panels, results, strict=True):
            panel.result = result
            traj = result.trajectory
            panel.scatter.setData(
                pos=traj.frames[0], brush=sample_brushes(traj, self.class_picker.classes, SAMPLE_COLOUR)
            )
        self.shown_request, self.running_request = self.running_request, None
        self._fill_table(results)
        self.highlight, self.pinned = None, False
        return PROGRESS_FRAMES + 1

    def _fill_table(self, results: list[PanelResult]) -> None:
        """A row per panel, then the floors (each metric between two fresh draws: what a perfect sampler scores)."""
        self.table.setRowCount(len(results) + 1)
        columns = [[r.trajectory.nfe for r in results], [r.seconds for r in results]]
        columns += [[r.metrics[m].value for r in results] for m in METRICS]
        for row, r in enumerate(results):
            cells = [r.label, f"{r.trajectory.nfe}", f"{r.seconds:.3f}"]
            cells += [f"{r.metrics[m].value:.3g} ({r.metrics[m].ratio:.2f}×)" for m in METRICS]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        floor = results[0].metrics
        cells = ["floor (fresh data)", "", ""] + [f"{floor[m].floor:.3g} ± {floor[m].floor_std:.2g}" for m in METRICS]
        for col, text in enumerate(cells):
            self.table.setItem(len(results), col, QTableWidgetItem(text))
        bold = QFont()
        bold.setBold(True)
        for col, values in enumerate(columns, start=1):
            best = self.table.item(int(np.argmin(values)), col)
            best.setFont(bold)
            best.setBackground(QBrush(QColor(BEST_COLOUR)))
        self.table.resizeColumnsToContents()

    # --- the sweep ------------------------------------------------------------------------------------------
    def start_sweep(self) -> bool:
        try:
            steps = parse_step_counts(self.sweep_steps.text())
        except ConfigError as e:
            self.state.say(f"{e}, e.g. 5, 10, 20")
            return False
        if len(self.state.data) < 2:
            return False
        specs = list({spec.family: spec for spec in self.specs()}.values())
        run, points, schedule, draw, n = self._context()
        steps, seed = [s for s in steps if s <= schedule.T], self.seed

        def compute_sweep(progress):
            reference = Reference.draw(draw, cancelled=lambda: progress(0, len(specs) * len(steps)))
            return sweep(specs, steps, run, points, schedule, reference, n=n, seed=seed, progress=progress)

        self.sweep_button.setEnabled(False)
        self.sweep_job.start(compute_sweep)
        return True

    def _on_sweep(self, points) -> None:
        self.sweep_button.setEnabled(True)
        self.sweep_points = points
        self._draw_sweep()
        self.bottom.setCurrentIndex(1)

    def _on_sweep_failed(self, message: str) -> None:
        self.sweep_button.setEnabled(True)
        self.state.say(message)

    def _draw_sweep(self) -> None:
        """One line per sampler family: the metric's ratio to its floor against NFE."""
        self.sweep_plot.clear()
        metric = self.sweep_metric.currentData()
        families = list(dict.fromkeys(p.label for p in self.sweep_points))
        for i, family in enumerate(families):
            rows = sorted((p.nfe, p.metrics[metric].ratio) for p in self.sweep_points if p.label == family)
            nfe, ratio = np.array(rows, dtype=float).T
            colour = PALETTE[i % len(PALETTE)]
            self.sweep_plot.plot(nfe, ratio, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6,
                                 symbolBrush=colour, name=family)  # fmt: skip

    def shutdown(self) -> None:
        self.rest.stop()
        self.sweep_job.shutdown()
        super().shutdown()

    # --- drawing, highlighting, exporting -------------------------------------------------------------------
    def show_frame(self, frame: int) -> None:
        if not self.has_content():
            return
        for panel in self.panels:
            panel.show(frame, self.highlight)
        self.timeline.set_label(f"progress {frame} %")

    def _nearest(self, scene_pos) -> int | None:
        """The index of the point nearest the mouse in the panel under it, or None."""
        for panel in self.panels:
            box = panel.plot.getViewBox()
            if panel.result is not None and box.sceneBoundingRect().contains(scene_pos):
                p = box.mapSceneToView(scene_pos)
                traj = panel.result.trajectory
                frame = traj.frames[panel_frame(self.timeline.frame, len(traj.frames))]
                return int(np.argmin((frame[:, 0] - p.x()) ** 2 + (frame[:, 1] - p.y()) ** 2))
        return None

    def _on_hover(self, scene_pos) -> None:
        if self.pinned:
            return
        index = self._nearest(scene_pos)
        if index is not None and index != self.highlight:
            self.highlight = index
            self.show_frame(self.timeline.frame)

    def _on_pin(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.pinned = not self.pinned
            if self.pinned:
                self.highlight = self._nearest(event.scenePos())
            self.show_frame(self.timeline.frame)

    def frame_points(self, frame: int) -> np.ndarray:
        """Every panel's points at this progress, panel after panel."""
        return np.concatenate([p.result.trajectory.frames[panel_frame(frame, p.result.trajectory.steps + 1)]
                               for p in self.panels])  # fmt: skip

    def all_points(self) -> np.ndarray:
        return np.stack([self.frame_points(k) for k in range(PROGRESS_FRAMES + 1)])
