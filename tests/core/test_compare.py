"""Samplers side by side (diffvis.core.compare): panel labels, presets, which model a panel samples, the shared
initial noise, every panel's cost and metrics recomputed independently, cancellation, and the quality-vs-NFE sweep
with its CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffvis.core.compare import PRESETS, Reference, RunRole, compare, run_panel, sweep, sweep_csv
from diffvis.core.datasets import Normaliser, make_dataset
from diffvis.core.exact import ExactNoisePredictor, ExactScore
from diffvis.core.likelihood import METHODS as LIKELIHOOD_METHODS
from diffvis.core.likelihood import model_log_likelihood
from diffvis.core.metrics import METRICS, score_samples
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import request_model, sample_request, train_run
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule, SigmaLadder, max_pairwise_distance
from diffvis.core.training import TrainConfig
from diffvis.errors import Cancelled, ConfigError

R = SampleRequest
N = 120  # samples per panel (and points of each fresh draw)
SEED = 3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return make_dataset("moons", 150, seed=0).points


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return Schedule.make("linear", 1000)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.draw(lambda seed: make_dataset("moons", N, seed=seed).points)


@pytest.fixture(scope="module")
def runs(points, one_torch_thread) -> dict:
    """Two tiny (barely trained) runs on ``points``: {'ddpm': Run, 'ncsn': Run}."""
    cfg = TrainConfig(steps=20, batch=64, device="cpu", warmup=0)
    return {
        objective: train_run(points, ModelConfig(objective=objective, width=16, depth=1, embed_dim=8), cfg, {})
        for objective in ("ddpm", "ncsn")
    }


def seeded_noise(n: int = N, seed: int = SEED) -> np.ndarray:
    """The noise compare() and sweep() start every panel from, as float64."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


# --- SampleRequest ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "label", "family", "steps"),
    [
        (SampleRequest("ddim", {"steps": 50, "eta": 0.0}), "DDIM S=50 η=0", "DDIM η=0", 50),
        (SampleRequest("ddim", {"steps": 10, "eta": 0.3}), "DDIM S=10 η=0.3", "DDIM η=0.3", 10),
        (SampleRequest("ddim"), "DDIM S=50 η=0", "DDIM η=0", 50),
        (SampleRequest("ddpm"), "DDPM (β̃)", "DDPM (β̃)", None),
        (R("ddpm", {"variance": "beta"}), "DDPM (β)", "DDPM (β)", None),
        (SampleRequest("ddpm", exact=True), "DDPM (β̃) · exact", "DDPM (β̃) · exact", None),
        (
            SampleRequest("langevin", {"steps_per_level": 20}, exact=True),
            "Langevin K=20 · exact",
            "Langevin · exact",
            20,
        ),
        (SampleRequest("langevin"), "Langevin K=100", "Langevin", 100),
        (SampleRequest("euler", {"steps": 7}), "Euler S=7", "Euler", 7),
        (SampleRequest("heun"), "Heun S=50", "Heun", 50),
        (SampleRequest("dpmpp_2m", {"steps": 10}), "DPM-Solver++(2M) S=10", "DPM-Solver++(2M)", 10),
    ],
)
def test_panel_spec_labels_families_and_steps(spec, label, family, steps):
    assert spec.label_text == label
    assert spec.family == family
    assert spec.steps == steps
    assert spec.bound(None).objective == ("ncsn" if spec.sampler == "langevin" else "ddpm")


def test_panel_spec_with_steps():
    ddim = SampleRequest("ddim", {"steps": 50, "eta": 0.6}, exact=True)
    five = ddim.with_steps(5)
    assert five == SampleRequest("ddim", {"steps": 5, "eta": 0.6}, exact=True)
    assert five.label_text == "DDIM S=5 η=0.6 · exact" and five.family == ddim.family
    assert ddim.params == {"steps": 50, "eta": 0.6, "spacing": "leading"}  # the original is untouched, completed
    langevin = SampleRequest("langevin").with_steps(7)
    assert langevin.params["steps_per_level"] == 7 and langevin.steps == 7
    assert SampleRequest("heun").with_steps(3).params == {"steps": 3, "spacing": "trailing"}
    ddpm = SampleRequest("ddpm", {"variance": "beta"})
    assert ddpm.with_steps(10) is ddpm  # DDPM always takes all T steps


