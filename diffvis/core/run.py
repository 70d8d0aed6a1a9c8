"""A trained run: the EMA network plus everything needed to sample from it in data coordinates."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL, Classes
from diffvis.core.datasets import Normaliser
from diffvis.core.exact import exact_model
from diffvis.core.flow import LINEAR_PATH, SOURCES, draw_source, source_points
from diffvis.core.gaussian_mixture import GaussianMixture
from diffvis.core.guidance import guided, noise_level
from diffvis.core.models import ConditionalMLP, ModelConfig, build_model
from diffvis.core.parametrization import as_eps_model
from diffvis.core.registry import OBJECTIVES, sampler_info
from diffvis.core.schedules import Schedule, SigmaLadder, max_pairwise_distance
from diffvis.core.training import TrainConfig, Trainer, sigma_ladder
from diffvis.core.trajectory import Callback, Trajectory
from diffvis.errors import ConfigError

LABEL_SEED = 4321  # the labels of "all classes, in proportion"


@dataclass
class Run:
    """``ema`` is the network that samples; ``data_info`` describes where the training points came from (as
    ``LabState.data_info``; ``LabState.data`` is the points); ``classes`` are what a class-conditional network was
    conditioned on (None for an unconditional one); ``source_points`` are a flow's source points read from a point
    file (standardised), kept with the run (None: N(0, I), or a built-in set, drawn again)."""

    model_config: ModelConfig
    train_config: TrainConfig
    normaliser: Normaliser
    schedule: Schedule
    ladder: SigmaLadder
    ema: ConditionalMLP
    data_info: dict = field(default_factory=dict)
    step: int = 0
    loss_history: list[float] = field(default_factory=list)
    quality: dict = field(default_factory=dict)
    classes: Classes | None = None
    source_points: np.ndarray | None = None
    snapshots: dict[int, dict] = field(default_factory=dict)  # the EMA weights at earlier steps, by step

    @property
    def objective(self) -> str:
        return self.model_config.objective

    def snapshot(self, step: int) -> ConditionalMLP:
        """The EMA network as it was at ``step`` (one of ``snapshots``), or ConfigError naming the steps kept."""
        if step not in self.snapshots:
            kept = ", ".join(str(s) for s in sorted(self.snapshots)) or "none (a run trained before snapshots)"
            raise ConfigError(f"the run keeps no snapshot of step {step}; it keeps {kept}")
        net = build_model(self.model_config)
        net.load_state_dict(self.snapshots[step])
        return net.to(next(self.ema.parameters()).device).eval().requires_grad_(False)

    @classmethod
    def from_trainer(cls, trainer: Trainer, normaliser: Normaliser, data_info: dict) -> Run:
        kept = trainer.source is not None and trainer.cfg.source not in SOURCES
        return cls(
            trainer.model_config,
            trainer.cfg,
            normaliser,
            trainer.schedule,
            trainer.ladder,
            trainer.ema_model(),
            data_info,
            trainer.step,
            list(trainer.loss_history),
            classes=trainer.classes,
            source_points=trainer.source.cpu().numpy().astype(np.float64) if kept else None,
            snapshots=dict(trainer.snapshots),
        )


def sampled_network(run: Run, net: ConditionalMLP):
    """``net`` (the run's EMA network or a snapshot of it) as its samplers drive it: a DDPM network seen as its
    ε-predictor (``parametrization.as_eps_model``), any other as it is."""
    prediction = run.model_config.prediction
    return net if prediction is None else as_eps_model(net, run.schedule, prediction)


def tables_of(objective: str, schedule: Schedule, ladder: SigmaLadder):
    """The tables a model of ``objective`` is sampled over: its DDPM schedule, NCSN ladder or flow path."""
    return {"schedule": schedule, "ladder": ladder, "path": LINEAR_PATH}[OBJECTIVES[objective].tables]


def sample(
    model,
    objective: str,
    sampler: str,
    x_T: torch.Tensor,
    *,
    schedule: Schedule,
    ladder: SigmaLadder,
    normaliser: Normaliser,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    start: int | None = None,
    label=None,
    guidance: float = 1.0,
    interval: tuple[float, float] | None = None,
    guide=None,
    **params,
) -> Trajectory:
    """Run sampler ``sampler`` on ``model`` (an ε-model for 'ddpm', a score model for 'ncsn' and 'edm', a velocity
    model for 'flow'), guided towards class ``label`` (a dense id or one per point; None: unconditional) at scale
    ``guidance``, by classifier-free guidance or, given the weak model ``guide``, by autoguidance, in the noise
    levels of ``interval`` (None: all; see ``guidance.guided``). ``params`` are the sampler's settings, checked
    against the registry and completed with its defaults."""
    info = sampler_info(sampler)
    if objective not in info.objectives:
        raise ConfigError(f"the {sampler} sampler needs a {' or '.join(info.objectives)} model, but this one was "
                          f"trained for {objective}")  # fmt: skip
    common = {"generator": generator, "callback": callback, "normaliser": normaliser, "start": start}
    tables = tables_of(objective, schedule, ladder)
    model = guided(model, label, guidance, weak=guide, interval=interval, level=noise_level(tables))
    traj = info.fn(model, x_T, tables, **info.resolve(params, objective), **common)
    guiding = {"guidance": guidance} if guidance != 1.0 else {}
    guiding.update({"interval": list(interval)} if interval is not None else {})
    if label is None:
        return replace(traj, params={**traj.params, **guiding}) if guiding else traj
    labels = torch.as_tensor(label).expand(len(x_T)).cpu().numpy().astype(np.int64)
    which = int(label) if torch.as_tensor(label).ndim == 0 else "all"
    return replace(traj, params={**traj.params, "class": which, "guidance": guidance, **guiding}, labels=labels)


@dataclass(frozen=True)
class SamplingModel:
    """A model ready to sample from and to take scores of: a run's EMA network (a DDPM one seen as its ε-predictor,
    ``parametrization.as_eps_model``), or the exact denoiser (ddpm), exact score (ncsn, edm) or exact velocity
    (flow) of a point set, with the tables and the normaliser that go with it."""

    model: object
    objective: str
    schedule: Schedule
    ladder: SigmaLadder
    normaliser: Normaliser
    exact: bool = False
    classes: Classes | None = None
    source: torch.Tensor | None = None  # a flow run's source points (standardised); None: N(0, I)
    guide: object | None = None  # autoguidance's weak model, of the same kind (``guidance.guided``); None: CFG

    @classmethod
    def of_run(cls, run: Run) -> SamplingModel:
        source = None
        if run.objective == "flow":  # N(0, I), a built-in set drawn again, or a point file's points kept in the run
            source = run.source_points
            if source is None and run.train_config.source in SOURCES:
                source = source_points(run.train_config.source, run.normaliser)
        source = None if source is None else torch.as_tensor(source, dtype=torch.float32)
        return cls(sampled_network(run, run.ema), run.objective, run.schedule, run.ladder, run.normaliser,
                   classes=run.classes, source=source)  # fmt: skip

    def starting_points(self, request) -> tuple[torch.Tensor, torch.Generator]:
        """The request's n starting points, standardised (its seeded N(0, I) noise, or for a flow run with a data
        set source n of its points drawn with the request's seed), and the generator the sampler goes on with."""
        if self.source is None:
            return request.noise()
        generator = torch.Generator().manual_seed(request.seed)
        return draw_source(self.source, request.n, generator), generator

    @classmethod
    def exact_of(
        cls,
        points: np.ndarray,
        objective: str,
        schedule: Schedule,
        device: str | torch.device = "cpu",
        ladder: SigmaLadder | None = None,
        classes: Classes | None = None,
        labels: np.ndarray | None = None,
        mixture: GaussianMixture | None = None,
    ) -> SamplingModel:
        """Standardise ``points`` (data coordinates, N ≥ 2) and build their exact model, conditional on
        ``classes`` when given (``labels`` are the points' dense ids); the σ ladder is the given one (a run's), or
        runs from the standardised data's diameter down, as for training. Given the ``mixture`` the points were
        drawn from (data coordinates), the model is that distribution's, in the same coordinates."""
        normaliser = Normaliser.fit(points)
        std = torch.as_tensor(normaliser.to_std(points), dtype=torch.float32, device=device)
        ladder = ladder or sigma_ladder(objective, max_pairwise_distance(std.cpu().numpy()), TrainConfig())
        labels = None if classes is None else labels
        if mixture is not None:
            mixture = mixture.standardised(normaliser.mean, normaliser.scale)
        model = exact_model(std, objective, schedule, labels, mixture)
        return cls(model, objective, schedule, ladder, normaliser, exact=True, classes=classes)

    @property
    def tables(self):
        """The tables this model is sampled over (``tables_of``)."""
        return tables_of(self.objective, self.schedule, self.ladder)

    @property
    def device(self) -> torch.device:
        """Where the model computes (starting noise goes there)."""
        if isinstance(self.model, torch.nn.Module):
            return next(self.model.parameters()).device
        return self.model.points.device

    def sample(self, sampler: str, x_T: torch.Tensor, *, label=None, **kwargs) -> Trajectory:
        """Run ``sampler`` from standardised noise x_T; the trajectory comes back in data coordinates.

        ``label``: None (the default: every class in proportion for a conditional model, which is where it is
        best trained; nothing for an unconditional one), ``UNCONDITIONAL`` (f(x, t, ∅)), a dense class id, a (N,)
        tensor of them, or ``ALL_CLASSES``: one per point drawn in proportion to the classes (from a fixed seed,
        so the noise stays the caller's)."""
        label = self.resolve_label(label, len(x_T))
        with torch.inference_mode():
            return sample(self.model, self.objective, sampler, x_T, schedule=self.schedule, ladder=self.ladder,
                          normaliser=self.normaliser, label=label, guide=self.guide, **kwargs)  # fmt: skip

    def resolve_label(self, label, n: int):
        """A class choice as the sampler takes it (None: unconditional): None means ``ALL_CLASSES`` for a
        conditional model, ``ALL_CLASSES`` becomes n labels drawn in proportion, ``UNCONDITIONAL`` becomes None,
        and a dense id (or a tensor of them) must be one of this model's classes."""
        if label is None:
            label = ALL_CLASSES if self.classes is not None else None
        if label is None or (isinstance(label, str) and label == UNCONDITIONAL):
            return None
        if self.classes is None:
            raise ConfigError(f"class {label!r} asked of a model without classes")
        if isinstance(label, str):
            if label != ALL_CLASSES:
                raise ConfigError(f"unknown class choice {label!r}")
            return self.classes.draw(n, torch.Generator().manual_seed(LABEL_SEED))
        ids, k = torch.as_tensor(label), len(self.classes)
        if ids.is_floating_point() or bool(((ids < 0) | (ids >= k)).any()):
            raise ConfigError(f"a class id must be a whole number from 0 to {k - 1} for this model's {k} classes")
        return label


def sample_run(run: Run, sampler: str, x_T: torch.Tensor, **kwargs) -> Trajectory:
    """Sample from a trained run's EMA network."""
    return SamplingModel.of_run(run).sample(sampler, x_T, **kwargs)
