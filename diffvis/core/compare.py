"""Samplers side by side: every panel starts from the same initial noise and is measured the same way (model
evaluations, wall time, each quality metric against one fresh draw of the data, next to its floor, and for an ODE
solver the held-out NLL of the model's density through that solver); and the quality-versus-NFE sweep over step
counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from diffvis.core.class_check import ClassCheck, class_check
from diffvis.core.classes import ALL_CLASSES
from diffvis.core.likelihood import METHODS as LIKELIHOOD_METHODS
from diffvis.core.metrics import MetricResult, floors, normalised_path_energy, score_samples
from diffvis.core.pipeline import fallback_note, request_model, sample_request, served_by
from diffvis.core.progress import ReportProgress
from diffvis.core.reflow import rectified_steps
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SNAPSHOT, SampleRequest
from diffvis.core.run import Run, SamplingModel
from diffvis.core.trajectory import Trajectory
from diffvis.errors import Cancelled, ConfigError

FLOOR_PAIRS = 8
W2_FLOOR_PAIRS = 4  # W₂'s floor: the mean over 4 fresh draws against the reference (exact transport is costly)
METRIC_POINTS = 2000  # samples scored per panel: the metrics are O(n²), and 2,000 resolve the differences shown
NLL_POINTS = 1000  # held-out points of a panel's NLL: its standard error is ~0.03 nats on the built-in sets


@dataclass(frozen=True)
class RunRole:
    """Which run a panel samples. The default role is the lab's own run (or, with none, the exact model); a role
    that names an ``objective`` is the newest of the comparison's runs trained for it, rectified ``reflows`` times
    and, when ``coupling`` is given, trained with that coupling."""

    objective: str | None = None
    reflows: int = 0
    coupling: str | None = None

    @property
    def title(self) -> str:
        """e.g. 'ddpm run', 'flow run (ot coupling)', 'flow run reflowed once'."""
        if self.objective is None:
            return "the lab's run"
        text = f"{self.objective} run"
        text += f" ({self.coupling} coupling)" if self.coupling else ""
        return text + {0: "", 1: " reflowed once"}.get(self.reflows, f" reflowed {self.reflows} times")

    def fits(self, run: Run) -> bool:
        return (run.objective == self.objective and rectified_steps(run) == self.reflows
                and (self.coupling is None or run.train_config.coupling == self.coupling))  # fmt: skip

    def pick(self, runs: Sequence[Run], lab_run: Run | None) -> Run | None:
        """The run this role samples among ``runs`` (newest last), or ConfigError saying which run is missing."""
        if self.objective is None:
            return lab_run
        for run in reversed(runs):
            if self.fits(run):
                return run
        raise ConfigError(f"this comparison needs a {self.title}: train one, or load it")


LAB_RUN = RunRole()


@dataclass(frozen=True)
class Preset:
    """A comparison: its title, its panels' requests, the run each panel samples (``roles``: one per panel, or
    none for the lab's run everywhere) and the step counts its sweep runs (None: the sweep's own)."""

    title: str
    requests: tuple[SampleRequest, ...]
    roles: tuple[RunRole, ...] = ()
    step_counts: tuple[int, ...] | None = None

    def role(self, i: int) -> RunRole:
        return self.roles[i] if self.roles else LAB_RUN


R = SampleRequest
STUDY_W, STUDY_INTERVAL = 3.0, (0.1, 2.0)  # the guidance study's w and interval (README, "Guidance")
CFG = (None, None)  # a guide: (interval, guide_with) of a ``SampleRequest``; this one is plain classifier-free
GUIDES = (
    ("classifier-free", CFG),
    (f"classifier-free in σ ∈ ({STUDY_INTERVAL[0]:g}, {STUDY_INTERVAL[1]:g}]", (STUDY_INTERVAL, None)),
    ("autoguidance by the half-way snapshot", (None, SNAPSHOT)),
)  # the app's fixed choices, (title, guide); a view adds 'autoguidance by' a run folder the user picks


def guide_of(request: SampleRequest) -> tuple:
    """The request's guide, (interval, guide_with)."""
    return request.interval, request.guide_with


def with_guide_choice(request: SampleRequest, guide: tuple, guidance: float) -> SampleRequest:
    """``request`` guided as ``guide`` = (interval, guide_with) says at scale ``guidance``: towards its class when
    it asks for one, or by the weak model whatever the class; in the interval only where w ≠ 1."""
    interval, guide_with = guide
    if request.conditional or guide_with is not None:
        request = replace(request, guidance=guidance, guide_with=guide_with)
    return replace(request, interval=interval) if interval is not None and request.guidance != 1.0 else request


