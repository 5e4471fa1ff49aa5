"""Page faults and step time of zoo workloads with and without fastnn's malloc settings.

    python benchmarks/page_faults.py [NETWORK ...] [--steps 30] [--rounds 2] [--torch]

For each workload of the zoo (:mod:`fastnn.bench.zoo`; default: all), runs its timed call
as ``fastnn bench --zoo`` does in a fresh process, once with ``FASTNN_MALLOC=0`` (glibc's
own adaptive thresholds) and once with the default (:mod:`fastnn._malloc`), ``--rounds``
times alternating, and prints the median step and the minor page faults per step
(``getrusage``) of each, and the process's peak resident set (``ru_maxrss``: import,
model, 10 warm-up calls and the timed ones), the median over the rounds. ``--torch``
times each workload's PyTorch twin (:mod:`fastnn.bench.torch_models`, the zoo's) the same
way instead: with glibc's own settings against the same thresholds given through glibc's
environment variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

CHILD = """
import json, os, resource, sys, time
import numpy as np
from fastnn import _malloc
from fastnn.bench import torch_models, zoo, zoo_bench
entry = zoo.get(sys.argv[1])
x, t = zoo_bench.batch(entry)
if sys.argv[3] == "torch":
    threads = int(sys.argv[4])  # fastnn's default, all cores: asking Numba would start its threads
    if entry.kind == "predict":
        call = torch_models.TorchPredict(entry.name, x, threads)
    else:
        call = torch_models.TorchStep(entry.name, x, t, threads)
else:
    _, call = zoo_bench.fastnn_call(entry, x, t)
for _ in range(10):
    call()
steps = int(sys.argv[2])
times = []
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(steps):
    started = time.perf_counter()
    call()
    times.append(time.perf_counter() - started)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tuned = _malloc.APPLIED if sys.argv[3] == "fastnn" else "MALLOC_TRIM_THRESHOLD_" in os.environ
print(json.dumps({"ms": float(np.median(times)) * 1e3, "faults": faults / steps, "peak": peak, "set": tuned}))
"""


def measure(name: str, steps: int, tuned: bool, side: str = "fastnn") -> dict:
    """One fresh process: ``side`` ("fastnn" or "torch") with or without the thresholds."""
    from fastnn import _malloc

    env = {k: v for k, v in os.environ.items() if k not in _malloc.GLIBC_SETTINGS}
    env["FASTNN_MALLOC"] = "1" if tuned and side == "fastnn" else "0"
    if tuned and side == "torch":
        env["MALLOC_MMAP_THRESHOLD_"] = str(_malloc.MMAP_THRESHOLD)
        env["MALLOC_TRIM_THRESHOLD_"] = str(_malloc.TRIM_THRESHOLD)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(steps), side, str(len(os.sched_getaffinity(0)))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    from fastnn.bench import zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "networks", nargs="*", metavar="NETWORK", help=f"zoo workloads (default all): {', '.join(zoo.ZOO)}"
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--torch", action="store_true", help="time the PyTorch twins instead")
    args = parser.parse_args(argv)
    side = "torch" if args.torch else "fastnn"
    print(
        f"{side}: median step (ms), minor page faults per step and peak RSS (MiB); "
        "glibc's default thresholds vs fastnn's"
    )
    print(
        f"{'network':24s} {'glibc ms':>9s} {'faults':>7s} {'MiB':>6s} "
        f"{'tuned ms':>9s} {'faults':>7s} {'MiB':>6s} {'ratio':>6s}"
    )
    for name in args.networks or list(zoo.ZOO):
        zoo.get(name)  # an unknown name fails here, saying which exist
        runs = {False: [], True: []}
        for _ in range(args.rounds):
            for tuned in (False, True):
                runs[tuned].append(measure(name, args.steps, tuned, side))
        if not all(r["set"] for r in runs[True]):
            print(f"{name:24s} malloc settings not applied here (not glibc, or set in the environment)")
            continue
        ms = {k: float(np.median([r["ms"] for r in v])) for k, v in runs.items()}
        faults = {k: float(np.median([r["faults"] for r in v])) for k, v in runs.items()}
        peak = {k: float(np.median([r["peak"] for r in v])) for k, v in runs.items()}
        print(
            f"{name:24s} {ms[False]:9.2f} {faults[False]:7.0f} {peak[False]:6.0f} "
            f"{ms[True]:9.2f} {faults[True]:7.0f} {peak[True]:6.0f} {ms[True] / ms[False]:6.2f}"
        )


if __name__ == "__main__":
    main()
