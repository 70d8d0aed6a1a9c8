"""The trained runs that ship with diffvis, in ``resources/runs``: one small run per objective on a built-in data
set (and a class-conditional one for guidance), so that the tour, *File ▸ Open example run* and ``diffvis --demo``
show a trained model with no training wait.

Each is what ``diffvis train --data D --objective O`` gives with the default settings (10,000 steps), its weights
stored in float16 (about 50 KB) with only the EMA snapshot autoguidance uses, if any. ``resources/runs/
regenerate.py`` trains them again and records in ``examples.json`` each one's quality as ``example_quality``
measures it, which a test checks the shipped files still reach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from diffvis.core.checkpoint import load_run
from diffvis.core.pipeline import evaluate_run
from diffvis.core.run import Run
from diffvis.core.sources import fresh_draw, run_points
from diffvis.errors import ConfigError

RUNS_DIR = Path(__file__).resolve().parents[2] / "resources" / "runs"
MANIFEST = "examples.json"
CHECK_N = 1000  # the samples (and fresh points) of an example's recorded quality


@dataclass(frozen=True)
class Example:
    """A shipped run: its folder ``name``, how a menu shows it, and how it was trained (``train`` are the
    ``diffvis train`` options besides --data and --objective); ``snapshot``: it keeps its half-way snapshot."""

    name: str
    title: str
    data: str
    objective: str
    train: tuple[str, ...] = field(default_factory=tuple)
    snapshot: bool = False

    @property
    def path(self) -> Path:
        return RUNS_DIR / self.name


EXAMPLES = (
    Example("moons-ddpm", "Moons · DDPM (v-prediction)", "moons", "ddpm"),
    Example("moons-ncsn", "Moons · NCSN (denoising score matching)", "moons", "ncsn"),
    Example("moons-flow-ot", "Moons · flow matching, OT coupling", "moons", "flow", ("--coupling", "ot")),
    Example("moons-edm", "Moons · EDM", "moons", "edm"),
    Example("tree-ddpm", "Tree · DDPM by class, with its half-way snapshot (guidance)", "tree", "ddpm", snapshot=True),
    Example("butterfly-ddpm", "Butterfly · DDPM (v-prediction)", "butterfly", "ddpm"),
)
DEMO_EXAMPLE = "butterfly-ddpm"  # what ``diffvis --demo`` shows while a fresh run trains


def example(name: str) -> Example:
    for e in EXAMPLES:
        if e.name == name:
            return e
    raise ConfigError(f"no example run {name!r}; the examples are {', '.join(e.name for e in EXAMPLES)}")


def shipped() -> list[Example]:
    """The examples whose run is in ``RUNS_DIR`` (all of them in a checkout)."""
    return [e for e in EXAMPLES if (e.path / "run.json").is_file()]


def load_example(name: str) -> Run:
    return load_run(example(name).path)


def example_quality(run: Run) -> dict[str, float]:
    """The run's full sampler from seed 0 on ``CHECK_N`` points, as ratios to each metric's floor (fresh draws of
    its data set)."""
    points, info = run_points(run.data_info)
    report = evaluate_run(run, fresh_draw(info, points.points, CHECK_N), n=CHECK_N, seed=0)
    return {name: round(r.ratio, 4) for name, r in report.items()}


def recorded_quality() -> dict[str, dict[str, float]]:
    """{example name: its quality when it was made} from ``examples.json``."""
    return json.loads((RUNS_DIR / MANIFEST).read_text())["quality"]
