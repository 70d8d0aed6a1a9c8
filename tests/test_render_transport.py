"""`diffvis render --view transport`: the transport view drawn headless, in-process (a PNG of the size asked with a
probe, a GIF of every frame, a frame's points as CSV equal to the core's) and once in a process of its own that
exits cleanly; a sampler that follows no ODE is refused in one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffvis.cli import main
from diffvis.core.classes import UNCONDITIONAL
from diffvis.core.datasets import make_dataset
from diffvis.core.pipeline import sample_request, sampling_model
from diffvis.core.pointfiles import load_points, save_points
from diffvis.core.request import SampleRequest

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIZE = (400, 300)
SMALL = ["--steps", "4", "--n", "100"]


def background_jobs(folder: Path) -> dict[str, dict]:
    """One render of the transport view for the exact flow model of a moons file, in a process of its own (one
    torch thread), started at the end of collection (the conftest's ``Background``)."""
    save_points(make_dataset("moons", 200, seed=1), folder / "moons.csv")
    argv = ["render", "--exact", folder / "moons.csv", "--objective", "flow", "--view", "transport", *SMALL,
            "--size", f"{SIZE[0]}x{SIZE[1]}", "--out", folder / "transport.png"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    return {"render": {"argv": [sys.executable, "-m", "diffvis", *map(str, argv)], "env": env}}


@pytest.fixture
def moons(tmp_path) -> Path:
    path = tmp_path / "moons.csv"
    save_points(make_dataset("moons", 200, seed=1), path)
    return path


def render(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["render", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_drawn(path: Path) -> None:
    """A picture of ``SIZE`` with many colours and a good share of pixels unlike the background."""
    with Image.open(path) as image:
        assert image.size == SIZE
        flat = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    assert len(colours) > 30 and counts.max() / len(flat) < 0.97


def test_a_png_with_a_probe_is_the_size_asked_and_drawn(moons, tmp_path, capsys, qapp):
    out = tmp_path / "t.png"
    rc, stdout, err = render(capsys, "--exact", moons, "--objective", "flow", "--view", "transport", *SMALL,
                             "--probe", "0.5", "0.2", "--probe-frame", "1", "--frame", "2", "--size", "400x300",
                             "--out", out)  # fmt: skip
    assert rc == 0, err
    assert f"wrote 1 frame of the transport view to {out}" in stdout
    assert_drawn(out)


def test_a_gif_has_every_frame_and_a_frames_points_are_the_cores(moons, tmp_path, capsys, qapp):
    gif = tmp_path / "t.gif"
    rc, stdout, err = render(capsys, "--exact", moons, "--objective", "flow", "--view", "transport", *SMALL,
                             "--size", "400x300", "--out", gif)  # fmt: skip
    assert rc == 0, err
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 5 and image.size == SIZE
    csv = tmp_path / "t.csv"
    rc, _, err = render(capsys, "--exact", moons, "--objective", "flow", "--view", "transport", *SMALL, "--frame", "2",
                        "--out", csv)  # fmt: skip
    assert rc == 0, err
    model = sampling_model(None, load_points(moons), "flow")
    request = SampleRequest("euler", {"steps": 4}, n=100, objective="flow", label=UNCONDITIONAL)
    np.testing.assert_allclose(load_points(csv).points, sample_request(model, request).frames[2], atol=1e-5)


def test_a_sampler_that_follows_no_ode_is_refused_in_one_line(moons, tmp_path, capsys, qapp):
    out = tmp_path / "x.png"
    rc, _, err = render(capsys, "--exact", moons, "--view", "transport", "--sampler", "ddim", "--out", out)
    assert rc == 2 and len(err.splitlines()) == 1 and "follows an ODE" in err, err
    assert not out.exists()


def test_the_render_in_its_own_process_exits_cleanly_with_a_picture(background):
    done = background.result(__name__, "render", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote 1 frame of the transport view" in done.stdout
    assert_drawn(background.folder(__name__) / "transport.png")
