"""The forward process: the data dissolving into noise, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one fixed ε per
point, so every point travels a continuous path; beside it the schedule (β_t, ᾱ_t, log-SNR) with a cursor at t."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from diffvis.app.state import LabState
from diffvis.app.views.exporting import ExportActions, export_button
from diffvis.app.views.style import corner_caption, equal_aspect_plot
from diffvis.app.views.titles import fit_title
from diffvis.app.widgets.moving_scatter import MovingScatter
from diffvis.app.widgets.timeline import Timeline
from diffvis.core.datasets import Normaliser, PointSet
from diffvis.core.fields import NOISE_SEED
from diffvis.core.forward import prior_gap, q_sample
from diffvis.core.schedules import Schedule
from diffvis.errors import DiffvisError

MAX_POINTS = 5000


def position_brushes(x0: np.ndarray) -> list:
    """Colour each point by where it sits in the clean data (hue = angle about the centre), so the structure is
    seen to dissolve and, played backwards, to re-form."""
    hue = (np.arctan2(x0[:, 1], x0[:, 0]) / (2 * np.pi)) % 1.0
    palette = [pg.hsvColor(h, 0.75, 0.85, 0.85) for h in np.linspace(0, 1, 64, endpoint=False)]
    brushes = [pg.mkBrush(c) for c in palette]
    return [brushes[int(h * 64) % 64] for h in hue]


class ForwardView(ExportActions, QWidget):
    """Exports its frames in the standardised coordinates it draws."""

    def __init__(self, state: LabState, parent=None):
        super().__init__(parent)
        self.state = state
        self.schedule: Schedule | None = None
        self.x0 = self.eps = np.zeros((0, 2))
        self.brushes: list = []
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

        self.timeline.follow = False
        self.timeline.frame_changed.connect(self.show_frame)
        self.export_button.clicked.connect(self.choose_export)
        state.data_changed.connect(self._on_data_change)
        state.train_config_changed.connect(lambda _: self._on_schedule_change())
        self._on_schedule_change()
        self._on_data_change(state.data)

    def _on_schedule_change(self) -> None:
        cfg = self.state.train_config
        self.schedule = Schedule.make(cfg.schedule, cfg.timesteps)
        s, t = self.schedule, np.arange(1, self.schedule.T + 1)
        self.curves["beta"].setData(t, s.betas)
        self.curves["abar"].setData(t, s.alphas_cumprod)
        self.curves["log_snr"].setData(t, np.log(s.snr))
        self.timeline.set_count(s.T + 1)
        self._update_warning()
        self.show_frame(self.timeline.frame)

    def _on_data_change(self, data: PointSet) -> None:
        points = data.points
        if len(points) > MAX_POINTS:
            points = points[np.random.default_rng(0).choice(len(points), MAX_POINTS, replace=False)]
        try:
            self.x0 = Normaliser.fit(points).to_std(points) if len(points) >= 2 else np.zeros((0, 2))
        except DiffvisError:
            self.x0 = np.zeros((0, 2))
        self.eps = np.random.default_rng(NOISE_SEED).standard_normal(self.x0.shape)
        self.brushes = position_brushes(self.x0)
        self.scatter.setData(pos=self.x0, brush=self.brushes)
        self._update_warning()
        self.show_frame(self.timeline.frame)

    def _update_warning(self) -> None:
        if self.schedule is None or len(self.x0) == 0:
            self.warning.setText("")
            return
        gap = prior_gap(self.schedule, self.x0)
        self.warning.setText(
            f"At t = T the data is still measurably far from N(0, I): KL {gap.kl:.3f} nats per point, "
            f"{100 * gap.signal:.1f} % of the signal left. Use more steps or a stronger schedule."
            if gap.too_far
            else ""
        )

    def abar(self, frame: int) -> float:
        """ᾱ after ``frame`` noising steps (frame 0 is the clean data, ᾱ = 1)."""
        return 1.0 if frame == 0 else float(self.schedule.alphas_cumprod[frame - 1])

    def frame_points(self, frame: int) -> np.ndarray:
        """x_t at frame t (0 = the clean data, T = after the last noising step)."""
        return q_sample(self.x0, self.abar(frame), self.eps)

    def has_content(self) -> bool:
        return self.schedule is not None and len(self.x0) > 0

    def all_points(self) -> np.ndarray:
        """(T + 1, N, 2) x_t for every t, float32."""
        abar = np.concatenate([[1.0], self.schedule.alphas_cumprod])[:, None, None]
        return q_sample(self.x0[None], abar, self.eps[None]).astype(np.float32)

    def show_frame(self, frame: int) -> None:
        if self.schedule is None:
            return
        frame = min(frame, self.schedule.T)
        self.scatter.move_to(self.frame_points(frame))
        for cursor in self.cursors:
            cursor.setValue(frame)
        text = f"t = {frame} / {self.schedule.T} · ᾱ = {self.abar(frame):.4f}"
        self.caption.setText(text)
        self.timeline.set_label(text)
