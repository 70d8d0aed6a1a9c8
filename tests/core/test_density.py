"""Log-density maps: the grid holds ``model_log_likelihood`` at its points, the exact gmm8 model's map is the true
density, the kernel density estimate is a density and Scott's formula by hand, a click's path runs from the point to
the prior, and a cancel stops the work."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.datasets import Normaliser, PointSet, make_dataset
from diffvis.core.density import (
    EXACT,
    KDE,
    NO_DENSITY,
    TICKS,
    density_map,
    density_model,
    kde_log_density,
    model_samples,
    probe_density,
    reference_log_density,
    scott_bandwidth,
)
from diffvis.core.fields import padded_extent
from diffvis.core.gaussian_mixture import gmm8
from diffvis.core.likelihood import model_log_likelihood
from diffvis.core.models import ModelConfig, build_model
from diffvis.core.pipeline import exact_model_of
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.core.sources import load_source
from diffvis.errors import Cancelled, ConfigError

FAST = {"method": "rk4", "steps": 8}
MOONS = make_dataset("moons", 300, seed=3)


@pytest.fixture(scope="module")
def tiny_flow() -> SamplingModel:
    """An untrained width-16 flow network over the moons' coordinates: a smooth density to map, cheaply."""
    torch.manual_seed(0)
    network = build_model(ModelConfig(objective="flow", width=16, depth=1))
    return SamplingModel(network.eval(), "flow", Schedule.make(), SigmaLadder.geometric(6.0),
                         Normaliser.fit(MOONS.points))  # fmt: skip


def test_the_grid_and_the_samples_hold_the_models_log_likelihood_there(tiny_flow):
    result = density_map(tiny_flow, MOONS, resolution=6, samples=12, seed=4, **FAST)
    x_min, x_max, y_min, y_max = padded_extent(MOONS.points)
    np.testing.assert_allclose(result.xs, np.linspace(x_min, x_max, 6))
    np.testing.assert_allclose(result.ys, np.linspace(y_min, y_max, 6))
    j, i = 4, 1  # row j at y, column i at x
    direct = model_log_likelihood(tiny_flow, np.array([[result.xs[i], result.ys[j]]]), **FAST).log_p[0]
    assert result.learned[j, i] == pytest.approx(direct, abs=1e-5)  # a batch of one: float32 rounds apart
    np.testing.assert_allclose(result.learned.ravel(), model_log_likelihood(tiny_flow, result.points, **FAST).log_p,
                               atol=1e-9)  # fmt: skip
    np.testing.assert_allclose(result.samples, model_samples(tiny_flow, 12, seed=4))
    np.testing.assert_allclose(result.sample_log_p, model_log_likelihood(tiny_flow, result.samples, **FAST).log_p,
                               atol=1e-9)  # fmt: skip
    assert result.reference_name == KDE
    np.testing.assert_allclose(result.reference.ravel(), kde_log_density(MOONS.points, result.points))
    np.testing.assert_allclose(result.sample_reference, kde_log_density(MOONS.points, result.samples))
    np.testing.assert_allclose(result.difference, result.learned - result.reference)


@pytest.mark.parametrize("built", ["exact_model_of", "density_model"])
def test_the_exact_gmm8_models_map_is_the_true_density(built):
    """The pipeline's exact gmm8 model scores its class mixture (each class's solve far from its Gaussian is the
    hard part: rtol 1e-6 keeps it within 2.4e-4 nats); the view's, unconditional, the whole mixture at the default
    solver (within 8e-4)."""
    data, info = load_source("gmm8", n=20_000)
    if built == "exact_model_of":
        model, mixture = exact_model_of("gmm8", "flow")
        solver = {"rtol": 1e-6, "atol": 1e-6}
    else:
        model, mixture, solver = density_model(None, data, "flow", Schedule.make()), gmm8(info["noise"]), {}
    result = density_map(model, data, resolution=16, samples=20, **solver)
    truth = mixture.log_prob(torch.as_tensor(result.points)).numpy().reshape(16, 16)
    assert result.reference_name == EXACT
    np.testing.assert_allclose(result.reference, truth)
    near = truth > -10
    assert near.sum() > 20 and np.abs(result.learned - truth)[near].max() <= 1e-3


