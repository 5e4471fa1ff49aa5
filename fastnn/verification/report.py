"""``fastnn verify``'s text: one row per op, each failure with its reproducing command, a
summary line."""

from __future__ import annotations

import json
import math

from .._files import atomic_write
from ..oracle import FACTOR

_COLUMNS = f"{'op':<32} {'cases':>5} {'worst error':>12} {'bound':>10} {'error/bound':>11} {'speed-up':>9}"


def header() -> str:
    """The table's heading."""
    return _COLUMNS + "\n" + "-" * len(_COLUMNS)


def format_row(row: dict) -> str:
    """One op's row: cases, the worst error / bound ratio with that error and bound ("equal"
    for an op with integer or boolean results only), the kernel's speed-up over the
    reference on the op's cases, and FAIL with the count of failures."""
    speedup = "-" if row["speedup"] is None else f"{row['speedup']:.2g}x"
    if row["judged"]:
        judged = f"{row['error']:>12.2e} {row['bound']:>10.2e} {row['ratio']:>11.3f}"
    else:  # integer or boolean results only, compared for equality
        judged = f"{'equal':>12} {'-':>10} {'-':>11}"
    line = f"{row['op']:<32} {row['cases']:>5} {judged} {speedup:>9}"
    return line + (f"  FAIL ({row['failures']})" if row["failures"] else "")


def format_failure(failure: dict) -> str:
    """A failure: the op, case, seed, dtype, the result and run that failed, the error and
    bound, the call's shapes and arguments, and the command that reproduces it."""
    verdict = failure["problem"]
    if failure["error"] is not None:
        verdict += f": error {failure['error']:.3e} > bound {failure['bound']:.3e}"
    return (
        f"FAIL {failure['op']} case {failure['case']} (seed {failure['seed']}, {failure['dtype']}): "
        f"{failure['result']} on the {failure['run']}: {verdict}\n"
        f"  call: {failure['call']}\n"
        f"  reproduce: {failure['command']}"
    )


def summary(report: dict, seconds: float) -> str:
    """The last line: what was checked and the verdict."""
    rows = report["ops"]
    cases = sum(row["cases"] for row in rows)
    threads = report["threads"]
    run = f"{report['mode']}, seed {report['seed']}, {threads} thread{'s' if threads > 1 else ''}"
    scope = f"{len(rows)} ops, {cases} cases ({run})"
    if report["ok"]:
        worst = max(rows, key=lambda row: row["ratio"])
        return (
            f"verify: OK: {scope} within the oracle's bound (at most {FACTOR:g} x the float32 "
            f"reference's error); worst error/bound {worst['ratio']:.3f} ({worst['op']}); "
            f"{'thread counts bit-identical' if threads > 1 else 'one thread: thread counts not compared'}; "
            f"{seconds:.1f} s"
        )
    failed = [row["op"] for row in rows if row["failures"]]
    return (
        f"verify: FAILED: {len(report['failures'])} failures in {len(failed)} of {scope}: "
        f"{', '.join(failed)}; each failure above gives the command that reproduces it; {seconds:.1f} s"
    )


def _strict(value):
    """``value`` with every infinite or NaN float as the string "inf", "-inf" or "nan", which
    strict JSON has no number for (an error is infinite when a kernel returned NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    return value


def write_json(report: dict, path) -> None:
    """Write ``report`` (from :func:`~fastnn.verification.verify`) to ``path`` as JSON,
    atomically: a row per op under "ops", the failures under "failures"."""
    data = json.dumps(_strict(report), indent=2, allow_nan=False).encode()
    atomic_write(path, lambda handle: handle.write(data))


__all__ = ["format_failure", "format_row", "header", "summary", "write_json"]
