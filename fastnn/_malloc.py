"""glibc malloc settings that keep a training loop's freed arrays in the process.

A training step allocates its activations and gradients afresh (NumPy arrays of a few
MiB) and frees them before the next step. With glibc's default settings, arrays above
the mmap threshold are mapped from the kernel and unmapped on free, and free memory at
the top of the heap above the trim threshold is handed back; both thresholds adapt to
the sizes freed so far, so how much comes back each step depends on the process's
history. Memory handed back costs a page fault per 4 KiB page when the next step
touches it again: ResNet-20 at batch 64 took about 2,400 faults a step, the strided zoo
networks 900 to 1,500, and on the project's machine (a virtual machine, where faults are
dear) those were a fifth to a quarter of a small network's step
(``python benchmarks/page_faults.py`` counts them and times the steps either way).

So at import fastnn fixes the two thresholds, ``M_MMAP_THRESHOLD`` at
:data:`MMAP_THRESHOLD` (32 MiB, glibc's largest) and ``M_TRIM_THRESHOLD`` at
:data:`TRIM_THRESHOLD` (256 MiB): arrays up to 32 MiB come from the heap and their
memory is reused from step to step. The cost is memory: up to 256 MiB freed at the top
of the heap stays with the process instead of going back to the system.

Left alone when ``FASTNN_MALLOC=0``, when the environment sets glibc's own
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES`` (the user's
settings win), and off glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import os
import sys

from ._config import _env_bool

#: mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Allocations above this many bytes are mapped from the kernel (glibc's maximum).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of the heap above this many bytes goes back to the system.
TRIM_THRESHOLD = 256 * 2**20

#: Environment variables through which a user sets glibc's thresholds themselves.
GLIBC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def _glibc():
    """The process's C library when it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory(environ=os.environ) -> bool:
    """Set glibc's mmap and trim thresholds (see the module doc); True when they were set."""
    if not _env_bool("FASTNN_MALLOC", True, environ):
        return False
    if any(name in environ for name in GLIBC_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


APPLIED = keep_freed_memory()
