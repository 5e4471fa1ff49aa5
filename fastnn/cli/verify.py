"""``fastnn verify``: every numba op against the NumPy reference on this machine."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import writable_file


def _op_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected op names separated by commas, got {text!r}")
    return names


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def add_parser(commands) -> argparse.ArgumentParser:
    verify = commands.add_parser(
        "verify",
        help="check every numba op against the NumPy reference on this machine",
        description="Run every op of the numba backend on random cases (odd sizes, strides, pads, "
        "non-square kernels, fused paths, both dtypes, forward and backward) on its serial build, "
        "its parallel build on 1 thread and on all threads, and judge each result against the "
        "NumPy reference in float64: a kernel must be no less accurate than the float32 reference, "
        "within the factor of fastnn.oracle; thread counts must give bit-identical results. Prints a "
        "row per op (cases, worst error and its bound, speed-up over the reference), then every "
        "failure with the command that reproduces it. Exit status 1 when any case failed (after "
        "running them all), else 0.",
    )
    size = verify.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="quick",
        action="store_true",
        default=True,
        help="every variant of each op once in each dtype (the default); under a minute with a "
        "warm kernel cache",
    )
    size.add_argument(
        "--full", dest="quick", action="store_false", help="ten times as many cases; takes minutes"
    )
    verify.add_argument(
        "--ops", type=_op_list, default=None, metavar="NAME,...", help="only these ops (default: all)"
    )
    verify.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the drawn cases")
    verify.add_argument(
        "--case",
        type=_non_negative_int,
        default=None,
        metavar="K",
        help="run only case K of the one op in --ops (what a failure's reproduce command does)",
    )
    verify.add_argument(
        "--json", type=writable_file, default=None, metavar="OUT", help="also write the report as JSON"
    )
    return verify


def run(args) -> int:
    from ..verification import verify
    from ..verification.report import format_failure, format_row, header, summary, write_json

    start = time.perf_counter()
    print(header(), flush=True)
    report = verify(
        ops=args.ops,
        quick=args.quick,
        seed=args.seed,
        case=args.case,
        on_row=lambda row: print(format_row(row), flush=True),
    )
    for failure in report["failures"]:
        print(format_failure(failure))
    if args.json is not None:
        write_json(report, args.json)
    print(summary(report, time.perf_counter() - start))
    sys.stdout.flush()
    return 0 if report["ok"] else 1
