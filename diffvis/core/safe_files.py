"""Reading a file without trusting it: only a regular file, and never more than a cap.

Every reader of a file that a user or a run names goes through ``open_regular``: a named pipe, a device or a
socket is refused before it is opened (so a FIFO never blocks and /dev/zero is never read), and ``read_at_most``
reads at most cap + 1 bytes whatever size the file claims (devices and /proc files claim 0).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from diffvis.errors import DataFileError, DiffvisError

_CHUNK = 1 << 22
_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe",
          stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}  # fmt: skip


@contextmanager
def open_regular(path: str | os.PathLike, *, error: type[DiffvisError] = DataFileError,
                 follow_symlinks: bool = True) -> Iterator[BinaryIO]:  # fmt: skip
    """The regular file at ``path`` (after resolving symlinks; with ``follow_symlinks`` False a symlink is
    refused), open for binary reading. Anything else, or an OSError while it is read, raises ``error``."""
    path = Path(path)
    try:
        _check_regular(path, os.stat(path, follow_symlinks=follow_symlinks), error)  # before opening: it may act
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW))
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise error(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    with os.fdopen(fd, "rb") as f:
        try:
            _check_regular(path, os.fstat(fd), error)  # it may have been swapped since the stat
            yield f
        except OSError as e:
            raise error(f"{path}: cannot be read ({e.strerror or e})") from None


def read_at_most(f: BinaryIO, cap: int, path: str | os.PathLike, error: type[DiffvisError] = DataFileError) -> bytes:
    """The rest of ``f``, refused with ``error`` when it holds more than ``cap`` bytes (at most cap + 1 are read)."""
    chunks, size = [], 0
    while size <= cap:
        chunk = f.read(min(cap + 1 - size, _CHUNK))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise error(f"{path}: larger than {megabytes(cap)}, the most diffvis reads from such a file")


def read_regular(path: str | os.PathLike, cap: int, *, error: type[DiffvisError] = DataFileError,
                 follow_symlinks: bool = True) -> bytes:  # fmt: skip
    """The bytes of the regular file at ``path``, at most ``cap`` of them (see ``open_regular``)."""
    with open_regular(path, error=error, follow_symlinks=follow_symlinks) as f:
        return read_at_most(f, cap, path, error)


def megabytes(size: int) -> str:
    """A byte count as users read it, e.g. '256 MB'."""
    return f"{size / 1e6:,.0f} MB"


def _check_regular(path: Path, st: os.stat_result, error: type[DiffvisError]) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise error(f"{path}: cannot be read: it is {kind}, and diffvis reads only regular files")
