import gc
import time

import pytest

from diffvis.app.main_window import MainWindow
from diffvis.app.settings import Settings


@pytest.fixture
def make_window(qtbot, tmp_path):
    """A shown main window with its own settings file; its threads are stopped after the test."""
    windows = []

    def make() -> MainWindow:
        win = MainWindow(Settings(tmp_path / "settings.json"))
        qtbot.addWidget(win)
        win.resize(1200, 800)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.controller.shutdown()
        for view in win.scene_views:
            view.shutdown()
        win.close()
    windows.clear()
    gc.collect()  # collect the closed windows' Qt wrappers now, not in the middle of a later test's repaint


@pytest.fixture
def close_at_once():
    """``close_at_once(window, worker)``: closing the window stops ``worker`` within a second."""

    def close(window, worker) -> None:
        started = time.perf_counter()
        window.close()
        elapsed = time.perf_counter() - started
        assert not worker.isRunning()
        assert elapsed < 1.0, f"closing took {elapsed:.2f} s"

    return close
