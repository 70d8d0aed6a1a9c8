"""The bodies of the CLI commands; each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np

from diffvis.errors import ConfigError, DataFileError


def cmd_data(args) -> int:
    from diffvis.core.datasets import make_dataset
    from diffvis.core.pointfiles import save_points

    points = make_dataset(args.name, args.n, noise=args.noise, seed=args.seed)
    save_points(points, args.out)
    print(f"wrote {len(points)} points of {args.name} to {args.out}")
    return 0


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty, self.last_decile = self.stream.isatty(), -1

    def show(self, done: int, total: int, text: str = "") -> None:
        frac = done / max(total, 1)
        line = f"[{'#' * int(30 * frac):<30}] {done}/{total}  {text}".rstrip()
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done == total else ""))
        elif int(10 * frac) > self.last_decile:
            self.last_decile = int(10 * frac)
            self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, p) -> None:
        """Show a training ``Progress``."""
        self.show(p.step, p.total, f"loss {p.loss:.4f}  {p.steps_per_second:.0f} steps/s  {p.time_left()}")


def cmd_train(args) -> int:
    from diffvis.core.checkpoint import save_run
    from diffvis.core.models import ModelConfig
    from diffvis.core.pipeline import evaluate_classes, evaluate_run, quality_to_dict, train_run
    from diffvis.core.sources import fresh_draw, fresh_sets, load_source
    from diffvis.core.training import TrainConfig

    points, info = load_source(args.data, n=args.n, noise=args.noise, seed=args.data_seed)
    model_keys = ("width", "depth", "activation")
    train_keys = ("steps", "schedule", "timesteps", "batch", "lr", "seed", "device", "p_uncond")
    model_config = ModelConfig(objective=args.objective, **_given(args, model_keys))
    cfg = TrainConfig(conditional=not args.unconditional, **_given(args, train_keys))
    started = time.perf_counter()
    run = train_run(points, model_config, cfg, info, on_progress=None if args.quiet else ProgressBar())
    trained = time.perf_counter() - started
    report = evaluate_run(run, fresh_draw(info, points.points, 2000))
    run.quality = quality_to_dict(report)
    scores = [] if run.classes is None else evaluate_classes(run, fresh_sets(info, points, 2000))
    if scores:
        run.quality["class_accuracy"] = {s.name: s.accuracy for s in scores}
    save_run(run, args.out)
    kind = "unconditional" if run.classes is None else f"conditional on {len(run.classes)} classes"
    print(
        f"trained {cfg.steps} steps in {trained:.1f} s ({kind}); final loss {run.loss_history[-1]:.4f}; "
        f"saved {args.out}"
    )
    print(format_quality(report))
    if scores:
        print(
            "samples of each class (w = 1) nearest to their own class: "
            + ", ".join(f"{s.name} {100 * s.accuracy:.1f} %" for s in scores)
        )
    return 0


def _given(args, keys) -> dict:
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def format_quality(report) -> str:
    lines = [f"{'metric':<14}{'value':>11} {'floor':>11} {'± spread':>11} {'ratio':>9}"]
    for r in report.values():
        lines.append(f"{r.name:<14}{r.value:>11.4g} {r.floor:>11.4g} {r.floor_std:>11.3g} {r.ratio:>8.3g}×")
    return "\n".join(lines)


def cmd_sample(args) -> int:
    import torch

    from diffvis.core.classes import Classes, dense_labels
    from diffvis.core.pointfiles import load_points, save_points
    from diffvis.core.run import SamplingModel
    from diffvis.core.schedules import Schedule
    from diffvis.core.training import resolve_device

    if args.trajectory is not None and args.trajectory.suffix.lower() not in (".npy", ".npz"):
        raise ConfigError(
            f"{args.trajectory.name}: a trajectory is saved as .npy (frames) or .npz (frames, times, x0_hat)"
        )
    device = resolve_device(args.device)
    if args.run is not None:
        from diffvis.core.checkpoint import load_run

        run = load_run(args.run)
        run.ema.to(device)
        model = SamplingModel.of_run(run)
    else:
        data = load_points(args.ideal)
        if len(data) < 2:
            raise DataFileError(f"{args.ideal.name}: the exact denoiser needs at least two points")
        objective = args.objective or ("ncsn" if args.sampler == "langevin" else "ddpm")
        schedule = Schedule.make(args.schedule, args.timesteps)
        classes = Classes.of(data)
        model = SamplingModel.exact_of(data.points, objective, schedule, device, classes=classes,
                                       labels=dense_labels(classes, data))  # fmt: skip
    generator = torch.Generator().manual_seed(args.seed)
    x_T = _initial_noise(args, generator).to(device)
    params = {**_sampler_params(args), **_guidance(args, model.classes)}
    progress = _sampling_progress(model, args.sampler, x_T, params) if sys.stderr.isatty() else None
    traj = model.sample(args.sampler, x_T, generator=generator, callback=progress, **params)
    save_points(_labelled_samples(traj, model.classes), args.out)
    if args.trajectory is not None:
        _save_trajectory(traj, args.trajectory)
    which = "" if traj.labels is None else f", class {args.class_ or 'all'} at w = {params['guidance']:g}"
    print(f"wrote {len(traj.samples)} samples ({args.sampler}, {traj.nfe} model evaluations{which}) to {args.out}")
    return 0


def _sampling_progress(model, sampler: str, x_T, params: dict):
    """A callback that shows the sampler's frames on a terminal, with the time left from each frame's predicted
    work (the exact model's steps cost more the lower the noise, so seconds per step would mislead)."""
    from diffvis.core.progress import TimeLeft, frame_work

    bar = ProgressBar()
    left = TimeLeft(frame_work(model, sampler, x_T, **params))
    return lambda info: bar.show(info.i, info.total, left(info.i))


def _guidance(args, classes) -> dict:
    """--class and --guidance as the sampler's ``label`` and ``guidance``: a conditional model samples every
    class in proportion at w = 1 unless told otherwise (``--class unconditional`` gives f(x, t, ∅))."""
    from diffvis.core.classes import ALL_CLASSES, UNCONDITIONAL
    from diffvis.core.guidance import check_guidance

    if classes is None:
        if args.class_ is not None or args.guidance is not None:
            raise ConfigError("--class and --guidance need a class-conditional run (trained on labelled data) or "
                              "labelled --ideal data")  # fmt: skip
        return {}
    choice = args.class_ or ALL_CLASSES
    if choice == UNCONDITIONAL:
        if args.guidance is not None:
            raise ConfigError("--guidance steers towards a class: it has no meaning with --class unconditional")
        return {"label": UNCONDITIONAL}
    guidance = 1.0 if args.guidance is None else args.guidance
    check_guidance(guidance)
    label = ALL_CLASSES if choice == ALL_CLASSES else classes.index(choice)
    return {"label": label, "guidance": guidance}


def _labelled_samples(traj, classes):
    """The samples as a point set, each with the raw label of the class it was drawn for (if any)."""
    from diffvis.core.datasets import PointSet

    samples = traj.samples.astype(np.float64)
    if traj.labels is None:
        return PointSet(samples)
    return PointSet(samples, np.asarray(classes.values)[traj.labels], "samples", None)


def _initial_noise(args, generator):
    import torch

    from diffvis.core.pointfiles import read_npy

    if args.init is None:
        return torch.randn(args.n, 2, generator=generator)
    init = read_npy(args.init, "initial noise")
    if init.shape[1] != 2 or len(init) == 0:
        raise DataFileError(f"{args.init.name}: initial noise must be an (N, 2) array, got {init.shape}")
    if not np.isfinite(init).all():
        raise DataFileError(f"{args.init.name}: initial noise contains NaN or infinite values")
    return torch.tensor(np.asarray(init), dtype=torch.float32)


def _sampler_params(args) -> dict:
    """The chosen sampler's settings given on the command line (the registry fills in the rest); a setting of
    another sampler is refused rather than ignored."""
    from diffvis.core.registry import SAMPLERS, sampler_info

    info = sampler_info(args.sampler)
    takes = {p.flag or p.name for p in info.params}
    for other in {p.flag or p.name for i in SAMPLERS.values() for p in i.params} - takes:
        if getattr(args, other, None) is not None:
            option = "--" + other.replace("_", "-")
            raise ConfigError(f"{option} is not a setting of the {info.name} sampler")
    return {p.name: getattr(args, p.flag or p.name) for p in info.params if getattr(args, p.flag or p.name) is not None}


def _save_trajectory(traj, path: Path) -> None:
    from diffvis.core.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    if path.suffix.lower() == ".npy":
        np.save(buffer, traj.frames, allow_pickle=False)
    else:
        np.savez(buffer, frames=traj.frames, times=traj.times, x0_hat=traj.x0_hat, nfe=np.array(traj.nfe))
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as e:
        raise DataFileError(f"{path}: cannot be written ({e.strerror or e})") from None


def cmd_bench(args) -> int:
    from diffvis.bench import run_bench

    return run_bench(repeats=args.repeats, quick=args.quick)


def cmd_sweep(args) -> int:
    from diffvis.core.atomic import atomic_write_bytes
    from diffvis.core.compare import PanelSpec, Reference, sweep, sweep_csv
    from diffvis.core.schedules import Schedule
    from diffvis.core.sources import fresh_draw, load_source, run_points

    if args.out.suffix.lower() != ".csv":
        raise ConfigError(f"{args.out.name}: the sweep table is written as .csv")
    try:
        steps = sorted({int(v) for v in args.steps.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"--steps must be whole numbers separated by commas, got {args.steps!r}") from None
    if not steps or steps[0] < 1:
        raise ConfigError("--steps needs at least one step count of 1 or more")
    specs = [PanelSpec(name.strip(), {"eta": args.eta} if name.strip() == "ddim" else {})
             for name in args.samplers.split(",") if name.strip()]  # fmt: skip
    run = None
    if args.run is not None:
        from diffvis.core.checkpoint import load_run

        run = load_run(args.run)
        data, info = run_points(run.data)
        schedule = run.schedule
    else:
        data, info = load_source(str(args.ideal), n=0)
        schedule = Schedule.make()
    steps = [s for s in steps if s <= schedule.T]
    reference = Reference.draw(fresh_draw(info, data.points, args.n))
    bar = ProgressBar()
    points = sweep(specs, steps, run, data, schedule, reference, n=args.n, seed=args.seed,
                   progress=lambda i, n: bar.show(i, n, "sampler runs"))  # fmt: skip
    table = sweep_csv(points)
    try:
        atomic_write_bytes(args.out, table.encode())
    except OSError as e:
        raise ConfigError(f"{args.out}: cannot be written ({e.strerror or e})") from None
    names = list(points[0].metrics)
    print(f"{'sampler':<24}{'steps':>6}{'NFE':>6}{'seconds':>9}" + "".join(f"{m:>14}" for m in names))
    for p in points:
        cells = "".join(f"{p.metrics[m].ratio:>13.2f}×" for m in names)
        print(f"{p.label:<24}{'' if p.steps is None else p.steps:>6}{p.nfe:>6}{p.seconds:>9.3f}{cells}")
    print(f"(each metric as a ratio to its floor; the table with the values: {args.out})")
    return 0
