"""Keep freed host memory mapped for the next training step (glibc's malloc, Linux).

A training step frees multi-MB temporaries (embedding gradients, their sums, the coalesced
gradient) that the next step allocates again. glibc hands blocks above its mmap threshold back to
the OS and trims the heap's free top, so each step page-faults that memory back in
(tests/test_allocator.py counts the faults; docs/benchmarks.md has the epoch times). Raising the
mmap threshold to
glibc's ceiling (32 MiB on 64-bit) and the trim threshold to 1 GiB keeps those blocks in the heap
for reuse, as tcmalloc or jemalloc would.

Both are process-wide settings; the cost is that up to the trim threshold of freed memory stays
resident instead of going back to the OS. Elsewhere (macOS, Windows, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024**2  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
TRIM_THRESHOLD = 1024**3


def retain_freed_memory() -> bool:
    """Tell glibc to keep freed blocks for reuse; True where both settings were accepted."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; musl's stub returns 0 and changes nothing.
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and (
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
