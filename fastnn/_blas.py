"""Thread control for the BLAS that Numba's ``np.dot`` calls (SciPy's OpenBLAS).

fastnn's kernels bring their own threads. If SciPy's OpenBLAS also runs a pool,
its spinning workers and Numba's fight for the same cores (BLAS oversubscription),
and a training step slows several-fold: compare
``FASTNN_BLAS_THREADS=2 python benchmarks/profile_step.py mlp`` with the default.
So at import fastnn sets that BLAS to ``FASTNN_BLAS_THREADS`` threads (default 1).
NumPy's own BLAS, used by the reference backend, is a separate library and is left
alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os

_SETTERS = ("scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads", "openblas_get_num_threads")


@functools.lru_cache(maxsize=1)
def _scipy_blas_libraries() -> tuple[ctypes.CDLL, ...]:
    try:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library Numba uses)
    except ImportError:
        return ()
    root = os.path.dirname(os.path.dirname(scipy.__file__))
    paths = glob.glob(os.path.join(root, "scipy.libs", "*openblas*.so*"))
    paths += glob.glob(os.path.join(os.path.dirname(scipy.__file__), ".dylibs", "*openblas*"))
    libraries = []
    for path in paths:
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return tuple(libraries)


def _call_first(library, names, *args):
    for name in names:
        function = getattr(library, name, None)
        if function is not None:
            return function(*args)
    return None


def set_kernel_blas_threads(n: int) -> bool:
    """Set the thread count of the BLAS behind Numba's np.dot; False if none was found."""
    found = False
    for library in _scipy_blas_libraries():
        if _call_first(library, _SETTERS, ctypes.c_int(int(n))) is not None or any(
            hasattr(library, name) for name in _SETTERS
        ):
            found = True
    return found


def get_kernel_blas_threads() -> int | None:
    """The thread count of the BLAS behind Numba's np.dot, or None if unknown."""
    for library in _scipy_blas_libraries():
        value = _call_first(library, _GETTERS)
        if value is not None:
            return int(value)
    return None


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with the BLAS behind Numba's np.dot on one thread, then restore it.

    For kernels that call BLAS from inside their own parallel loops. With the
    default FASTNN_BLAS_THREADS=1 this changes nothing.
    """
    before = get_kernel_blas_threads()
    if before is None or before == 1:
        yield
        return
    set_kernel_blas_threads(1)
    try:
        yield
    finally:
        set_kernel_blas_threads(before)
