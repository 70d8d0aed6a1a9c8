"""Atomic file writes: a crash mid-write never destroys the previous file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from diffvis.errors import DataFileError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The new file keeps the permissions of the one it replaces (0644 for a new file)."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(path: str | os.PathLike, data: bytes) -> None:
    """``atomic_write_bytes`` for a file the user named: a failure is one ``DataFileError`` line."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise DataFileError(f"{path}: cannot be written ({e.strerror or e})") from None
