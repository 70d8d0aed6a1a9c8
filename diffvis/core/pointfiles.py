"""Reading and writing user point files: CSV, TXT or NPY with two numeric columns and an optional third
column of integer class labels. Text files may start with one header line and hold '#' comments; fields are
separated by commas, semicolons, tabs or spaces. Nothing is ever unpickled.
"""

from __future__ import annotations

import io
import math
import re
import tokenize
from pathlib import Path
from typing import BinaryIO

import numpy as np

from diffvis.core.atomic import check_output, write_output
from diffvis.core.datasets import MAX_COORDINATE, MAX_POINTS, PointSet, first_bad_point
from diffvis.core.safe_files import megabytes, open_regular, read_at_most, read_regular
from diffvis.errors import DataFileError

TEXT_SUFFIXES = (".csv", ".txt")
SUFFIXES = (*TEXT_SUFFIXES, ".npy")
MAX_TEXT_BYTES = 256 * 10**6  # MAX_POINTS rows of three full-precision numbers take about 75 MB
MAX_NPY_BYTES = 64 * 10**6  # MAX_POINTS × 3 values of 16 bytes (the widest numeric type) take 48 MB
_SPLIT = re.compile(r"[,;\t ]+")
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def load_points(path: str | Path, *, follow_symlinks: bool = True) -> PointSet:
    """Read a point file; raise ``DataFileError`` with one sentence naming the problem. Only a regular file is
    read (see ``open_regular``; ``follow_symlinks`` False also refuses a symlink), and only up to its cap."""
    path = Path(path)
    suffix = _suffix(path)
    with open_regular(path, follow_symlinks=follow_symlinks) as f:
        table = _read_npy(f, path) if suffix == ".npy" else _read_text(read_at_most(f, MAX_TEXT_BYTES, path), path)
    return _to_pointset(table, path)


def point_file_bytes(path: str | Path, *, follow_symlinks: bool = True) -> bytes:
    """The raw bytes of a point file (of a known type and within its type's cap), e.g. to keep a copy."""
    path = Path(path)
    cap = MAX_NPY_BYTES if _suffix(path) == ".npy" else MAX_TEXT_BYTES
    return read_regular(path, cap, follow_symlinks=follow_symlinks)


def _suffix(path: Path, kind: str = "file") -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"{path.name}: unsupported {kind} type {suffix or '(none)'}; use .csv, .txt or .npy")
    return suffix


def read_npy(path: str | Path, what: str = "points") -> np.ndarray:
    """A numeric 2-D .npy array, read without unpickling; the caller checks its width and length."""
    path = Path(path)
    with open_regular(path) as f:
        return _npy_array(f, path, what)


def _npy_array(f: BinaryIO, path: Path, what: str) -> np.ndarray:
    """The array of an open .npy file. Its header is checked first (a numeric 2-D array of at most MAX_NPY_BYTES),
    so a huge or malformed file is refused before its data is read."""
    try:
        header = _NPY_HEADERS.get(np.lib.format.read_magic(f))
        if header is None:
            raise ValueError("unknown .npy version")
        shape, fortran_order, dtype = header(f)
    except (ValueError, EOFError, TypeError, SyntaxError, tokenize.TokenError):  # numpy parses the header as Python
        raise DataFileError(f"{path.name}: not a numeric .npy array of {what}") from None
    if dtype.kind not in "iuf":
        raise DataFileError(f"{path.name}: the array of {what} must be numeric")
    if len(shape) != 2:
        raise DataFileError(f"{path.name}: expected a 2-D array of {what}, got shape {shape}")
    _check_count(shape[0], path, what)
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_NPY_BYTES:
        raise DataFileError(f"{path.name}: an array of shape {shape} is larger than {megabytes(MAX_NPY_BYTES)}")
    data = f.read(size)  # at most MAX_NPY_BYTES; what follows the array, if anything, is not read (as numpy)
    if len(data) < size:
        raise DataFileError(f"{path.name}: the file is truncated ({len(data):,} of {size:,} bytes of {what})")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _read_npy(f: BinaryIO, path: Path) -> np.ndarray:
    array = _npy_array(f, path, "points")
    if array.shape[1] not in (2, 3):
        raise DataFileError(f"{path.name}: expected an array of shape (N, 2) or (N, 3), got {array.shape}")
    return np.array(array, dtype=np.float64)


def _read_text(raw: bytes, path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    width = None
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", errors="strict")  # -sig: Excel's byte-order mark
    try:
        for number, line in enumerate(text, start=1):
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


def _check_count(n: int, path: Path, what: str = "points") -> None:
    if n > MAX_POINTS:
        raise DataFileError(f"{path.name}: more than {MAX_POINTS:,} {what}; thin the file out first")


def _to_pointset(table: np.ndarray, path: Path) -> PointSet:
    if len(table) == 0:
        raise DataFileError(f"{path.name}: the file holds no points")
    bad = first_bad_point(table)
    if bad is not None:
        raise DataFileError(f"{path.name}: point {bad + 1} has a NaN or infinite value, or one beyond "
                            f"±{MAX_COORDINATE:g}")  # fmt: skip
    labels = None
    if table.shape[1] == 3:
        raw = table[:, 2]
        if not np.all(raw == np.round(raw)) or raw.min() < 0 or raw.max() > 1000:
            raise DataFileError(f"{path.name}: the third column must hold integer class labels from 0 to 1000")
        labels = raw.astype(np.int64)
    return PointSet(np.ascontiguousarray(table[:, :2]), labels, path.stem)


def save_points(points: PointSet, path: str | Path) -> None:
    """Write points (and labels) atomically as .npy, or as .csv/.txt with a header line."""
    write_output(path, encode_points(points, path))


def check_points_output(path: str | Path) -> None:
    """Refuse, before any work, a points output of an unknown type or one that cannot be written."""
    _suffix(Path(path), "output")
    check_output(path)


def encode_points(points: PointSet, path: str | Path) -> bytes:
    """The bytes of ``points`` as a file of ``path``'s type. Points that are NaN or infinite are refused: a
    point file diffvis writes always loads back."""
    path = Path(path)
    suffix = _suffix(path, "output")
    bad = int((~np.isfinite(points.points).all(axis=1)).sum())
    if bad:
        raise DataFileError(f"{path.name}: not written: {bad:,} of the {len(points):,} points are NaN or infinite")
    table = points.points if points.labels is None else np.column_stack([points.points, points.labels])
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, table, allow_pickle=False)
        return buffer.getvalue()
    header = "x,y" if points.labels is None else "x,y,label"
    fmt = ["%.9g", "%.9g"] + ([] if points.labels is None else ["%d"])
    buffer = io.StringIO()
    np.savetxt(buffer, table, delimiter=",", header=header, comments="", fmt=fmt)
    return buffer.getvalue().encode()
