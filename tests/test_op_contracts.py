"""Contracts the affine, activation and loss ops keep together, each checked by one table
over all three families: both builds (serial and parallel) of every kernel agree and
the ops pick the build by size; inputs of any layout or byte order give the same
results; bad dtypes and shapes raise TypeError and ValueError.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn._config import ParallelKernel
from fastnn.kernels import activations, affine, losses, tuning

from op_helpers import (
    ACTIVATIONS,
    BACKENDS,
    BIG,
    DTYPES,
    NUMBA,
    NUMPY,
    activation,
    assert_close,
    onehot,
    random,
    same_on_layouts,
)


def kernel_cases(rng, dtype):
    """kernel -> (inputs, outputs to allocate) for a direct call of each build."""
    n, c, m = 37, 130, 70  # m: more than one of affine's COLUMN_BLOCKs
    assert m > tuning.COLUMN_BLOCK
    x = random(rng, (n * c,), dtype)
    dy = random(rng, (n * c,), dtype)
    rows, drows = x.reshape(n, c), dy.reshape(n, c)
    probs = NUMPY.softmax(rows)
    labels = rng.integers(0, c, n)
    hot = onehot(labels, c, dtype)
    W = random(rng, (c, m), dtype)
    dyw = random(rng, (n, m), dtype)
    alpha, scale = dtype(0.2), dtype(1 / n)
    out = lambda *shape: np.empty(shape, dtype)  # noqa: E731
    flat = lambda: out(n * c)  # noqa: E731
    return {
        activations.heaviside_forward: ((x,), [flat()]),
        activations.sigmoid_forward: ((x,), [flat()]),
        activations.sigmoid_backward: ((dy, NUMPY.sigmoid(x)), [flat()]),
        activations.tanh_forward: ((x,), [flat()]),
        activations.tanh_backward: ((dy, np.tanh(x)), [flat()]),
        activations.relu_forward: ((x,), [flat()]),
        activations.relu_backward: ((dy, x), [flat()]),
        activations.add_relu_forward: ((x, dy), [flat()]),
        activations.leaky_relu_forward: ((x, alpha), [flat()]),
        activations.leaky_relu_backward: ((dy, x, alpha), [flat()]),
        activations.softmax_forward: ((rows,), [out(n, c)]),
        activations.softmax_backward: ((drows, probs), [out(n, c)]),
        affine.affine_forward: (
            (rows, W, W[0], activations.ACT_TANH, dtype(0)),
            [out(tuning.GEMM_PARTS - 1, n, m), out(n, m)],
        ),
        affine.affine_forward_rectified: (
            (rows, W, W[0], activations.ACT_LEAKY_RELU, dtype(0.1)),
            [out(tuning.GEMM_PARTS - 1, n, m), out(n, m)],
        ),
        affine.affine_backward: (
            (dyw, rows, W, dyw, activations.ACT_LEAKY_RELU, dtype(0.1), True, True, True),
            [out(n, m), out(n, c), out(c, m), out(m)],
        ),
        losses.softmax_cross_entropy_indices: ((rows, labels), [out(n, c), out(n)]),
        losses.softmax_cross_entropy_dense: ((rows, hot), [out(n, c), out(n)]),
        losses.softmax_cross_entropy_backward_indices: ((probs, labels, scale), [out(n, c)]),
        losses.softmax_cross_entropy_backward_dense: ((probs, hot, scale), [out(n, c)]),
        losses.sigmoid_cross_entropy: ((rows, hot), [out(n, c), out(n)]),
        losses.squared_error_blocks: ((x, dy), [out(-(-x.size // tuning.SUM_BLOCK))]),
        losses.mse_backward: ((x, dy, scale), [flat()]),
    }


def test_every_dense_kernel_has_a_serial_parallel_case():
    listed = set(kernel_cases(np.random.default_rng(0), np.float64))
    for module in (activations, affine, losses):
        for name, kernel in vars(module).items():
            if isinstance(kernel, ParallelKernel):
                assert kernel in listed, f"{module.__name__}.{name} has no case"


@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_and_parallel_builds_agree(dtype):
    for kernel, (inputs, outputs) in kernel_cases(np.random.default_rng(12), dtype).items():
        kept = [a.copy() for a in inputs if isinstance(a, np.ndarray)]
        serial = [np.full_like(o, np.nan) for o in outputs]
        parallel = [np.full_like(o, np.nan) for o in outputs]
        kernel.serial(*inputs, *serial)
        kernel.parallel(*inputs, *parallel)
        for s, p in zip(serial, parallel):
            assert not np.isnan(s).any(), f"{kernel.__name__} left outputs unwritten"
            assert_close(p, s, dtype, scale=10)
        for before, after in zip(kept, [a for a in inputs if isinstance(a, np.ndarray)]):
            np.testing.assert_array_equal(before, after)


@pytest.fixture
def spy_builds(monkeypatch):
    """Record which build (serial/parallel) of each kernel the ops call."""
    calls = []
    for module in (activations, affine, losses):
        for kernel in vars(module).values():
            if isinstance(kernel, ParallelKernel):
                for build in ("serial", "parallel"):
                    real = getattr(kernel, build)

                    def spy(*args, _real=real, _name=f"{kernel.__name__}.{build}"):
                        calls.append(_name)
                        return _real(*args)

                    monkeypatch.setattr(kernel, build, spy)
    return calls


@pytest.mark.parametrize("shape, build", [((3, 5), "serial"), (BIG, "parallel")], ids=str)
def test_ops_pick_the_build_by_size(spy_builds, shape, build):
    x = random(np.random.default_rng(13), shape, np.float32)
    NUMBA.sigmoid(x)
    NUMBA.relu_backward(x, x)
    NUMBA.softmax(x)
    NUMBA.affine(x, x.T.copy(), x[:, 0].copy())
    NUMBA.softmax_cross_entropy(x, np.zeros(shape[0], np.int64))
    NUMBA.mse(x, x)
    assert len(spy_builds) == 6
    assert all(call.endswith("." + build) for call in spy_builds), spy_builds


# ------------------------------------------------- layouts and read-only data


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_and_loss_layouts(ops, dtype):
    rng = np.random.default_rng(15)
    x, W, b, dy = (random(rng, s, dtype) for s in [(6, 4), (4, 5), (5,), (6, 5)])
    same_on_layouts(ops.affine, x, W, b)
    same_on_layouts(ops.affine_backward, dy, x, W)
    t = rng.integers(0, 5, 6)
    same_on_layouts(ops.softmax_cross_entropy, dy, t)
    same_on_layouts(ops.softmax_cross_entropy, dy, onehot(t, 5, dtype))
    probs = NUMPY.softmax(dy)
    same_on_layouts(ops.softmax_cross_entropy_backward, probs, t)
    same_on_layouts(ops.softmax_cross_entropy_backward, probs, onehot(t, 5, dtype))
    same_on_layouts(ops.mse, x, x[::-1])
    same_on_layouts(ops.mse_backward, x, x[::-1])


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_big_endian_inputs(ops):
    rng = np.random.default_rng(16)
    x, W, b = (random(rng, s, np.float32) for s in [(6, 4), (4, 5), (5,)])
    big = lambda a: a.astype(a.dtype.newbyteorder(">"))  # noqa: E731
    for name in ACTIVATIONS:
        for got, expected in zip(activation(ops, name, big(x), big(x)), activation(ops, name, x, x)):
            assert_close(got, expected, np.float32)
    y = ops.affine(big(x), big(W), big(b))
    assert y.dtype.newbyteorder("=") == np.float32
    assert_close(y, ops.affine(x, W, b), np.float32)
    assert ops.mse(big(x), big(x[::-1])) == pytest.approx(ops.mse(x, x[::-1]), rel=1e-6)


# ------------------------------------------------------------------ errors

F32, F64 = np.ones((2, 3), np.float32), np.ones((2, 3), np.float64)
W32, B32 = np.ones((3, 4), np.float32), np.ones(4, np.float32)
LABELS = np.zeros(2, np.int64)

TYPE_ERRORS = {
    "affine W": lambda ops: ops.affine(F32, W32.astype(np.float64), B32),
    "affine b": lambda ops: ops.affine(F32, W32, B32.astype(np.float64)),
    "affine_backward": lambda ops: ops.affine_backward(np.ones((2, 4)), F32, W32),
    "sigmoid_backward": lambda ops: ops.sigmoid_backward(F32, F64),
    "tanh_backward": lambda ops: ops.tanh_backward(F64, F32),
    "relu_backward": lambda ops: ops.relu_backward(F64, F32),
    "leaky_relu_backward": lambda ops: ops.leaky_relu_backward(F32, F64),
    "softmax_backward": lambda ops: ops.softmax_backward(F64, F32),
    "mse": lambda ops: ops.mse(F32, F64),
    "mse_backward": lambda ops: ops.mse_backward(F64, F32),
    "int input": lambda ops: ops.relu(np.ones(3, np.int64)),
    "float16 input": lambda ops: ops.sigmoid(np.ones(3, np.float16)),
    "list input": lambda ops: ops.tanh([1.0, 2.0]),
    "int logits": lambda ops: ops.softmax_cross_entropy(np.ones((2, 3), np.int32), LABELS),
    "int probs": lambda ops: ops.softmax_cross_entropy_backward(np.ones((2, 3), np.int32), LABELS),
}

VALUE_ERRORS = {
    "affine W rows": lambda ops: ops.affine(F64, np.ones((5, 4)), np.ones(4)),
    "affine b": lambda ops: ops.affine(F64, np.ones((3, 4)), np.ones(5)),
    "affine 1-D x": lambda ops: ops.affine(np.ones(3), np.ones((3, 4)), np.ones(4)),
    "affine_backward dy": lambda ops: ops.affine_backward(np.ones((2, 5)), F64, np.ones((3, 4))),
    "sigmoid_backward": lambda ops: ops.sigmoid_backward(np.ones((3, 2)), F64),
    "relu_backward": lambda ops: ops.relu_backward(np.ones(6), F64),
    "leaky_relu_backward": lambda ops: ops.leaky_relu_backward(np.ones((2, 1)), F64),
    "softmax_backward": lambda ops: ops.softmax_backward(np.ones((2, 4)), F64),
    "mse": lambda ops: ops.mse(F64, np.ones((3, 2))),
    "mse_backward": lambda ops: ops.mse_backward(F64, np.ones(6)),
    "ce 1-D logits": lambda ops: ops.softmax_cross_entropy(np.ones(3), np.zeros(3, np.int64)),
    "ce 3-D logits": lambda ops: ops.softmax_cross_entropy(np.ones((2, 3, 1)), LABELS),
    "ce label count": lambda ops: ops.softmax_cross_entropy(F64, np.zeros(3, np.int64)),
    "ce one-hot shape": lambda ops: ops.softmax_cross_entropy(F64, np.ones((2, 4))),
    "ce 3-D targets": lambda ops: ops.softmax_cross_entropy(F64, np.ones((2, 3, 1))),
    "ce no classes": lambda ops: ops.softmax_cross_entropy(np.ones((2, 0)), np.ones((2, 0))),
    "ce_backward label count": lambda ops: ops.softmax_cross_entropy_backward(F64, np.zeros(3, np.int64)),
    "ce_backward one-hot shape": lambda ops: ops.softmax_cross_entropy_backward(F64, np.ones((2, 2))),
    "ce_backward 1-D probs": lambda ops: ops.softmax_cross_entropy_backward(
        np.ones(3), np.zeros(3, np.int64)
    ),
}


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("case", sorted(TYPE_ERRORS))
def test_bad_dtypes_raise_type_error(ops, case):
    with pytest.raises(TypeError):
        TYPE_ERRORS[case](ops)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("case", sorted(VALUE_ERRORS))
def test_wrong_shapes_raise_value_error(ops, case):
    with pytest.raises(ValueError):
        VALUE_ERRORS[case](ops)
