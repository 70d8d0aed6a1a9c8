"""Samplers: exact-denoiser limits, determinism, shapes, coordinates, cancellation."""

import numpy as np
import pytest
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.exact import ExactNoisePredictor, ExactScore
from diffvis.core.samplers import sample_ddim, sample_ddpm, sample_langevin
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.errors import Cancelled, ConfigError

POINTS = torch.tensor([[1.0, 0.0], [-1.0, 0.2], [0.1, 1.3], [0.4, -1.1]])


def _distance_to_set(samples, points=None):
    points = POINTS.numpy() if points is None else points
    return np.linalg.norm(samples[:, None, :] - points[None], axis=-1).min(1)


def _x_T(n=300, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ["linear", "cosine", "sigmoid"])
@pytest.mark.parametrize(
    "run",
    [
        lambda m, x, s, g: sample_ddpm(m, x, s, generator=g),
        lambda m, x, s, g: sample_ddpm(m, x, s, variance="beta", generator=g),
        lambda m, x, s, g: sample_ddim(m, x, s, steps=50, generator=g),
        lambda m, x, s, g: sample_ddim(m, x, s, steps=100, eta=1.0, spacing="trailing", generator=g),
        lambda m, x, s, g: sample_ddim(m, x, s, steps=10, eta=0.5, spacing="linspace", generator=g),
    ],
)
def test_exact_denoiser_lands_on_the_training_points(kind, run):
    schedule = Schedule.make(kind, 1000)
    traj = run(ExactNoisePredictor(POINTS, schedule), _x_T(), schedule, torch.Generator().manual_seed(1))
    assert _distance_to_set(traj.samples).max() < 1e-3
    assert len(np.unique(traj.samples.round(3), axis=0)) == len(POINTS)  # every point is reached


def test_langevin_with_exact_score_lands_on_the_training_points():
    ladder = SigmaLadder.geometric(3.0, 0.01, 10)
    traj = sample_langevin(
        ExactScore(POINTS), _x_T(), ladder, steps_per_level=50, generator=torch.Generator().manual_seed(0)
    )
    assert traj.frames.shape == (10 * 50 + 2, 300, 2) and traj.nfe == 501
    assert _distance_to_set(traj.samples).max() < 1e-3
    np.testing.assert_allclose(traj.frames[0], 3.0 * _x_T().numpy(), rtol=1e-6)  # starts at σ_1 · x_T
    assert traj.times[0] == pytest.approx(3.0) and traj.times[-2] == pytest.approx(0.01) and traj.times[-1] == 0


def test_trajectory_shapes_times_and_data_coordinates():
    schedule = Schedule.make("linear", 100)
    norm = Normaliser((5.0, -2.0), 3.0)
    model = ExactNoisePredictor(POINTS, schedule)
    traj = sample_ddim(model, _x_T(50), schedule, steps=10, normaliser=norm)
    assert traj.frames.shape == traj.x0_hat.shape == (11, 50, 2) and traj.nfe == 10
    assert traj.frames.dtype == np.float32
    np.testing.assert_array_equal(traj.times, [90, 80, 70, 60, 50, 40, 30, 20, 10, 0, -1])
    np.testing.assert_allclose(traj.frames[0], norm.to_data(_x_T(50).numpy()), rtol=1e-6)
    assert _distance_to_set(traj.samples, norm.to_data(POINTS.numpy())).max() < 3e-3
    np.testing.assert_allclose(traj.x0_hat[-1], traj.samples)
    full = sample_ddpm(model, _x_T(50), schedule)
    assert full.frames.shape == (101, 50, 2) and full.nfe == 100 and full.times[0] == 99


def test_same_generator_same_trajectory_and_eta0_is_deterministic():
    schedule = Schedule.make("linear", 200)
    model = ExactNoisePredictor(POINTS, schedule)
    a = sample_ddpm(model, _x_T(), schedule, generator=torch.Generator().manual_seed(7))
    b = sample_ddpm(model, _x_T(), schedule, generator=torch.Generator().manual_seed(7))
    c = sample_ddpm(model, _x_T(), schedule, generator=torch.Generator().manual_seed(8))
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.allclose(a.frames[100], c.frames[100])
    d1 = sample_ddim(model, _x_T(), schedule, steps=20, generator=torch.Generator().manual_seed(1))
    d2 = sample_ddim(model, _x_T(), schedule, steps=20, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(d1.frames, d2.frames)


def test_ddpm_posterior_mean_step_matches_hand_computation():
    """One step from x_t with a known ε: x_{t−1} = μ̃(x_t, x̂₀) + σ_t z with the posterior-mean coefficients."""
    schedule = Schedule.make("cosine", 5)
    eps_fixed = torch.tensor([[0.3, -0.2]])
    model = lambda x, t: eps_fixed  # noqa: E731
    x_T = torch.tensor([[0.7, 0.1]])
    traj = sample_ddpm(model, x_T, schedule, generator=torch.Generator().manual_seed(0))
    z = torch.randn(1, 2, generator=torch.Generator().manual_seed(0))
    t = 4
    abar, abar_prev, beta = (schedule.alphas_cumprod[t], schedule.alphas_cumprod_prev[t], schedule.betas[t])
    x0 = (x_T - np.sqrt(1 - abar) * eps_fixed) / np.sqrt(abar)
    mean = np.sqrt(abar_prev) * beta / (1 - abar) * x0 + np.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar) * x_T
    expected = mean + np.sqrt(schedule.posterior_variance[t]) * z
    np.testing.assert_allclose(traj.frames[1], expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(traj.x0_hat[0], x0.numpy(), atol=1e-6)


def test_callback_sees_every_step_and_can_cancel():
    schedule = Schedule.make("linear", 100)
    model = ExactNoisePredictor(POINTS, schedule)
    seen = []
    sample_ddim(model, _x_T(10), schedule, steps=10, callback=lambda info: seen.append((info.i, info.total)))
    assert seen == [(i, 10) for i in range(1, 11)]
    with pytest.raises(Cancelled):
        sample_ddpm(model, _x_T(10), schedule, callback=lambda info: info.i >= 5)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, s: sample_ddim(m, _x_T(), s, steps=0),
        lambda m, s: sample_ddim(m, _x_T(), s, steps=101),
        lambda m, s: sample_ddim(m, _x_T(), s, eta=1.5),
        lambda m, s: sample_ddim(m, _x_T(), s, spacing="middle"),
        lambda m, s: sample_ddpm(m, _x_T(), s, variance="huge"),
        lambda m, s: sample_ddpm(m, torch.full((3, 2), float("nan")), s),
        lambda m, s: sample_ddpm(m, torch.zeros(3, 3), s),
    ],
)
def test_bad_sampler_arguments_are_user_errors(call):
    schedule = Schedule.make("linear", 100)
    with pytest.raises(ConfigError):
        call(ExactNoisePredictor(POINTS, schedule), schedule)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("T", [2, 7, 50, 99, 1000, 1001])
def test_ddim_visits_exactly_S_distinct_timesteps_for_every_S(spacing, T):
    """diffusers' trailing arange(T, 0, −T/S) yields S + 1 entries for some S (e.g. T = 50, S = 29); ours never."""
    from diffvis.core.samplers import ddim_timesteps

    for S in range(1, T + 1):
        ts = ddim_timesteps(T, S, spacing)
        assert len(ts) == S and ts[0] <= T - 1 and ts[-1] >= 0 and np.all(np.diff(ts) < 0), (S, ts)
