"""``diffvis bench``: the performance figures of the issues, each next to a bare-PyTorch baseline run in the same
process. Timings are medians of ``repeats`` runs; the quality runs (≈ 4 min) run once each unless ``quick``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffvis.core.datasets import make_dataset
from diffvis.core.metrics import METRICS, MetricResult, quality_report
from diffvis.core.models import ModelConfig, build_model
from diffvis.core.parametrization import as_eps_model, eps_coefficients
from diffvis.core.pipeline import make_trainer, train_run
from diffvis.core.registry import OBJECTIVES
from diffvis.core.request import SampleRequest
from diffvis.core.run import SamplingModel
from diffvis.core.samplers import sample_ddim, sample_ddpm
from diffvis.core.schedules import Schedule
from diffvis.core.sources import fresh_draw, load_source
from diffvis.core.tails import FAR_NOISE, tail_check
from diffvis.core.training import TrainConfig

QUALITY_SETS = {"butterfly": (2.0, 1.5), "spirals": (3.0, 2.0)}  # targets: precision, recall (× floor)


def paired_times(ours: Callable[[], object], bare: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median seconds of ``ours`` and ``bare`` and the median of their per-pair ratio bare/ours.

    The two alternate run by run, so that a slow phase of a shared machine hits both alike."""
    ours(), bare()  # warm-up
    pairs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        bare()
        pairs.append((t1 - t0, time.perf_counter() - t1))
    a, b = zip(*pairs, strict=True)
    return statistics.median(a), statistics.median(b), statistics.median(y / x for x, y in pairs)


# --- bare PyTorch baselines: what a user would write by hand ------------------------------------------------


def bare_train_steps(model: nn.Module, data: torch.Tensor, abar: torch.Tensor, steps: int, batch: int) -> None:
    """Adam on the ε-loss with per-point t; no EMA, clipping or schedule."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        x0 = data[torch.randint(len(data), (batch,))]
        t = torch.randint(len(abar), (batch,))
        noise = torch.randn_like(x0)
        a = abar[t][:, None]
        loss = ((model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def bare_ddpm(model: nn.Module, x: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    betas, abar = torch.tensor(schedule.betas).float(), torch.tensor(schedule.alphas_cumprod).float()
    var = torch.tensor(schedule.posterior_variance).float()
    for t in reversed(range(schedule.T)):
        eps = model(x, torch.full((len(x),), t))
        x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / (1 - betas[t]).sqrt()
        if t > 0:
            x = x + var[t].sqrt() * torch.randn_like(x)
    return x


@torch.no_grad()
def bare_ddim(model: nn.Module, x: torch.Tensor, schedule: Schedule, steps: int) -> torch.Tensor:
    abar = torch.tensor(schedule.alphas_cumprod).float()
    ts = list(range(0, schedule.T, schedule.T // steps))[::-1]
    for i, t in enumerate(ts):
        a, a_prev = abar[t], abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
        eps = model(x, torch.full((len(x),), t))
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


class BareMLP(nn.Module):
    """The hand-written baseline network: (x, y, t/T) → 128 × 3 ReLU MLP → ε."""

    def __init__(self, T: int, width: int = 128, depth: int = 3):
        super().__init__()
        layers, d = [], 3
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        self.net, self.T = nn.Sequential(*layers, nn.Linear(d, 2)), T

    def forward(self, x, t):
        return self.net(torch.cat([x, (t.float() / self.T)[:, None]], 1))


# --- the figures ---------------------------------------------------------------------------------------------


def bench_training(repeats: int) -> None:
    cfg, steps = TrainConfig(batch=1024, steps=10**6, device="cpu"), 100
    data = make_dataset("butterfly", 20_000, seed=0).points
    trainer, _ = make_trainer(data, ModelConfig(), cfg)
    model = build_model(ModelConfig())
    abar = torch.tensor(trainer.schedule.alphas_cumprod).float()
    ours, bare, ratio = paired_times(
        lambda: [trainer.train_step() for _ in range(steps)],
        lambda: bare_train_steps(model, trainer.data, abar, steps, 1024),
        repeats,
    )
    print(
        f"training, batch 1024:        {steps / ours:7.0f} steps/s   bare loop {steps / bare:7.0f} steps/s   "
        f"ratio {ratio:.2f}× (target ≥ 0.9×)"
    )


def bench_flow_coupling(repeats: int) -> None:
    """OT-CFM against I-CFM training steps, the same network and batch (OT pays for its exact assignments), on the
    labelled moons as a user trains them by default (class-conditional, OT pairs within each class)."""
    data = make_dataset("moons", 20_000, seed=0)
    trainers = [make_trainer(data, ModelConfig(objective="flow"), TrainConfig(steps=10**6, coupling=c, device="cpu"))[0]
                for c in ("ot", "independent")]  # fmt: skip
    steps = 100
    ot, independent, ratio = paired_times(*[lambda t=t: [t.train_step() for _ in range(steps)] for t in trainers],
                                          repeats)  # fmt: skip
    print(f"flow training, OT coupling:  {steps / ot:7.0f} steps/s   independent {steps / independent:7.0f} steps/s   "
          f"ratio {ratio:.2f}× (target ≥ 0.75×)")  # fmt: skip


def briefly_trained_model(steps: int = 500) -> tuple[nn.Module, Schedule, str]:
    """The default network after a short training on butterfly, its schedule and what it predicts: its samples
    stay in the data's range, as a trained model's do (an untrained one flings points far out, where sin/cos take a
    slow path)."""
    data = make_dataset("butterfly", 20_000, seed=0).points
    trainer, _ = make_trainer(data, ModelConfig(), TrainConfig(steps=steps, device="cpu"))
    trainer.run()
    return trainer.ema_model(), trainer.schedule, trainer.model_config.prediction


def bare_eps(net: nn.Module, schedule: Schedule, prediction: str):
    """The bare loops' ε-model of a network of ``prediction``: ε̂ = a_t x + b_t F with per-point tables."""
    a, b = eps_coefficients(prediction, torch.tensor(schedule.alphas_cumprod).float())
    a, b = torch.as_tensor(a).expand(schedule.T), torch.as_tensor(b).expand(schedule.T)
    return lambda x, t: a[t][:, None] * x + b[t][:, None] * net(x, t)


