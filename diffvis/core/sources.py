"""Where training points come from: a built-in data set or a user file, and fresh draws for the metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from diffvis.core.datasets import DATASETS, PointSet, canonical_name, make_dataset
from diffvis.core.metrics import random_subset
from diffvis.core.pointfiles import load_points
from diffvis.core.request import EXACT_DENSITY
from diffvis.errors import DataFileError


def load_source(source: str, *, n: int, noise: float | None = None, seed: int = 0) -> tuple[PointSet, dict]:
    """A built-in name draws ``n`` points; anything else is read as a point file. Returns the points and a
    JSON-able description that ``fresh_draw`` understands."""
    source = canonical_name(source)
    if source in DATASETS:
        points = make_dataset(source, n, noise=noise, seed=seed)
        noise = DATASETS[source].default_noise if noise is None else noise
        return points, {"source": source, "n": n, "noise": noise, "seed": seed}
    path = Path(source)
    if not path.suffix:
        raise DataFileError(f"{source!r} is neither a built-in data set ({', '.join(DATASETS)}) nor a point file")
    points = load_points(path)
    return points, {"source": str(path.resolve()), "n": len(points)}


EXACT_DRAW = 20_000  # the points of a built-in set that ``--exact NAME`` draws (the training default)


def exact_source(data: str) -> tuple[PointSet, dict]:
    """The points that ``--exact DATA`` names: a built-in set's default draw of ``EXACT_DRAW`` points, or a point
    file (see ``load_source``)."""
    name = canonical_name(str(data))
    return load_source(name, n=EXACT_DRAW) if name in DATASETS else load_source(str(data), n=0)


def exact_kind(data: PointSet) -> bool | str:
    """The exact model ``--exact`` stands for with these points: their distribution's (``EXACT_DENSITY``) when
    they were drawn from a known density, else the points' own (True)."""
    return EXACT_DENSITY if data.density is not None else True


def fresh_draw(info: dict, points: np.ndarray, n: int) -> Callable[[int], np.ndarray]:
    """``draw(seed)`` → n fresh points of the data set: new i.i.d. draws for a built-in set, random subsets of
    the training points for a file (the file is all we know of its distribution)."""
    draw = fresh_sets(info, PointSet(points), n)
    return lambda seed: draw(seed).points


def fresh_sets(info: dict, data: PointSet, n: int) -> Callable[[int], PointSet]:
    """``draw(seed)`` → n fresh points with their labels (see ``fresh_draw``)."""
    name = info.get("source")
    if name in DATASETS:
        return lambda seed: make_dataset(name, n, noise=info.get("noise"), seed=seed)

    def draw(seed: int) -> PointSet:
        rows = random_subset(len(data), n, seed)
        labels = None if data.labels is None else data.labels[rows]
        return PointSet(data.points[rows], labels, data.name, data.class_names)

    return draw


def run_points(info: dict) -> tuple[PointSet, dict]:
    """The training points a run's ``data`` description names: a built-in set drawn again, or its point file read
    again (a loaded run's own copy, inside its folder; a symlink is refused). A run without one (see
    ``checkpoint.load_run``) is refused with the reason."""
    source = info.get("source", "")
    if source in DATASETS:
        return load_source(source, n=int(info["n"]), noise=info.get("noise"), seed=int(info.get("seed", 0)))
    if Path(source).is_absolute():
        points = load_points(source, follow_symlinks=False)
        return points, {"source": source, "n": len(points)}
    name = info.get("file") or source or "unknown"
    raise DataFileError(f"the run does not hold its training data ({name}), and a run is read only from inside its "
                        "folder: train it again to keep a copy in the run")  # fmt: skip


def runs_on_one_data_set(paths: list[Path]) -> tuple[list, PointSet, dict]:
    """The runs at ``paths`` (see ``checkpoint.load_run``) with the training points they share and their
    description; runs trained on different points are refused (they are scored against one draw of the data)."""
    from diffvis.core.checkpoint import load_run

    runs = [load_run(path) for path in paths]
    data, info = run_points(runs[0].data_info)
    for path, run in zip(paths[1:], runs[1:], strict=True):
        other, _ = run_points(run.data_info)
        if other.points.shape != data.points.shape or not np.array_equal(other.points, data.points):
            raise DataFileError(f"{path} was trained on other points than {paths[0]}: runs compared side by side "
                                "share their training data")  # fmt: skip
    return runs, data, info
