"""The sampling vocabulary, in one place: every sampler and training objective, and what each takes.

A ``SamplerInfo`` names a sampler function (the contract of ``samplers``: ``fn(model, x_T, schedule_or_ladder, *,
<params>, generator, callback, normaliser, start)``), its paper, the objectives whose models it can drive, its
parameters with their types, defaults, valid ranges and help, the model evaluations it spends per step, and its
update formula as text. Front ends (the CLI, the views, compare, sweep) read these entries and never spell a
sampler's settings themselves; ``register_sampler`` adds one, and every front end offers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from diffvis.core.samplers import VARIANCES, sample_ddim, sample_ddpm, sample_langevin
from diffvis.core.schedules import SPACINGS
from diffvis.core.solvers import sample_dpmpp_2m, sample_euler, sample_heun
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
    brief: Callable[[object], str] | None = None  # how a panel's label shows the value, e.g. 'η=0.3' (None: not)

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
        if self.kind is bool:
            return f"{self.help} (default {'on' if self.default else 'off'})"
        where = f"one of {', '.join(self.choices)}" if self.choices else f"{self.minimum:g} to {self.maximum:g}"
        return f"{self.help} ({where}; default {self.default})"


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


def spacing(default: str) -> Param:
    """Which S of the T timesteps a run visits (diffusers' meanings), with a sampler's own default."""
    return Param("spacing", str, default, "which timesteps the S steps visit, as in diffusers", choices=SPACINGS)


@dataclass(frozen=True)
class ObjectiveInfo:
    """A training objective: what its network predicts, and the samplers that serve its models: ``full_sampler``
    runs them in full (training's quality check), ``probe_sampler`` with ``probe_params`` is the path a particle
    follows down the noise levels (the probability flow, or Langevin), ``preview_sampler`` with
    ``preview_params`` a quick look while training."""

    name: str
    title: str
    paper: str
    predicts: str
    full_sampler: str
    probe_sampler: str
    preview_sampler: str
    probe_params: dict = field(default_factory=dict)
    preview_params: dict = field(default_factory=dict)


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
    levels: str = "t"  # what its frames' times are: timesteps 't', or noise levels 'sigma' (Langevin)
    defaults: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", {p.name: p.default for p in self.params})

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def resolve(self, params: dict) -> dict:
        """``params`` checked and completed with the defaults; a setting this sampler does not take is refused."""
        unknown = set(params) - set(self.defaults)
        if unknown:
            takes = ", ".join(p.option for p in self.params) or "no settings"
            raise ConfigError(f"the {self.name} sampler takes {takes}; not {', '.join(sorted(unknown))}")
        return {p.name: p.check(params[p.name]) if p.name in params else p.default for p in self.params}


OBJECTIVES: dict[str, ObjectiveInfo] = {
    "ddpm": ObjectiveInfo("ddpm", "DDPM (ε-prediction)", "Ho, Jain & Abbeel 2020", "ε̂(x_t, t)", "ddpm", "ddim",
                          "ddim", {"eta": 0.0, "spacing": "linspace"}, {"steps": 25}),
    "ncsn": ObjectiveInfo("ncsn", "NCSN (denoising score matching)", "Song & Ermon 2019", "s(x, σ) ≈ ∇ log p_σ(x)",
                          "langevin", "langevin", "langevin", {}, {"steps_per_level": 10}),
}  # fmt: skip

SAMPLERS: dict[str, SamplerInfo] = {}


def register_sampler(info: SamplerInfo) -> SamplerInfo:
    """Add a sampler to the vocabulary every front end reads."""
    for objective in info.objectives:
        if objective not in OBJECTIVES:
            raise ConfigError(f"{info.name}: unknown objective {objective!r}")
    SAMPLERS[info.name] = info
    return info


def check_objectives() -> None:
    """Every objective's samplers are registered, drive its models, and take the settings it gives them."""
    for objective in OBJECTIVES.values():
        for sampler, params in ((objective.full_sampler, {}), (objective.probe_sampler, objective.probe_params),
                                (objective.preview_sampler, objective.preview_params)):  # fmt: skip
            info = sampler_info(sampler)
            if objective.name not in info.objectives:
                raise ConfigError(f"{objective.name}: the {sampler} sampler cannot drive its models")
            info.resolve(params)


def sampler_info(name: str) -> SamplerInfo:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


for _info in (
    SamplerInfo("ddpm", "DDPM", "Ho et al. 2020, Algorithm 2", sample_ddpm, ("ddpm",), (VARIANCE,), 1.0,
                "x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂) / √α_t + σ_t z"),
    SamplerInfo("ddim", "DDIM", "Song, Meng & Ermon 2021, eq. 12", sample_ddim, ("ddpm",),
                (STEPS, ETA, spacing("leading")), 1.0,
                "x_{t−1} = √ᾱ_{t−1} x̂₀ + √(1 − ᾱ_{t−1} − σ_t²) ε̂ + σ_t z", "steps"),
    SamplerInfo("langevin", "Langevin", "Song & Ermon 2019, Algorithm 1", sample_langevin, ("ncsn",),
                (STEPS_PER_LEVEL, STEP_SIZE, DENOISE), 1.0, "x ← x + α_i/2 · s(x, σ_i) + √α_i z", "steps_per_level",
                "sigma"),
    SamplerInfo("euler", "Euler", "Karras et al. 2022, eq. 4 (= DDIM, η = 0)", sample_euler, ("ddpm",),
                (STEPS, spacing("trailing")), 1.0, "x̃_{k+1} = x̃_k + (σ_{k+1} − σ_k) ε̂", "steps"),
    SamplerInfo("heun", "Heun", "Karras et al. 2022, Algorithm 1", sample_heun, ("ddpm",),
                (STEPS, spacing("trailing")), 2.0,
                "x̃' = x̃_k + (σ_{k+1} − σ_k) ε̂_k;  x̃_{k+1} = x̃_k + (σ_{k+1} − σ_k)(ε̂_k + ε̂')/2", "steps"),
    SamplerInfo("dpmpp_2m", "DPM-Solver++(2M)", "Lu et al. 2022, Algorithm 2", sample_dpmpp_2m, ("ddpm",),
                (STEPS, spacing("trailing")), 1.0,
                "x̃_{k+1} = (σ_{k+1}/σ_k) x̃_k − (e^{−h} − 1) D_k,  D_k from x̂₀ of steps k and k − 1", "steps"),
):  # fmt: skip
    register_sampler(_info)
check_objectives()