def check_guide_choice(guide) -> tuple:
    """``guide`` as a (interval, guide_with) pair a request accepts, or ConfigError with the reason."""
    if not (isinstance(guide, tuple) and len(guide) == 2):
        raise ConfigError(f"a guide is a pair (interval, weak model), got {guide!r}")
    interval, guide_with = guide
    SampleRequest(label=0, guidance=2.0, interval=interval, guide_with=guide_with)  # refuses what is not a guide
    return guide


EULER_2 = R("euler", {"steps": 2})
FEW_STEPS = (1, 2, 4, 8)
PRESETS: dict[str, Preset] = {
    "ddpm-vs-ddim": Preset("DDPM 1000 vs DDIM 50 vs DDIM 10", (R("ddpm"), R("ddim", {"steps": 50}),
                                                               R("ddim", {"steps": 10}))),
    "eta": Preset("η from 0 to 1 (DDIM 50)", tuple(R("ddim", {"steps": 50, "eta": e}) for e in (0.0, 0.3, 0.6, 1.0))),
    "ddpm-vs-langevin": Preset("DDPM vs NCSN annealed Langevin", (R("ddpm"), R("langevin", {"steps_per_level": 20}))),
    "trained-vs-exact": Preset("trained model vs exact denoiser (DDIM 50)", (
        R("ddim", {"steps": 50}), R("ddim", {"steps": 50}, exact=True))),
    "solvers": Preset("ODE solvers at about 10 evaluations", (
        R("ddim", {"steps": 10}), R("heun", {"steps": 5}), R("dpmpp_2m", {"steps": 10}), R("ddpm"))),
    "guidance": Preset("guidance w = 0, 1, 3, 7 (DDIM 50, every class in proportion)", tuple(
        R("ddim", {"steps": 50}, label=ALL_CLASSES, guidance=w) for w in (0.0, 1.0, 3.0, 7.0))),
    "objectives": Preset("DDPM's ODE vs flow matching vs 2-rectified flow (Euler; sweep 1, 2, 4, 8 steps)",
                         (EULER_2,) * 3, (RunRole("ddpm"), RunRole("flow"), RunRole("flow", reflows=1)), FEW_STEPS),
    "couplings": Preset("flow matching: independent vs OT coupling (Euler; sweep 1, 2, 4, 8 steps)", (EULER_2,) * 2,
                        (RunRole("flow", coupling="independent"), RunRole("flow", coupling="ot")), FEW_STEPS),
    "flow-solvers": Preset("a flow's ODE: Euler 8 vs Heun 4 vs dopri5", (
        R("euler", {"steps": 8}), R("heun", {"steps": 4}), R("dopri5")), (RunRole("flow"),) * 3),
    "edm": Preset("an EDM run: the EDM sampler at 18 levels (35 evaluations) vs Euler 35 vs DPM-Solver++(2M) 35", (
        R("edm", {"steps": 18}), R("euler", {"steps": 35}), R("dpmpp_2m", {"steps": 35})), (RunRole("edm"),) * 3),
    "edm-vs-ddpm": Preset("DDPM (DDIM 50) vs EDM (EDM sampler, 18 levels)", (
        R("ddim", {"steps": 50}), R("edm", {"steps": 18})), (RunRole("ddpm"), RunRole("edm"))),
    "guidance-study": Preset(f"one class at w = {STUDY_W:g} (DDIM 50): unguided, CFG, CFG in σ ∈ "
                             f"({STUDY_INTERVAL[0]:g}, {STUDY_INTERVAL[1]:g}], autoguidance by the half-way snapshot", (
        R("ddim", {"steps": 50}, label=0), R("ddim", {"steps": 50}, label=0, guidance=STUDY_W),
        R("ddim", {"steps": 50}, label=0, guidance=STUDY_W, interval=STUDY_INTERVAL),
        R("ddim", {"steps": 50}, label=0, guidance=STUDY_W, guide_with=SNAPSHOT))),
}  # fmt: skip


@dataclass(frozen=True)
class PanelResult:
    """A panel's trajectory from the shared noise; ``label`` names the model actually used."""

    spec: SampleRequest
    label: str
    trajectory: Trajectory
    seconds: float
    metrics: dict[str, MetricResult]
    nll: tuple[float, float] | None = None  # held-out NLL and its standard error (``held_out_nll``)
    class_fit: ClassCheck | None = None  # samples of one class against its known density (``class_fit``)
    model: SamplingModel | None = field(default=None, compare=False)  # what was sampled (the formula panel's)
    sampled: SampleRequest | None = None  # the request as sampled (``spec`` is the one asked for)

    @property
    def npe(self) -> float | None:
        """The normalised path energy of a flow's trajectory (None for other models)."""
        return path_energy_of(self.trajectory)


def path_energy_of(traj: Trajectory) -> float | None:
    """NPE of a flow model's trajectory, or None for a trajectory over timesteps or noise levels."""
    return normalised_path_energy(traj.frames, traj.times, traj.labels) if traj.levels == "time" else None


