"""``fastnn bench --distributed``: allreduce time against buffer size, compute time per step,
and the ring model's predicted scaling of the book networks (:mod:`fastnn.bench.ring_model`).

Run alone, it starts ``mpiexec -n 2`` on itself to time, on 2 ranks of 1 thread,
allreduces of growing buffers and data-parallel steps at global batch BATCH, in turns with
rank 0 alone running the same steps on every core while the other rank sleeps (one run,
one load: the throughput ratio is the median over the turns). It fits the ring model's
latency and bandwidth to the local allreduces, checks the model's 2-rank step time against
the measured one, and prints the predicted efficiency for 2 to 64 machines at the given
network bandwidth and latency. Under ``mpiexec -n K`` it only measures (on rank 0's clock).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from .. import _config
from ..data_parallel import DataParallel
from ..distributed.threads import available_cores
from ..models import MODELS
from ..optim import Adam
from .harness import BATCH, mnist_like_batch
from .ring_model import allreduce_seconds, efficiency, fit_latency_bandwidth

__all__ = ["measure_on_ranks", "run", "format_report", "MACHINES"]

MACHINES = (2, 4, 8, 16, 32, 64)
#: Buffer sizes (float32 values) of the allreduce sweep: 1 Ki to 16 Mi.
SIZES = tuple(4**k for k in range(5, 13))
#: Turns of :func:`alone_against_ranks_ms`.
BLOCKS = 5


def _median_seconds(fn, repeats: int, warmup: int, comm=None) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if comm is not None:
            comm.barrier()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def allreduce_times(comm, repeats: int, sizes=SIZES) -> list[dict]:
    """[{"values", "bytes", "ms"}]: the median time of one in-place float32 allreduce per size."""
    rows = []
    for size in sizes:
        buffer = np.ones(size, np.float32)
        seconds = _median_seconds(lambda b=buffer: comm.allreduce_(b), repeats, 2, comm)
        rows.append({"values": size, "bytes": 4 * size, "ms": seconds * 1e3})
    return rows


def _data_parallel_step(comm, name: str):
    """A data-parallel training step (Adam) of ``name`` at global batch BATCH, compiled,
    the ranks' weights equal."""
    model = MODELS[name](seed=0)
    optimizer = Adam(1e-3)
    parallel = DataParallel(comm, 0)
    x, t = mnist_like_batch()
    xs, ts = parallel.shard(x), parallel.shard(t)
    model.train_step(xs, ts, optimizer)  # compiles; the broadcast below makes the ranks agree again
    parallel.broadcast_state(model, optimizer)
    step = [0]

    def one():
        parallel.train_step(model, xs, ts, len(x), optimizer, None, False, step[0])
        step[0] += 1

    return one


def fit_step(model, optimizer, x, t):
    """A callable running one training step of ``model`` on (x, t) as ``fit`` does in one
    process: ``train_step``, then the batch's correct predictions counted for the epoch's
    accuracy (a data-parallel step counts them too, in :meth:`DataParallel.train_step`)."""

    def step():
        model.train_step(x, t, optimizer)
        model.loss_fn.count_correct(model.last_output, t)

    return step


def cores_alone() -> int:
    """The threads one rank alone may use: the host's cores, at most Numba's thread count."""
    return min(available_cores(), numba.config.NUMBA_NUM_THREADS)


