"""Compile the kernels ahead of time: ``fastnn warmup`` and :func:`warmup`.

The first process on a machine compiles every kernel it calls (tens of seconds on a
small machine; see "Start-up with an empty cache" in docs/performance.md) and keeps them
in the on-disk kernel cache. Run ``fastnn warmup`` once where that wait should not fall
on a user: in a container build, after ``pip install``, before a benchmark.

By default it compiles what the built-in networks (:data:`fastnn.models.MODELS`) and
:data:`LAYER_NETS` (one network per remaining layer kind: strided convolutions, average
pooling, BatchNorm, Dropout, sigmoid, tanh, leaky ReLU, mean squared error, global average
pooling, L2 pooling, sigmoid cross-entropy) call in a training step with Adam and in inference, at
batch 1 and batch 100 (small batches run the serial build of a kernel, large ones its
parallel build), in float32. float64 (the
dtype of gradient checks) is left out by default because it doubles the time; add it
with ``--dtype float64``. Other optimizers' kernels compile at their first step.

The kernels to compile are found by running each workload's Python with the kernels
recorded instead of run (:func:`fastnn._precompile.record`), and compiled in this and
``workers - 1`` other processes at once (:func:`fastnn._precompile.compile_items`).
"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np

from . import _precompile
from ._kernel_cache import cache_location
from .layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    LPPool2D,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from .losses import MeanSquaredError, SigmoidCrossEntropy
from .model import Sequential
from .models import MODELS
from .optim import Adam

#: Inputs of every warm-up network: MNIST-sized images.
INPUT_SHAPE = (1, 28, 28)
#: Batch sizes warmed up by default: 1 (serial kernel builds) and 100 (parallel builds).
BATCH_SIZES = (1, 100)


def strided_tanh_avgpool_bn(seed=None, backend="numba", dtype="float32") -> Sequential:
    """Conv(1->16, 5x5, stride 2) -> BatchNorm -> Tanh -> AvgPool 2x2 -> Flatten -> Dense(576->10)."""
    layers = [
        Conv2D(1, 16, 5, stride=2, pad=0),
        BatchNorm(16),
        Tanh(),
        AvgPool2D(2),
        Flatten(),
        Dense(576, 10),
    ]
    return Sequential(layers, backend=backend, dtype=dtype, seed=seed)


def sigmoid_leaky_dropout(seed=None, backend="numba", dtype="float32") -> Sequential:
    """Conv(1->8, 3x3, stride 3, pad 1) -> LeakyReLU -> MaxPool 2x2 stride 1 -> Flatten ->
    Dense(648->32) -> BatchNorm -> Sigmoid -> Dropout -> Dense(32->10), mean squared error."""
    layers = [
        Conv2D(1, 8, 3, stride=3, pad=1),
        LeakyReLU(),
        MaxPool2D(2, stride=1),
        Flatten(),
        Dense(8 * 9 * 9, 32),
        BatchNorm(32),
        Sigmoid(),
        Dropout(0.5),
        Dense(32, 10),
    ]
    return Sequential(layers, loss=MeanSquaredError(), backend=backend, dtype=dtype, seed=seed)


def conv1x1_relu(seed=None, backend="numba", dtype="float32") -> Sequential:
    """Conv(1->8, 3x3, pad 1) -> ReLU -> Conv(8->16, 1x1) -> ReLU -> MaxPool 2x2 -> Flatten
    -> Dense(3136->10)."""
    layers = [
        Conv2D(1, 8, 3, pad=1),
        ReLU(),
        Conv2D(8, 16, 1),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(16 * 14 * 14, 10),
    ]
    return Sequential(layers, backend=backend, dtype=dtype, seed=seed)


def global_pool_multilabel(seed=None, backend="numba", dtype="float32") -> Sequential:
    """Conv(1->8, 3x3) -> ReLU -> L2 pooling 2x2 -> GlobalAvgPool2D -> Dense(8->5), sigmoid
    cross-entropy (multi-label targets)."""
    layers = [Conv2D(1, 8, 3), ReLU(), LPPool2D(2), GlobalAvgPool2D(), Dense(8, 5)]
    return Sequential(layers, loss=SigmoidCrossEntropy(), backend=backend, dtype=dtype, seed=seed)


#: Networks that, with MODELS, use every layer kind (all take INPUT_SHAPE images).
LAYER_NETS = {
    "strided_tanh_avgpool_bn": strided_tanh_avgpool_bn,
    "sigmoid_leaky_dropout": sigmoid_leaky_dropout,
    "conv1x1_relu": conv1x1_relu,
    "global_pool_multilabel": global_pool_multilabel,
}


def networks() -> dict:
    """Every network ``warmup`` knows by name: the built-in ones and LAYER_NETS."""
    return {**MODELS, **LAYER_NETS}


def _workload(model: Sequential, batch: int, inference: bool):
    """A function running one training step (Adam) and, with ``inference``, one
    prediction of ``model`` on a random batch, on copies (the model is left as it is)."""
    rng = np.random.default_rng(0)
    x = rng.random((batch, *INPUT_SHAPE)).astype(model.dtype)
    classes = model.output_shape(INPUT_SHAPE)[-1]
    t = rng.integers(0, classes, batch)
    if isinstance(model.loss_fn, MeanSquaredError):
        t = np.eye(classes, dtype=model.dtype)[t]
    if isinstance(model.loss_fn, SigmoidCrossEntropy):
        t = rng.integers(0, 2, (batch, classes))

    def run():
        twin = copy.deepcopy(model)
        twin._compiled_ahead = True
        optimizer = Adam(1e-3)
        # train_step's calls, without its NaN checks: a recorded kernel's output is garbage
        twin.prepare_input(x)
        twin.loss(x, t, train=True)
        twin.backward(input_grad=False)
        twin.ops.all_finite(twin.flat_grads)
        optimizer.step(twin)
        if inference:
            twin.predict(x, batch_size=batch)

    return run


def kernels_for(names=None, dtypes=("float32",), batch_sizes=BATCH_SIZES, inference: bool = True) -> list:
    """The kernel compilations (:class:`fastnn._precompile.Item`) the named networks need."""
    known = networks()
    names = list(known) if not names else list(names)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"warmup: unknown network(s) {unknown}; known: {sorted(known)}")
    items, seen = [], set()
    for name in names:
        for dtype in dtypes:
            model = known[name](seed=0, dtype=str(np.dtype(dtype)))
            for batch in batch_sizes:
                for item in _precompile.record(_workload(model, int(batch), inference)):
                    if item not in seen:
                        seen.add(item)
                        items.append(item)
    return items


def warmup(
    models=None,
    dtypes=("float32",),
    batch_sizes=BATCH_SIZES,
    workers: int | None = None,
    inference: bool = True,
    verbose: bool = True,
    file=None,
) -> dict:
    """Compile into the kernel cache what the named networks (default: all of
    :func:`networks`) call in training and inference, in ``workers`` processes
    (default: one per core). Returns {"kernels": all needed, "compiled": how many were
    not in the cache yet, "seconds": wall time, "workers", "cache": the cache folder,
    "items": labels of the compiled ones}; with ``verbose`` it also prints a summary.
    """
    stream = sys.stderr if file is None else file
    started = time.perf_counter()
    items = kernels_for(models, dtypes, batch_sizes, inference)
    todo = _precompile.missing(items)
    result = _precompile.compile_items(todo, workers) if todo else {"workers": 0}
    summary = {
        "kernels": len(items),
        "compiled": len(todo),
        "seconds": time.perf_counter() - started,
        "workers": result["workers"],
        "cache": cache_location(todo[0].dispatcher() if todo else None),
        "items": [item.label() for item in todo],
    }
    if verbose:
        if todo:
            print(
                f"fastnn warmup: compiled {len(todo)} of {len(items)} kernel builds "
                f"in {summary['seconds']:.1f} s with {summary['workers']} process(es), "
                f"cached in {summary['cache']}",
                file=stream,
            )
            for label in sorted(set(summary["items"])):
                print(f"  {label}", file=stream)
        else:
            print(
                f"fastnn warmup: all {len(items)} kernel builds were already cached "
                f"({summary['seconds']:.1f} s)",
                file=stream,
            )
    return summary


__all__ = ["warmup", "kernels_for", "networks", "LAYER_NETS", "BATCH_SIZES"]
