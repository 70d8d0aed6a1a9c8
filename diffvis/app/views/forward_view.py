"""The forward process: the data dissolving into noise, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one fixed ε per
point, so every point travels a continuous path; beside it the schedule (β_t, ᾱ_t, log-SNR) with a cursor at t.
The view draws a ``ForwardModel``: the timeline shows and sets its frame."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from diffvis.app.models.forward import ForwardModel, Noising
from diffvis.app.state import LabState
from diffvis.app.views.exporting import ExportActions, export_button
from diffvis.app.views.formula_panel import FormulaHost
from diffvis.app.views.style import corner_caption, equal_aspect_plot
from diffvis.app.views.titles import fit_title
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.timeline import Timeline
from diffvis.core.forward import prior_gap
from diffvis.core.schedules import Schedule


def position_brushes(x0: np.ndarray) -> list:
    """Colour each point by where it sits in the clean data (hue = angle about the centre), so the structure is
    seen to dissolve and, played backwards, to re-form."""
    hue = (np.arctan2(x0[:, 1], x0[:, 0]) / (2 * np.pi)) % 1.0
    palette = [pg.hsvColor(h, 0.75, 0.85, 0.85) for h in np.linspace(0, 1, 64, endpoint=False)]
    brushes = [pg.mkBrush(c) for c in palette]
    return [brushes[int(h * 64) % 64] for h in hue]


class ForwardView(FormulaHost, ExportActions, QWidget):
    """Exports its frames in the standardised coordinates it draws."""

    def __init__(self, state: LabState, parent=None):
        super().__init__(parent)
        self.state = state
        self.model = ForwardModel()
        self.points_plot = equal_aspect_plot()
        fit_title(self.points_plot.getPlotItem(), "x_t (standardised coordinates)")
        self.points_plot.setRange(xRange=(-3.5, 3.5), yRange=(-3.5, 3.5))
        self.scatter = MovingScatter(size=3, pen=None)
        self.points_plot.addItem(self.scatter)
        self.caption = corner_caption(self.points_plot.getPlotItem())
        self.schedule_plots = pg.GraphicsLayoutWidget()
        self.curves, self.cursors = {}, []
        for row, (name, label) in enumerate([("beta", "β_t"), ("abar", "ᾱ_t"), ("log_snr", "log SNR_t")]):
            plot = self.schedule_plots.addPlot(row=row, col=0)
            fit_title(plot, label)
            plot.getAxis("left").setWidth(48)
            self.curves[name] = plot.plot(pen=pg.mkPen("#0072B2", width=2))
            cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#D55E00", width=1.5))
            plot.addItem(cursor)
            self.cursors.append(cursor)
        self.schedule_plots.setMaximumWidth(380)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #d0453a")
        self.timeline = Timeline(fps=30)
        self.export_button = export_button()
        self.timeline.add_widget(self.export_button)
        self.figure, self.svg_item = QWidget(), self.points_plot.getPlotItem()
        top = QHBoxLayout(self.figure)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.points_plot, 3)  # the schedule takes 2/5 of a small window, at most 380 px
        top.addWidget(self.schedule_plots, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.figure, 1)
        layout.addWidget(self.warning)
        layout.addWidget(self.timeline)

        self.timeline.bind(self.model)
        self.formula_panel = self.add_formula_panel(self.points_plot)
        self.model.events.connect(self._on_model_event)
        self.export_button.clicked.connect(self.choose_export)
        state.data_changed.connect(lambda data: self._noise(data.points, self.model.result.schedule))
        state.train_config_changed.connect(
            lambda cfg: self._noise(state.data.points, Schedule.make(cfg.schedule, cfg.timesteps))
        )
        cfg = state.train_config
        self._noise(state.data.points, Schedule.make(cfg.schedule, cfg.timesteps))

    def _noise(self, points: np.ndarray, schedule: Schedule) -> None:
        self.model.result = Noising.of(points, schedule)

    def _on_model_event(self, name: str, value) -> None:
        if name == "result":
            self._take(value)
        self.show_frame(self.model.frame)

    def _take(self, noising: Noising) -> None:
        """The schedule's curves, the clean points coloured by where they sit, and the warning of a schedule that
        leaves the data far from N(0, I) at t = T."""
        s, t = noising.schedule, np.arange(1, noising.schedule.T + 1)
        self.curves["beta"].setData(t, s.betas)
        self.curves["abar"].setData(t, s.alphas_cumprod)
        self.curves["log_snr"].setData(t, np.log(s.snr))
        self.scatter.setData(pos=noising.x0, brush=position_brushes(noising.x0))
        gap = prior_gap(s, noising.x0) if len(noising.x0) else None
        self.warning.setText(
            f"At t = T the data is still measurably far from N(0, I): KL {gap.kl:.3f} nats per point, "
            f"{100 * gap.signal:.1f} % of the signal left. Use more steps or a stronger schedule."
            if gap is not None and gap.too_far
            else ""
        )

    def frame_points(self, frame: int) -> np.ndarray:
        return self.model.result.points(frame)

    def has_content(self) -> bool:
        return len(self.model.result.x0) > 0

    def all_points(self) -> np.ndarray:
        return self.model.result.all_points()

    def show_frame(self, frame: int) -> None:
        noising = self.model.result
        frame = min(frame, noising.schedule.T)
        self.scatter.move_to(noising.points(frame))
        for cursor in self.cursors:
            cursor.setValue(frame)
        text = f"t = {frame} / {noising.schedule.T} · ᾱ = {noising.abar(frame):.4f}"
        self.caption.setText(text)
        self.timeline.set_label(text)
