"""The machine's peak float32 FMA rate, measured, and the theoretical figure beside it.

:func:`measure` runs, on every thread (``prange``), many independent chains of
``acc = acc * m + a`` on float32: ``CHAINS`` vector accumulators of the CPU's SIMD width
(8 lanes with AVX2, 16 with AVX-512; :func:`~fastnn.kernels._simd.wide_vectors` lifts
LLVM's preference for 256-bit vectors on AVX-512 CPUs, which halved the measured peak),
which LLVM keeps in registers and contracts into one fused multiply-add each
(``fastmath={"contract"}``: contraction only, no reassociation, so no step can be
skipped). Enough chains hide the FMA latency (4 cycles, 2 FMA pipes on Zen 3 and
Skylake: 8 chains in flight), so the loop runs at the FMA units' throughput. It counts 2
FLOPs per FMA per lane and reports the best of a few runs in GFLOP/s.

:func:`theoretical` is ``cores x GHz x FMA units x lanes x 2`` with the clock read from
``/proc/cpuinfo`` (under a hypervisor that is the nominal clock, not the boost clock: a
measured rate above it means the cores run faster than nominal), and
:func:`fastnn.bench.harness.sgemm_gflops` is what NumPy's BLAS reaches on a large GEMM.
``python -m fastnn.bench.peak`` prints the three.
"""

from __future__ import annotations

import os
import time

import numpy as np
from numba import njit, prange

from ..kernels._simd import wide_vectors

#: Independent vector accumulators per thread: FMA latency x FMA pipes (4 x 2).
CHAINS = 8
FMA_UNITS = 2


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def simd_lanes() -> int:
    """float32 lanes of the widest vector FMA: 16 with AVX-512, 8 with AVX2/FMA, else 4."""
    flags = _cpu_flags()
    if "avx512f" in flags:
        return 16
    if "fma" in flags and "avx2" in flags:
        return 8
    return 4


def nominal_ghz() -> float | None:
    """The clock /proc/cpuinfo reports (nominal under a hypervisor), or None."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) / 1e3
    except (OSError, ValueError):
        pass
    return None


def theoretical(cores: int | None = None) -> dict:
    """cores x GHz x FMA units x lanes x 2, at the clock /proc/cpuinfo gives."""
    cores = cores or os.cpu_count() or 1
    ghz, lanes = nominal_ghz(), simd_lanes()
    gflops = None if ghz is None else cores * ghz * FMA_UNITS * lanes * 2
    return {"cores": cores, "ghz": ghz, "fma_units": FMA_UNITS, "lanes": lanes, "gflops": gflops}


_KERNELS = {}


def _kernel(width: int):
    """The chains kernel for ``width`` = CHAINS * lanes float32 accumulators per thread."""
    if width not in _KERNELS:

        @njit(parallel=True, fastmath={"contract"}, cache=False)
        def chains(iters, m, a, out):
            for t in prange(out.shape[0]):
                wide_vectors()  # else LLVM's AVX-512 tuning picks 256-bit vectors: half the peak
                acc = np.empty(width, np.float32)
                for j in range(width):
                    acc[j] = np.float32(t + j) * np.float32(1e-3)
                for _ in range(iters):
                    for j in range(width):  # vectorised; the accumulators stay in registers
                        acc[j] = acc[j] * m + a
                total = np.float32(0)
                for j in range(width):
                    total += acc[j]
                out[t] = total

        _KERNELS[width] = chains
    return _KERNELS[width]


def measure(threads: int | None = None, iters: int = 4_000_000, repeats: int = 10) -> float:
    """Best GFLOP/s of the FMA chains over ``repeats`` runs on ``threads`` threads (all by default)."""
    from .. import _config

    threads = threads or _config.get_num_threads()
    width = CHAINS * simd_lanes()
    kernel = _kernel(width)
    out = np.zeros(threads, np.float32)
    m, a = np.float32(0.999), np.float32(1e-3)
    kernel(10, m, a, out)  # compile
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        kernel(iters, m, a, out)
        seconds = time.perf_counter() - started
        best = max(best, 2 * iters * width * threads / seconds / 1e9)
    if not np.all(np.isfinite(out)):
        raise RuntimeError("the FMA chains produced a non-finite value")
    return best


def report(repeats: int = 10) -> dict:
    """Measured peak on all threads and on one, the theoretical value, and NumPy's sgemm."""
    from .. import _config
    from .harness import sgemm_gflops

    threads = _config.get_num_threads()
    return {
        "measured_gflops": measure(threads, repeats=repeats),
        "one_thread_gflops": measure(1, repeats=repeats),
        "threads": threads,
        "theoretical": theoretical(threads),
        "sgemm_gflops": sgemm_gflops(max(5, repeats)),
    }


def format_report(result: dict) -> str:
    theory = result["theoretical"]
    lines = [
        f"measured FMA peak ({CHAINS} chains x {theory['lanes']} lanes x {result['threads']} threads): "
        f"{result['measured_gflops']:.1f} GFLOP/s ({result['one_thread_gflops']:.1f} on one thread)"
    ]
    if theory["gflops"]:
        implied = result["measured_gflops"] / (theory["cores"] * theory["fma_units"] * theory["lanes"] * 2)
        lines.append(
            f"theoretical at the nominal {theory['ghz']:.2f} GHz: {theory['cores']} cores x "
            f"{theory['ghz']:.2f} GHz x {theory['fma_units']} FMA units x {theory['lanes']} lanes x 2 = "
            f"{theory['gflops']:.1f} GFLOP/s (the measured rate implies {implied:.2f} GHz)"
        )
    lines.append(f"NumPy sgemm 2048^3: {result['sgemm_gflops']:.1f} GFLOP/s")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_report(report()))
