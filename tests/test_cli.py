"""The `diffvis` command: data, train and sample end to end, and user errors as one line with exit status 2."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffvis.cli import main
from diffvis.core.checkpoint import load_run
from diffvis.core.datasets import make_dataset
from diffvis.core.pointfiles import load_points
from diffvis.core.run import sample_run

METRIC_NAMES = ("nn_precision", "nn_recall", "energy", "sliced_w1", "frechet")
TINY = ["--n", "500", "--steps", "30", "--width", "16", "--depth", "1", "--batch", "64", "--device", "cpu"]
SCRIPT = shutil.which("diffvis", path=os.path.dirname(sys.executable))

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread is the fast one


@pytest.fixture
def _collect_qt_garbage():
    """No Qt objects are made in this process (the app runs in subprocesses): the shared conftest's full collection
    after each test (0.1 to 0.4 s with torch loaded) is left out, and automatic collection stays on."""
    yield


def cli(capsys, *argv):
    """Run ``diffvis argv`` in-process; returns (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc, err, fragment=""):
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("diffvis: error:") and lines[0][len("diffvis: error:") :].strip(), err
    assert fragment.lower() in lines[0].lower(), err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_torch_thread):
    """`diffvis train` of a tiny model with T = 100 (its quality report samples DDPM-T twice), run once:
    (run directory, exit status, stdout, stderr)."""
    run_dir = tmp_path_factory.mktemp("cli") / "RUN"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["train", "--data", "moons", *TINY, "--timesteps", "100", "--out", str(run_dir), "--quiet"])
    return run_dir, rc, out.getvalue(), err.getvalue()


@pytest.fixture
def run_dir(trained):
    assert trained[1] == 0, trained[3]
    return trained[0]


# --- headless: never Qt ---------------------------------------------------------------------------------------------


