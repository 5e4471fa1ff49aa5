"""Where a training step's time goes: each kernel call against the Python around them.

    python benchmarks/profile_step.py [NETWORK] [--steps 200] [--batch B]

NETWORK is any network of the zoo (:mod:`fastnn.bench.zoo`; ``--help`` lists them;
default mlp). Runs its call as ``fastnn bench --zoo`` does: ``Sequential.train_step`` (float32,
Adam, numba backend) or ``predict``, at the zoo entry's batch (or ``--batch``) and input shape, and times
every call of a :class:`fastnn._config.ParallelKernel` (the
kernels' serial/parallel dispatch, Numba's argument checks included) inside the steps.
Prints, in call order, the median microseconds of each kernel call with its first
argument's shape and whether it ran the parallel build, then the median step, the
median time inside kernels and the rest (the Python layers, ops and checks).
Steps run back to back, so the step time is below ``fastnn bench``'s, whose blocks start
after a pause. The timing adds a Python call and two clock reads to every kernel call.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from fastnn import _config
from fastnn.bench import zoo, zoo_bench


def profile(name: str, steps: int, batch: int | None = None) -> None:
    calls = []
    original = _config.ParallelKernel.__call__

    def timed(kernel, work, *args):
        started = time.perf_counter()
        result = original(kernel, work, *args)
        calls.append(
            (
                kernel.__name__,
                getattr(args[0], "shape", ()),
                work >= _config.PARALLEL_THRESHOLD,
                time.perf_counter() - started,
            )
        )
        return result

    entry = zoo.get(name)
    if batch is not None:
        entry = dataclasses.replace(entry, batch=batch)
    x, t = zoo_bench.batch(entry)
    _, step = zoo_bench.fastnn_call(entry, x, t)
    _config.ParallelKernel.__call__ = timed
    try:
        for _ in range(10):
            step()
        per_call, step_s, kernel_s = None, [], []
        for _ in range(steps):
            calls.clear()
            started = time.perf_counter()
            step()
            step_s.append(time.perf_counter() - started)
            kernel_s.append(sum(c[3] for c in calls))
            if per_call is None:
                per_call = [[c[0], c[1], c[2], []] for c in calls]
            for row, call in zip(per_call, calls):
                row[3].append(call[3])
    finally:
        _config.ParallelKernel.__call__ = original
    print(
        f"{name}: {steps} {entry.kind} calls back to back, batch {entry.batch}, float32, Adam, "
        f"{_config.get_num_threads()} threads; median microseconds"
    )
    print(f"{'kernel':<44}{'first argument':<22}{'build':<10}{'us':>8}")
    for kernel, shape, parallel, times in per_call:
        print(
            f"{kernel:<44}{str(shape):<22}{'parallel' if parallel else 'serial':<10}"
            f"{np.median(times) * 1e6:>8.1f}"
        )
    step_us = np.median(step_s) * 1e6
    kernels_us = np.median(kernel_s) * 1e6
    rest_us = np.median(np.array(step_s) - np.array(kernel_s)) * 1e6
    print(
        f"step {step_us:.1f} us: in kernels {kernels_us:.1f}, outside them {rest_us:.1f} "
        f"({rest_us / step_us:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="mlp", choices=list(zoo.ZOO))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=None, help="instead of the zoo entry's batch")
    args = parser.parse_args()
    profile(args.network, args.steps, args.batch)


if __name__ == "__main__":
    main()
