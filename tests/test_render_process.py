"""`diffvis render` and `diffvis --screenshot` run as a user runs them: in their own process, whose exit status the
in-process render tests never see (a comparison's Qt objects, torn down at the interpreter's exit, crashed the
process with status 139 after its file was written). Every render form (each view, each comparison preset) for a
tiny trained run and for the exact model of a point file exits with status 0 and writes a picture of exactly
``--size`` that is not blank; so do the animation and SVG exports, and the app's screenshot.

The processes run with one torch thread each (tiny tensors on two shared cores), one at a time from the end of
collection beside the other tests (the conftest's ``Background``), two at a time once this module needs them."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from diffvis.app.views.compare_view import panel_columns
from diffvis.core.compare import PRESETS

SIZE = (400, 300)
VIEWS = ("forward", "reverse", "score", "langevin")
VIEW_ARGS = {"forward": [], "reverse": ["--steps", "5", "--points", "200"], "score": [],
             "langevin": ["--steps", "2", "--points", "200"]}  # fmt: skip
TIMEOUT_S = 240
POINTS = "gmm8.csv"


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    return env


def forms() -> list[tuple[str, str, str]]:
    """(source, what, suffix): every view and every preset of the lab's run for both sources as PNG, each preset
    that compares runs of several kinds for the session's runs ('runs'), and the other formats."""
    whats = [*(f"view:{v}" for v in VIEWS), *(f"compare:{p}" for p, preset in PRESETS.items() if not preset.roles)]
    pictures = [(source, what, ".png") for source in ("run", "exact") for what in whats]
    pictures += [("runs", f"compare:{p}", ".png") for p, preset in PRESETS.items() if preset.roles]
    others = [("run", "compare:ddpm-vs-ddim", s) for s in (".gif", ".mp4", ".svg")]
    return [*pictures, *others, ("run", "view:forward", ".svg"), ("exact", "view:reverse", ".gif")]


def form_id(form) -> str:
    source, what, suffix = form
    return f"{source}-{what.split(':')[1]}-{suffix[1:]}"


def _diffvis(home: Path, *argv) -> dict:
    """A background job (the conftest's ``Background``): `python -m diffvis argv` in its own process."""
    return {"argv": [sys.executable, "-m", "diffvis", *map(str, argv)], "env": environment(home)}


RUNS = ("RUN", "FLOW", "FLOW_OT", "REFLOW", "EDM")  # a DDPM run, flow runs of both couplings, the first reflowed
# once, and an EDM run


def _render(home: Path, form) -> dict:
    source, what, suffix = form
    kind, name = what.split(":")
    argv = ["render"]
    if source == "exact":
        argv += ["--exact", home / POINTS]
    else:
        argv += [a for run in (RUNS if source == "runs" else RUNS[:1]) for a in ("--run", home / run)]
    argv += ["--view", name, *VIEW_ARGS[name]] if kind == "view" else ["--compare", name, "--points", "200"]
    argv += ["--size", f"{SIZE[0]}x{SIZE[1]}", "--max-frames", "4", "--out", home / f"{form_id(form)}{suffix}"]
    return {**_diffvis(home, *argv), "after": {"run": "train", "exact": "data", "runs": "edm"}[source]}


# Run after the other modules (the conftest): five trainings and about 35 renders, in the background.
BACKGROUND_HEAVY = True


def background_jobs(home: Path) -> dict[str, dict]:
    """A tiny run trained, a labelled point file written (the exact model's guidance preset samples its classes),
    every form rendered and the app's screenshot taken, each in its own process: they start at the end of
    collection, one at a time beside the tests; the fixture takes the ones not yet started."""
    tiny = ["--data", "butterfly", "--n", "500", "--steps", "200", "--width", "16", "--depth", "1", "--batch", "128",
            "--device", "cpu", "--quiet"]  # fmt: skip
    jobs = {"data": _diffvis(home, "data", "gmm8", "--n", "400", "--out", home / POINTS)}
    jobs.update((form_id(form), _render(home, form)) for form in forms() if form[0] == "exact")
    jobs["train"] = _diffvis(home, "train", *tiny, "--out", home / "RUN")
    jobs.update((form_id(form), _render(home, form)) for form in forms() if form[0] == "run")
    flow = ["train", *tiny, "--objective", "flow"]
    jobs["flow"] = {**_diffvis(home, *flow, "--out", home / "FLOW"), "after": "train"}
    jobs["flow_ot"] = {**_diffvis(home, *flow, "--coupling", "ot", "--out", home / "FLOW_OT"), "after": "flow"}
    reflow = ["reflow", "--run", home / "FLOW", "--out", home / "REFLOW", "--pairs", "500", "--steps", "50", "--quiet"]
    jobs["reflow"] = {**_diffvis(home, *reflow), "after": "flow_ot"}
    jobs["edm"] = {**_diffvis(home, "train", *tiny, "--objective", "edm", "--out", home / "EDM"), "after": "reflow"}
    jobs.update((form_id(form), _render(home, form)) for form in forms() if form[0] == "runs")
    jobs["screenshot"] = {**_diffvis(home, "--run", home / "RUN", "--screenshot", home / "app.png"), "after": "train"}
    return jobs


@pytest.fixture(scope="module")
def outputs(background):
    """Every form and the screenshot: {form: (process, file)}. Jobs not yet started run here, from the last on,
    while the background thread goes on from the first: two processes at a time."""
    home = background.folder(__name__)
    for name in ("data", "train", "flow", "flow_ot", "reflow", "edm"):
        done = background.result(__name__, name, TIMEOUT_S)
        assert done.returncode == 0, done.stderr
    files = {form: home / f"{form_id(form)}{form[2]}" for form in forms()}
    files["screenshot"] = home / "app.png"
    keys = {form: form_id(form) for form in forms()} | {"screenshot": "screenshot"}
    return {key: (background.result(__name__, keys[key], TIMEOUT_S), files[key]) for key in reversed(files)}


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
        count = len(PRESETS[name].requests)
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
