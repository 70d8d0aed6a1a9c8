"""`diffvis nll` and `diffvis data --log-density-out`: in-process for the numbers, the real script for the exit code."""

import csv
import io
import os

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.gaussian_mixture import gmm8
from tests.test_cli import TINY, _script, assert_user_error, cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def _collect_qt_garbage():
    """No Qt objects here (see tests/test_cli.py)."""
    yield


def read_csv(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_data_writes_the_true_log_density(tmp_path, capsys):
    rc, out, err = cli(capsys, "data", "gmm8", "--n", "300", "--seed", "4", "--out", tmp_path / "p.csv",
                       "--log-density-out", tmp_path / "lp.npy")  # fmt: skip
    assert rc == 0, err
    points = make_dataset("gmm8", 300, seed=4).points
    expected = gmm8(0.1).log_prob(torch.as_tensor(points)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "lp.npy"), expected, rtol=1e-12)
    assert "log p" in out


@pytest.mark.parametrize("name, fragment", [("moons", "not known"), ("gmm8", "noise 0")])
def test_data_without_a_known_density_writes_nothing(tmp_path, capsys, name, fragment):
    argv = ["data", name, "--out", tmp_path / "p.csv", "--log-density-out", tmp_path / "lp.csv"]
    rc, _, err = cli(capsys, *argv, *(["--noise", "0"] if name == "gmm8" else []))
    assert_user_error(rc, err, fragment)
    assert os.listdir(tmp_path) == []


def test_nll_of_the_exact_gmm8_model_meets_the_true_density(tmp_path, capsys):
    cli(capsys, "data", "gmm8", "--n", "200", "--seed", "8", "--out", tmp_path / "p.csv")
    rc, out, err = cli(capsys, "nll", "--exact", "gmm8", "--points", tmp_path / "p.csv", "--out", tmp_path / "n.csv")
    assert rc == 0, err
    table = read_csv(tmp_path / "n.csv")
    points = make_dataset("gmm8", 200, seed=8).points
    np.testing.assert_allclose(table[:, :2], points, rtol=1e-8)
    true_nll = -gmm8(0.1).log_prob(torch.as_tensor(points)).numpy()
    assert np.abs(table[:, 2] - true_nll).mean() < 2e-4
    assert abs(float(out.split("NLL ")[1].split()[0]) - true_nll.mean()) < 1e-3
    assert f"true −log p of these points {true_nll.mean():.4f}" in out


def test_nll_of_a_run_with_hutchinson_and_a_fixed_step_solver(tmp_path, capsys):
    run = tmp_path / "R"
    rc, _, err = cli(capsys, "train", "--data", "moons", "--objective", "flow", *TINY, "--out", run, "--quiet")
    assert rc == 0, err
    cli(capsys, "data", "moons", "--n", "40", "--out", tmp_path / "p.npy")
    rc, out, err = cli(capsys, "nll", "--run", run, "--points", tmp_path / "p.npy", "--solver", "rk4", "--steps",
                       "10", "--hutchinson", "3", "--out", tmp_path / "n.csv")  # fmt: skip
    assert rc == 0, err
    table = read_csv(tmp_path / "n.csv")
    assert table.shape == (40, 4) and np.isfinite(table).all() and (table[:, 3] >= 0).all()
    assert "rk4 × 10" in out and "Hutchinson, 3 probes" in out and "true −log p" not in out


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--solver", "rk45"], "--solver"),
        (["--rtol", "0"], "--rtol"),
        (["--out", "n.npy"], ".csv"),
    ],
)
def test_nll_bad_options_are_one_line(tmp_path, capsys, extra, fragment):
    cli(capsys, "data", "gmm8", "--n", "20", "--out", tmp_path / "p.csv")
    rc, _, err = cli(capsys, "nll", "--exact", "gmm8", "--points", tmp_path / "p.csv",
                     *[str(tmp_path / a) if a.endswith(".npy") else a for a in extra])  # fmt: skip
    assert_user_error(rc, err, fragment)
    assert sorted(os.listdir(tmp_path)) == ["p.csv"]


def test_nll_of_a_flow_from_a_data_set_is_refused(tmp_path, capsys):
    run = tmp_path / "R"
    argv = ["train", "--data", "moons", "--objective", "flow", "--source", "gmm8", *TINY, "--out", run, "--quiet"]
    assert cli(capsys, *argv)[0] == 0
    cli(capsys, "data", "moons", "--n", "20", "--out", tmp_path / "p.csv")
    rc, _, err = cli(capsys, "nll", "--run", run, "--points", tmp_path / "p.csv")
    assert_user_error(rc, err, "N(0, I) source")


def test_console_script_nll_exits_cleanly(tmp_path):
    assert _script(tmp_path, "data", "gmm8", "--n", "30", "--out", tmp_path / "p.csv").returncode == 0
    proc = _script(tmp_path, "nll", "--exact", "gmm8", "--points", tmp_path / "p.csv", "--solver", "euler",
                   "--steps", "20", "--out", tmp_path / "n.csv")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "NLL" in proc.stdout and len(read_csv(tmp_path / "n.csv")) == 30
    missing = _script(tmp_path, "nll", "--exact", "gmm8", "--points", tmp_path / "absent.csv")
    assert_user_error(missing.returncode, missing.stderr, "absent.csv")


def test_train_on_a_known_density_set_prints_its_nll_beside_the_truth(tmp_path, capsys):
    from diffvis.core.checkpoint import load_run

    run = tmp_path / "R"
    rc, out, err = cli(capsys, "train", "--data", "gmm8", "--objective", "flow", *TINY, "--out", run, "--quiet")
    assert rc == 0, err
    check = load_run(run).quality["nll"]
    assert check["points"] == 500 and check["model"] > check["true"] - 4 * check["difference_error"]
    assert (f"NLL of 500 fresh points {check['model']:.4f} nats (true −log p {check['true']:.4f}: model − true "
            f"{check['model'] - check['true']:+.4f}") in out  # fmt: skip


def test_sample_and_sweep_with_exact_gmm8_use_the_distribution(tmp_path, capsys):
    """--exact with a known-density set's name is that distribution's exact model: fresh draws, not copies of the
    20,000 points of its default draw; a point file stays the exact model of its points."""
    rc, out, err = cli(capsys, "sample", "--exact", "gmm8", "--sampler", "ddim", "--steps", "30", "--n", "200",
                       "--out", tmp_path / "s.csv")  # fmt: skip
    assert rc == 0, err
    samples = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)[:, :2]
    drawn = make_dataset("gmm8", 20_000).points
    gaps = np.sqrt(((samples[:, None] - drawn[None]) ** 2).sum(-1)).min(1)
    assert np.median(gaps) > 1e-3  # not copies (the points' exact model lands within ~1e-5 of one)
    assert np.median(gmm8(0.1).log_prob(torch.as_tensor(samples)).numpy()) > -1.0
    rc, out, err = cli(capsys, "sweep", "--exact", "gmm8", "--samplers", "rk4", "--steps", "2,16", "--n", "100",
                       "--out", tmp_path / "w.csv")  # fmt: skip
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "w.csv").read_text())))
    assert [r["label"] for r in rows] == ["RK4 w=1 · exact density"] * 2
    nll = [float(r["nll"]) for r in rows]
    true = -gmm8(0.1).log_prob(torch.as_tensor(make_dataset("gmm8", 100, seed=9_999).points)).numpy().mean()
    assert abs(nll[1] - true) < abs(nll[0] - true) and abs(nll[1] - true) < 0.2  # NLL converges with the NFE