def alone_against_ranks_ms(comm, name: str, repeats: int, warmup: int, blocks: int = BLOCKS) -> dict:
    """One rank alone against the whole job, in turns, in one run.

    ``blocks`` times: rank 0 times ``repeats`` training steps of ``name`` (:func:`fit_step`) on
    the whole global batch with the host's every core while the other ranks sleep at a barrier
    (:meth:`~fastnn.distributed.Communicator.barrier_sleeping`); then every rank times
    ``repeats`` data-parallel steps of the same batch, one thread each (as launched). Taking
    turns puts both under the same load on a shared machine. Returns (on rank 0) {"alone_ms",
    "ranks_ms"}: the medians over every block's steps, and "throughput": the median over the
    blocks of alone / ranks, the job's steps per second against one process's.
    """
    ranks_step = _data_parallel_step(comm, name)
    threads, cores = _config.get_num_threads(), cores_alone()
    alone_step = None
    if comm.is_root:
        model, optimizer = MODELS[name](seed=0), Adam(1e-3)
        x, t = mnist_like_batch()
        alone_step = fit_step(model, optimizer, x, t)
    alone, ranks, ratios = [], [], []
    for block in range(blocks):
        if comm.is_root:
            _config.set_num_threads(cores)
            try:
                alone.append(_median_seconds(alone_step, repeats, warmup if block == 0 else 1))
            finally:
                _config.set_num_threads(threads)
        comm.barrier_sleeping()
        ranks.append(_median_seconds(ranks_step, repeats, warmup if block == 0 else 1, comm))
        if comm.is_root:
            ratios.append(alone[-1] / ranks[-1])
    if not comm.is_root:
        return {}
    return {
        "alone_ms": float(np.median(alone)) * 1e3,
        "ranks_ms": float(np.median(ranks)) * 1e3,
        "throughput": float(np.median(ratios)),
    }


def compute_step_ms(name: str, batch: int, repeats: int, warmup: int) -> float:
    """Median ms of one training step (Adam) of ``name`` at ``batch`` in this process, as fit
    runs it (:func:`fit_step`)."""
    model = MODELS[name](seed=0)
    optimizer = Adam(1e-3)
    x, t = mnist_like_batch()
    x, t = x[:batch], t[:batch]
    return _median_seconds(fit_step(model, optimizer, x, t), repeats, warmup) * 1e3


