"""The forward process against q(x_t | x_0), and the exact denoiser against independent computations."""

import math

import numpy as np
import pytest
import torch

from diffvis.core.exact import ExactNoisePredictor, ExactScore, mixture_score
from diffvis.core.forward import forward_chain, q_sample
from diffvis.core.parametrization import eps_from_score, score_from_eps, x0_from_eps, x0_from_score
from diffvis.core.schedules import Schedule


def test_markov_chain_matches_closed_form_marginal():
    """Stepping q(x_t | x_{t−1}) T times gives mean √ᾱ_t x_0 and variance 1 − ᾱ_t, as q(x_t | x_0) says."""
    schedule = Schedule.make("linear", 200)
    x0 = torch.tensor([[1.5, -0.5]], dtype=torch.float64).repeat(40_000, 1)
    frames = forward_chain(x0, schedule, torch.Generator().manual_seed(0))
    for t in (0, 20, 100, 199):
        x_t = frames[t + 1]
        abar = schedule.alphas_cumprod[t]
        np.testing.assert_allclose(x_t.mean(0), math.sqrt(abar) * x0[0], atol=4 * math.sqrt((1 - abar) / 40_000))
        np.testing.assert_allclose(x_t.var(0), 1 - abar, rtol=0.03)
    closed = q_sample(x0, float(schedule.alphas_cumprod[99]), torch.randn(x0.shape, dtype=torch.float64))
    assert closed.var(0).numpy() == pytest.approx(frames[100].var(0).numpy(), rel=0.04)


def _log_mixture(x, centres, s):
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    return torch.logsumexp(-d2 / (2 * s * s), dim=1) - math.log(len(centres)) - math.log(2 * math.pi * s * s)


def test_exact_score_is_the_gradient_of_log_q():
    """Central finite differences of log q (an independent formula) equal mixture_score."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(7, 2, generator=g, dtype=torch.float64)
    x = torch.randn(20, 2, generator=g, dtype=torch.float64) * 1.5
    for s in (0.3, 1.0):
        h = 1e-5
        fd = torch.stack(
            [
                (_log_mixture(x + h * e, centres, s) - _log_mixture(x - h * e, centres, s)) / (2 * h)
                for e in torch.eye(2, dtype=torch.float64)
            ],
            dim=1,
        )
        np.testing.assert_allclose(mixture_score(x, centres, s).numpy(), fd.numpy(), rtol=1e-6, atol=1e-6)


def test_exact_noise_is_the_posterior_mean_of_eps():
    """E[ε | x_t] by brute-force Bayes over the points equals the exact denoiser's ε."""
    schedule = Schedule.make("linear", 1000)
    pts = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = 300
    abar = schedule.alphas_cumprod[t]
    eps_i = (x[:, None, :] - math.sqrt(abar) * pts[None]) / math.sqrt(1 - abar)  # ε implied by each point
    w = torch.softmax(-(eps_i**2).sum(-1) / 2, dim=1)  # likelihood N(x; √ᾱ x0_i, (1 − ᾱ) I) ∝ exp(−‖ε_i‖²/2)
    expected = (w[..., None] * eps_i).sum(1)
    got = ExactNoisePredictor(pts, schedule)(x.float(), t)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_exact_score_at_small_sigma_points_to_the_nearest_point():
    pts = torch.tensor([[1.0, 1.0], [-2.0, 0.0]])
    x = torch.tensor([[0.9, 1.2]])
    sigma = 0.05
    x0 = x0_from_score(x, ExactScore(pts)(x, sigma), sigma)  # Tweedie
    np.testing.assert_allclose(x0.numpy(), [[1.0, 1.0]], atol=1e-5)


def test_parametrisations_round_trip():
    x = torch.randn(10, 2)
    eps = torch.randn(10, 2)
    abar = 0.37
    x0 = x0_from_eps(x, eps, abar)
    np.testing.assert_allclose((math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps).numpy(), x.numpy(), atol=1e-6)
    np.testing.assert_allclose(eps_from_score(score_from_eps(eps, abar), abar).numpy(), eps.numpy(), atol=1e-6)


def test_q_sample_gives_the_same_on_numpy_arrays_and_tensors():
    x0, eps = np.random.default_rng(0).standard_normal((2, 50, 2))
    expected = q_sample(torch.tensor(x0), 0.3, torch.tensor(eps)).numpy()
    np.testing.assert_allclose(q_sample(x0, 0.3, eps), expected, rtol=1e-12)


def test_prior_gap_is_the_kl_of_q_xT_from_the_standard_normal():
    """Against an independent Monte-Carlo estimate of E_x0 KL(N(√ᾱ x0, (1−ᾱ)I) ‖ N(0, I))."""
    from diffvis.core.forward import prior_gap
    from diffvis.core.schedules import Schedule

    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4000, 2)) * [1.2, 0.7]
    weak = Schedule(kind="custom", T=5, betas=np.full(5, 0.2))  # ᾱ_T = 0.8⁵ ≈ 0.33: much signal left
    abar = weak.alphas_cumprod[-1]
    gap = prior_gap(weak, x0)
    # Monte Carlo: log q(x | x0) − log N(x; 0, I) averaged over x ~ q(x | x0)
    x = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * rng.standard_normal(x0.shape)
    log_q = -((x - np.sqrt(abar) * x0) ** 2).sum(1) / (2 * (1 - abar)) - np.log(2 * np.pi * (1 - abar))
    log_p = -(x**2).sum(1) / 2 - np.log(2 * np.pi)
    assert gap.kl == pytest.approx((log_q - log_p).mean(), rel=0.05)
    assert gap.too_far and gap.signal == pytest.approx(np.sqrt(abar))
    assert not prior_gap(Schedule.make("linear", 1000), x0).too_far
