"""Schedule identities, endpoints and the NCSN σ ladder."""

import math

import numpy as np
import pytest

from diffvis.core.schedules import Schedule, SigmaLadder, max_pairwise_distance
from diffvis.errors import ConfigError


@pytest.mark.parametrize("kind", ["linear", "cosine", "sigmoid"])
@pytest.mark.parametrize("T", [2, 10, 1000, 10_000])
def test_identities(kind, T):
    s = Schedule.make(kind, T)
    np.testing.assert_allclose(s.alphas_cumprod, np.cumprod(1 - s.betas), rtol=1e-12)
    np.testing.assert_allclose(s.alphas_cumprod_prev[1:], s.alphas_cumprod[:-1])
    assert s.alphas_cumprod_prev[0] == 1.0
    abar, abar_prev = s.alphas_cumprod, s.alphas_cumprod_prev
    np.testing.assert_allclose(s.posterior_variance, (1 - abar_prev) / (1 - abar) * s.betas, rtol=1e-12)
    np.testing.assert_allclose(s.snr, abar / (1 - abar), rtol=1e-12)
    assert np.all(np.diff(abar) < 0) and np.all((s.betas > 0) & (s.betas <= 0.999))


def test_linear_endpoints_scale_with_T():
    assert Schedule.make("linear", 1000).betas[[0, -1]] == pytest.approx([1e-4, 0.02])
    assert Schedule.make("linear", 500).betas[[0, -1]] == pytest.approx([2e-4, 0.04])
    assert Schedule.make("linear", 2).betas[-1] == 0.999  # 0.02 · 500 would exceed 1: capped


def test_cosine_follows_the_closed_form():
    T, s = 1000, 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    sched = Schedule.make("cosine", T)
    for t in (0, 1, 250, 500, 900):
        assert sched.alphas_cumprod[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert sched.alphas_cumprod[0] > 0.9999 and sched.alphas_cumprod[-1] < 1e-6
    assert sched.betas.max() == pytest.approx(0.999)  # the cap binds at the end


@pytest.mark.parametrize("kind", ["linear", "cosine", "sigmoid"])
def test_every_table_is_read_only(kind):
    s = Schedule.make(kind, 10)
    tables = {name: value for name, value in vars(s).items() if isinstance(value, np.ndarray)}
    assert len(tables) == 7, sorted(tables)
    for name, array in tables.items():
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.5
        assert not array.flags.writeable, name
    betas = np.full(4, 0.1)
    Schedule("custom", 4, betas)
    betas[0] = 0.2  # the schedule froze its own copy, not the caller's array


def test_sigma_ladder_is_read_only():
    sigmas = np.array([2.0, 1.0, 0.5])
    for ladder in (SigmaLadder(sigmas), SigmaLadder.geometric(10.0, 0.01, 7)):
        with pytest.raises(ValueError, match="read-only"):
            ladder.sigmas[0] = 3.0
    sigmas[0] = 3.0  # the ladder froze its own copy


@pytest.mark.parametrize(("kind", "T"), [("bogus", 100), ("linear", 1), ("linear", 10_001)])
def test_bad_schedules_are_user_errors(kind, T):
    with pytest.raises(ConfigError):
        Schedule.make(kind, T)


def test_sigma_ladder_is_geometric():
    ladder = SigmaLadder.geometric(10.0, 0.01, 7)
    assert ladder.sigmas[0] == pytest.approx(10.0) and ladder.sigmas[-1] == pytest.approx(0.01)
    ratios = ladder.sigmas[1:] / ladder.sigmas[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert SigmaLadder.from_dict(ladder.to_dict()).sigmas == pytest.approx(ladder.sigmas)
    with pytest.raises(ConfigError):
        SigmaLadder.geometric(0.01, 10.0, 7)


@pytest.mark.parametrize("seed", range(5))
def test_max_pairwise_distance_matches_brute_force(seed):
    pts = np.random.default_rng(seed).standard_normal((600, 2)) * [3, 1]
    brute = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).max()
    assert brute * (1 - 8e-5) <= max_pairwise_distance(pts) <= brute
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])
    assert max_pairwise_distance(square) == pytest.approx(math.sqrt(2))
