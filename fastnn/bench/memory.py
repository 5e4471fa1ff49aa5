"""Peak resident memory of one zoo workload, fastnn or PyTorch, each in a fresh process.

``python -m fastnn.bench.memory fastnn|torch NAME`` prints the MiB by which the resident
set grew at its peak over two timed calls (training steps, or ``predict``) above what it
was just before them:

1. a fresh interpreter imports the library and builds a throw-away copy of the network,
   and runs two calls on the full batch (kernels load, PyTorch's lazy start-up runs), then
   drops it;
2. it builds the network, the optimizer and the batch, resets the kernel's high-water mark
   (``/proc/self/clear_refs``, 5) and reads ``VmRSS``;
3. it runs two calls (the first allocates the Adam state) and reads ``VmHWM``.

Both sides run with ``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so that glibc returns large
freed arrays to the system instead of keeping them on the heap, where step 1's would be
reused in step 3 unseen.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys

MMAP_THRESHOLD = 128 * 1024


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _batch(entry, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((entry.batch, *entry.input_shape), dtype=np.float32)
    return x, rng.integers(0, 10, entry.batch)


def _fastnn_call(name: str, x, t):
    from ..optim import Adam
    from . import zoo

    entry = zoo.get(name)
    model = entry.build(seed=0)
    if entry.kind == "predict":
        return lambda: model.predict(x)
    optimizer = Adam(1e-3)
    return lambda: model.train_step(x, t, optimizer)


def _torch_call(name: str, x, t):
    from . import torch_models, zoo

    entry = zoo.get(name)
    threads = os.cpu_count() or 1
    if entry.kind == "predict":
        return torch_models.TorchPredict(name, x, threads)
    return torch_models.TorchStep(name, x, t, threads)


def measure_here(side: str, name: str) -> float:
    """MiB the resident set grows by over two calls, in this (fresh) process."""
    from . import zoo

    if side not in ("fastnn", "torch"):
        raise ValueError(f"side must be 'fastnn' or 'torch', got {side!r}")
    entry = zoo.get(name)
    make = _fastnn_call if side == "fastnn" else _torch_call
    x, t = _batch(entry, seed=1)
    warm = make(name, x, t)
    warm()
    warm()
    del warm, x, t
    gc.collect()
    x, t = _batch(entry)
    call = make(name, x, t)
    gc.collect()
    reset = _reset_peak()
    before = _status_kib("VmRSS") if reset else _status_kib("VmHWM")
    call()
    call()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        raise RuntimeError("no /proc/self/status on this system")
    return (peak - before) / 1024


def measure(side: str, name: str, timeout: float = 300) -> float | None:
    """:func:`measure_here` in a fresh interpreter; None if it failed."""
    # the child imports this very fastnn, wherever the interpreter would find another
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD), PYTHONPATH=path)
    result = subprocess.run(
        [sys.executable, "-m", "fastnn.bench.memory", side, name],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if result.returncode != 0:
        return None
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


if __name__ == "__main__":
    print(f"{measure_here(sys.argv[1], sys.argv[2]):.2f}")
