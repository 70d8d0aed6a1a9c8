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
    windows.clear()  # (their wrappers are collected by the root conftest's _collect_qt_garbage, like every widget's)


@pytest.fixture
def moons_window(make_window):
    """A window on 100 labelled moons points."""
    win = make_window()
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(100)
    return win


@pytest.fixture
def close_at_once():
    """``close_at_once(window, worker)``: closing the window has stopped ``worker`` by the time ``close`` returns
    (what it costs is a figure of ``diffvis bench``, not a test: a loaded machine must not fail it)."""

    def close(window, worker) -> None:
        window.close()
        assert not window.isVisible()
        assert worker.isFinished() and not worker.isRunning()

    return close
