"""What every front end runs: train a run from points, measure its sample quality, sample trajectories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from diffvis.core.classes import ALL_CLASSES, Classes, dense_labels
from diffvis.core.datasets import Normaliser, PointSet
from diffvis.core.flow import source_points
from diffvis.core.gaussian_mixture import GaussianMixture
from diffvis.core.metrics import MetricResult, class_accuracy, class_quality, quality_report
from diffvis.core.models import ModelConfig
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import EXACT_DENSITY, SampleRequest, is_snapshot, snapshot_step
from diffvis.core.run import Run, SamplingModel, sampled_network
from diffvis.core.schedules import Schedule, max_pairwise_distance
from diffvis.core.training import Progress, TrainConfig, TrainControl, Trainer, weak_step
from diffvis.core.trajectory import Trajectory
from diffvis.errors import ConfigError

QUALITY_N = 2000


def make_trainer(
    data: PointSet | np.ndarray, model_config: ModelConfig, cfg: TrainConfig
) -> tuple[Trainer, Normaliser]:
    """Standardise the points and build the trainer; NCSN's σ_max is the standardised data's diameter.

    A point set of two or more classes trains a class-conditional model unless ``cfg.conditional`` is False (a
    bare (N, 2) array has no labels); the model config's ``num_classes`` is set from the data either way."""
    data = data if isinstance(data, PointSet) else PointSet(np.asarray(data, dtype=np.float64))
    if len(data) < 2:
        raise ConfigError(f"training needs at least two points, got {len(data)}")
    classes = Classes.of(data) if cfg.conditional else None
    model_config = replace(model_config, num_classes=len(classes) if classes else 0)
    normaliser = Normaliser.fit(data.points)
    std = normaliser.to_std(data.points)
    trainer = Trainer(std, model_config, cfg, sigma_max=max_pairwise_distance(std), classes=classes,
                      labels=dense_labels(classes, data), source=source_points(cfg.source, normaliser))  # fmt: skip
    return trainer, normaliser


def train_run(
    data: PointSet | np.ndarray,
    model_config: ModelConfig,
    cfg: TrainConfig,
    data_info: dict,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    control: TrainControl | None = None,
) -> Run:
    trainer, normaliser = make_trainer(data, model_config, cfg)
    trainer.run(on_progress, control)
    return Run.from_trainer(trainer, normaliser, data_info)


def evaluate_run(run: Run, draw: Callable[[int], np.ndarray], *, n: int = QUALITY_N, seed: int = 0):
    """Sample n points with the run's full sampler (DDPM, annealed Langevin for NCSN, dopri5 for a flow, the EDM
    sampler at 64 levels for EDM) from seeded starting points and compare them with fresh data; returns
    {metric: MetricResult}."""
    info = OBJECTIVES[run.objective]
    request = SampleRequest(info.full_sampler, info.full_params, n=n, seed=seed, objective=run.objective)
    samples = sample_request(SamplingModel.of_run(run), request).samples
    return quality_report(samples.astype(np.float64), draw)


NLL_CHECK_POINTS = 500  # fresh points of the NLL a run on a known-density set is checked with after training


@dataclass(frozen=True)
class DensityCheck:
    """A run's held-out NLL next to the true one, on the same fresh points (nats per point, data coordinates):
    each mean, and the paired difference's standard error."""

    model: float
    true: float
    difference_error: float
    points: int

    def to_dict(self) -> dict:
        return {"model": self.model, "true": self.true, "difference_error": self.difference_error,
                "points": self.points}  # fmt: skip


def check_density(run: Run, mixture: GaussianMixture, points: np.ndarray) -> DensityCheck | None:
    """The run's NLL of ``points`` (dopri5 at the default tolerances; every class in proportion for a
    conditional run) beside the true −log p of the ``mixture`` they were drawn from; None for a run without a
    density (a flow from a data set)."""
    from diffvis.core.likelihood import model_log_likelihood

    try:
        log_p = model_log_likelihood(SamplingModel.of_run(run), points).log_p
    except ConfigError:
        return None
    true = mixture.log_prob(torch.as_tensor(points, dtype=torch.float64)).numpy()
    gap = true - log_p
    return DensityCheck(float(-log_p.mean()), float(-true.mean()), float(gap.std(ddof=1) / np.sqrt(len(gap))),
                        len(points))  # fmt: skip


