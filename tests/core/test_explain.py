"""The filled-in equation of a step (``diffvis.core.explain``): for every sampler of the registry, the result it
prints is the trajectory's next frame, the combination it prints adds up to that result, and its constants are the
schedule's."""

import numpy as np
import pytest
import torch

from diffvis.core.datasets import make_dataset
from diffvis.core.explain import explain_frame
from diffvis.core.pipeline import sample_request
from diffvis.core.registry import SAMPLERS
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule, ddim_timesteps
from diffvis.errors import ConfigError

POINTS = make_dataset("moons", 200, seed=3)
STOCHASTIC = {
    "ddim": {"eta": 0.7, "steps": 20},
    "edm": {"s_churn": 30.0, "steps": 8},
    "langevin": {"steps_per_level": 3},
}
FEW_STEPS = {"steps": 6}


def _model(objective: str, classes=None) -> SamplingModel:
    labels = None if classes is None else POINTS.labels
    return SamplingModel.exact_of(POINTS.points, objective, Schedule.make("linear", 1000), classes=classes,
                                  labels=labels)  # fmt: skip


def _cases():
    for name, info in SAMPLERS.items():
        for objective in info.objectives:
            params = STOCHASTIC.get(name, {} if name == "ddpm" else FEW_STEPS)
            yield pytest.param(name, objective, params, id=f"{name}-{objective}")


def _combined(explanation) -> np.ndarray:
    values = {t.symbol: t.value for t in explanation.step.terms}
    return sum(c * values[s] for c, s in explanation.step.combination)