def test_headless_command_never_loads_pyside6(tmp_path):
    out = tmp_path / "m.npy"
    code = (
        "import sys, diffvis.cli\n"
        f"rc = diffvis.cli.main(['data', 'moons', '--n', '10', '--out', {str(out)!r}])\n"
        "assert rc == 0, rc\n"
        "qt = [m for m in sys.modules if m.startswith('PySide6') or m.startswith('pyqtgraph')]\n"
        "assert not qt, qt\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert np.load(out).shape == (10, 3)


# --- data -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_data_writes_the_points(tmp_path, capsys, suffix):
    out = tmp_path / f"moons{suffix}"
    rc, stdout, err = cli(capsys, "data", "moons", "--n", "123", "--noise", "0.1", "--seed", "3", "--out", out)
    assert (rc, err) == (0, "")
    assert f"wrote 123 points of moons to {out}" in stdout
    back, expected = load_points(out), make_dataset("moons", 123, noise=0.1, seed=3)
    assert len(back) == 123
    np.testing.assert_allclose(back.points, expected.points, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(back.labels, expected.labels)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_data_same_seed_same_file(tmp_path, capsys, suffix):
    paths = [tmp_path / f"{name}{suffix}" for name in "abc"]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        assert cli(capsys, "data", "spirals", "--n", "50", "--seed", seed, "--out", path)[0] == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_data_noise_changes_the_points(tmp_path, capsys):
    for noise in ("0", "0.5"):
        assert (
            cli(capsys, "data", "swiss_roll", "--n", "40", "--noise", noise, "--out", tmp_path / f"{noise}.npy")[0] == 0
        )
    clean, noisy = np.load(tmp_path / "0.npy"), np.load(tmp_path / "0.5.npy")
    assert clean.shape == noisy.shape == (40, 2)
    assert 0.1 < np.abs(clean - noisy).mean() < 2.0


# --- train ----------------------------------------------------------------------------------------------------------


def test_train_prints_quality_and_saves_the_run(trained):
    run_dir, rc, out, err = trained
    assert rc == 0, err
    assert "Traceback" not in err and "loss" not in err  # --quiet: no progress bar
    assert "trained 30 steps in" in out and f"saved {run_dir}" in out
    for name in METRIC_NAMES:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name
    assert (run_dir / "run.json").is_file()
    run = load_run(run_dir)
    assert run.step == 30 and (run.model_config.width, run.model_config.depth) == (16, 1) and run.schedule.T == 100
    assert run.data_info == {"source": "moons", "n": 500, "noise": 0.05, "seed": 0}
    assert "NLL" not in out and "nll" not in run.quality  # moons' density is not known: no NLL check
    assert set(run.quality) == {*METRIC_NAMES, "class_accuracy"} and run.classes.names == ("upper", "lower")


def test_quality_table_columns_stay_apart(trained):
    """Every row of the table reads as a name and four numbers, however large the ratio is."""
    out = trained[2]
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in METRIC_NAMES]
    assert len(rows) == len(METRIC_NAMES)
    for row in rows:
        assert len(row) == 5, row
        [float(v.rstrip("×")) for v in row[1:]]


def test_progress_bar_writes_to_the_stderr_of_the_moment(monkeypatch):
    """In-process callers (tests, the app) swap sys.stderr; the bar must write to the current one: the first
    report (so a log shows the run started), then a line per 10 %."""
    from diffvis.commands import ProgressBar
    from diffvis.core.training import Progress

    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    bar = ProgressBar()
    for step in range(5, 101, 5):
        bar(Progress(step, 100, 0.25, 1e-3, 50.0, np.zeros(10)))
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 11, lines
    assert lines[0].startswith("[#") and " 5/100 " in lines[0]
    assert lines[-1].startswith("[" + "#" * 30 + "] 100/100") and "loss 0.2500" in lines[-1]


# --- sample from a run ----------------------------------------------------------------------------------------------


def test_sample_ddim_with_trajectory(run_dir, tmp_path, capsys):
    s, t = tmp_path / "S.npy", tmp_path / "T.npz"
    argv = ["sample", "--run", run_dir, "--sampler", "ddim", "--steps", "10", "--n", "50", "--seed", "4"]
    rc, out, err = cli(capsys, *argv, "--out", s, "--trajectory", t)
    assert (rc, err) == (0, "")
    # moons has classes: a conditional run samples every class in proportion by default
    assert f"wrote 50 samples (ddim, 10 model evaluations, class all at w = 1) to {s}" in out
    labelled = np.load(s)
    assert labelled.shape == (50, 3) and np.isfinite(labelled).all()
    samples = labelled[:, :2]
    with np.load(t, allow_pickle=False) as traj:
        frames, times, x0_hat, nfe = traj["frames"], traj["times"], traj["x0_hat"], int(traj["nfe"])
    assert frames.shape == (11, 50, 2) and x0_hat.shape == (11, 50, 2) and times.shape == (11,)
    np.testing.assert_array_equal(times, [90, 80, 70, 60, 50, 40, 30, 20, 10, 0, -1])  # leading spacing of T = 100
    assert nfe == 10
    np.testing.assert_array_equal(frames[-1].astype(np.float64), samples)
    # the same call through the core API gives the same samples
    run = load_run(run_dir)
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(4))
    np.testing.assert_allclose(frames[0], run.normaliser.to_data(x_T.numpy()), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(sample_run(run, "ddim", x_T, steps=10).samples.astype(np.float64), samples)


def test_sample_ddpm_is_seeded(run_dir, tmp_path, capsys):
    outs = [tmp_path / f"{name}.csv" for name in "abc"]
    for out, seed in zip(outs, (3, 3, 4), strict=True):
        rc, stdout, err = cli(
            capsys, "sample", "--run", run_dir, "--sampler", "ddpm", "--n", "40", "--seed", seed, "--out", out
        )
        assert (rc, err) == (0, "")
        assert "(ddpm, 100 model evaluations, class all at w = 1)" in stdout
    assert len(load_points(outs[0])) == 40
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert outs[0].read_bytes() != outs[2].read_bytes()


def test_sample_from_given_initial_noise(run_dir, tmp_path, capsys):
    noise = torch.randn(37, 2, generator=torch.Generator().manual_seed(9)).numpy()
    np.save(tmp_path / "noise.npy", noise)
    base = ["sample", "--run", run_dir, "--sampler", "ddim", "--steps", "10"]
    assert cli(capsys, *base, "--init", tmp_path / "noise.npy", "--n", "5", "--out", tmp_path / "a.npy")[0] == 0
    assert cli(capsys, *base, "--init", tmp_path / "noise.npy", "--out", tmp_path / "b.npy")[0] == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (37, 3)  # the file's N wins over --n (x, y and the class sampled)
    np.testing.assert_array_equal(a, b)
    # the same noise drawn by --seed gives the same samples
    assert cli(capsys, *base, "--n", "37", "--seed", "9", "--out", tmp_path / "c.npy")[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), a)


