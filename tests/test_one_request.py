"""One request, one answer: the same SampleRequest gives bit-identical samples through `diffvis sample`,
`diffvis render --out x.npy` (its last frame, a real process), the reverse view, a comparison panel and a sweep.
The ODE solvers' spacing once differed between the CLI (leading) and the app (trailing); a panel once drew the
sampler's own noise from a fresh generator while `sample` went on from the one that drew the starting noise; the
views once read a request's "the model's default class" as "no class"."""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
import pytest

from diffvis.cli import main
from diffvis.core.checkpoint import load_run
from diffvis.core.compare import Reference, sweep
from diffvis.core.request import SampleRequest
from diffvis.core.sources import fresh_draw, run_points

N, SEED = 150, 5
REQUESTS = [
    SampleRequest("dpmpp_2m", {"steps": 8}, n=N, seed=SEED),  # deterministic: the spacing decides
    SampleRequest("ddim", {"steps": 12, "eta": 0.7}, n=N, seed=SEED),  # stochastic: the generator decides
    SampleRequest("ddpm", {"variance": "beta"}, label=1, guidance=2.0, n=N, seed=SEED),  # a class, guided
]
IDS = ["dpmpp_2m", "ddim-eta", "ddpm-class-1-w2"]


def _cli(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


TINY = ["--n", "400", "--steps", "40", "--width", "16", "--depth", "1", "--batch", "64", "--device", "cpu",
        "--timesteps", "100"]  # fmt: skip


# Run after the other modules (the conftest): a tiny training and three renders, about 17 s in the background.
BACKGROUND_HEAVY = True


def background_jobs(folder):
    """A tiny class-conditional run on moons (two classes) trained through `diffvis train`, then each request's
    `diffvis render --out r.npy` (a real process), each in its own process started at the end of collection (the
    conftest's ``Background``)."""
    diffvis = [sys.executable, "-m", "diffvis"]
    jobs = {"train": {"argv": [*diffvis, "train", "--data", "moons", *TINY, "--out", str(folder / "RUN"), "--quiet"]}}
    for request, name in zip(REQUESTS, IDS, strict=True):
        render = ["render", "--run", str(folder / "RUN"), "--view", "reverse", *_options(request)]
        jobs[name] = {"argv": [*diffvis, *render, "--out", str(folder / f"{name}.npy")], "after": "train"}
    return jobs


@pytest.fixture(scope="module")
def run_dir(background):
    """The tiny class-conditional run on moons, trained once."""
    done = background.result(__name__, "train")
    assert done.returncode == 0, done.stderr
    return background.folder(__name__) / "RUN"


def _options(request: SampleRequest) -> list[str]:
    """The request as command-line options."""
    info, options = request.info, ["--sampler", request.sampler, "--n", str(request.n), "--seed", str(request.seed)]
    for param in info.params:
        options += [param.option, str(request.params[param.name])]
    if request.label is not None:
        options += ["--class", str(request.label), "--guidance", str(request.guidance)]
    return options


def _lab(run):
    """The app's state holding ``run`` and its training points, as `diffvis --run` opens it."""
    from diffvis.app.state import LabState

    state = LabState()
    points, info = run_points(run.data_info)
    state.set_data(points, info)
    state.set_model_config(run.model_config)
    state.set_train_config(run.train_config)
    state.set_run(run)
    return state


@pytest.mark.parametrize("request_", REQUESTS, ids=IDS)
def test_sample_render_views_and_sweep_give_the_same_samples(request_, run_dir, tmp_path, qtbot, background):
    _in_process_samples_agree(request_, run_dir, tmp_path, qtbot)
    name = IDS[REQUESTS.index(request_)]
    rendered = background.result(__name__, name)  # `diffvis render`, in its own process
    assert rendered.returncode == 0, rendered.stderr
    sampled = np.load(tmp_path / "s.npy")[:, :2]
    np.testing.assert_array_equal(np.load(background.folder(__name__) / f"{name}.npy")[-1], sampled.astype(np.float32))


def _in_process_samples_agree(request_, run_dir, tmp_path, qtbot):
    """`diffvis sample` (its samples left in tmp_path/s.npy), the reverse view, a comparison panel and a sweep."""
    from diffvis.app.models.compare import Panel
    from diffvis.app.views.compare_view import CompareView
    from diffvis.app.views.reverse_view import ReverseView

    rc, err = _cli("sample", "--run", run_dir, *_options(request_), "--out", tmp_path / "s.npy")
    assert rc == 0, err
    sampled = np.load(tmp_path / "s.npy")[:, :2]
    assert sampled.shape == (N, 2)

    run = load_run(run_dir)
    state = _lab(run)
    reverse = ReverseView(state)
    qtbot.addWidget(reverse)
    reverse.model.set_request(request_)
    with qtbot.waitSignal(reverse.computed, timeout=120_000):
        assert reverse.compute()
    np.testing.assert_array_equal(reverse.model.trajectory.samples, sampled.astype(np.float32))

    comparison = CompareView(state)
    qtbot.addWidget(comparison)
    model = comparison.model
    model.set_panel(1, Panel.of(request_))
    model.update(label=request_.label, n=N, seed=SEED)
    assert model.requests()[1] == request_
    panels = model.work(state)(lambda done, total: False)
    assert panels[1].label == request_.label_text  # the trained model served it
    np.testing.assert_array_equal(panels[1].trajectory.samples, sampled.astype(np.float32))

    data, info = run_points(run.data_info)
    reference = Reference.draw(fresh_draw(info, data.points, 60))

    steps = [request_.steps] if request_.steps is not None else [1]
    (point,) = sweep([request_], steps, [run], data, run.schedule, reference, n=N, seed=SEED)
    np.testing.assert_array_equal(point.samples, sampled.astype(np.float32))


def test_a_request_refuses_what_it_cannot_mean():
    from diffvis.errors import ConfigError

    for kwargs, message in [
        ({"params": {"eta": 2}}, "--eta must be between 0 and 1"),
        ({"n": 0}, "number of samples"),
        ({"label": "some"}, "a class is a number"),
        ({"label": -1}, "a class id is a whole number"),
        ({"guidance": 3.0}, "guidance steers towards a class"),
        ({"label": "unconditional", "guidance": 2.0}, "guidance steers towards a class"),
        ({"label": 0, "guidance": -1.0}, "guidance scale w must be between 0"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"seed": -1}, "seed must be a whole number from 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SampleRequest("ddim", **kwargs)
    assert SampleRequest("ddim") == SampleRequest("ddim", {"steps": 50, "eta": 0.0, "spacing": "leading"})
