"""Timing harness behind ``fastnn bench``: interleaved runs, medians, ratios.

Every comparison times its contenders in turn (A, B, C, A, B, C, ...) inside one
process, so a change in the machine's speed hits all of them alike; the figures
quoted are medians over the repetitions, after warm-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import _config
from ..backends import get_ops
from ..models import MODELS
from ..optim import Adam
from . import torch_models

NETWORKS = ("mlp", "simple_convnet", "deep_convnet")
BATCH = 100

#: deep_convnet's convolutions at batch 100: (C, H, W, F, pad).
DEEP_CONV_LAYERS = [
    (1, 28, 28, 16, 1),
    (16, 28, 28, 16, 1),
    (16, 14, 14, 32, 1),
    (32, 14, 14, 32, 2),
    (32, 8, 8, 64, 1),
    (64, 8, 8, 64, 1),
]


#: Seconds to pause before each block, so the previous contender's spinning threads go idle.
SETTLE_S = 0.1


def interleaved(
    contenders: dict, repeats: int, warmup: int, block: int = 5, settle_s: float = SETTLE_S
) -> dict[str, float]:
    """Median seconds per call of each callable, over ``repeats`` timed calls each.

    The contenders take turns in blocks (A x block, B x block, A x block, ...), so a drift in
    the machine's speed hits them alike. Each block starts with a pause of SETTLE_S and one
    untimed call: the previous contender's thread pool (NumPy's OpenBLAS, Numba's workers)
    may still be spinning on the cores after its last call (OpenBLAS's for about 0.1 s), and
    timing calls made right after a switch would charge that to whoever runs next. A contender with
    ``measures_itself`` (PyTorch in its own process) runs its block there, back to back as
    the calls here run, and returns the times it measured (``fn.block(k)``). ``settle_s=0``
    skips the pause, for contenders that share one thread pool.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in contenders}
    while min(len(v) for v in times.values()) < repeats:
        for name, fn in contenders.items():
            if settle_s:
                time.sleep(settle_s)
            count = min(block, repeats - len(times[name]))
            if getattr(fn, "measures_itself", False):
                times[name].extend(fn.block(count))
                continue
            fn()
            for _ in range(count):
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
    return {name: float(np.median(values)) for name, values in times.items()}


