"""`diffvis render`: the app's views drawn headless and exported, each format read back with an independent reader,
and bad inputs refused with one line on stderr and exit status 2."""

from __future__ import annotations

import os
import sys

import av
import numpy as np
import pytest
from PIL import Image

from diffvis.cli import main
from diffvis.core.checkpoint import load_run
from diffvis.core.datasets import Normaliser
from diffvis.core.pipeline import sample_request, sampling_model
from diffvis.core.pointfiles import load_points
from diffvis.core.request import SampleRequest
from diffvis.core.schedules import SigmaLadder, max_pairwise_distance
from diffvis.core.sources import run_points

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def background_jobs(folder):
    """A tiny ddpm run trained through `diffvis train` (one torch thread, as here), in a process of its own started
    at the end of collection (the conftest's ``Background``)."""
    argv = ["train", "--data", "moons", "--n", "300", "--steps", "60", "--width", "16", "--depth", "1",
            "--batch", "64", "--device", "cpu", "--quiet", "--out", str(folder / "RUN")]  # fmt: skip
    return {"train": {"argv": [sys.executable, "-m", "diffvis", *argv], "env": dict(os.environ, OMP_NUM_THREADS="1")}}


@pytest.fixture(scope="module")
def run_dir(background):
    """The tiny ddpm run, trained once."""
    done = background.result(__name__, "train")
    assert done.returncode == 0, done.stderr
    return background.folder(__name__) / "RUN"


@pytest.fixture
def moons(tmp_path, capsys):
    path = tmp_path / "moons.csv"
    assert main(["data", "moons", "--n", "200", "--seed", "1", "--out", str(path)]) == 0
    capsys.readouterr()
    return path