def test_conditional_run_samples_every_class_by_default(run_dir, tmp_path, capsys):
    """No --class on a conditional run is --class all at w = 1 (where the network is trained on 90 % of the
    batches); --class unconditional is f(x, t, ∅), and refuses a guidance scale."""
    base = ["sample", "--run", run_dir, "--sampler", "ddim", "--steps", "5", "--n", "60"]
    outs = {name: tmp_path / f"{name}.npy" for name in ("default", "all", "unconditional")}
    assert cli(capsys, *base, "--out", outs["default"])[0] == 0
    assert cli(capsys, *base, "--class", "all", "--guidance", "1", "--out", outs["all"])[0] == 0
    assert cli(capsys, *base, "--class", "unconditional", "--out", outs["unconditional"])[0] == 0
    default, every, unconditional = (np.load(p) for p in outs.values())
    np.testing.assert_array_equal(default, every)
    assert set(np.unique(default[:, 2])) == {0, 1}
    assert unconditional.shape == (60, 2)
    assert np.abs(unconditional - default[:, :2]).max() > 1e-4
    rc, _, err = cli(capsys, *base, "--class", "unconditional", "--guidance", "2", "--out", tmp_path / "x.npy")
    assert rc == 2 and "--guidance" in err and not (tmp_path / "x.npy").exists()


def test_autoguidance_by_a_snapshot_and_a_guidance_interval(run_dir, tmp_path, capsys, trained):
    """`train` prints the snapshots it kept; --guide-with snapshot:STEP guides with one of them, an unknown step or
    the exact model is one line naming why; --guidance-interval limits CFG to its noise levels."""
    assert "kept the EMA weights of steps 1, 3, 7, 15" in trained[2]
    base = ["sample", "--run", run_dir, "--sampler", "ddim", "--steps", "5", "--n", "60", "--class", "0"]
    outs = [tmp_path / f"{name}.npy" for name in ("cfg", "auto", "interval")]
    assert cli(capsys, *base, "--guidance", "3", "--out", outs[0])[0] == 0
    rc, _, err = cli(capsys, *base, "--guidance", "3", "--guide-with", "snapshot:7", "--out", outs[1])
    assert rc == 0, err
    rc, _, err = cli(capsys, *base, "--guidance", "3", "--guidance-interval", "0.5,5", "--out", outs[2])
    assert rc == 0, err
    cfg, auto, interval = (np.load(p) for p in outs)
    assert np.abs(cfg - auto).max() > 1e-4 and np.abs(cfg - interval).max() > 1e-4
    rc, _, err = cli(capsys, *base, "--guidance", "3", "--guide-with", "snapshot:2", "--out", tmp_path / "x.npy")
    assert_user_error(rc, err, "keeps 1, 3, 7, 15")
    rc, _, err = cli(capsys, *base, "--guidance-interval", "5,0.5", "--out", tmp_path / "x.npy")
    assert rc == 2 and "σ_lo < σ_hi" in err
    rc, _, err = cli(capsys, *base, "--guidance-interval", "0.5,5", "--out", tmp_path / "x.npy")
    assert_user_error(rc, err, "interval")
    data = tmp_path / "d.csv"
    assert cli(capsys, "data", "moons", "--n", "50", "--out", data)[0] == 0
    rc, _, err = cli(capsys, "sample", "--exact", data, "--guide-with", "snapshot:7", "--guidance", "2", "--out",
                     tmp_path / "x.npy")  # fmt: skip
    assert_user_error(rc, err, "exact model has none")
    assert not (tmp_path / "x.npy").exists()


