"""Command line: the same core calls as the app, headless. ``diffvis`` alone opens the desktop app.

User errors (``DiffvisError`` and bad arguments) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from diffvis.core.validation import MAX_SEED
from diffvis.errors import ConfigError, DiffvisError
from diffvis.malloc import keep_freed_memory

EXIT_USER_ERROR = 2
OLD_NAMES = {"--ideal": "--exact"}  # options renamed since: old commands keep working, help shows the new name


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised as ConfigError."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low`` (and at most ``high``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            limit = f"at least {low:,}" + ("" if high is None else f" and at most {high:,}")
            raise argparse.ArgumentTypeError(f"{value} must be {limit}")
        return value

    return parse


_positive_int = _whole_number(1)
_seed = _whole_number(0, MAX_SEED)
SEEDS = f"0 to {MAX_SEED:,}"


SIZES = ((200, 150), (4096, 4096))  # the smallest and the largest picture render draws


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not WIDTHxHEIGHT, e.g. 960x720") from None
    (low_w, low_h), (high_w, high_h) = SIZES
    if not (low_w <= width <= high_w and low_h <= height <= high_h):
        raise argparse.ArgumentTypeError(f"{width}x{height} must be from {low_w}x{low_h} to {high_w}x{high_h}")
    return width, height


def _tolerance(text: str) -> float:
    """An argparse type: an ODE solver's tolerance, in the range the registry's dopri5 takes."""
    from diffvis.core.registry import RTOL

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    if not RTOL.minimum <= value <= RTOL.maximum:
        raise argparse.ArgumentTypeError(f"{text[:40]} must be from {RTOL.minimum:g} to {RTOL.maximum:g}")
    return value


def _coordinate(text: str) -> float:
    """An argparse type: a finite data coordinate within ±MAX_COORDINATE."""
    from diffvis.core.datasets import MAX_COORDINATE

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    if not abs(value) <= MAX_COORDINATE:
        raise argparse.ArgumentTypeError(f"{text[:40]} must be a finite number within ±{MAX_COORDINATE:g}")
    return value


def _data_args(p: argparse.ArgumentParser, *, n_default: int) -> None:
    from diffvis.core.datasets import MAX_POINTS

    p.add_argument("--n", type=_whole_number(1, MAX_POINTS), default=n_default,
                   help=f"number of points, 1 to {MAX_POINTS:,} (default {n_default:,})")  # fmt: skip
    p.add_argument("--noise", type=float, default=None, help="noise level, 0 to 100 (default: the data set's own)")


def _sampler_args(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """--sampler (with ``sweep``: --samplers, a list) and every sampler's settings, from the registry; a setting
    left unset takes the sampler's default. A sweep varies each sampler's step count, so it offers the others."""
    from diffvis.core.registry import SAMPLERS
    from diffvis.core.request import DEFAULT_SAMPLER

    titles = ", ".join(f"{name} ({info.title}, {info.paper})" for name, info in SAMPLERS.items())
    if sweep:
        from diffvis.core.registry import swept_samplers

        p.add_argument("--samplers", help="comma-separated (default: those of the run's kind, as its preview "
                       f"sampler's, for DDPM {','.join(swept_samplers(SAMPLERS[DEFAULT_SAMPLER].objectives[0]))}; a "
                       f"sampler the run cannot drive uses the exact model); any of {titles}")  # fmt: skip
    else:
        p.add_argument("--sampler", choices=list(SAMPLERS), default=None,
                       help=f"default {DEFAULT_SAMPLER}; one of {titles}")  # fmt: skip
    uses: dict[str, list] = {}
    for info in SAMPLERS.values():
        for param in info.params:
            if not (sweep and param.name == info.steps_param):
                uses.setdefault(param.option, []).append((param, info.name))
    for option, params in uses.items():
        first = params[0][0]
        texts: dict[str, list[str]] = {}
        for param, name in params:
            texts.setdefault(param.describe(), []).append(name)
        help_text = "; ".join(f"{', '.join(names)}: {text}" for text, names in texts.items()).replace("%", "%%")
        if first.kind is bool:
            p.add_argument(option, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            p.add_argument(option, type=None if first.choices else first.kind, choices=first.choices or None,
                           help=help_text)  # fmt: skip


EXACT_HELP = (
    "a data file, or a built-in set's name (its default draw of {n:,} points), whose exact model (denoiser, "
    "score or velocity) is the model; a set with a known density ({known}) gives the exact "
    "model of that distribution"
)


def _source_args(p: argparse.ArgumentParser, exact_help: str, *, many: bool = False) -> None:
    """--run or --exact (``--ideal``, its old name, is still accepted: see ``OLD_NAMES``); with ``many``, --run may
    be given again (a list: runs on the same data compared side by side)."""
    src = p.add_mutually_exclusive_group(required=True)
    if many:
        src.add_argument("--run", type=Path, action="append", help="run directory written by `diffvis train` "
                         "(repeatable: runs trained on the same data, side by side)")  # fmt: skip
    else:
        src.add_argument("--run", type=Path, help="run directory written by `diffvis train`")
    src.add_argument("--exact", type=Path, metavar="DATA", help=exact_help)


def _interval(text: str) -> tuple[float, float]:
    """'0.3,5' → (0.3, 5.0), checked as a guidance interval."""
    from diffvis.core.guidance import check_interval

    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"two noise levels LO,HI, got {text!r}") from None
    try:
        check_interval((lo, hi))
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return lo, hi


def _request_args(p: argparse.ArgumentParser) -> None:
    """What a ``SampleRequest`` holds besides the sampler: how many points, their seed, the class and guidance."""
    from diffvis.core.datasets import MAX_POINTS

    p.add_argument("--n", type=_whole_number(1, MAX_POINTS), default=2000,
                   help=f"number of samples, 1 to {MAX_POINTS:,} (default 2000)")  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, help=f"seed of the initial noise and of the sampler's own noise, "
                   f"{SEEDS} (default 0)")  # fmt: skip
    p.add_argument(
        "--class",
        dest="class_",
        metavar="C",
        help="class C (a name or number), 'all' (every class in proportion: the default for a conditional run "
        "or labelled --exact data) or 'unconditional' (the model's f(x, t, ∅), trained on the dropped labels only)",
    )
    p.add_argument(
        "--guidance",
        type=float,
        metavar="W",
        help="guidance scale w, 0 to 100: classifier-free towards --class (default 1: plain conditional; 0: "
        "unconditional), or autoguidance's with --guide-with",
    )
    p.add_argument("--guidance-interval", type=_interval, metavar="LO,HI", help="guide only at the noise levels σ "
                   "in (LO, HI] (Kynkäänniemi et al. 2024), σ in the units x = y + σ n of the standardised data; the "
                   "plain model elsewhere")  # fmt: skip
    p.add_argument("--guide-with", metavar="RUN|snapshot[:STEP]", help="autoguidance (Karras et al. 2024): guide "
                   "the run with a weaker version of itself, an EMA snapshot it kept (snapshot: the half-way one; "
                   "snapshot:STEP; `diffvis train` prints the steps kept) or another run folder on the same data: "
                   "D_w = D_weak + w (D − D_weak)")  # fmt: skip


def _exact_args(p: argparse.ArgumentParser) -> None:
    """How the exact model of an --exact data file is set up (a run brings its own)."""
    from diffvis.core.registry import OBJECTIVES

    p.add_argument("--objective", choices=list(OBJECTIVES), help="with --exact: the model's kind (default: the one "
                   "the sampler drives)")  # fmt: skip
    p.add_argument("--schedule", choices=["linear", "cosine", "sigmoid"], default="linear", help="with --exact")
    p.add_argument("--timesteps", type=int, default=1000, help="with --exact")


def build_parser() -> argparse.ArgumentParser:
    from diffvis.core.compare import PRESETS
    from diffvis.core.coupling import COUPLINGS, REFLOW
    from diffvis.core.datasets import DATASETS
    from diffvis.core.datasets import MAX_POINTS as MAX_SAMPLES
    from diffvis.core.density import MAPS as DENSITY_MAPS
    from diffvis.core.flow import SOURCES
    from diffvis.core.gaussian_mixture import KNOWN_DENSITIES as KNOWN
    from diffvis.core.likelihood import METHODS as LIKELIHOOD_METHODS
    from diffvis.core.models import DEFAULT_PREDICTION
    from diffvis.core.models import ModelConfig as M
    from diffvis.core.parametrization import PREDICTIONS
    from diffvis.core.registry import OBJECTIVES
    from diffvis.core.sources import EXACT_DRAW
    from diffvis.core.training import TrainConfig as T
    from diffvis.render import VIEWS

    names = ", ".join(DATASETS)
    exact_help = EXACT_HELP.format(known=", ".join(KNOWN), n=EXACT_DRAW)
    parser = _Parser(
        prog="diffvis",
        description="A desktop laboratory for diffusion models on 2D point sets. Without a command, opens the app.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the app on the shipped butterfly run while a fresh one trains beside it",
    )
    parser.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="save the window to a PNG once the work settles, then exit"
    )
    parser.add_argument("--run", type=Path, metavar="RUN_DIR", help="open a saved run in the app")
    parser.add_argument("--tour", action="store_true", help="open the app with the guided tour (Help ▸ Tour)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("data", help="write a built-in data set to .npy or .csv")
    p.add_argument("name", help=f"one of: {names}")
    _data_args(p, n_default=2000)
    p.add_argument("--seed", type=_seed, default=0, help=f"seed of the draw, {SEEDS} (default 0)")
    p.add_argument("--out", required=True, type=Path, help="where to write the points: .csv or .npy")
    p.add_argument("--log-density-out", type=Path, metavar="FILE", help="also write the true log p of each "
                   "point (nats, data coordinates; .csv or .npy): sets with a known density, "
                   f"{', '.join(KNOWN)}")  # fmt: skip

    p = sub.add_parser("train", help="train a noise predictor (ddpm), score network (ncsn) or velocity field (flow)")
    p.add_argument("--data", required=True, help=f"a built-in data set ({names}) or a .csv/.txt/.npy file")
    _data_args(p, n_default=20_000)
    p.add_argument(
        "--data-seed", type=_seed, default=0, help=f"seed of a built-in data set's draw, {SEEDS} (default 0)"
    )
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument("--steps", type=_positive_int, help=f"optimiser steps (default {T.steps:,})")
    p.add_argument("--objective", choices=list(OBJECTIVES), default=M.objective, help="; ".join(
        f"{name}: {info.title}, {info.paper}" for name, info in OBJECTIVES.items()))  # fmt: skip
    p.add_argument("--prediction", choices=list(PREDICTIONS), help="ddpm: what the network predicts, ε (Ho et al. "
                   "2020), x₀, or v = √ᾱ ε − √(1 − ᾱ) x₀ (Salimans & Ho 2022), which keeps samples from running far "
                   f"off (default {DEFAULT_PREDICTION})")  # fmt: skip
    p.add_argument("--schedule", choices=["linear", "cosine", "sigmoid"], help=f"default {T.schedule}")
    p.add_argument("--timesteps", type=int, help=f"T, 2 to 10,000 (default {T.timesteps})")
    p.add_argument("--p-mean", type=float, help=f"edm: the mean of ln σ during training (default {T.p_mean})")
    p.add_argument("--p-std", type=float, help=f"edm: the spread of ln σ during training (default {T.p_std})")
    p.add_argument("--width", type=int, help=f"hidden width (default {M.width})")
    p.add_argument("--depth", type=int, help=f"residual blocks (default {M.depth})")
    p.add_argument("--activation", choices=["silu", "relu", "gelu", "tanh"], help=f"default {M.activation}")
    p.add_argument("--batch", type=_positive_int, help=f"batch size (default {T.batch})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {T.lr})")
    p.add_argument("--seed", type=_seed, help=f"seed of initialisation and batches, {SEEDS} (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto: CUDA when torch sees one")
    p.add_argument("--unconditional", action="store_true", help="ignore the data's class labels")
    p.add_argument("--p-uncond", type=float, help=f"label dropout rate of a conditional model (default {T.p_uncond})")
    p.add_argument("--coupling", choices=list(COUPLINGS), help="flow: how each batch pairs source and data points: "
                   "independent (I-CFM) or minibatch optimal transport (OT-CFM, straighter paths; default "
                   f"{T.coupling})")  # fmt: skip
    p.add_argument("--source", metavar="noise|NAME|FILE", help="flow: where the paths start: noise, N(0, I) (the "
                   f"default), or a built-in data set ({', '.join(SOURCES[1:])}) or a point file, for data-to-data "
                   "transport")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("reflow", help="straighten a flow run: train the next rectified flow on pairs drawn from its "
                       "own ODE (Liu et al. 2023)")  # fmt: skip
    p.add_argument("--run", required=True, type=Path, help="a flow run directory (a reflowed one chains)")
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument(
        "--pairs",
        type=_whole_number(2, MAX_SAMPLES),
        default=20_000,
        help=f"pairs (x₀, ψ(x₀)) drawn from the run's ODE, 2 to {MAX_SAMPLES:,} (default 20,000)",
    )
    p.add_argument("--steps", type=_positive_int, help="optimiser steps (default: the base run's)")
    p.add_argument("--seed", type=_seed, default=0, help=f"seed of the pairs' source points, {SEEDS} (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("sample", help="sample from a trained run or from the exact denoiser of a data file")
    _source_args(p, exact_help)
    _sampler_args(p)
    _request_args(p)
    p.add_argument("--out", required=True, type=Path, help="samples, .npy or .csv")
    p.add_argument("--init", type=Path, help="initial noise, (N, 2) .npy in standardised space")
    p.add_argument("--trajectory", type=Path, help="also save the path: .npy (frames) or .npz (all fields)")
    _exact_args(p)
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="cpu",
        help="where to sample (default cpu; auto: CUDA when torch sees one)",
    )

    p = sub.add_parser("explain", help="print one step of a sampler for one point, its equation with the numbers")
    _source_args(p, exact_help)
    _sampler_args(p)
    _request_args(p)
    p.add_argument("--point", type=_whole_number(0), default=0, help="which sample, 0 to N − 1 (default 0)")
    p.add_argument("--frame", type=_whole_number(0), default=0, help="the step from this frame to the next, 0 to "
                   "the steps − 1 (default 0: the first step)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    _exact_args(p)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="where to compute (default cpu)")

    p = sub.add_parser("render", help="draw a view headless and write it as PNG, SVG, CSV, NPY, GIF or MP4")
    _source_args(p, exact_help, many=True)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--view", choices=VIEWS,
                      help="the app's view to draw: the forward noising, the reverse trajectories, the score field, "
                      "annealed Langevin dynamics or the transport of a grid along an ODE")  # fmt: skip
    what.add_argument("--compare", choices=list(PRESETS), help="the comparison view with this preset's panels")
    p.add_argument("--out", required=True, type=Path, help=".png/.svg (a frame), .csv (its points), .npy (all "
                   "frames), .gif/.mp4 (the animation)")  # fmt: skip
    p.add_argument("--frame", type=_whole_number(0), help="the frame of a still, 0 or more (default: the last)")
    p.add_argument("--fps", type=float, default=30.0, help="animation frames per second (default 30)")
    p.add_argument("--max-frames", type=int, default=300, help="most frames in an animation, 2 or more (300)")
    p.add_argument("--size", type=_size, default=(960, 720), help=f"WIDTHxHEIGHT of the picture, {SIZES[0][0]}x"
                   f"{SIZES[0][1]} to {SIZES[1][0]}x{SIZES[1][1]} (default 960x720)")  # fmt: skip
    _sampler_args(p)
    _request_args(p)
    p.add_argument("--points", type=_whole_number(1, MAX_SAMPLES), dest="n", help=argparse.SUPPRESS)  # old --n
    p.add_argument("--trails", type=_whole_number(0, 1000), default=30, help="points that draw their paths, 0 to "
                   "1,000 (reverse and transport views; default 30)")  # fmt: skip
    p.add_argument("--x0", action="store_true", help="overlay the model's x̂₀ (reverse view)")
    p.add_argument("--density", action="store_true", help="density heatmap of the frame (reverse view)")
    p.add_argument(
        "--probe",
        type=_coordinate,
        nargs=2,
        action="append",
        metavar=("X", "Y"),
        help="add a probe particle at X Y (data coordinates; repeatable; reverse, score and transport views)",
    )
    p.add_argument("--probe-frame", type=_whole_number(0), default=0, help="the frame the probes start at (default 0)")
    p.add_argument("--exact-overlay", action="store_true", help="overlay the exact score (score view)")
    p.add_argument("--coupling", choices=[*COUPLINGS, REFLOW], default=COUPLINGS[0], help="the pairs the "
                   f"coupling view joins: {', '.join(COUPLINGS)}, or {REFLOW}: the flow's own ψ(x₀) (default "
                   f"{COUPLINGS[0]})")  # fmt: skip
    p.add_argument("--error", action="store_true", help="learned-vs-exact error heatmap (score view)")
    p.add_argument("--density-show", choices=DENSITY_MAPS, default=DENSITY_MAPS[0], help="the density view's map: "
                   "the model's log p, the reference log p (exact, or a kernel density estimate) or their "
                   f"difference (default {DENSITY_MAPS[0]})")  # fmt: skip
    _exact_args(p)

    p = sub.add_parser("sweep", help="quality against model evaluations: samplers × step counts, as a CSV table")
    _source_args(p, exact_help, many=True)
    _sampler_args(p, sweep=True)
    p.add_argument("--steps", default="5,10,20,50,100,250,1000", help="comma-separated step counts (S, or K per "
                   "level for Langevin; DDPM always takes all T)")  # fmt: skip
    _request_args(p)
    p.add_argument("--out", required=True, type=Path, help="the table, .csv")

    p = sub.add_parser("nll", help="log-likelihood of points through a model's probability-flow ODE, in nats")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run directory written by `diffvis train`")
    src.add_argument("--exact", metavar="DATA", help=f"the exact model of a distribution with a known density "
                     f"({', '.join(KNOWN)}), or of the points of another built-in set or a point file")  # fmt: skip
    p.add_argument("--points", required=True, type=Path, help="the points to score: .csv, .txt or .npy")
    p.add_argument("--solver", choices=list(LIKELIHOOD_METHODS), default=LIKELIHOOD_METHODS[0],
                   help="dopri5 (adaptive, the default) or a fixed-step Runge–Kutta method")  # fmt: skip
    p.add_argument("--steps", type=_whole_number(1, 10_000), default=100, help="fixed-step solvers: steps (100)")
    p.add_argument("--rtol", type=_tolerance, default=1e-5, help="dopri5: relative tolerance (default 1e-5)")
    p.add_argument("--atol", type=_tolerance, default=1e-5, help="dopri5: absolute tolerance (default 1e-5)")
    p.add_argument("--hutchinson", type=_whole_number(0, 1000), default=0, metavar="K", help="estimate the "
                   "divergence with K Rademacher probes per point (default 0: the exact 2D divergence)")  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, help=f"seed of the Hutchinson probes, {SEEDS} (default 0)")
    p.add_argument("--out", type=Path, help="one row per point: x, y, nll (and the probes' spread), .csv")
    _exact_args(p)

    p = sub.add_parser("bench", help="print the performance figures next to bare-PyTorch baselines")
    p.add_argument("--repeats", type=_positive_int, default=5, help="runs per timing (the median is shown)")
    p.add_argument("--quick", action="store_true", help="skip the 60 s quality runs")
    return parser


def _new_name(arg: str) -> str:
    option, equals, value = arg.partition("=")
    return OLD_NAMES.get(option, option) + equals + value if option in OLD_NAMES else arg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    argv = [_new_name(arg) for arg in argv]
    keep_freed_memory()
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            return open_app(args)
        if args.command == "render":
            from diffvis.render import cmd_render

            return cmd_render(args)
        from diffvis import commands

        return getattr(commands, f"cmd_{args.command}")(args)
    except DiffvisError as e:
        one_line = str(e).replace("\r", "\\r").replace("\n", "\\n")  # a file name may hold a line break
        print(f"diffvis: error: {one_line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("diffvis: interrupted", file=sys.stderr)
        return 130


def open_app(args) -> int:
    """The desktop app. Without a display, a screenshot renders offscreen; anything else, or a system library Qt
    lacks, is a clear error before Qt loads (diffvis.qt_platform)."""
    from diffvis.qt_platform import check_can_open_window

    check_can_open_window(screenshot=args.screenshot is not None)
    from diffvis.app.main import run_app

    return run_app(demo=args.demo, screenshot=args.screenshot, run=args.run, tour=args.tour)


if __name__ == "__main__":
    sys.exit(main())
