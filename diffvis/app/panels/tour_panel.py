"""The guided tour: a dock beside the views with the open chapter's text (``core.tour``), Back / Next, and *Show
me*, which sets the chapter's data or example run, view, sampler, frame and overlays, computes the view and plays
it. Keys: Alt+Left / Alt+Right turn the page, Alt+Return shows; the chapter open is kept in the settings."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from diffvis.app.models.tour import TourModel
from diffvis.core.tour import Chapter

SETTINGS_KEY = "tour_chapter"


class TourPanel(QDockWidget):
    """Draws a ``TourModel`` and writes the page turns back; ``shown`` is emitted when *Show me* has set its view
    up (and the view's computation, if any, is done)."""

    shown = Signal(object)

    def __init__(self, window, model: TourModel, parent=None):
        super().__init__("Tour", parent)
        self.setObjectName("tour")
        self.window, self.model = window, model
        self.counter = QLabel()
        self.heading = QLabel(textFormat=Qt.TextFormat.RichText)
        self.text = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.text.setMinimumWidth(240)
        self.back_button, self.show_button, self.next_button = (QPushButton(t) for t in ("Back", "Show me", "Next"))
        self.back_action = self._action("Previous chapter", "Alt+Left", model.back)
        self.next_action = self._action("Next chapter", "Alt+Right", model.next)
        self.show_action = self._action("Show me", "Alt+Return", self.show_me)
        for button, action in ((self.back_button, self.back_action), (self.show_button, self.show_action),
                               (self.next_button, self.next_action)):  # fmt: skip
            button.clicked.connect(action.trigger)
            button.setToolTip(f"{action.text()} ({action.shortcut().toString()})")
        buttons = QHBoxLayout()
        for button in (self.back_button, self.show_button, self.next_button):
            buttons.addWidget(button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.counter)
        layout.addWidget(self.heading)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)
        self.setWidget(body)
        model.events.connect(lambda name, _value: self._show())
        self._show()

    def _action(self, text: str, keys: str, slot) -> QAction:
        """A window-wide shortcut, live while the tour is open (``triggered`` passes ``checked``: dropped)."""
        action = QAction(text, self)
        action.setShortcut(QKeySequence(keys))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _show(self) -> None:
        chapter, i = self.model.current, self.model.chapter
        self.counter.setText(f"Chapter {i + 1} of {self.model.count}")
        self.heading.setText(f"<b>{chapter.title}</b>")
        self.text.setText(chapter.text)
        self.back_action.setEnabled(i > 0)
        self.next_action.setEnabled(i < self.model.count - 1)
        self.back_button.setEnabled(i > 0)
        self.next_button.setEnabled(i < self.model.count - 1)
        self.window.settings.set(SETTINGS_KEY, i)

    def show_me(self) -> bool:
        """Set the chapter's scene up (see ``show_chapter``); False, with the reason said, when it cannot be."""
        return show_chapter(self.window, self.model.current, lambda view: self.shown.emit(view))


def show_chapter(window, chapter: Chapter, done) -> bool:
    """Open the chapter's example run (or its data set), show its view with its sampler, preset and overlays,
    compute the view and, once computed, put it on its frame and play; ``done(view)`` then."""
    if chapter.example is not None:
        if not window.open_example(chapter.example):
            return False
    else:
        window.data_panel.source.setCurrentText(chapter.data)
        if chapter.n is not None:
            window.data_panel.n.setValue(chapter.n)
    view = getattr(window, chapter.view)
    window.tabs.setCurrentWidget(view)
    model = getattr(view, "model", None)
    if chapter.preset is not None:
        model.apply_preset(chapter.preset)
    if chapter.request is not None:
        if hasattr(model, "set_request"):
            model.set_request(chapter.request)
        else:
            model.request = replace(chapter.request, n=model.request.n)
    for name, value in chapter.overlays.items():
        setattr(model, name, value)
    compute = getattr(view, "compute", None)
    if compute is None:  # a view with nothing to compute (forward, training): play it as it is
        _play(view, chapter)
        done(view)
        return True

    def finished() -> None:
        view.computed.disconnect(finished)
        _play(view, chapter)
        done(view)

    view.computed.connect(finished)
    if not compute():
        view.computed.disconnect(finished)
        return False
    return True


def _play(view, chapter: Chapter) -> None:
    timeline = getattr(view, "timeline", None)
    if timeline is None:
        return
    last = timeline.slider.maximum()
    frame = {"first": 0, "last": last}.get(chapter.frame, chapter.frame)
    timeline.pause()
    timeline.slider.setValue(min(int(frame), last))
    if chapter.plays:
        timeline.toggle_play()