@dataclass(frozen=True)
class ClassScore:
    """How the samples drawn for one class fare: ``accuracy`` is the share whose nearest fresh data point is of
    their class; ``metrics`` compare them with that class's fresh points, next to the floors."""

    name: str
    count: int
    accuracy: float
    metrics: dict[str, MetricResult]


def score_classes(
    samples: np.ndarray, labels: np.ndarray, classes: Classes, draw: Callable[[int], PointSet], *, n_pairs: int = 4
) -> list[ClassScore]:
    """Per-class scores of ``samples`` drawn for the dense ``labels``; ``draw(seed)`` gives fresh labelled data."""
    fresh = draw(9_999)
    fresh_labels = classes.encode(fresh.labels)

    def dense_draw(seed: int) -> tuple[np.ndarray, np.ndarray]:
        data = draw(seed)
        return data.points, classes.encode(data.labels)

    quality = class_quality(samples, labels, dense_draw, n_pairs=n_pairs)
    scores = []
    for c in sorted(quality):
        drawn = labels == c
        accuracy = class_accuracy(samples[drawn], labels[drawn], fresh.points, fresh_labels)
        scores.append(ClassScore(classes.names[c], int(drawn.sum()), accuracy, quality[c]))
    return scores


def evaluate_classes(run: Run, draw: Callable[[int], PointSet], *, n: int = QUALITY_N, seed: int = 0):
    """A conditional run's full sampler at w = 1 for every class in proportion, scored per class."""
    info = OBJECTIVES[run.objective]
    request = SampleRequest(info.full_sampler, info.full_params, label=ALL_CLASSES, n=n, seed=seed)
    traj = sample_request(SamplingModel.of_run(run), request)
    return score_classes(traj.samples.astype(np.float64), traj.labels, run.classes, draw)


def quality_to_dict(report: dict[str, MetricResult]) -> dict:
    return {
        k: {"value": r.value, "floor": r.floor, "floor_std": r.floor_std, "ratio": r.ratio} for k, r in report.items()
    }


def sampling_model(
    run: Run | None,
    data: PointSet | np.ndarray,
    objective: str,
    *,
    exact: bool | str = False,
    schedule: Schedule | None = None,
    device: str | torch.device = "cpu",
) -> SamplingModel:
    """The run's EMA network, or (``exact``, or no run) the exact model of the points: a perfect model, which
    memorises them; with ``exact`` = ``EXACT_DENSITY`` and a point set drawn from a known density, the exact model
    of that distribution (its classes in its own proportions). The exact model uses the run's schedule, σ ladder
    and classes, or with no run ``schedule`` and the classes of a labelled point set (an array has none)."""
    data = data if isinstance(data, PointSet) else PointSet(np.asarray(data, dtype=np.float64))
    if run is not None and not exact:
        if run.objective != objective:
            raise ConfigError(f"this needs a {objective} model, but the run was trained for {run.objective}: "
                              f"choose the exact model, or train a {objective} model")  # fmt: skip
        return SamplingModel.of_run(run)
    mixture = data.density if exact == EXACT_DENSITY else None
    classes = Classes.of(data) if run is None else run.classes
    if classes is not None and mixture is not None:  # the distribution's class shares, not the draw's
        classes = replace(classes, fractions=mixture.class_shares())
    return SamplingModel.exact_of(data.points, objective, schedule or Schedule.make() if run is None else run.schedule,
                                  device, ladder=None if run is None else run.ladder, classes=classes,
                                  labels=dense_labels(classes, data), mixture=mixture)  # fmt: skip


def exact_model_of(
    data: str, objective: str, *, schedule: Schedule | None = None, n: int = 20_000, device: str | torch.device = "cpu"
) -> tuple[SamplingModel, GaussianMixture | None]:
    """The exact model that ``--exact DATA`` names, and the density it knows (data coordinates) or None: for a
    built-in set with a known density (``gmm8``, ``grid25``, ``tree``) the exact model of that distribution, in the
    coordinates of its default draw of n points; for any other set or a point file, the exact model of its
    points (a built-in set's default draw)."""
    from diffvis.core.sources import load_source

    points, _ = load_source(data, n=n)
    model = sampling_model(None, points, objective, exact=EXACT_DENSITY, schedule=schedule, device=device)
    return model, points.density