@pytest.mark.parametrize("sampler", ["ddpm2", "DDIM", "", "dpm"])
def test_panel_spec_refuses_an_unknown_sampler(sampler):
    with pytest.raises(ConfigError, match="unknown sampler"):
        SampleRequest(sampler)


@pytest.mark.parametrize("key", list(PRESETS))
def test_every_preset_builds_valid_panels(key):
    title, specs = PRESETS[key].title, PRESETS[key].requests
    assert title and 2 <= len(specs) <= 6 and len(PRESETS[key].roles) in (0, len(specs))
    for spec in specs:
        assert isinstance(spec, SampleRequest)
        again = SampleRequest(spec.sampler, dict(spec.params), spec.exact, spec.label, spec.guidance,
                              interval=spec.interval, guide_with=spec.guide_with)  # fmt: skip
        assert again == spec  # validates again
        assert spec.label_text.startswith(spec.family.split(" · ")[0].split(" ")[0])
        if spec.sampler != "ddpm":
            assert spec.steps >= 1


def test_presets_say_what_they_compare():
    eta = PRESETS["eta"].requests
    etas = [spec.params["eta"] for spec in eta]
    assert etas == [0.0, 0.3, 0.6, 1.0] and etas == sorted(etas)
    assert {spec.sampler for spec in eta} == {"ddim"} and {spec.steps for spec in eta} == {50}
    assert [s.label_text for s in PRESETS["ddpm-vs-ddim"].requests] == ["DDPM (β̃)", "DDIM S=50 η=0", "DDIM S=10 η=0"]
    assert [s.exact for s in PRESETS["trained-vs-exact"].requests] == [False, True]
    assert [s.sampler for s in PRESETS["ddpm-vs-langevin"].requests] == ["ddpm", "langevin"]


# --- panel_model ----------------------------------------------------------------------------------------------------


def test_panel_model_without_a_run_is_exact(points, schedule):
    for spec in (SampleRequest("ddim", {"steps": 10}), SampleRequest("ddpm"), SampleRequest("heun")):
        model, label = request_model(spec, None, points, schedule)
        assert model.exact and isinstance(model.model, ExactNoisePredictor)
        assert model.schedule is schedule
        assert label == spec.label_text + " · exact"
    model, label = request_model(SampleRequest("langevin", {"steps_per_level": 20}), None, points, schedule)
    assert model.exact and isinstance(model.model, ExactScore) and label == "Langevin K=20 · exact"
    std = Normaliser.fit(points).to_std(points)
    np.testing.assert_allclose(model.ladder.sigmas, SigmaLadder.geometric(max_pairwise_distance(std)).sigmas)
    # asked for the exact model: the label says so once
    model, label = request_model(SampleRequest("ddim", exact=True), None, points, schedule)
    assert model.exact and label == "DDIM S=50 η=0 · exact"


def test_panel_model_uses_a_run_of_the_samplers_kind(points, schedule, runs):
    ddpm, ncsn = runs["ddpm"], runs["ncsn"]
    spec = SampleRequest("ddim", {"steps": 10})
    model, label = request_model(spec, ddpm, points, schedule)
    assert not model.exact and model.model.net is ddpm.ema and label == "DDIM S=10 η=0"  # seen as ε (v-prediction)
    assert model.normaliser == ddpm.normaliser and model.schedule is ddpm.schedule

    model, label = request_model(SampleRequest("langevin", {"steps_per_level": 20}), ncsn, points, schedule)
    assert not model.exact and model.model is ncsn.ema and label == "Langevin K=20"

    # asked for the exact model with a usable run: the run's schedule and σ ladder
    model, label = request_model(SampleRequest("ddim", {"steps": 10}, exact=True), ddpm, points, schedule)
    assert model.exact and isinstance(model.model, ExactNoisePredictor) and label == "DDIM S=10 η=0 · exact"
    assert model.schedule is ddpm.schedule and model.ladder is ddpm.ladder


