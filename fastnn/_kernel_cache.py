"""The on-disk kernel cache: where it lives, what it holds, and the compile notice.

With ``FASTNN_CACHE=1`` (the default) Numba keeps every compiled kernel on disk, keyed by
the kernel's source, its argument types and the CPU, so only the first process on a
machine pays for compiling (see "Compile time and the kernel cache" in
docs/performance.md). The first time a process compiles a fastnn kernel it prints one
line on stderr saying so (:data:`NOTICE`); a process that finds everything in the cache
prints nothing. ``FASTNN_COMPILE_NOTICE=0`` silences the line (worker processes of
:mod:`fastnn._precompile` run with it).

The notice is a listener on Numba's ``numba:compile`` event, which Numba raises only when
it really compiles (never when it loads from the cache, never on a call), so it costs
nothing once the kernels are compiled.
"""

from __future__ import annotations

import os
import sys
import threading

from numba.core import config, event

from ._config import CACHE

#: The line printed before the first compile of a fastnn kernel in a process.
NOTICE = "fastnn: compiling kernels for this CPU (once per machine, cached in {where}) ..."
NOTICE_UNCACHED = (
    "fastnn: compiling kernels for this CPU (FASTNN_CACHE=0: not kept, every process compiles) ..."
)


def cache_location(dispatcher=None) -> str:
    """The folder compiled kernels go to: NUMBA_CACHE_DIR when set, else where Numba puts
    ``dispatcher``'s cache: the ``__pycache__`` folder next to its source for a writable
    install (fastnn/kernels/__pycache__ and fastnn/kernels/conv/__pycache__), Numba's
    per-user cache folder for a read-only one."""
    if config.CACHE_DIR:
        return str(config.CACHE_DIR)
    path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
    if path:
        return str(path)
    return "Numba's cache folder (NUMBA_CACHE_DIR, or __pycache__ next to fastnn/kernels)"


def is_cached(dispatcher, argtypes) -> bool:
    """Whether ``dispatcher`` has a compiled version for ``argtypes`` in this process or in
    the on-disk cache (read from the cache's index; nothing is loaded or compiled)."""
    argtypes = tuple(argtypes)
    if argtypes in dispatcher.overloads:
        return True
    cache = getattr(dispatcher, "_cache", None)
    try:
        key = cache._index_key(argtypes, dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # no cache (FASTNN_CACHE=0) or a Numba without these internals
        return False


#: This package's name ("fastnn", or another where a copy is imported under it).
PACKAGE = __name__.rpartition(".")[0]


def _fastnn_function(data) -> bool:
    dispatcher = data.get("dispatcher") if isinstance(data, dict) else None
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    return module == PACKAGE or module.startswith(PACKAGE + ".")


class _CompileNotice(event.Listener):
    """Prints :data:`NOTICE` on the first ``numba:compile`` of a fastnn function."""

    def __init__(self, stream=None):
        self.stream = stream
        self.shown = False
        self._lock = threading.Lock()

    def on_start(self, ev):
        if self.shown or not _fastnn_function(ev.data):
            return
        with self._lock:
            if self.shown:
                return
            self.shown = True
        where = cache_location(ev.data.get("dispatcher"))
        line = NOTICE.format(where=where) if CACHE else NOTICE_UNCACHED
        stream = self.stream if self.stream is not None else sys.stderr
        try:
            print(line, file=stream, flush=True)
        except Exception:  # a closed or broken stderr must not break a compile
            pass

    def on_end(self, ev):
        pass


_notice = _CompileNotice()


class _CompileCounter(event.Listener):
    """Counts the compiles of fastnn functions in this process (:func:`compile_count`)."""

    def __init__(self):
        self.count = 0

    def on_start(self, ev):
        if _fastnn_function(ev.data):
            self.count += 1

    def on_end(self, ev):
        pass


_counter = _CompileCounter()
event.register("numba:compile", _counter)


def compile_count() -> int:
    """How many fastnn kernel compiles this process has started (loads from the cache do not
    count): read it before and after some work to know whether that work compiled."""
    return _counter.count


def notice_shown() -> bool:
    """Whether this process has printed the compile notice."""
    return _notice.shown


def _notice_enabled() -> bool:
    value = os.environ.get("FASTNN_COMPILE_NOTICE", "")
    return value.strip().lower() not in ("0", "false", "no", "off")


if _notice_enabled():
    event.register("numba:compile", _notice)

__all__ = ["NOTICE", "cache_location", "compile_count", "is_cached", "notice_shown"]
