"""The terms of one sampler step, recomputed for one point: what moved it from frame k to frame k + 1.

Each sampler of the registry has an explainer here, ``explain(model, path, k, z, tables, params) → StepTerms``:
``model`` is the model exactly as the sampler drove it (guided for the point's class), ``path`` the point's
standardised frames (F, 1, 2), ``z`` (1, 2) the noise the step drew (``Trajectory.noise``) or None, ``params``
the sampler's settings. It evaluates the model again at the frame's point and computes the step with the very
functions the sampler's loop calls (``DdpmStep``, ``DdimStep``, ``langevin_update``, ``edm_step``, the ODE layer's
``first_stage``/``next_state``), so its result is the next frame. It also writes the result as a combination
Σ_j c_j v_j of the vectors it lists, the equation with today's numbers in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffvis.core.edm import churn, edm_step
from diffvis.core.ode import TABLEAUS, first_stage, next_state, probability_flow, stepper
from diffvis.core.parametrization import x0_from_eps, x0_from_score
from diffvis.core.samplers import DdimStep, DdpmStep, langevin_frame, langevin_update
from diffvis.core.schedules import ddim_timesteps, karras_sigmas
from diffvis.errors import ConfigError


@dataclass(frozen=True)
class Term:
    """One quantity of a step: how the paper writes it (Unicode text and LaTeX) and its value, a number or a
    2-vector in standardised coordinates."""

    symbol: str
    latex: str
    value: float | np.ndarray

    @property
    def is_vector(self) -> bool:
        return isinstance(self.value, np.ndarray)


@dataclass(frozen=True)
class StepTerms:
    """The terms of a step in reading order, the result (standardised, (2,)) and the result as Σ c_j · v_j over
    ``combination`` = ((c_j, symbol of v_j), …); empty where the step has no such closed form (dopri5)."""

    terms: tuple[Term, ...]
    result: Term
    combination: tuple[tuple[float, str], ...]

    def term(self, symbol: str) -> Term:
        return next(t for t in self.terms if t.symbol == symbol)


def vec(x: torch.Tensor) -> np.ndarray:
    """A (1, 2) tensor as a (2,) float64 array."""
    return x.detach().double().cpu().numpy().reshape(2)


def _noise(z: torch.Tensor | None) -> list[Term]:
    return [] if z is None else [Term("z", "z", vec(z))]


def explain_ddpm(model, path, k, z, schedule, params) -> StepTerms:
    """x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t + σ_t z at t = T − 1 − k."""
    t = schedule.T - 1 - k
    x = path[k]
    eps = model(x, t)
    step = DdpmStep.at(schedule, t, params["variance"])
    z = z if step.sigma > 0 else None
    result = step.update(x, eps, z)
    root = math.sqrt(step.alpha)
    terms = (Term("t", "t", t), Term("α_t", r"\alpha_t", step.alpha), Term("ᾱ_t", r"\bar\alpha_t", step.abar),
             Term("β_t", r"\beta_t", step.beta), Term("σ_t", r"\sigma_t", step.sigma), Term("x_t", "x_t", vec(x)),
             Term("ε̂", r"\hat\epsilon", vec(eps)),
             Term("x̂₀", r"\hat x_0", vec(x0_from_eps(x, eps, step.abar))), *_noise(z))  # fmt: skip
    combination = (
        (1 / root, "x_t"),
        (-step.eps_coefficient / root, "ε̂"),
        *(((step.sigma, "z"),) if z is not None else ()),
    )
    return StepTerms(terms, Term("x_{t−1}", "x_{t-1}", vec(result)), combination)


def explain_ddim(model, path, k, z, schedule, params) -> StepTerms:
    """x_{t−1} = √ᾱ_{t−1} x̂₀ + √(1 − ᾱ_{t−1} − σ_t²) ε̂ + σ_t z from the k-th visited timestep t to the next one
    visited, written t − 1 as in the paper (−1 after the last: ᾱ = 1)."""
    ts = ddim_timesteps(schedule.T, params["steps"], params["spacing"])
    step = DdimStep.at(schedule.alphas_cumprod, ts, k, params["eta"])
    x = path[k]
    eps = model(x, step.t)
    x0_hat = x0_from_eps(x, eps, step.abar)
    z = z if step.sigma > 0 else None
    result = step.update(x0_hat, eps, z)
    terms = (Term("t", "t", step.t), Term("t−1", "t-1", step.t_prev),
             Term("ᾱ_t", r"\bar\alpha_t", step.abar),
             Term("ᾱ_{t−1}", r"\bar\alpha_{t-1}", step.abar_prev), Term("σ_t", r"\sigma_t", step.sigma),
             Term("x_t", "x_t", vec(x)), Term("ε̂", r"\hat\epsilon", vec(eps)), Term("x̂₀", r"\hat x_0", vec(x0_hat)),
             *_noise(z))  # fmt: skip
    combination = ((step.abar_prev**0.5, "x̂₀"), (step.direction, "ε̂"), *(((step.sigma, "z"),) if z is not None else ()))
    return StepTerms(terms, Term("x_{t−1}", "x_{t-1}", vec(result)), combination)


def explain_langevin(model, path, k, z, ladder, params) -> StepTerms:
    """x ← x + α_i/2 · s(x, σ_i) + √α_i z, or the final Tweedie step x + σ_L² s(x, σ_L)."""
    K = params["steps_per_level"]
    x = path[k]
    if k >= ladder.L * K:  # the denoising step after the last level
        sigma = float(ladder.sigmas[-1])
        score = model(x, sigma)
        result = x0_from_score(x, score, sigma)
        terms = (
            Term("σ_L", r"\sigma_L", sigma),
            Term("x", "x", vec(x)),
            Term("s", r"s_\theta(x, \sigma_L)", vec(score)),
        )
        return StepTerms(terms, Term("x̂₀", r"\hat x_0", vec(result)), ((1.0, "x"), (sigma**2, "s")))
    frame = langevin_frame(ladder, K, params["step_size"], k)
    score = model(x, frame.sigma)
    result = langevin_update(x, score, z, frame.step_size)
    terms = (Term("i", "i", frame.level + 1), Term("j", "j", frame.inner + 1), Term("σ_i", r"\sigma_i", frame.sigma),
             Term("α_i", r"\alpha_i", frame.step_size), Term("x", "x", vec(x)),
             Term("s", r"s_\theta(x, \sigma_i)", vec(score)), *_noise(z))  # fmt: skip
    combination = ((1.0, "x"), (frame.step_size / 2, "s"), (frame.step_size**0.5, "z"))
    return StepTerms(terms, Term("x'", "x'", vec(result)), combination)


def explain_edm(model, path, k, z, ladder, params) -> StepTerms:
    """Step i = k of Algorithm 2 (``edm.edm_step``)."""
    steps = params["steps"]
    sigmas = np.append(karras_sigmas(float(ladder.sigmas[0]), float(ladder.sigmas[-1]), steps, params["rho"]), 0.0)
    t, t_next = float(sigmas[k]), float(sigmas[k + 1])
    gamma = churn(t, steps, params["s_churn"], params["s_tmin"], params["s_tmax"])
    t_hat = t * (1 + gamma)
    z = z if t_hat > t else None
    st = edm_step(model, path[k], z, t, t_hat, t_next, params["s_noise"])
    terms = [Term("t_i", "t_i", t), Term("γ_i", r"\gamma_i", gamma), Term("t̂", r"\hat t", t_hat),
             Term("t_{i+1}", "t_{i+1}", t_next), Term("x_i", "x_i", vec(path[k])), *_noise(z),
             Term("x̂", r"\hat x", vec(st.x_hat)), Term("D₀", r"D_\theta(\hat x; \hat t)", vec(st.d0)),
             Term("x'", "x'", vec(st.x_euler))]  # fmt: skip
    h = t_next - t_hat
    if st.d1 is None:
        combination = ((t_next / t_hat, "x̂"), (1 - t_next / t_hat, "D₀"))
    else:
        terms.append(Term("D₁", r"D_\theta(x'; t_{i+1})", vec(st.d1)))
        a, b = h / (2 * t_hat), h / (2 * t_next)
        combination = ((1 + a, "x̂"), (-a, "D₀"), (b, "x'"), (-b, "D₁"))
    return StepTerms(tuple(terms), Term("x_{i+1}", "x_{i+1}", vec(st.x_next)), combination)


def ode_explainer(method: str):
    """The explainer of the ODE solver ``method`` (``diffvis.core.ode``): y_k = x_k/s(u_k), its stages, x̂ and
    x_{k+1} = s(u_{k+1}) y_{k+1}."""

    def explain(model, path, k, z, tables, params) -> StepTerms:
        del z  # deterministic
        ode = probability_flow(model, tables, params["steps"], params.get("spacing", "trailing"))
        stages: list = []
        step = stepper(ode, method, params.get("rtol", 1e-5), params.get("atol", 1e-5), stages)
        if method == "dpmpp_2m" and k > 0:  # its step uses the x̂ of the step before: take that step first
            k1, x_hat = first_stage(ode, path[k - 1], k - 1)
            next_state(ode, step, path[k - 1] / ode.scale_of(float(ode.grid[k - 1])), k - 1, k1, x_hat)
            stages.clear()
        u, u_next = float(ode.grid[k]), float(ode.grid[k + 1])
        s, s_next = ode.scale_of(u), ode.scale_of(u_next)
        y = path[k] / s
        k1, x_hat = first_stage(ode, path[k], k)
        result = next_state(ode, step, y, k, k1, x_hat) * s_next
        terms = [Term("u_k", "u_k", u), Term("u_{k+1}", "u_{k+1}", u_next), Term("h", "h", u_next - u),
                 Term("y_k", "y_k", vec(y)), Term("k₁", "k_1", vec(k1)),
                 Term("x̂", r"\hat x", vec(x_hat))]  # fmt: skip
        if s != 1.0 or s_next != 1.0:
            terms[3:3] = [Term("s(u_k)", "s(u_k)", s), Term("s(u_{k+1})", "s(u_{k+1})", s_next)]
        combination = _ode_combination(ode, method, stages, terms, u, u_next, s_next, k)
        return StepTerms(tuple(terms), Term("x_{k+1}", "x_{k+1}", vec(result)), combination)

    explain.__name__ = f"explain_{method}"
    return explain


def _ode_combination(ode, method, stages, terms, u, u_next, s_next, k) -> tuple[tuple[float, str], ...]:
    """x_{k+1} as Σ c_j v_j over the step's terms (appending the stages it names); () for dopri5."""
    if ode.singular_end and k == len(ode.grid) - 2:
        return ((s_next, "x̂"),)  # the last step lands on x̂
    if method in TABLEAUS:
        tableau, h = TABLEAUS[method], u_next - u
        rest = [(s_next * h * b, f"k{_SUBSCRIPTS[j + 2]}") for j, b in enumerate(tableau.b[1:]) if b]
        for j, stage in enumerate(stages[1:]):
            terms.append(Term(f"k{_SUBSCRIPTS[j + 2]}", f"k_{j + 2}", vec(stage)))
        first = s_next * (u_next - ode.end - h * sum(tableau.b[1:]))
        return ((s_next, "x̂"), (first, "k₁"), *rest)
    if method == "dpmpp_2m":
        terms.append(Term("D", "D", vec(stages[0])))
        return ((s_next * u_next / u, "y_k"), (-s_next * float(np.expm1(-math.log(u / u_next))), "D"))
    if method == "dopri5":
        return ()
    raise ConfigError(f"no explanation of the {method} solver")


_SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉"