def mnist_like_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((BATCH, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, BATCH)


def fastnn_step(name: str, backend: str, x, t):
    model = MODELS[name](seed=0, backend=backend)
    optimizer = Adam(1e-3)
    return lambda: model.train_step(x, t, optimizer)


def training_steps(
    threads: int,
    repeats: int,
    warmup: int,
    networks=NETWORKS,
    with_numpy: bool = True,
    with_torch: bool = True,
) -> list[dict]:
    """Median ms per training step (forward, backward, Adam) at batch 100, per network."""
    x, t = mnist_like_batch()
    _config.set_num_threads(threads)
    rows = []
    for name in networks:
        contenders = {"numba": fastnn_step(name, "numba", x, t)}
        if with_numpy:
            contenders["numpy"] = fastnn_step(name, "numpy", x, t)
        if with_torch and torch_models.available():
            contenders["torch"] = torch_models.InChildProcess("step", name, x, t, threads)
        # at least five rounds of blocks of three on the CNNs, so that a burst of load on a
        # shared machine, which can last a few seconds, slows one round of one contender,
        # not half of its samples (about 20 s with the reference)
        reps = repeats if name == "mlp" else max(15, (3 * repeats) // 4)
        medians = interleaved(contenders, reps, warmup, block=3)
        if "torch" in contenders:
            contenders["torch"].close()
        row = {"network": name, "repeats": reps}
        row.update({f"{k}_ms": v * 1e3 for k, v in medians.items()})
        row["samples_per_s"] = BATCH / medians["numba"]
        if "torch" in medians:
            row["numba_vs_torch"] = medians["numba"] / medians["torch"]
        if "numpy" in medians:
            row["numpy_vs_numba"] = medians["numpy"] / medians["numba"]
        rows.append(row)
    return rows


def thread_scaling(repeats: int, warmup: int, name: str = "deep_convnet") -> dict:
    """Step time of ``name`` on 1 thread and on all threads (interleaved)."""
    x, t = mnist_like_batch()
    most = _config.get_num_threads()
    step = fastnn_step(name, "numba", x, t)

    def on(threads):
        def run():
            _config.set_num_threads(threads)
            step()

        return run

    medians = interleaved({"1": on(1), str(most): on(most)}, repeats, warmup)
    _config.set_num_threads(most)
    return {
        "network": name,
        "threads": most,
        "one_thread_ms": medians["1"] * 1e3,
        "all_threads_ms": medians[str(most)] * 1e3,
        "speedup": medians["1"] / medians[str(most)],
    }


def sgemm_gflops(repeats: int, size: int = 2048) -> float:
    """float32 GEMM rate of NumPy's BLAS on all its threads: the machine's practical peak."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    seconds = interleaved({"sgemm": lambda: a @ b}, repeats, 2)["sgemm"]
    return 2 * size**3 / seconds / 1e9


def conv_gflops(repeats: int, warmup: int) -> list[dict]:
    """conv2d forward GFLOP/s (2*N*F*C*KH*KW*OH*OW per call) on deep_convnet's layers."""
    ops = get_ops("numba")
    rng = np.random.default_rng(0)
    calls, flops = {}, {}
    for c, h, w, f, pad in DEEP_CONV_LAYERS:
        x = rng.standard_normal((BATCH, c, h, w)).astype(np.float32)
        W = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
        b = rng.standard_normal(f).astype(np.float32)
        oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
        name = f"{c}->{f} 3x3 pad {pad} @{h}x{w}"
        flops[name] = 2 * BATCH * f * c * 9 * oh * ow
        calls[name] = lambda x=x, W=W, b=b, pad=pad: ops.conv2d(x, W, b, 1, pad)
    # the layers take turns in blocks of three over at least three rounds, without the
    # pause between blocks (they share Numba's threads, and on a shared machine the
    # calls right after a pause can run several times slower for a dozen calls): a
    # stretch of stolen cores then slows one block of one layer, not most calls of
    # whichever layer ran
    seconds = interleaved(calls, max(9, repeats), warmup, block=3, settle_s=0)
    return [
        {"layer": name, "ms": seconds[name] * 1e3, "gflops": flops[name] / seconds[name] / 1e9}
        for name in calls
    ]


def adam_vs_torch(repeats: int, warmup: int, size: int = 1_000_000) -> dict | None:
    """Fused Adam over ``size`` float32 parameters against torch.optim.Adam(fused=True)."""
    if not torch_models.available():
        return None
    ops = get_ops("numba")
    rng = np.random.default_rng(0)
    params = rng.standard_normal(size).astype(np.float32)
    grads = rng.standard_normal(size).astype(np.float32)
    optimizer = Adam(1e-3)
    torch_adam = torch_models.InChildProcess("adam", size, _config.get_num_threads())
    medians = interleaved(
        {"numba": lambda: optimizer.apply(ops, params, grads), "torch": torch_adam}, repeats, warmup
    )
    torch_adam.close()
    return {
        "parameters": size,
        "numba_ms": medians["numba"] * 1e3,
        "torch_ms": medians["torch"] * 1e3,
        "ratio": medians["numba"] / medians["torch"],
    }


_FIRST_STEP = (
    "import time; t0 = time.perf_counter(); import numpy as np, fastnn as fnn; "
    "m = fnn.models.{build}; rng = np.random.default_rng(0); "
    "x = rng.random(({batch},) + tuple(m.input_shape or (1, 28, 28)), dtype=np.float32); "
    "t = rng.integers(0, 10, {batch}); "
    "m.train_step(x, t, fnn.optim.Adam()); print(time.perf_counter() - t0)"
)

#: Models of first_step_times that are not a function of fnn.models called with the seed alone.
_FIRST_STEP_MODELS = {"lenet5_classic": "lenet5(classic=True, seed=0)"}

#: Networks whose empty-cache start-up asv tracks (bench_compile.ColdStart).
STARTUP_NETWORKS = ("mlp", "simple_convnet", "deep_convnet", "lenet5")


def first_step_times(cache_dir: str | None = None, model: str = "deep_convnet", batch: int = BATCH) -> dict:
    """From ``import fastnn`` to a finished training step of ``model`` (a model of
    ``fnn.models``, on random inputs of its ``input_shape``: 1x28x28 for the book's networks,
    3x32x32 for ``resnet``, ``inception`` and the other classic ones; "lenet5_classic" is
    ``lenet5(classic=True)``, tanh and average pooling) in a fresh process:
    {"wall_s": seconds, "cpu_s": CPU seconds of that process and the ones it started
    (the kernel-compiling workers of :mod:`fastnn._precompile`), "process_s": seconds from
    the process's start to its exit (which, after a tiered cold start, waits for the
    parallel builds still compiling)}."""
    import resource

    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_STEP.format(build=_first_step_model(model), batch=int(batch))],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    process = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": float(result.stdout.strip().splitlines()[-1]), "cpu_s": cpu, "process_s": process}


def _first_step_model(model: str) -> str:
    """The ``fnn.models`` call that builds ``model`` for :func:`first_step_times`."""
    if model in _FIRST_STEP_MODELS:
        return _FIRST_STEP_MODELS[model]
    if not model.isidentifier():
        raise ValueError(f"first_step_times: expected a model of fnn.models, got {model!r}")
    return f"{model}(seed=0)"


def time_to_first_step(cache_dir: str | None = None, model: str = "deep_convnet") -> float:
    """Seconds from ``import fastnn`` to a finished step of ``model``, in a fresh process."""
    return first_step_times(cache_dir, model)["wall_s"]


def startup_times(model: str = "deep_convnet") -> dict:
    """Time to the first step of ``model`` with an empty kernel cache, then with it warm
    (with the CPU seconds of the cold start, workers included, and the time its process
    took to exit: after a tiered start it waits for the parallel builds)."""
    with tempfile.TemporaryDirectory() as cache:
        cold = first_step_times(cache, model)
        warm = min(time_to_first_step(cache, model) for _ in range(3))
    return {
        "cold_cache_s": cold["wall_s"],
        "cold_cache_cpu_s": cold["cpu_s"],
        "cold_cache_process_s": cold["process_s"],
        "warm_cache_s": warm,
    }