def test_panel_model_falls_back_to_the_exact_model_of_the_other_kind(points, schedule, runs):
    model, label = request_model(SampleRequest("langevin", {"steps_per_level": 20}), runs["ddpm"], points, schedule)
    assert model.exact and isinstance(model.model, ExactScore)
    assert label == "Langevin K=20 · exact (the run is DDPM)"
    model, label = request_model(SampleRequest("ddim", {"steps": 10}), runs["ncsn"], points, schedule)
    assert model.exact and isinstance(model.model, ExactNoisePredictor)
    assert model.schedule is runs["ncsn"].schedule
    assert label == "DDIM S=10 η=0 · exact (the run is NCSN)"
    # an exact panel needs no reason
    _, label = request_model(SampleRequest("langevin", exact=True), runs["ddpm"], points, schedule)
    assert label == "Langevin K=100 · exact"


# --- compare --------------------------------------------------------------------------------------------------------

SPECS = [
    SampleRequest("ddpm"),
    SampleRequest("ddim", {"steps": 10}),
    SampleRequest("heun", {"steps": 4}),
    SampleRequest("dpmpp_2m", {"steps": 6}),
    SampleRequest("euler", {"steps": 5}),
    SampleRequest("ddim", {"steps": 8, "eta": 1.0}),
    SampleRequest("langevin", {"steps_per_level": 3}),
]
EXPECTED_NFE = [1000, 10, 2 * 4 - 1, 6, 5, 8, 10 * 3 + 1]  # DDPM T, DDIM S, Heun 2S − 1, Langevin L·K + 1


@pytest.fixture(scope="module")
def compared(points, schedule, reference):
    calls = []
    results = compare(SPECS, [None] * len(SPECS), points, schedule, reference, n=N, seed=SEED,
                      progress=lambda i, n: calls.append((i, n)) and False)  # fmt: skip
    return results, calls


def test_compare_starts_every_panel_from_the_same_seeded_noise(compared, points):
    results, _ = compared
    assert [r.spec for r in results] == [replace(s, n=N, seed=SEED) for s in SPECS]
    norm = Normaliser.fit(points)
    noise = seeded_noise()
    expected = norm.to_data(noise)
    first = results[0].trajectory.frames[0]
    assert first.shape == (N, 2)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)
    for r in results[:-1]:  # every non-Langevin panel: bit for bit the same frame 0
        np.testing.assert_array_equal(r.trajectory.frames[0], first)
    langevin = results[-1].trajectory
    assert langevin.name == "langevin"
    sigma_1 = SigmaLadder.geometric(max_pairwise_distance(norm.to_std(points))).sigmas[0]
    assert sigma_1 > 1
    np.testing.assert_allclose(
        norm.to_std(langevin.frames[0].astype(np.float64)), sigma_1 * noise, rtol=1e-4, atol=1e-4
    )
    # another seed: other noise
    assert not np.allclose(seeded_noise(seed=SEED + 1), noise)


