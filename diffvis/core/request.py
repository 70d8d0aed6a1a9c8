"""What to sample, as every front end asks for it: one ``SampleRequest``.

A request names a sampler and its settings (checked against the registry and completed with the sampler's
defaults, so two requests that sample alike compare equal), the kind of model it drives (for a sampler of several
objectives, such as the ODE solvers: None until it meets a model, see ``bound``), the trained network or the
exact model, a class and its guidance scale, how many points, and the seed. The seed gives the n points of
N(0, I) noise and then, from the same generator, the sampler's own noise: the same request gives the same samples
in ``diffvis sample``, ``render``, the reverse view, a comparison panel and ``sweep``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.datasets import MAX_POINTS
from diffvis.core.guidance import check_guidance, check_interval
from diffvis.core.registry import SamplerInfo, sampler_info
from diffvis.core.validation import MAX_SEED
from diffvis.errors import ConfigError

DEFAULT_SAMPLER = "ddim"
SNAPSHOT = "snapshot"  # ``guide_with`` = 'snapshot:STEP', the run's EMA weights at that step; 'snapshot' alone:
# the half-way one (``training.WEAK_SHARE``), the best weak model of the guidance study (README)


def snapshot_step(spec: str) -> int | None:
    """The step of 'snapshot:STEP', None for 'snapshot' (the run's default weak model); ConfigError for any other
    spelling of a snapshot."""
    if spec == SNAPSHOT:
        return None
    step = spec.removeprefix(SNAPSHOT + ":")
    if not (spec.startswith(SNAPSHOT + ":") and step.isdigit() and int(step) >= 1):
        raise ConfigError(f"a snapshot is named {SNAPSHOT}:STEP with a whole STEP ≥ 1 (or {SNAPSHOT}), got {spec!r}")
    return int(step)


def is_snapshot(spec: str) -> bool:
    return spec == SNAPSHOT or spec.startswith(SNAPSHOT + ":")


def check_guide(spec) -> None:
    """A weak model is 'snapshot', 'snapshot:STEP' (a whole STEP ≥ 1) or a run folder's path."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--guide-with takes {SNAPSHOT}[:STEP] or a run folder, got {spec!r}")
    if is_snapshot(spec):
        snapshot_step(spec)


def guide_text(spec: str) -> str:
    """'snapshot 625', 'the half-way snapshot' or the run folder's name."""
    from pathlib import Path

    if not is_snapshot(spec):
        return Path(spec).name
    step = snapshot_step(spec)
    return "the half-way snapshot" if step is None else f"snapshot {step}"


EXACT_DENSITY = "density"  # ``exact``: the exact model of the distribution the data was drawn from
EXACT_CHOICES = (False, True, EXACT_DENSITY)


@dataclass(frozen=True)
class SampleRequest:
    """``exact``: False (the trained network), True (the exact model of the training points) or ``EXACT_DENSITY``
    (of the distribution they were drawn from, where it is known); ``label``: None (the model's default: every
    class in proportion for a conditional model), ``ALL_CLASSES``, ``UNCONDITIONAL`` (f(x, t, ∅)) or a dense class
    id; ``guidance`` is the scale w towards that class."""

    sampler: str = DEFAULT_SAMPLER
    params: dict = field(default_factory=dict)
    exact: bool | str = False
    label: int | str | None = None
    guidance: float = 1.0
    n: int = 2000
    seed: int = 0
    objective: str | None = None
    interval: tuple[float, float] | None = None
    guide_with: str | None = None

    def __post_init__(self) -> None:
        params = sampler_info(self.sampler).resolve(dict(self.params), self.objective)
        object.__setattr__(self, "params", params)
        check_guidance(self.guidance)
        if not any(self.exact is choice or (isinstance(choice, str) and self.exact == choice)
                   for choice in EXACT_CHOICES):  # fmt: skip
            raise ConfigError(f"exact must be false, true or {EXACT_DENSITY!r}, got {self.exact!r}")
        if isinstance(self.label, str):
            if self.label not in (ALL_CLASSES, UNCONDITIONAL):
                raise ConfigError(f"a class is a number, {ALL_CLASSES!r} or {UNCONDITIONAL!r}, not {self.label!r}")
        elif self.label is not None and (isinstance(self.label, bool) or not isinstance(self.label, int)
                                         or self.label < 0):  # fmt: skip
            raise ConfigError(f"a class id is a whole number of 0 or more, got {self.label!r}")
        if not self.conditional and self.guidance != 1.0 and self.guide_with is None:
            raise ConfigError(f"classifier-free guidance steers towards a class: choose one, or {ALL_CLASSES!r} for "
                              "every class (or guide with a weaker model: --guide-with)")  # fmt: skip
        if self.interval is not None:
            check_interval(self.interval)
            object.__setattr__(self, "interval", tuple(float(v) for v in self.interval))
            if self.guidance == 1.0:
                raise ConfigError("a guidance interval limits guidance: set a guidance scale w other than 1")
        if self.guide_with is not None:
            check_guide(self.guide_with)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_POINTS:
            raise ConfigError(f"the number of samples must be a whole number from 1 to {MAX_POINTS:,}, got {self.n!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"the seed must be a whole number from 0 to {MAX_SEED:,}, got {self.seed!r}")

    @property
    def info(self) -> SamplerInfo:
        return sampler_info(self.sampler)

    def bound(self, model_objective: str | None) -> SampleRequest:
        """This request with its objective settled: the one it names; else ``model_objective`` (a trained run's)
        when its sampler drives such models; else the first its sampler drives (an exact model is built for it).
        Settings that do not apply to that kind of model (DDPM's spacing for a flow model) are dropped."""
        if self.objective is not None:
            return self
        info = self.info
        objective = model_objective if model_objective in info.objectives else info.objectives[0]
        params = {k: v for k, v in self.params.items() if info.param(k).applies_to(objective)}
        return replace(self, objective=objective, params=params)

    @property
    def conditional(self) -> bool:
        """True when a class is asked for explicitly (a number or 'all', not the default and not unconditional)."""
        return self.label not in (None, UNCONDITIONAL)

    @property
    def steps(self) -> int | None:
        """The sweepable step count (S, or K per level for Langevin); None for a sampler that takes all T."""
        key = self.info.steps_param
        return None if key is None else int(self.params[key])

    def with_steps(self, steps: int) -> SampleRequest:
        key = self.info.steps_param
        return self if key is None else replace(self, params={**self.params, key: steps})

    def sampler_kwargs(self) -> dict:
        """The keyword arguments of ``SamplingModel.sample``: the settings, the class, the guidance scale and its
        interval (the weak model of autoguidance goes with the ``SamplingModel``)."""
        guiding = {"guidance": self.guidance} if self.conditional or self.guide_with is not None else {}
        return {**self.params, "label": self.label, **guiding,
                **({"interval": self.interval} if self.interval is not None else {})}  # fmt: skip

    def noise(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Generator]:
        """The n × 2 starting noise and the generator, seeded with ``seed``, that the sampler goes on drawing from."""
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randn(self.n, 2, generator=generator).to(device), generator

    @property
    def label_text(self) -> str:
        """e.g. 'DDIM S=50 η=0', 'DDPM (β̃)', 'Langevin K=20 · exact', with 'w=3' when a class is asked for."""
        return self.describe(with_steps=True)

    @property
    def family(self) -> str:
        """The label without the step count: one line of a sweep."""
        return self.describe(with_steps=False)

    def describe(self, with_steps: bool) -> str:
        info, parts = self.info, [self.info.title]
        for param in info.params:
            if param.name == info.steps_param and not with_steps:
                continue
            text = "" if param.brief is None else param.brief(self.params[param.name])
            if text:
                parts.append(text)
        if self.conditional or self.guide_with is not None:
            parts.append(f"w={self.guidance:g}")
        if self.interval is not None:
            parts.append(f"σ∈({self.interval[0]:g}, {self.interval[1]:g}]")
        if self.guide_with is not None:
            parts.append(f"auto-guided by {guide_text(self.guide_with)}")
        return " ".join(parts) + self.exact_text

    @property
    def exact_text(self) -> str:
        """'' for the trained network, ' · exact' or ' · exact density' for the exact models."""
        return {False: "", True: " · exact", EXACT_DENSITY: " · exact density"}[self.exact]
