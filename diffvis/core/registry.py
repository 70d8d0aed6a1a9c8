"""The sampling vocabulary, in one place: every sampler and training objective, and what each takes.

A ``SamplerInfo`` names a sampler function (the contract of ``samplers``: ``fn(model, x_T, schedule_or_ladder, *,
<params>, generator, callback, normaliser, start)``), its paper, the objectives whose models it can drive, its
parameters with their types, defaults, valid ranges and help, the model evaluations it spends per step, its
update formula as text and in LaTeX, and its explainer (the terms of one step for one point). Front ends (the
CLI, the views, compare, sweep) read these entries and never spell a sampler's settings themselves;
``register_sampler`` adds one, and every front end offers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from diffvis.core.edm import RHO, S_TMAX, sample_edm
from diffvis.core.ode import sample_dopri5, sample_dpmpp_2m, sample_euler, sample_heun, sample_midpoint, sample_rk4
from diffvis.core.samplers import VARIANCES, sample_ddim, sample_ddpm, sample_langevin
from diffvis.core.schedules import SPACINGS
from diffvis.core.step_terms import explain_ddim, explain_ddpm, explain_edm, explain_langevin, ode_explainer
from diffvis.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """One setting of a sampler: ``name`` is its keyword, ``flag`` its command-line option (``--<flag>``; S and K
    share ``--steps``), ``symbol`` how the papers write it. Numbers lie in [minimum, maximum]; text in ``choices``."""

    name: str
    kind: type
    default: object
    help: str
    symbol: str = ""
    flag: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    brief: Callable[[object], str] | None = None  # how a panel's label shows the value, e.g. 'η=0.3' (None or '': not)
    objectives: tuple[str, ...] = ()  # the objectives whose models it applies to (empty: every one)

    def applies_to(self, objective: str) -> bool:
        return not self.objectives or objective in self.objectives

    @property
    def option(self) -> str:
        return "--" + (self.flag or self.name).replace("_", "-")

    def check(self, value):
        """``value`` as this parameter's type, or ConfigError saying which range it must lie in."""
        if self.kind is bool:
            if not isinstance(value, bool | np.bool_):
                raise ConfigError(f"{self.option} must be true or false, got {value!r}")
            return bool(value)
        if self.choices:
            if value not in self.choices:
                raise ConfigError(f"{self.option} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        try:
            number = self.kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{self.option} must be a number, got {value!r}") from None
        if self.kind is int and number != value:
            raise ConfigError(f"{self.option} must be a whole number, got {value!r}")
        if not math.isfinite(number) or not self.minimum <= number <= self.maximum:
            raise ConfigError(f"{self.option} must be between {self.minimum:g} and {self.maximum:g}, got {value}")
        return number

    def describe(self) -> str:
        """The help line, with the range or choices and the default."""
        models = f"; {' and '.join(self.objectives)} models only" if self.objectives else ""
        if self.kind is bool:
            return f"{self.help} (default {'on' if self.default else 'off'}{models})"
        where = f"one of {', '.join(self.choices)}" if self.choices else f"{self.minimum:g} to {self.maximum:g}"
        return f"{self.help} ({where}; default {self.default}{models})"


STEPS = Param("steps", int, 50, "S: the timesteps visited of the T", "S", minimum=1, maximum=10_000,
              brief="S={}".format)  # fmt: skip
ETA = Param("eta", float, 0.0, "η: 0 deterministic, 1 as noisy as DDPM", "η", minimum=0.0, maximum=1.0,
            brief="η={:g}".format)  # fmt: skip
VARIANCE = Param("variance", str, "beta_tilde", "σ_t²: the posterior's β̃_t or β_t", "σ_t²", choices=VARIANCES,
                 brief=lambda v: "(β)" if v == "beta" else "(β̃)")  # fmt: skip
STEPS_PER_LEVEL = Param("steps_per_level", int, 100, "K: Langevin steps at each noise level", "K", flag="steps",
                        minimum=1, maximum=100_000, brief="K={}".format)  # fmt: skip
STEP_SIZE = Param("step_size", float, 5e-5, "ε: the step at the smallest σ, α_i = ε σ_i²/σ_L²", "ε", minimum=1e-9,
                  maximum=1.0)  # fmt: skip


DENOISE = Param("denoise", bool, True, "a final Tweedie step x + σ_L² s(x, σ_L) that removes the last noise")


def spacing(default: str, objectives: tuple[str, ...] = ()) -> Param:
    """Which S of the T timesteps a run visits (diffusers' meanings), with a sampler's own default; for a sampler
    of several objectives it applies to DDPM models only (NCSN and flow models step as their ODE says)."""
    return Param("spacing", str, default, "which timesteps the S steps visit, as in diffusers", choices=SPACINGS,
                 objectives=objectives)  # fmt: skip


EDM_STEPS = Param("steps", int, 18, "N: the noise levels visited, ρ-spaced (2N − 1 evaluations)", "N", minimum=1,
                  maximum=10_000, brief="N={}".format)  # fmt: skip
EDM_RHO = Param("rho", float, RHO, "ρ: how the levels crowd towards σ_min (Karras et al. 2022, eq. 5)", "ρ",
                minimum=1.0, maximum=100.0)  # fmt: skip
S_CHURN = Param(
    "s_churn",
    float,
    0.0,
    "S_churn: how much noise each step adds back (0: the deterministic Heun solve)",
    "S_churn",
    minimum=0.0,
    maximum=1000.0,
    brief=lambda v: f"churn={v:g}" if v else "",
)
S_TMIN = Param("s_tmin", float, 0.0, "S_tmin: the lowest σ churned", "S_tmin", minimum=0.0, maximum=S_TMAX)
S_TMAX_PARAM = Param("s_tmax", float, S_TMAX, "S_tmax: the highest σ churned", "S_tmax", minimum=0.0,
                     maximum=S_TMAX)  # fmt: skip
S_NOISE = Param("s_noise", float, 1.0, "S_noise: the scale of the churn's noise", "S_noise", minimum=0.5, maximum=2.0)

ODE_STEPS = Param("steps", int, 50, "S: the steps of the ODE solve", "S", minimum=1, maximum=10_000,
                  brief="S={}".format)  # fmt: skip
FRAMES = Param("steps", int, 20, "S: the frames recorded (the solver picks its own steps between them)", "S",
               minimum=1, maximum=1_000, brief="S={}".format)  # fmt: skip
RTOL = Param("rtol", float, 1e-5, "the relative tolerance of each step's error", minimum=1e-10, maximum=0.1,
             brief="rtol={:g}".format)  # fmt: skip
ATOL = Param("atol", float, 1e-5, "the absolute tolerance of each step's error", minimum=1e-10, maximum=0.1)


@dataclass(frozen=True)
class ObjectiveInfo:
    """A training objective: what its network predicts, and the samplers that serve its models: ``full_sampler``
    with ``full_params`` runs them in full (training's quality check), ``probe_sampler`` with ``probe_params`` is
    the path a particle follows down the noise levels (the probability flow, or Langevin), ``preview_sampler``
    with ``preview_params`` a quick look while training. ``tables`` names what its models are sampled over (the
    DDPM 'schedule', the σ 'ladder' of NCSN and EDM, or the flow's linear 'path'); ``levels`` what its frames'
    times are: timesteps 't' (T − 1 … 0, −1 for clean output), noise levels 'sigma', or flow times 'time';
    ``buckets`` what its training loss is reported per bucket of."""

    name: str
    title: str
    paper: str
    predicts: str
    full_sampler: str
    probe_sampler: str
    preview_sampler: str
    probe_params: dict = field(default_factory=dict)
    preview_params: dict = field(default_factory=dict)
    tables: str = "schedule"
    levels: str = "t"
    full_params: dict = field(default_factory=dict)
    buckets: str = "t / T"  # what the training loss is bucketed by (``training.Trainer.buckets``), as an axis says

    @property
    def transports(self) -> bool:
        """True for a flow between a source and the data (sampled over the linear path), which has a source and
        a coupling."""
        return self.tables == "path"


@dataclass(frozen=True)
class SamplerInfo:
    """A sampler: its function, what it can drive, its parameters, its cost and its update."""

    name: str
    title: str
    paper: str
    fn: Callable
    objectives: tuple[str, ...]
    params: tuple[Param, ...]
    evals_per_step: float
    formula: str
    steps_param: str | None = None  # the parameter a sweep varies (None: the step count is fixed, DDPM's T)
    latex: str = ""  # the formula in LaTeX
    explain: Callable | None = None  # the terms of one step for one point (``diffvis.core.step_terms``)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def params_for(self, objective: str | None) -> tuple[Param, ...]:
        """The settings this sampler takes when it drives a model of ``objective`` (None: of any kind)."""
        return tuple(p for p in self.params if objective is None or p.applies_to(objective))

    def defaults(self, objective: str | None = None) -> dict:
        return {p.name: p.default for p in self.params_for(objective)}

    def resolve(self, params: dict, objective: str | None = None) -> dict:
        """``params`` checked and completed with the defaults, for a model of ``objective`` (None: any kind, every
        setting); a setting this sampler does not take (for such a model) is refused."""
        if objective is not None and objective not in self.objectives:
            raise ConfigError(f"the {self.name} sampler drives {' and '.join(self.objectives)} models, not "
                              f"{objective}")  # fmt: skip
        takes = self.params_for(objective)
        unknown = set(params) - {p.name for p in takes}
        if unknown:
            names = ", ".join(p.option for p in takes) or "no settings"
            model = f" for a {objective} model" if objective and len(takes) < len(self.params) else ""
            raise ConfigError(f"the {self.name} sampler takes {names}{model}; not {', '.join(sorted(unknown))}")
        return {p.name: p.check(params[p.name]) if p.name in params else p.default for p in takes}


OBJECTIVES: dict[str, ObjectiveInfo] = {
    "ddpm": ObjectiveInfo("ddpm", "DDPM (denoising diffusion)", "Ho, Jain & Abbeel 2020",
                          "ε̂(x_t, t), or x̂₀ or v̂ read as ε̂ (--prediction)", "ddpm", "ddim",
                          "ddim", {"eta": 0.0, "spacing": "linspace"}, {"steps": 25}),
    "ncsn": ObjectiveInfo("ncsn", "NCSN (denoising score matching)", "Song & Ermon 2019", "s(x, σ) ≈ ∇ log p_σ(x)",
                          "langevin", "langevin", "langevin", {}, {"steps_per_level": 10}, "ladder", "sigma",
                          buckets="level i / L (σ_1 left)"),
    "flow": ObjectiveInfo("flow", "Flow matching (velocity)", "Lipman et al. 2023; Liu, Gong & Liu 2023",
                          "v(x_t, t) ≈ E[x₁ − x₀ | x_t]", "dopri5", "rk4", "euler", {"steps": 50}, {"steps": 25},
                          "path", "time", buckets="t (source left, data right)"),
    "edm": ObjectiveInfo("edm", "EDM (preconditioned denoiser)", "Karras et al. 2022", "D(x; σ) ≈ E[x₀ | x]", "edm",
                         "edm", "edm", {}, {}, "ladder", "sigma", {"steps": 64},
                         "share of the training σ below (small σ left)"),
}  # fmt: skip

SAMPLERS: dict[str, SamplerInfo] = {}
ALL_ODES = ("ddpm", "ncsn", "flow", "edm")  # the objectives whose models the ODE solvers drive (``diffvis.core.ode``)


def register_sampler(info: SamplerInfo) -> SamplerInfo:
    """Add a sampler to the vocabulary every front end reads; it must give its formula in LaTeX and how to explain
    a step."""
    if not info.latex or info.explain is None:
        raise ConfigError(f"{info.name}: a sampler needs its formula in LaTeX and an explainer of its steps")
    for objective in info.objectives:
        if objective not in OBJECTIVES:
            raise ConfigError(f"{info.name}: unknown objective {objective!r}")
    SAMPLERS[info.name] = info
    return info


def check_objectives() -> None:
    """Every objective's samplers are registered, drive its models, and take the settings it gives them."""
    for objective in OBJECTIVES.values():
        for sampler, params in ((objective.full_sampler, objective.full_params),
                                (objective.probe_sampler, objective.probe_params),
                                (objective.preview_sampler, objective.preview_params)):  # fmt: skip
            info = sampler_info(sampler)
            if objective.name not in info.objectives:
                raise ConfigError(f"{objective.name}: the {sampler} sampler cannot drive its models")
            info.resolve(params, objective.name)


def swept_samplers(objective: str) -> list[str]:
    """The samplers a sweep of a model of ``objective`` runs by default: those that drive the same kinds of model as
    its preview sampler (DDPM: ddpm and ddim; NCSN: langevin; a flow: the ODE solvers; EDM: edm)."""
    kinds = sampler_info(OBJECTIVES[objective].preview_sampler).objectives
    return [name for name, info in SAMPLERS.items() if info.objectives == kinds]


def sampler_info(name: str) -> SamplerInfo:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


for _info in (
    SamplerInfo("ddpm", "DDPM", "Ho et al. 2020, Algorithm 2", sample_ddpm, ("ddpm",), (VARIANCE,), 1.0,
                "x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂) / √α_t + σ_t z",
                latex=r"x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}"
                r"\,\hat\epsilon\Big) + \sigma_t z",
                explain=explain_ddpm),
    SamplerInfo("ddim", "DDIM", "Song, Meng & Ermon 2021, eq. 12", sample_ddim, ("ddpm",),
                (STEPS, ETA, spacing("leading")), 1.0,
                "x_{t−1} = √ᾱ_{t−1} x̂₀ + √(1 − ᾱ_{t−1} − σ_t²) ε̂ + σ_t z", "steps",
                latex=r"x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0"
                r" + \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\,\hat\epsilon + \sigma_t z",
                explain=explain_ddim),
    SamplerInfo("langevin", "Langevin", "Song & Ermon 2019, Algorithm 1", sample_langevin, ("ncsn",),
                (STEPS_PER_LEVEL, STEP_SIZE, DENOISE), 1.0, "x ← x + α_i/2 · s(x, σ_i) + √α_i z", "steps_per_level",
                latex=r"x' = x + \frac{\alpha_i}{2}\, s_\theta(x, \sigma_i) + \sqrt{\alpha_i}\, z",
                explain=explain_langevin),
    SamplerInfo("euler", "Euler", "Euler's method on the probability flow (DDPM: Karras et al. 2022, eq. 4, = DDIM "
                "η = 0)", sample_euler, ALL_ODES, (ODE_STEPS, spacing("trailing", ("ddpm",))), 1.0,
                "y_{k+1} = y_k + h f(y_k, u_k)", "steps",
                latex=r"y_{k+1} = y_k + h\, f(y_k, u_k)",
                explain=ode_explainer("euler")),
    SamplerInfo("midpoint", "Midpoint", "the explicit midpoint rule (Runge 1895); k-diffusion's DPM-2 for DDPM",
                sample_midpoint, ALL_ODES, (ODE_STEPS, spacing("trailing", ("ddpm",))), 2.0,
                "y_{k+1} = y_k + h f(y_k + h/2 · f(y_k, u_k), u_k + h/2)", "steps",
                latex=r"y_{k+1} = y_k + h\, f\big(y_k + \tfrac{h}{2} f(y_k, u_k),\, u_k + \tfrac{h}{2}\big)",
                explain=ode_explainer("midpoint")),
    SamplerInfo("heun", "Heun", "Heun's method (Karras et al. 2022, Algorithm 1)", sample_heun, ALL_ODES,
                (ODE_STEPS, spacing("trailing", ("ddpm",))), 2.0,
                "y' = y_k + h f(y_k, u_k);  y_{k+1} = y_k + h/2 · (f(y_k, u_k) + f(y', u_{k+1}))", "steps",
                latex=r"y_{k+1} = y_k + \tfrac{h}{2}\big(f(y_k, u_k) + f(y_k + h f(y_k, u_k),\, u_{k+1})\big)",
                explain=ode_explainer("heun")),
    SamplerInfo("rk4", "RK4", "the classical Runge–Kutta method (Kutta 1901)", sample_rk4, ALL_ODES,
                (ODE_STEPS, spacing("trailing", ("ddpm",))), 4.0,
                "y_{k+1} = y_k + h/6 · (k₁ + 2k₂ + 2k₃ + k₄)", "steps",
                latex=r"y_{k+1} = y_k + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)",
                explain=ode_explainer("rk4")),
    SamplerInfo("dopri5", "Dopri5", "Dormand & Prince 1980, adaptive, via torchdiffeq", sample_dopri5,
                ALL_ODES, (FRAMES, RTOL, ATOL, spacing("trailing", ("ddpm",))), 6.0,
                "y_{k+1} = y_k + h Σ_j b_j k_j, h chosen so the 4th/5th-order difference stays within rtol, atol",
                "steps",
                latex=r"y_{k+1} = y_k + h \sum_j b_j k_j",
                explain=ode_explainer("dopri5")),
    SamplerInfo("dpmpp_2m", "DPM-Solver++(2M)", "Lu et al. 2022, Algorithm 2", sample_dpmpp_2m,
                ("ddpm", "ncsn", "edm"), (ODE_STEPS, spacing("trailing", ("ddpm",))), 1.0,
                "y_{k+1} = (σ_{k+1}/σ_k) y_k − (e^{−h} − 1) D_k,  D_k from x̂ of steps k and k − 1", "steps",
                latex=r"y_{k+1} = \frac{\sigma_{k+1}}{\sigma_k}\, y_k - (e^{-h} - 1)\, D_k",
                explain=ode_explainer("dpmpp_2m")),
    SamplerInfo("edm", "EDM", "Karras et al. 2022, Algorithm 2", sample_edm, ("edm", "ncsn"),
                (EDM_STEPS, EDM_RHO, S_CHURN, S_TMIN, S_TMAX_PARAM, S_NOISE), 2.0,
                "t̂ = (1 + γ) t_i, x̂ = x_i + √(t̂² − t_i²) z;  x_{i+1} = x̂ + (t_{i+1} − t̂)/2 · (d(x̂, t̂) "
                "+ d(x', t_{i+1})), d = (x − D(x; t))/t", "steps",
                latex=r"x_{i+1} = \hat x + \tfrac{t_{i+1} - \hat t}{2}\big(d(\hat x, \hat t)"
                r" + d(x', t_{i+1})\big),\ d(x, t) = \frac{x - D_\theta(x; t)}{t}",
                explain=explain_edm),
):  # fmt: skip
    register_sampler(_info)
check_objectives()