@dataclass(frozen=True)
class Reference:
    """One fresh draw of the data to score samples against, and every metric's floor."""

    points: np.ndarray
    floor: dict[str, tuple]

    @classmethod
    def draw(cls, draw: Callable[[int], np.ndarray], seed: int = 10_000, cancelled=None) -> Reference:
        """``draw(seed)`` gives fresh data of the size to score (at most METRIC_POINTS); ``cancelled()`` may stop.
        Every metric's floor, W₂'s included."""
        reference = draw(seed - 1)
        return cls(reference, floors(draw, FLOOR_PAIRS, seed, cancelled, w2_pairs=W2_FLOOR_PAIRS, reference=reference))


def run_panel(request: SampleRequest, run, points, schedule, reference: Reference, *, callback=None,
              note: str = "", cancelled=None) -> PanelResult:  # fmt: skip
    """Sample one panel's request (see ``pipeline.sample_request``) and score it; ``note`` ends its label;
    ``cancelled(done, total)`` may stop its NLL's solve. Autoguidance asked of the exact model (which has no
    weaker self) samples it unguided, and the label says so."""
    asked = request
    if request.guide_with is not None and (request.exact or not served_by(request, run)):
        request = replace(request, guide_with=None, guidance=1.0, interval=None)
        note = " · unguided: autoguidance needs a trained run" + note
    model, label = request_model(request, run, points, schedule)
    started = time.perf_counter()
    traj = sample_request(model, request, callback=callback)
    seconds = time.perf_counter() - started
    samples = traj.samples[: len(reference.points)].astype(np.float64)
    metrics = score_samples(samples, reference.points, reference.floor)
    nll = held_out_nll(model, request, reference.points, cancelled)
    return PanelResult(asked, label + note, traj, seconds, metrics, nll, class_fit(request, model, points, samples),
                       model, request)  # fmt: skip


def class_fit(request: SampleRequest, model, points, samples: np.ndarray) -> ClassCheck | None:
    """For a request of one class of data with a known density: its samples against that class's density
    (``class_check``); None otherwise."""
    mixture = getattr(points, "density", None)
    if mixture is None or mixture.labels is None or not isinstance(request.label, int) or model.classes is None:
        return None
    return class_check(samples, mixture, model.classes.values[request.label])


def held_out_nll(model, request: SampleRequest, points: np.ndarray, cancelled=None) -> tuple[float, float] | None:
    """The mean NLL (nats per point) of ``NLL_POINTS`` held-out ``points`` and its standard error, through the
    request's ODE solver at its step count (dopri5 at its tolerances): the density the model defines with that
    solver, with every class in proportion for a conditional model (``likelihood.model_log_likelihood``). None for
    a sampler that is not an ODE solver of the likelihood, or a model without a density (a flow from a data set)."""
    from diffvis.core.likelihood import model_log_likelihood

    if request.sampler not in LIKELIHOOD_METHODS:
        return None
    info = request.info
    params = info.resolve({k: v for k, v in request.params.items() if info.param(k).applies_to(model.objective)},
                          model.objective)  # fmt: skip
    options = {k: params[k] for k in ("steps", "spacing", "rtol", "atol") if k in params}
    try:
        return model_log_likelihood(model, points[:NLL_POINTS], method=request.sampler, cancelled=cancelled,
                                    **options).nll  # fmt: skip
    except ConfigError:
        return None


def compare(requests, runs: Sequence[Run | None], points, schedule, reference: Reference, *, n=2000, seed=0,
            progress: ReportProgress | None = None):  # fmt: skip
    """Every panel with ``n`` points from the same ``seed`` (so the same starting noise), panel i sampling
    ``runs[i]`` (None: the exact model); ``progress(i, n)`` in thousandths of the whole, True cancels."""
    results = []
    for p, (request, run) in enumerate(zip(requests, runs, strict=True)):
        share = 0.5 if request.sampler in LIKELIHOOD_METHODS else 0.0  # of the panel's progress: its NLL's solve

        def callback(info, p=p, share=share):
            done = int(1000 * (p + (1 - share) * info.i / info.total))
            return progress is not None and progress(done, 1000 * len(requests))

        def cancelled(done, total, p=p, share=share):
            return progress is not None and progress(int(1000 * (p + 1 - share + share * done / total)),
                                                     1000 * len(requests))  # fmt: skip

        request = replace(request, n=n, seed=seed)
        results.append(run_panel(request, run, points, schedule, reference, callback=callback,
                                 note=run_note(run, runs), cancelled=cancelled))  # fmt: skip
    return results