def render(capsys, qapp, *argv):
    """Run `diffvis render argv` in-process; returns (exit status, stdout, stderr)."""
    rc = main(["render", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc, err, fragment):
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("diffvis: error: ") and "Traceback" not in err
    assert fragment.lower() in lines[0].lower(), err


def test_forward_view_renders_a_png(moons, tmp_path, capsys, qapp):
    out = tmp_path / "f.png"
    rc, stdout, err = render(capsys, qapp, "--exact", moons, "--view", "forward", "--out", out)
    assert rc == 0, err
    assert f"wrote 1 frame of the forward view to {out}" in stdout
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.size == (960, 720)  # --size's default: the picture, not the window around it
        assert len(np.unique(np.asarray(png.convert("RGB")).reshape(-1, 3), axis=0)) > 3  # not a blank picture


def test_reverse_view_renders_a_gif_of_every_step(moons, tmp_path, capsys, qapp):
    out = tmp_path / "r.gif"
    rc, stdout, err = render(capsys, qapp, "--exact", moons, "--view", "reverse", "--steps", "10", "--points", "100",
                             "--out", out)  # fmt: skip
    assert rc == 0, err
    assert f"wrote 11 frames of the reverse view to {out}" in stdout
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 11
        assert gif.size == (960, 720)


def test_score_view_renders_an_mp4_of_every_level(moons, tmp_path, capsys, qapp):
    out = tmp_path / "s.mp4"
    rc, stdout, err = render(capsys, qapp, "--exact", moons, "--view", "score", "--out", out)
    assert rc == 0, err
    assert f"wrote 50 frames of the score view to {out}" in stdout  # the view's default: 50 levels
    with av.open(str(out)) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == 50
    assert (frames[0].width, frames[0].height) == (960, 720)


def test_langevin_view_renders_every_frame_as_npy(moons, tmp_path, capsys, qapp):
    out = tmp_path / "l.npy"
    rc, _, err = render(capsys, qapp, "--exact", moons, "--view", "langevin", "--steps", "2", "--points", "30",
                        "--out", out)  # fmt: skip
    assert rc == 0, err
    points = load_points(moons).points
    L = SigmaLadder.geometric(max_pairwise_distance(Normaliser.fit(points).to_std(points))).L
    frames = np.load(out)
    assert frames.shape == (L * 2 + 2, 30, 2) and np.isfinite(frames).all()
    gaps = np.linalg.norm(frames[-1][:, None] - points[None], axis=2).min(1)
    assert np.median(gaps) < 0.1  # the exact score draws the data back


def test_run_reverse_view_frame_as_csv_matches_the_core(run_dir, tmp_path, capsys, qapp):
    out = tmp_path / "r.csv"
    rc, stdout, err = render(capsys, qapp, "--run", run_dir, "--view", "reverse", "--frame", "3", "--steps", "10",
                             "--points", "200", "--out", out)  # fmt: skip
    assert rc == 0, err
    assert f"wrote 1 frame of the reverse view to {out}" in stdout
    run = load_run(run_dir)
    points, _ = run_points(run.data_info)
    model = sampling_model(run, points.points, "ddpm")
    expected = sample_request(model, SampleRequest("ddim", {"steps": 10}, n=200, seed=0))
    got = load_points(out).points
    assert got.shape == (200, 2)
    np.testing.assert_allclose(got, expected.frames[3], rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, expected.frames[4], atol=1e-3)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--exact", "{moons}", "--view", "forward", "--out", "{t}/x.jpg"], ".jpg"),
        (["--run", "{t}/nowhere", "--view", "reverse", "--out", "{t}/x.png"], "nowhere"),
        (["--exact", "{moons}", "--view", "forward", "--size", "10x10", "--out", "{t}/x.png"], "200x150"),
        (["--exact", "{moons}", "--view", "forward", "--size", "big", "--out", "{t}/x.png"], "WIDTHxHEIGHT"),
        (["--exact", "{moons}", "--view", "forward", "--max-frames", "1", "--out", "{t}/x.gif"], "at least 2"),
        (["--exact", "{moons}", "--view", "forward", "--size", "401x300", "--out", "{t}/x.mp4"], "even width"),
    ],
    ids=["jpg", "missing-run", "size-10x10", "size-text", "max-frames-1", "mp4-odd-size"],
)
def test_bad_input_is_one_line_and_status_2(argv, fragment, moons, run_dir, tmp_path, capsys, qapp):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, stdout, err = render(capsys, qapp, *[a.format(moons=moons, run=run_dir, t=out_dir) for a in argv])
    assert_user_error(rc, err, fragment)
    assert "wrote" not in stdout
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--out", "{t}/x.jpg"], ".jpg"),
        (["--max-frames", "1", "--out", "{t}/x.gif"], "at least 2"),
    ],
    ids=["jpg", "max-frames-1"],
)
def test_bad_output_is_refused_before_computing(argv, fragment, moons, tmp_path, capsys, qapp):
    base = ["--exact", moons, "--view", "reverse", "--steps", "10", "--points", "50"]
    rc, _, err = render(capsys, qapp, *base, *[a.format(t=tmp_path) for a in argv])
    assert rc == 2 and fragment in err  # refused, as with the forward view, which computes nothing ...
    assert "computing" not in err  # ... but only after sampling the whole trajectory
    assert_user_error(rc, err, fragment)


# --- the comparison and the sweep -------------------------------------------------------------------------------


def test_render_compare_preset_writes_the_shared_timeline(run_dir, tmp_path, capsys, qapp):
    out = tmp_path / "c.gif"
    rc, stdout, err = render(capsys, qapp, "--run", run_dir, "--compare", "ddpm-vs-ddim", "--points", "60",
                             "--max-frames", "11", "--out", out)  # fmt: skip
    assert rc == 0, err
    assert "11 frames of the ddpm-vs-ddim comparison" in stdout
    with Image.open(out) as gif:
        assert gif.n_frames == 11
        assert gif.size == (960, 720)  # the panels get the whole picture (they were squeezed to 960 x 231)


