"""Probability-flow ODE solvers: Euler is DDIM with η = 0; on Gaussian data, whose ODE has a closed-form
solution, each solver converges with the order it promises; with the exact denoiser of a point set, each
approaches the endpoint of DDIM η = 0 over every timestep."""

import numpy as np
import pytest
import torch

from diffvis.core.exact import ExactNoisePredictor
from diffvis.core.ode import sample_dpmpp_2m, sample_euler, sample_heun, sample_midpoint, sample_rk4, vp_flow
from diffvis.core.registry import SAMPLERS
from diffvis.core.samplers import sample_ddim
from diffvis.core.schedules import Schedule

SCHEDULE = Schedule.make("linear", 1000)
MU, SD = torch.tensor([0.5, -0.3]), 0.6


def gaussian_eps(x: torch.Tensor, t) -> torch.Tensor:
    """The exact ε-prediction for data N(μ, s² I): ε̂ = √(1 − ᾱ) (x − √ᾱ μ) / (ᾱ s² + 1 − ᾱ), at a whole or (for
    a solver's stage between timesteps) fractional t."""
    abar = SCHEDULE.abar_at(float(t))
    return (x - abar**0.5 * MU) * (1 - abar) ** 0.5 / (abar * SD**2 + 1 - abar)


def ode_solution(x_T: torch.Tensor, t: int) -> torch.Tensor:
    """The probability-flow ODE keeps (x_t − √ᾱ_t μ) / √(ᾱ_t s² + 1 − ᾱ_t) fixed for Gaussian data."""
    a, a_T = float(SCHEDULE.alphas_cumprod[t]), float(SCHEDULE.alphas_cumprod[-1])
    return a**0.5 * MU + ((a * SD**2 + 1 - a) / (a_T * SD**2 + 1 - a_T)) ** 0.5 * (x_T - a_T**0.5 * MU)


def noise(n: int = 200, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def test_the_ddpm_ode_grid_is_sigma_at_the_ddim_timesteps_then_zero():
    ode = vp_flow(gaussian_eps, SCHEDULE, 3, "linspace")
    ts = np.array([999, 500, 0])
    abar = SCHEDULE.alphas_cumprod[ts]
    np.testing.assert_allclose(ode.grid, [*np.sqrt((1 - abar) / abar), 0.0], rtol=1e-12)
    np.testing.assert_array_equal(ode.times, [999, 500, 0, -1])
    np.testing.assert_allclose(ode.scale, [*np.sqrt(abar), 1.0], rtol=1e-12)


def test_fractional_timesteps_interpolate_log_sigma_and_invert():
    for t in (0, 1, 17, 500, 998, 999):
        abar = SCHEDULE.alphas_cumprod[t]
        assert SCHEDULE.sigma_at(t) == pytest.approx(np.sqrt((1 - abar) / abar))
        assert SCHEDULE.abar_at(float(t)) == SCHEDULE.alphas_cumprod[t]
        assert SCHEDULE.timestep_at(SCHEDULE.sigma_at(t)) == pytest.approx(t, abs=1e-9)
    mid = SCHEDULE.sigma_at(10.5)
    assert mid == pytest.approx(np.sqrt(SCHEDULE.sigma_at(10) * SCHEDULE.sigma_at(11)))  # geometric mean: log-linear
    assert SCHEDULE.abar_at(10.5) == pytest.approx(1 / (1 + mid**2))
    assert SCHEDULE.timestep_at(mid) == pytest.approx(10.5)


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


@pytest.mark.parametrize(
    ("sampler", "order", "steps"),
    [(sample_euler, 1, [20, 40, 80, 160]), (sample_midpoint, 2, [10, 20, 40, 80]), (sample_heun, 2, [20, 40, 80, 160]),
     (sample_rk4, 4, [5, 10, 20, 40]), (sample_dpmpp_2m, 2, [20, 40, 80, 160])],
)  # fmt: skip
def test_order_of_accuracy_on_the_closed_form_ode(sampler, order, steps):
    """Each solver's error falls at least as fast as its order promises (the midpoint rule's falls as S⁻³ over
    this range, where its second-order term is still small); RK4's steps stop short of float32's floor."""
    errors = ode_errors(sampler, steps)
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.diff(errors) < 0)
    assert observed[-1] > order - 0.15, observed
    assert observed[-1] < order + (1.15 if sampler is sample_midpoint else 0.15), observed
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
