"""A new user's first look at each view: a view with a model and nothing computed computes when first shown and
says so; its caption never squeezes the slider; the play button shows an icon, not a font glyph."""

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

SCENES = ("reverse_view", "score_view", "langevin_view", "transport_view", "compare_view")


@pytest.fixture
def window(make_window, one_torch_thread):
    win = make_window()
    win.resize(1024, 640)
    win.data_panel.source.setCurrentText("moons")
    win.data_panel.n.setValue(400)
    reverse = win.reverse_view
    reverse.model.request = replace(reverse.model.request, params={"steps": 5}, n=100)
    win.score_view.model.levels = 5
    langevin = win.langevin_view
    langevin.model.request = replace(langevin.model.request, params={"steps_per_level": 2}, n=100)
    transport = win.transport_view.model
    transport.update(request=replace(transport.request, n=100).with_steps(3), lines=5)
    compare = win.compare_view.model
    for i, panel in enumerate(compare.panels):
        compare.set_panel(i, replace(panel, request=panel.request.with_steps(3)))
    compare.n = 100
    return win


@pytest.mark.parametrize("name", SCENES)
def test_a_view_computes_when_first_shown_and_says_so(window, qtbot, name):
    view = getattr(window, name)
    assert view.result is None and not view.job.busy  # hidden: nothing computed yet
    with qtbot.waitSignal(view.computed, timeout=60_000):
        window.tabs.setCurrentWidget(view)
        assert view.job.busy and view.timeline.label.text().startswith("computing")
        assert view.compute_button.text() == "Cancel"
    assert view.result is not None and view.frame_count() > 1
    # shown again later: nothing recomputed
    window.tabs.setCurrentWidget(window.data_view)
    window.tabs.setCurrentWidget(view)
    assert not view.job.busy


def test_a_first_computation_cancelled_is_not_restarted_by_switching_tabs(window, qtbot):
    view = window.reverse_view
    window.tabs.setCurrentWidget(view)
    assert view.job.busy
    qtbot.mouseClick(view.compute_button, Qt.MouseButton.LeftButton)
    assert not view.job.busy and view.timeline.label.text() == "cancelled"
    window.tabs.setCurrentWidget(window.data_view)
    window.tabs.setCurrentWidget(view)
    assert not view.job.busy and view.result is None


@pytest.mark.parametrize("name", SCENES)
def test_a_long_caption_never_squeezes_the_slider(window, qtbot, name):
    view = getattr(window, name)
    with qtbot.waitSignal(view.computed, timeout=60_000):
        window.tabs.setCurrentWidget(view)
    long = "exact score (the run is a DDPM model: train an NCSN model for a learned score) · frame 12/21 · " * 3
    view.timeline.set_label(long)
    QApplication.processEvents()
    timeline = view.timeline
    assert timeline.label.text() == long and timeline.label.toolTip() == long  # whole, for the tooltip
    assert timeline.label.width() <= 220
    assert timeline.slider.width() >= 0.4 * timeline.width(), (timeline.slider.width(), timeline.width())


def test_play_button_shows_icons_for_play_and_pause(window, qtbot):
    view = window.forward_view
    window.tabs.setCurrentWidget(view)
    button = view.timeline.play_button
    assert button.text() == "" and not button.icon().isNull()
    play = button.icon().cacheKey()
    view.timeline.toggle_play()
    assert view.timeline.playing and not button.icon().isNull() and button.icon().cacheKey() != play
    view.timeline.toggle_play()
    assert not view.timeline.playing and button.icon().cacheKey() == play