def request_model(
    request: SampleRequest, run: Run | None, data: PointSet | np.ndarray, schedule: Schedule
) -> tuple[SamplingModel, str]:
    """The model a request samples, and its label: the run's network when asked for and able to serve the
    sampler (its objective, and classes if a class is asked for); otherwise the exact model of ``data`` (a point
    set's labels make it conditional), with the run's schedule (``schedule`` with no run), and the label says why."""
    bound = request.bound(run.objective if run is not None else None)
    model = sampling_model(run if served_by(request, run) else None, data, bound.objective, exact=request.exact,
                           schedule=run.schedule if run is not None else schedule)  # fmt: skip
    if request.guide_with is not None:
        model = with_guide(model, request.guide_with, run)
    missing = request.exact == EXACT_DENSITY and getattr(data, "density", None) is None
    return model, request.label_text + fallback_note(request, run) + (" (of the points: no known density)"
                                                                       if missing else "")  # fmt: skip


def with_guide(model: SamplingModel, spec: str, run: Run | None) -> SamplingModel:
    """``model`` (the run's network) autoguided by the weak model ``spec`` names: 'snapshot:STEP', the run's EMA
    weights at that step ('snapshot': half-way through its training, ``weak_step``), or a run folder trained for
    the same objective on the same points with the same tables and classes. An exact model has no weaker self, and
    is refused."""
    if model.exact or run is None:
        raise ConfigError("autoguidance guides a trained run with a weaker one: the exact model has none")
    if is_snapshot(spec):
        step = snapshot_step(spec)
        weak = run.snapshot(weak_step(run.train_config.steps) if step is None else step)
        return replace(model, guide=sampled_network(run, weak))
    from diffvis.core.checkpoint import load_run

    other = load_run(spec)
    same = (other.objective == run.objective and other.normaliser == run.normaliser
            and other.schedule.to_dict() == run.schedule.to_dict() and other.classes == run.classes
            and np.array_equal(other.ladder.sigmas, run.ladder.sigmas))  # fmt: skip
    if not same:
        raise ConfigError(f"{spec}: a weak model must be a {run.objective} run on the same points, with the same "
                          "schedule, noise levels and classes as the run it guides")  # fmt: skip
    return replace(model, guide=SamplingModel.of_run(other).model.to(model.device))


def served_by(request: SampleRequest, run: Run | None) -> bool:
    """True when ``run``'s network can sample ``request``: the sampler's kind, and classes if it asks for one."""
    return run is not None and request.bound(run.objective).objective == run.objective and (
        run.classes is not None or not request.conditional)  # fmt: skip


def fallback_note(request: SampleRequest, run: Run | None) -> str:
    """' · exact (…)' when the trained model was asked for but cannot serve the request, else ''."""
    if request.exact or served_by(request, run):
        return ""
    if run is None:
        return " · exact"
    why = "unconditional" if run.objective == request.bound(run.objective).objective else run.objective.upper()
    return f" · exact (the run is {why})"


def bound_to(model: SamplingModel, request: SampleRequest) -> SampleRequest:
    """``request`` settled for ``model``'s objective (see ``SampleRequest.bound``); one that names another kind of
    model its sampler could drive is refused rather than sampled with that kind's settings."""
    bound = request.bound(model.objective)
    if bound.objective != model.objective and model.objective in bound.info.objectives:
        raise ConfigError(f"the request is for a {bound.objective} model, not this {model.objective} one")
    return bound


def sample_request(model: SamplingModel, request: SampleRequest, *, callback=None, x_T=None) -> Trajectory:
    """The request's whole trajectory, in data coordinates: from its n seeded starting points (noise, or a flow
    run's source points; or standardised ``x_T``), the sampler drawing its own noise from the same generator after
    them."""
    request = bound_to(model, request)
    start, generator = model.starting_points(request)
    if x_T is None:
        x_T = start.to(model.device)
    else:
        generator = torch.Generator().manual_seed(request.seed)
    return model.sample(request.sampler, x_T, generator=generator, callback=callback, **request.sampler_kwargs())


def probe_trajectory(model: SamplingModel, request: SampleRequest, positions: np.ndarray, *, start: int,
                     seed: int = 0, callback=None) -> Trajectory:  # fmt: skip
    """The trajectory of particles placed at ``positions`` (M, 2, data coordinates) at frame ``start`` of
    ``request``'s sampler (its settings, class and guidance; ``seed`` for its noise); frames before ``start`` are
    NaN. ``callback`` is told after every step and may cancel, as a sampler's."""
    request = bound_to(model, request)
    x = torch.as_tensor(model.normaliser.to_std(np.asarray(positions, dtype=np.float64)), dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    return model.sample(request.sampler, x.to(model.device), generator=generator, start=start, callback=callback,
                        **request.sampler_kwargs())  # fmt: skip
