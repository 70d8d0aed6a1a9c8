"""Exporting what a view shows: its picture (PNG, SVG), its points (CSV, NPY) or its animation (GIF, MP4).

Used by the views' export button and by the headless ``diffvis render``. Every file is encoded in memory and
written atomically, so a failed export never leaves a half-written file or destroys an older one."""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from fractions import Fraction
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Protocol
from xml.dom.minidom import Element

import av
import numpy as np
from PIL import Image
from pyqtgraph.exporters import SVGExporter
from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QEvent, QIODevice
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGraphicsItem, QWidget

from diffvis.core.atomic import write_output
from diffvis.core.datasets import PointSet
from diffvis.core.pointfiles import save_points
from diffvis.errors import ConfigError, DiffvisError

EXPORT_SUFFIXES = (".png", ".svg", ".csv", ".npy", ".gif", ".mp4")
EXPORT_FILTER = (
    "PNG image (*.png);;SVG drawing (*.svg);;Frame points (*.csv);;All frames (*.npy);;"
    "GIF animation (*.gif);;MP4 video (*.mp4)"
)
FPS_RANGE = (0.1, 240.0)
_PG_SVG = importlib.import_module("pyqtgraph.exporters.SVGExporter")  # the module: the package attribute is the class
_CLOSE = frozenset("Zz")


class Exportable(Protocol):
    """A view that can be exported; ``show_frame`` must draw synchronously, so ``figure.grab()`` shows it."""

    figure: QWidget  # what a PNG, GIF or MP4 frame shows
    svg_item: QGraphicsItem  # what an SVG shows, e.g. a PlotItem

    def frame_count(self) -> int:
        """Frames 0 … frame_count() − 1 (1 for a still view)."""
        ...

    def current_frame(self) -> int: ...

    def show_frame(self, frame: int) -> None: ...

    def frame_points(self, frame: int) -> np.ndarray:
        """(N, 2) the points that frame shows, in data coordinates."""
        ...

    def all_points(self) -> np.ndarray:
        """(F, N, 2) every frame's points."""
        ...


