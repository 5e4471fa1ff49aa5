"""Compiling kernels ahead of their first call, in several processes at once.

Numba compiles one function at a time in a process (under its global compiler lock), so a
cold start on a machine with two cores uses one. This module spreads the work:

1. :func:`record` runs a piece of Python (a training step of a copy of the model, say)
   with the kernels replaced by recorders that note which kernel, which build (serial
   or parallel) and which Numba argument types each call would use, and run nothing.
   The Python around the kernels runs as usual, so the list is exact: the kernels that
   piece of code will call, in the order it calls them.
2. :func:`compile_items` compiles that list in this process and ``workers - 1`` worker
   processes (:func:`_worker_main`) into the shared on-disk kernel cache.
   The processes share the list like a queue, this one from the front and the workers
   from the back, each claiming an item (an exclusive file) before compiling it; items
   already in the cache cost nothing. When the workers exit, this process loads their
   kernels from the cache at their first call (milliseconds each).
3. With ``FASTNN_TIERED_START=1`` a model's first step on a new cache
   (:func:`before_first_call`) is tiered: only serial builds compile before it (each
   recorded parallel build's serial twin in its place), and the parallel builds then
   compile in worker processes (:func:`compile_in_background`) while this one trains
   with every call on a serial build; when the workers exit the calls take the parallel
   builds again, loaded from the cache. At exit this process waits for workers still
   compiling, so that the cache is complete.

Results do not change: the same kernels compile for the same types, only sooner and in
other processes, and a kernel's serial and parallel builds give the same bits. Only a
cold cache pays for any of this (:func:`missing` reads the cache index first). See
"Start-up with an empty cache" in docs/performance.md.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

import numba
from numba.core.registry import CPUDispatcher

from ._config import CACHE, ParallelKernel, run_serial_only
from ._kernel_cache import PACKAGE, is_cached

#: Worker processes plus this one, at most (the cores Numba may use, by default all).
DEFAULT_WORKERS = max(1, min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS))


@dataclass(frozen=True)
class Item:
    """One compilation: kernel ``name`` of ``module`` (``build`` "serial" or "parallel"
    for a :class:`~fastnn._config.ParallelKernel`, "" for a plain jitted function) for
    the Numba argument types ``argtypes``."""

    module: str
    name: str
    build: str
    argtypes: tuple

    def dispatcher(self):
        kernel = getattr(importlib.import_module(self.module), self.name)
        return getattr(kernel, self.build) if self.build else kernel

    def label(self) -> str:
        short = self.module.replace("fastnn.kernels.", "")
        return f"{short}.{self.name}" + (f" ({self.build})" if self.build else "")


def _kernels() -> tuple[dict, dict]:
    """The kernels bound to a name in a loaded fastnn module: {id: (ParallelKernel, module)}
    and {id: (plain jitted function, module, name)}."""
    parallel, plain = {}, {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith(PACKAGE + "."):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, ParallelKernel):
                parallel[id(value)] = (value, getattr(value.py_func, "__module__", module_name))
            elif isinstance(value, CPUDispatcher):
                origin = getattr(value.py_func, "__module__", module_name)
                plain[id(value)] = (value, origin, value.py_func.__name__)
    return parallel, plain


def _native_function_class():
    module = sys.modules.get(PACKAGE + ".kernels._native")
    return getattr(module, "NativeFunction", None)


def _returns_zero(*args):
    return 0


_record_lock = threading.Lock()


def record(fn) -> list[Item]:
    """The kernel compilations ``fn()`` needs, in the order it would call the kernels.

    While ``fn`` runs, the builds of every :class:`~fastnn._config.ParallelKernel` are
    swapped for recorders that note (kernel, build, Numba argument types) and return 0
    without running anything; a plain jitted function called from Python is noted
    instead of compiled when it has no compiled version for its argument types (Numba's
    dispatcher asks its ``_compile_for_args`` for the code, swapped for a recorder) and
    runs when it has one. Everything is put back afterwards. So ``fn`` must not depend on
    kernels' results and must not keep what it computes: run it on copies. Helpers passed
    to a kernel as :class:`~fastnn.kernels._native.NativeFunction` are noted too (they
    compile lazily). An exception in ``fn`` ends the recording there; what was recorded
    so far is returned. Jitted code (which never calls a ParallelKernel) and other threads
    are unaffected: only this thread's calls are recorded.
    """
    calls: list[Item] = []
    native = _native_function_class()

    def note(module, name, build, args):
        for arg in args:
            if native is not None and isinstance(arg, native) and not arg.compiled:
                target = arg.dispatcher
                origin = getattr(target.py_func, "__module__", "")
                calls.append(Item(origin, target.py_func.__name__, "", arg.argtypes))
        calls.append(Item(module, name, build, tuple(numba.typeof(a) for a in args)))

    owner = threading.get_ident()  # other threads keep running the real kernels

    def build_recorder(module, name, build, real):
        def run(*args):
            if threading.get_ident() != owner:
                return real(*args)
            note(module, name, build, args)
            return 0

        return run

    def compile_recorder(dispatcher, module, name):
        def compile_for_args(*args, **kws):
            if threading.get_ident() != owner:
                return type(dispatcher)._compile_for_args(dispatcher, *args, **kws)
            note(module, name, "", args)
            return _returns_zero

        return compile_for_args

    parallel, plain = _kernels()
    swapped, hooked = [], []
    with _record_lock:
        deferred = native is not None and not native.defer
        try:
            if deferred:
                native.defer = True
            for kernel, module in parallel.values():
                swapped.append((kernel, kernel.serial, kernel.parallel))
                serial, parallel_build = kernel.serial, kernel.parallel
                kernel.serial = build_recorder(module, kernel.__name__, "serial", serial)
                if parallel_build is serial:
                    kernel.parallel = kernel.serial
                else:
                    kernel.parallel = build_recorder(module, kernel.__name__, "parallel", parallel_build)
            for dispatcher, module, name in plain.values():
                dispatcher._compile_for_args = compile_recorder(dispatcher, module, name)
                hooked.append(dispatcher)
            with warnings.catch_warnings(), _quiet_numpy():
                warnings.simplefilter("ignore")
                try:
                    fn()
                except Exception:
                    pass
        finally:
            for kernel, serial, parallel_build in swapped:
                kernel.serial, kernel.parallel = serial, parallel_build
            for dispatcher in hooked:
                del dispatcher._compile_for_args
            if deferred:
                native.defer = False
    unique = []
    seen = set()
    for item in calls:
        if item not in seen:
            seen.add(item)
            unique.append(item)
    return unique


def _quiet_numpy():
    import numpy as np

    return np.errstate(all="ignore")


def missing(items) -> list[Item]:
    """The items neither compiled in this process nor in the on-disk cache."""
    out = []
    for item in items:
        try:
            if not is_cached(item.dispatcher(), item.argtypes):
                out.append(item)
        except Exception:
            out.append(item)
    return out


def _claim(claims: str, index: int) -> bool:
    try:
        os.close(os.open(os.path.join(claims, f"{index}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


_WORKER = f"import sys; from {PACKAGE}._precompile import _worker_main; sys.exit(_worker_main(sys.argv[1:]))"


def _work(items, claims: str, order, log=None) -> list[tuple[Item, float]]:
    """Compile the unclaimed items, taken in ``order``; returns (item, seconds) of each."""
    done = []
    for index in order:
        if items[index] is None or not _claim(claims, index):  # None: a type JSON cannot hold
            continue
        item = items[index]
        started = time.perf_counter()
        try:
            item.dispatcher().compile(item.argtypes)
        except Exception as error:
            # Give it back: another process (or the real call) compiles it. A helper compiled
            # without reference counting can fail when it is a process's first user of an
            # overload that allocates (Numba types that overload under the caller's flags);
            # after the kernels that come before it in call order it compiles.
            os.remove(os.path.join(claims, f"{index}"))
            if log is not None and os.environ.get("FASTNN_PRECOMPILE_VERBOSE"):
                first = str(error).strip().splitlines()[:1]
                print(f"fastnn: pid {os.getpid()} left {item.label()} to others: {first}", file=log)
            continue
        done.append((item, time.perf_counter() - started))
        if log is not None and os.environ.get("FASTNN_PRECOMPILE_VERBOSE"):
            print(f"fastnn: pid {os.getpid()} compiled {item.label()} in {done[-1][1]:.1f} s", file=log)
    return done


def _worker_count(workers: int | None, items) -> int:
    """Processes to compile ``items`` in, this one included: ``workers`` (default
    :data:`DEFAULT_WORKERS`), one with the cache off, at most one per item."""
    workers = DEFAULT_WORKERS if workers is None else max(1, int(workers))
    if not CACHE:
        workers = 1
    return min(workers, max(1, len(items)))


def _start_workers(items, claims: str, count: int) -> list:
    """``count`` worker processes (:func:`_worker_main`) compiling ``items`` (claimed
    through files in the folder ``claims``) into the kernel cache."""
    if count < 1:
        return []
    payload = os.path.join(claims, "items.json")
    with open(payload, "w", encoding="utf-8") as handle:
        json.dump([_encode_item(item) for item in items], handle)
    # the workers import this very fastnn, whatever their sys.path would find first
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, FASTNN_COMPILE_NOTICE="0", PYTHONPATH=path)
    procs = []
    for k in range(count):
        # a file, not a pipe: a worker must never block on a full pipe
        with open(os.path.join(claims, f"worker{k}.log"), "wb") as errors:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _WORKER, claims, payload, str(k)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                )
            )
    return procs


def _print_worker_log(claims: str, k: int, log) -> None:
    if log is not None:
        with open(os.path.join(claims, f"worker{k}.log"), errors="replace") as errors:
            text = errors.read().strip()
        if text:
            print(text, file=log)


def compile_items(items, workers: int | None = None, log=None) -> dict:
    """Compile ``items`` into the kernel cache, here and in ``workers - 1`` other processes.

    Returns {"compiled": [(label, seconds)] of this process, "workers": count used,
    "seconds": wall time}. With the cache off, or one worker, everything compiles here.
    """
    items = list(items)
    workers = _worker_count(workers, items)
    started = time.perf_counter()
    claims = tempfile.mkdtemp(prefix="fastnn-precompile-")
    procs = []
    try:
        procs = _start_workers(items, claims, workers - 1)
        done = _work(items, claims, range(len(items)), log)
        for k, proc in enumerate(procs):
            proc.wait()
            _print_worker_log(claims, k, log)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(claims, ignore_errors=True)
    return {
        "compiled": [(item.label(), seconds) for item, seconds in done],
        "workers": workers,
        "seconds": time.perf_counter() - started,
    }


#: Fewer missing kernels than this compile where they are called, with no workers.
MIN_ITEMS_FOR_WORKERS = 3


#: ``FASTNN_PRECOMPILE=0`` turns off the compiling ahead of a model's first training step.
ENABLED = os.environ.get("FASTNN_PRECOMPILE", "").strip().lower() not in ("0", "false", "no", "off")

#: The kernels that tell a cache that has seen fastnn before: every network in the zoo ends
#: in a Dense layer, so its first step compiled or loaded a build of one of them (the
#: rectified build for a Dense layer without an activation or with a ReLU, the other for
#: a sigmoid or tanh).
SENTINELS = (
    (PACKAGE + ".kernels.affine", "affine_forward_rectified"),
    (PACKAGE + ".kernels.affine", "affine_forward"),
)


def seen_before() -> bool:
    """Whether this process has run, or the kernel cache holds, a build of a sentinel
    kernel: then fastnn has run on this machine (or in this process) before, and kernels
    still missing compile where they are called."""
    for module_name, name in SENTINELS:
        kernel = getattr(sys.modules.get(module_name), name, None)
        if kernel is None:
            continue
        for build in {id(kernel.serial): kernel.serial, id(kernel.parallel): kernel.parallel}.values():
            if build.overloads:
                return True
            try:
                if build._cache._cache_file._load_index():
                    return True
            except Exception:
                pass
    return False


#: ``FASTNN_TIERED_START=1``: a cold start's first step waits for the serial builds only
#: (off by default: the first step comes sooner, but full speed later, the work is larger,
#: and a process that exits soon after waits for the parallel builds; docs/performance.md,
#: "Start-up with an empty cache", has the figures).
TIERED = os.environ.get("FASTNN_TIERED_START", "").strip().lower() in ("1", "true", "yes", "on")


def before_first_call(fn, workers: int | None = None) -> None:
    """On a kernel cache that has not seen fastnn yet (:func:`seen_before`), compile the
    kernels ``fn()`` would call, now, in parallel processes (a model's first training step
    calls this). ``fn`` runs once, on copies, with the kernels recorded (:func:`record`).

    Tiered (:data:`TIERED`, with more than one worker): only the serial builds are compiled
    before the first step, the parallel ones' serial twins included, and the parallel
    builds compile afterwards in worker processes while this one trains on the serial
    builds (:func:`compile_in_background`). Both builds give the same bits."""
    if not (CACHE and ENABLED) or seen_before():
        return
    todo = missing(record(fn))
    if len(todo) < MIN_ITEMS_FOR_WORKERS:
        return
    log = sys.stderr if os.environ.get("FASTNN_PRECOMPILE_VERBOSE") else None
    later = [item for item in todo if item.build == "parallel"]
    if not (TIERED and later and _worker_count(workers, todo) > 1):
        compile_items(todo, workers, log)
        return
    compile_items(missing(serial_tier(todo)), workers, log)
    compile_in_background(later, max(1, _worker_count(workers, later) - 1), log)


def serial_tier(items) -> list[Item]:
    """``items`` with each parallel build replaced by the serial build of the same kernel
    for the same types (what the calls run under :func:`~fastnn._config.run_serial_only`),
    in order, without repeats."""
    out = []
    seen = set()
    for item in items:
        if item.build == "parallel":
            item = Item(item.module, item.name, "serial", item.argtypes)
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


class _Background:
    """The worker processes compiling parallel builds after a tiered start, and the
    thread that waits for them: every kernel call runs its serial build until they exit."""

    def __init__(self):
        self.procs: list = []
        self.thread: threading.Thread | None = None

    def running(self) -> bool:
        return any(proc.poll() is None for proc in self.procs)

    def finish(self) -> None:
        """At exit: wait for the workers, so that the cache holds every build the process
        used and the next process compiles nothing (a one-step script pays here what the
        tiered start saved before its step); an interrupt ends them instead (what they
        finished stays in the cache, whose files Numba writes whole)."""
        if self.running() and os.environ.get("FASTNN_COMPILE_NOTICE", "1") != "0":
            notice = "fastnn: finishing the parallel kernel builds for the cache ..."
            print(notice, file=sys.stderr, flush=True)
        try:
            for proc in self.procs:
                proc.wait()
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if self.thread is not None:
                self.thread.join(timeout=5)


_BACKGROUND = _Background()
atexit.register(_BACKGROUND.finish)


def compile_in_background(items, workers: int = 1, log=None) -> threading.Thread:
    """Compile ``items`` in ``workers`` worker processes (none here) while this process goes
    on, its kernel calls on the serial builds (:func:`~fastnn._config.run_serial_only`)
    until the workers exit; the parallel builds then load from the cache at their next
    call. Returns the thread that waits for the workers."""
    claims = tempfile.mkdtemp(prefix="fastnn-precompile-")
    run_serial_only(True)
    try:
        procs = _start_workers(list(items), claims, max(1, workers))
    except BaseException:
        run_serial_only(False)
        shutil.rmtree(claims, ignore_errors=True)
        raise
    _BACKGROUND.procs = procs

    def wait():
        try:
            for k, proc in enumerate(procs):
                proc.wait()
                _print_worker_log(claims, k, log)
        finally:
            run_serial_only(False)
            shutil.rmtree(claims, ignore_errors=True)

    thread = threading.Thread(target=wait, name="fastnn-parallel-builds", daemon=True)
    _BACKGROUND.thread = thread
    thread.start()
    return thread


class _Unencodable(Exception):
    """A Numba type :func:`_encode_type` cannot write down (its item compiles here only)."""


def _encode_type(t):
    """A Numba argument type as JSON data (arrays, numbers, tuples, native functions): the
    workers get their list as JSON, never as a pickle (nothing in fastnn unpickles)."""
    from numba.core import types

    if isinstance(t, types.Array):
        return ["array", str(t.dtype), t.ndim, t.layout, bool(t.mutable)]
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return ["scalar", str(t)]
    if isinstance(t, types.BaseTuple):
        return ["tuple", [_encode_type(e) for e in t.types]]
    if type(t).__name__ == "NativeFunctionType":  # kernels._native's, a layer above this one
        return ["native", t.function_name, [_encode_type(e) for e in t.argtypes]]
    raise _Unencodable(str(t))


def _decode_type(data):
    """The Numba type :func:`_encode_type` wrote down."""
    from numba.core import types

    kind = data[0]
    if kind == "array":
        _, dtype, ndim, layout, mutable = data
        return types.Array(_decode_type(["scalar", dtype]), ndim, layout, readonly=not mutable)
    if kind == "scalar":
        return types.boolean if data[1] == "bool" else getattr(types, data[1])
    if kind == "tuple":
        return types.BaseTuple.from_types([_decode_type(e) for e in data[1]])
    if kind == "native":  # found by name, as Item.dispatcher finds kernels
        native = importlib.import_module(PACKAGE + ".kernels._native")
        return native.NativeFunctionType(data[1], [_decode_type(e) for e in data[2]])
    raise ValueError(f"fastnn._precompile: unknown type entry {data!r}")


def _encode_item(item: Item):
    """An item as JSON data, or None when a type cannot be written down (then only this
    process compiles it)."""
    try:
        argtypes = [_encode_type(t) for t in item.argtypes]
    except _Unencodable:
        return None
    return {"module": item.module, "name": item.name, "build": item.build, "argtypes": argtypes}


def _decode_item(entry):
    if entry is None:
        return None
    argtypes = tuple(_decode_type(t) for t in entry["argtypes"])
    return Item(entry["module"], entry["name"], entry["build"], argtypes)


def _worker_main(argv) -> int:
    claims, payload, k = argv[0], argv[1], int(argv[2])
    with open(payload, encoding="utf-8") as handle:
        items = [_decode_item(entry) for entry in json.load(handle)]
    # worker 0 takes the list from the back, worker k from the k-th of the back's share;
    # helpers compiled without reference counting come last (see _work)
    n = len(items)
    order = list(range(n - 1, -1, -1))
    if k:
        shift = (k * n) // (k + 2)
        order = order[shift:] + order[:shift]
    order.sort(key=lambda i: _without_refcounts(items[i]))
    _work(items, claims, order, sys.stderr)
    return 0


def _without_refcounts(item) -> bool:
    try:
        return item.dispatcher().targetoptions.get("_nrt") is False
    except Exception:
        return False
