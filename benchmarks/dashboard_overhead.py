"""What the live dashboard costs a training run: wall time of ``fit`` with and without it.

    python benchmarks/dashboard_overhead.py                 # simple_convnet, 1 epoch of MNIST, 3 rounds
    python benchmarks/dashboard_overhead.py --rounds 5 --samples 20000

Each round trains a fresh ``fnn.models.simple_convnet(seed=0)`` for one epoch (batch 100,
Adam) three ways, in an order that rotates from round to round, all in this one process:
``plain`` (no dashboard), ``unwatched`` (a Dashboard nobody connects to) and ``watched``
(a Dashboard with one client reading its event stream the whole time, as a browser tab
would). It prints every wall time and the process's CPU time (all threads; steadier than
the wall time on a busy machine), the median per way, and the ratios of the medians to
``plain``; the target is ``watched / plain <= 1.03``. The MNIST files are read from
``$FASTNN_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import fastnn as fnn
from fastnn.dashboard import Dashboard

WAYS = ("plain", "unwatched", "watched")


def data_dir() -> Path:
    env = os.environ.get("FASTNN_DATA")
    return Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def read_stream(url: str, stop: threading.Event, received: list) -> None:
    """A client that stays connected: reads the event stream and counts the frames."""
    with urllib.request.urlopen(url + "api/events", timeout=600) as stream:
        for line in stream:
            if line.startswith(b"event: frame"):
                received.append(time.perf_counter())
            if stop.is_set():
                return


def train_once(way: str, x, t, x_test, t_test, batch_size: int) -> dict:
    model = fnn.models.simple_convnet(seed=0)
    callbacks, dashboard, stop, received, client = [], None, threading.Event(), [], None
    if way != "plain":
        dashboard = Dashboard(port=0, validation_data=(x_test, t_test), held_out_name="test", verbose=False)
        url = dashboard.start()
        callbacks.append(dashboard)
        if way == "watched":
            client = threading.Thread(target=read_stream, args=(url, stop, received), daemon=True)
            client.start()
            while dashboard.watchers == 0:
                time.sleep(0.01)
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(
        x, t, epochs=1, batch_size=batch_size, optimizer=fnn.optim.Adam(1e-3), callbacks=callbacks, verbose=0
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    result = {"seconds": seconds, "cpu": cpu, "frames": 0, "frame_seconds": 0.0, "received": len(received)}
    if dashboard is not None:
        result.update(frames=dashboard.frames_built, frame_seconds=dashboard.frame_seconds)
        stop.set()
        dashboard.close()
        if client is not None:
            client.join(timeout=10)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60000, help="training samples of MNIST used")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    (x, t), (x_test, t_test) = fnn.datasets.load_mnist(path=data_dir() / "mnist")
    x, t = x[: args.samples], t[: args.samples]
    print(
        f"simple_convnet, 1 epoch of {len(x)} MNIST samples, batch {args.batch_size}, "
        f"{fnn.get_num_threads()} thread(s); warming up the kernels ...",
        flush=True,
    )
    train_once("watched", x[:2000], t[:2000], x_test, t_test, args.batch_size)  # compile, fill caches
    times = {way: [] for way in WAYS}
    cpu = {way: [] for way in WAYS}
    for round_ in range(args.rounds):
        order = WAYS[round_ % 3 :] + WAYS[: round_ % 3]
        for way in order:
            result = train_once(way, x, t, x_test, t_test, args.batch_size)
            times[way].append(result["seconds"])
            cpu[way].append(result["cpu"])
            print(
                f"round {round_ + 1} {way:9s} {result['seconds']:7.2f} s wall {result['cpu']:7.2f} s cpu"
                + (
                    f"   {result['frames']} frames built in {result['frame_seconds']:.3f} s, "
                    f"{result['received']} received"
                    if way != "plain"
                    else ""
                ),
                flush=True,
            )
    wall = {way: statistics.median(values) for way, values in times.items()}
    used = {way: statistics.median(values) for way, values in cpu.items()}
    for way in WAYS:
        print(
            f"median {way:9s} {wall[way]:7.2f} s wall (ratio to plain {wall[way] / wall['plain']:.4f})  "
            f"{used[way]:7.2f} s cpu (ratio {used[way] / used['plain']:.4f})"
        )


if __name__ == "__main__":
    main()
