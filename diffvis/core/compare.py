"""Samplers side by side: every panel starts from the same initial noise and is measured the same way (model
evaluations, wall time, each quality metric against one fresh draw of the data, next to its floor); and the
quality-versus-NFE sweep over step counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
from diffvis.core.datasets import PointSet
from diffvis.core.metrics import MetricResult, floors, score_samples
from diffvis.core.pipeline import sampling_model
from diffvis.core.registry import SamplerInfo, sampler_info
from diffvis.core.run import Run, SamplingModel
from diffvis.core.schedules import Schedule
from diffvis.core.trajectory import Trajectory
from diffvis.errors import Cancelled

Progress = Callable[[int, int], bool]  # progress(i, n) → True to cancel
FLOOR_PAIRS = 8
METRIC_POINTS = 2000  # samples scored per panel: the metrics are O(n²), and 2,000 resolve the differences shown


@dataclass(frozen=True)
class PanelSpec:
    """One sampler with its settings, on the trained model (or, with ``exact``, the exact one)."""

    sampler: str
    params: dict = field(default_factory=dict)
    exact: bool = False

    def __post_init__(self) -> None:
        info = sampler_info(self.sampler)
        info.resolve({k: v for k, v in self.params.items() if k not in ("label", "guidance")})

    @property
    def info(self) -> SamplerInfo:
        return sampler_info(self.sampler)

    @property
    def objective(self) -> str:
        return self.info.objectives[0]

    @property
    def conditional(self) -> bool:
        """True when the panel samples given a class (its params name a ``label`` other than unconditional)."""
        return self.params.get("label") not in (None, UNCONDITIONAL)

    def served_by(self, run: Run | None) -> bool:
        """True when ``run``'s network can sample this panel: the sampler's kind, and classes if it needs them."""
        return run is not None and run.objective == self.objective and (run.classes is not None or not self.conditional)

    @property
    def steps(self) -> int | None:
        """The sweepable step count (S, or K per level for Langevin); None for DDPM, which takes all T."""
        key = self.info.steps_param
        return None if key is None else int(self.params.get(key, self.info.defaults[key]))

    def with_steps(self, steps: int) -> PanelSpec:
        key = self.info.steps_param
        return self if key is None else replace(self, params={**self.params, key: steps})

    @property
    def label(self) -> str:
        """e.g. 'DDIM S=50 η=0', 'DDPM (β̃)', 'Langevin K=20 · exact'."""
        return self._describe(with_steps=True)

    @property
    def family(self) -> str:
        """The label without the step count: one line of a sweep."""
        return self._describe(with_steps=False)

    def _describe(self, with_steps: bool) -> str:
        p = self.params
        parts = [self.info.title]
        if self.sampler == "ddpm":
            parts.append("(β)" if p.get("variance") == "beta" else "(β̃)")
        elif with_steps:
            parts.append(f"{self.info.param(self.info.steps_param).symbol}={self.steps}")
        if self.sampler == "ddim":
            parts.append(f"η={p.get('eta', 0.0):g}")
        if self.conditional:
            parts.append(f"w={p.get('guidance', 1.0):g}")
        return " ".join(parts) + (" · exact" if self.exact else "")


PRESETS: dict[str, tuple[str, list[PanelSpec]]] = {
    "ddpm-vs-ddim": ("DDPM 1000 vs DDIM 50 vs DDIM 10", [
        PanelSpec("ddpm"), PanelSpec("ddim", {"steps": 50}), PanelSpec("ddim", {"steps": 10})]),
    "eta": ("η from 0 to 1 (DDIM 50)", [PanelSpec("ddim", {"steps": 50, "eta": eta}) for eta in (0.0, 0.3, 0.6, 1.0)]),
    "ddpm-vs-langevin": ("DDPM vs NCSN annealed Langevin", [
        PanelSpec("ddpm"), PanelSpec("langevin", {"steps_per_level": 20})]),
    "trained-vs-exact": ("trained model vs exact denoiser (DDIM 50)", [
        PanelSpec("ddim", {"steps": 50}), PanelSpec("ddim", {"steps": 50}, exact=True)]),
    "solvers": ("ODE solvers at about 10 evaluations", [
        PanelSpec("ddim", {"steps": 10}), PanelSpec("heun", {"steps": 5}), PanelSpec("dpmpp_2m", {"steps": 10}),
        PanelSpec("ddpm")]),
    "guidance": ("guidance w = 0, 1, 3, 7 (DDIM 50, every class in proportion)", [
        PanelSpec("ddim", {"steps": 50, "label": ALL_CLASSES, "guidance": w}) for w in (0.0, 1.0, 3.0, 7.0)]),
}  # fmt: skip


@dataclass(frozen=True)
class PanelResult:
    """A panel's trajectory from the shared noise; ``label`` names the model actually used."""

    spec: PanelSpec
    label: str
    trajectory: Trajectory
    seconds: float
    metrics: dict[str, MetricResult]