def test_compare_with_a_run_shares_the_noise_between_trained_and_exact_panels(points, schedule, reference, runs):
    specs = [R("ddim", {"steps": 5}), R("ddim", {"steps": 5}, exact=True), R("ddpm")]
    results = compare(specs, [runs["ddpm"]] * len(specs), points, schedule, reference, n=40, seed=SEED)
    assert [r.label for r in results] == ["DDIM S=5 η=0", "DDIM S=5 η=0 · exact", "DDPM (β̃)"]
    expected = runs["ddpm"].normaliser.to_data(seeded_noise(40))
    for r in results:
        np.testing.assert_allclose(r.trajectory.frames[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(results[0].trajectory.frames[0], results[1].trajectory.frames[0])
    # the trained and the exact model go different ways from the same start
    assert not np.allclose(results[0].trajectory.samples, results[1].trajectory.samples, atol=1e-2)


def test_compare_measures_cost_and_metrics(compared, reference):
    results, _ = compared
    assert [r.trajectory.nfe for r in results] == EXPECTED_NFE
    for r in results:
        traj = r.trajectory
        assert traj.evals is not None and len(traj.evals) == len(traj.frames)
        assert traj.evals[0] == 0 and traj.evals[-1] == traj.nfe
        assert np.all(np.diff(traj.evals) >= 0)
        assert r.seconds > 0
        assert list(r.metrics) == [*METRICS, "w2"]  # W₂ with its floor from one pair of fresh draws
        expected = score_samples(traj.samples.astype(np.float64), reference.points, reference.floor)
        for name, m in r.metrics.items():
            e = expected[name]
            assert m.name == name
            assert m.value == pytest.approx(e.value, rel=1e-12, abs=1e-15)
            assert (m.floor, m.floor_std) == (e.floor, e.floor_std) == reference.floor[name]
            assert m.ratio == pytest.approx(e.value / e.floor, rel=1e-12)
            assert m.value > 0
    ddim = results[1].trajectory
    assert len(ddim.frames) == 11 and list(ddim.evals) == list(range(11))
    heun = results[2].trajectory
    assert list(heun.evals) == [0, 2, 4, 6, 7]  # two evaluations a step, one on the last
    ddpm = results[0].trajectory
    assert len(ddpm.frames) == 1001 and ddpm.evals[500] == 500


def test_compare_reports_monotone_progress_in_thousandths(compared):
    _, calls = compared
    assert calls and {n for _, n in calls} == {1000 * len(SPECS)}
    done = [i for i, _ in calls]
    assert done == sorted(done) and done[-1] == 1000 * len(SPECS)
    # a call per step, and an ODE solver's panel more during its NLL's solve
    steps = sum(len(r.trajectory.frames) - 1 for r in compared[0])
    assert len(calls) == steps if all(r.nll is None for r in compared[0]) else len(calls) > steps


def test_compare_is_cancelled_by_its_progress_callback(points, schedule, reference):
    calls = []

    def progress(i, n):
        calls.append(i)
        return i >= 1500  # during the second panel

    with pytest.raises(Cancelled):
        compare(SPECS[:3], [None] * 3, points, schedule, reference, n=N, seed=SEED, progress=progress)
    assert 1000 <= calls[-1] < 2000 and len(calls) < 1000 + 10
    with pytest.raises(Cancelled):
        compare(SPECS[:1], [None], points, schedule, reference, n=N, progress=lambda i, n: True)


# --- sweep ----------------------------------------------------------------------------------------------------------

SWEEP_SPECS = [R("ddpm"), R("ddim"), R("heun"), R("langevin", exact=True)]
STEP_COUNTS = [2, 5, 100]


@pytest.fixture(scope="module")
def swept(points, schedule, reference):
    calls = []
    out = sweep(SWEEP_SPECS, STEP_COUNTS, [None] * len(SWEEP_SPECS), points, schedule, reference, n=N, seed=SEED,
                progress=lambda i, n: calls.append((i, n)) and False)  # fmt: skip
    return out, calls


def test_sweep_has_one_point_per_spec_and_step_count(swept, reference):
    out, calls = swept
    assert [(p.label, p.sampler, p.steps) for p in out] == [
        ("DDPM (β̃) · exact", "ddpm", None),  # no run: the exact model, and the label says so
        *[("DDIM η=0 · exact", "ddim", s) for s in STEP_COUNTS],
        *[("Heun · exact", "heun", s) for s in STEP_COUNTS],
        *[("Langevin · exact", "langevin", s) for s in STEP_COUNTS],
    ]
    assert calls == sorted(calls) and sorted(set(calls)) == [(i, 10) for i in range(11)]  # also asked within runs
    nfe = {(p.sampler, p.steps): p.nfe for p in out}
    assert nfe == {("ddpm", None): 1000, ("ddim", 2): 2, ("ddim", 5): 5, ("ddim", 100): 100, ("heun", 2): 3,
                   ("heun", 5): 9, ("heun", 100): 199, ("langevin", 2): 21, ("langevin", 5): 51,
                   ("langevin", 100): 1001}  # fmt: skip
    for family in ("DDIM η=0 · exact", "Heun · exact", "Langevin · exact"):
        costs = [p.nfe for p in out if p.label == family]
        assert costs == sorted(costs) and len(set(costs)) == len(costs)
    for p in out:
        assert p.seconds > 0 and list(p.metrics) == [*METRICS, "w2"]
        assert all(m.floor == reference.floor[name][0] for name, m in p.metrics.items())


def test_sweep_points_match_single_panels(swept, points, schedule, reference):
    out, _ = swept
    alone = run_panel(SampleRequest("heun", {"steps": 5}, n=N, seed=SEED), None, points, schedule, reference)
    heun5 = next(p for p in out if p.sampler == "heun" and p.steps == 5)
    assert heun5.nfe == alone.trajectory.nfe
    for name in METRICS:
        assert heun5.metrics[name].value == pytest.approx(alone.metrics[name].value, rel=1e-9)


def test_the_exact_ddim_with_many_steps_sits_near_the_floor(swept):
    out, _ = swept
    ddim = {p.steps: p.metrics["energy"].ratio for p in out if p.sampler == "ddim"}
    assert ddim[100] < 3.0  # the exact denoiser memorises the data: about as close as a fresh draw
    assert ddim[2] > 3 * ddim[100]  # two steps are far from it


def test_sweep_is_cancelled_by_its_progress_callback(points, schedule, reference):
    with pytest.raises(Cancelled):
        sweep(
            SWEEP_SPECS,
            STEP_COUNTS,
            [None] * len(SWEEP_SPECS),
            points,
            schedule,
            reference,
            n=N,
            progress=lambda i, n: i >= 2,
        )


def test_sweep_csv_parses_back_to_the_same_numbers(swept):
    out, _ = swept
    text = sweep_csv(out)
    assert text.endswith("\n")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[:5] == ["label", "sampler", "steps", "nfe", "seconds"]
    assert header[5:] == [c for m in [*METRICS, "w2"] for c in (m, f"{m}_ratio")] + ["npe", "nll", "nll_se"]
    assert len(rows) == 1 + len(out)
    for row, p in zip(rows[1:], out, strict=True):
        assert len(row) == len(header)
        cells = dict(zip(header, row, strict=True))
        assert cells["label"] == p.label and cells["sampler"] == p.sampler
        assert cells["steps"] == ("" if p.steps is None else str(p.steps))
        assert int(cells["nfe"]) == p.nfe
        assert float(cells["seconds"]) == pytest.approx(p.seconds, abs=5e-5)
        for name, m in p.metrics.items():
            assert float(cells[name]) == pytest.approx(m.value, rel=1e-5)
            assert float(cells[f"{name}_ratio"]) == pytest.approx(m.ratio, rel=1e-5)
        assert cells["npe"] == ""  # DDPM-family samplers: no flow, no path energy
        if p.nll is None:  # an ODE solver of the likelihood scores its held-out NLL; the other samplers do not
            assert cells["nll"] == cells["nll_se"] == "" and p.sampler not in LIKELIHOOD_METHODS
        else:
            assert (float(cells["nll"]), float(cells["nll_se"])) == pytest.approx(p.nll, rel=1e-5)
    assert {p.sampler for p in out if p.nll is not None} == {"heun"}
    assert sweep_csv([]) == "label,sampler,steps,nfe,seconds,npe,nll,nll_se\n"


def test_a_panels_nll_is_the_held_out_likelihood_through_its_solver(compared, points, schedule, reference):
    results, _ = compared
    for request, r in zip(SPECS, results, strict=True):
        if request.sampler not in LIKELIHOOD_METHODS:
            assert r.nll is None
            continue
        model, _ = request_model(request, None, points, schedule)
        steps = request.info.resolve(request.params, model.objective)["steps"]
        expected = model_log_likelihood(model, reference.points, method=request.sampler, steps=steps).nll
        assert r.nll == pytest.approx(expected, rel=1e-9)


# --- runs side by side: roles ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_runs(points, one_torch_thread) -> dict:
    """Tiny flow runs on ``points``: independent and OT coupling, and the independent one reflowed once."""
    from diffvis.core.reflow import draw_pairs, reflow_run

    cfg = TrainConfig(steps=20, batch=64, device="cpu", warmup=0)
    model = ModelConfig(objective="flow", width=16, depth=1, embed_dim=8)
    independent = train_run(points, model, cfg, {"source": "moons"})
    ot = train_run(points, model, replace(cfg, coupling="ot", ot_batch=32, ot_reuse=2), {"source": "moons"})
    return {
        "independent": independent,
        "ot": ot,
        "reflowed": reflow_run(independent, draw_pairs(independent, 64), steps=5),
    }


def test_a_role_picks_the_newest_run_of_its_kind_and_names_a_missing_one(runs, flow_runs):
    ddpm, independent, ot, reflowed = runs["ddpm"], flow_runs["independent"], flow_runs["ot"], flow_runs["reflowed"]
    session = [ddpm, independent, ot, reflowed]
    assert RunRole().pick(session, ncsn := runs["ncsn"]) is ncsn  # the lab's run, whatever the session holds
    assert RunRole("ddpm").pick(session, ncsn) is ddpm
    assert RunRole("flow").pick(session, None) is ot  # the newest flow trained from its coupling
    assert RunRole("flow", coupling="independent").pick(session, None) is independent
    assert RunRole("flow", reflows=1).pick(session, None) is reflowed
    assert RunRole("flow", reflows=1).title == "flow run reflowed once"
    with pytest.raises(ConfigError, match="needs a flow run reflowed once: train one"):
        RunRole("flow", reflows=1).pick(session[:3], ddpm)
    with pytest.raises(ConfigError, match=r"needs a flow run \(ot coupling\)"):
        RunRole("flow", coupling="ot").pick([ddpm, independent], ddpm)


def test_the_objectives_preset_samples_three_runs_from_one_noise(points, schedule, reference, runs, flow_runs):
    preset = PRESETS["objectives"]
    session = [runs["ddpm"], flow_runs["independent"], flow_runs["reflowed"]]
    picked = [preset.role(i).pick(session, runs["ddpm"]) for i in range(len(preset.requests))]
    assert picked == session
    results = compare(list(preset.requests), picked, points, schedule, reference, n=40, seed=SEED)
    assert [r.label for r in results] == ["Euler S=2 · ddpm", "Euler S=2 · flow (independent)",
                                          "Euler S=2 · flow reflowed ×1"]  # fmt: skip
    start = runs["ddpm"].normaliser.to_data(seeded_noise(40))
    for r, run in zip(results, picked, strict=True):
        np.testing.assert_allclose(r.trajectory.frames[0], start, rtol=1e-5, atol=1e-5)  # one noise for all
        alone = sample_request(SamplingModel.of_run(run), replace(r.spec, n=40, seed=SEED))
        np.testing.assert_array_equal(r.trajectory.samples, alone.samples)  # each its own run's ODE
        assert r.trajectory.nfe == 2 and "w2" in r.metrics
    assert results[0].npe is None and results[1].npe is not None and results[2].npe is not None
    # its sweep: one line per run, at the preset's step counts
    out = sweep(list(preset.requests), preset.step_counts, picked, points, schedule, reference, n=40, seed=SEED)
    assert [(p.label, p.steps) for p in out] == [(r.label.replace(" S=2", ""), s) for r in results
                                                 for s in (1, 2, 4, 8)]  # fmt: skip
