"""``fastnn bench``: training steps against the NumPy reference and PyTorch, the zoo, the regression gate."""

from __future__ import annotations

import argparse
import sys

from ._common import positive_int, writable_file


def add_parser(commands) -> argparse.ArgumentParser:
    bench = commands.add_parser(
        "bench",
        help="time training steps against NumPy and PyTorch; check the targets",
        description="Time training steps against the NumPy reference and PyTorch, and check the "
        "performance targets; --zoo times the model zoo, --compare BASE NEW is the regression gate.",
    )
    bench.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help="timed rounds per measurement (medians are reported; default 20, 10 with --zoo)",
    )
    bench.add_argument("--warmup", type=positive_int, default=3)
    bench.add_argument(
        "--networks",
        nargs="+",
        default=["mlp", "simple_convnet", "deep_convnet"],
        choices=["mlp", "simple_convnet", "deep_convnet"],
    )
    bench.add_argument("--no-numpy", action="store_true", help="skip the (slow) numpy reference")
    bench.add_argument("--no-startup", action="store_true", help="skip the fresh-process start-up timings")
    bench.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for the numba kernels (default: all cores)",
    )
    bench.add_argument(
        "--json", type=writable_file, default=None, metavar="PATH", help="also write the results as JSON"
    )
    bench.add_argument(
        "--zoo",
        action="store_true",
        help="time the model zoo (fastnn.bench.zoo) against PyTorch instead of the suite",
    )
    bench.add_argument(
        "--zoo-networks",
        nargs="+",
        default=None,
        metavar="NAME",
        help="only these zoo networks (implies --zoo)",
    )
    bench.add_argument(
        "--memory",
        action="store_true",
        help="with --zoo: also each workload's peak RSS, fastnn and PyTorch, in fresh processes (slow)",
    )
    bench.add_argument(
        "--distributed",
        action="store_true",
        help="time allreduces and data-parallel steps on 2 MPI ranks (started with mpiexec) and print "
        "the ring model's predicted scaling for 2 to 64 machines (needs pip install 'fastnn[mpi]')",
    )
    bench.add_argument(
        "--bandwidth",
        type=float,
        default=10.0,
        metavar="GBIT",
        help="with --distributed: Gbit/s (default 10)",
    )
    bench.add_argument(
        "--latency",
        type=float,
        default=50.0,
        metavar="US",
        help="with --distributed: microseconds (default 50)",
    )
    bench.add_argument(
        "--compare",
        nargs=2,
        default=None,
        metavar=("BASE", "NEW"),
        help="compare two --json results on their in-run ratios; exit 1 on a regression",
    )
    bench.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="with --compare: the relative worsening of a ratio that counts as a regression (default 0.1)",
    )
    return bench


def run(args) -> int:
    from .. import _config
    from ..bench import report

    if args.compare:
        from ..bench import compare

        if args.threshold < 0:
            raise ValueError(f"--threshold must be >= 0, got {args.threshold}")
        return compare.main(*args.compare, threshold=args.threshold)
    if args.threads is not None:
        _config.set_num_threads(args.threads)
    if args.zoo or args.zoo_networks:
        return _bench_zoo(args)
    if args.distributed:
        return _bench_distributed(args)
    results = report.run(
        repeats=args.repeats or 20,
        warmup=args.warmup,
        networks=tuple(args.networks),
        with_numpy=not args.no_numpy,
        with_startup=not args.no_startup,
    )
    print(report.format_results(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"\nwrote {args.json}")
    return 0


def _bench_zoo(args) -> int:
    from ..bench import report, zoo, zoo_bench

    for name in args.zoo_networks or ():
        zoo.get(name)  # fail early on an unknown name
    results = report.header()
    results["zoo"] = zoo_bench.run(
        names=args.zoo_networks,
        repeats=args.repeats or zoo_bench.REPEATS,
        warmup=args.warmup,
        with_memory=args.memory,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(zoo_bench.format_zoo(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"\nwrote {args.json}")
    return 0


def _bench_distributed(args) -> int:
    """--distributed: measure and model data-parallel scaling (:mod:`fastnn.bench.distributed`);
    under mpiexec -n K, only the measurements that need the ranks (rank 0 reports them)."""
    from ..bench import distributed, report
    from ..distributed import init

    if args.bandwidth <= 0 or args.latency < 0:
        raise ValueError(
            f"--bandwidth must be > 0 and --latency >= 0, got {args.bandwidth} Gbit/s and {args.latency} us"
        )
    comm = init(threads=args.threads)
    repeats, networks = args.repeats or 10, tuple(args.networks)
    if comm.size > 1:
        measured = distributed.measure_on_ranks(comm, networks, repeats, args.warmup)
        if comm.is_root:
            print(distributed.format_ranks(measured))
            if args.json:
                report.write_json(measured, args.json)
        comm.barrier_sleeping()
        return 0
    print(
        f"fastnn bench --distributed: timing here, then on 2 MPI ranks ({', '.join(networks)}) ...",
        flush=True,
    )
    result = distributed.run(networks, repeats, args.warmup, args.bandwidth, args.latency)
    print(distributed.format_report(result))
    if args.json:
        report.write_json(result, args.json)
        print(f"\nwrote {args.json}")
    return 0