def panel_table(results: Sequence[PanelResult]) -> str:
    """The comparison as text, a line per panel: its evaluations, NN precision and recall (× floor) and, for one
    class of a known density, the share of samples in the class's support, the class recall and the samples' NLL
    under the class (see ``class_check``)."""
    fits = any(r.class_fit is not None for r in results)
    width = max(len(r.label) for r in results)
    head = f"{'panel':<{width}}  {'NFE':>5}  precision  recall"
    lines = [head + ("  in support  class recall  class NLL" if fits else "")]
    for r in results:
        line = (f"{r.label:<{width}}  {r.trajectory.nfe:>5}  {r.metrics['nn_precision'].ratio:>8.2f}×"
                f"  {r.metrics['nn_recall'].ratio:>5.2f}×")  # fmt: skip
        if r.class_fit is not None:
            fit = r.class_fit
            line += f"  {100 * fit.in_support:>9.1f}%  {fit.recall.ratio:>11.2f}×  {fit.nll:>9.2f}"
        lines.append(line)
    entropy = next((r.class_fit.entropy for r in results if r.class_fit is not None), None)
    if entropy is not None:
        lines.append(f"(the class's own entropy, the NLL of its fresh draws: {entropy:.2f} nats)")
    return "\n".join(lines)


@dataclass(frozen=True)
class SweepPoint:
    """One request of a sweep: its label, cost and scores, and its samples."""

    label: str
    request: SampleRequest
    nfe: int
    seconds: float
    metrics: dict[str, MetricResult]
    samples: np.ndarray = field(repr=False)
    npe: float | None = None
    nll: tuple[float, float] | None = None

    @property
    def sampler(self) -> str:
        return self.request.sampler

    @property
    def steps(self) -> int | None:
        return self.request.steps


def sweep(requests, step_counts, runs: Sequence[Run | None], points, schedule, reference: Reference, *, n=2000,
          seed=0, progress: ReportProgress | None = None) -> list[SweepPoint]:  # fmt: skip
    """Each request, sampling ``runs[i]`` (None: the exact model), at each step count (DDPM once: it always takes
    T steps), all with ``n`` points from ``seed``."""
    jobs = []
    for request, run in zip(requests, runs, strict=True):
        request = replace(request, n=n, seed=seed)
        steps = [None] if request.steps is None else step_counts
        jobs += [(request if s is None else request.with_steps(s), run) for s in steps]
    out = []
    for i, (request, run) in enumerate(jobs):
        if progress is not None and progress(i, len(jobs)):
            raise Cancelled("sweep cancelled")
        callback = None if progress is None else lambda info, i=i: progress(i, len(jobs))
        cancelled = None if progress is None else lambda done, total, i=i: progress(i, len(jobs))
        note = run_note(run, runs)
        r = run_panel(request, run, points, schedule, reference, callback=callback, note=note, cancelled=cancelled)
        label = request.family + fallback_note(request, run) + note
        out.append(SweepPoint(label, request, r.trajectory.nfe, r.seconds, r.metrics, r.trajectory.samples, r.npe,
                              r.nll))  # fmt: skip
    if progress is not None:
        progress(len(jobs), len(jobs))
    return out


def run_note(run: Run | None, runs: Sequence[Run | None]) -> str:
    """' · ddpm', ' · flow (ot)', ' · flow reflowed ×1', … naming the run when the panels sample more than one
    (a flow by its coupling, or how often it was rectified); else ''."""
    if run is None or len({id(r) for r in runs}) < 2:
        return ""
    k = rectified_steps(run)
    if k:
        return f" · {run.objective} reflowed ×{k}"
    coupling = f" ({run.train_config.coupling})" if OBJECTIVES[run.objective].transports else ""
    return f" · {run.objective}{coupling}"


def parse_step_counts(text: str) -> list[int]:
    """'5, 10, 20' → [5, 10, 20]: sorted, each once, every one 1 or more."""
    try:
        steps = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"step counts are whole numbers separated by commas, got {text!r}") from None
    if not steps or steps[0] < 1:
        raise ConfigError("give at least one step count, each 1 or more")
    return steps


def sweep_csv(points: list[SweepPoint]) -> str:
    """One row per sweep point: the sampler, its steps and cost, then each metric and its ratio to the floor, a
    flow's normalised path energy, and an ODE solver's held-out NLL and its standard error (empty otherwise)."""
    names = list(points[0].metrics) if points else []
    header = ["label", "sampler", "steps", "nfe", "seconds"] + [c for m in names for c in (m, f"{m}_ratio")]
    rows = [",".join([*header, "npe", "nll", "nll_se"])]
    for p in points:
        cells = [f'"{p.label}"', p.sampler, "" if p.steps is None else str(p.steps), str(p.nfe), f"{p.seconds:.4f}"]
        cells += [f"{v:.6g}" for m in names for v in (p.metrics[m].value, p.metrics[m].ratio)]
        cells.append("" if p.npe is None else f"{p.npe:.6g}")
        cells += ["", ""] if p.nll is None else [f"{v:.6g}" for v in p.nll]
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"