def bench_sampling(repeats: int) -> None:
    """The default network as a user samples it (seen as its ε-predictor), against the bare loops."""
    net, schedule, prediction = briefly_trained_model()
    model, bare_model = as_eps_model(net, schedule, prediction), bare_eps(net, schedule, prediction)
    g = torch.Generator().manual_seed(0)
    cases = [
        (
            "DDIM 50 steps, 10,000 points",
            10_000,
            0.25,
            lambda x: sample_ddim(model, x, schedule, steps=50),
            lambda x: bare_ddim(bare_model, x, schedule, 50),
        ),
        (
            "DDPM 1000 steps, 2,000 points",
            2_000,
            1.5,
            lambda x: sample_ddpm(model, x, schedule, generator=g),
            lambda x: bare_ddpm(bare_model, x, schedule),
        ),
    ]
    for name, n, target, ours_fn, bare_fn in cases:
        x = torch.randn(n, 2, generator=g)
        ours, bare, ratio = paired_times(partial(ours_fn, x), partial(bare_fn, x), repeats)
        print(f"{name}: {ours:6.3f} s (target ≤ {target} s)   bare loop {bare:6.3f} s   speed-up {ratio:.2f}×")


def bench_likelihood(repeats: int, n: int = 10_000, loop_points: int = 20, steps: int = 2000) -> None:
    """``diffvis nll`` as a user runs it (dopri5 at rtol 1e-5, the exact divergence) on n points of grid25 (an
    unlabelled set: one solve; a labelled one solves every class, see the README), against the same solve called
    point by point (timed on ``loop_points`` points and scaled to n). The flow is trained for ``steps`` steps."""
    from diffvis.core.likelihood import model_log_likelihood
    from diffvis.core.run import Run, SamplingModel

    data = make_dataset("grid25", 20_000, seed=0)
    trainer, normaliser = make_trainer(data, ModelConfig(objective="flow"), TrainConfig(steps=steps, device="cpu"))
    trainer.run()
    model = SamplingModel.of_run(Run.from_trainer(trainer, normaliser, {}))
    points = make_dataset("grid25", n, seed=1).points
    result = []
    ours, per_point, ratio = paired_times(
        lambda: result.append(model_log_likelihood(model, points)),
        lambda: [model_log_likelihood(model, p[None]) for p in points[:loop_points]],
        max(1, min(repeats, 2)),
    )
    per_point *= n / loop_points
    speed_up = ratio * n / loop_points
    print(
        f"log-likelihood of {n:,} points (dopri5, rtol 1e-5, {result[-1].nfe} evaluations): {ours:5.1f} s "
        f"(target ≤ 10 s)   point by point ≈ {per_point:6.0f} s   speed-up {speed_up:.0f}× (target ≥ 5×)"
    )


