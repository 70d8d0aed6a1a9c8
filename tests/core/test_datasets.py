"""Built-in data sets: shapes, seeds, i.i.d. draws, labels, the standardising transform."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.datasets import DATASETS, Normaliser, make_butterfly, make_dataset
from diffvis.errors import ConfigError

LABELLED = {"spirals": 2, "moons": 2, "rings": 3, "gmm8": 8, "tree": 2}


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_set_is_seedable_and_finite(name):
    a, b, c = (make_dataset(name, 500, seed=s) for s in (1, 1, 2))
    assert a.points.shape == (500, 2) and np.isfinite(a.points).all()
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.allclose(a.points, c.points)


@pytest.mark.parametrize("name", list(DATASETS))
def test_labels_only_where_classes_are_natural(name):
    ps = make_dataset(name, 4000, seed=0)
    if name in LABELLED:
        assert set(np.unique(ps.labels)) == set(range(LABELLED[name]))
    else:
        assert ps.labels is None


def test_butterfly_lies_on_fays_curve_and_covers_all_of_it():
    ps = make_butterfly(20_000, noise=0.0, seed=3)
    x, y = ps.points.T
    t = np.arctan2(x, y)  # x = r sin t, y = r cos t ⇒ the point lies on the curve at t + 2πk (r > 0) or t + π + 2πk
    k = 2 * math.pi * np.arange(-1, 7)
    candidates = np.concatenate([t[:, None] + k, t[:, None] + math.pi + k], 1)
    r_curve = np.exp(np.cos(candidates)) - 2 * np.cos(4 * candidates) + np.sin(candidates / 12) ** 5
    xs, ys = r_curve * np.sin(candidates), r_curve * np.cos(candidates)
    miss = np.min(np.hypot(xs - x[:, None], ys - y[:, None]), axis=1)
    assert miss.max() < 1e-9
    # the sin⁵(t/12) term makes the two halves of [0, 12π) differ: both must be drawn
    assert (ps.points[:, 1] > 3.5).any() and (ps.points[:, 1] < -2.0).any()


def test_draws_are_iid_not_evenly_spaced():
    """Gaps between sorted angles of a uniform draw are exponential-like (coefficient of variation ≈ 1), not 0."""
    ps = make_dataset("rings", 3000, noise=0.0, seed=0)
    inner = ps.points[ps.labels == 0]
    gaps = np.diff(np.sort(np.arctan2(inner[:, 1], inner[:, 0])))
    assert 0.8 < gaps.std() / gaps.mean() < 1.2


def test_noise_is_the_jitter_standard_deviation():
    clean = make_dataset("rings", 20_000, noise=0.0, seed=5).points
    noisy = make_dataset("rings", 20_000, noise=0.1, seed=5).points
    radial = np.hypot(*noisy.T) - np.hypot(*clean.T)
    assert radial.std() == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("kwargs", [
    {"n": 0}, {"n": 10**7}, {"n": 10.0}, {"n": True}, {"noise": -1.0}, {"noise": math.nan}, {"noise": "NaN"},
    {"noise": math.inf}, {"seed": -1}, {"seed": 2**32}, {"seed": 2**64}, {"seed": 1.0},
])  # fmt: skip
def test_bad_arguments_are_user_errors(kwargs):
    args = {"n": 10, **kwargs}
    with pytest.raises(ConfigError):
        make_dataset("moons", args.pop("n"), **args)
    with pytest.raises(ConfigError, match="unknown data set"):
        make_dataset("nope", 10)


def test_normaliser_standardises_with_one_scale_and_round_trips():
    pts = np.random.default_rng(0).normal([3.0, -1.0], [2.0, 0.5], size=(5000, 2))
    norm = Normaliser.fit(pts)
    std = norm.to_std(pts)
    np.testing.assert_allclose(std.mean(0), 0, atol=1e-12)
    assert (std**2).mean() == pytest.approx(1.0)
    assert std[:, 0].std() / std[:, 1].std() == pytest.approx(pts[:, 0].std() / pts[:, 1].std())  # aspect kept
    np.testing.assert_allclose(norm.to_data(std), pts)
    np.testing.assert_allclose(norm.to_data(torch.tensor(std)).numpy(), pts)
    assert Normaliser.from_dict(norm.to_dict()) == norm
    with pytest.raises(ConfigError, match="no spread"):
        Normaliser.fit(np.ones((10, 2)))


@pytest.mark.parametrize("value", [1e308, -1.7e308, 1e13, math.inf, math.nan])
def test_normaliser_refuses_coordinates_it_cannot_standardise(value):
    """Near ±1e308 the squares overflow: the reason is the coordinates, not 'all points coincide'."""
    with pytest.raises(ConfigError, match=r"within ±1e\+12"):
        Normaliser.fit(np.array([[value, 1.0], [0.0, 0.0], [1.0, 2.0]]))
    Normaliser.fit(np.array([[1e12, 1.0], [-1e12, 0.0]]))  # the limit itself is fine


@pytest.mark.parametrize("d, fragment", [
    ({"mean": [0.0, 0.0], "scale": 1e308}, "scale"), ({"mean": [0.0, 0.0], "scale": 0.0}, "scale"),
    ({"mean": [0.0, 0.0], "scale": math.nan}, "scale"), ({"mean": [0.0, 0.0], "scale": "2"}, "scale"),
    ({"mean": [math.nan, 0.0], "scale": 1.0}, "mean"), ({"mean": [1e300, 0.0], "scale": 1.0}, "mean"),
    ({"mean": [0.0], "scale": 1.0}, "mean"), ({"mean": [True, 0.0], "scale": 1.0}, "mean"),
    ({"mean": "00", "scale": 1.0}, "mean"), ([0.0, 1.0], "mean"),
])  # fmt: skip
def test_a_normaliser_read_back_must_be_finite_and_in_range(d, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Normaliser.from_dict(d)


def test_gaussians8_is_the_old_name_of_gmm8_and_draws_the_same_points():
    old, new = make_dataset("gaussians8", 300, seed=3), make_dataset("gmm8", 300, seed=3)
    np.testing.assert_array_equal(old.points, new.points)
    np.testing.assert_array_equal(old.labels, new.labels)
    assert "gaussians8" not in DATASETS and new.name == "gmm8"