def panel_model(
    spec: PanelSpec, run: Run | None, data: PointSet | np.ndarray, schedule: Schedule
) -> tuple[SamplingModel, str]:
    """The trained model when asked for and of the sampler's kind; otherwise the exact one of the data (pass the
    point set: its labels make the exact model conditional), and say why."""
    model = sampling_model(run if spec.served_by(run) else None, data, spec.objective, exact=spec.exact,
                           schedule=run.schedule if run is not None else schedule)  # fmt: skip
    return model, spec.label + fallback_note(spec, run)


def fallback_note(spec: PanelSpec, run: Run | None) -> str:
    """' · exact (…)' when the trained model was asked for but cannot serve the sampler, else ''."""
    if spec.exact or spec.served_by(run):
        return ""
    if run is None:
        return " · exact"
    why = "unconditional" if run.objective == spec.objective else run.objective.upper()
    return f" · exact (the run is {why})"


@dataclass(frozen=True)
class Reference:
    """One fresh draw of the data to score samples against, and every metric's floor."""

    points: np.ndarray
    floor: dict[str, tuple]

    @classmethod
    def draw(cls, draw: Callable[[int], np.ndarray], seed: int = 10_000, cancelled=None) -> Reference:
        """``draw(seed)`` gives fresh data of the size to score (at most METRIC_POINTS); ``cancelled()`` may stop."""
        return cls(draw(seed - 1), floors(draw, FLOOR_PAIRS, seed, cancelled))


def run_panel(spec, run, points, schedule, x_T, reference: Reference, *, seed=0, callback=None) -> PanelResult:
    """Sample one panel from ``x_T`` (standardised N(0, I) noise, shared by all panels) and score it."""
    model, label = panel_model(spec, run, points, schedule)
    started = time.perf_counter()
    traj = model.sample(spec.sampler, x_T.clone(), generator=torch.Generator().manual_seed(seed), callback=callback,
                        **spec.params)  # fmt: skip
    seconds = time.perf_counter() - started
    samples = traj.samples[: len(reference.points)].astype(np.float64)
    return PanelResult(spec, label, traj, seconds, score_samples(samples, reference.points, reference.floor))


def compare(specs, run, points, schedule, reference: Reference, *, n=2000, seed=0, progress: Progress | None = None):
    """Every panel from the same seeded noise; ``progress(i, n)`` in thousandths of the whole, True cancels."""
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    results = []
    for p, spec in enumerate(specs):

        def callback(info, p=p):
            done = int(1000 * (p + info.i / info.total))
            return progress is not None and progress(done, 1000 * len(specs))

        results.append(run_panel(spec, run, points, schedule, x_T, reference, seed=seed, callback=callback))
    return results


@dataclass(frozen=True)
class SweepPoint:
    label: str
    sampler: str
    steps: int | None
    nfe: int
    seconds: float
    metrics: dict[str, MetricResult]


def sweep(specs, step_counts, run, points, schedule, reference: Reference, *, n=2000, seed=0,
          progress: Progress | None = None) -> list[SweepPoint]:  # fmt: skip
    """Each spec at each step count (DDPM once: it always takes T steps), all from the same noise."""
    jobs = []
    for spec in specs:
        jobs += [spec] if spec.steps is None else [spec.with_steps(steps) for steps in step_counts]
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    out = []
    for i, spec in enumerate(jobs):
        if progress is not None and progress(i, len(jobs)):
            raise Cancelled("sweep cancelled")
        callback = None if progress is None else lambda info, i=i: progress(i, len(jobs))
        r = run_panel(spec, run, points, schedule, x_T, reference, seed=seed, callback=callback)
        label = spec.family + fallback_note(spec, run)
        out.append(SweepPoint(label, spec.sampler, spec.steps, r.trajectory.nfe, r.seconds, r.metrics))
    if progress is not None:
        progress(len(jobs), len(jobs))
    return out


def sweep_csv(points: list[SweepPoint]) -> str:
    """One row per sweep point: the sampler, its steps and cost, then each metric and its ratio to the floor."""
    names = list(points[0].metrics) if points else []
    header = ["label", "sampler", "steps", "nfe", "seconds"] + [c for m in names for c in (m, f"{m}_ratio")]
    rows = [",".join(header)]
    for p in points:
        cells = [f'"{p.label}"', p.sampler, "" if p.steps is None else str(p.steps), str(p.nfe), f"{p.seconds:.4f}"]
        cells += [f"{v:.6g}" for m in names for v in (p.metrics[m].value, p.metrics[m].ratio)]
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"
