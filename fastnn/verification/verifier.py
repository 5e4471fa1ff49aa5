"""``verify``: every numba op against the NumPy reference on this machine.

For each op it draws its cases (:mod:`~fastnn.verification.catalog`), runs each one
(:func:`~fastnn.verification.runner.run_case`) and keeps, per op, the number of cases, the
worst error / bound ratio with its error and bound, the kernel's speed-up over the
reference on the op's cases, and every failure with the command that reproduces it.
"""

from __future__ import annotations

import numpy as np

from .builds import all_threads
from .case import draw_case
from .catalog import CASES, case_count, check_op_names
from .runner import run_case


def reproduce_command(op: str, seed: int, index: int) -> str:
    """The command that runs case ``index`` of ``op`` under ``seed`` alone."""
    return f"fastnn verify --ops {op} --seed {seed} --case {index}"


def _check_arguments(seed, case, names) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"verify: seed must be an integer >= 0, got {seed!r}")
    if case is not None:
        if isinstance(case, bool) or not isinstance(case, (int, np.integer)) or case < 0:
            raise ValueError(f"verify: case must be an integer >= 0, got {case!r}")
        if len(names) != 1:
            raise ValueError(
                f"verify: case={case} picks one case of one op; name exactly one op "
                f"(--ops NAME), got {len(names)} ops"
            )


def _verify_op(op: str, seed: int, indices, repeats: int, threads: int) -> tuple[dict, list[dict]]:
    """One op's row and its failures."""
    row = dict(op=op, cases=0, judged=0, ratio=0.0, error=0.0, bound=0.0, speedup=None, failures=0)
    failures, speedups = [], []
    for index in indices:
        case, dtype = draw_case(op, CASES[op], seed, index)
        outcome = run_case(case, dtype, repeats=repeats, threads=threads)
        row["cases"] += 1
        row["judged"] += outcome.judged
        if outcome.ratio >= row["ratio"]:
            row["ratio"], row["error"], row["bound"] = outcome.ratio, outcome.error, outcome.bound
        for check in outcome.failures:
            failures.append(
                {
                    "op": op,
                    "case": index,
                    "seed": seed,
                    "dtype": np.dtype(dtype).name,
                    "call": case.describe(),
                    "result": check.result,
                    "run": check.run,
                    "problem": check.problem,
                    "error": check.error,
                    "bound": check.bound,
                    "command": reproduce_command(op, seed, index),
                }
            )
        if outcome.kernel_seconds > 0:  # NaN (not timed: the case failed) compares False
            speedups.append(outcome.reference_seconds / outcome.kernel_seconds)
    row["failures"] = len(failures)
    row["speedup"] = float(np.median(speedups)) if speedups else None
    return row, failures


def verify(
    ops=None, quick: bool = True, seed: int = 0, case: int | None = None, repeats: int = 3, on_row=None
) -> dict:
    """Check numba ops against the NumPy reference; returns the report as a dict.

    ``ops``: op names (default: every op of the numba backend). ``quick``: the quick case
    set (every variant of an op once per dtype) or, False, the full one (ten times as
    many). ``seed``: the cases drawn. ``case``: run only that case of the one op named
    (the command a failure prints). ``repeats``: timed calls per case and side.
    ``on_row(row)`` is called with each op's row as it completes (the command prints it).

    The report: ``{"ok", "seed", "mode", "threads", "ops": [row, ...], "failures": [...]}``.
    A row is ``{"op", "cases", "judged", "ratio", "error", "bound", "speedup", "failures"}``:
    the count of float results the oracle judged; the worst error / bound ratio among them,
    with that error and bound (0 when the op has only integer or boolean results, which
    must be equal); the speed-up, the median over the cases that passed of the reference's
    time over the kernel's (each the median of ``repeats`` calls; the median keeps a call
    that waited for a busy core from swaying the row). A failure names the op, case, seed,
    dtype, the call's shapes and arguments, the result and the run (build, thread count)
    that failed, the problem, the error and bound, and ``command``, which reproduces it.
    """
    names = check_op_names(ops)
    _check_arguments(seed, case, names)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"verify: repeats must be a positive integer, got {repeats!r}")
    threads = all_threads()
    rows, failures = [], []
    for op in names:
        indices = [case] if case is not None else range(case_count(op, quick))
        row, op_failures = _verify_op(op, int(seed), indices, repeats, threads)
        rows.append(row)
        failures += op_failures
        if on_row is not None:
            on_row(row)
    mode = "case" if case is not None else ("quick" if quick else "full")
    return {
        "ok": not failures,
        "seed": int(seed),
        "mode": mode,
        "threads": threads,
        "ops": rows,
        "failures": failures,
    }


__all__ = ["reproduce_command", "verify"]