def sweep(capsys, *argv):
    rc = main(["sweep", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_sweep_writes_one_row_per_sampler_and_step_count(moons, tmp_path, capsys):
    import csv

    out = tmp_path / "sweep.csv"
    rc, stdout, err = sweep(capsys, "--exact", moons, "--samplers", "ddim,heun,ddpm", "--steps", "4,8", "--n", "80",
                            "--out", out)  # fmt: skip
    assert rc == 0, err
    rows = list(csv.DictReader(out.open()))
    assert [(r["sampler"], r["steps"], int(r["nfe"])) for r in rows] == [
        ("ddim", "4", 4), ("ddim", "8", 8), ("heun", "4", 7), ("heun", "8", 15), ("ddpm", "", 1000)]  # fmt: skip
    for r in rows:
        assert float(r["energy"]) >= 0 and 0 < float(r["energy_ratio"]) < np.inf
    assert "DDIM η=0" in stdout and "×" in stdout


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--steps", "a,b"], "whole numbers"),
        (["--samplers", "nope"], "unknown sampler"),
        (["--steps", "0"], "1 or more"),
    ],
)
def test_sweep_refuses_bad_arguments_with_one_line(argv, fragment, moons, tmp_path, capsys):
    rc, _, err = sweep(capsys, "--exact", moons, "--n", "20", "--out", tmp_path / "s.csv", *argv)
    assert_user_error(rc, err, fragment)
    assert not (tmp_path / "s.csv").exists()


# --- render drives the views' models ----------------------------------------------------------------------------


