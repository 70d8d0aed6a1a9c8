"""Probability-flow ODE solvers: Euler is DDIM with η = 0; on Gaussian data, whose ODE has a closed-form
solution, each solver converges with the order it promises; with the exact denoiser of a point set, each
approaches the endpoint of DDIM η = 0 over every timestep."""

import numpy as np
import pytest
import torch

from diffvis.core.exact import ExactNoisePredictor
from diffvis.core.registry import SAMPLERS
from diffvis.core.samplers import sample_ddim
from diffvis.core.schedules import Schedule
from diffvis.core.solvers import karras_sigmas, sample_dpmpp_2m, sample_euler, sample_heun

SCHEDULE = Schedule.make("linear", 1000)
MU, SD = torch.tensor([0.5, -0.3]), 0.6


def gaussian_eps(x: torch.Tensor, t) -> torch.Tensor:
    """The exact ε-prediction for data N(μ, s² I): ε̂ = √(1 − ᾱ) (x − √ᾱ μ) / (ᾱ s² + 1 − ᾱ)."""
    abar = float(SCHEDULE.alphas_cumprod[int(t)])
    return (x - abar**0.5 * MU) * (1 - abar) ** 0.5 / (abar * SD**2 + 1 - abar)


def ode_solution(x_T: torch.Tensor, t: int) -> torch.Tensor:
    """The probability-flow ODE keeps (x_t − √ᾱ_t μ) / √(ᾱ_t s² + 1 − ᾱ_t) fixed for Gaussian data."""
    a, a_T = float(SCHEDULE.alphas_cumprod[t]), float(SCHEDULE.alphas_cumprod[-1])
    return a**0.5 * MU + ((a * SD**2 + 1 - a) / (a_T * SD**2 + 1 - a_T)) ** 0.5 * (x_T - a_T**0.5 * MU)


def noise(n: int = 200, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def test_karras_sigmas_by_hand():
    ts = np.array([999, 500, 0])
    abar = SCHEDULE.alphas_cumprod[ts]
    np.testing.assert_allclose(karras_sigmas(SCHEDULE, ts), [*np.sqrt((1 - abar) / abar), 0.0])


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_euler_is_ddim_with_eta_0(spacing):
    x_T = noise()
    euler = sample_euler(gaussian_eps, x_T, SCHEDULE, steps=17, spacing=spacing)
    ddim = sample_ddim(gaussian_eps, x_T, SCHEDULE, steps=17, eta=0.0, spacing=spacing)
    np.testing.assert_allclose(euler.frames, ddim.frames, atol=2e-5)
    np.testing.assert_allclose(euler.x0_hat, ddim.x0_hat, atol=2e-5)
    np.testing.assert_array_equal(euler.times, ddim.times)


def ode_errors(sampler, steps):
    """Largest distance to the exact ODE solution at the last visited timestep (t = 0 with linspace spacing)."""
    x_T = noise()
    errors = []
    for S in steps:
        traj = sampler(gaussian_eps, x_T, SCHEDULE, steps=S, spacing="linspace")
        assert traj.times[-2] == 0
        errors.append(float((torch.as_tensor(traj.frames[-2]) - ode_solution(x_T, 0)).norm(dim=1).max()))
    return np.array(errors)


@pytest.mark.parametrize(("sampler", "order"), [(sample_euler, 1), (sample_heun, 2), (sample_dpmpp_2m, 2)])
def test_order_of_accuracy_on_the_closed_form_ode(sampler, order):
    errors = ode_errors(sampler, [20, 40, 80, 160])
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.diff(errors) < 0)
    assert abs(observed[-1] - order) < 0.15, observed
    assert errors[-1] < (0.05 if order == 1 else 0.015)


def test_second_order_solvers_beat_euler_at_equal_cost():
    """Heun at S steps costs 2S − 1 evaluations; DPM-Solver++(2M) costs S, like Euler."""
    heun_80 = ode_errors(sample_heun, [80])[0]
    euler_160, dpm_160 = (ode_errors(s, [160])[0] for s in (sample_euler, sample_dpmpp_2m))
    assert heun_80 < euler_160 / 5 and dpm_160 < euler_160 / 3


@pytest.mark.parametrize(("name", "nfe"), [("euler", 30), ("heun", 59), ("dpmpp_2m", 30)])
def test_evaluations_are_counted_per_frame(name, nfe):
    traj = SAMPLERS[name].fn(gaussian_eps, noise(10), SCHEDULE, steps=30)
    assert traj.nfe == nfe and traj.evals[0] == 0 and traj.evals[-1] == nfe
    assert np.all(np.diff(traj.evals) >= 0) and len(traj.evals) == 31
    if name == "heun":
        assert list(traj.evals[:4]) == [0, 2, 4, 6]


@pytest.mark.parametrize("name", ["euler", "heun", "dpmpp_2m"])
def test_with_the_exact_denoiser_solvers_approach_ddim_over_every_timestep(name):
    points = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.2, -1.2], [0.0, 1.0]])
    model = ExactNoisePredictor(points, SCHEDULE)
    x_T = noise(64, seed=3)
    reference = sample_ddim(model, x_T, SCHEDULE, steps=1000, eta=0.0).samples
    gaps = [np.abs(SAMPLERS[name].fn(model, x_T, SCHEDULE, steps=S).samples - reference).max() for S in (10, 40, 250)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05, gaps


def test_start_midway_continues_the_same_deterministic_path():
    x_T = noise(20)
    full = sample_heun(gaussian_eps, x_T, SCHEDULE, steps=12)
    rest = sample_heun(gaussian_eps, torch.as_tensor(full.frames[5]), SCHEDULE, steps=12, start=5)
    assert np.isnan(rest.frames[:5]).all()
    np.testing.assert_allclose(rest.frames[5:], full.frames[5:], atol=1e-5)
    assert rest.nfe == full.nfe - 10
