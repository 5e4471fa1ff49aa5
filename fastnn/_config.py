"""The one place for Numba settings.

Every kernel in :mod:`fastnn.kernels` is compiled through :func:`jit` or
:func:`parallel_kernel` from this module; no kernel hard-codes a flag.
Each setting can be overridden with an environment variable read at import:

=============================  =======================================  ==========
variable                       meaning                                  default
=============================  =======================================  ==========
``FASTNN_FASTMATH``            LLVM fast-math flags (1) or strict (0)   1
``FASTNN_CACHE``               keep compiled code on disk between runs  1
``FASTNN_PARALLEL``            compile multithreaded kernels            1
``FASTNN_PARALLEL_THRESHOLD``  work items below which the serial        32768
                               variant of a kernel runs
``FASTNN_THREADS``             threads for parallel kernels             all cores
``FASTNN_BLAS_THREADS``        threads of the BLAS behind Numba's       1
                               ``np.dot`` (see :mod:`fastnn._blas`)
``FASTNN_COMPILE_NOTICE``      one line on stderr when a process first  1
                               compiles kernels (:mod:`fastnn._kernel_cache`)
``FASTNN_PRECOMPILE``          on a cache new to fastnn, compile a      1
                               model's kernels in parallel processes
                               before its first step
                               (:mod:`fastnn._precompile`)
``FASTNN_TIERED_START``        with FASTNN_PRECOMPILE, run the first    0
                               steps on serial builds while workers
                               compile the parallel ones
                               (:mod:`fastnn._precompile`)
``FASTNN_MALLOC``              fix glibc's mmap and trim thresholds so  1
                               freed arrays stay for the next step
                               (:mod:`fastnn._malloc`)
=============================  =======================================  ==========

Fast-math here never includes ``nnan``/``ninf``: the training loop relies on
NaN and Inf propagating so that it can stop on them.
"""

from __future__ import annotations

import os
import types

import numba

__all__ = [
    "FASTMATH",
    "FASTMATH_IN_ORDER",
    "CACHE",
    "PARALLEL",
    "PARALLEL_THRESHOLD",
    "jit",
    "parallel_kernel",
    "set_num_threads",
    "get_num_threads",
    "run_serial_only",
    "serial_only",
]


def _env_bool(name: str, default: bool, environ=os.environ) -> bool:
    value = environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


FASTMATH: set[str] | bool = (
    {"nsz", "arcp", "contract", "reassoc"} if _env_bool("FASTNN_FASTMATH", True) else False
)
#: :data:`FASTMATH` without ``reassoc``: for code whose arithmetic must keep the order it is
#: written in: a kernel that a fast path must match bit for bit, or the range reduction of
#: :mod:`fastnn.kernels.elementary`'s exp and tanh.
FASTMATH_IN_ORDER: set[str] | bool = FASTMATH - {"reassoc"} if FASTMATH else False
CACHE: bool = _env_bool("FASTNN_CACHE", True)
PARALLEL: bool = _env_bool("FASTNN_PARALLEL", True)
#: Work (a kernel call's count of elementary operations) from which a ParallelKernel runs
#: its parallel build rather than its serial one: ``parallel=True`` costs tens of
#: microseconds a call. An environment setting, so it lives here and not with the tuning
#: knobs of :mod:`fastnn.kernels.tuning`. No script sweeps it; ``python
#: benchmarks/profile_step.py`` shows, for every kernel call of a training step, its time
#: and whether it ran the parallel build.
PARALLEL_THRESHOLD: int = _env_int("FASTNN_PARALLEL_THRESHOLD", 32768)


def jit(fn=None, *, refcounts: bool = True, **overrides):
    """``numba.njit`` with the project's flags (serial). Usable bare or with overrides.

    ``refcounts=False`` compiles without Numba's reference counting, for helpers that
    kernels call in their hot loops: with it, each call increments and decrements the
    count of an array argument's memory atomically, and two threads working on one
    output contend for that count's cache line (reference-count contention, which showed
    in the convolutions' times). Such a helper must allocate nothing and return no array
    (Numba refuses to compile an allocation without it).

    ``error_model="numpy"``: a float division by zero gives IEEE's inf or NaN, as the
    NumPy reference does, instead of a raised ZeroDivisionError; without that check in
    the loop body, LLVM vectorises loops that divide (sigmoid, tanh, the normalisations).
    """
    options = dict(cache=CACHE, fastmath=FASTMATH, nogil=True, error_model="numpy")
    if not refcounts:
        options["_nrt"] = False
    options.update(overrides)
    if fn is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(fn)