def test_render_sets_the_reverse_model_and_computes_through_it(moons, tmp_path, capsys, qapp, monkeypatch):
    from diffvis.app.models.reverse import ReverseModel
    from diffvis.app.views.scene_view import SceneView

    monkeypatch.setattr(SceneView, "compute", lambda self: pytest.fail("render computed through the view"))
    asked, probes = [], []
    work, add_probe = ReverseModel.work, ReverseModel.add_probe
    monkeypatch.setattr(ReverseModel, "work", lambda self, state: asked.append(self) or work(self, state))
    monkeypatch.setattr(ReverseModel, "add_probe", lambda self, p: probes.append(p) or add_probe(self, p))
    out = tmp_path / "r.csv"
    rc, stdout, err = render(capsys, qapp, "--exact", moons, "--view", "reverse", "--steps", "7", "--n", "50",
                             "--trails", "3", "--x0", "--probe", "0", "0", "--probe-frame", "2", "--frame", "4",
                             "--out", out)  # fmt: skip
    assert rc == 0, err
    (model,) = asked
    request = model.full_request()
    assert (request.sampler, request.params["steps"], request.n, request.exact) == ("ddim", 7, 50, True)
    assert (model.trails, model.show_x0, model.show_density, model.frame) == (3, True, False, 4)
    assert len(probes) == 1 and model.probes == tuple(probes)
    assert np.isnan(probes[0].trajectory.frames[:2]).all() and np.isfinite(probes[0].trajectory.frames[2:]).all()
    np.testing.assert_allclose(probes[0].trajectory.frames[2, 0], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(load_points(out).points, model.trajectory.frames[4], rtol=1e-6, atol=1e-6)


def test_the_langevin_view_keeps_its_own_k_unless_one_is_given(moons, qapp):
    from diffvis import render as render_module
    from diffvis.app.models.langevin import STEPS_PER_LEVEL
    from diffvis.cli import build_parser

    def model_of(*argv):
        args = build_parser().parse_args(["render", "--exact", str(moons), "--view", "langevin", "--out", "x.png",
                                          *argv])  # fmt: skip
        view = render_module._make_view(args, render_module._load_state(args))
        view.deleteLater()
        return view.model

    assert model_of().request.params["steps_per_level"] == STEPS_PER_LEVEL == 20
    request = model_of("--steps", "3", "--step-size", "1e-4", "--n", "40").request
    assert request.params == {"steps_per_level": 3, "step_size": 1e-4, "denoise": True} and request.n == 40


# --- runs side by side ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory, one_torch_thread):
    """A tiny flow run on the tiny ddpm run's points (moons, 300, seed 0), saved."""
    from diffvis.core.checkpoint import save_run
    from diffvis.core.models import ModelConfig
    from diffvis.core.pipeline import train_run
    from diffvis.core.sources import load_source
    from diffvis.core.training import TrainConfig

    data, info = load_source("moons", n=300)
    cfg = TrainConfig(steps=20, batch=64, device="cpu", warmup=0)
    run = train_run(data, ModelConfig(objective="flow", width=16, depth=1), cfg, info)
    path = tmp_path_factory.mktemp("flow") / "FLOW"
    save_run(run, path)
    return path


def test_sweep_scores_several_runs_on_one_draw_with_a_line_each(run_dir, flow_dir, tmp_path, capsys):
    import csv

    out = tmp_path / "runs.csv"
    rc, stdout, err = sweep(capsys, "--run", run_dir, "--run", flow_dir, "--samplers", "euler,heun", "--steps", "1,2",
                            "--n", "60", "--out", out)  # fmt: skip
    assert rc == 0, err
    rows = list(csv.DictReader(out.open()))
    assert [(r["label"], r["steps"]) for r in rows] == [
        (f"{sampler} w=1 · {run}", s) for run in ("ddpm", "flow (independent)") for sampler in ("Euler", "Heun")
        for s in ("1", "2")]  # fmt: skip
    assert all(r["npe"] == "" for r in rows[:4]) and all(float(r["npe"]) > -1 for r in rows[4:])
    assert all(float(r["w2"]) > 0 for r in rows) and "Heun w=1 · flow (independent)" in stdout


def test_runs_side_by_side_are_refused_where_they_do_not_fit(run_dir, moons, tmp_path, capsys, qapp):
    from diffvis.core.checkpoint import save_run
    from diffvis.core.models import ModelConfig
    from diffvis.core.pipeline import train_run
    from diffvis.core.sources import load_source
    from diffvis.core.training import TrainConfig

    data, info = load_source("moons", n=100)  # other points than the run's
    save_run(train_run(data, ModelConfig(width=16, depth=1), TrainConfig(steps=2, batch=16), info), tmp_path / "B")
    rc, _, err = sweep(capsys, "--run", run_dir, "--run", tmp_path / "B", "--out", tmp_path / "s.csv")
    assert_user_error(rc, err, "was trained on other points than")
    rc, _, err = render(
        capsys, qapp, "--run", run_dir, "--run", run_dir, "--view", "reverse", "--out", tmp_path / "r.png"
    )
    assert_user_error(rc, err, "--run is given once, except for a comparison")
    for argv in (["--exact", moons], ["--run", run_dir]):  # no flow run to compare with
        rc, _, err = render(capsys, qapp, *argv, "--compare", "objectives", "--out", tmp_path / "o.png")
        assert_user_error(rc, err, "needs a ")
    assert not [p for p in tmp_path.iterdir() if p.name in ("s.csv", "r.png", "o.png")]


def test_a_comparisons_steps_set_every_panel_that_takes_steps(moons, tmp_path, capsys, qapp, monkeypatch):
    from diffvis.app.models.compare import CompareModel

    asked = []
    work = CompareModel.work
    monkeypatch.setattr(CompareModel, "work", lambda self, state: asked.append(self) or work(self, state))
    rc, _, err = render(capsys, qapp, "--exact", moons, "--compare", "ddpm-vs-ddim", "--steps", "3", "--n", "30",
                        "--out", tmp_path / "c.png")  # fmt: skip
    assert rc == 0, err
    (model,) = asked
    assert [(r.sampler, r.steps) for r in model.requests()] == [("ddpm", None), ("ddim", 3), ("ddim", 3)]
    rc, _, err = render(capsys, qapp, "--exact", moons, "--compare", "eta", "--eta", "0.5", "--out", tmp_path / "e.png")
    assert_user_error(rc, err, "--eta")  # a comparison's panels keep their own settings but the step count


def test_render_exact_gmm8_samples_the_distribution(capsys, qapp, tmp_path):
    """--exact with a known-density set's name: the reverse view samples that distribution's exact model (the
    caption says so), and the CSV of the last frame holds fresh draws, not the default draw's points."""
    from diffvis.core.datasets import make_dataset

    rc, _, err = render(capsys, qapp, "--exact", "gmm8", "--view", "reverse", "--n", "300", "--steps", "20",
                        "--out", tmp_path / "r.csv")  # fmt: skip
    assert rc == 0, err
    samples = load_points(tmp_path / "r.csv").points
    drawn = make_dataset("gmm8", 20_000).points
    gaps = np.sqrt(((samples[:, None] - drawn[None]) ** 2).sum(-1)).min(1)
    assert len(samples) == 300 and np.median(gaps) > 1e-3
    rc, _, err = render(capsys, qapp, "--exact", "gmm8", "--view", "reverse", "--n", "50", "--steps", "5",
                        "--size", "480x400", "--out", tmp_path / "r.png")  # fmt: skip
    assert rc == 0 and Image.open(tmp_path / "r.png").size == (480, 400)