def animation_frames(count: int, max_frames: int) -> list[int]:
    """Indices of the frames an animation shows: all ``count`` of them, or ``max_frames`` evenly spaced ones that
    include the first and last. ``max_frames`` below 2 raises ``ConfigError``."""
    if max_frames < 2:
        raise ConfigError(f"an animation needs at least 2 frames (its first and last), got max_frames={max_frames}")
    if count <= max_frames:
        return list(range(count))
    steps = max_frames - 1
    return [(i * (count - 1) + steps // 2) // steps for i in range(max_frames)]  # rounded; distinct as count > steps


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """A copy of ``image`` as an (H, W, 3) uint8 RGB array (alpha dropped, row padding removed)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width = rgb.height(), rgb.width()
    rows = np.frombuffer(rgb.constBits(), np.uint8, count=rgb.sizeInBytes()).reshape(height, rgb.bytesPerLine())
    return rows[:, : 3 * width].reshape(height, width, 3).copy()


def encode_gif(frames: Iterable[np.ndarray], fps: float) -> bytes:
    """A looping GIF of (H, W, 3) uint8 frames, read one at a time. GIF counts time in 10 ms steps, so each frame
    lasts 1000/fps ms rounded to 10 ms and at least 20 ms (browsers slow shorter delays to 100 ms). Pillow merges
    identical consecutive frames into one that lasts as long as they did together."""
    delay_ms = 10 * min(max(2, round(100 / fps)), 0xFFFF)
    images = (Image.fromarray(frame, "RGB") for frame in frames)
    buffer = io.BytesIO()
    next(images).save(buffer, format="GIF", save_all=True, append_images=images, duration=delay_ms, loop=0)
    return buffer.getvalue()


def encode_mp4(frames: Iterable[np.ndarray], fps: float) -> bytes:
    """An H.264 (yuv420p) MP4 of (H, W, 3) uint8 frames of one size, read one at a time, cropped to the first
    frame's size rounded down to even numbers."""
    frames = iter(frames)
    first = next(frames)
    height, width = (n - n % 2 for n in first.shape[:2])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:  # no movflags=faststart: it reopens the output by name
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in chain([first], frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def export_view(
    view: Exportable,
    path: str | os.PathLike,
    *,
    fps: float = 30,
    max_frames: int = 300,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the view to ``path``, chosen by its suffix: .png/.svg the current frame's picture, .csv the current
    frame's points, .npy all frames' points (F, N, 2), .gif/.mp4 the animation of
    ``animation_frames(frame_count, max_frames)`` at ``fps``. Returns the number of frames written (1 for stills).

    Animation frames are drawn, grabbed and encoded one at a time; ``progress(i, n)`` is called after the i-th of
    the n is encoded, and if it raises (e.g. ``Cancelled``), nothing is written. The view is left showing the frame
    it showed before. Bad arguments raise ``ConfigError`` before anything is drawn; a file that cannot be written
    raises ``DiffvisError``."""
    path = Path(path)
    suffix = check_export_target(path, fps=fps, max_frames=max_frames)
    if view.frame_count() < 1:
        raise ConfigError("nothing to export: the view has no frames yet")
    if suffix == ".csv":
        points = np.asarray(view.frame_points(view.current_frame()), dtype=np.float64)
        save_points(PointSet(points), path)
        return 1
    data, count = _encode(view, suffix, fps, max_frames, progress)
    write_output(path, data)
    return count


def check_export_target(path: str | os.PathLike, *, fps: float = 30, max_frames: int = 300) -> str:
    """Refuse, with ``ConfigError``, an export that cannot succeed (unknown suffix; for an animation, fps out of
    range or fewer than 2 frames), before anything is computed or drawn; returns the lower-case suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        allowed = ", ".join(EXPORT_SUFFIXES)
        raise ConfigError(f"{path.name}: cannot export to {suffix or 'a file without a suffix'}; use {allowed}")
    if suffix in (".gif", ".mp4"):
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise ConfigError(f"fps must be from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}, got {fps:g}")
        animation_frames(2, max_frames)  # raises for max_frames < 2
    return suffix


def _encode(
    view: Exportable, suffix: str, fps: float, max_frames: int, progress: Callable[[int, int], None] | None
) -> tuple[bytes, int]:
    """The file's bytes and the number of frames they hold."""
    if suffix == ".png":
        return _png_bytes(view.figure), 1
    if suffix == ".svg":
        return _svg_bytes(view.svg_item), 1
    if suffix == ".npy":
        points = np.asarray(view.all_points())
        buffer = io.BytesIO()
        np.save(buffer, points, allow_pickle=False)
        return buffer.getvalue(), len(points)
    indices = animation_frames(view.frame_count(), max_frames)
    encode = encode_gif if suffix == ".gif" else encode_mp4
    with closing(_grab_frames(view, indices, progress)) as frames:  # closing it shows the previous frame again
        return encode(frames, fps), len(indices)


def _png_bytes(figure: QWidget) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not figure.grab().toImage().save(buffer, "PNG"):
        raise DiffvisError("the picture could not be encoded as PNG")
    buffer.close()
    return data.data()


def _svg_bytes(item: QGraphicsItem) -> bytes:
    """pyqtgraph's SVG of ``item`` (which clips to each ViewBox, unlike Qt's own SVG generator).

    ViewBoxes apply a new range only when about to paint, so the scene is told first; else points drawn since the
    last paint land where the old range put them. pyqtgraph 0.14.0 fails on the "Z" (close path) that Qt ≥ 6.10
    writes (pyqtgraph#3495), so while it corrects coordinates the Zs are taken out of every path and put back."""
    item.scene().prepareForPaint()
    correct = _PG_SVG.correctCoordinates
    _PG_SVG.correctCoordinates = partial(_correct_keeping_closes, correct)
    try:
        return SVGExporter(item).export(toBytes=True)
    finally:
        _PG_SVG.correctCoordinates = correct


def _correct_keeping_closes(correct: Callable[..., None], node: Element, *args: object) -> None:
    paths = [(path, path.getAttribute("d").split()) for path in node.getElementsByTagName("path")]
    for path, tokens in paths:
        path.setAttribute("d", " ".join(t for t in tokens if t not in _CLOSE))
    correct(node, *args)
    for path, tokens in paths:
        corrected = iter(path.getAttribute("d").split())
        path.setAttribute("d", " ".join(t if t in _CLOSE else next(corrected) for t in tokens))


def _grab_frames(
    view: Exportable, indices: list[int], progress: Callable[[int, int], None] | None
) -> Iterator[np.ndarray]:
    """Draw and grab each frame in ``indices`` as it is asked for; when done or closed, show the previous frame."""
    previous = view.current_frame()
    shape = None
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)  # lay out what changed (a table shown) first
    try:
        for i, frame in enumerate(indices, start=1):
            view.show_frame(frame)
            rgb = qimage_to_rgb(view.figure.grab().toImage())
            if shape not in (None, rgb.shape):
                raise DiffvisError("the view changed size during the export; export again without resizing it")
            shape = rgb.shape
            yield rgb
            if progress is not None:
                progress(i, len(indices))
    finally:
        view.show_frame(previous)