def bench_quality(name: str, objective: str | None = None) -> None:
    """The real ``diffvis train --data NAME [--objective OBJECTIVE]`` with default settings, timed end to end (its
    run.json holds the quality of 2,000 samples of its full sampler, DDPM-1000 or EDM-64, against fresh data,
    drawn as a user gets them: a labelled set trains a conditional model, sampled for every class in proportion at
    w = 1); the bare DDPM loop then trains for that whole time."""
    chosen = [] if objective is None else ["--objective", objective]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "diffvis", "train", "--data", name, *chosen, "--out", tmp, "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - t0
        quality = json.loads((Path(tmp) / "run.json").read_text())["quality"]
    report = {k: MetricResult(k, q["value"], q["floor"], q["floor_std"]) for k, q in quality.items() if k in METRICS}
    points, info = load_source(name, n=20_000, seed=0)
    bare = bare_quality(points.points, fresh_draw(info, points.points, 2000), elapsed)
    p_target, r_target = QUALITY_SETS[name]
    print(
        f"{name:<10} {objective or 'default':<8} diffvis train {elapsed:5.1f} s (target ≤ 60 s)  "
        f"precision {report['nn_precision'].ratio:.2f}× (≤ {p_target}×, bare {bare['nn_precision'].ratio:.2f}×)  "
        f"recall {report['nn_recall'].ratio:.2f}× (≤ {r_target}×, bare {bare['nn_recall'].ratio:.2f}×)  "
        f"{energy_line(report['energy'])}, bare {bare['energy'].ratio:.2f}×"
    )


def bench_tails(data: str = "moons", n: int = 20_000) -> None:
    """Runaway samples (``diffvis.core.tails``): default-length trainings on ``data`` of the DDPM network as it was
    (ε-prediction), as it is now (the default, v-prediction) and of EDM, each sampled as a user does (DDIM 50, or
    the EDM sampler at 18 levels) from n noises and from n noises beyond ‖x_T‖ = 3.5, against a fresh draw."""
    points, info = load_source(data, n=20_000, seed=0)
    fresh = fresh_draw(info, points.points, n)(123)
    default = ModelConfig()
    cases = [("ddpm ε-prediction", replace(default, prediction="eps"), SampleRequest("ddim", {"steps": 50}, n=n)),
             (f"ddpm {default.prediction}-prediction (default)", default, SampleRequest("ddim", {"steps": 50}, n=n)),
             ("edm", ModelConfig(objective="edm"), SampleRequest("edm", {"steps": 18}, n=n))]  # fmt: skip
    for title, config, request in cases:
        run = train_run(points, config, TrainConfig(), info)
        everywhere, far_out = tail_check(SamplingModel.of_run(run), request, fresh)
        print(f"tails, {data} {title:<28} {request.label_text:<12} all noises: {everywhere.line()}; "
              f"‖x_T‖ > {FAR_NOISE}: {far_out.line()} (target: ≤ 2 beyond 1, none beyond 3)")  # fmt: skip


def bench_density_check(target: float = 0.05) -> None:
    """The real ``diffvis train --data gmm8 --objective flow`` with default settings (a minute: over the test
    suite's budget, so the target is checked here): its NLL of 500 fresh points against the true −log p, as the
    command prints it and keeps it in run.json."""
    transports = next(name for name, info in OBJECTIVES.items() if info.transports)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "diffvis", "train", "--data", "gmm8", "--objective", transports,
                        "--out", tmp, "--quiet"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        check = json.loads((Path(tmp) / "run.json").read_text())["quality"]["nll"]
    gap = check["model"] - check["true"]
    print(f"gmm8 default {transports} run: NLL {check['model']:.4f} against the true {check['true']:.4f}, "
          f"{gap:+.4f} ± {check['difference_error']:.4f} nats (target ≤ {target})")  # fmt: skip


def energy_line(r: MetricResult) -> str:
    spread = "within" if r.within_floor_spread else "OUTSIDE"
    return f"energy {r.value:.2e} vs floor {r.floor:.2e} ± {r.floor_std:.1e} = {r.ratio:.2f}× ({spread} its spread)"