def test_an_edm_run_trains_and_samples_with_churn(tmp_path, capsys):
    run = tmp_path / "edm"
    rc, out, err = cli(capsys, "train", "--data", "moons", *TINY, "--objective", "edm", "--p-mean", "-1.5",
                       "--p-std", "1.4", "--out", run, "--quiet")  # fmt: skip
    assert rc == 0, err
    assert json.loads((run / "run.json").read_text())["train"]["p_mean"] == -1.5
    rc, _, err = cli(capsys, "train", "--data", "moons", *TINY, "--p-mean", "-1", "--out", tmp_path / "d")
    assert_user_error(rc, err, "--objective edm")
    for extra in ([], ["--s-churn", "20", "--s-tmin", "0.05", "--s-tmax", "10"]):
        rc, out, err = cli(capsys, "sample", "--run", run, "--sampler", "edm", "--steps", "6", "--n", "40", *extra,
                           "--out", tmp_path / "s.npy")  # fmt: skip
        assert rc == 0 and "(edm, 11 model evaluations" in out, err
    rc, out, err = cli(capsys, "sweep", "--run", run, "--steps", "2,3", "--n", "30", "--out", tmp_path / "s.csv")
    assert rc == 0, err  # by default a sweep runs the samplers of the run's kind: EDM's own
    rows = (tmp_path / "s.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and all(row.split(",")[1] == "edm" for row in rows)
    rc, _, err = cli(capsys, "train", "--data", "moons", *TINY, "--objective", "flow", "--prediction", "v", "--out",
                     tmp_path / "f")  # fmt: skip
    assert_user_error(rc, err, "prediction")


# --- sample from the exact denoiser of a data file ------------------------------------------------------------------


@pytest.fixture
def small_data(tmp_path, capsys):
    path = tmp_path / "D.csv"
    assert cli(capsys, "data", "moons", "--n", "20", "--seed", "2", "--out", path)[0] == 0
    return path


# --- explain one step -----------------------------------------------------------------------------------------------


def test_explain_prints_the_step_that_sample_took(run_dir, tmp_path, capsys):
    """`explain --json`'s result is the next frame of the trajectory `sample` saves with the same arguments."""
    common = ["--run", run_dir, "--sampler", "ddim", "--steps", "10", "--eta", "0.5", "--n", "20", "--seed", "4"]
    rc, out, err = cli(capsys, "sample", *common, "--out", tmp_path / "S.npy", "--trajectory", tmp_path / "T.npy")
    assert (rc, err) == (0, "")
    frames = np.load(tmp_path / "T.npy")
    rc, out, err = cli(capsys, "explain", *common, "--point", "3", "--frame", "2", "--json")
    assert (rc, err) == (0, "")
    numbers = json.loads(out)
    assert (numbers["sampler"], numbers["frame"], numbers["point"]) == ("ddim", 2, 3)
    assert (numbers["terms"]["t"], numbers["terms"]["t−1"]) == (70, 60)  # leading spacing of T = 100
    np.testing.assert_allclose(numbers["result"]["data"], frames[3, 3], rtol=1e-5, atol=1e-5)
    assert {"x_t", "ε̂", "x̂₀", "z", "σ_t"} <= set(numbers["terms"])
    rc, text, err = cli(capsys, "explain", *common, "--point", "3", "--frame", "2")
    assert rc == 0 and text.startswith("DDIM (") and "x_{t−1} = " in text and f"{frames[3, 3][0]:.6g}" in text


def test_explain_as_a_real_process_exits_cleanly(small_data, tmp_path):
    argv = [SCRIPT, "explain", "--exact", small_data, "--sampler", "heun", "--objective", "flow", "--steps", "4",
            "--n", "8", "--point", "7", "--frame", "3"]  # fmt: skip
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Heun (") and "k₂" in done.stdout and done.stderr == ""


@pytest.mark.parametrize("sampler", ["ddim", "langevin"])
def test_ideal_sampling_reproduces_the_data_points(small_data, tmp_path, capsys, sampler):
    out = tmp_path / "S.csv"
    argv = ["sample", "--exact", small_data, "--sampler", sampler, "--steps", "20", "--n", "30", "--seed", "1"]
    rc, stdout, err = cli(capsys, *argv, "--out", out)
    assert (rc, err) == (0, "")
    assert f"wrote 30 samples ({sampler}," in stdout
    samples, data = load_points(out).points, load_points(small_data).points
    assert samples.shape == (30, 2)
    distances = np.linalg.norm(samples[:, None] - data[None], axis=2)
    assert distances.min(1).max() < 0.05, distances.min(1)
    # and not all on one point: the exact denoiser spreads the samples over the data set
    assert len(np.unique(distances.argmin(1))) >= 5


# --- user errors ----------------------------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path, run_dir):
    """Bad input files in tmp_path/in: a CSV with text rows, a one-point CSV, initial-noise files, a corrupt run."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.csv").write_text("x,y\n1,2\nhello,world\n")
    (folder / "one.csv").write_text("1,2\n")
    np.save(folder / "noise37x3.npy", np.zeros((37, 3)))
    np.save(folder / "nan.npy", np.full((5, 2), np.nan))
    (folder / "empty.npy").write_bytes(b"")
    shutil.copytree(run_dir, folder / "corrupt")
    (folder / "corrupt" / "run.json").write_text("{this is not json")
    return folder


TINY_ARGS = " ".join(TINY)
USER_ERRORS = [  # (id, argv with {i} = inputs, {t} = tmp_path, {r} = the trained run; a fragment of the message)
    ("unknown command", "frobnicate", "invalid choice"),
    ("unknown data set", "data nosuch --out {t}/x.csv", "unknown data set 'nosuch'"),
    ("unknown training data", "train --data nosuch --out {t}/R", "nosuch"),
    ("data to .json", "data moons --out {t}/x.json", ".json"),
    ("data --n 0", "data moons --n 0 --out {t}/x.csv", "at least 1"),
    ("data --n text", "data moons --n many --out {t}/x.csv", "not an integer"),
    ("data negative noise", "data moons --noise -1 --out {t}/x.csv", "noise"),
    ("data missing --out", "data moons", "--out"),
    ("train missing --out", "train --data moons", "--out"),
    ("train csv with text", "train --data {i}/bad.csv --quiet --out {t}/R", "not numeric"),
    ("train one point", "train --data {i}/one.csv " + TINY_ARGS + " --quiet --out {t}/R", "at least two points"),
    ("train negative lr", "train --data moons " + TINY_ARGS + " --lr -1 --out {t}/R", "lr"),
    ("train timesteps 1", "train --data moons " + TINY_ARGS + " --timesteps 1 --out {t}/R", "timesteps"),
    ("train width 0", "train --data moons --n 50 --width 0 --out {t}/R", "width"),
    ("train width 7", "train --data moons --n 50 --width 7 --out {t}/R", "width"),
    ("train depth 0", "train --data moons --n 50 --depth 0 --out {t}/R", "depth"),
    ("train steps 0", "train --data moons --n 50 --steps 0 --out {t}/R", "steps"),
    ("sample no run dir", "sample --run {t}/nowhere --out {t}/s.csv", "nowhere"),
    ("sample corrupt run", "sample --run {i}/corrupt --out {t}/s.csv", "JSON"),
    ("sample no source", "sample --out {t}/s.csv", "--run"),
    ("sample run and ideal", "sample --run {r} --ideal {i}/bad.csv --out {t}/s.csv", "--exact"),
    ("sample langevin from ddpm", "sample --run {r} --sampler langevin --steps 2 --out {t}/s.csv", "ncsn model"),
    ("sample init wrong shape", "sample --run {r} --init {i}/noise37x3.npy --out {t}/s.csv", "(37, 3)"),
    ("sample init nan", "sample --run {r} --init {i}/nan.npy --out {t}/s.csv", "NaN"),
    ("sample init missing", "sample --run {r} --init {t}/no.npy --out {t}/s.csv", "no.npy"),
    ("sample init empty file", "sample --run {r} --init {i}/empty.npy --out {t}/s.csv", "empty.npy"),
    ("sample eta 2", "sample --run {r} --eta 2 --steps 5 --out {t}/s.csv", "eta"),
    ("sample spacing bogus", "sample --run {r} --spacing bogus --out {t}/s.csv", "bogus"),
    ("sample ddim steps > T", "sample --run {r} --steps 1001 --out {t}/s.csv", "1001"),
    ("sample to .json", "sample --run {r} --steps 2 --out {t}/s.json", ".json"),
    ("sample trajectory suffix", "sample --run {r} --steps 2 --n 3 --out {t}/s.csv --trajectory {t}/t.txt", "t.txt"),
    ("explain point past n", "explain --run {r} --steps 5 --n 4 --point 4", "--point"),
    ("explain frame past the steps", "explain --run {r} --steps 5 --n 4 --frame 5", "frame must be"),
    ("explain no source", "explain --point 1", "--run"),
    ("ideal bad csv", "sample --ideal {i}/bad.csv --out {t}/s.csv", "not numeric"),
    ("ideal one point", "sample --ideal {i}/one.csv --out {t}/s.csv", "two points"),
    ("ideal missing file", "sample --ideal {t}/none.csv --out {t}/s.csv", "none.csv"),
]


@pytest.mark.parametrize("argv, fragment", [e[1:] for e in USER_ERRORS], ids=[e[0] for e in USER_ERRORS])
def test_user_error_is_one_line_and_status_2(argv, fragment, inputs, run_dir, tmp_path, capsys):
    rc, out, err = cli(capsys, *argv.format(i=inputs, t=tmp_path, r=run_dir).split())
    assert_user_error(rc, err, fragment)
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "moons", "--n", "50", "--width", "0", "--out", "{t}/R"],
        ["train", "--data", "moons", "--n", "50", "--lr", "-1", "--out", "{t}/R"],
        ["sample", "--run", "{r}", "--eta", "2", "--out", "{t}/s.csv"],
        ["sample", "--run", "{r}", "--steps", "2", "--n", "3", "--out", "{t}/s.csv", "--trajectory", "{t}/t.txt"],
    ],
    ids=["width", "lr", "eta", "trajectory-suffix"],
)
def test_user_error_writes_nothing(argv, run_dir, tmp_path, capsys):
    """A refused command leaves no run directory or samples file behind (it is checked before any work)."""
    rc, _, err = cli(capsys, *[a.format(t=tmp_path, r=run_dir) for a in argv])
    assert_user_error(rc, err)
    assert os.listdir(tmp_path) == []


def test_ideal_langevin_step_size_must_be_positive(small_data, tmp_path, capsys):
    argv = ["sample", "--exact", small_data, "--sampler", "langevin", "--step-size", "-1", "--out", tmp_path / "s.csv"]
    rc, _, err = cli(capsys, *argv)
    assert_user_error(rc, err, "--step-size must be between")


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without a CUDA GPU")
def test_cuda_without_gpu_is_a_user_error(run_dir, tmp_path, capsys):
    rc, _, err = cli(capsys, "sample", "--run", run_dir, "--device", "cuda", "--out", tmp_path / "s.csv")
    assert_user_error(rc, err, "cuda")


# --- the real console script ----------------------------------------------------------------------------------------


def _script(tmp_path, *argv):
    assert SCRIPT, "the diffvis console script is not installed next to this python"
    return subprocess.run([SCRIPT, *map(str, argv)], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_console_script_writes_data(tmp_path):
    proc = _script(tmp_path, "data", "rings", "--n", "15", "--out", tmp_path / "r.csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(load_points(tmp_path / "r.csv")) == 15
    assert sorted(os.listdir(tmp_path)) == ["r.csv"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["data", "nosuch", "--out", "x.csv"], "unknown data set"),
        (["train", "--data", "moons", "--n", "50", "--timesteps", "1", "--out", "R"], "timesteps"),
    ],
)
def test_console_script_user_error(tmp_path, argv, fragment):
    proc = _script(tmp_path, *argv)
    assert proc.returncode == 2
    assert_user_error(proc.returncode, proc.stderr, fragment)
    assert proc.stdout == ""
    assert os.listdir(tmp_path) == []


def test_python_dash_m_reports_user_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "diffvis", "sample", "--exact", "absent.csv", "--out", "s.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_user_error(proc.returncode, proc.stderr, "absent.csv")
    assert not Path(tmp_path, "s.csv").exists()


def test_cli_keeps_freed_memory_on_linux():
    """The CLI tunes glibc's malloc thresholds (diffvis.malloc); the call succeeds where glibc is present."""
    from diffvis.malloc import keep_freed_memory

    assert keep_freed_memory() is sys.platform.startswith("linux")


def background_jobs(folder):
    """`diffvis` and `diffvis --screenshot` with no display, each in its own process, started at the end of
    collection beside the tests (the conftest's ``Background``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(XDG_CONFIG_HOME=str(folder / "c"), XDG_DATA_HOME=str(folder / "d"))
    app = [sys.executable, "-m", "diffvis"]
    return {"no display": {"argv": app, "env": env},
            "screenshot": {"argv": [*app, "--screenshot", str(folder / "s.png")], "env": env}}  # fmt: skip


def test_app_without_a_display_says_so_and_a_screenshot_renders_offscreen(background):
    done = background.result(__name__, "no display", timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("diffvis: error: no display")
    assert len(done.stderr.strip().splitlines()) == 1
    done = background.result(__name__, "screenshot", timeout=60)
    assert done.returncode == 0 and (background.folder(__name__) / "s.png").stat().st_size > 10_000


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from diffvis.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.option_strings[-1]}" for name, command in [("", parser), *sub.choices.items()]
               for action in command._actions if action.option_strings and not action.help]  # fmt: skip
    assert missing == []


def test_the_old_ideal_option_still_works_and_is_not_shown(tmp_path, capsys):
    data = tmp_path / "d.npy"
    assert cli(capsys, "data", "moons", "--n", "40", "--out", data)[0] == 0
    for option in (["--ideal", str(data)], [f"--ideal={data}"]):
        rc, out, err = cli(capsys, "sample", *option, "--steps", "3", "--n", "5", "--out", tmp_path / "s.npy")
        assert rc == 0, err
    for command in ("sample", "render", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown = capsys.readouterr().out
        assert "--exact DATA" in shown and "--ideal" not in shown