def _frames(traj) -> list[int]:
    return sorted({0, 1, traj.steps // 2, traj.steps - 1})


@pytest.mark.parametrize(("sampler", "objective", "params"), list(_cases()))
def test_the_explained_result_is_the_next_frame_for_every_sampler(sampler, objective, params):
    model = _model(objective)
    request = SampleRequest(sampler, params, n=24, seed=5, objective=objective)
    traj = sample_request(model, request)
    for frame in _frames(traj):
        for point in (0, 17):
            e = explain_frame(model, request, traj, point, frame)
            # float32 of one point against the batch's: the exact fields are stiff near the data (RK4's last
            # stages reach x ≈ 10 on the moons), so the agreement is 1e-4 relative there, 1e-6 elsewhere
            np.testing.assert_allclose(e.result_data, traj.frames[frame + 1, point], rtol=1e-4, atol=1e-5)
            if e.step.combination:
                np.testing.assert_allclose(_combined(e), e.step.result.value, rtol=1e-5, atol=1e-5)
            assert e.step.result.symbol in e.text() and str(frame) in e.text()


def test_ddim_prints_the_schedules_constants_and_the_noise_the_step_drew():
    model = _model("ddpm")
    request = SampleRequest("ddim", {"steps": 10, "eta": 1.0, "spacing": "leading"}, n=8, seed=2, objective="ddpm")
    traj = sample_request(model, request)
    ts = ddim_timesteps(1000, 10, "leading")
    abar = model.schedule.alphas_cumprod
    e = explain_frame(model, request, traj, point=3, frame=4)
    terms = {t.symbol: t.value for t in e.step.terms}
    assert (terms["t"], terms["t−1"]) == (ts[4], ts[5])
    assert terms["ᾱ_t"] == abar[ts[4]] and terms["ᾱ_{t−1}"] == abar[ts[5]]
    expected_sigma = np.sqrt((1 - abar[ts[5]]) / (1 - abar[ts[4]]) * (1 - abar[ts[4]] / abar[ts[5]]))
    assert terms["σ_t"] == pytest.approx(expected_sigma, rel=1e-12)
    # the z printed is the one the sampler added: x_prev − (√ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂) = σ z
    mean = np.sqrt(abar[ts[5]]) * terms["x̂₀"] + np.sqrt(1 - abar[ts[5]] - expected_sigma**2) * terms["ε̂"]
    x_next = model.normaliser.to_std(traj.frames[5, 3][None].astype(np.float64))[0]
    np.testing.assert_allclose((x_next - mean) / expected_sigma, terms["z"], atol=1e-4)


def test_ddpm_prints_algorithm_2s_constants():
    model = _model("ddpm")
    request = SampleRequest("ddpm", {"variance": "beta"}, n=4, seed=0, objective="ddpm")
    traj = sample_request(model, request)
    e = explain_frame(model, request, traj, point=1, frame=100)
    terms = {t.symbol: t.value for t in e.step.terms}
    s = model.schedule
    assert terms["t"] == 899
    assert (terms["α_t"], terms["ᾱ_t"], terms["β_t"]) == (s.alphas[899], s.alphas_cumprod[899], s.betas[899])
    assert terms["σ_t"] == pytest.approx(np.sqrt(s.betas[899]), rel=1e-12)
    coefficients = dict((sym, c) for c, sym in e.step.combination)
    assert coefficients["x_t"] == pytest.approx(1 / np.sqrt(s.alphas[899]), rel=1e-12)
    assert coefficients["ε̂"] == pytest.approx(
        -s.betas[899] / np.sqrt(1 - s.alphas_cumprod[899]) / np.sqrt(s.alphas[899])
    )


def test_a_guided_class_conditional_step_is_explained_as_it_was_sampled():
    from diffvis.core.classes import Classes

    model = _model("ddpm", classes=Classes.of(POINTS))
    request = SampleRequest("ddim", {"steps": 8}, n=16, seed=1, objective="ddpm", label="all", guidance=3.0)
    traj = sample_request(model, request)
    e = explain_frame(model, request, traj, point=5, frame=3)
    np.testing.assert_allclose(e.result_data, traj.frames[4, 5], rtol=1e-5, atol=1e-5)
    assert "w = 3" in e.text()


def test_text_latex_and_json_carry_the_same_numbers():
    model = _model("flow")
    request = SampleRequest("heun", {"steps": 4}, n=6, seed=0, objective="flow")
    traj = sample_request(model, request)
    e = explain_frame(model, request, traj, point=2, frame=1)
    d = e.to_dict()
    assert d["sampler"] == "heun" and d["frame"] == 1 and d["point"] == 2
    np.testing.assert_allclose(d["result"]["data"], traj.frames[2, 2], rtol=1e-5, atol=1e-5)
    assert set(d["terms"]) >= {"u_k", "h", "k₁", "k₂", "x̂"}
    latex = e.latex()
    assert latex.startswith("\\begin{align*}") and "k_2" in latex and "pmatrix" in latex
    assert f"{d['terms']['h']:.6g}" in e.text()


OUTSIDE = [(6, 0, "point must be"), (0, 4, "frame must be"), (-1, 0, "point must be"), (0, -1, "frame must be")]


@pytest.mark.parametrize(("point", "frame", "message"), OUTSIDE)
def test_a_point_or_frame_outside_the_trajectory_is_refused(point, frame, message):
    model = _model("flow")
    request = SampleRequest("euler", {"steps": 4}, n=6, seed=0, objective="flow")
    traj = sample_request(model, request)
    with pytest.raises(ConfigError, match=message):
        explain_frame(model, request, traj, point, frame)


def test_the_noise_of_a_step_is_drawn_again_exactly():
    model = _model("ncsn")
    request = SampleRequest("langevin", {"steps_per_level": 2}, n=5, seed=9, objective="ncsn")
    traj = sample_request(model, request)
    assert set(traj.draws) == set(range(traj.steps - 1))  # every Langevin step but the final denoising one
    generator = torch.Generator().manual_seed(9)
    torch.randn(5, 2, generator=generator)  # the starting noise
    for k in range(3):
        np.testing.assert_array_equal(traj.noise(k), torch.randn(5, 2, generator=generator).numpy())
    assert traj.noise(traj.steps - 1) is None


def test_guidance_is_spelled_out_and_its_output_is_what_the_step_used():
    from diffvis.core.classes import Classes

    model = _model("ddpm", classes=Classes.of(POINTS))
    request = SampleRequest("ddim", {"steps": 8}, n=16, seed=1, objective="ddpm", label=1, guidance=3.0)
    traj = sample_request(model, request)
    e = explain_frame(model, request, traj, point=2, frame=2)
    terms = {t.symbol: t.value for t in e.step.terms}
    assert terms["w"] == 3.0
    guided_symbol = "ε̃ = ε_∅ + w (ε_c − ε_∅)"
    np.testing.assert_allclose(terms[guided_symbol], terms["ε_∅"] + 3.0 * (terms["ε_c"] - terms["ε_∅"]), atol=1e-5)
    np.testing.assert_allclose(terms[guided_symbol], terms["ε̂"], atol=1e-5)  # the ε̂ the step used
    assert "away from the unconditional" in e.text()