def test_the_kernel_density_estimate_integrates_to_one():
    lo, hi = MOONS.points.min(0) - 1.5, MOONS.points.max(0) + 1.5
    xs, ys = np.linspace(lo[0], hi[0], 400), np.linspace(lo[1], hi[1], 400)
    gx, gy = np.meshgrid(xs, ys)
    log_p = kde_log_density(MOONS.points, np.stack([gx.ravel(), gy.ravel()], axis=1))
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert np.exp(log_p).sum() * cell == pytest.approx(1.0, abs=2e-3)


def test_the_kernel_density_estimate_is_scotts_rule_by_hand():
    data = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, -1.0], [-0.5, 2.0], [0.3, 0.3]])
    n = len(data)
    h = [n ** (-1 / 6) * math.sqrt(sum((p[k] - data[:, k].mean()) ** 2 for p in data) / (n - 1)) for k in (0, 1)]
    np.testing.assert_allclose(scott_bandwidth(data), h)
    queries = np.array([[0.1, 0.2], [3.0, -2.0], [-1.0, 1.0]])
    for q, got in zip(queries, kde_log_density(data, queries), strict=True):
        kernels = [math.exp(-0.5 * (((q[0] - p[0]) / h[0]) ** 2 + ((q[1] - p[1]) / h[1]) ** 2))
                   / (2 * math.pi * h[0] * h[1]) for p in data]  # fmt: skip
        assert got == pytest.approx(math.log(sum(kernels) / n), rel=1e-12)


def test_the_reference_is_exact_for_a_known_mixture_and_an_estimate_otherwise():
    data, info = load_source("gmm8", n=500)
    queries = np.array([[2.0, 0.0], [0.0, 0.0]])
    values, name = reference_log_density(data, queries)
    assert name == EXACT
    np.testing.assert_allclose(values, gmm8(info["noise"]).log_prob(torch.as_tensor(queries)).numpy())
    values, name = reference_log_density(PointSet(data.points), queries)  # read from a file: no known density
    assert name == KDE
    np.testing.assert_allclose(values, kde_log_density(data.points, queries))


def test_with_no_run_the_exact_model_of_a_known_density_and_a_point_set_refused():
    data, info = load_source("gmm8", n=500)
    model = density_model(None, data, "flow", Schedule.make())
    assert model.exact and model.classes is None and model.objective == "flow"
    point = np.array([[2.0, 0.1]])
    log_p = model_log_likelihood(model, point, rtol=1e-6, atol=1e-6).log_p
    np.testing.assert_allclose(log_p, gmm8(info["noise"]).log_prob(torch.as_tensor(point)).numpy(), atol=1e-4)
    with pytest.raises(ConfigError, match="sum of spikes") as refused:
        density_model(None, MOONS, "flow", Schedule.make())
    assert str(refused.value) == NO_DENSITY


def test_a_probes_path_runs_from_the_point_to_the_prior(tiny_flow):
    probe = probe_density(tiny_flow, np.array([0.5, 0.25]), frames=9, **FAST)
    full = model_log_likelihood(tiny_flow, np.array([[0.5, 0.25]]), frames=9, **FAST)
    assert probe.path.shape == (9, 2) and probe.accumulated.shape == (9,)
    np.testing.assert_allclose(probe.path[0], [0.5, 0.25], atol=1e-9)
    np.testing.assert_allclose(probe.path, full.path[:, 0])
    assert probe.accumulated[0] == 0 and probe.accumulated[-1] == pytest.approx(full.accumulated[-1, 0])
    assert probe.log_p == pytest.approx(full.log_p[0])
    assert probe.log_p == pytest.approx(probe.prior + probe.flow_term + probe.scale_term)


def test_cancel_stops_the_map_and_progress_rises_to_the_end(tiny_flow):
    seen = []

    def cancelled(done, total):
        seen.append((done, total))
        return len(seen) > 5

    with pytest.raises(Cancelled):
        density_map(tiny_flow, MOONS, resolution=6, samples=12, cancelled=cancelled, **FAST)
    assert len(seen) == 6
    seen.clear()
    density_map(tiny_flow, MOONS, resolution=6, samples=12, cancelled=lambda d, t: seen.append((d, t)), **FAST)
    done = [d for d, _ in seen]
    assert {t for _, t in seen} == {TICKS} and done == sorted(done) and done[-1] == TICKS
