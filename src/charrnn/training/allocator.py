"""Keep freed memory for reuse instead of handing it back to the system (glibc's malloc, Linux).

Every training step allocates and frees the same large buffers (the LSTM's saved gate activations,
their gradients, the logits). glibc serves each block above its mmap threshold (128 KB, rising to
32 MB at most) with fresh pages from the kernel and unmaps them when freed, so every step faults
all of its buffers' pages in again; keeping them makes large steps markedly faster
(benchmarks/RESULTS.md). The price: memory, once used, stays with the process until it exits, and
the setting is process-wide. So the library never makes it by itself: the CLI calls
`keep_freed_memory()` after reading the text (so that reading's temporary buffers still go back to
the system and the peak is unchanged), and API users call it or pass `keep_freed_memory=True`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to serve every block from its heap and never to shrink it; for this whole process.

    Returns whether it agreed; False (and nothing changed) where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no C library by that name, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; musl's is a stub that returns 0.
    return mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and mallopt(_M_MMAP_MAX, 0) == 1
