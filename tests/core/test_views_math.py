"""The maths behind the views: samplers started part-way, the Langevin frame bookkeeping, exact sampling models,
the pipeline's trajectories and probes, score-field series, scores recovered from trajectories, density grids."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.exact import ExactNoisePredictor, ExactScore
from diffvis.core.fields import (
    NOISE_SEED,
    density_grid,
    field_series,
    field_times,
    padded_extent,
    trajectory_scores,
)
from diffvis.core.models import ModelConfig
from diffvis.core.pipeline import probe_trajectory, sample_request, sampling_model, train_run
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.samplers import (
    langevin_frame,
    langevin_times,
    sample_ddim,
    sample_ddpm,
    sample_langevin,
)
from diffvis.core.schedules import Schedule, SigmaLadder
from diffvis.core.training import TrainConfig
from diffvis.errors import Cancelled, ConfigError

SCHEDULE = Schedule.make("linear", 50)
LADDER = SigmaLadder.geometric(3.0, 0.05, 4)
STD_POINTS = torch.tensor([[1.0, 0.0], [-1.0, 0.2], [0.1, 1.3], [0.4, -1.1]])
# data coordinates far from the origin and not unit-scaled, so that a wrong normaliser convention shows
DATA = np.array([[5.0, -2.0], [8.0, -1.0], [6.0, 1.0], [3.5, 0.5], [7.0, -3.5], [4.5, -3.0]])


def _x_T(n=20, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _mixture_score(x, centres, s):
    """∇ log mean_i N(x; centres_i, s² I) in float64 numpy, with a max-shifted softmax."""
    x, centres = np.asarray(x, dtype=np.float64), np.asarray(centres, dtype=np.float64)
    diff = centres[None, :, :] - x[:, None, :]
    logits = -(diff**2).sum(-1) / (2 * s * s)
    w = np.exp(logits - logits.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return (w[..., None] * diff).sum(1) / (s * s)


def _grid(xs, ys):
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _diameter(points):
    diff = points[:, None, :] - points[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max())


def _distance_to_set(samples, points):
    return np.linalg.norm(samples[:, None, :] - points[None], axis=-1).min(1)


@pytest.fixture(scope="module")
def ddpm_run():
    cfg = TrainConfig(steps=20, batch=64, timesteps=50, device="cpu", warmup=5, report_every=10)
    return train_run(DATA, ModelConfig(width=16, depth=1), cfg, {})


@pytest.fixture(scope="module")
def ncsn_run():
    cfg = TrainConfig(steps=20, batch=64, levels=5, device="cpu", warmup=5, report_every=10)
    return train_run(DATA, ModelConfig(objective="ncsn", width=16, depth=1), cfg, {})


# ---------------------------------------------------------------------------------------------------------------
# 1. Samplers started at frame k


@pytest.mark.parametrize("start", [1, 4, 9])
def test_ddim_started_at_frame_k_reproduces_the_full_run(start):
    model = ExactNoisePredictor(STD_POINTS, SCHEDULE)
    full = sample_ddim(model, _x_T(), SCHEDULE, steps=10)
    part = sample_ddim(model, torch.from_numpy(full.frames[start].copy()), SCHEDULE, steps=10, start=start)
    assert part.frames.shape == full.frames.shape == (11, 20, 2)
    assert np.isnan(part.frames[:start]).all() and np.isnan(part.x0_hat[:start]).all()
    assert np.isfinite(part.frames[start:]).all() and np.isfinite(part.x0_hat[start:]).all()
    np.testing.assert_array_equal(part.frames[start], full.frames[start])
    np.testing.assert_array_equal(part.times, full.times)
    assert full.nfe == 10 and part.nfe == 10 - start
    np.testing.assert_allclose(part.frames[start:], full.frames[start:], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(part.x0_hat[start:], full.x0_hat[start:], atol=1e-5, rtol=1e-5)


def test_ddim_started_part_way_with_a_linear_model_matches_a_hand_computation():
    """ε̂ = 0.5 x: each DDIM step (η = 0) multiplies x by √ᾱ_prev/√ᾱ_t · (1 − 0.5√(1−ᾱ_t)) + 0.5√(1−ᾱ_prev)."""
    ts = [45, 40, 35, 30, 25, 20, 15, 10, 5, 0]
    x = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    traj = sample_ddim(lambda x, t: 0.5 * x, x, SCHEDULE, steps=10, start=6)
    abar = SCHEDULE.alphas_cumprod
    expected = x.numpy().astype(np.float64)
    for k in range(6, 10):
        a, a_prev = abar[ts[k]], abar[ts[k + 1]] if k + 1 < 10 else 1.0
        x0 = (expected - math.sqrt(1 - a) * 0.5 * expected) / math.sqrt(a)
        np.testing.assert_allclose(traj.x0_hat[k], x0, rtol=1e-5)
        expected = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * 0.5 * expected
        np.testing.assert_allclose(traj.frames[k + 1], expected, rtol=1e-5)


def test_ddpm_start_skips_frames_and_is_reproducible_by_seed():
    model = ExactNoisePredictor(STD_POINTS, SCHEDULE)
    full = sample_ddpm(model, _x_T(), SCHEDULE, generator=_gen(0))
    k = 30
    x_k = torch.from_numpy(full.frames[k].copy())
    a = sample_ddpm(model, x_k, SCHEDULE, generator=_gen(3), start=k)
    b = sample_ddpm(model, x_k, SCHEDULE, generator=_gen(3), start=k)
    c = sample_ddpm(model, x_k, SCHEDULE, generator=_gen(4), start=k)
    assert a.frames.shape == (51, 20, 2) and full.nfe == 50 and a.nfe == 50 - k
    np.testing.assert_array_equal(a.times, full.times)
    assert np.isnan(a.frames[:k]).all() and np.isnan(a.x0_hat[:k]).all() and np.isfinite(a.frames[k:]).all()
    np.testing.assert_array_equal(a.frames[k], full.frames[k])
    np.testing.assert_array_equal(a.frames[k:], b.frames[k:])
    assert not np.allclose(a.frames[k + 5], c.frames[k + 5])
    # the same x̂₀ at the start frame as the full run: the model saw the same point at the same t
    np.testing.assert_allclose(a.x0_hat[k], full.x0_hat[k], rtol=1e-5, atol=1e-5)
    # the exact denoiser still lands on the training points
    assert _distance_to_set(a.samples, STD_POINTS.numpy()).max() < 1e-2


def test_langevin_start_uses_the_points_unscaled_and_is_reproducible_by_seed():
    model = ExactScore(STD_POINTS)
    K = 3
    full = sample_langevin(model, _x_T(), LADDER, steps_per_level=K, step_size=1e-3, generator=_gen(0))
    np.testing.assert_allclose(full.frames[0], LADDER.sigmas[0] * _x_T().numpy(), rtol=1e-6)  # σ_1 · x_T
    k = 5
    x = _x_T(seed=9)
    a = sample_langevin(model, x, LADDER, steps_per_level=K, step_size=1e-3, generator=_gen(1), start=k)
    b = sample_langevin(model, x, LADDER, steps_per_level=K, step_size=1e-3, generator=_gen(1), start=k)
    c = sample_langevin(model, x, LADDER, steps_per_level=K, step_size=1e-3, generator=_gen(2), start=k)
    assert a.frames.shape == full.frames.shape == (4 * K + 2, 20, 2)
    np.testing.assert_array_equal(a.frames[k], x.numpy())  # not scaled by σ_1
    assert np.isnan(a.frames[:k]).all() and np.isnan(a.x0_hat[:k]).all() and np.isfinite(a.frames[k:]).all()
    np.testing.assert_array_equal(a.times, full.times)
    assert full.nfe == 4 * K + 1 and a.nfe == full.nfe - k and a.nfe == a.steps - k
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.allclose(a.frames[k + 2], c.frames[k + 2])
    # x̂₀ at the start frame is the Tweedie estimate at that frame's σ
    sigma = float(a.times[k])
    tweedie = x.numpy() + sigma**2 * _mixture_score(x.numpy(), STD_POINTS.numpy(), sigma)
    np.testing.assert_allclose(a.x0_hat[k], tweedie, rtol=1e-4, atol=1e-5)


def test_langevin_without_denoise_counts_its_evaluations_the_same_way():
    full = sample_langevin(ExactScore(STD_POINTS), _x_T(), LADDER, steps_per_level=2, denoise=False)
    part = sample_langevin(ExactScore(STD_POINTS), _x_T(), LADDER, steps_per_level=2, denoise=False, start=3)
    assert full.frames.shape == (9, 20, 2) and full.nfe == 9 and part.nfe == 9 - 3


def _run_sampler(name, x, start, **kw):
    if name == "ddpm":
        return sample_ddpm(ExactNoisePredictor(STD_POINTS, SCHEDULE), x, SCHEDULE, start=start, **kw)
    if name == "ddim":
        return sample_ddim(ExactNoisePredictor(STD_POINTS, SCHEDULE), x, SCHEDULE, steps=10, start=start, **kw)
    if name == "langevin":
        return sample_langevin(ExactScore(STD_POINTS), x, LADDER, steps_per_level=3, start=start, **kw)
    return sample_langevin(ExactScore(STD_POINTS), x, LADDER, steps_per_level=3, denoise=False, start=start, **kw)


FRAMES = {"ddpm": 51, "ddim": 11, "langevin": 14, "langevin_nodenoise": 13}


@pytest.mark.parametrize("name", list(FRAMES))
def test_start_out_of_range_is_a_config_error(name):
    n = FRAMES[name]
    for bad in (-1, n - 1, n, 1000):
        with pytest.raises(ConfigError):
            _run_sampler(name, _x_T(), bad)
    last = _run_sampler(name, _x_T(), n - 2)  # the last valid start: one step left
    assert last.frames.shape[0] == n and np.isnan(last.frames[: n - 2]).all()
    np.testing.assert_array_equal(last.frames[n - 2], _x_T().numpy())


@pytest.mark.parametrize("name", list(FRAMES))
@pytest.mark.parametrize("start", [0, 2, 7])
def test_callback_skips_the_frames_before_start(name, start):
    seen = []
    traj = _run_sampler(name, _x_T(), start, callback=lambda info: seen.append((info.i, info.total)))
    n = FRAMES[name]
    assert [i for i, _ in seen] == list(range(start + 1, n))
    assert all(total == n - 1 == traj.steps for _, total in seen)


def test_callback_can_cancel_a_started_run():
    with pytest.raises(Cancelled):
        _run_sampler("ddim", _x_T(), 3, callback=lambda info: info.i == 5)


# ---------------------------------------------------------------------------------------------------------------
# 2. Langevin frame bookkeeping


@pytest.mark.parametrize("denoise", [True, False])
def test_langevin_times_by_hand_and_against_a_trajectory(denoise):
    ladder = SigmaLadder(np.array([2.0, 1.0, 0.5]))
    times = langevin_times(ladder, 2, denoise)
    expected = [2.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.5] + ([0.0] if denoise else [])
    np.testing.assert_array_equal(times, expected)
    assert len(times) == 3 * 2 + (2 if denoise else 1)
    traj = sample_langevin(ExactScore(STD_POINTS), _x_T(), ladder, steps_per_level=2, denoise=denoise)
    np.testing.assert_allclose(traj.times, times, rtol=1e-7)
    for K in (1, 4):
        geo = langevin_times(LADDER, K, denoise)
        traj = sample_langevin(ExactScore(STD_POINTS), _x_T(), LADDER, steps_per_level=K, denoise=denoise)
        assert len(geo) == LADDER.L * K + (2 if denoise else 1)
        np.testing.assert_allclose(traj.times, geo, rtol=1e-6)


def test_langevin_frame_by_hand():
    ladder = SigmaLadder(np.array([2.0, 1.0, 0.5]))
    eps = 0.1
    cases = {
        0: (0, 0, 2.0, 0.1 * 16),
        2: (0, 2, 2.0, 1.6),
        3: (1, 0, 1.0, 0.1 * 4),
        5: (1, 2, 1.0, 0.4),
        6: (2, 0, 0.5, 0.1),
        8: (2, 2, 0.5, 0.1),
        9: (2, 3, 0.5, 0.1),  # the frame the last step lands on: last level, inner == K
        10: (2, 3, 0.5, 0.1),  # the denoised frame
    }
    for k, (level, inner, sigma, alpha) in cases.items():
        f = langevin_frame(ladder, 3, eps, k)
        assert (f.level, f.inner) == (level, inner), k
        assert f.sigma == pytest.approx(sigma) and f.step_size == pytest.approx(alpha, rel=1e-12), k
    times = langevin_times(ladder, 3)
    for k in range(len(times) - 1):
        assert langevin_frame(ladder, 3, eps, k).sigma == times[k]


def test_sample_langevin_steps_with_the_step_sizes_of_langevin_frame():
    """Replay the sampler by hand with the same generator: x ← x + α/2 · s(x, σ) + √α z, s(x, σ) = −x/(1 + σ²)."""
    K, eps = 2, 0.01
    score = lambda x, sigma: -x / (1 + sigma**2)  # noqa: E731
    x_T = _x_T(5)
    traj = sample_langevin(score, x_T, LADDER, steps_per_level=K, step_size=eps, generator=_gen(11))
    g = _gen(11)
    x = (LADDER.sigmas[0] * x_T.double()).clone()
    for k in range(LADDER.L * K):
        frame = langevin_frame(LADDER, K, eps, k)
        assert frame.step_size == pytest.approx(eps * (LADDER.sigmas[frame.level] / LADDER.sigmas[-1]) ** 2)
        z = torch.randn(x.shape, generator=g).double()
        x = x + frame.step_size / 2 * score(x, frame.sigma) + frame.step_size**0.5 * z
        np.testing.assert_allclose(traj.frames[k + 1], x.numpy(), rtol=1e-4, atol=1e-5)
    sigma_L = LADDER.sigmas[-1]
    np.testing.assert_allclose(traj.samples, (x + sigma_L**2 * score(x, sigma_L)).numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# 3. SamplingModel.exact_of


@pytest.mark.parametrize("objective", ["ddpm", "ncsn"])
def test_exact_of_fits_the_normaliser_and_the_ladder(objective):
    m = SamplingModel.exact_of(DATA, objective, SCHEDULE)
    assert m.exact and m.objective == objective and m.schedule is SCHEDULE
    mean = DATA.mean(0)
    scale = math.sqrt(((DATA - mean) ** 2).mean())
    assert m.normaliser.mean == pytest.approx(tuple(mean)) and m.normaliser.scale == pytest.approx(scale)
    std = (DATA - mean) / scale
    assert m.ladder.sigmas[0] == pytest.approx(_diameter(std), rel=1e-3)
    assert m.ladder.sigmas[0] != pytest.approx(_diameter(DATA), rel=1e-2)  # the standardised, not the raw one
    assert isinstance(m.model, ExactNoisePredictor if objective == "ddpm" else ExactScore)
    np.testing.assert_allclose(m.model.points.numpy(), std, rtol=1e-6, atol=1e-6)


def test_exact_ddim_samples_land_on_the_training_points_in_data_coordinates():
    m = SamplingModel.exact_of(DATA, "ddpm", SCHEDULE)
    x_T = _x_T(60)
    traj = m.sample("ddim", x_T, steps=25)
    np.testing.assert_allclose(traj.frames[0], m.normaliser.to_data(x_T.numpy()), rtol=1e-6)
    np.testing.assert_allclose(traj.frames[0], x_T.numpy() * m.normaliser.scale + DATA.mean(0), rtol=1e-5)
    assert _distance_to_set(traj.samples, DATA).max() < 1e-2
    assert len(np.unique(traj.samples.round(2), axis=0)) > 1
    np.testing.assert_allclose(traj.x0_hat[-1], traj.samples)


def test_exact_langevin_samples_land_on_the_training_points_in_data_coordinates():
    m = SamplingModel.exact_of(DATA, "ncsn", SCHEDULE)
    traj = m.sample("langevin", _x_T(40), steps_per_level=30, generator=_gen(0))
    np.testing.assert_allclose(traj.frames[0], m.normaliser.to_data(m.ladder.sigmas[0] * _x_T(40).numpy()), rtol=1e-5)
    assert _distance_to_set(traj.samples, DATA).max() < 0.05
    with pytest.raises(ConfigError):
        m.sample("ddim", _x_T(5))


# ---------------------------------------------------------------------------------------------------------------
# 4. pipeline: sampling_model, sample_request, probe_trajectory


def test_sampling_model_without_a_run_is_exact():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    assert m.exact and m.schedule is SCHEDULE and isinstance(m.model, ExactNoisePredictor)
    assert sampling_model(None, DATA, "ddpm").schedule.T == 1000
    n = sampling_model(None, DATA, "ncsn", exact=True, schedule=SCHEDULE)
    assert n.exact and isinstance(n.model, ExactScore)


def test_sampling_model_of_a_trained_run(ddpm_run):
    m = sampling_model(ddpm_run, DATA, "ddpm")
    assert not m.exact and m.model.net is ddpm_run.ema and m.schedule is ddpm_run.schedule  # seen as ε (v default)
    assert m.normaliser == ddpm_run.normaliser
    with pytest.raises(ConfigError):
        sampling_model(ddpm_run, DATA, "ncsn")
    e = sampling_model(ddpm_run, DATA, "ddpm", exact=True, schedule=Schedule.make("linear", 20))
    assert e.exact and e.schedule is ddpm_run.schedule and e.normaliser == ddpm_run.normaliser
    assert isinstance(e.model, ExactNoisePredictor)


def test_sample_request_is_reproducible_by_seed():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    a = sample_request(m, R("ddim", {"steps": 10}, n=30, seed=1))
    b = sample_request(m, R("ddim", {"steps": 10}, n=30, seed=1))
    c = sample_request(m, R("ddim", {"steps": 10}, n=30, seed=2))
    assert a.frames.shape == (11, 30, 2) and a.nfe == 10
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.allclose(a.frames[0], c.frames[0])
    g = torch.Generator().manual_seed(1)
    np.testing.assert_allclose(a.frames[0], m.normaliser.to_data(torch.randn(30, 2, generator=g).numpy()), rtol=1e-6)
    d1 = sample_request(m, R("ddpm", n=10, seed=5))
    d2 = sample_request(m, R("ddpm", n=10, seed=5))
    assert d1.frames.shape == (51, 10, 2)
    np.testing.assert_array_equal(d1.frames, d2.frames)


R = SampleRequest
PROBES = np.array([[6.0, 0.0], [4.0, -1.0], [9.0, 2.0]])


@pytest.mark.parametrize(
    ("objective", "sampler", "params", "start"),
    [
        ("ddpm", "ddim", {"steps": 10}, 4),
        ("ddpm", "ddpm", {}, 20),
        ("ncsn", "langevin", {"steps_per_level": 3}, 5),
        ("ncsn", "langevin", {"steps_per_level": 3, "denoise": False}, 11),
    ],
)
def test_probe_trajectory_places_the_particles_at_frame_start(objective, sampler, params, start):
    m = sampling_model(None, DATA, objective, schedule=SCHEDULE)
    traj = probe_trajectory(m, R(sampler, params), PROBES, start=start, seed=3)
    again = probe_trajectory(m, R(sampler, params), PROBES, start=start, seed=3)
    full = sample_request(m, R(sampler, params, n=4))
    assert traj.frames.shape == (full.frames.shape[0], 3, 2)
    np.testing.assert_allclose(traj.frames[start], PROBES, atol=1e-5)
    assert np.isnan(traj.frames[:start]).all() and np.isnan(traj.x0_hat[:start]).all()
    assert np.isfinite(traj.frames[start:]).all()
    np.testing.assert_array_equal(traj.times, full.times)
    np.testing.assert_array_equal(traj.frames, again.frames)


def test_probe_of_a_ddim_frame_continues_the_reverse_trajectory():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    full = sample_request(m, R("ddim", {"steps": 10}, n=8))
    probe = probe_trajectory(m, R("ddim", {"steps": 10}), full.frames[6], start=6)
    np.testing.assert_allclose(probe.frames[6:], full.frames[6:], atol=1e-4)


def test_probe_trajectory_at_frame_0_places_langevin_particles_at_the_positions():
    m = sampling_model(None, DATA, "ncsn", schedule=SCHEDULE)
    traj = probe_trajectory(m, R("langevin", {"steps_per_level": 3}), PROBES, start=0)
    np.testing.assert_allclose(traj.frames[0], PROBES, atol=1e-5)


def test_probe_trajectory_at_frame_0_places_ddim_particles_at_the_positions():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    traj = probe_trajectory(m, R("ddim", {"steps": 10}), PROBES, start=0)
    np.testing.assert_allclose(traj.frames[0], PROBES, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# 5. Score-field series


def test_padded_extent_by_hand():
    pts = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 0.5]])
    assert padded_extent(pts, 0.5) == pytest.approx((-1.0, 3.0, -1.0, 2.0))
    assert padded_extent(pts) == pytest.approx((-0.6, 2.6, -0.6, 1.6))
    assert padded_extent(pts, 0.0) == pytest.approx((0.0, 2.0, 0.0, 1.0))


def test_field_times():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    np.testing.assert_array_equal(field_times(m, 5), [49, 37, 24, 12, 0])
    for frames in (2, 7, 50):
        t = field_times(m, frames)
        assert len(t) == frames and t[0] == 49 and t[-1] == 0 and (np.diff(t) < 0).all()
    np.testing.assert_array_equal(field_times(m, 500), np.arange(49, -1, -1))  # at most T frames
    n = sampling_model(None, DATA, "ncsn", schedule=SCHEDULE)
    np.testing.assert_array_equal(field_times(n, 3), n.ladder.sigmas)


EXTENT = (2.0, 10.0, -5.0, 3.0)


def _check_exact_series(series, m, objective):
    x0 = m.normaliser.to_std(DATA)
    grid = _grid(series.xs, series.ys)
    grid_std = (grid - np.array(m.normaliser.mean)) / m.normaliser.scale
    for k, level in enumerate(series.times):
        if objective == "ddpm":
            abar = SCHEDULE.alphas_cumprod[int(level)]
            centres, s = math.sqrt(abar) * x0, math.sqrt(1 - abar)
        else:
            centres, s = x0, float(level)
        expected = _mixture_score(grid_std, centres, s) / m.normaliser.scale
        got = series.exact[k].reshape(-1, 2)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=f"frame {k}")


@pytest.mark.parametrize("objective", ["ddpm", "ncsn"])
def test_exact_field_series_matches_numpy(objective):
    m = sampling_model(None, DATA, objective, schedule=SCHEDULE)
    series = field_series(m, DATA, EXTENT, resolution=7, frames=6)
    F = 6 if objective == "ddpm" else m.ladder.L
    assert series.exact.shape == (F, 7, 7, 2) and series.noised.shape == (F, len(DATA), 2)
    assert series.learned is None and series.shown is series.exact
    np.testing.assert_allclose(series.xs, np.linspace(2, 10, 7))
    np.testing.assert_allclose(series.ys, np.linspace(-5, 3, 7))
    np.testing.assert_array_equal(series.times, field_times(m, 6))
    for k in range(F):
        np.testing.assert_array_equal(series.relative_error(k), np.zeros((7, 7)))
    _check_exact_series(series, m, objective)


@pytest.mark.parametrize("objective", ["ddpm", "ncsn"])
def test_noised_points_share_one_eps_across_frames(objective):
    m = sampling_model(None, DATA, objective, schedule=SCHEDULE)
    series = field_series(m, DATA, EXTENT, resolution=3, frames=5, max_noised=4)
    assert series.noised.shape == (len(series.times), 4, 2)
    x0 = m.normaliser.to_std(DATA[:4])
    eps = []
    for k in (0, 2, len(series.times) - 1):
        x = m.normaliser.to_std(series.noised[k])
        if objective == "ddpm":
            abar = SCHEDULE.alphas_cumprod[int(series.times[k])]
            eps.append((x - math.sqrt(abar) * x0) / math.sqrt(1 - abar))
        else:
            eps.append((x - x0) / series.times[k])
    np.testing.assert_allclose(eps[1], eps[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(eps[2], eps[0], rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(eps[0], np.random.default_rng(NOISE_SEED).standard_normal((4, 2)), rtol=1e-9)


def test_field_series_of_a_trained_ddpm_run(ddpm_run):
    m = sampling_model(ddpm_run, DATA, "ddpm")
    series = field_series(m, DATA, EXTENT, resolution=5, frames=4)
    assert series.learned is not None and series.learned.shape == series.exact.shape == (4, 5, 5, 2)
    assert series.shown is series.learned
    grid_std = m.normaliser.to_std(_grid(series.xs, series.ys))
    for k, t in enumerate(series.times):
        abar = ddpm_run.schedule.alphas_cumprod[int(t)]
        with torch.no_grad():
            eps = m.model(torch.tensor(grid_std, dtype=torch.float32), int(t)).numpy().astype(np.float64)
        learned = -eps / math.sqrt(1 - abar) / m.normaliser.scale
        np.testing.assert_allclose(series.learned[k].reshape(-1, 2), learned, rtol=1e-4, atol=1e-6)
        err = np.linalg.norm(series.learned[k] - series.exact[k], axis=-1) / np.linalg.norm(series.exact[k], axis=-1)
        np.testing.assert_allclose(series.relative_error(k), err, rtol=1e-10)
        assert (series.relative_error(k) > 0).all()
    exact = sampling_model(ddpm_run, DATA, "ddpm", exact=True)
    _check_exact_series(series, exact, "ddpm")


def test_field_series_of_a_trained_ncsn_run(ncsn_run):
    m = sampling_model(ncsn_run, DATA, "ncsn")
    series = field_series(m, DATA, EXTENT, resolution=4)
    assert series.learned.shape == series.exact.shape == (5, 4, 4, 2)
    np.testing.assert_array_equal(series.times, ncsn_run.ladder.sigmas)
    grid_std = m.normaliser.to_std(_grid(series.xs, series.ys))
    x0 = m.normaliser.to_std(DATA)
    for k, sigma in enumerate(series.times):
        with torch.no_grad():
            s = ncsn_run.ema(torch.tensor(grid_std, dtype=torch.float32), float(sigma)).numpy().astype(np.float64)
        np.testing.assert_allclose(series.learned[k].reshape(-1, 2), s / m.normaliser.scale, rtol=1e-4, atol=1e-6)
        expected = _mixture_score(grid_std, x0, sigma) / m.normaliser.scale
        np.testing.assert_allclose(
            series.exact[k].reshape(-1, 2), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max()
        )


def test_field_series_cancels_after_the_first_frame():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    asked = []

    def cancel(k, total):
        asked.append((k, total))
        return True

    with pytest.raises(Cancelled):
        field_series(m, DATA, EXTENT, resolution=3, frames=5, cancelled=cancel)
    assert asked == [(1, 5)]
    asked.clear()
    field_series(m, DATA, EXTENT, resolution=3, frames=5, cancelled=lambda k, total: asked.append((k, total)))
    assert asked == [(k, 5) for k in range(1, 6)]


# ---------------------------------------------------------------------------------------------------------------
# 6. Scores recovered from a trajectory


def test_trajectory_scores_of_an_exact_ddim_run_are_the_exact_scores():
    m = sampling_model(None, DATA, "ddpm", schedule=SCHEDULE)
    traj = sample_request(m, R("ddim", {"steps": 10}, n=20))
    scores = trajectory_scores(traj, m)
    assert scores.shape == traj.frames.shape
    assert np.isnan(scores[-1]).all() and np.isfinite(scores[:-1]).all()
    x0 = m.normaliser.to_std(DATA)
    for k, t in enumerate(traj.times[:-1]):
        abar = SCHEDULE.alphas_cumprod[int(t)]
        x = m.normaliser.to_std(traj.frames[k].astype(np.float64))
        expected = _mixture_score(x, math.sqrt(abar) * x0, math.sqrt(1 - abar)) / m.normaliser.scale
        tol = 1e-3 * np.abs(expected).max()
        np.testing.assert_allclose(scores[k], expected, rtol=1e-3, atol=tol, err_msg=f"frame {k}, t={t}")


@pytest.mark.parametrize("denoise", [True, False])
def test_trajectory_scores_of_an_exact_langevin_run_are_the_exact_ncsn_scores(denoise):
    m = sampling_model(None, DATA, "ncsn", schedule=SCHEDULE)
    traj = sample_request(m, R("langevin", {"steps_per_level": 2, "denoise": denoise}, n=20))
    scores = trajectory_scores(traj, m)
    if denoise:
        assert traj.times[-1] == 0 and np.isnan(scores[-1]).all() and np.isfinite(scores[:-1]).all()
    else:
        assert np.isfinite(scores).all()
    x0 = m.normaliser.to_std(DATA)
    for k, sigma in enumerate(traj.times):
        if sigma == 0:
            continue
        x = m.normaliser.to_std(traj.frames[k].astype(np.float64))
        expected = _mixture_score(x, x0, float(sigma)) / m.normaliser.scale
        tol = 2e-3 * np.abs(expected).max()
        np.testing.assert_allclose(scores[k], expected, rtol=2e-3, atol=tol, err_msg=f"frame {k}, σ={sigma}")


# ---------------------------------------------------------------------------------------------------------------
# 7. Density grid


def test_density_grid_layout_and_mass():
    extent = (0.0, 4.0, 0.0, 2.0)
    cell = 4.0 * 2.0 / 16
    pts = np.array([[3.9, 1.9], [0.1, 1.9], [0.1, 1.8], [1.5, 0.2], [5.0, 1.0], [-1.0, -1.0]])
    grid = density_grid(pts, extent, bins=4)
    assert grid.shape == (4, 4)
    assert grid[-1, -1] == pytest.approx(1 / cell)  # top-right cell: last row (y), last column (x)
    assert grid[-1, 0] == pytest.approx(2 / cell)  # top-left: high y, low x
    assert grid[0, 1] == pytest.approx(1 / cell)  # bottom row, second column
    assert np.count_nonzero(grid) == 3
    # points per unit area: integrates to the number of points inside the extent (4 of 6)
    assert grid.sum() * cell == pytest.approx(4)
    many = np.random.default_rng(0).normal(2.0, 1.0, (50, 2))
    inside = ((many[:, 0] >= 0) & (many[:, 0] <= 4) & (many[:, 1] >= 0) & (many[:, 1] <= 2)).sum()
    assert density_grid(many, extent, bins=8).sum() * (8 / 64) == pytest.approx(inside)