def measure_on_ranks(comm, networks, repeats: int, warmup: int) -> dict:
    """What only a job of K > 1 ranks can measure: allreduce times, data-parallel steps
    against one rank alone with every core (:func:`alone_against_ranks_ms`), and one
    rank's shard alone (all ranks at once, for the model)."""
    result = {
        "ranks": comm.size,
        "threads_per_rank": _config.get_num_threads(),
        "cores_alone": cores_alone(),
        "allreduce": allreduce_times(comm, repeats),
        "data_parallel_step_ms": {},
        "alone_step_ms": {},
        "throughput": {},
        "shard_step_ms": {},
    }
    for name in networks:
        turns = alone_against_ranks_ms(comm, name, repeats, warmup)
        if comm.is_root:
            result["data_parallel_step_ms"][name] = turns["ranks_ms"]
            result["alone_step_ms"][name] = turns["alone_ms"]
            result["throughput"][name] = turns["throughput"]
        result["shard_step_ms"][name] = compute_step_ms(name, BATCH // comm.size, repeats, warmup)
    return result


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise RuntimeError(
            "fastnn bench --distributed: mpiexec not found; pip install 'fastnn[mpi]' (mpi4py and the "
            "MPICH wheel), or run it under your cluster's mpiexec"
        )
    return found


def _on_two_ranks(networks, repeats: int, warmup: int, timeout_s: float = 600) -> dict:
    """measure_on_ranks in a fresh ``mpiexec -n 2`` job of this command, 1 thread per rank."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ranks.json"
        command = [_mpiexec(), "-n", "2", sys.executable, "-m", "fastnn", "bench", "--distributed"]
        command += ["--repeats", str(repeats), "--warmup", str(warmup), "--json", str(path)]
        command += ["--networks", *networks]
        env = {**os.environ, "FASTNN_THREADS": "1"}
        job = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
        if job.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"fastnn bench --distributed: the 2-rank job failed (exit {job.returncode}):\n"
                f"{job.stdout}{job.stderr}"
            )
        return json.loads(path.read_text())


def run(networks, repeats: int, warmup: int, bandwidth_gbit: float, latency_us: float) -> dict:
    """The whole report (JSON data): measured here, measured on 2 ranks, and modelled."""
    ranks = _on_two_ranks(networks, repeats, warmup)
    sizes = [row["bytes"] for row in ranks["allreduce"]]
    alpha, beta = fit_latency_bandwidth(2, sizes, [row["ms"] / 1e3 for row in ranks["allreduce"]])
    bandwidth = bandwidth_gbit * 1e9 / 8
    rows = []
    for name in networks:
        nbytes = 4 * MODELS[name](seed=0).num_params
        alone_ms = ranks["alone_step_ms"][name]
        shard_ms = ranks["shard_step_ms"][name]
        predicted_2 = shard_ms + allreduce_seconds(2, nbytes, alpha, beta) * 1e3
        rows.append(
            {
                "network": name,
                "gradient_bytes": nbytes,
                "one_rank_all_threads_ms": alone_ms,
                "two_ranks_measured_ms": ranks["data_parallel_step_ms"][name],
                "two_ranks_modelled_ms": predicted_2,
                "throughput_two_ranks_vs_one": ranks["throughput"][name],
                "efficiency": {
                    str(n): efficiency(alone_ms / 1e3, n, nbytes, latency_us * 1e-6, bandwidth)
                    for n in MACHINES
                },
            }
        )
    return {
        "threads_here": ranks["cores_alone"],
        "ranks": ranks,
        "local_latency_us": alpha * 1e6,
        "local_bandwidth_gbit": beta * 8 / 1e9,
        "bandwidth_gbit": bandwidth_gbit,
        "latency_us": latency_us,
        "networks": rows,
    }


def format_ranks(result: dict) -> str:
    lines = [
        f"allreduce of float32 on {result['ranks']} ranks ({result['threads_per_rank']} thread(s) each):"
    ]
    lines += [f"  {row['values']:>10,d} values  {row['ms']:9.3f} ms" for row in result["allreduce"]]
    lines.append(
        f"training step at global batch {BATCH} (Adam), in {BLOCKS} turns: all {result['ranks']} ranks "
        f"against rank 0 alone with {result['cores_alone']} thread(s):"
    )
    for name, ms in result["data_parallel_step_ms"].items():
        lines.append(
            f"  {name:<16} {ms:8.2f} ms   alone {result['alone_step_ms'][name]:8.2f} ms   throughput "
            f"{result['throughput'][name]:.2f}x   (one rank's shard, all at once: "
            f"{result['shard_step_ms'][name]:.2f} ms)"
        )
    return "\n".join(lines)


def format_report(report: dict) -> str:
    lines = [format_ranks(report["ranks"]), ""]
    lines.append(
        f"ring model fitted to the local allreduces: latency {report['local_latency_us']:.1f} us, "
        f"bandwidth {report['local_bandwidth_gbit']:.1f} Gbit/s"
    )
    lines.append(
        f"{'network':<16} {'1 rank x ' + str(report['threads_here']) + ' thr':>14} {'2 ranks x 1':>12} "
        f"{'modelled':>9} {'throughput (median of turns)':>10}"
    )
    for row in report["networks"]:
        alone, measured = row["one_rank_all_threads_ms"], row["two_ranks_measured_ms"]
        modelled, ratio = row["two_ranks_modelled_ms"], row["throughput_two_ranks_vs_one"]
        lines.append(
            f"{row['network']:<16} {alone:11.2f} ms {measured:9.2f} ms {modelled:6.2f} ms {ratio:9.2f}x"
        )
    lines += [
        "",
        f"predicted scaling efficiency, batch {BATCH} per machine, {report['bandwidth_gbit']:g} Gbit/s, "
        f"{report['latency_us']:g} us latency (ring allreduce after each backward pass):",
        f"{'network':<16} {'gradient':>10} " + " ".join(f"{'N=' + str(n):>6}" for n in MACHINES),
    ]
    for row in report["networks"]:
        cells = " ".join(f"{row['efficiency'][str(n)]:6.0%}" for n in MACHINES)
        lines.append(f"{row['network']:<16} {row['gradient_bytes'] / 2**20:7.2f} MiB {cells}")
    return "\n".join(lines)
