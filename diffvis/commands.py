"""The bodies of the CLI commands; each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from diffvis.errors import ConfigError, DataFileError
from diffvis.terminal import ProgressBar


def cmd_data(args) -> int:
    from diffvis.core.atomic import write_outputs
    from diffvis.core.datasets import make_dataset
    from diffvis.core.pointfiles import check_points_output, encode_points

    check_points_output(args.out)
    outputs = {}
    points = make_dataset(args.name, args.n, noise=args.noise, seed=args.seed)
    if args.log_density_out is not None:
        outputs[args.log_density_out] = _log_density_bytes(points, args)
    outputs[args.out] = encode_points(points, args.out)
    write_outputs(outputs)
    print(
        f"wrote {len(points)} points of {points.name} to {args.out}"
        + (f" and their log p to {args.log_density_out}" if outputs.keys() - {args.out} else "")
    )
    return 0


def _log_density_bytes(points, args) -> bytes:
    """The true log p (nats, data coordinates) of each drawn point as a one-column CSV or a (N,) .npy."""
    import torch

    from diffvis.core.atomic import check_output
    from diffvis.core.gaussian_mixture import KNOWN_DENSITIES

    name, mixture = points.name, points.density
    if mixture is None:
        why = "noise 0 leaves only its means" if name in KNOWN_DENSITIES else "its density is not known"
        raise ConfigError(f"{name}: no log-density to write ({why}); sets with a known density: "
                          f"{', '.join(KNOWN_DENSITIES)}")  # fmt: skip
    path = args.log_density_out
    if path.suffix.lower() not in (".csv", ".npy"):
        raise ConfigError(f"{path.name}: the log-density is written as .csv or .npy")
    if path.resolve() == args.out.resolve():
        raise ConfigError("--out and --log-density-out name the same file")
    check_output(path)
    log_p = mixture.log_prob(torch.as_tensor(points.points)).numpy()
    buffer = io.BytesIO()
    if path.suffix.lower() == ".npy":
        np.save(buffer, log_p)
    else:
        buffer.write(("log_p\n" + "".join(f"{v:.9g}\n" for v in log_p)).encode())
    return buffer.getvalue()


def cmd_nll(args) -> int:
    from diffvis.core.atomic import check_output, write_outputs
    from diffvis.core.checkpoint import load_run
    from diffvis.core.gaussian_mixture import known_density
    from diffvis.core.likelihood import ADAPTIVE, model_log_likelihood
    from diffvis.core.pipeline import exact_model_of
    from diffvis.core.pointfiles import load_points
    from diffvis.core.registry import OBJECTIVES
    from diffvis.core.run import SamplingModel
    from diffvis.core.schedules import Schedule

    if args.out is not None:
        if args.out.suffix.lower() != ".csv":
            raise ConfigError(f"{args.out.name}: the per-point table is written as .csv")
        check_output(args.out)
    points = load_points(args.points).points
    if args.run is not None:
        run = load_run(args.run)
        model = SamplingModel.of_run(run)
        truth = known_density(run.data_info.get("source"), run.data_info.get("noise"))
    else:
        transports = next(name for name, info in OBJECTIVES.items() if info.transports)
        model, truth = exact_model_of(args.exact, args.objective or transports,
                                      schedule=Schedule.make(args.schedule, args.timesteps))  # fmt: skip
    bar = ProgressBar()
    started = time.perf_counter()
    result = model_log_likelihood(
        model,
        points,
        method=args.solver,
        steps=args.steps,
        rtol=args.rtol,
        atol=args.atol,
        hutchinson_probes=args.hutchinson,
        seed=args.seed,
        cancelled=lambda done, total: bar.show(done, total, "of the ODE solved") or False,
    )
    seconds = time.perf_counter() - started
    mean, error = result.nll
    how = f"dopri5 at rtol {args.rtol:g}, atol {args.atol:g}" if args.solver == ADAPTIVE else (
        f"{args.solver} × {args.steps}")  # fmt: skip
    divergence = f"Hutchinson, {args.hutchinson} probes" if args.hutchinson else "exact divergence"
    print(f"NLL {mean:.4f} ± {error:.4f} nats per point ({len(points):,} points; {how}; {divergence}; "
          f"{result.nfe} evaluations per point; {seconds:.1f} s)")  # fmt: skip
    if truth is not None:
        import torch

        true = -truth.log_prob(torch.as_tensor(points, dtype=torch.float64)).numpy()
        print(f"true −log p of these points {true.mean():.4f} ± {true.std(ddof=1) / np.sqrt(len(true)):.4f} "
              f"(model − true {mean - true.mean():+.4f} nats)")  # fmt: skip
    if result.probe_spread is not None:
        print(f"Hutchinson spread: each point's estimate ± {np.median(result.probe_spread):.4f} nats (median)")
    if args.out is not None:
        columns = [points[:, 0], points[:, 1], -result.log_p]
        header = "x,y,nll"
        if result.probe_spread is not None:
            columns.append(result.probe_spread)
            header += ",spread"
        buffer = io.StringIO()
        np.savetxt(buffer, np.stack(columns, axis=1), delimiter=",", header=header, comments="", fmt="%.9g")
        write_outputs({args.out: buffer.getvalue().encode()})
        print(f"wrote one row per point to {args.out}")
    return 0


def cmd_train(args) -> int:
    from diffvis.core.checkpoint import check_run_folder, save_run
    from diffvis.core.edm import EDM
    from diffvis.core.flow import SOURCES
    from diffvis.core.models import PREDICTING, ModelConfig
    from diffvis.core.pipeline import (
        NLL_CHECK_POINTS,
        check_density,
        evaluate_classes,
        evaluate_run,
        quality_to_dict,
        train_run,
    )
    from diffvis.core.registry import OBJECTIVES
    from diffvis.core.sources import fresh_draw, fresh_sets, load_source
    from diffvis.core.training import TrainConfig

    check_run_folder(args.out)
    points, info = load_source(args.data, n=args.n, noise=args.noise, seed=args.data_seed)
    model_keys = ("width", "depth", "activation", "prediction")
    train_keys = (
        "steps",
        "schedule",
        "timesteps",
        "batch",
        "lr",
        "seed",
        "device",
        "p_uncond",
        "coupling",
        "source",
        "p_mean",
        "p_std",
    )
    if args.prediction is not None and args.objective != PREDICTING:
        raise ConfigError(f"--prediction is a setting of {PREDICTING} models, not of {args.objective}")
    if (args.p_mean is not None or args.p_std is not None) and args.objective != EDM:
        raise ConfigError(f"--p-mean and --p-std set the noise levels EDM trains at: add --objective {EDM}")
    if not OBJECTIVES[args.objective].transports and (args.coupling or args.source):
        flows = ", ".join(name for name, info in OBJECTIVES.items() if info.transports)
        raise ConfigError(f"--coupling and --source are settings of flow matching: add --objective {flows}")
    if args.source is not None and args.source not in SOURCES:  # a point file, named by its full path in the run
        args.source = str(Path(args.source).resolve())
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
    mixture = points.density
    density = None if mixture is None else check_density(run, mixture, fresh_draw(info, points.points,
                                                                                  NLL_CHECK_POINTS)(77))  # fmt: skip
    if density is not None:
        run.quality["nll"] = density.to_dict()
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
    if density is not None:
        print(f"NLL of {density.points} fresh points {density.model:.4f} nats (true −log p {density.true:.4f}: "
              f"model − true {density.model - density.true:+.4f} ± {density.difference_error:.4f})")  # fmt: skip
    if run.snapshots:
        steps = ", ".join(str(s) for s in sorted(run.snapshots))
        print(f"kept the EMA weights of steps {steps}: weak models for autoguidance (--guide-with snapshot:STEP)")
    return 0


def cmd_reflow(args) -> int:
    from diffvis.core.checkpoint import check_run_folder, load_run, save_run
    from diffvis.core.pipeline import evaluate_run, quality_to_dict
    from diffvis.core.reflow import draw_pairs, reflow_run
    from diffvis.core.sources import fresh_draw, run_points

    check_run_folder(args.out)
    base = load_run(args.run)
    points, info = run_points(base.data_info)
    bar = None if args.quiet else ProgressBar()
    pairs = draw_pairs(base, args.pairs, seed=args.seed, report=None if bar is None else
                       lambda done, n: bar.show(done, n, "drawing pairs from the run's ODE"))  # fmt: skip
    started = time.perf_counter()
    run = reflow_run(base, pairs, steps=args.steps, on_progress=bar)
    trained = time.perf_counter() - started
    report = evaluate_run(run, fresh_draw(info, points.points, 2000))
    run.quality = quality_to_dict(report)
    save_run(run, args.out)
    k = run.data_info["reflow"]["k"]
    print(f"trained the {k + 1}-rectified flow on {len(pairs):,} pairs, {run.step} steps in {trained:.1f} s; "
          f"final loss {run.loss_history[-1]:.4f}; saved {args.out}")  # fmt: skip
    print(format_quality(report))
    return 0


def _given(args, keys) -> dict:
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def format_quality(report) -> str:
    lines = [f"{'metric':<14}{'value':>11} {'floor':>11} {'± spread':>11} {'ratio':>9}"]
    for r in report.values():
        lines.append(f"{r.name:<14}{r.value:>11.4g} {r.floor:>11.4g} {r.floor_std:>11.3g} {r.ratio:>8.3g}×")
    return "\n".join(lines)


def sampling_setup(args):
    """The model and request of ``sample``'s and ``explain``'s arguments: a run's EMA network (--run) or the exact
    model of --exact data, guided by --guide-with when given."""
    from diffvis.arguments import make_request
    from diffvis.core.classes import Classes
    from diffvis.core.pipeline import sampling_model, with_guide
    from diffvis.core.run import SamplingModel
    from diffvis.core.schedules import Schedule
    from diffvis.core.sources import exact_kind, exact_source
    from diffvis.core.training import resolve_device

    device = resolve_device(args.device)
    if args.run is not None:
        from diffvis.core.checkpoint import load_run

        run = load_run(args.run)
        run.ema.to(device)
        model = SamplingModel.of_run(run)
        request = make_request(args, model.classes, model_objective=run.objective)
    else:
        data, _ = exact_source(args.exact)
        if len(data) < 2:
            raise DataFileError(f"{args.exact.name}: the exact denoiser needs at least two points")
        request = make_request(args, Classes.of(data), exact=exact_kind(data))
        model = sampling_model(None, data, request.bound(None).objective, exact=request.exact,
                               schedule=Schedule.make(args.schedule, args.timesteps), device=device)  # fmt: skip
        run = None
    if request.guide_with is not None:
        model = with_guide(model, request.guide_with, run)
    return model, request


def cmd_sample(args) -> int:
    from diffvis.core.atomic import check_output, write_outputs
    from diffvis.core.pipeline import bound_to, sample_request
    from diffvis.core.pointfiles import check_points_output, encode_points
    from diffvis.terminal import sampling_progress

    check_points_output(args.out)
    if args.trajectory is not None:
        if args.trajectory.suffix.lower() not in (".npy", ".npz"):
            raise ConfigError(
                f"{args.trajectory.name}: a trajectory is saved as .npy (frames) or .npz (frames, times, x0_hat)"
            )
        check_output(args.trajectory)
        if args.trajectory.resolve() == args.out.resolve():
            raise ConfigError("--out and --trajectory name the same file")
    model, request = sampling_setup(args)
    x_T = None if args.init is None else _initial_noise(args.init).to(model.device)
    progress = None
    if sys.stderr.isatty():
        bound = bound_to(model, request)
        progress = sampling_progress(model, bound, model.starting_points(bound)[0] if x_T is None else x_T)
    traj = sample_request(model, request, callback=progress, x_T=x_T)
    outputs = {args.out: encode_points(_labelled_samples(traj, model.classes), args.out)}
    if args.trajectory is not None:
        outputs[args.trajectory] = _trajectory_bytes(traj, args.trajectory)
    write_outputs(outputs)
    which = "" if traj.labels is None else f", class {args.class_ or 'all'} at w = {request.guidance:g}"
    print(f"wrote {len(traj.samples)} samples ({request.sampler}, {traj.nfe} model evaluations{which}) to {args.out}")
    return 0


def cmd_explain(args) -> int:
    """Sample as ``sample`` would, then print step --frame → --frame + 1 of --point with its numbers (or, with
    --json, the numbers as JSON)."""
    from diffvis.core.explain import explain_frame
    from diffvis.core.pipeline import sample_request

    model, request = sampling_setup(args)
    if not 0 <= args.point < request.n:
        raise ConfigError(f"--point must be between 0 and {request.n - 1} (--n is {request.n}), got {args.point}")
    traj = sample_request(model, request)
    explanation = explain_frame(model, request, traj, args.point, args.frame)
    print(json.dumps(explanation.to_dict(), ensure_ascii=False, indent=1) if args.json else explanation.text())
    return 0


def _labelled_samples(traj, classes):
    """The samples as a point set, each with the raw label of the class it was drawn for (if any)."""
    from diffvis.core.datasets import PointSet

    samples = traj.samples.astype(np.float64)
    if traj.labels is None:
        return PointSet(samples)
    return PointSet(samples, np.asarray(classes.values)[traj.labels], "samples", None)


def _initial_noise(path: Path):
    """The (N, 2) standardised starting noise of an --init file."""
    import torch

    from diffvis.core.pointfiles import read_npy

    init = read_npy(path, "initial noise")
    if init.shape[1] != 2 or len(init) == 0:
        raise DataFileError(f"{path.name}: initial noise must be an (N, 2) array, got {init.shape}")
    if not np.isfinite(init).all():
        raise DataFileError(f"{path.name}: initial noise contains NaN or infinite values")
    return torch.tensor(np.asarray(init), dtype=torch.float32)


def _trajectory_bytes(traj, path: Path) -> bytes:
    """The trajectory as .npy (its frames) or .npz (frames, times, x̂₀ and the evaluation count)."""
    buffer = io.BytesIO()
    if path.suffix.lower() == ".npy":
        np.save(buffer, traj.frames, allow_pickle=False)
    else:
        np.savez(buffer, frames=traj.frames, times=traj.times, x0_hat=traj.x0_hat, nfe=np.array(traj.nfe))
    return buffer.getvalue()


def cmd_bench(args) -> int:
    from diffvis.bench import run_bench

    return run_bench(repeats=args.repeats, quick=args.quick)


def cmd_sweep(args) -> int:
    from diffvis.arguments import class_choice, given_settings, sampler_params
    from diffvis.core.atomic import check_output, write_output
    from diffvis.core.classes import Classes
    from diffvis.core.compare import Reference, parse_step_counts, sweep, sweep_csv
    from diffvis.core.registry import sampler_info, swept_samplers
    from diffvis.core.request import DEFAULT_SAMPLER, SampleRequest
    from diffvis.core.schedules import Schedule
    from diffvis.core.sources import exact_kind, exact_source, fresh_draw, runs_on_one_data_set

    if args.out.suffix.lower() != ".csv":
        raise ConfigError(f"{args.out.name}: the sweep table is written as .csv")
    check_output(args.out)
    steps = parse_step_counts(args.steps)
    if args.run is not None:
        runs, data, info = runs_on_one_data_set(args.run)
        schedule, classes = runs[0].schedule, runs[0].classes
    else:
        data, info = exact_source(args.exact)
        schedule, classes, runs = Schedule.make(), Classes.of(data), [None]
    kind = runs[0].objective if runs[0] is not None else sampler_info(DEFAULT_SAMPLER).objectives[0]
    names = swept_samplers(kind) if args.samplers is None else args.samplers.split(",")
    infos = [sampler_info(name.strip()) for name in names if name.strip()]
    if not infos:
        raise ConfigError("--samplers needs at least one sampler")
    given = given_settings(args, infos, sweep=True)
    choice = class_choice(args, classes)
    exact = False if args.exact is None else exact_kind(data)
    pairs = [(SampleRequest(i.name, sampler_params(i, given), exact=exact, **choice), run)
             for run in runs for i in infos]  # fmt: skip
    steps = [s for s in steps if s <= schedule.T]
    if not steps:
        raise ConfigError(f"every --steps count is above the model's {schedule.T} timesteps")
    reference = Reference.draw(fresh_draw(info, data.points, args.n))
    bar = ProgressBar()
    points = sweep([r for r, _ in pairs], steps, [run for _, run in pairs], data, schedule, reference, n=args.n,
                   seed=args.seed, progress=lambda i, n: bar.show(i, n, "sampler runs"))  # fmt: skip
    table = sweep_csv(points)
    write_output(args.out, table.encode())
    names = list(points[0].metrics)
    print(f"{'sampler':<40}{'steps':>6}{'NFE':>6}{'seconds':>9}" + "".join(f"{m:>14}" for m in names))
    for p in points:
        cells = "".join(f"{p.metrics[m].ratio:>13.2f}×" for m in names)
        print(f"{p.label:<40}{'' if p.steps is None else p.steps:>6}{p.nfe:>6}{p.seconds:>9.3f}{cells}")
    print(f"(each metric as a ratio to its floor; the table with the values: {args.out})")
    return 0
