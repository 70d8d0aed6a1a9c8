"""The shape every scrubbable diffusion view shares: settings, a plot in data coordinates, a timeline.

A view draws a ``SceneModel`` (``bind``) and writes back through it: the timeline shows the model's frame and
moving the slider sets it, and each change of the model redraws the view once. What a view shows is computed once
in a ``BackgroundJob`` from the model's ``work`` (progress in the timeline's label; the compute button cancels
while it runs) and then only indexed while scrubbing. When the trained model or the data changes, the result is
stale: a visible view recomputes at once, a hidden one when it is next shown; a view shown for the first time with
nothing computed computes at once (a user who opens a tab sees it fill, never empty axes). A click on the plot
probes that point (the model's ``probe``, computed in a job of its own). Every view is ``Exportable``: the export
button writes PNG, SVG, CSV, NPY, GIF or MP4.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from diffvis.app.jobs import BackgroundJob
from diffvis.app.models.scene import SceneModel
from diffvis.app.state import LabState
from diffvis.app.views.class_controls import compact_combo
from diffvis.app.views.exporting import ExportActions, export_button
from diffvis.app.views.formula_panel import FormulaHost
from diffvis.app.views.sampling_widgets import model_choice, offer_density
from diffvis.app.views.style import corner_caption, equal_aspect_plot
from diffvis.app.widgets.timeline import Timeline
from diffvis.errors import DiffvisError


class SceneView(FormulaHost, ExportActions, QWidget):
    """Subclasses add their settings with ``add_setting``, ``bind`` their model, and implement ``show_frame``,
    ``frame_points``, ``all_points`` and ``on_setting`` (a setting of the model changed); ``take`` (a new result)
    is optional. ``OVERLAYS``: the model's fields that change only what is drawn."""

    computed = Signal()
    compute_text = "Compute"
    OVERLAYS: tuple[str, ...] = ()

    def __init__(self, state: LabState, title: str, parent=None):
        super().__init__(parent)
        self.state = state
        self.model: SceneModel | None = None  # set by ``bind``
        self._syncing = False  # the model is being shown in the widgets: what they signal is not written back
        self.stale = False
        self.shown_before = False
        self.job = BackgroundJob(self)
        self.probe_job = BackgroundJob(self)  # one probe particle's trajectory at a time
        self.figure, self.svg_item = self.build_figure(title)
        self.timeline = Timeline(fps=30)
        self.compute_button = QPushButton(self.compute_text)
        self.export_button = export_button()
        self.settings = QGridLayout()
        self.settings.setColumnStretch(20, 1)
        self._settings_count = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.settings)
        layout.addWidget(self.figure, 1)
        layout.addWidget(self.timeline)
        self.timeline.add_widget(self.export_button)

        self.compute_button.clicked.connect(self._on_compute_click)
        self.export_button.clicked.connect(self.choose_export)
        self.job.done.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.probe_job.done.connect(lambda probe: self.model.add_probe(probe))
        self.probe_job.failed.connect(self.state.say)
        self.job.progressed.connect(lambda i, n: self.timeline.set_label(f"computing… {100 * i // max(n, 1)} %"))
        state.model_changed.connect(self._on_model_change)

    def bind(self, model: SceneModel) -> None:
        """Draw ``model`` and write back through it (``write``): the timeline shows its frame and frame count and
        sets its frame; a setting or overlay is shown in its widget (``on_setting``); a new result (``take``), a
        frame, the probes or an overlay redraw the current frame, once."""
        self.model = model
        self.timeline.bind(model)
        model.events.connect(self._on_model_event)
        for name in type(model).FIELDS:
            if name not in SceneModel.FIELDS:
                with self.syncing():
                    self.on_setting(name, getattr(model, name))

    def _on_model_event(self, name: str, value) -> None:
        if name == "result":
            self.take(value)
        elif name not in SceneModel.FIELDS:
            with self.syncing():
                self.on_setting(name, value)
            if name not in self.OVERLAYS:
                return
        self.show_frame(self.model.frame)

    def write(self, signal, write: Callable[[], None]) -> None:
        """Write a widget's change (its ``signal``) to the model with ``write()``, unless the model is being shown."""
        signal.connect(lambda *_: None if self._syncing else write())

    def add_sampling_settings(self, controls) -> None:
        """A row of the sampler, the trained-or-exact model and the number of points, then the sampler's own
        settings on a row as wide as they are (``controls``, ``model_choice``, ``points``)."""
        self.controls, self.model_choice = controls, model_choice(density=True)
        offer_density(self.model_choice, self.state.data)
        self.state.data_changed.connect(lambda data: offer_density(self.model_choice, data))
        self.points = QSpinBox(minimum=10, maximum=20_000, singleStep=500)
        compact_combo(controls.combo)
        for label, widget in [("Sampler", controls.combo), ("Model", self.model_choice), ("Points", self.points)]:
            self.add_setting(label, widget, columns_per_row=3)
        self.add_setting_row(controls.pages, columns_per_row=3)

    def write_request(self, **changes) -> None:
        """Write ``changes`` into the model's sampling request."""
        self.model.request = replace(self.model.request, **changes)

    def write_request_widgets(self, model_choice, points, controls=None) -> None:
        """Write the trained-or-exact choice, the number of points and (``controls``) the sampler and its settings
        into the model's request as they change."""
        if controls is not None:
            self.write(controls.changed, lambda: self.write_request(sampler=controls.sampler, params=controls.params()))
        self.write(model_choice.currentIndexChanged, lambda: self.write_request(exact=model_choice.currentData()))
        self.write(points.valueChanged, lambda: self.write_request(n=points.value()))

    @contextmanager
    def syncing(self):
        """While the model is shown in the widgets, what they signal is not written back."""
        self._syncing, before = True, self._syncing
        try:
            yield
        finally:
            self._syncing = before

    @property
    def result(self):
        """What the view shows (None: nothing computed yet)."""
        return self.model.result

    def build_figure(self, title: str):
        """The figure (what PNG, GIF and MP4 exports show) and its SVG item: one plot, by default, with a caption
        in its corner; clicks on it probe."""
        self.plot = equal_aspect_plot(title)
        self.caption = corner_caption(self.plot.getPlotItem())
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        return self.plot, self.plot.getPlotItem()

    def add_setting(self, label: str, widget: QWidget, columns_per_row: int = 4) -> None:
        """Lay settings out in rows of ``columns_per_row`` label–widget pairs; a widget without a label (a check box,
        a button) takes its pair's two cells, so that it widens neither column."""
        row, col = divmod(self._settings_count, columns_per_row)
        if label:
            self.settings.addWidget(QLabel(label), row, 2 * col, alignment=Qt.AlignmentFlag.AlignRight)
            self.settings.addWidget(widget, row, 2 * col + 1)
        else:
            self.settings.addWidget(widget, row, 2 * col, 1, 2, alignment=Qt.AlignmentFlag.AlignRight)
        self._settings_count += 1

    def add_setting_row(self, widget: QWidget, columns_per_row: int = 4) -> None:
        """Put ``widget`` on a row of its own under the settings so far, across every column (a row of editors
        that would widen the columns it sat in)."""
        row = -(-self._settings_count // columns_per_row)
        self.settings.addWidget(widget, row, 0, 1, 2 * columns_per_row)
        self._settings_count = (row + 1) * columns_per_row

    # --- to implement ---------------------------------------------------------------------------------------
    def work(self):
        """A function of ``progress`` computing the result off the GUI thread (raise DiffvisError for users),
        built on the GUI thread from the current settings."""
        return self.model.work(self.state)

    def take(self, result) -> None:
        """Set up what stays the same from frame to frame of a new ``result`` (None: emptied); drawn next."""

    def on_setting(self, name: str, value) -> None:
        """Show the model's setting or overlay ``name`` in its widget (and recompute, where a setting asks for
        it)."""

    def show_frame(self, frame: int) -> None:
        raise NotImplementedError

    def frame_points(self, frame: int) -> np.ndarray:
        raise NotImplementedError

    def all_points(self) -> np.ndarray:
        raise NotImplementedError

    def describe(self, text: str) -> None:
        """Say what the current frame shows, in the plot's corner (so exports carry it) and by the slider."""
        self.caption.setText(text)
        self.timeline.set_label(text)

    def has_content(self) -> bool:
        return self.result is not None

    def probe(self, position: np.ndarray) -> bool:
        """Add a particle at ``position`` (data coordinates) in the frame shown, computed in the probe job; False
        when the model takes none here (and says why, if it is the frame)."""
        if self.job.busy:
            return False
        try:
            compute = self.model.probe(position)
        except DiffvisError as e:
            self.state.say(str(e))
            return False
        if compute is None:
            return False
        self.probe_job.start(compute)
        return True

    # --- computing ------------------------------------------------------------------------------------------
    def compute(self) -> bool:
        """Start computing from the current settings (cancelling a computation in flight)."""
        if len(self.state.data) < 2:
            return False
        fn = self.work()
        self.probe_job.cancel()  # a probe of the old result must not land on the new one
        self.stale = False
        self.compute_button.setText("Cancel")
        self.timeline.set_label("computing…")
        self.job.start(fn)
        return True

    def _on_compute_click(self) -> None:
        if self.job.busy:
            self.job.cancel()
            self._idle("cancelled")
        else:
            self.compute()

    def _on_done(self, result) -> None:
        self._idle("")
        self.model.result = result  # drawn once, by the model's 'result' event
        self.computed.emit()

    def _on_failed(self, message: str) -> None:
        self._idle(message)
        self.state.say(message)

    def _idle(self, label: str) -> None:
        self.compute_button.setText(self.compute_text)
        if label:
            self.timeline.set_label(label)

    def _on_model_change(self) -> None:
        """A new model or new data: what is shown was computed from the old one."""
        if self.result is None and not self.job.busy:
            return
        self.stale = True
        if self.isVisible():
            self.compute()
        else:
            self.timeline.set_label("stale: recomputed when shown")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        first = not self.shown_before
        self.shown_before = True
        if self.stale or (first and self.result is None and not self.job.busy):
            self.compute()

    def shutdown(self) -> None:
        """Cancel the computations in flight (they check after every step) and wait for their threads."""
        self.probe_job.shutdown()
        self.job.shutdown()

    # --- probing ---------------------------------------------------------------------------------------------
    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        view_box = self.plot.getPlotItem().vb
        if not view_box.sceneBoundingRect().contains(event.scenePos()):
            return
        point = view_box.mapSceneToView(event.scenePos())
        if self.probe(np.array([point.x(), point.y()])):
            event.accept()
