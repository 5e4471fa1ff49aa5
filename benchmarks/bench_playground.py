"""Frames per second of ``fastnn playground``: one epoch plus the heatmap and every thumbnail.

    python benchmarks/bench_playground.py [--layers 8 8 8] [--points 500] [--seconds 5] [--threads 1]

A frame is what the playground's training thread does between two pictures on the page:
``Session.train_epoch()`` (the training half of the points, batch 10, in shuffled
mini-batches), then ``Session.frame()`` (the 100x100 output heatmap and every neuron's
map on the grid, run through the network's own layers, the losses, accuracy and
confusion matrix) and its JSON encoding, as the server sends it. The script runs frames
for ``--seconds`` on each backend and prints the frames per second and the median times
of the two halves, and frames per second of this thread's CPU time (``time.thread_time``),
which a busy machine's waits for a core do not count (with one Numba thread all the work
runs in this thread). ``--threads`` is the Numba thread count (default 1, as the playground's
training thread uses: ``fastnn.playground.runner.TRAINING_THREADS``). The target (issue 21)
is 30 frames per second for [8, 8, 8] on 500 points.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn import set_num_threads  # noqa: E402
from fastnn.playground import Session  # noqa: E402
from fastnn.playground.runner import TRAINING_THREADS  # noqa: E402


def measure(backend: str, layers, points: int, seconds: float) -> dict:
    session = Session({"layers": list(layers), "num_samples": points, "backend": backend})
    session.train_epoch()  # compile (or load from the kernel cache) outside the timing
    json.dumps(session.frame())
    epochs, frames = [], []
    start, cpu = time.perf_counter(), time.thread_time()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        session.train_epoch()
        t1 = time.perf_counter()
        json.dumps(session.frame())
        t2 = time.perf_counter()
        epochs.append(t1 - t0)
        frames.append(t2 - t1)
    total, cpu = time.perf_counter() - start, time.thread_time() - cpu
    return {
        "backend": backend,
        "fps": len(epochs) / total,
        "fps_cpu": len(epochs) / cpu,
        "epoch_ms": 1e3 * statistics.median(epochs),
        "frame_ms": 1e3 * statistics.median(frames),
        "steps_per_s": session.rates[backend],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="*", default=[8, 8, 8])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=TRAINING_THREADS)
    args = parser.parse_args(argv)
    set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"layers {args.layers}, {args.points} points, batch 10, {args.threads} Numba thread(s), "
        f"{os.cpu_count()} CPUs, load average {load:.1f}"
    )
    print("backend   frames/s  epoch ms  frame ms  steps/s  frames/CPU s")
    for backend in ("numba", "numpy"):
        r = measure(backend, args.layers, args.points, args.seconds)
        times = f"{r['epoch_ms']:9.2f} {r['frame_ms']:9.2f}"
        print(f"{backend:8} {r['fps']:9.1f} {times} {r['steps_per_s']:8.0f} {r['fps_cpu']:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
