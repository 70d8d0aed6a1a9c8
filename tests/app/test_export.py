"""Exporting a view: frame choice, pixel conversion, and each format read back with an independent reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from itertools import pairwise

import av
import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

from diffvis.app import export
from diffvis.app.export import EXPORT_FILTER, EXPORT_SUFFIXES, animation_frames, export_view, qimage_to_rgb
from diffvis.core.pointfiles import load_points
from diffvis.errors import Cancelled, ConfigError, DiffvisError


class FakeView(QWidget):
    """F frames of N random points inside a fixed range; ``show_frame`` redraws the scatter."""

    def __init__(self, frames: int, n: int = 40) -> None:
        super().__init__()
        self.points = np.random.default_rng(0).uniform(-5.0, 5.0, (frames, n, 2)).astype(np.float32)
        self.figure = pg.PlotWidget()
        self.figure.setRange(xRange=(-6, 6), yRange=(-6, 6), padding=0)
        self.figure.disableAutoRange()
        self.svg_item = self.figure.getPlotItem()
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, brush="w")
        self.figure.addItem(self.scatter)
        QVBoxLayout(self).addWidget(self.figure)
        self.frame = -1
        self.shown: list[int] = []
        self.show_frame(frames - 1)

    def frame_count(self) -> int:
        return len(self.points)

    def current_frame(self) -> int:
        return self.frame

    def show_frame(self, frame: int) -> None:
        self.frame = frame
        self.shown.append(frame)
        self.scatter.setData(pos=self.points[frame])

    def frame_points(self, frame: int) -> np.ndarray:
        return self.points[frame]

    def all_points(self) -> np.ndarray:
        return self.points


@pytest.fixture
def make_view(qtbot):
    def make(frames: int, current: int | None = None) -> FakeView:
        view = FakeView(frames)
        qtbot.addWidget(view)
        view.resize(240, 180)
        view.show()
        qtbot.waitExposed(view)
        if current is not None:
            view.show_frame(current)
        view.shown.clear()
        return view

    return make


SVG = {"svg": "http://www.w3.org/2000/svg"}


def gif_frames(path) -> tuple[list[np.ndarray], list[int], int]:
    with Image.open(path) as gif:
        frames, durations = [], []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
            durations.append(gif.info["duration"])
        return frames, durations, gif.info["loop"]


def points_of(view: FakeView, frame: int) -> list[QPointF]:
    return [QPointF(float(x), float(y)) for x, y in view.points[frame]]


def test_animation_frames_keeps_all_or_spreads_evenly_from_first_to_last():
    assert animation_frames(1, 300) == [0]
    assert animation_frames(12, 300) == list(range(12))
    assert animation_frames(40, 40) == list(range(40))
    assert animation_frames(5, 2) == [0, 4]
    assert animation_frames(11, 3) == [0, 5, 10]
    assert animation_frames(8, 3) in ([0, 3, 7], [0, 4, 7])
    for count, most in [(41, 40), (500, 40), (1001, 300), (7, 6), (100, 7)]:
        frames = animation_frames(count, most)
        assert len(frames) == most == len(set(frames))
        assert frames == sorted(frames) and frames[0] == 0 and frames[-1] == count - 1
        ideal = np.linspace(0, count - 1, most)
        assert np.abs(np.array(frames) - ideal).max() <= 0.5  # evenly spaced: each the nearest to its ideal place
    with pytest.raises(ConfigError, match="at least 2"):
        animation_frames(10, 1)


def test_qimage_to_rgb_drops_row_padding_and_alpha():
    image = QImage(7, 5, QImage.Format.Format_RGB888)  # 21 bytes a row, padded to 24
    assert image.bytesPerLine() > 3 * 7
    image.fill(QColor(10, 200, 30))
    image.setPixelColor(6, 4, QColor(250, 1, 128))  # x = 6, y = 4: the last column of the last row
    rgb = qimage_to_rgb(image)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert rgb[4, 6].tolist() == [250, 1, 128]
    rgb[4, 6] = (10, 200, 30)
    assert (rgb == np.array([10, 200, 30], np.uint8)).all()
    argb = QImage(3, 2, QImage.Format.Format_ARGB32)
    argb.fill(QColor(1, 2, 3, 255))
    assert qimage_to_rgb(argb).tolist() == [[[1, 2, 3]] * 3] * 2


def test_filter_offers_every_suffix():
    assert all(f"(*{suffix})" in EXPORT_FILTER for suffix in EXPORT_SUFFIXES)
    assert EXPORT_FILTER.count(";;") == len(EXPORT_SUFFIXES) - 1


@pytest.mark.parametrize(
    ("count", "max_frames", "fps", "expected", "delay"), [(12, 300, 10, 12, 100), (500, 40, 30, 40, 30)]
)
def test_gif_holds_the_chosen_frames_at_the_frame_rate(make_view, tmp_path, count, max_frames, fps, expected, delay):
    view = make_view(count, current=3)
    path = tmp_path / "anim.gif"
    assert export_view(view, path, fps=fps, max_frames=max_frames) == expected
    assert view.shown == [*animation_frames(count, max_frames), 3] and view.current_frame() == 3
    frames, durations, loop = gif_frames(path)
    assert len(frames) == expected and loop == 0
    assert durations == [delay] * expected
    size = view.figure.grab().size()
    assert frames[0].shape == (size.height(), size.width(), 3)
    assert all(not np.array_equal(a, b) for a, b in pairwise(frames))


def test_gif_delay_is_rounded_to_centiseconds_and_at_least_two(make_view, tmp_path):
    view = make_view(3)
    for fps, delay in [(15, 70), (50, 20), (240, 20)]:
        export_view(view, tmp_path / "anim.gif", fps=fps)
        assert gif_frames(tmp_path / "anim.gif")[1] == [delay] * 3


def test_grabbed_frames_show_the_drawn_points(make_view):
    view = make_view(6)
    view.show_frame(0)
    first = qimage_to_rgb(view.figure.grab().toImage())
    view.show_frame(5)
    last = qimage_to_rgb(view.figure.grab().toImage())
    assert not np.array_equal(first, last)
    view.show_frame(0)
    assert np.array_equal(qimage_to_rgb(view.figure.grab().toImage()), first)  # no leftovers of frame 5


@pytest.mark.parametrize("fps", [25, 12.5])
def test_mp4_decodes_to_the_chosen_frames_with_even_size(make_view, tmp_path, fps):
    view = make_view(50, current=10)
    view.resize(241, 181)  # odd sizes are cropped to even ones
    path = tmp_path / "anim.mp4"
    calls = []
    assert export_view(view, path, fps=fps, max_frames=20, progress=lambda i, n: calls.append((i, n))) == 20
    assert calls == [(i, 20) for i in range(1, 21)]
    assert view.current_frame() == 10
    size = view.figure.grab().size()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == Fraction(fps)
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == 20
    height, width = decoded[0].shape[:2]
    assert width % 2 == 0 and height % 2 == 0
    assert (width, height) == (size.width() - size.width() % 2, size.height() - size.height() % 2)
    assert np.abs(decoded[0].astype(int) - decoded[-1].astype(int)).mean() > 0.5


def test_png_is_the_figure_at_its_size(make_view, tmp_path):
    view = make_view(4, current=2)
    path = tmp_path / "frame.png"
    assert export_view(view, path) == 1
    assert view.shown == []  # a still never changes the frame
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == (view.figure.width(), view.figure.height())
        assert np.array_equal(np.asarray(png.convert("RGB")), qimage_to_rgb(view.figure.grab().toImage()))


def test_svg_is_xml_holding_the_points(make_view, tmp_path):
    view = make_view(4, current=2)
    path = tmp_path / "frame.svg"
    assert export_view(view, path) == 1
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find(".//svg:clipPath", SVG) is not None  # pyqtgraph clips the points to the ViewBox
    # each scatter point is a circle: a closed path of four Bézier curves, its "Z" kept (pyqtgraph#3495)
    circles = [e.get("d") for e in root.iterfind(".//svg:path", SVG) if e.get("d").count("C") == 4]
    assert len(circles) == len(view.points[2])
    assert all(d.startswith("M") and d.endswith(" Z") for d in circles)
    starts = np.array([[float(v) for v in d.split()[0][1:].split(",")] for d in circles])
    centres = starts - [3.0, 0.0]  # a circle's path starts at its rightmost point; the symbols are 6 px wide
    corner = view.svg_item.scenePos()  # the SVG's origin
    vb = view.svg_item.getViewBox()
    expected = np.array([[p.x() - corner.x(), p.y() - corner.y()] for p in map(vb.mapViewToScene, points_of(view, 2))])
    distance = np.linalg.norm(expected[:, None] - centres[None], axis=2).min(axis=1)
    assert distance.max() < 0.5  # where the view draws them, even though nothing was painted since they changed


def test_csv_is_the_current_frames_points(make_view, tmp_path):
    view = make_view(5, current=2)
    path = tmp_path / "points.csv"
    assert export_view(view, path) == 1
    assert path.read_text().splitlines()[0] == "x,y"
    loaded = load_points(path)
    assert loaded.labels is None
    np.testing.assert_allclose(loaded.points, view.points[2], atol=1e-6)
    assert not np.allclose(loaded.points, view.points[3], atol=1e-3)


def test_npy_is_every_frames_points(make_view, tmp_path):
    view = make_view(7, current=1)
    path = tmp_path / "all.NPY"  # suffixes are matched whatever their case
    assert export_view(view, path) == 7
    loaded = np.load(path, allow_pickle=False)
    assert loaded.shape == (7, 40, 2)
    np.testing.assert_array_equal(loaded, view.all_points())


def test_unknown_suffix_and_bad_options_raise_before_anything_is_written(make_view, tmp_path):
    view = make_view(5)
    with pytest.raises(ConfigError, match=r"\.jpg.*\.png, \.svg, \.csv, \.npy, \.gif, \.mp4"):
        export_view(view, tmp_path / "frame.jpg")
    with pytest.raises(ConfigError, match="without a suffix"):
        export_view(view, tmp_path / "frame")
    with pytest.raises(ConfigError, match="fps"):
        export_view(view, tmp_path / "anim.gif", fps=0)
    with pytest.raises(ConfigError, match="max_frames=1"):
        export_view(view, tmp_path / "anim.mp4", max_frames=1)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]
    assert view.shown == []


def test_view_without_frames_or_picture_is_refused(make_view, tmp_path, monkeypatch):
    view = make_view(3)
    monkeypatch.setattr(view, "frame_count", lambda: 0)
    with pytest.raises(ConfigError, match="no frames"):
        export_view(view, tmp_path / "frame.png")
    monkeypatch.undo()
    view.figure.setFixedSize(0, 0)  # grabs a null picture
    with pytest.raises(DiffvisError, match="PNG"):
        export_view(view, tmp_path / "frame.png")
    assert not (tmp_path / "frame.png").exists()


@pytest.mark.parametrize("name", ["frame.png", "frame.svg", "points.csv", "all.npy", "anim.gif", "anim.mp4"])
def test_missing_folder_gives_one_line_error(make_view, tmp_path, name):
    view = make_view(3, current=1)
    path = tmp_path / "missing" / name
    with pytest.raises(DiffvisError) as raised:
        export_view(view, path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path}: cannot be written (")
    assert not path.parent.exists()
    assert view.current_frame() == 1


def test_failed_encoding_keeps_the_old_file_and_the_frame(make_view, tmp_path, monkeypatch):
    view = make_view(6, current=4)
    path = tmp_path / "anim.gif"
    path.write_bytes(b"the old animation")

    def broken(frames, fps):
        next(frames), next(frames)
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(export, "encode_gif", broken)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        export_view(view, path)
    assert path.read_bytes() == b"the old animation"
    assert view.shown == [0, 1, 4] and view.current_frame() == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif"]  # no temporary file left behind


def test_progress_can_cancel_midway(make_view, tmp_path):
    view = make_view(10, current=7)
    path = tmp_path / "anim.mp4"
    calls = []

    def progress(i, n):
        calls.append((i, n))
        if i == 3:
            raise Cancelled("export cancelled")

    with pytest.raises(Cancelled):
        export_view(view, path, progress=progress)
    assert calls == [(1, 10), (2, 10), (3, 10)]
    assert not path.exists() and view.current_frame() == 7


def test_resizing_during_export_is_refused(make_view, tmp_path):
    view = make_view(5, current=0)

    def resize(i, n):
        view.figure.setFixedSize(200 + 20 * i, 150)

    with pytest.raises(DiffvisError, match="changed size"):
        export_view(view, tmp_path / "anim.mp4", progress=resize)
    assert not (tmp_path / "anim.mp4").exists() and view.current_frame() == 0
