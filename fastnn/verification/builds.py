"""Running the numba ops on a chosen kernel build and thread count.

A kernel compiled with :func:`fastnn._config.parallel_kernel` has a serial and a parallel
build and runs the parallel one when a call's work reaches
:data:`fastnn._config.PARALLEL_THRESHOLD`, which it reads at every call. Setting that
threshold to 0 runs every kernel's parallel build, above any work figure its serial one;
:func:`kernel_build` does so for the duration of a ``with`` block. The threshold is the
process's, so a verify run shares the process with no other work on the kernels.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import numba

from .. import _config

#: The builds a case runs on: name -> the threshold that selects it for every call.
BUILDS = {"serial": sys.maxsize, "parallel": 0}


@contextmanager
def kernel_build(name: str):
    """Within the block every ParallelKernel runs its ``name`` build ("serial" or "parallel")."""
    if name not in BUILDS:
        raise ValueError(f"kernel_build: expected one of {sorted(BUILDS)}, got {name!r}")
    before = _config.PARALLEL_THRESHOLD
    _config.PARALLEL_THRESHOLD = BUILDS[name]
    try:
        yield
    finally:
        _config.PARALLEL_THRESHOLD = before


@contextmanager
def thread_count(threads: int):
    """Within the block parallel kernels run on ``threads`` threads (this thread only)."""
    before = _config.get_num_threads()
    _config.set_num_threads(threads)
    try:
        yield
    finally:
        _config.set_num_threads(before)


def all_threads() -> int:
    """The most threads parallel kernels can use in this process (NUMBA_NUM_THREADS)."""
    return int(numba.config.NUMBA_NUM_THREADS)


__all__ = ["BUILDS", "all_threads", "kernel_build", "thread_count"]
