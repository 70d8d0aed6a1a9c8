"""Starting the app: the QApplication, the palette-aware plot style, --demo and --screenshot."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

DEMO_STEPS = 4000


def quiet_offscreen_warnings() -> None:
    """The offscreen platform warns about window hints it cannot honour; those lines are noise, not errors."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message: str) -> None:
        if "does not support propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(handler)


def share_the_interpreter() -> None:
    """The training thread runs Python between torch calls; by default it keeps the GIL for up to 5 ms whenever
    the GUI thread asks for it, and a repaint asks hundreds of times. Hand it over within 0.5 ms instead."""
    sys.setswitchinterval(0.0005)


def freeze_startup_objects() -> None:
    """Move everything alive after start-up (torch, Qt wrappers, pyqtgraph items) out of the garbage collector's
    reach: a full collection over them takes 100–170 ms here, a visible freeze whenever it strikes."""
    gc.collect()
    gc.freeze()


def collect_garbage_in_the_gui_thread(app) -> None:
    """Python's automatic collection strikes wherever memory is allocated: in a worker thread, or inside a plot's
    paint, and destroying Qt wrappers there crashes Qt (a view's GraphicsView segfaulted mid-repaint). Collect
    instead on a timer of the GUI thread, between events (pyqtgraph's ``GarbageCollector``)."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    if getattr(app, "garbage_collector", None) is None:
        app.garbage_collector = GarbageCollector(interval=1.0)


def configure_pyqtgraph(app) -> None:
    """Plots follow the system's light or dark palette; antialiased lines."""
    import pyqtgraph as pg

    palette = app.palette()
    pg.setConfigOptions(background=palette.window().color(), foreground=palette.text().color(), antialias=True)


def offscreen_app():
    """The QApplication of a headless command (render, bench), set up like the app's; made once per process."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication(["diffvis"])
    configure_pyqtgraph(app)
    collect_garbage_in_the_gui_thread(app)
    return app


def run_app(*, demo: bool = False, screenshot: Path | None = None, run: Path | None = None, tour: bool = False) -> int:
    """Open the main window; returns the exit status. With ``screenshot`` the window is saved to a PNG once the
    work settles (halfway through the demo training, or when an opened run's preview is drawn), then it closes."""
    from PySide6.QtWidgets import QApplication

    from diffvis.app.main_window import MainWindow
    from diffvis.app.workers import warm_up

    quiet_offscreen_warnings()
    warm_up()
    share_the_interpreter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("diffvis")
    configure_pyqtgraph(app)
    collect_garbage_in_the_gui_thread(app)
    window = MainWindow()
    if screenshot is not None:
        window.resize(1280, 800)  # pictures of the same size whatever the last session's layout
    window.show()
    freeze_startup_objects()
    if run is not None:
        window.open_run(run)
    if demo:
        start_demo(window)
    if tour:
        window.open_tour()
    if screenshot is not None:
        _screenshot_when_settled(window, Path(screenshot), demo)
    status = app.exec()
    window.controller.shutdown()
    for view in window.scene_views:
        view.shutdown()
    delete_now(window)
    return status


def start_demo(window) -> None:
    """The demo: the shipped butterfly run, sampled at once in the reverse view, while a fresh run of the same
    settings trains beside it (``DEMO_STEPS`` steps, in the training view); the fresh one takes over when done.
    Without the example (an installation that lacks resources/runs) the training alone."""
    from diffvis.core.examples import DEMO_EXAMPLE, shipped

    if any(e.name == DEMO_EXAMPLE for e in shipped()) and window.open_example(DEMO_EXAMPLE):
        window.state.update_train_config(steps=DEMO_STEPS)
        window.tabs.setCurrentWidget(window.reverse_view)
        window.controller.start(keep_run=True)
        window.state.say("the shipped butterfly run is shown; a fresh one trains beside it (Training tab)")
        return
    window.data_panel.source.setCurrentText("butterfly")
    window.state.update_train_config(steps=DEMO_STEPS)
    window.start_training()


def delete_now(widget) -> None:
    """Delete ``widget``'s Qt objects now, while every Python object in them is alive: left to the interpreter's
    exit, PySide destroys them in no set order, and pyqtgraph code run by a half-destroyed plot (an axis resized
    after its label is gone) can crash the process after its work is done."""
    import shiboken6

    if shiboken6.isValid(widget):
        shiboken6.delete(widget)


def _screenshot_when_settled(window, path: Path, demo: bool) -> None:
    from PySide6.QtCore import QTimer

    def shoot() -> None:
        window.grab().save(str(path))
        window.close()

    if demo:

        def on_progress(p) -> None:
            if p is not None and p.step >= p.total // 2 and window.state.preview is not None:
                window.state.progress_changed.disconnect(on_progress)
                QTimer.singleShot(200, shoot)

        window.state.progress_changed.connect(on_progress)
    else:
        QTimer.singleShot(1500, shoot)
