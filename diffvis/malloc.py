"""Process set-up for diffvis's own commands: keep freed tensor memory for reuse.

glibc serves each large allocation (a sampler's (N, width) activations, a few MB) with a fresh mmap and returns
it on free, so every step pays page faults again, and how often depends on the allocator's history: the same
DDIM run took 0.21 s or 0.41 s from one process to the next here. Raising the mmap and trim thresholds keeps such
blocks in the heap for reuse (PyTorch's CPU tuning guide suggests jemalloc or tcmalloc for the same reason).
Called by the CLI and the app, never on import, so a program that imports diffvis keeps its own allocator.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h


def keep_freed_memory(mmap_threshold: int = 256 * 2**20, trim_threshold: int = 512 * 2**20) -> bool:
    """Tune glibc's malloc; True when it was done (False elsewhere: macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
        )
    except (OSError, AttributeError):
        return False
