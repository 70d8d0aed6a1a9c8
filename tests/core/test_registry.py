"""The sampler registry: one entry per sampler, read by every front end; settings checked where they enter."""

import contextlib
import io
from dataclasses import replace

import numpy as np
import pytest

from diffvis.cli import main
from diffvis.core.pipeline import sample_request, sampling_model
from diffvis.core.pointfiles import load_points
from diffvis.core.registry import SAMPLERS, register_sampler, sampler_info
from diffvis.core.request import SampleRequest
from diffvis.errors import ConfigError


def test_every_sampler_resolves_its_own_defaults():
    for name, info in SAMPLERS.items():
        resolved = info.resolve({})
        assert resolved == info.defaults(), name
        assert set(resolved) == {p.name for p in info.params}
        assert info.objectives and info.formula and info.paper and info.evals_per_step >= 1
        if info.steps_param is not None:
            assert info.steps_param in resolved


def test_one_default_spacing_per_sampler():
    """DDIM visits diffusers' leading timesteps by default, the ODE solvers trailing: wherever they are asked for."""
    assert SAMPLERS["ddim"].defaults()["spacing"] == "leading"
    for name in ("euler", "midpoint", "heun", "rk4", "dopri5", "dpmpp_2m"):
        assert SAMPLERS[name].defaults()["spacing"] == "trailing"
        assert "spacing" not in SAMPLERS[name].defaults("ncsn")


@pytest.mark.parametrize(
    ("sampler", "params", "message"),
    [
        ("ddim", {"eta": 5}, "--eta must be between 0 and 1"),
        ("ddim", {"eta": float("nan")}, "--eta must be between 0 and 1"),
        ("ddim", {"steps": 0}, "--steps must be between 1"),
        ("ddim", {"steps": 2.5}, "--steps must be a whole number"),
        ("ddim", {"spacing": "random"}, "--spacing must be one of leading, trailing, linspace"),
        ("ddpm", {"variance": "large"}, "--variance must be one of beta, beta_tilde"),
        ("langevin", {"step_size": -1.0}, "--step-size must be between"),
        ("euler", {"eta": 0.5}, "the euler sampler takes --steps, --spacing; not eta"),
        ("ddpm", {"steps": 10}, "the ddpm sampler takes --variance; not steps"),
    ],
)
def test_settings_outside_their_range_are_refused_with_the_reason(sampler, params, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        sampler_info(sampler).resolve(params)
    with pytest.raises(ConfigError):
        SampleRequest(sampler, params)


def test_unknown_sampler_names_the_choices():
    with pytest.raises(ConfigError, match="unknown sampler 'dim'; choose one of ddpm, ddim"):
        sampler_info("dim")


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # --help
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def test_a_registered_sampler_reaches_the_cli_and_the_comparison(dummy_sampler, tmp_path):
    rc, out, _ = _cli("sample", "--help")
    assert rc == 0 and "dummy (Dummy, this test)" in out and "--nudge" in out and "a setting only this sampler" in out
    data = tmp_path / "d.csv"
    assert _cli("data", "moons", "--n", "50", "--out", data)[0] == 0
    rc, out, err = _cli("sample", "--exact", data, "--sampler", "dummy", "--steps", "4", "--nudge", "1",
                        "--n", "20", "--out", tmp_path / "s.npy")  # fmt: skip
    assert rc == 0, err
    assert "(dummy, 4 model evaluations" in out
    rc, _, err = _cli("sample", "--exact", data, "--sampler", "dummy", "--nudge", "3", "--out", tmp_path / "t.npy")
    assert rc == 2 and "--nudge must be between 0 and 2" in err and not (tmp_path / "t.npy").exists()
    spec = SampleRequest("dummy", {"steps": 3})
    assert spec.label_text == "Dummy S=3" and spec.with_steps(5).steps == 5
    for command in ("render", "sweep"):
        rc, out, _ = _cli(command, "--help")
        out = " ".join(out.split())  # argparse wraps the help where the line ends
        assert rc == 0 and "dummy (Dummy, this test)" in out and "--nudge" in out
    table = tmp_path / "sweep.csv"
    rc, out, err = _cli("sweep", "--exact", data, "--samplers", "dummy,ddim", "--steps", "2,3", "--nudge", "0.5",
                        "--n", "30", "--out", table)  # fmt: skip
    assert rc == 0, err
    rows = table.read_text().splitlines()[1:]
    assert [row.split(",")[1:3] for row in rows] == [["dummy", "2"], ["dummy", "3"], ["ddim", "2"], ["ddim", "3"]]


def test_the_cli_samples_what_the_core_samples_with_the_registry_defaults(tmp_path):
    """`diffvis sample --sampler dpmpp_2m --steps 10` once used leading spacing while the app used trailing."""
    data = tmp_path / "d.csv"
    assert _cli("data", "rings", "--n", "60", "--out", data)[0] == 0
    out = tmp_path / "s.npy"
    rc, _, err = _cli("sample", "--exact", data, "--sampler", "dpmpp_2m", "--steps", "10", "--n", "40", "--seed", "3",
                      "--out", out)  # fmt: skip
    assert rc == 0, err
    model = sampling_model(None, load_points(data), "ddpm")
    alone = sample_request(model, SampleRequest("dpmpp_2m", {"steps": 10}, n=40, seed=3))
    assert alone.params["spacing"] == "trailing" and alone.times[0] == 999
    np.testing.assert_array_equal(np.load(out)[:, :2], alone.samples.astype(np.float64))


def test_a_sampler_without_its_latex_or_explainer_is_refused():
    info = SAMPLERS["ddim"]
    for missing in ({"latex": ""}, {"explain": None}):
        with pytest.raises(ConfigError, match="LaTeX and an explainer"):
            register_sampler(replace(info, name="incomplete", **missing))
    assert "incomplete" not in SAMPLERS


def test_the_architecture_notes_example_adds_a_sampler_everywhere(tmp_path):
    """docs/architecture.md shows how to add a sampler: its code, run as written, reaches the CLI."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    try:
        exec(compile(code, "architecture.md", "exec"), {})
        rc, out, _ = _cli("sample", "--help")
        out = " ".join(out.split())  # argparse wraps the help at the terminal's width
        assert rc == 0 and "nudged (Nudged DDIM, your paper, eq. 3)" in out and "--nudge" in out
        data = tmp_path / "d.csv"
        assert _cli("data", "moons", "--n", "40", "--out", data)[0] == 0
        rc, out, err = _cli("sample", "--exact", data, "--sampler", "nudged", "--steps", "3", "--nudge", "0.5",
                            "--n", "10", "--out", tmp_path / "s.npy")  # fmt: skip
        assert rc == 0, err
        assert SampleRequest("nudged", {"nudge": 0.5}).label_text == "Nudged DDIM S=50 ν=0.5"
    finally:
        SAMPLERS.pop("nudged", None)
