"""Metrics against closed forms and independent computations; floors separate good from bad samples."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.metrics import (
    energy_distance,
    floors,
    frechet_distance,
    nn_precision,
    nn_recall,
    quality_report,
    random_subset,
    sliced_w1,
    wasserstein2,
)

RNG = np.random.default_rng(0)


def test_energy_distance_closed_forms():
    x = RNG.standard_normal((300, 2))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    a, b = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    assert energy_distance(a, b) == pytest.approx(10.0)  # 2·5 − 0 − 0


def test_sliced_w1_of_a_shift_is_its_mean_projection():
    """W1(θ·X, θ·X + θ·v) = |θ·v| exactly for any X, so a few points do: only the projections' number matters."""
    x = RNG.standard_normal((200, 2))
    v = np.array([0.6, -0.8])  # |v| = 1: E_θ |θ·v| = 2/π for θ uniform on the half circle
    assert sliced_w1(x, x + v, n_projections=2048) == pytest.approx(2 / math.pi, rel=0.02)
    assert sliced_w1(x, x) == pytest.approx(0.0, abs=1e-12)
    # unequal sizes: W1 between a point mass and two equal masses at ±1 along x is E|θ_x|·1
    w = sliced_w1(np.zeros((1, 2)), np.array([[1.0, 0.0], [-1.0, 0.0]]), n_projections=4096)
    assert w == pytest.approx(2 / math.pi, rel=0.03)


def _w1_by_quantiles(a: np.ndarray, b: np.ndarray) -> float:
    """W1 = ∫₀¹ |F_a⁻¹(u) − F_b⁻¹(u)| du of two empirical 1D distributions, in float64; the quantile functions
    step at i/n and j/m, kept as exact integers over n·m so each piece's index is exact."""
    a, b = np.sort(a), np.sort(b)
    n, m = len(a), len(b)
    breaks = np.union1d(np.arange(n + 1) * m, np.arange(m + 1) * n)  # u·n·m
    twice_mid = breaks[:-1] + breaks[1:]  # 2·u·n·m at each piece's midpoint
    return float((np.abs(a[twice_mid // (2 * m)] - b[twice_mid // (2 * n)]) * np.diff(breaks)).sum() / (n * m))


def test_sliced_w1_matches_a_float64_quantile_computation():
    """The same projections (angles drawn as sliced_w1 draws them), each W1 from the quantile functions instead
    of the CDFs: equal to rounding (a float32 CDF was off by 1e-9 relative here)."""
    x = RNG.standard_normal((301, 2)) @ np.array([[1.5, 0.4], [0.0, 0.6]])
    y = RNG.standard_normal((217, 2)) + [0.3, -0.2]
    n_projections, seed = 64, 3
    g = torch.Generator().manual_seed(seed)
    angles = (torch.rand(n_projections, generator=g, dtype=torch.float64) * math.pi).numpy()
    dirs = np.stack([np.cos(angles), np.sin(angles)], 1)
    expected = np.mean([_w1_by_quantiles(x @ d, y @ d) for d in dirs])
    assert sliced_w1(x, y, n_projections=n_projections, seed=seed) == pytest.approx(expected, rel=1e-12)


def test_nearest_neighbour_distances():
    data = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.0, 0.1], [0.0, -0.3]])
    assert nn_precision(samples, data) == pytest.approx(0.2)  # both samples near the first point
    assert nn_recall(samples, data) == pytest.approx((0.1 + math.hypot(10, 0.1)) / 2)


def _sqrtm_psd(m):
    w, v = np.linalg.eigh(m)
    return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_matches_the_matrix_square_root_formula():
    x = RNG.standard_normal((5000, 2)) @ np.array([[2.0, 0.3], [0.0, 0.5]]) + [1.0, 2.0]
    y = RNG.standard_normal((4000, 2)) @ np.array([[0.7, -0.4], [0.2, 1.5]])
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    s = _sqrtm_psd(cx)
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cx + cy - 2 * _sqrtm_psd(s @ cy @ s))
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", ["butterfly", "spirals"])
def test_fresh_draws_sit_at_the_floor_and_a_blob_far_above(name):
    """Perfect samples (fresh draws) score about 1× the floor: nearest-neighbour distances tightly (±10 %),
    energy and sliced W1 loosely (heavy-tailed: a few hundred points' class imbalance moves them a lot)."""
    draw = lambda seed: make_dataset(name, 1000, seed=seed).points  # noqa: E731
    good = [quality_report(draw(seed), draw, n_pairs=4, seed=1000 * seed) for seed in range(1, 6)]
    blob = quality_report(RNG.standard_normal((1000, 2)), draw, n_pairs=4)  # a standard Gaussian blob
    for metric in ("nn_precision", "nn_recall"):
        assert all(0.9 < g[metric].ratio < 1.1 for g in good)
    for metric in ("energy", "sliced_w1", "frechet"):
        assert np.median([g[metric].ratio for g in good]) < 2.0
    assert blob["energy"].ratio > 5 and blob["frechet"].ratio > 5 and blob["sliced_w1"].ratio > 3
    assert blob["nn_precision"].ratio > 2.5 and blob["nn_recall"].ratio > 2.5
    assert not blob["energy"].within_floor_spread


