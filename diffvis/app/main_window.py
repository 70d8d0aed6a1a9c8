"""The main window: panels on the left and views in tabs (a splitter between them), menus, shortcuts and the status
bar (composition only)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from diffvis import __version__
from diffvis.app.controller import TrainingController
from diffvis.app.models.brush import Brush
from diffvis.app.models.tour import TourModel
from diffvis.app.panels.data_panel import DataPanel
from diffvis.app.panels.model_panel import ModelPanel
from diffvis.app.panels.tour_panel import SETTINGS_KEY as TOUR_SETTING
from diffvis.app.panels.tour_panel import TourPanel
from diffvis.app.panels.training_panel import TrainingPanel
from diffvis.app.settings import Settings, runs_dir
from diffvis.app.state import LabState
from diffvis.app.views.compare_view import CompareView
from diffvis.app.views.coupling_view import CouplingView
from diffvis.app.views.data_view import DataView
from diffvis.app.views.density_view import DensityView
from diffvis.app.views.forward_view import ForwardView
from diffvis.app.views.langevin_view import LangevinView
from diffvis.app.views.reverse_view import ReverseView
from diffvis.app.views.score_view import ScoreView
from diffvis.app.views.training_view import TrainingView
from diffvis.app.views.transport_view import TransportView
from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.datasets import DATASETS
from diffvis.core.examples import example, shipped
from diffvis.core.reflow import rectified_steps
from diffvis.core.sources import run_points
from diffvis.errors import DataFileError, DiffvisError

SIDE_WIDTH = 320  # the panels' width in a new window (the splitter handle moves it; it is saved on closing)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None):
        super().__init__()
        self.setWindowTitle("diffvis — diffusion on 2D point sets")
        self.settings = settings or Settings()
        self.state = LabState(self)
        self.controller = TrainingController(self.state, self)
        self._saved = None  # the run last opened or saved: a reflow of another run saves it first
        self.tour: TourPanel | None = None  # ``open_tour``

        self.brush = Brush()
        self.data_panel = DataPanel(self.state, self.brush)
        self.model_panel = ModelPanel(self.state)
        self.training_panel = TrainingPanel(self.state)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        for panel in (self.data_panel, self.training_panel, self.model_panel):
            side_layout.addWidget(panel)
        side_layout.addStretch(1)
        self.side = QScrollArea()  # the panels scroll in a short window; the splitter beside them sets their width
        self.side.setWidget(side)
        self.side.setWidgetResizable(True)
        self.side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.side.setFrameShape(QFrame.Shape.NoFrame)
        scrollbar = self.side.verticalScrollBar().sizeHint().width()
        self.side.setMinimumWidth(side.minimumSizeHint().width() + scrollbar)

        self.data_view = DataView(self.state, self.brush)
        self.forward_view = ForwardView(self.state)
        self.training_view = TrainingView(self.state)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.data_view, "Data")
        self.tabs.addTab(self.training_view, "Training")
        self.tabs.addTab(self.forward_view, "Forward process")
        self.reverse_view = ReverseView(self.state)
        self.tabs.addTab(self.reverse_view, "Reverse process")
        self.score_view = ScoreView(self.state)
        self.tabs.addTab(self.score_view, "Score field")
        self.langevin_view = LangevinView(self.state)
        self.tabs.addTab(self.langevin_view, "Langevin")
        self.transport_view = TransportView(self.state)
        self.tabs.addTab(self.transport_view, "Transport")
        self.compare_view = CompareView(self.state)
        self.tabs.addTab(self.compare_view, "Compare")
        self.scene_views = (self.reverse_view, self.score_view, self.langevin_view, self.transport_view,
                            self.compare_view)  # fmt: skip
        self.coupling_view = CouplingView(self.state)
        self.tabs.addTab(self.coupling_view, "Coupling")
        self.density_view = DensityView(self.state)
        self.tabs.addTab(self.density_view, "Density")
        self.scene_views = (*self.scene_views, self.coupling_view, self.density_view)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.side)
        self.splitter.addWidget(self.tabs)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 0)  # a wider window widens the views; the panels keep their width
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([SIDE_WIDTH, 10 * SIDE_WIDTH])
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(self.splitter)
        self.setCentralWidget(central)
        self.statusBar().showMessage("ready")

        self._wire()
        self._build_menus()
        self._restore()
        QTimer.singleShot(0, self.training_view.grab)  # lay out and paint the hidden tab once, while idle

    # --- wiring ---------------------------------------------------------------------------------------------
    def _wire(self) -> None:
        tp = self.training_panel
        tp.train_requested.connect(self.start_training)
        tp.pause_requested.connect(self.controller.pause)
        tp.resume_requested.connect(self.controller.resume)
        tp.stop_requested.connect(self.controller.stop)
        tp.reset_requested.connect(self.controller.reset)
        tp.reflow_requested.connect(self.start_reflow)
        self.controller.preparing.connect(tp.show_preparation)
        self.model_panel.validity_changed.connect(tp.set_inputs_valid)
        self.state.message.connect(lambda text: self.statusBar().showMessage(text))
        self.state.failed.connect(self._error_dialog)
        self.tabs.currentChanged.connect(lambda _: self.statusBar().clearMessage())  # a view's note stays with it

    def start_training(self) -> bool:
        """Show the training tab (painted now, before the worker competes for the CPU), then train."""
        if self.controller.busy or len(self.state.data) < 2:
            return False
        self.tabs.setCurrentWidget(self.training_view)
        self.training_view.repaint()
        return self.controller.start()

    def start_reflow(self) -> bool:
        """Reflow the trained flow run (saved first in the runs folder, unless it was opened or saved there, so that
        the new run replaces it in the window only), with its progress in the training tab."""
        if not self.controller.can_reflow:
            return False
        if self.state.run is not self._saved and not self.save_run(self._free_run_folder()):
            return False
        self.tabs.setCurrentWidget(self.training_view)
        return self.controller.start_reflow()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open run…", QKeySequence.StandardKey.Open, self.choose_run)
        self.save_action = self._action(file_menu, "&Save run…", QKeySequence.StandardKey.Save, self.choose_save)
        self.recent_menu = file_menu.addMenu("Recent runs")
        self.examples_menu = file_menu.addMenu("Open e&xample run")
        for e in shipped():  # ``triggered`` passes ``checked`` first: it must not land in ``name``
            self.examples_menu.addAction(e.title, lambda _checked=False, name=e.name: self.open_example(name))
        self.examples_menu.setEnabled(bool(shipped()))
        self._action(file_menu, "&Load points…", "Ctrl+L", self.data_panel.choose_file)
        self._action(file_menu, "&Export view…", "Ctrl+E", self.export_current)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view_menu = self.menuBar().addMenu("&View")
        for i in range(self.tabs.count()):  # ``triggered`` passes ``checked`` first: it must not land in ``i``
            self._action(view_menu, self.tabs.tabText(i), f"Ctrl+{(i + 1) % 10}",  # the tenth: Ctrl+0
                         lambda _checked=False, i=i: self.tabs.setCurrentIndex(i))  # fmt: skip
        train_menu = self.menuBar().addMenu("&Training")
        self._action(train_menu, "&Train", "Ctrl+T", self.start_training)
        self._action(train_menu, "&Pause / resume", "Ctrl+P", self.training_panel.toggle_pause)
        self._action(train_menu, "&Stop", "Ctrl+.", self.controller.stop)
        help_menu = self.menuBar().addMenu("&Help")
        self.tour_action = self._action(help_menu, "&Tour", "F1", self.open_tour)
        self._action(help_menu, "&About diffvis", None, self.about)
        self._refresh_recent()
        # inside the views: Space plays / pauses the current view's timeline, the arrow keys step it
        for key, slot in ((Qt.Key.Key_Space, self.toggle_play), (Qt.Key.Key_Left, lambda: self.step_frame(-1)),
                          (Qt.Key.Key_Right, lambda: self.step_frame(1))):  # fmt: skip
            QShortcut(QKeySequence(key), self.tabs, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def _current_timeline(self):
        return getattr(self.tabs.currentWidget(), "timeline", None)

    def toggle_play(self) -> None:
        if (timeline := self._current_timeline()) is not None:
            timeline.toggle_play()

    def step_frame(self, delta: int) -> None:
        if (timeline := self._current_timeline()) is not None:
            timeline.step(delta)

    def export_current(self) -> None:
        """Export what the current tab shows (PNG, SVG, CSV, NPY, GIF or MP4): every view is exportable."""
        self.tabs.currentWidget().choose_export()

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def open_tour(self) -> TourPanel:
        """The guided tour, in a dock on the right, at the chapter it was left on."""
        if self.tour is None:
            chapter = self.settings.get(TOUR_SETTING, 0)
            model = TourModel(chapter=chapter if isinstance(chapter, int) else 0)
            self.tour = TourPanel(self, model, self)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.tour)
        self.tour.show()
        self.tour.raise_()
        return self.tour

    def about(self) -> None:
        QMessageBox.about(
            self, "About diffvis", f"diffvis {__version__}\nA laboratory for diffusion models on 2D points."
        )

    # --- runs -----------------------------------------------------------------------------------------------
    def choose_save(self) -> None:
        if self.state.run is None:
            self.error("Nothing to save yet: train a model first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save run (a folder)", str(runs_dir() / self._run_name()))
        if path:
            self.save_run(path)

    def _run_name(self) -> str:
        run = self.state.run
        k = rectified_steps(run)
        return Path(f"{self.state.data_info.get('source', 'run')}-{run.step}-steps{f'-reflow{k}' * bool(k)}").name

    def _free_run_folder(self) -> Path:
        """A folder of the runs folder named for the run, that holds nothing yet."""
        base = runs_dir() / self._run_name()
        names = (base.name if i == 1 else f"{base.name}-{i}" for i in range(1, 10**6))
        return next(path for name in names if not (path := base.with_name(name)).exists())

    def save_run(self, path: str | Path) -> bool:
        try:
            save_run(self.state.run, path)
        except DiffvisError as e:
            self.error(str(e))
            return False
        self._saved = self.state.run
        self.settings.add_recent_run(path)
        self._refresh_recent()
        self.state.say(f"saved the run to {path}")
        return True

    def choose_run(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open run", str(runs_dir()), "diffvis run (run.json)")
        if path:
            self.open_run(path)

    def open_example(self, name: str) -> bool:
        """Open the example run ``name`` that ships with diffvis (not added to the recent runs)."""
        return self.open_run(example(name).path, remember=False)

    def open_run(self, path: str | Path, *, remember: bool = True) -> bool:
        """Open a saved run; a bad one shows the reason and leaves the current state untouched. ``remember``: list
        it among the recent runs."""
        if self.controller.busy:
            self.error("Stop the training before opening another run.")
            return False
        try:
            run = load_run(path)
            points, info = self._run_data(run)
        except DiffvisError as e:
            self.error(str(e))
            return False
        self.state.set_data(points, info)
        self.data_panel.show_source(info)
        self.state.set_model_config(run.model_config)
        self.state.set_train_config(run.train_config)
        self.state.set_run(run)
        self._saved = run
        self.controller.refresh_preview(run)
        if remember:
            self.settings.add_recent_run(Path(path).parent if Path(path).name == "run.json" else path)
            self._refresh_recent()
        self.tabs.setCurrentWidget(self.training_view)
        self.state.say(f"opened {path}: {run.objective}, {run.step:,} steps")
        return True

    def _run_data(self, run):
        """The run's training points, drawn or read again; or the current ones when they cannot be found."""
        try:
            return run_points(run.data_info)
        except DataFileError:
            return self.state.data, self.state.data_info

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_runs():
            self.recent_menu.addAction(path, lambda _checked=False, p=path: self.open_run(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_runs()))

    def error(self, text: str) -> None:
        self.state.fail(text)

    def _error_dialog(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "diffvis", text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()

    # --- settings and closing -------------------------------------------------------------------------------
    def _restore(self) -> None:
        geometry = self.settings.get("geometry")
        if isinstance(geometry, str):
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode()))
        else:
            self.resize(1280, 800)
        splitter = self.settings.get("splitter")
        if isinstance(splitter, str):
            self.splitter.restoreState(QByteArray.fromBase64(splitter.encode()))
        data = self.settings.get("data", {})
        if isinstance(data, dict) and data.get("source") in DATASETS:
            self.data_panel.restore(data)
        self.model_panel.load(self.settings.get("model", {}), self.settings.get("train", {}))
        self.tabs.setCurrentIndex(int(self.settings.get("tab", 0)) % self.tabs.count())

    def closeEvent(self, event) -> None:
        self.controller.shutdown()
        self.training_view.shutdown()
        for view in self.scene_views:
            view.shutdown()
        self.settings.set("geometry", bytes(self.saveGeometry().toBase64()).decode())
        self.settings.set("splitter", bytes(self.splitter.saveState().toBase64()).decode())
        if self.state.data_info.get("source") in DATASETS:
            self.settings.set("data", {k: self.state.data_info[k] for k in ("source", "n", "noise", "seed")})
        self.settings.set("model", self.state.model_config.to_dict())
        self.settings.set("train", self.state.train_config.to_dict())
        self.settings.set("tab", self.tabs.currentIndex())
        self.settings.save()
        super().closeEvent(event)
