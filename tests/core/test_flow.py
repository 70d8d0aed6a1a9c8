"""Flow matching: the ODE solvers on a flow whose solution is closed form (Gaussian data), the exact velocity as a
sampler's model, the training loss against its formula, the OT coupling against brute force, and flow runs that
save, load and sample through the registry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from diffvis.core.checkpoint import load_run, save_run
from diffvis.core.classes import ALL_CLASSES
from diffvis.core.coupling import PairStream, ot_assignment, pair_within_classes
from diffvis.core.datasets import make_dataset
from diffvis.core.exact import ExactVelocity
from diffvis.core.flow import LINEAR_PATH, interpolate, target_velocity
from diffvis.core.guidance import guided
from diffvis.core.models import ModelConfig, VelocityNetwork
from diffvis.core.ode import sample_dopri5, sample_euler, sample_heun, sample_midpoint, sample_rk4
from diffvis.core.pipeline import make_trainer, sample_request, train_run
from diffvis.core.registry import SAMPLERS
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.training import TrainConfig
from diffvis.errors import ConfigError

MU, SD = torch.tensor([1.0, -2.0], dtype=torch.float64), 3.0


def gaussian_velocity(x: torch.Tensor, t) -> torch.Tensor:
    """The marginal velocity from N(0, I) to N(μ, s² I): E[x₁ − x₀ | x_t] = μ + (t s² − (1 − t))/σ_t² (x − tμ),
    σ_t² = (1 − t)² + t² s² (both Gaussian, so the regression is linear)."""
    t = float(t)
    var = (1 - t) ** 2 + t**2 * SD**2
    mu = MU.to(x)
    return mu + (t * SD**2 - (1 - t)) / var * (x - t * mu)


def gaussian_solution(x0: torch.Tensor, t: float) -> torch.Tensor:
    """Its flow map: x_t = tμ + σ_t x₀."""
    return t * MU.to(x0) + ((1 - t) ** 2 + t**2 * SD**2) ** 0.5 * x0


def noise(n: int = 200, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def rotation_velocity(x: torch.Tensor, t) -> torch.Tensor:
    """v(x, t) = (1 + 3t²) J x, J the quarter turn: a rotation by θ(t) = t + t³ (a field with no special structure)."""
    t = float(t)
    return (1 + 3 * t * t) * torch.stack([-x[:, 1], x[:, 0]], 1)


def rotation_solution(x0: torch.Tensor, t: float) -> torch.Tensor:
    theta = t + t**3
    c, s = np.cos(theta), np.sin(theta)
    return torch.stack([c * x0[:, 0] - s * x0[:, 1], s * x0[:, 0] + c * x0[:, 1]], 1)


def observed_orders(sampler, field, solution, steps) -> np.ndarray:
    """log₂ of the ratio of the largest errors at t = 1 when the step count doubles."""
    x0 = noise()
    errors = []
    for S in steps:
        traj = sampler(field, x0, LINEAR_PATH, steps=S)
        assert traj.levels == "time" and traj.times[0] == 0 and traj.times[-1] == 1
        error = (torch.as_tensor(traj.samples).double() - solution(x0.double(), 1.0)).norm(dim=1).max()
        errors.append(float(error))
    assert np.all(np.diff(errors) < 0), errors
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


@pytest.mark.parametrize(
    ("sampler", "order", "steps"),
    [(sample_euler, 1, [32, 64, 128]), (sample_midpoint, 2, [16, 32, 64]), (sample_heun, 2, [16, 32, 64]),
     (sample_rk4, 4, [4, 8, 16])],
)  # fmt: skip
def test_measured_orders_of_accuracy_on_a_rotating_flow(sampler, order, steps):
    observed = observed_orders(sampler, rotation_velocity, rotation_solution, steps)
    assert abs(observed[-1] - order) < 0.2, observed


@pytest.mark.parametrize(
    ("sampler", "order", "steps"),
    [(sample_euler, 1, [32, 64, 128]), (sample_midpoint, 3, [8, 16, 32]), (sample_heun, 2, [16, 32, 64]),
     (sample_rk4, 4, [3, 6, 12])],
)  # fmt: skip
def test_measured_orders_of_accuracy_on_the_closed_form_gaussian_flow(sampler, order, steps):
    """From N(0, I) to N(μ, s² I) the midpoint rule converges as S⁻³, not S⁻²: on x' = μ + g(t)(x − tμ) with
    g = σ_t'/σ_t and σ_t² quadratic in t, its second-order error terms cancel (the rotating flow above shows
    its order 2). RK4's error reaches float32's rounding before its S⁻⁴ settles in: at least fourth order."""
    observed = observed_orders(sampler, gaussian_velocity, gaussian_solution, steps)
    assert observed[-1] > order - 0.25, observed
    assert sampler is sample_rk4 or observed[-1] < order + 0.25, observed


def test_every_frame_of_a_fine_solve_is_on_the_flow_map():
    x0 = noise(50)
    traj = sample_rk4(gaussian_velocity, x0, LINEAR_PATH, steps=20)
    for k, t in enumerate(traj.times):
        np.testing.assert_allclose(traj.frames[k], gaussian_solution(x0.double(), float(t)).numpy(), atol=2e-5)
    # x̂₁ = x + (1 − t) v: with the exact Gaussian velocity, E[x₁ | x_t]
    k = 5
    x = torch.as_tensor(traj.frames[k]).double()
    expected = x + (1 - traj.times[k]) * gaussian_velocity(x, traj.times[k])
    np.testing.assert_allclose(traj.x0_hat[k], expected.numpy(), atol=1e-5)


def test_dopri5_meets_its_tolerance_and_counts_its_evaluations():
    x0 = noise(100)
    traj = sample_dopri5(gaussian_velocity, x0, LINEAR_PATH, steps=4, rtol=1e-6, atol=1e-6)
    error = (torch.as_tensor(traj.samples).double() - gaussian_solution(x0.double(), 1.0)).abs().max()
    assert error < 1e-4
    assert traj.nfe == traj.evals[-1] > 4 * 6 and np.all(np.diff(traj.evals) > 0)
    assert traj.params == {"steps": 4, "rtol": 1e-6, "atol": 1e-6}


def _points(n: int = 30, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * torch.tensor([1.2, 0.5])


def test_euler_with_the_exact_velocity_is_an_independent_hand_loop():
    points = _points()
    model = ExactVelocity(points)
    x0 = noise(64, seed=4)
    traj = sample_euler(model, x0, LINEAR_PATH, steps=25)
    x = x0.clone().double()
    for k in range(25):
        t = k / 25
        d2 = ((x[:, None, :] - t * points.double()[None]) ** 2).sum(-1)
        w = torch.softmax(-d2 / (2 * (1 - t) ** 2), dim=1)
        v = (w @ points.double() - x) / (1 - t)  # E[x₁ | x_t] − x over (1 − t)
        x = x + v / 25
        np.testing.assert_allclose(traj.frames[k + 1], x.numpy(), atol=1e-5)


def test_the_exact_velocity_with_dopri5_carries_the_noise_onto_the_training_points():
    points = _points(40, seed=1)
    traj = sample_dopri5(ExactVelocity(points), noise(300, seed=5), LINEAR_PATH, steps=10)
    nearest = torch.cdist(torch.as_tensor(traj.samples).double(), points.double()).min(1).values
    assert float(nearest.median()) < 1e-3


def test_guidance_on_the_velocity_mixes_the_conditional_and_unconditional_fields():
    points, labels = _points(40, seed=2), torch.arange(40) % 2
    model = ExactVelocity(points, labels)
    x = noise(20, seed=6)
    v_c, v_u = model(x, 0.4, 1), model(x, 0.4, None)
    torch.testing.assert_close(guided(model, 1, 3.0)(x, 0.4), v_u + 3.0 * (v_c - v_u), rtol=1e-5, atol=1e-5)
    traj = sample_dopri5(guided(model, 1, 1.0), noise(100, seed=7), LINEAR_PATH, steps=5)
    nearest = torch.cdist(torch.as_tensor(traj.samples), points).argmin(1)
    assert bool((labels[nearest] == 1).all())  # the exact class-1 flow lands on class-1 points only


def test_the_flow_loss_is_the_regression_on_x1_minus_x0():
    trainer, _ = make_trainer(make_dataset("moons", 300), ModelConfig(objective="flow"),
                              TrainConfig(steps=1, conditional=False))  # fmt: skip
    assert isinstance(trainer.model, VelocityNetwork) and trainer.n_conditions == 0
    x1, t, labels = trainer.draw_batch()
    assert labels is None and t.dtype == torch.float32 and float(t.min()) >= 0 and float(t.max()) < 1
    x0 = torch.randn(len(x1), 2)
    losses = trainer.per_sample_loss(x1, t, None, x0)
    with torch.no_grad():
        expected = (trainer.model((1 - t[:, None]) * x0 + t[:, None] * x1, t) - (x1 - x0)).square().mean(1)
    torch.testing.assert_close(losses.detach(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(interpolate(x0, x1, t), (1 - t[:, None]) * x0 + t[:, None] * x1)
    torch.testing.assert_close(target_velocity(x0, x1), x1 - x0)
    assert set(trainer.buckets(torch.tensor([0.0, 0.05, 0.1, 0.999])).tolist()) == {0, 1, 9}


def _cost(x0: np.ndarray, x1: np.ndarray) -> float:
    return float(((x0 - x1) ** 2).sum())


@pytest.mark.parametrize("m", [2, 4, 6, 7])
def test_the_ot_assignment_is_the_brute_force_optimum_on_small_batches(m):
    rng = np.random.default_rng(m)
    for _ in range(5):
        x0, x1 = rng.normal(size=(m, 2)), rng.normal(size=(m, 2)) + 1
        best = min(_cost(x0, x1[list(p)]) for p in itertools.permutations(range(m)))
        assert _cost(x0, x1[ot_assignment(x0, x1)]) == pytest.approx(best, rel=1e-12)


def test_ot_pairs_cost_no_more_than_the_independent_pairing_and_stay_within_their_class():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x0, x1 = rng.normal(size=(128, 2)), rng.normal(size=(128, 2)) * 2
        order = ot_assignment(x0, x1)
        assert sorted(order) == list(range(128))
        assert _cost(x0, x1[order]) <= _cost(x0, x1)
    labels = rng.integers(0, 3, 128)
    order = pair_within_classes(x0, x1, labels, sub_batch=128)
    np.testing.assert_array_equal(labels[order], labels)
    for y in range(3):
        rows = np.flatnonzero(labels == y)
        optimum = x1[rows][ot_assignment(x0[rows], x1[rows])]
        assert _cost(x0[rows], x1[order[rows]]) == pytest.approx(_cost(x0[rows], optimum))


def test_class_conditional_pairing_assigns_whole_sub_batches_of_one_class():
    """Sub-batches are cut from each class's rows, so every assignment pairs ``sub_batch`` points of one class
    (cut from mixed rows, two classes would each get half)."""
    rng = np.random.default_rng(1)
    x0, x1 = rng.normal(size=(256, 2)), rng.normal(size=(256, 2))
    labels = np.repeat([0, 1], 128)[rng.permutation(256)]
    order = pair_within_classes(x0, x1, labels, sub_batch=64)
    np.testing.assert_array_equal(labels[order], labels)
    for y in (0, 1):
        rows = np.flatnonzero(labels == y)
        for start in (0, 64):
            part = rows[start : start + 64]
            optimum = x1[part][ot_assignment(x0[part], x1[part])]
            assert _cost(x0[part], x1[order[part]]) == pytest.approx(_cost(x0[part], optimum), rel=1e-12)
        whole = x1[rows][ot_assignment(x0[rows], x1[rows])]
        assert _cost(x0[rows], x1[order[rows]]) >= _cost(x0[rows], whole) - 1e-12


def test_the_pair_stream_is_a_seeded_sequence_that_reuses_each_pair():
    data = np.random.default_rng(0).standard_normal((500, 2)).astype(np.float32)

    def draw(n, rng):
        return rng.standard_normal((n, 2)).astype(np.float32), data[rng.integers(500, size=n)], None

    a = PairStream(draw, batch=64, sub_batch=16, reuse=2, seed=3)
    b = PairStream(draw, batch=64, sub_batch=16, reuse=2, seed=3)
    batches = [a.next() for _ in range(4)]
    for first in batches:
        second = b.next()
        torch.testing.assert_close(first[0], second[0], rtol=0, atol=0)
        torch.testing.assert_close(first[1], second[1], rtol=0, atol=0)
    # each step brings 32 fresh pairs, and each pair serves two consecutive batches
    torch.testing.assert_close(batches[1][0][:32], batches[0][0][32:], rtol=0, atol=0)
    for x0, x1, _ in batches:
        for s in range(0, 64, 16):
            part0, part1 = x0[s : s + 16].double().numpy(), x1[s : s + 16].double().numpy()
            assert _cost(part0, part1) == pytest.approx(_cost(part0, part1[ot_assignment(part0, part1)]))


def test_an_ot_batch_that_does_not_split_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="split into ot_reuse"):
        TrainConfig(coupling="ot", batch=1000, ot_reuse=3)
    with pytest.raises(ConfigError, match="coupling must be one of"):
        TrainConfig(coupling="sinkhorn")


@pytest.fixture(scope="module")
def flow_run():
    data = make_dataset("moons", 2000, seed=0)
    cfg = TrainConfig(steps=300, batch=256, coupling="ot", ot_batch=64, seed=1)
    return train_run(data, ModelConfig(objective="flow", width=32, depth=2), cfg, {"source": "moons", "n": 2000})


def test_a_labelled_flow_run_is_class_conditional_and_samples_through_every_ode_solver(flow_run):
    assert flow_run.classes is not None and flow_run.ema.num_classes == 2
    model = SamplingModel.of_run(flow_run)
    for name, info in SAMPLERS.items():
        if "flow" not in info.objectives:
            continue
        traj = sample_request(model, SampleRequest(name, {"steps": 4}, n=50, objective="flow"))
        assert traj.levels == "time" and traj.samples.shape == (50, 2) and np.isfinite(traj.samples).all()
        assert traj.labels is not None  # every class in proportion, by default


def test_a_flow_run_saves_and_loads_with_its_coupling(flow_run, tmp_path):
    save_run(flow_run, tmp_path / "run")
    back = load_run(tmp_path / "run")
    assert back.objective == "flow" and back.train_config.coupling == "ot" and back.train_config.ot_batch == 64
    for a, b in zip(flow_run.ema.parameters(), back.ema.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    request = SampleRequest("heun", {"steps": 3}, n=20)
    np.testing.assert_array_equal(sample_request(SamplingModel.of_run(flow_run), request).samples,
                                  sample_request(SamplingModel.of_run(back), request).samples)  # fmt: skip


def test_spacing_is_a_ddpm_setting_refused_for_a_flow_model():
    with pytest.raises(ConfigError, match="for a flow model"):
        SampleRequest("euler", {"spacing": "leading"}, objective="flow")
    unbound = SampleRequest("euler", {"steps": 3})
    assert unbound.bound("flow").params == {"steps": 3}
    assert unbound.bound("ddpm").params == {"steps": 3, "spacing": "trailing"}
    assert unbound.bound(None).objective == "ddpm"  # a sampler's first objective, for an exact model


def test_reflow_pairs_come_from_the_runs_own_ode_and_the_next_flow_trains_on_them(flow_run):
    from diffvis.core.reflow import PAIR_SOLVER, draw_pairs, reflow_run

    pairs = draw_pairs(flow_run, 40, seed=5)
    assert len(pairs) == 40 and pairs.labels is not None and set(pairs.labels) <= {0, 1}
    model = SamplingModel.of_run(flow_run)
    again = sample_request(model, SampleRequest(*PAIR_SOLVER, label=ALL_CLASSES, n=40, seed=5, objective="flow"))
    np.testing.assert_allclose(pairs.source, flow_run.normaliser.to_std(again.frames[0].astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(pairs.target, flow_run.normaliser.to_std(again.samples.astype(np.float64)), atol=1e-5)
    np.testing.assert_array_equal(pairs.labels, again.labels)
    # the pairs are the ODE's: a much finer fixed-step solve of the same source lands on the same points
    fine = sample_request(
        model, SampleRequest("rk4", {"steps": 200}, label=ALL_CLASSES, n=40, seed=5, objective="flow")
    )
    np.testing.assert_allclose(again.samples, fine.samples, atol=2e-4)
    reflowed = reflow_run(flow_run, pairs, steps=20)
    assert reflowed.train_config.coupling == "reflow" and reflowed.data_info["reflow"] == {"k": 1, "pairs": 40}
    assert reflowed.step == 20 and reflowed.normaliser == flow_run.normaliser
    twice = reflow_run(reflowed, draw_pairs(reflowed, 20), steps=5)
    assert twice.data_info["reflow"]["k"] == 2


def test_a_reflow_batch_pairs_each_data_point_with_its_own_source_point(flow_run):
    from diffvis.core.reflow import draw_pairs, reflow_trainer

    pairs = draw_pairs(flow_run, 64, seed=1)
    trainer = reflow_trainer(flow_run, pairs, steps=3)
    x1, _, _, x0 = trainer.draw_batch()
    rows = torch.cdist(x1.double(), torch.as_tensor(pairs.target)).argmin(1)
    torch.testing.assert_close(x0.double(), torch.as_tensor(pairs.source)[rows], rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="reflow straightens a flow"):
        draw_pairs(train_run(make_dataset("moons", 200), ModelConfig(width=16, depth=1), TrainConfig(steps=2),
                             {"source": "moons", "n": 200}), 10)  # fmt: skip


def test_a_data_set_source_starts_the_paths_on_that_set():
    data = make_dataset("moons", 1000, seed=0)
    cfg = TrainConfig(steps=5, batch=128, source="gmm8", conditional=False)
    run = train_run(data, ModelConfig(objective="flow", width=16, depth=1), cfg, {"source": "moons", "n": 1000})
    traj = sample_request(SamplingModel.of_run(run), SampleRequest("euler", {"steps": 2}, n=500, objective="flow"))
    start = traj.frames[0].astype(np.float64)
    radius = np.linalg.norm(start, axis=1)  # eight Gaussians at radius 2, σ = 0.1, in data coordinates
    assert abs(np.median(radius) - 2.0) < 0.1 and np.percentile(np.abs(radius - 2), 99) < 0.5
    with pytest.raises(ConfigError, match="source must be one of .* or a point file"):
        TrainConfig(source="nowhere")


def test_a_point_file_source_is_kept_in_the_run_and_never_read_again(tmp_path):
    import json

    from diffvis.errors import CheckpointError, DataFileError

    file = tmp_path / "ring.csv"
    angle = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    ring = 3 * np.column_stack([np.cos(angle), np.sin(angle)])
    file.write_text("x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in ring.tolist()))
    data = make_dataset("moons", 500, seed=0)
    cfg = TrainConfig(steps=3, batch=64, source=str(file), conditional=False)
    run = train_run(data, ModelConfig(objective="flow", width=16, depth=1), cfg, {"source": "moons", "n": 500})
    np.testing.assert_allclose(run.normaliser.to_data(run.source_points), ring, atol=1e-5)
    save_run(run, tmp_path / "run")
    file.unlink()  # the run holds its source: nothing outside its folder is read again
    back = load_run(tmp_path / "run")
    np.testing.assert_allclose(back.source_points, run.source_points, atol=1e-6)
    request = SampleRequest("euler", {"steps": 2}, n=40, seed=3, objective="flow")
    traj = sample_request(SamplingModel.of_run(back), request)
    start = traj.frames[0].astype(np.float64)  # every path starts on a point of the file
    assert np.abs(np.linalg.norm(start[:, None] - ring[None], axis=-1).min(1)).max() < 1e-4
    np.testing.assert_array_equal(traj.samples, sample_request(SamplingModel.of_run(run), request).samples)
    # a run description that hides or miscounts its source points is refused in one sentence
    meta_path = tmp_path / "run" / "run.json"
    meta = json.loads(meta_path.read_text())
    for count, fragment in ((None, "keeps its 2 to"), (49, "wrong shape")):
        meta_path.write_text(json.dumps({**meta, "source_points": count}))
        with pytest.raises(CheckpointError, match=fragment):
            load_run(tmp_path / "run")
    with pytest.raises(DataFileError, match="ring.csv"):  # the file is gone: a new run cannot start from it
        train_run(data, ModelConfig(objective="flow", width=16, depth=1), cfg, {"source": "moons", "n": 500})


def test_the_cli_refuses_flow_settings_without_a_flow_objective_and_reflow_of_another_kind(tmp_path, capsys):
    from diffvis.cli import main

    assert main(["train", "--data", "moons", "--coupling", "ot", "--out", str(tmp_path / "r")]) == 2
    assert "add --objective flow" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    argv = ["train", "--data", "moons", "--objective", "flow", "--steps", "2", "--out", str(tmp_path / "r")]
    for source, fragment in (("missing.csv", "missing.csv: cannot be read"), ("nowhere", "or a point file")):
        assert main([*argv, "--source", source]) == 2
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not (tmp_path / "r").exists()
