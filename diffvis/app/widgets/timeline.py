"""A frame slider with play/pause: the one control every scrubbable view shares.

``frame_changed(int)`` fires when the frame changes by hand or by playback. Playback advances on a timer and
stops at the last frame. Bound to a model (``bind``), the timeline shows the model's frame and frame count and
writes the slider's moves to its frame; unbound, ``set_count`` gives the frames, and ``follow`` keeps the slider
on the newest frame while frames are being added.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSlider, QStyle, QToolButton, QWidget

LABEL_WIDTH = (120, 220)  # the caption beside the slider: at least, at most (longer text is elided, in full as tip)


class ElidedLabel(QLabel):
    """A one-line label that never widens its row: text that does not fit ends in '…' and is whole in the tooltip
    (``text()`` stays the whole text)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(LABEL_WIDTH[0])
        self.setMaximumWidth(LABEL_WIDTH[1])

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), shown)


class Timeline(QWidget):
    frame_changed = Signal(int)

    def __init__(self, fps: int = 10, parent: QWidget | None = None):
        super().__init__(parent)
        self.play_button = QToolButton()
        self._icons = {playing: self.style().standardIcon(pixmap) for playing, pixmap in (
            (False, QStyle.StandardPixmap.SP_MediaPlay), (True, QStyle.StandardPixmap.SP_MediaPause))}  # fmt: skip
        self.play_button.setIcon(self._icons[False])
        self.play_button.setToolTip("Play / pause (Space)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Scrub (← / →)")
        self.label = ElidedLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.play_button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.timer = QTimer(self, interval=max(1, 1000 // fps))
        self.timer.timeout.connect(self._advance)
        self.play_button.clicked.connect(self.toggle_play)
        self.slider.valueChanged.connect(self.frame_changed)
        self.follow = True

    @property
    def frame(self) -> int:
        return self.slider.value()

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def bind(self, model) -> None:
        """Show ``model``'s ``frame`` of ``count`` (a SceneModel) from now on, and set its frame when the slider
        moves (by hand, by the keys or by playback)."""
        self.slider.valueChanged.connect(lambda frame: setattr(model, "frame", frame))
        model.events.connect(lambda _name, _value: self._show(model.count, model.frame))
        self._show(model.count, model.frame)

    def _show(self, count: int, frame: int) -> None:
        """Put the slider on ``frame`` of ``count`` without telling anyone (the model already knows)."""
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(count - 1, 0))
        self.slider.setValue(frame)
        self.slider.blockSignals(False)

    def set_count(self, count: int) -> None:
        """Frames 0 … count − 1 exist; a slider on the last frame (or following) moves to the new last one."""
        at_end = self.slider.value() == self.slider.maximum()
        self.slider.setRange(0, max(count - 1, 0))
        if (self.follow or at_end) and not self.playing:
            self.slider.setValue(self.slider.maximum())

    def add_widget(self, widget: QWidget) -> None:
        """Put a view's own control (e.g. its export button) at the end of the row."""
        self.layout().addWidget(widget)

    def set_label(self, text: str) -> None:
        self.label.setText(text)

    def step(self, delta: int) -> None:
        self.pause()
        self.slider.setValue(min(max(self.slider.value() + delta, 0), self.slider.maximum()))

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start()
            self.play_button.setIcon(self._icons[True])

    def pause(self) -> None:
        self.timer.stop()
        self.play_button.setIcon(self._icons[False])

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.pause()
        else:
            self.slider.setValue(self.slider.value() + 1)
