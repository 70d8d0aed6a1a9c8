"""Our schedules, DDIM timesteps and DDPM/DDIM trajectories against diffusers' schedulers as an independent reference.

Both sides get the same deterministic fake ε-model and the same noise (a generator with the same seed, drawn
once per noisy step in the same order), and every frame and x̂₀ is compared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
from diffusers import DDIMScheduler, DDPMScheduler  # noqa: E402

from diffvis.core.samplers import ddim_timesteps, sample_ddim, sample_ddpm  # noqa: E402
from diffvis.core.schedules import Schedule  # noqa: E402

ATOL = 1e-5
DIFFUSERS_KIND = {"linear": "linear", "cosine": "squaredcos_cap_v2", "sigmoid": "sigmoid"}
VARIANCE_TYPE = {"beta_tilde": "fixed_small", "beta": "fixed_large"}


def fake_model(T: int):
    """A deterministic stand-in for a trained ε-network: the exact ε̂ for N(0, I) data, √(1−ᾱ_t) x, plus a
    nonlinear wobble. (A model unrelated to the schedule, such as sin(1.3x), drives the points to |x| ~ 70,
    where float32 rounding alone exceeds 1e-5.)"""
    abar = Schedule.make("linear", T).alphas_cumprod

    def model(x: torch.Tensor, t) -> torch.Tensor:
        t = int(t)
        return float(np.sqrt(1 - abar[t])) * x + 0.2 * torch.sin(x * 1.3 + 0.01 * t)

    return model


def linear_kwargs(T: int) -> dict:
    """diffusers' linear schedule with our ends, 1e-4 and 0.02 scaled by 1000/T."""
    return {
        "num_train_timesteps": T,
        "beta_schedule": "linear",
        "beta_start": 1e-4 * 1000 / T,
        "beta_end": 0.02 * 1000 / T,
    }


def x_T(n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn((n, 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def assert_x0_close(ours, ref: np.ndarray, T: int) -> None:
    """Compare √ᾱ_t x̂₀ = x_t − √(1−ᾱ_t) ε̂: x̂₀ itself divides by √ᾱ_t (down to 2.8e-3 at T = 50), which
    magnifies the float32 rounding of diffusers' 1 − ᾱ_t up to 360-fold. The last frame (t = −1) is compared as is."""
    abar = np.append(Schedule.make("linear", T).alphas_cumprod, 1.0)[ours.times.astype(int)]
    scale = np.sqrt(abar)[:, None, None]
    np.testing.assert_allclose(scale * ours.x0_hat, scale * ref, rtol=0, atol=ATOL)


# ---------------------------------------------------------------------------------------------- schedules


def assert_table_close(ours: np.ndarray, ref: torch.Tensor, rtol: float) -> None:
    """Within 1e-5 absolutely and within rtol relatively (tiny tail values too); diffusers' tables are float32."""
    ref = ref.double().numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=0)


@pytest.mark.parametrize("kind", ["linear", "cosine", "sigmoid"])
def test_schedule_tables_match_diffusers(kind):
    ours = Schedule.make(kind, 1000)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=DIFFUSERS_KIND[kind], variance_type="fixed_small")
    assert_table_close(ours.betas, ref.betas, rtol=1e-6)
    assert_table_close(ours.alphas_cumprod, ref.alphas_cumprod, rtol=1e-4)
    # diffusers' β_t = 1 − ᾱ_t/ᾱ_{t−1} in float32 is off by up to ~1e-3 relatively where β_t ~ 1e-4
    ref_var = torch.stack([ref._get_variance(t) for t in range(1, 1000)])
    assert_table_close(ours.posterior_variance[1:], ref_var, rtol=2e-3)


def test_linear_schedule_at_small_T_matches_diffusers_with_scaled_ends():
    ours, ref = Schedule.make("linear", 50), DDPMScheduler(**linear_kwargs(50))
    assert_table_close(ours.betas, ref.betas, rtol=1e-6)
    assert_table_close(ours.alphas_cumprod, ref.alphas_cumprod, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- DDIM timesteps


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("T,S", [(1000, 50), (1000, 7), (1000, 1), (1000, 1000), (10, 3), (7, 5), (50, 50), (99, 10)])
def test_ddim_timesteps_match_diffusers(T, S, spacing):
    ref = DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=0)
    ref.set_timesteps(S)
    np.testing.assert_array_equal(ddim_timesteps(T, S, spacing), ref.timesteps.numpy())


# ---------------------------------------------------------------------------------------------- trajectories


def reference_path(sched, T: int, seed: int, **step_kwargs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, x̂₀ and times of a diffusers scheduler stepping the fake model, drawing its own noise from a
    generator seeded like ours. (DDIM with η > 0 also draws at its last step, where σ = 0; ours does not draw
    there, so the two streams agree on every draw that matters.)"""
    model, g = fake_model(T), torch.Generator().manual_seed(seed)
    x = x_T()
    frames, x0s = [x], []
    for t in sched.timesteps:
        out = sched.step(model(x, t), t, x, generator=g, **step_kwargs)
        x = out.prev_sample
        frames.append(x)
        x0s.append(out.pred_original_sample)
    x0s.append(x)
    return torch.stack(frames).numpy(), torch.stack(x0s).numpy(), np.append(sched.timesteps.numpy(), -1)


def assert_same_path(ours, ref: tuple, T: int) -> None:
    frames, x0s, times = ref
    assert ours.frames.shape == frames.shape
    np.testing.assert_array_equal(ours.times, times)
    np.testing.assert_allclose(ours.frames, frames, rtol=0, atol=ATOL)
    assert_x0_close(ours, x0s, T)


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_trajectory_matches_diffusers(variance):
    T, seed = 50, 7
    ours = sample_ddpm(
        fake_model(T),
        x_T(),
        Schedule.make("linear", T),
        variance=variance,
        generator=torch.Generator().manual_seed(seed),
    )
    sched = DDPMScheduler(
        **linear_kwargs(T), clip_sample=False, variance_type=VARIANCE_TYPE[variance], prediction_type="epsilon"
    )
    sched.set_timesteps(T)
    assert_same_path(ours, reference_path(sched, T, seed), T)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("T,S", [(50, 10), (50, 50), (1000, 20)])
def test_ddim_trajectory_matches_diffusers(T, S, eta):
    seed = 11
    ours = sample_ddim(
        fake_model(T),
        x_T(),
        Schedule.make("linear", T),
        steps=S,
        eta=eta,
        spacing="leading",
        generator=torch.Generator().manual_seed(seed),
    )
    sched = DDIMScheduler(
        **linear_kwargs(T), clip_sample=False, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading"
    )
    sched.set_timesteps(S)  # T % S == 0: diffusers' previous timestep t − T//S is then the next one listed
    assert_same_path(ours, reference_path(sched, T, seed, eta=eta), T)


def test_ddim_eta_one_all_steps_is_ddpm_beta_tilde():
    T, seed = 50, 3
    schedule, model = Schedule.make("linear", T), fake_model(T)
    ddim = sample_ddim(model, x_T(), schedule, steps=T, eta=1.0, generator=torch.Generator().manual_seed(seed))
    ddpm = sample_ddpm(model, x_T(), schedule, variance="beta_tilde", generator=torch.Generator().manual_seed(seed))
    assert_same_path(ddim, (ddpm.frames, ddpm.x0_hat, ddpm.times), T)
