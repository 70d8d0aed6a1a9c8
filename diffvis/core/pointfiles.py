"""Reading and writing user point files: CSV, TXT or NPY with two numeric columns and an optional third
column of integer class labels. Text files may start with one header line and hold '#' comments; fields are
separated by commas, semicolons, tabs or spaces. Nothing is ever unpickled.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from diffvis.core.atomic import write_output
from diffvis.core.datasets import MAX_POINTS, PointSet
from diffvis.errors import DataFileError

TEXT_SUFFIXES = (".csv", ".txt")
SUFFIXES = (*TEXT_SUFFIXES, ".npy")
_SPLIT = re.compile(r"[,;\t ]+")


def load_points(path: str | Path) -> PointSet:
    """Read a point file; raise ``DataFileError`` with one sentence naming the problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"{path.name}: unsupported file type {suffix or '(none)'}; use .csv, .txt or .npy")
    try:
        table = _read_npy(path) if suffix == ".npy" else _read_text(path)
    except OSError as e:
        raise DataFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    return _to_pointset(table, path)


def read_npy(path: str | Path, what: str = "points") -> np.ndarray:
    """Memory-map a numeric 2-D .npy array without unpickling; the caller checks its shape.

    Only the header is read here, so a huge file is refused by its shape before any data is loaded."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except OSError as e:
        raise DataFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (ValueError, EOFError):
        raise DataFileError(f"{path.name}: not a numeric .npy array of {what}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise DataFileError(f"{path.name}: the array of {what} must be numeric")
    if array.ndim != 2:
        raise DataFileError(f"{path.name}: expected a 2-D array of {what}, got shape {array.shape}")
    return array


def _read_npy(path: Path) -> np.ndarray:
    array = read_npy(path)
    if array.shape[1] not in (2, 3):
        raise DataFileError(f"{path.name}: expected an array of shape (N, 2) or (N, 3), got {array.shape}")
    _check_count(len(array), path)
    return np.asarray(array, dtype=np.float64)


def _read_text(path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    width = None
    with open(path, encoding="utf-8-sig", errors="strict") as f:  # -sig: Excel's byte-order mark
        try:
            for number, line in enumerate(f, start=1):
                fields = _SPLIT.split(line.split("#", 1)[0].strip())
                if fields == [""]:
                    continue
                values = _parse_row(fields, number, header_allowed=not rows and width is None, path=path)
                if values is None:
                    width = 0  # the header was seen; later non-numeric lines are errors
                    continue
                if width not in (None, 0, len(values)):
                    raise DataFileError(f"{path.name}, line {number}: expected {width} columns, got {len(values)}")
                width = len(values)
                rows.append(values)
                _check_count(len(rows), path)
        except UnicodeDecodeError:
            raise DataFileError(f"{path.name}: not a text file (it is not valid UTF-8)") from None
    _check_count(len(rows), path)
    return np.array(rows, dtype=np.float64)


def _parse_row(fields: list[str], number: int, *, header_allowed: bool, path: Path) -> list[float] | None:
    try:
        values = [float(v) for v in fields]
    except ValueError:
        if header_allowed:
            return None
        raise DataFileError(f"{path.name}, line {number}: {' '.join(fields)[:60]!r} is not numeric") from None
    if len(values) not in (2, 3):
        raise DataFileError(f"{path.name}, line {number}: expected 2 or 3 columns (x, y[, label]), got {len(values)}")
    return values


def _check_count(n: int, path: Path) -> None:
    if n > MAX_POINTS:
        raise DataFileError(f"{path.name}: more than {MAX_POINTS:,} points; thin the file out first")


def _to_pointset(table: np.ndarray, path: Path) -> PointSet:
    if len(table) == 0:
        raise DataFileError(f"{path.name}: the file holds no points")
    bad = ~np.isfinite(table).all(axis=1)
    if bad.any():
        raise DataFileError(f"{path.name}: point {int(np.argmax(bad)) + 1} has a NaN or infinite value")
    labels = None
    if table.shape[1] == 3:
        raw = table[:, 2]
        if not np.all(raw == np.round(raw)) or raw.min() < 0 or raw.max() > 1000:
            raise DataFileError(f"{path.name}: the third column must hold integer class labels from 0 to 1000")
        labels = raw.astype(np.int64)
    return PointSet(np.ascontiguousarray(table[:, :2]), labels, path.stem)


def save_points(points: PointSet, path: str | Path) -> None:
    """Write points (and labels) atomically as .npy, or as .csv/.txt with a header line."""
    path = Path(path)
    suffix = path.suffix.lower()
    table = points.points if points.labels is None else np.column_stack([points.points, points.labels])
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, table, allow_pickle=False)
        data = buffer.getvalue()
    elif suffix in TEXT_SUFFIXES:
        header = "x,y" if points.labels is None else "x,y,label"
        fmt = ["%.9g", "%.9g"] + ([] if points.labels is None else ["%d"])
        buffer = io.StringIO()
        np.savetxt(buffer, table, delimiter=",", header=header, comments="", fmt=fmt)
        data = buffer.getvalue().encode()
    else:
        raise DataFileError(f"{path.name}: unsupported output type {suffix or '(none)'}; use .csv, .txt or .npy")
    write_output(path, data)
