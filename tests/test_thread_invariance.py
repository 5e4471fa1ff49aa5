"""Elementwise kernels give bitwise the same results on 1 thread and on all threads.

They loop over fixed-size blocks, so the thread count cannot move an element from
a vectorised loop body into a scalar remainder (where fast-math FMA contraction may
round it differently).
"""

import numba
import numpy as np
import pytest

import fastnn as fnn
from fastnn import _config

SIZE = 100_003  # odd, several blocks, above the parallel threshold

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")


def on_threads(threads, fn):
    before = _config.get_num_threads()
    _config.set_num_threads(threads)
    try:
        return fn()
    finally:
        _config.set_num_threads(before)


def random(seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(SIZE).astype(dtype)


OPS = ["relu", "sigmoid", "tanh", "heaviside", "leaky_relu"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_activation_forward_and_backward(op, dtype):
    ops = fnn.get_ops("numba")
    x, dy = random(0, dtype), random(1, dtype)
    backward = getattr(ops, op + "_backward")

    def run():
        y = getattr(ops, op)(x)
        return y, backward(dy, y if op in ("sigmoid", "tanh") else x)

    one, many = on_threads(1, run), on_threads(2, run)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_optimizer_steps_over_several_iterations(name):
    ops = fnn.get_ops("numba")

    def run():
        params = random(2)
        optimizer = fnn.optim.get_optimizer(name, lr=0.01, weight_decay=0.01, l1=0.001)
        for step in range(5):
            optimizer.apply(ops, params, random(10 + step))
        return params, optimizer.state

    (p1, s1), (p2, s2) = on_threads(1, run), on_threads(2, run)
    np.testing.assert_array_equal(p1, p2)
    for key in s1:
        np.testing.assert_array_equal(s1[key], s2[key])


def test_sigmoid_cross_entropy_forward_and_backward():
    ops = fnn.get_ops("numba")
    y = random(5).reshape(-1, 1) * 10  # one output: binary targets (N,)
    t = np.random.default_rng(6).integers(0, 2, len(y))

    def run():
        loss, probs = ops.sigmoid_cross_entropy(y, t)
        return np.array(loss), probs, ops.sigmoid_cross_entropy_backward(probs, t)

    for a, b in zip(on_threads(1, run), on_threads(2, run)):
        np.testing.assert_array_equal(a, b)


def test_mse_backward():
    ops = fnn.get_ops("numba")
    y, t = random(3).reshape(-1, 1), random(4).reshape(-1, 1)
    run = lambda: ops.mse_backward(y, t)  # noqa: E731
    np.testing.assert_array_equal(on_threads(1, run), on_threads(2, run))
