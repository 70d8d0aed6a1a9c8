"""What every front end runs: train a run from points, measure its sample quality, sample trajectories."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.metrics import MetricResult, quality_report
from diffvis.core.models import ModelConfig
from diffvis.core.run import Run, SamplingModel, sample_run
from diffvis.core.schedules import Schedule, max_pairwise_distance
from diffvis.core.training import Progress, TrainConfig, TrainControl, Trainer
from diffvis.core.trajectory import Trajectory
from diffvis.errors import ConfigError

QUALITY_N = 2000


def make_trainer(points: np.ndarray, model_config: ModelConfig, cfg: TrainConfig) -> tuple[Trainer, Normaliser]:
    """Standardise the points and build the trainer; NCSN's σ_max is the standardised data's diameter."""
    if len(points) < 2:
        raise ConfigError(f"training needs at least two points, got {len(points)}")
    normaliser = Normaliser.fit(points)
    std = normaliser.to_std(points)
    return Trainer(std, model_config, cfg, sigma_max=max_pairwise_distance(std)), normaliser


def train_run(
    points: np.ndarray,
    model_config: ModelConfig,
    cfg: TrainConfig,
    data_info: dict,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    control: TrainControl | None = None,
) -> Run:
    trainer, normaliser = make_trainer(points, model_config, cfg)
    trainer.run(on_progress, control)
    return Run.from_trainer(trainer, normaliser, data_info)


def evaluate_run(run: Run, draw: Callable[[int], np.ndarray], *, n: int = QUALITY_N, seed: int = 0):
    """Sample n points with the run's full sampler (DDPM, or annealed Langevin for NCSN) from seeded noise and
    compare them with fresh data; returns {metric: MetricResult}."""
    sampler = "ddpm" if run.objective == "ddpm" else "langevin"
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, 2, generator=g)
    samples = sample_run(run, sampler, x_T, generator=g).samples
    return quality_report(samples.astype(np.float64), draw)


def quality_to_dict(report: dict[str, MetricResult]) -> dict:
    return {
        k: {"value": r.value, "floor": r.floor, "floor_std": r.floor_std, "ratio": r.ratio} for k, r in report.items()
    }


def sampling_model(
    run: Run | None, points: np.ndarray, objective: str, *, exact: bool = False, schedule: Schedule | None = None
) -> SamplingModel:
    """The run's EMA network, or (``exact``, or no run) the exact model of ``points``: a perfect model, which
    memorises them. The exact model uses the run's schedule and σ ladder, or ``schedule`` when there is no run."""
    if run is None:
        return SamplingModel.exact_of(points, objective, schedule or Schedule.make())
    if exact:
        return SamplingModel.exact_of(points, objective, run.schedule, ladder=run.ladder)
    if run.objective != objective:
        raise ConfigError(f"this needs a {objective} model, but the run was trained for {run.objective}: "
                          f"choose the exact model, or train a {objective} model")  # fmt: skip
    return SamplingModel.of_run(run)


def reverse_trajectory(model: SamplingModel, sampler: str, *, n: int = 2000, seed: int = 0, **params) -> Trajectory:
    """A sampler's whole trajectory from seeded N(0, I) noise, in data coordinates."""
    g = torch.Generator().manual_seed(seed)
    return model.sample(sampler, torch.randn(n, 2, generator=g), generator=g, **params)


def probe_trajectory(
    model: SamplingModel, sampler: str, positions: np.ndarray, *, start: int, seed: int = 0, **params
) -> Trajectory:
    """The trajectory of particles placed at ``positions`` (M, 2, data coordinates) at frame ``start`` of a
    run of ``sampler``; the frames before ``start`` are NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(model.normaliser.to_std(np.asarray(positions, dtype=np.float64)), dtype=torch.float32)
    if sampler == "langevin" and start == 0:
        x /= float(model.ladder.sigmas[0])  # Langevin scales the noise it starts from by σ_1
    return model.sample(sampler, x, generator=g, start=start, **params)