def bare_quality(points: np.ndarray, draw, budget: float) -> dict:
    """The bare 128 × 3 MLP trained for ``budget`` seconds (batch 256, Adam 1e-3), DDPM-sampled."""
    torch.manual_seed(0)
    schedule = Schedule.make("linear", 1000)
    mean, scale = points.mean(0), points.std()
    data = torch.tensor((points - mean) / scale).float()
    model, abar = BareMLP(1000), torch.tensor(schedule.alphas_cumprod).float()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < budget:
        bare_train_steps(model, data, abar, 100, 256)
    samples = bare_ddpm(model.eval(), torch.randn(2000, 2), schedule).numpy() * scale + mean
    return quality_report(samples.astype(np.float64), draw)


def bench_gui_stall(seconds: float = 8.0) -> None:
    """The GUI thread's longest stall while the app trains with default settings, next to the idle app's."""
    from PySide6.QtCore import QEventLoop, QTimer

    from diffvis.app.main import freeze_startup_objects, offscreen_app, share_the_interpreter
    from diffvis.app.main_window import MainWindow
    from diffvis.app.settings import Settings
    from diffvis.app.stall import StallMeter
    from diffvis.app.workers import warm_up

    share_the_interpreter()
    warm_up()
    offscreen_app()
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(Settings(Path(tmp) / "settings.json"))
        window.resize(1280, 800)
        window.show()
        window.data_panel.source.setCurrentText("butterfly")
        freeze_startup_objects()
        settle = QEventLoop()
        QTimer.singleShot(1000, settle.quit)  # let the first paints of the new window happen
        settle.exec()

        def measure(busy: bool) -> StallMeter:
            meter = StallMeter()
            if busy:
                window.start_training()
            meter.start()
            loop = QEventLoop()
            QTimer.singleShot(int(seconds * 1000), loop.quit)
            loop.exec()
            window.controller.shutdown()
            meter.stop()
            return meter

        idle, training = measure(False), measure(True)
        steps = window.state.progress_history[-1].step if window.state.progress_history else 0
        window.close()
    over = sum(stall > 0.05 for _, stall in training.stalls)
    print(
        f"GUI thread while training ({seconds:.0f} s, {steps:,} steps, live preview): longest stall "
        f"{training.longest() * 1000:.0f} ms (target ≤ 50 ms), {over} stall(s) over 50 ms, "
        f"longest after the first second {training.longest(1.0) * 1000:.0f} ms; idle app {idle.longest() * 1000:.0f} ms"
    )


def bench_scrubbing(repeats: int, n: int = 5000, frames: int = 120) -> None:
    """Frames per second while the reverse view's model sweeps the frames of a cached n-point trajectory, each
    frame drawn and rendered (``grab``: offscreen, ``repaint`` paints nothing), next to a bare pyqtgraph scatter
    that only sets the points and renders."""
    import pyqtgraph as pg

    from diffvis.app.main import offscreen_app
    from diffvis.app.models.reverse import Sampled
    from diffvis.app.state import LabState
    from diffvis.app.views.reverse_view import ReverseView
    from diffvis.core.pipeline import sample_request, sampling_model
    from diffvis.core.request import SampleRequest

    offscreen_app()
    state = LabState()
    data = make_dataset("butterfly", 2000)
    state.set_data(data, {})
    model = sampling_model(None, data.points, "ddpm", schedule=Schedule.make())
    request = SampleRequest("ddim", {"steps": frames - 1}, n=n)
    traj = sample_request(model, request)
    view = ReverseView(state)
    view.resize(960, 720)
    view.show()
    view.model.result = Sampled(model, request, traj, landed=1.0, class_scores=[])
    bare = pg.PlotWidget()
    bare.resize(960, 720)
    bare.show()
    scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush("#D55E00"))
    bare.addItem(scatter)

    def sweep_view() -> None:
        for k in range(frames):
            view.model.frame = k
            view.plot.grab()

    def sweep_bare() -> None:
        for k in range(frames):
            scatter.setData(pos=traj.frames[k])
            bare.grab()

    for overlays in (False, True):
        view.model.update(show_x0=overlays, show_density=overlays, trails=30 if overlays else 0)
        ours, base, ratio = paired_times(sweep_view, sweep_bare, repeats)
        what = "with trails, x̂₀ and density" if overlays else "points only"
        print(f"scrubbing {n:,} points ({what}): {frames / ours:.0f} fps (target ≥ 60)   bare pyqtgraph scatter "
              f"{frames / base:.0f} fps   ratio {ratio:.2f}×")  # fmt: skip
    view.close()
    bare.close()


