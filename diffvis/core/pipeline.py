"""The two steps every front end runs: train a run from points, and measure its sample quality."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from diffvis.core.datasets import Normaliser
from diffvis.core.metrics import MetricResult, quality_report
from diffvis.core.models import ModelConfig
from diffvis.core.run import Run, ideal_setup, sample, sample_run
from diffvis.core.schedules import Schedule, max_pairwise_distance
from diffvis.core.training import Progress, TrainConfig, TrainControl, Trainer
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


def reverse_trajectory(
    run: Run | None,
    points: np.ndarray,
    sampler: str,
    *,
    n: int = 2000,
    seed: int = 0,
    exact: bool = False,
    schedule_kind: str = "linear",
    timesteps: int = 1000,
    **params,
):
    """A sampler's whole trajectory from seeded N(0, I) noise, in data coordinates.

    The model is the run's EMA network, or (``exact``, or no run) the exact denoiser of ``points``: a perfect
    model, which lands on training points. Langevin needs an NCSN model, or the exact score."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, 2, generator=g)
    if run is not None and not exact:
        return sample_run(run, sampler, x_T, generator=g, **params)
    objective = "ncsn" if sampler == "langevin" else "ddpm"
    schedule = run.schedule if run is not None else Schedule.make(schedule_kind, timesteps)
    ideal = ideal_setup(points, objective, schedule)
    return sample(ideal.model, objective, sampler, x_T, schedule=schedule, ladder=ideal.ladder,
                  normaliser=ideal.normaliser, generator=g, **params)  # fmt: skip