def test_floors_report_spread_and_a_random_subset_is_seeded():
    pts = make_dataset("moons", 3000, seed=0).points

    def draw(seed):
        return pts[random_subset(len(pts), 500, seed)]

    np.testing.assert_array_equal(draw(4), draw(4))
    f = floors(draw, n_pairs=3)
    assert all(mean > 0 and std >= 0 for mean, std in f.values())


def test_memorised_fraction_counts_samples_on_training_points():
    from diffvis.core.metrics import memorised_fraction

    data = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    samples = np.array([[0.0, 0.0005], [1.0, 0.0], [0.5, 0.5], [0.0, 1.002]])
    assert memorised_fraction(samples, data, 1e-3) == 0.5
    assert memorised_fraction(samples, data, 3e-3) == 0.75


def test_w2_is_the_brute_force_optimal_matching_and_a_shift_costs_its_length():
    import itertools

    rng = np.random.default_rng(3)
    for _ in range(4):
        x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)) * 2
        best = min(((x - y[list(p)]) ** 2).sum(1).mean() for p in itertools.permutations(range(6)))
        assert wasserstein2(x, y) == pytest.approx(math.sqrt(best), rel=1e-9)
    x = rng.normal(size=(500, 2))
    assert wasserstein2(x, x + np.array([3.0, -4.0])) == pytest.approx(5.0, rel=1e-9)
    assert wasserstein2(x, x[::-1]) == pytest.approx(0.0, abs=1e-7)


def test_normalised_path_energy_is_zero_for_straight_optimal_paths_and_positive_for_a_turn():
    from diffvis.core.metrics import normalised_path_energy

    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(300, 2)) * np.array([2.0, 0.3])
    t = np.linspace(0, 1, 11)
    straight = np.stack([x0 + tk * np.array([1.0, 2.0]) for tk in t])  # a shift: the identity is the OT plan
    assert normalised_path_energy(straight, t) == pytest.approx(0.0, abs=1e-9)
    turned = np.stack([x0 @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) for a in np.pi * t])
    assert normalised_path_energy(turned, t) > 1.0  # a half turn walks arcs to end points a straight line reaches
    # two classes, each shifted straight to its own place: optimal within each class, though not for the whole set
    labels = np.arange(300) % 2
    shift = np.where(labels[:, None] == 0, [[6.0, 0.0]], [[-6.0, 0.0]])
    apart = np.stack([x0 + tk * shift for tk in t])
    assert normalised_path_energy(apart, t, labels) == pytest.approx(0.0, abs=1e-9)
    assert normalised_path_energy(apart, t) > 0.5  # unlabelled, the classes could have swapped places for less


def test_comparisons_and_sweeps_report_w2_with_a_floor_and_a_flows_path_energy():
    from diffvis.core.compare import Reference, sweep, sweep_csv
    from diffvis.core.schedules import Schedule

    data = make_dataset("moons", 300, seed=0).points

    def draw(seed):
        return make_dataset("moons", 300, seed=seed).points

    reference = Reference.draw(draw)
    pairs = [wasserstein2(reference.points, draw(10_001 + 2 * p)) for p in range(4)]  # four draws, its reference
    assert reference.floor["w2"] == pytest.approx((np.mean(pairs), np.std(pairs, ddof=1)), rel=1e-12)
    from diffvis.core.request import SampleRequest

    points = sweep([SampleRequest("euler", objective="flow"), SampleRequest("ddim")], [2, 8], [None, None], data,
                   Schedule.make(), reference, n=300)  # fmt: skip
    assert [p.npe is None for p in points] == [False, False, True, True]
    assert points[1].npe > points[0].npe > 0.1  # the finer path follows more of the exact flow's curve
    assert all("w2" in p.metrics and p.metrics["w2"].floor == reference.floor["w2"][0] for p in points)
    csv = sweep_csv(points).splitlines()
    assert csv[0].endswith(",w2,w2_ratio,npe,nll,nll_se") and csv[3].endswith(",,,") and not csv[1].endswith(",")


def test_w2s_floor_is_taken_against_the_samples_own_reference():
    """W₂ between two 2,000-point draws of the moons swings with how the points split between the moons; a floor
    from independent pairs put a perfect sampler anywhere from 0.6× to 2.3× it. Against the samples' reference,
    fresh draws (a perfect sampler) score about 1×."""
    from diffvis.core.sources import fresh_draw, load_source

    points, info = load_source("moons", n=20_000, seed=0)
    draw = fresh_draw(info, points.points, 2000)
    reference = draw(9_999)
    floor, spread = floors(draw, 1, 10_000, w2_pairs=3, reference=reference)["w2"]
    own = [wasserstein2(reference, draw(10_000 + 2 * p + 1)) for p in range(3)]
    assert floor == pytest.approx(np.mean(own)) and spread == pytest.approx(np.std(own, ddof=1))
    fresh = [wasserstein2(draw(20_000 + i), reference) / floor for i in range(3)]
    assert 0.7 < np.mean(fresh) < 1.3
