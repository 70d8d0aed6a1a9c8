"""`diffvis render` and `diffvis --screenshot` run as a user runs them: in their own process, whose exit status the
in-process render tests never see (a comparison's Qt objects, torn down at the interpreter's exit, crashed the
process with status 139 after its file was written). Every render form (each view, each comparison preset) for a
tiny trained run and for the exact model of a point file exits with status 0 and writes a picture of exactly
``--size`` that is not blank; so do the animation and SVG exports, and the app's screenshot.

The processes run two at a time, each with one torch thread (tiny tensors on two shared cores)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from diffvis.app.views.compare_view import panel_columns
from diffvis.cli import main
from diffvis.core.compare import PRESETS

SIZE = (400, 300)
VIEWS = ("forward", "reverse", "score", "langevin")
VIEW_ARGS = {"forward": [], "reverse": ["--steps", "5", "--points", "200"], "score": [],
             "langevin": ["--steps", "2", "--points", "200"]}  # fmt: skip
TIMEOUT_S = 240


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    return env


def diffvis(env, *argv) -> subprocess.CompletedProcess:
    """Run `python -m diffvis argv` to its end."""
    command = [sys.executable, "-m", "diffvis", *map(str, argv)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def forms() -> list[tuple[str, str, str]]:
    """(source, what, suffix): every view and every preset for both sources as PNG, and the other formats."""
    whats = [*(f"view:{v}" for v in VIEWS), *(f"compare:{p}" for p in PRESETS)]
    pictures = [(source, what, ".png") for source in ("run", "exact") for what in whats]
    others = [("run", "compare:ddpm-vs-ddim", s) for s in (".gif", ".mp4", ".svg")]
    return [*pictures, *others, ("run", "view:forward", ".svg"), ("exact", "view:reverse", ".gif")]


def form_id(form) -> str:
    source, what, suffix = form
    return f"{source}-{what.split(':')[1]}-{suffix[1:]}"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Train a tiny run and render every form in its own process, two processes at a time (the exact model's
    forms while the run trains); {form: (process, file)}."""
    home = tmp_path_factory.mktemp("render_process")
    env = environment(home)
    run = home / "RUN"
    points = home / "gaussians8.csv"  # labelled: the exact model's guidance preset samples its classes
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["data", "gaussians8", "--n", "400", "--out", str(points)]) == 0

    def render(form):
        source, what, suffix = form
        kind, name = what.split(":")
        out = home / f"{form_id(form)}{suffix}"
        argv = ["render", "--run" if source == "run" else "--exact", run if source == "run" else points]
        argv += ["--view", name, *VIEW_ARGS[name]] if kind == "view" else ["--compare", name, "--points", "200"]
        argv += ["--size", f"{SIZE[0]}x{SIZE[1]}", "--max-frames", "4", "--out", out]
        return form, (diffvis(env, *argv), out)

    def screenshot(_):
        out = home / "app.png"
        return "screenshot", (diffvis(env, "--run", run, "--screenshot", out), out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        training = pool.submit(diffvis, env, "train", "--data", "butterfly", "--n", "500", "--steps", "200",
                               "--width", "16", "--depth", "1", "--batch", "128", "--device", "cpu", "--quiet",
                               "--out", run)  # fmt: skip
        exact = pool.map(render, [form for form in forms() if form[0] == "exact"])  # the other process slot
        trained = training.result()
        assert trained.returncode == 0, trained.stderr
        done = dict(pool.map(screenshot, [None]))
        done.update(pool.map(render, [form for form in forms() if form[0] == "run"]))
        done.update(exact)
    return done


def succeeded(outputs, key) -> Path:
    process, out = outputs[key]
    assert process.returncode == 0, f"exit status {process.returncode}\n{process.stderr[-3000:]}"
    assert out.is_file() and out.stat().st_size > 0
    return out


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def assert_drawn(pixels: np.ndarray) -> None:
    """Not a blank picture: many colours, and a good share of pixels unlike the background (the commonest)."""
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    assert len(colours) > 30
    assert counts.max() / len(flat) < 0.97


def sample_pixels(pixels: np.ndarray) -> np.ndarray:
    """(H, W) True where a sample is drawn: a strong colour (the samples' orange, or their class's), never the
    grey background, grid and text nor the faint data behind."""
    return pixels.max(axis=2) - pixels.min(axis=2) > 80


@pytest.mark.parametrize("form", [f for f in forms() if f[2] == ".png"], ids=form_id)
def test_every_form_exits_cleanly_with_a_picture_of_the_size_asked(outputs, form):
    out = succeeded(outputs, form)
    assert "wrote 1 frame of the" in outputs[form][0].stdout
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == SIZE
    pixels = rgb(out)
    assert_drawn(pixels)
    _, what, _ = form
    kind, name = what.split(":")
    if kind == "compare":  # every panel of the grid has its share of the picture, and samples in it
        count = len(PRESETS[name][1])
        columns = panel_columns(count, *SIZE)
        rows = -(-count // columns)
        height, width = SIZE[1] // rows, SIZE[0] // columns
        for i in range(count):
            r, c = divmod(i, columns)
            cell = sample_pixels(pixels[r * height : (r + 1) * height, c * width : (c + 1) * width])
            assert cell.sum() > 50, f"panel {i + 1} of {count} shows {cell.sum()} sample pixels"
    elif name in ("reverse", "langevin"):
        assert sample_pixels(pixels).sum() > 100


def test_animations_are_the_size_asked(outputs):
    gif = succeeded(outputs, ("run", "compare:ddpm-vs-ddim", ".gif"))
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 4 and image.size == SIZE
        image.seek(3)
        assert_drawn(np.asarray(image.convert("RGB")).astype(int))
    mp4 = succeeded(outputs, ("run", "compare:ddpm-vs-ddim", ".mp4"))
    with av.open(str(mp4)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 4 and {(f.width, f.height) for f in frames} == {SIZE}
    assert_drawn(frames[-1].to_ndarray(format="rgb24").astype(int))
    reverse = succeeded(outputs, ("exact", "view:reverse", ".gif"))
    with Image.open(reverse) as image:
        assert image.n_frames == 4 and image.size == SIZE


@pytest.mark.parametrize("form", [("run", "compare:ddpm-vs-ddim", ".svg"), ("run", "view:forward", ".svg")],
                         ids=form_id)  # fmt: skip
def test_svg_view_box_is_the_size_asked(outputs, form):
    """The forward view's SVG is its x_t plot, one of the figure's two parts: that plot is made the size asked."""
    svg = succeeded(outputs, form).read_text()
    box = re.search(r'viewBox\s*=\s*"0 0 (\d+) (\d+)"', svg)
    assert box is not None and (int(box[1]), int(box[2])) == SIZE
    assert svg.count("<path") + svg.count("<polyline") > 4


def test_the_app_screenshot_exits_cleanly(outputs):
    out = succeeded(outputs, "screenshot")
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == (1280, 800)  # the size --screenshot gives the window
    assert_drawn(rgb(out))