def bench_compare_scrubbing(repeats: int, n: int = 5000, frames: int | None = None) -> None:
    """Frames per second while the comparison's model sweeps the shared progress of four panels of n points each,
    every frame rendered, next to four plain pyqtgraph scatters in one layout that set their points and render;
    ``frames``: the first frames of the sweep only (all by default)."""
    import pyqtgraph as pg

    from diffvis.app.main import offscreen_app
    from diffvis.app.models.compare import PROGRESS_FRAMES, panel_frame
    from diffvis.app.state import LabState
    from diffvis.app.views.compare_view import CompareView
    from diffvis.core.compare import Reference, compare

    offscreen_app()
    state = LabState()
    data = make_dataset("butterfly", 1000)
    state.set_data(data, {})
    view = CompareView(state)
    view.resize(1100, 900)
    view.show()
    view.model.apply_preset("eta")
    view.model.n = n
    reference = Reference(data.points, {name: (1.0, 0.0) for name in METRICS})  # scores are not what is timed
    requests = view.model.requests()
    results = compare(requests, [None] * len(requests), data.points, Schedule.make(), reference, n=n)
    view.model.result = results
    bare = pg.GraphicsLayoutWidget()
    bare.resize(view.grid.size())
    bare.show()
    scatters = []
    for i in range(len(results)):
        scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush("#D55E00"))
        bare.addPlot(row=i // 2, col=i % 2).addItem(scatter)
        scatters.append(scatter)
    frames = PROGRESS_FRAMES + 1 if frames is None else min(frames, PROGRESS_FRAMES + 1)

    def sweep_view() -> None:
        for k in range(frames):
            view.model.frame = k
            view.grid.grab()

    def sweep_bare() -> None:
        for k in range(frames):
            for scatter, r in zip(scatters, results, strict=True):
                scatter.setData(pos=r.trajectory.frames[panel_frame(k, len(r.trajectory.frames))])
            bare.grab()

    ours, base, ratio = paired_times(sweep_view, sweep_bare, repeats)
    print(f"scrubbing 4 comparison panels of {n:,} points: {frames / ours:.0f} fps (target ≥ 60)   4 bare pyqtgraph "
          f"scatters {frames / base:.0f} fps   ratio {ratio:.2f}×")  # fmt: skip
    view.shutdown()
    view.close()
    bare.close()


def bench_transport_scrubbing(repeats: int, n: int = 5000, lines: int = 40, frames: int = 60) -> None:
    """Frames per second while the transport view's model sweeps the frames of a ``lines`` × ``lines`` grid and n
    points (with its default trails), each frame drawn and rendered, next to a bare pyqtgraph curve and scatter
    that only set the grid and the points and render. The flow is the exact model of 100 moons points, Euler at
    frames − 1 steps (cheap to compute; what is timed is the drawing)."""
    from dataclasses import replace

    import pyqtgraph as pg

    from diffvis.app.main import offscreen_app
    from diffvis.app.state import LabState
    from diffvis.app.views.transport_view import TransportView
    from diffvis.core.registry import OBJECTIVES

    offscreen_app()
    state = LabState()
    state.set_data(make_dataset("moons", 100), {})
    flow = next(info.name for info in OBJECTIVES.values() if info.transports)
    state.set_model_config(replace(state.model_config, objective=flow))
    view = TransportView(state)
    view.resize(960, 720)
    view.show()
    model = view.model
    model.update(request=replace(model.request, n=n, exact=True).with_steps(frames - 1), lines=lines)
    model.result = model.work(state)(lambda i, total: None)
    result = model.result
    bare = pg.PlotWidget()
    bare.resize(960, 720)
    bare.show()
    curve = pg.PlotCurveItem(connect="finite")
    scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush("#0072B2"))
    bare.addItem(curve)
    bare.addItem(scatter)

    def sweep_view() -> None:
        for k in range(frames):
            model.frame = k
            view.plot.grab()

    def sweep_bare() -> None:
        for k in range(frames):
            curve.setData(result.grid[k, :, 0], result.grid[k, :, 1])
            scatter.setData(pos=result.trajectory.frames[k])
            bare.grab()

    ours, base, ratio = paired_times(sweep_view, sweep_bare, repeats)
    print(f"scrubbing the transport of a {lines}×{lines} grid and {n:,} points (with {model.trails} trails): "
          f"{frames / ours:.0f} fps (target ≥ 60)   bare pyqtgraph curve and scatter {frames / base:.0f} fps   "
          f"ratio {ratio:.2f}×")  # fmt: skip
    view.shutdown()
    view.close()
    bare.close()


