"""Atomic file writes: a crash mid-write never destroys the previous file, and outputs land all or none.

A write goes to a temporary ``.{name}.XXXXXXXX.tmp`` beside its target, then is renamed over it. A process
killed mid-write leaves that temporary behind; the next write of the same name (or ``remove_temporaries``)
deletes it. Nothing else is ever deleted.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from diffvis.errors import DataFileError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The new file keeps the permissions of the one it replaces (0644 for a new file)."""
    path = Path(path)
    tmp = _stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(files: dict[Path, bytes]) -> None:
    """Write every file the user named, or none: each is staged beside its target before any is renamed into
    place. A failure is one ``DataFileError`` line."""
    staged: list[tuple[str, Path]] = []
    path = None
    try:
        for path, data in files.items():
            staged.append((_stage(Path(path), data), Path(path)))
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as e:
        raise DataFileError(f"{path}: cannot be written ({e.strerror or e})") from None
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def write_output(path: str | os.PathLike, data: bytes) -> None:
    """``write_outputs`` of one file."""
    write_outputs({Path(path): data})


def check_output(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output the user named that cannot be written: it names a folder, or its
    folder is missing or read-only."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise DataFileError(f"{path}: cannot be written: it is a folder")
    if not folder.is_dir():
        raise DataFileError(f"{path}: cannot be written: there is no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataFileError(f"{path}: cannot be written: the folder {folder} is read-only")


def remove_temporaries(folder: str | os.PathLike, name_pattern: str) -> None:
    """Delete the temporaries that killed writes left in ``folder`` for targets whose whole name matches the
    regular expression ``name_pattern``; only names of this module's own making are touched."""
    own = re.compile(rf"\.(?:{name_pattern})\.[a-z0-9_]{{8}}\.tmp")
    for entry in os.scandir(folder):
        if own.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


def _stage(path: Path, data: bytes) -> str:
    """``data`` in a new fsynced temporary beside ``path`` (stale ones of the same name removed first)."""
    remove_temporaries(path.parent, re.escape(path.name))
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp
