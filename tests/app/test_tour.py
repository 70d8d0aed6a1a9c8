"""The guided tour: opened from Help ▸ Tour (the real action), paged with its real key sequences, resumed where it
was left, and every chapter's *Show me* reaching its view, computed, on its frame, with its example run."""

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from diffvis.app.panels.tour_panel import SETTINGS_KEY, show_chapter
from diffvis.core.examples import example
from diffvis.core.tour import CHAPTERS


def _open_tour(window):
    window.tour_action.trigger()
    tour = window.tour
    assert tour is not None and tour.isVisible()
    return tour


def test_help_tour_opens_pages_with_keys_and_resumes(make_window, qtbot):
    window = make_window()
    tour = _open_tour(window)
    assert tour.model.chapter == 0 and "Chapter 1 of" in tour.counter.text() and not tour.back_button.isEnabled()
    assert CHAPTERS[0].title in tour.heading.text()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    QTest.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    QTest.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert tour.model.chapter == 2 and CHAPTERS[2].title in tour.heading.text()
    QTest.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert tour.model.chapter == 1
    tour.next_button.click()
    assert tour.model.chapter == 2 and window.settings.get(SETTINGS_KEY) == 2
    window.settings.save()
    again = make_window()  # the same settings file: the tour resumes at chapter 3
    assert _open_tour(again).model.chapter == 2


def _lighter(chapter):
    """The chapter with fewer points to sample (what *Show me* sets up is the same; the test runs faster)."""
    return replace(chapter, request=None if chapter.request is None else replace(chapter.request, n=200))


def test_every_chapter_shows_its_view_computed(make_window, qtbot):
    window = make_window()
    window.compare_view.model.n = 300
    window.density_view.model.resolution = 16
    for model in (window.langevin_view.model, window.transport_view.model):
        model.request = replace(model.request, n=200)
    shown = []
    for i, chapter in enumerate(map(_lighter, CHAPTERS)):
        assert show_chapter(window, chapter, shown.append), chapter.title
        qtbot.waitUntil(lambda i=i: len(shown) == i + 1, timeout=120_000)
        view = shown[-1]
        assert view is getattr(window, chapter.view) and window.tabs.currentWidget() is view, chapter.title
        if chapter.example is not None:
            assert window.state.run is not None and window.state.run.objective == example(chapter.example).objective
            assert window.state.data_info["source"] == example(chapter.example).data
        model = getattr(view, "model", None)
        if model is not None and hasattr(model, "result"):
            assert model.result is not None, chapter.title
            if chapter.request is not None and hasattr(model.result, "request"):
                assert model.result.request.sampler == chapter.request.sampler
            if chapter.frame == "last":
                assert model.frame == model.count - 1
            if chapter.plays:
                assert view.timeline.playing, chapter.title
                view.timeline.pause()
        for name, value in chapter.overlays.items():
            assert getattr(model, name) == value
        if chapter.preset is not None:
            assert model.preset == chapter.preset
        if chapter.n is not None:
            assert len(window.state.data) == chapter.n


def test_show_me_through_its_button_and_its_keys(make_window, qtbot):
    window = make_window()
    tour = _open_tour(window)
    with qtbot.waitSignal(tour.shown, timeout=30_000) as shown:
        tour.show_button.click()  # chapter 1: the forward process, nothing to compute
    assert shown.args[0] is window.forward_view and window.forward_view.timeline.playing
    window.forward_view.timeline.pause()
    window.tabs.setCurrentWidget(window.data_view)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    with qtbot.waitSignal(tour.shown, timeout=30_000):
        QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.forward_view
    window.forward_view.timeline.pause()
