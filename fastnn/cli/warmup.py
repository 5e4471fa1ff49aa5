"""``fastnn warmup``: compile the kernels ahead of time into the kernel cache."""

from __future__ import annotations

import argparse
import sys

from ._common import positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    warm = commands.add_parser(
        "warmup",
        help="compile the kernels into the kernel cache, ahead of time",
        description="Compile, once per machine, the kernels that the named networks (default: "
        "every built-in network plus one network per other layer kind) call in a training "
        "step and in inference at batch 1 and 100, into the on-disk kernel cache, in "
        "parallel processes. Later processes load them instead of compiling.",
    )
    warm.add_argument(
        "--model",
        dest="models",
        nargs="+",
        default=None,
        metavar="NAME",
        help="networks to warm up (default: all; see --list)",
    )
    warm.add_argument(
        "--dtype",
        dest="dtypes",
        nargs="+",
        default=["float32"],
        choices=["float32", "float64"],
        help="dtypes to compile for (default: float32; float64 is what gradient checks use)",
    )
    warm.add_argument(
        "--batch-sizes", nargs="+", type=positive_int, default=[1, 100], help="batch sizes (default: 1 100)"
    )
    warm.add_argument(
        "--workers", type=positive_int, default=None, help="compiling processes (default: one per core)"
    )
    warm.add_argument("--list", action="store_true", help="list the network names and exit")
    warm.add_argument("--quiet", action="store_true", help="print nothing")
    return warm


def run(args) -> int:
    from ..kernel_warmup import networks, warmup

    if args.list:
        for name in networks():
            print(name)
        return 0
    warmup(
        models=args.models,
        dtypes=tuple(args.dtypes),
        batch_sizes=tuple(args.batch_sizes),
        workers=args.workers,
        verbose=not args.quiet,
        file=sys.stdout,
    )
    return 0