def prange_only() -> dict:
    """Numba's ``parallel=`` options for a parallel build: only ``prange`` loops run in
    parallel (and adjacent ones may fuse); NumPy calls and array expressions such as
    ``np.zeros(n)`` stay serial loops.

    With ``parallel=True`` Numba turns each of those into a parallel region of its own,
    with its own generated function, which costs compile time at the first call and a
    thread launch at every call, for arrays (a status flag per part, packed weights)
    too small to gain from threads. A fresh dict each time: Numba consumes it.
    """
    return dict(
        prange=True,
        fusion=True,
        numpy=False,
        comprehension=False,
        reduction=False,
        inplace_binop=False,
        setitem=False,
        stencil=False,
    )


def _renamed_copy(fn, suffix: str, globals_=None):
    """A copy of ``fn`` with its own qualname, so its on-disk cache entry is its own
    (and with the globals ``globals_`` instead of its module's, when given).

    Numba's cache is keyed by qualname and bytecode, not by compile flags, so the
    serial and parallel builds of one function would otherwise overwrite each other.
    """
    copy = types.FunctionType(
        fn.__code__,
        fn.__globals__ if globals_ is None else globals_,
        fn.__name__ + suffix,
        fn.__defaults__,
        fn.__closure__,
    )
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return copy


class _GlobalsOverlay(dict):
    """A module's globals with some names bound to other values: the names it holds,
    then (``__missing__``, at each lookup, so names bound later in the module are found)
    the module's own. Python's and Numba's lookups both go through it."""

    def __init__(self, module_globals: dict, replaced: dict):
        super().__init__(replaced)
        self._module_globals = module_globals

    def __missing__(self, name):
        return self._module_globals[name]


class ParallelKernel:
    """A kernel compiled twice: multithreaded (``prange``) and serial.

    ``kernel(work, *args)`` runs the parallel build when ``work`` (a count of
    elementary operations) reaches :data:`PARALLEL_THRESHOLD`, else the serial one,
    because ``parallel=True`` costs tens of microseconds per call.
    ``kernel.serial`` and ``kernel.parallel`` give direct access.
    """

    def __init__(self, fn, **overrides):
        self.py_func = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._overrides = overrides
        self.serial = jit(_renamed_copy(fn, "_serial"), **overrides)
        if PARALLEL:
            self.parallel = jit(_renamed_copy(fn, "_parallel"), parallel=prange_only(), **overrides)
        else:
            self.parallel = self.serial

    def variant(self, name: str, **replaced) -> "ParallelKernel":
        """The same kernel compiled with the global names ``replaced`` bound to other
        values, under the name ``name`` (bind it to that name in the kernel's module, where
        the kernel cache and :mod:`fastnn._precompile` look it up).

        For a build that leaves code out: a fused kernel whose helper, ``activate`` say,
        covers cases a network may never use compiles, through a variant bound to a
        narrower helper, only the code it runs (see
        :func:`fastnn.kernels.activations.rectified_variant`). Same flags as this kernel.
        """
        fn = self.py_func
        copy = _renamed_copy(fn, "", _GlobalsOverlay(fn.__globals__, replaced))
        copy.__name__ = copy.__qualname__ = name
        return ParallelKernel(copy, **self._overrides)

    def __call__(self, work: int, *args):
        if work >= PARALLEL_THRESHOLD and not _serial_only:
            return self.parallel(*args)
        return self.serial(*args)


#: While True, every :class:`ParallelKernel` call runs its serial build: set by
#: :mod:`fastnn._precompile` while a cold start's parallel builds still compile in other
#: processes. The two builds give the same bits (``tests/test_kernel_properties.py``), so
#: only the speed changes.
_serial_only = False


def run_serial_only(flag: bool) -> None:
    """Run every kernel call on the serial build (True) or as the work decides (False)."""
    global _serial_only
    _serial_only = bool(flag)


def serial_only() -> bool:
    """Whether kernel calls run the serial build only (:func:`run_serial_only`)."""
    return _serial_only


def parallel_kernel(fn=None, **overrides):
    """Decorator: compile ``fn`` as a :class:`ParallelKernel` (serial + parallel builds).
    Usable bare or with overrides of :func:`jit`'s options."""
    if fn is None:
        return lambda f: ParallelKernel(f, **overrides)
    return ParallelKernel(fn, **overrides)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in parallel kernels (1 <= n <= the count set at import).

    Numba's thread count is thread-local: call this from the thread that trains.
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if not isinstance(n, (int,)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    if n > limit:
        raise ValueError(
            f"set_num_threads: at most {limit} threads are available "
            f"(set NUMBA_NUM_THREADS before import to raise it), got {n}"
        )
    numba.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads parallel kernels use in this thread."""
    return numba.get_num_threads()


BLAS_THREADS: int = _env_int("FASTNN_BLAS_THREADS", 1)

_threads = _env_int("FASTNN_THREADS", 0)
if _threads:
    set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))

from ._blas import set_kernel_blas_threads  # noqa: E402

set_kernel_blas_threads(BLAS_THREADS)
