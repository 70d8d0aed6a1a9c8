"""Training at a glance: live samples of the EMA network over the data, the loss curve (raw and smoothed, log
scale), the loss per timestep bucket, and for a trained DDPM run its variational bound per timestep (Ho et al.
2020, eq. 5: where the model loses likelihood) beside its ODE NLL, computed in a worker."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from diffvis.app.jobs import BackgroundJob
from diffvis.app.models.training_example import TrainingExample
from diffvis.app.state import LabState
from diffvis.app.views.axes import LogAxis
from diffvis.app.views.exporting import ExportActions, export_button
from diffvis.app.views.formula_panel import FormulaHost
from diffvis.app.views.style import DATA_COLOUR, SAMPLE_COLOUR, corner_caption
from diffvis.app.views.titles import fit_title
from diffvis.app.widgets.timeline import Timeline
from diffvis.core.bound import BOUND_POINTS, BoundReport, has_bound, run_bound_report
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.training import N_BUCKETS

BOUND_OBJECTIVE = next(name for name in OBJECTIVES if has_bound(name))  # whose bound the view draws

SMOOTHING = 0.9  # EMA weight of the smoothed loss curve
BACKDROP_POINTS = 3000  # the faint data behind the samples: enough to see the shape, cheap to repaint
FIGURE_ROOM = 640  # px the plots need for their titles whole: a narrower view starts with its formula panel folded
REDRAW_MS = 250  # progress arrives up to ~10 times a second; the curves are redrawn at most this often


def smoothed(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average, as TensorBoard draws it."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out


class TrainingView(FormulaHost, ExportActions, QWidget):
    """The plots, and a timeline over the preview snapshots: scrub or play to watch the shape emerge; exports
    the snapshots (an animation of training)."""

    def __init__(self, state: LabState, parent=None):
        super().__init__(parent)
        self.state = state
        self.plots = pg.GraphicsLayoutWidget()
        self.timeline = Timeline(fps=8)
        self.export_button = export_button()
        self.timeline.add_widget(self.export_button)
        self.figure, self.svg_item = self.plots, self.plots.ci
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.timeline)
        self.samples_plot = self.plots.addPlot(row=0, col=0, rowspan=3)
        self.samples_plot.setAspectLocked(True)
        self.samples_plot.showGrid(x=True, y=True, alpha=0.15)
        faint = pg.mkColor(DATA_COLOUR)
        faint.setAlpha(50)
        self.data_scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(faint))
        self.sample_scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(SAMPLE_COLOUR))
        self.samples_plot.addItem(self.data_scatter)
        self.samples_plot.addItem(self.sample_scatter)
        self.caption = corner_caption(self.samples_plot)

        self.loss_plot = self.plots.addPlot(row=0, col=1, axisItems={"left": LogAxis("left")})
        fit_title(self.loss_plot, "Loss")
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.15)
        self.loss_plot.addLegend(offset=(-10, 10))
        self.raw_curve = self.loss_plot.plot(pen=pg.mkPen("#9aa5b1", width=1), name="raw")
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen(SAMPLE_COLOUR, width=2), name="smoothed")

        self.bucket_plot = self.plots.addPlot(row=1, col=1)
        fit_title(self.bucket_plot, "Loss per bucket (latest)")
        self.bucket_plot.setToolTip("the loss of the latest progress report, averaged per bucket of noise levels: "
                                    "timesteps t / T (DDPM), the σ ladder (NCSN), flow times t, or EDM's training "
                                    "σ by quantile")  # fmt: skip
        self.bucket_plot.setXRange(0, 1)
        self.bars = pg.BarGraphItem(x=(np.arange(N_BUCKETS) + 0.5) / N_BUCKETS, height=np.zeros(N_BUCKETS),
                                    width=0.8 / N_BUCKETS, brush=DATA_COLOUR)  # fmt: skip
        self.bucket_plot.addItem(self.bars)
        self._build_bound_plot()
        self.plots.ci.layout.setColumnStretchFactor(0, 3)
        self.plots.ci.layout.setColumnStretchFactor(1, 2)
        for plot in (self.samples_plot, self.loss_plot, self.bucket_plot, self.bound_plot):
            plot.getAxis("left").setWidth(48)  # tick labels that change width would re-lay out every plot

        self.redraw_timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self.redraw_timer.timeout.connect(self.redraw_progress)
        state.data_changed.connect(self._on_data_change)
        state.progress_changed.connect(self._on_progress_change)
        state.previews_changed.connect(self._on_previews_change)
        self.timeline.frame_changed.connect(self.show_preview)
        self.export_button.clicked.connect(self.choose_export)
        state.run_changed.connect(self._on_run_change)
        state.model_changed.connect(self._sync_objective)
        state.model_config_changed.connect(lambda _config: self._sync_objective())
        self.model = TrainingExample(run=state.model_run, data=state.data)
        # its number picks the training point (nothing to hover); folded in a window too narrow for the plots
        self.formula_panel = self.add_formula_panel(room=FIGURE_ROOM)
        self._folded_once = False
        state.model_changed.connect(lambda: setattr(self.model, "run", state.model_run))
        self.model.events.connect(lambda name, _: self.redraw_progress() if name in ("run", "data") else None)
        state.data_changed.connect(lambda data: setattr(self.model, "data", data))
        self._on_data_change(state.data)
        self._sync_objective()
        self.show_preview(0)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._folded_once:
            self._folded_once = True
            self.fold_formula_if_cramped()

    def _sync_objective(self) -> None:
        """Name the preview sampler and the loss buckets of the run shown (or, with none, of the one to train)."""
        run = self.state.model_run
        info = OBJECTIVES[run.objective if run is not None else self.state.model_config.objective]
        preview = SampleRequest(info.preview_sampler, info.preview_params, objective=info.name)
        fit_title(self.samples_plot, f"EMA samples ({preview.label_text})")
        self.bucket_plot.setLabel("bottom", info.buckets)

    def _build_bound_plot(self) -> None:
        self.bound_plot = self.plots.addPlot(row=2, col=1, axisItems={"left": LogAxis("left")})
        fit_title(self.bound_plot, "Variational bound per t (nats)")
        self.bound_plot.setToolTip("each term L_{t−1} of the DDPM bound (Ho et al. 2020, eq. 5), a KL between "
                                   f"Gaussians, averaged over {BOUND_POINTS} fresh points: where the model loses "
                                   "likelihood; L_0, L_T and the total beside the ODE NLL in the caption")  # fmt: skip
        self.bound_plot.setLogMode(y=True)
        self.bound_plot.setLabel("bottom", "t / T")
        self.bound_plot.setXRange(0, 1)
        self.bound_curve = self.bound_plot.plot(pen=pg.mkPen(SAMPLE_COLOUR, width=2))
        self.bound_caption = corner_caption(self.bound_plot)
        self.bound_job = BackgroundJob(self)
        self.bound_job.done.connect(self.show_bound)
        self.bound_job.failed.connect(lambda message: self.bound_caption.setText(f"bound: {message}"))
        self.show_bound(None)

    def show_bound(self, report: BoundReport | None) -> None:
        """Draw a run's bound terms (None: none; the caption says why)."""
        self.bound_report = report
        if report is None:
            self.bound_curve.setData([], [])
            run = self.state.model_run
            ddpm = run is not None and has_bound(run.objective)
            self.bound_caption.setText("computing…" if self.bound_job.busy else "" if ddpm else
                                       f"for a trained {BOUND_OBJECTIVE.upper()} run")  # fmt: skip
            return
        terms, T = report.bound.terms, len(report.bound.terms)
        self.bound_curve.setData(np.arange(1, T) / T, terms[1:])
        (total, error), (nll, nll_error) = report.bound.total, report.ode_nll
        whose = "each in its class" if report.conditional else "unconditional"
        self.bound_caption.setText(f"bound {total:.3f} ± {error:.3f} · ODE {nll:.3f} ± {nll_error:.3f} nats"
                                   f"<br>{BOUND_POINTS} points, {whose} · L₀ {terms[0]:.2f} · "
                                   f"L_T {report.bound.prior:.0e}")  # fmt: skip

    def shutdown(self) -> None:
        """Stop the bound's worker (the window calls this as it closes)."""
        self.bound_job.shutdown()

    def _on_data_change(self, data) -> None:
        self.data_scatter.setData(pos=data.points[:BACKDROP_POINTS])
        self.samples_plot.autoRange()

    def _on_progress_change(self, progress) -> None:
        """Coalesce progress reports: the first one in a quiet spell draws at once, the rest every REDRAW_MS."""
        if progress is None:
            self.redraw_timer.stop()
            self.redraw_progress()
        elif not self.redraw_timer.isActive():
            self.redraw_progress()
            self.redraw_timer.start()

    def redraw_progress(self) -> None:
        history = self.state.progress_history
        progress = history[-1] if history else None
        if progress is None:  # an opened run: its loss over the training points, per bucket
            self.raw_curve.setData([], [])
            self.smooth_curve.setData([], [])
            per_bucket = self.model.bucket_loss() if self.state.run is not None else None
            self.bars.setOpts(height=np.zeros(N_BUCKETS) if per_bucket is None else np.nan_to_num(per_bucket))
            return
        self._draw_loss([p.step for p in history], [p.loss for p in history])
        self.bars.setOpts(height=np.nan_to_num(progress.bucket_loss))

    def _on_previews_change(self) -> None:
        self.timeline.set_count(len(self.state.previews))
        self.show_preview(self.timeline.frame)

    def show_preview(self, frame: int) -> None:
        """Draw snapshot ``frame`` of the samples (none yet: an empty plot)."""
        previews = self.state.previews
        if not previews:
            self.sample_scatter.setData(pos=np.zeros((0, 2)))
            self.timeline.set_label("no samples yet")
            self.caption.setText("")
            return
        frame = min(frame, len(previews) - 1)
        step, samples = previews[frame]
        self.sample_scatter.setData(pos=samples)
        self.timeline.set_label(f"step {step:,} · snapshot {frame + 1}/{len(previews)}")
        self.caption.setText(f"step {step:,}")

    def has_content(self) -> bool:
        return bool(self.state.previews)

    def show_frame(self, frame: int) -> None:
        self.show_preview(frame)

    def frame_points(self, frame: int) -> np.ndarray:
        return self.state.previews[frame][1]

    def all_points(self) -> np.ndarray:
        return np.stack([samples for _, samples in self.state.previews])

    def _on_run_change(self, run) -> None:
        """A run opened from disk has no live progress: draw its saved loss history instead. A DDPM run's bound is
        computed in the worker."""
        if run is not None and not self.state.progress_history and run.loss_history:
            every = run.train_config.report_every
            self._draw_loss(every * np.arange(1, len(run.loss_history) + 1), run.loss_history)
        self.bound_job.cancel()
        if run is not None and has_bound(run.objective):
            info, data = self.state.data_info, self.state.data
            self.bound_job.start(lambda progress: run_bound_report(run, info, data, cancelled=progress))
        self.show_bound(None)

    def _draw_loss(self, steps, losses) -> None:
        losses = np.asarray(losses, dtype=float)
        self.raw_curve.setData(np.asarray(steps, dtype=float), losses)
        self.smooth_curve.setData(np.asarray(steps, dtype=float), smoothed(losses))
