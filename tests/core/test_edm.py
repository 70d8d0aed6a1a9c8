"""EDM: Table 1's preconditionings convert into each other exactly; the EDM sampler is Algorithm 2 (checked
against an independent loop written from the paper); v- and x₀-predicting DDPM networks are seen as ε-predictors;
EDM networks train and sample through every solver of their ODE."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.edm import SIGMA_MAX, SIGMA_MIN, edm_ladder, sample_edm
from diffvis.core.exact import ExactNoisePredictor, ExactScore
from diffvis.core.models import ModelConfig, build_model
from diffvis.core.ode import sample_heun
from diffvis.core.parametrization import (
    PRECONDITIONINGS,
    EpsilonView,
    ddpm_target,
    edm_preconditioning,
    edm_weight,
    eps_coefficients,
    eps_from_denoised,
    score_from_denoised,
)
from diffvis.core.pipeline import make_trainer
from diffvis.core.run import Run, SamplingModel
from diffvis.core.schedules import Schedule, karras_sigmas
from diffvis.core.training import TrainConfig

SCHEDULE = Schedule.make("linear", 1000)


def random_case(seed: int = 0, n: int = 64):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    n_ = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return y, n_


@pytest.mark.parametrize("sigma", [0.01, 0.3, 1.0, 7.0, 150.0])
def test_table_1_rows_reproduce_each_others_conversions(sigma):
    """From one clean point y and noise n at level σ: each row's training target F, read back through its own
    (c_skip, c_out), is the denoiser D = y; the ε-row's F is n, the score-row's F is σ ∇ log p = −n (for D = y), the
    v-row's F is the DDPM v = √ᾱ ε − √(1 − ᾱ) x₀ computed in DDPM variables, the x₀-row's F is y."""
    y, n = random_case()
    x = y + sigma * n
    abar = 1 / (1 + sigma**2)
    for pre in [*PRECONDITIONINGS.values(), edm_preconditioning(0.7)]:
        f = pre.target(x, sigma, y)
        torch.testing.assert_close(pre.denoise(x, sigma, f), y, rtol=1e-12, atol=1e-12 * (1 + sigma))
    torch.testing.assert_close(PRECONDITIONINGS["eps"].target(x, sigma, y), n, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(PRECONDITIONINGS["x0"].target(x, sigma, y), y, rtol=1e-12, atol=1e-12)
    v = ddpm_target("v", y, n, torch.tensor(abar, dtype=torch.float64))
    torch.testing.assert_close(PRECONDITIONINGS["v"].target(x, sigma, y), v, rtol=1e-10, atol=1e-10)
    score = score_from_denoised(x, y, sigma)
    torch.testing.assert_close(score, -n / sigma, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(PRECONDITIONINGS["score"].target(x, sigma, y), sigma * score, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(eps_from_denoised(x, y, sigma), n, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_eps_coefficients_turn_each_prediction_into_the_true_noise(prediction):
    y, n = random_case(1)
    for t in (0, 10, 500, 999):
        abar = float(SCHEDULE.alphas_cumprod[t])
        x_t = abar**0.5 * y + (1 - abar) ** 0.5 * n
        f = ddpm_target(prediction, y, n, torch.tensor(abar, dtype=torch.float64))
        a, b = eps_coefficients(prediction, abar)
        torch.testing.assert_close(a * x_t + b * f, n, rtol=1e-9, atol=1e-9)


def test_edm_weight_is_one_over_c_out_squared():
    pre = edm_preconditioning(0.5)
    for sigma in (0.002, 0.5, 80.0):
        assert edm_weight(sigma, 0.5) == pytest.approx(1 / pre.c_out(sigma) ** 2, rel=1e-12)


def test_a_v_network_seen_through_the_epsilon_view_is_the_exact_noise_predictor():
    """A 'network' that predicts the exact v (from the exact ε-model) becomes the exact ε again, at whole and
    fractional timesteps."""
    points = make_dataset("moons", 300, seed=0).points
    exact = ExactNoisePredictor(points, SCHEDULE)

    class ExactV(torch.nn.Module):
        def forward(self, x, t, label=None):
            abar = SCHEDULE.abar_at(float(t))
            eps = exact(x, t)
            x0 = (x - (1 - abar) ** 0.5 * eps) / abar**0.5
            return ddpm_target("v", x0, eps, torch.tensor(abar))

    view = EpsilonView(ExactV(), SCHEDULE, "v")
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(3))
    for t in (3, 250, 777.5, 999):
        torch.testing.assert_close(view(x, t), exact(x, t), rtol=1e-4, atol=1e-4)


def algorithm_2(denoise, x_T, sigmas, s_churn, s_tmin, s_tmax, s_noise, generator):
    """Karras et al. 2022, Algorithm 2, line by line, in float64 (written from the paper, independently of the
    sampler under test)."""
    n = len(sigmas) - 1
    x = x_T.double() * sigmas[0]
    for i in range(n):
        t, t_next = sigmas[i], sigmas[i + 1]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= t <= s_tmax else 0.0
        eps = torch.randn(x.shape, generator=generator).double() * s_noise if gamma > 0 else 0.0
        t_hat = t + gamma * t
        x_hat = x + math.sqrt(t_hat**2 - t**2) * eps
        d = (x_hat - denoise(x_hat, t_hat)) / t_hat
        x = x_hat + (t_next - t_hat) * d
        if t_next != 0:
            d_prime = (x - denoise(x, t_next)) / t_next
            x = x_hat + (t_next - t_hat) * (0.5 * d + 0.5 * d_prime)
    return x


def exact_denoiser(points):
    score = ExactScore(points)
    return score, lambda x, sigma: x + sigma**2 * score(x.float(), sigma).double()


def test_edm_sampler_without_churn_is_algorithm_2_with_the_exact_denoiser():
    score, denoise = exact_denoiser(make_dataset("spirals", 400, seed=1).points / 5)
    ladder = edm_ladder(10)
    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    traj = sample_edm(score, x_T, ladder, steps=18)
    sigmas = [*karras_sigmas(SIGMA_MAX, SIGMA_MIN, 18), 0.0]
    ref = algorithm_2(denoise, x_T, sigmas, 0.0, 0.0, math.inf, 1.0, None)
    np.testing.assert_allclose(traj.samples, ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(traj.times, np.float32(sigmas))
    assert traj.nfe == 2 * 18 - 1 and traj.levels == "sigma"


def test_heun_on_an_edm_ladder_is_the_deterministic_edm_sampler():
    score, _ = exact_denoiser(make_dataset("moons", 300, seed=2).points)
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    a = sample_edm(score, x_T, edm_ladder(10), steps=12).samples
    b = sample_heun(score, x_T, edm_ladder(10), steps=12).samples
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_churn_matches_the_papers_loop_in_distribution():
    """With churn on, the sampler and the independent loop draw different noise; over 4,000 samples from the exact
    denoiser of a Gaussian-like set their means and covariances agree to sampling error, and the churn moved the
    samples (they differ from the deterministic ones)."""
    points = make_dataset("gmm8", 2000, seed=3).points / 3
    score, denoise = exact_denoiser(points)
    x_T = torch.randn(4000, 2, generator=torch.Generator().manual_seed(5))
    churn = {"s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003}
    ours = sample_edm(score, x_T, edm_ladder(10), steps=18, generator=torch.Generator().manual_seed(6), **churn)
    sigmas = [*karras_sigmas(SIGMA_MAX, SIGMA_MIN, 18), 0.0]
    ref = algorithm_2(denoise, x_T, sigmas, *churn.values(), torch.Generator().manual_seed(7)).numpy()
    plain = sample_edm(score, x_T, edm_ladder(10), steps=18).samples
    se = points.std(0) / np.sqrt(len(x_T))
    assert np.all(np.abs(ours.samples.mean(0) - ref.mean(0)) < 5 * se)
    np.testing.assert_allclose(np.cov(ours.samples.T), np.cov(ref.T), atol=0.05)
    assert np.abs(ours.samples - plain).mean() > 0.05


def test_an_edm_network_returns_the_score_of_its_denoiser_without_cancellation():
    net = build_model(ModelConfig(objective="edm", sigma_data=0.8)).double()
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pre = edm_preconditioning(0.8)
    for sigma in (0.002, 0.1, 3.0, 80.0):
        f = net.raw(x, sigma)
        d = pre.denoise(x, sigma, f)
        torch.testing.assert_close(net(x, sigma), score_from_denoised(x, d, sigma), rtol=1e-6, atol=1e-9)


def test_edm_trains_and_every_solver_of_its_ode_samples_it():
    data = make_dataset("moons", 1000, seed=0)
    trainer, norm = make_trainer(data, ModelConfig(objective="edm"), TrainConfig(steps=150, device="cpu"))
    trainer.run()
    assert trainer.loss_history[-1] < trainer.loss_history[0]
    run = Run.from_trainer(trainer, norm, {})
    assert run.ladder.rho == 7 and run.ladder.sigmas[0] == SIGMA_MAX
    model = SamplingModel.of_run(run)
    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    for sampler in ("edm", "euler", "heun", "dpmpp_2m", "dopri5"):
        samples = model.sample(sampler, x_T, generator=torch.Generator().manual_seed(1)).samples
        assert np.isfinite(samples).all() and np.abs(samples).max() < 10, sampler


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_a_ddpm_network_of_another_prediction_trains_on_its_target_and_samples_as_eps(prediction):
    data = make_dataset("moons", 1000, seed=0)
    config = ModelConfig(prediction=prediction)
    trainer, norm = make_trainer(data, config, TrainConfig(steps=150, device="cpu"))
    trainer.run()
    run = Run.from_trainer(trainer, norm, {})
    model = SamplingModel.of_run(run)
    assert isinstance(model.model, EpsilonView) and model.model.prediction == prediction
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    a, b = eps_coefficients(prediction, float(SCHEDULE.alphas_cumprod[400]))
    with torch.no_grad():
        torch.testing.assert_close(model.model(x, 400), a * x + b * run.ema(x, 400))


def test_prediction_is_a_ddpm_choice_and_old_runs_predicted_eps():
    from diffvis.errors import ConfigError

    assert ModelConfig().prediction == "v"
    assert ModelConfig.from_dict({"objective": "ddpm"}).prediction == "eps"
    assert ModelConfig.from_dict({"objective": "ncsn"}).prediction is None
    assert ModelConfig(objective="flow", prediction="v").prediction is None
    with pytest.raises(ConfigError, match="prediction"):
        ModelConfig(prediction="score")
