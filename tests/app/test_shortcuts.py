"""The menus and shortcuts as a user reaches them: real QActions triggered (their ``triggered`` signal passes
``checked``), real key sequences sent to the active window, real Recent-runs entries."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from diffvis.core.checkpoint import save_run


@pytest.fixture
def window(make_window, qtbot):
    win = make_window()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    return win


def _view_actions(window):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    return [a for a in menu.actions() if not a.isSeparator()]


def test_every_view_action_opens_its_own_tab(window):
    actions = _view_actions(window)
    assert [a.text() for a in actions] == [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert window.tabs.count() == 10
    for i in reversed(range(window.tabs.count())):  # from the last, so that a fall back to tab 0 shows
        actions[i].trigger()
        assert window.tabs.currentIndex() == i, actions[i].text()
    assert [a.shortcut().toString() for a in actions] == [f"Ctrl+{(i + 1) % 10}" for i in range(10)]  # the 10th: 0


@pytest.mark.parametrize("index", [9, 6, 3, 1, 0])
def test_ctrl_digit_keys_switch_tabs(window, index):
    window.tabs.setCurrentIndex(5 if index != 5 else 2)
    QTest.keyClick(window, getattr(Qt.Key, f"Key_{(index + 1) % 10}"), Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == index


def test_recent_run_entry_opens_that_run(window, qtbot, tmp_path):
    from diffvis.core.datasets import make_dataset
    from diffvis.core.models import ModelConfig
    from diffvis.core.pipeline import train_run
    from diffvis.core.training import TrainConfig

    data = make_dataset("moons", 300, seed=0)
    run = train_run(data, ModelConfig(width=8, depth=1), TrainConfig(steps=5, batch=32), {"source": "moons", "n": 300,
                    "noise": None, "seed": 0})  # fmt: skip
    path = tmp_path / "r1"
    save_run(run, path)
    window.settings.add_recent_run(path)
    window._refresh_recent()
    entry = window.recent_menu.actions()[0]
    assert entry.text() == str(path)
    entry.trigger()  # passes checked=False: it must not be taken for the path
    assert window.state.run is not None and window.state.run.step == run.step
    assert "opened" in window.statusBar().currentMessage()


def test_a_message_does_not_outlive_its_tab(window):
    window.tabs.setCurrentWidget(window.reverse_view)
    window.state.say("a probe starts before the last frame: scrub back, then click")
    assert window.statusBar().currentMessage().startswith("a probe")
    QTest.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.statusBar().currentMessage() == ""


def test_pause_action_reaches_the_training_panel(window, qtbot):
    seen = []
    window.training_panel.pause_requested.connect(lambda: seen.append("pause"))
    action = next(a for a in window.findChildren(type(_view_actions(window)[0])) if a.text() == "&Pause / resume")
    action.trigger()
    assert seen == ["pause"]
