"""Running one case: the reference in float64 and float32, the kernel on each build and
thread count, every result judged by :func:`fastnn.oracle.judge`, and both timed.

The kernel runs three times: its serial build, its parallel build on one thread, its
parallel build on all threads (:mod:`~fastnn.verification.builds`). Each float result of
each run is judged against the reference in float64 on the same (float32-rounded)
inputs, with the bound set by the float32 reference's own error; integer and boolean
results must equal the reference's. The two parallel runs must agree bit for bit (NaN
where NaN). The timed runs are the op as a user calls it (its own choice of build, all
threads) against the reference in the case's dtype, after the runs above compiled and
warmed both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..backends import get_ops
from ..oracle import judge
from .builds import all_threads, kernel_build, thread_count
from .case import Case


@dataclass
class Check:
    """One failed check of a case: which result on which run, what was wrong, and the
    error and bound where the oracle judged it."""

    result: str
    run: str
    problem: str
    error: float | None = None
    bound: float | None = None


@dataclass
class CaseOutcome:
    """A case's worst judged result (``ratio`` = error / bound, with that error and bound;
    ``judged``: how many float results the oracle judged), its failed checks, and the
    median seconds of one kernel and one reference call."""

    judged: int = 0
    ratio: float = 0.0
    error: float = 0.0
    bound: float = 0.0
    failures: list[Check] = field(default_factory=list)
    kernel_seconds: float = float("nan")
    reference_seconds: float = float("nan")


def _runs(threads: int) -> dict[str, tuple[str, int]]:
    """Run name -> (build, threads): the serial build, the parallel build on one thread and,
    where the process has more, on all ``threads``."""
    runs = {"serial build": ("serial", 1), "parallel build, 1 thread": ("parallel", 1)}
    if threads > 1:
        runs[f"parallel build, {threads} threads"] = ("parallel", threads)
    return runs


def _plane_values(values: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """values (N, C, H, W) at the flat plane indices argmax (N, C, OH, OW)."""
    n, c = values.shape[:2]
    picked = np.take_along_axis(values.reshape(n, c, -1), argmax.reshape(n, c, -1), axis=2)
    return picked.reshape(argmax.shape)


def _judge_result(case: Case, name: str, kernel, ref32, ref64, dtype, run: str, outcome: CaseOutcome) -> None:
    """Judge one result of a run in ``dtype`` into ``outcome``: its shape and dtype (the
    reference's in that dtype), then its values."""
    if kernel is None or ref64 is None:
        if (kernel is None) != (ref64 is None):
            outcome.failures.append(
                Check(name, run, f"returned {kernel!r} where the reference returned {ref64!r}")
            )
        return
    if np.shape(kernel) != np.shape(ref64):
        outcome.failures.append(Check(name, run, f"shape {np.shape(kernel)}, expected {np.shape(ref64)}"))
        return
    expected = (ref32 if np.dtype(dtype) == np.float32 else ref64).dtype
    if kernel.dtype != expected:
        outcome.failures.append(
            Check(name, run, f"dtype {kernel.dtype}, expected {expected} (the reference's)")
        )
        return
    if kernel.dtype.kind != "f" and case.argmax_values is not None:
        # an argmax over computed values: judged by the values it picks (see Case)
        values = case.argmax_values
        plane = values.shape[2] * values.shape[3]
        if kernel.size and not 0 <= kernel.min() <= kernel.max() < plane:
            outcome.failures.append(Check(name, run, f"indices outside [0, {plane}), the H*W plane"))
            return
        kernel = _plane_values(values, kernel)
        ref32, ref64 = _plane_values(values, ref32), _plane_values(values, ref64)
    elif kernel.dtype.kind != "f":
        if not np.array_equal(kernel, ref64):
            differ = int(np.count_nonzero(kernel != ref64))
            outcome.failures.append(
                Check(name, run, f"{differ} of {kernel.size} values differ from the reference's")
            )
        return
    verdict = judge(kernel, ref32, ref64)
    outcome.judged += 1
    if verdict.ratio >= outcome.ratio:
        outcome.ratio, outcome.error, outcome.bound = verdict.ratio, verdict.error, verdict.bound
    if not verdict.ok:
        outcome.failures.append(Check(name, run, "error above the bound", verdict.error, verdict.bound))


def _identical(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _median_seconds(case: Case, ops, dtype, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        inputs = case.inputs(dtype)
        start = time.perf_counter()
        case.run(ops, inputs, dtype)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_case(case: Case, dtype, repeats: int = 3, threads: int | None = None) -> CaseOutcome:
    """Judge ``case`` in ``dtype`` on every build and thread count and time it
    (``repeats`` timed calls each side; ``threads``: all by default)."""
    threads = all_threads() if threads is None else threads
    numpy_ops, numba_ops = get_ops("numpy"), get_ops("numba")
    outcome = CaseOutcome()
    try:
        ref64, ref32 = case.call(numpy_ops, np.float64), case.call(numpy_ops, np.float32)
    except Exception as error:  # a bad case is reported as a failure, not a crash
        outcome.failures.append(Check("all", "the reference", f"raised {type(error).__name__}: {error}"))
        return outcome
    results = {}
    for run, (build, count) in _runs(threads).items():
        try:
            with kernel_build(build), thread_count(count):
                results[run] = case.call(numba_ops, dtype)
        except Exception as error:
            outcome.failures.append(Check("all", run, f"raised {type(error).__name__}: {error}"))
            continue
        if len(results[run]) != len(ref64):
            outcome.failures.append(Check("all", run, f"{len(results[run])} results, expected {len(ref64)}"))
            continue
        for name, k, r32, r64 in zip(case.outputs, results[run], ref32, ref64):
            _judge_result(case, name, k, r32, r64, dtype, run, outcome)
    one, many = results.get("parallel build, 1 thread"), results.get(f"parallel build, {threads} threads")
    if threads > 1 and one is not None and many is not None:
        for name, a, b in zip(case.outputs, one, many):
            if not _identical(a, b):
                outcome.failures.append(
                    Check(
                        name,
                        f"parallel build, 1 thread against {threads} threads",
                        "results are not bit-identical across thread counts",
                    )
                )
    if not outcome.failures:
        outcome.kernel_seconds = _median_seconds(case, numba_ops, dtype, repeats)
        outcome.reference_seconds = _median_seconds(case, numpy_ops, dtype, repeats)
    return outcome


__all__ = ["CaseOutcome", "Check", "run_case"]
