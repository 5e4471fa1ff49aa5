"""The ring-allreduce cost model behind ``fastnn bench --distributed``.

A ring allreduce of S bytes over N machines sends 2 (N - 1) messages of S / N bytes
through every link (a reduce-scatter, then an allgather), so with per-message latency
alpha (s) and bandwidth beta (bytes/s):

    T_allreduce(N, S) = 2 (N - 1) alpha + 2 (N - 1) / N * S / beta      (0 for N = 1).

Data-parallel training keeps each machine's batch (weak scaling) and adds one allreduce
of the flat gradient after every backward pass (fastnn does not overlap them), so with
T_compute the time of one machine's step:

    efficiency(N) = T_compute / (T_compute + T_allreduce(N, S)),   speedup(N) = N * efficiency(N).
"""

from __future__ import annotations

import numpy as np

__all__ = ["allreduce_seconds", "efficiency", "fit_latency_bandwidth"]


def allreduce_seconds(machines: int, nbytes: float, latency_s: float, bandwidth_bytes_s: float) -> float:
    """T_allreduce(N, S) of the ring (the formula above)."""
    if machines <= 1:
        return 0.0
    steps = 2 * (machines - 1)
    return steps * latency_s + steps / machines * nbytes / bandwidth_bytes_s


def efficiency(
    compute_s: float, machines: int, nbytes: float, latency_s: float, bandwidth_bytes_s: float
) -> float:
    """T_compute / (T_compute + T_allreduce): the fraction of linear speed-up kept on N machines."""
    return compute_s / (compute_s + allreduce_seconds(machines, nbytes, latency_s, bandwidth_bytes_s))


def fit_latency_bandwidth(machines: int, nbytes, seconds) -> tuple[float, float]:
    """(alpha, beta) of the ring model fitted to measured allreduce times of buffers of
    ``nbytes`` bytes on ``machines`` ranks, by least squares on
    ``T = 2 (N - 1) alpha + 2 (N - 1) / N * S / beta`` (alpha clipped at 0)."""
    nbytes, seconds = np.asarray(nbytes, np.float64), np.asarray(seconds, np.float64)
    steps = 2 * (machines - 1)
    design = np.stack([np.full_like(nbytes, steps), steps / machines * nbytes], axis=1)
    (alpha, inverse_beta), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    if inverse_beta <= 0:
        raise ValueError(
            f"fit_latency_bandwidth: the times do not grow with the buffer size ({seconds.tolist()}); "
            "measure larger buffers"
        )
    return max(float(alpha), 0.0), float(1.0 / inverse_beta)