EXACT_RUN = """
import json, resource, sys, time
import numpy as np, torch
from diffvis.core.exact import ExactModel
from diffvis.core.run import SamplingModel
from diffvis.core.schedules import Schedule

def dense_score(self, x, a, s, label):  # the plain formula in (4096, M, 2) chunks, as diffvis had it
    out, centres = torch.empty_like(x), a * self.points.to(x)
    for i in range(0, len(x), 4096):
        diff = centres[None] - x[i : i + 4096, None]
        w = torch.softmax(-(diff**2).sum(-1) / (2 * s * s), dim=1)
        out[i : i + 4096] = torch.einsum("nm,nmd->nd", w, diff) / (s * s)
    return out

def peak_mb(reset=False):  # the process's peak resident memory (Linux: since the last reset)
    try:
        if reset:
            open("/proc/self/clear_refs", "w").write("5")
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

n, dense, evaluations = int(sys.argv[1]), sys.argv[2] == "dense", int(sys.argv[3])
if dense:
    ExactModel.score = dense_score
model = SamplingModel.exact_of(np.load(sys.argv[4]), "ddpm", Schedule.make())
x = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
built = peak_mb()
peak_mb(reset=True)
t0 = time.perf_counter()
if evaluations:  # a few evaluations at one noise level: every step of the dense formula costs the same
    for _ in range(evaluations):
        model.model(x, 500)
else:
    model.sample("ddim", x, steps=50)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "built_mb": built}))
"""


def exact_run(n: int, dense: bool = False, evaluations: int = 0) -> dict:
    """DDIM-50 of 2,000 particles driven by the exact denoiser of n butterfly points (or ``evaluations`` calls of
    it at t = 500), in a fresh process: seconds, the peak resident memory while sampling (Linux resets the peak
    after the model is built) and the peak while building it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "points.npy"
        np.save(path, make_dataset("butterfly", n, seed=0).points)
        argv = [sys.executable, "-c", EXACT_RUN, str(n), "dense" if dense else "fast", str(evaluations), str(path)]
        return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def bench_exact(quick: bool) -> None:
    """The exact denoiser's DDIM-50 runs at 20,000 (median of 3), 200,000 and (unless quick) 1,000,000 points, next
    to the dense formula: run in full at 20,000 points, from 2 evaluations × 50 at 200,000 (it needs ~6.5 GB for
    its (4096, M, 2) chunks), and not at all at 1,000,000 (it would need ~33 GB). Building the model's σ ladder
    (``max_pairwise_distance``) peaks apart from sampling, hence its own figure."""
    cases = [(20_000, 2.0, "full"), (200_000, 20.0, 2)] + ([] if quick else [(1_000_000, None, None)])
    for n, target, baseline in cases:
        runs = sorted((exact_run(n) for _ in range(3 if n <= 20_000 else 1)), key=lambda r: r["seconds"])
        ours = runs[len(runs) // 2]
        line = (f"exact denoiser, DDIM 50 × 2,000 particles, {n:,} points: {ours['seconds']:6.2f} s"
                f"{'' if target is None else f' (target ≤ {target:g} s)'}, peak memory {ours['peak_mb']:,.0f} MB "
                f"(building the model: {ours['built_mb']:,.0f} MB)")  # fmt: skip
        if baseline == "full":
            dense = exact_run(n, dense=True)
            line += f"   dense {dense['seconds']:6.1f} s, {dense['peak_mb']:,.0f} MB"
        elif baseline:
            dense = exact_run(n, dense=True, evaluations=baseline)
            dense["seconds"] *= 50 / baseline
            line += f"   dense ≈ {dense['seconds']:6.1f} s (50 × one step), {dense['peak_mb']:,.0f} MB"
        ratio = f"   speed-up {dense['seconds'] / ours['seconds']:.1f}×" if baseline else "   (dense: out of memory)"
        print(line + ratio)


def run_bench(repeats: int = 5, quick: bool = False) -> int:
    torch.manual_seed(0)
    print(f"diffvis bench: torch {torch.__version__}, {torch.get_num_threads()} threads, medians of {repeats} runs")
    bench_training(repeats)
    bench_flow_coupling(repeats)
    bench_sampling(repeats)
    bench_scrubbing(repeats)
    bench_compare_scrubbing(repeats)
    bench_transport_scrubbing(repeats)
    bench_likelihood(repeats)
    bench_gui_stall()
    bench_exact(quick)
    if not quick:
        for name in QUALITY_SETS:
            bench_quality(name)
            bench_quality(name, "edm")
        bench_density_check()
        bench_tails()
    return 0
