"""Score fields: exact ones against finite differences of log p in data coordinates; learned ones approach them."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.datasets import Normaliser, make_dataset
from diffvis.core.exact import ExactNoisePredictor, ExactScore
from diffvis.core.fields import ddpm_score, ncsn_score, score_field
from diffvis.core.models import ModelConfig
from diffvis.core.parametrization import as_eps_model
from diffvis.core.pipeline import make_trainer
from diffvis.core.schedules import Schedule
from diffvis.core.training import TrainConfig

DATA = np.array([[2.0, 1.0], [4.0, 1.5], [3.0, 3.0]])
NORM = Normaliser.fit(DATA)
EXTENT = (0.0, 6.0, -1.0, 4.0)


def _log_p_data(x, centres_data, s_data):
    """log of mean_i N(x; c_i, s² I) in data coordinates, computed directly."""
    d2 = ((x[:, None, :] - centres_data[None]) ** 2).sum(-1)
    return np.log(np.exp(-d2 / (2 * s_data**2)).mean(1)) - math.log(2 * math.pi * s_data**2)


def _finite_difference(f, points, h=1e-5):
    return np.stack([(f(points + h * e) - f(points - h * e)) / (2 * h) for e in np.eye(2)], axis=1)


def test_exact_ncsn_field_is_the_gradient_of_log_p_in_data_coordinates():
    sigma = 0.4  # standardised units; in data units the mixture has s = σ·c around the data points
    field = score_field(ncsn_score(ExactScore(NORM.to_std(DATA)), sigma), NORM, EXTENT, resolution=9)
    fd = _finite_difference(lambda x: _log_p_data(x, DATA, sigma * NORM.scale), field.points)
    np.testing.assert_allclose(field.vectors.reshape(-1, 2), fd, rtol=1e-3, atol=1e-4)


def test_exact_ddpm_field_is_the_gradient_of_log_q_t_and_matches_the_exact_denoiser():
    schedule = Schedule.make("linear", 1000)
    t = 150
    abar = schedule.alphas_cumprod[t]
    std_points = torch.tensor(NORM.to_std(DATA), dtype=torch.float32)
    field = score_field(ddpm_score(ExactNoisePredictor(std_points, schedule), schedule, t), NORM, EXTENT, resolution=9)
    # q_t in data coordinates: centres m + c·√ᾱ·x0_std, spread c·√(1 − ᾱ)
    centres = NORM.to_data(math.sqrt(abar) * NORM.to_std(DATA))
    fd = _finite_difference(lambda x: _log_p_data(x, centres, NORM.scale * math.sqrt(1 - abar)), field.points)
    np.testing.assert_allclose(field.vectors.reshape(-1, 2), fd, rtol=1e-3, atol=1e-3)
    via_eps = score_field(ddpm_score(ExactNoisePredictor(std_points, schedule), schedule, t), NORM, EXTENT, 9)
    np.testing.assert_allclose(via_eps.vectors, field.vectors, rtol=1e-4, atol=1e-4)


def test_field_grid_layout():
    field = score_field(lambda x: x * 0 + torch.tensor([1.0, 0.0]), NORM, EXTENT, resolution=5)
    assert field.xs[[0, -1]] == pytest.approx([0, 6]) and field.ys[[0, -1]] == pytest.approx([-1, 4])
    assert field.vectors.shape == (5, 5, 2)
    np.testing.assert_allclose(field.vectors[..., 0], 1 / NORM.scale)
    np.testing.assert_allclose(field.points[6], [field.xs[1], field.ys[1]])


@pytest.mark.parametrize("objective", ["ddpm", "ncsn"])
def test_learned_field_approaches_the_exact_one_at_high_noise(objective):
    """Where the noise dominates, p is nearly Gaussian and a briefly trained network already gets the field."""
    data = make_dataset("moons", 3000, seed=0).points
    cfg = TrainConfig(steps=600, batch=512, device="cpu")
    trainer, norm = make_trainer(data, ModelConfig(objective=objective, width=32), cfg)
    trainer.run()
    model, std_points = trainer.ema_model(), torch.tensor(norm.to_std(data), dtype=torch.float32)
    if objective == "ddpm":
        model = as_eps_model(model, trainer.schedule, trainer.model_config.prediction)  # the default predicts v
        exact_model = ExactNoisePredictor(std_points, trainer.schedule)
        learned, exact = ddpm_score(model, trainer.schedule, 700), ddpm_score(exact_model, trainer.schedule, 700)
    else:
        sigma = float(trainer.ladder.sigmas[1])
        learned, exact = ncsn_score(model, sigma), ncsn_score(ExactScore(std_points), sigma)
    extent = (-1.5, 2.5, -1.0, 1.5)
    a, b = score_field(learned, norm, extent, 12).vectors, score_field(exact, norm, extent, 12).vectors
    cosine = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert np.median(cosine) > 0.95
    assert np.median(np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)) < 0.3


def test_a_flow_models_field_is_its_velocity_in_data_coordinates_and_its_probes_recover_the_score():
    """dx/dt = c · v_std for x = m + c x_std; the noised points at time t are (1 − t) ε + t x₀; a trajectory's
    score at time t, from its x̂₁, is the exact marginal score ∇ log mean_i N(x; t x0_i, (1 − t)² I)."""
    from diffvis.core.exact import ExactVelocity
    from diffvis.core.fields import field_series, padded_extent, trajectory_scores
    from diffvis.core.pipeline import sample_request, sampling_model
    from diffvis.core.request import SampleRequest

    data = make_dataset("moons", 300, seed=0)
    model = sampling_model(None, data.points, "flow")  # unlabelled: the exact model of every point
    series = field_series(model, data.points, padded_extent(data.points), resolution=8, frames=5)
    np.testing.assert_allclose(series.times, [0, 0.2, 0.4, 0.6, 0.8])
    norm = model.normaliser
    std = torch.as_tensor(norm.to_std(data.points), dtype=torch.float32)
    grid = torch.as_tensor(norm.to_std(series.points), dtype=torch.float32)
    for k, t in enumerate(series.times):
        expected = ExactVelocity(std)(grid, float(t)).double().numpy() * norm.scale
        np.testing.assert_allclose(series.exact[k].reshape(-1, 2), expected, rtol=1e-5, atol=1e-6)
    eps = norm.to_std(series.noised[0].astype(np.float64))  # at t = 0 the noised points are the noise itself
    np.testing.assert_allclose(norm.to_std(series.noised[2].astype(np.float64)),
                               0.6 * eps + 0.4 * norm.to_std(data.points), atol=1e-5)  # fmt: skip
    traj = sample_request(model, SampleRequest("euler", {"steps": 4}, n=30, objective="flow"))
    scores = trajectory_scores(traj, model)
    k, t = 2, float(traj.times[2])
    x = torch.as_tensor(norm.to_std(traj.frames[k].astype(np.float64)))
    exact = ExactVelocity(std).score(x, t, 1 - t, None).numpy() / norm.scale
    np.testing.assert_allclose(scores[k], exact, rtol=1e-3, atol=1e-4)
    assert np.isnan(scores[-1]).all()  # t = 1: the clean frame
