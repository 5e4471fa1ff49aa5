"""Activation ops: the Numba backend against the NumPy reference, and both against the math.

Every activation, forward and backward, is compared on random shapes (hypothesis: odd
and size-1 dimensions) and on a fixed grid that includes sizes above
PARALLEL_THRESHOLD, so both the serial and the parallel build of each kernel run; then
closed forms, extremes, NaN propagation, finite differences and input layouts.
(The serial/parallel, byte-order and error tables shared with the affine and loss ops
are in test_op_contracts.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from op_helpers import (
    ACTIVATIONS,
    BACKENDS,
    BIG,
    DTYPES,
    GRID_SHAPES,
    NUMBA,
    NUMPY,
    activation,
    assert_array,
    assert_close,
    dtypes,
    hyp,
    numeric_gradient,
    random,
    same_on_layouts,
    seeds,
    shapes,
)


def check_activation(name, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x, dy = random(rng, shape, dtype), random(rng, shape, dtype)
    x0, dy0 = x.copy(), dy.copy()
    y_ref, dx_ref = activation(NUMPY, name, x, dy)
    y, dx = activation(NUMBA, name, x, dy)
    for out in (y, dx, y_ref, dx_ref):
        assert_array(out, dtype, shape)
    assert_close(y, y_ref, dtype)
    assert_close(dx, dx_ref, dtype, scale=10)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@hyp
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_activation_random_shapes(name, shape, dtype, seed):
    check_activation(name, shape, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GRID_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grid(name, shape, dtype):
    check_activation(name, shape, dtype, seed=1)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_default_alpha(ops, dtype):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=dtype)
    assert_close(ops.leaky_relu(x), np.where(x > 0, x, 0.01 * x), dtype)
    dy = np.full_like(x, 3.0)
    assert_close(ops.leaky_relu_backward(dy, x), np.where(x > 0, 3.0, 0.03), dtype)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_sigmoid_oracle_and_extremes(ops):
    x = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(ops.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-12, atol=1e-300)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        for dtype in DTYPES:
            extreme = np.array([-1e4, -200.0, 0.0, 200.0, 1e4], dtype=dtype)
            y = ops.sigmoid(extreme)
            assert y.dtype == dtype and np.all(np.isfinite(y))
            np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_propagate(ops, dtype):
    """The training loop stops on NaN, so no activation may swallow one."""
    x = np.array([np.nan, -np.inf, -1.0, 0.0, 1.0, np.inf], dtype=dtype)
    for name in ("identity", "sigmoid", "tanh", "relu", "leaky_relu"):
        y = getattr(ops, name)(x)
        assert np.isnan(y[0]), name
        np.testing.assert_array_equal(np.isnan(y[1:]), False, err_msg=name)
    np.testing.assert_array_equal(ops.relu(x)[1:], [0, 0, 0, 1, np.inf])
    assert np.isnan(ops.softmax(x[None, :3])).all()


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "leaky_relu", "softmax"])
def test_activation_backward_matches_finite_differences(ops, name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4)) * 2 + 0.1  # away from leaky_relu's kink at 0
    x[np.abs(x) < 0.05] = 0.3
    dy = rng.standard_normal((3, 4))
    _, dx = activation(ops, name, x, dy)
    f = lambda z: getattr(NUMPY, name)(z, **ACTIVATIONS[name][1])  # noqa: E731
    np.testing.assert_allclose(dx, numeric_gradient(f, x, dy), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (6,), (4, 1), (4, 9), (2, 3, 5), BIG], ids=str)
def test_softmax_properties(ops, dtype, shape):
    rng = np.random.default_rng(3)
    x = random(rng, shape, dtype, scale=5)
    y = ops.softmax(x)
    assert_array(y, dtype, shape)
    assert np.all(y >= 0)
    assert_close(y.sum(axis=-1), np.ones(shape[:-1]), dtype, scale=10)
    # softmax is invariant to a shift of each row, and its backward rows sum to 0.
    assert_close(ops.softmax(x + dtype(5)), y, dtype)
    dx = ops.softmax_backward(random(rng, shape, dtype), y)
    assert_close(dx.sum(axis=-1), np.zeros(shape[:-1]), dtype, scale=100)


def test_softmax_is_over_the_last_axis():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    expected = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    for ops in BACKENDS:
        np.testing.assert_allclose(ops.softmax(x), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layouts(name, dtype):
    rng = np.random.default_rng(14)
    x, dy = random(rng, (6, 5), dtype), random(rng, (6, 5), dtype)
    for ops in BACKENDS:
        same_on_layouts(lambda x, dy: activation(ops, name, x, dy), x, dy)


# ------------------------------------------------------------ add_relu (a residual sum and its ReLU)


def check_add_relu(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = random(rng, shape, dtype), random(rng, shape, dtype)
    a0, b0 = a.copy(), b.copy()
    want = NUMPY.relu(a + b)
    for ops in BACKENDS:
        y = ops.add_relu(a, b)
        assert_array(y, dtype, shape)
        np.testing.assert_array_equal(y, want)  # one add and one max: exact
        np.testing.assert_array_equal(a, a0)
        np.testing.assert_array_equal(b, b0)
        inplace = a.copy()
        assert ops.add_relu(inplace, b, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, want)


@hyp
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_add_relu_random_shapes(shape, dtype, seed):
    check_add_relu(shape, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_relu_big_runs_the_parallel_build(dtype):
    check_add_relu(BIG, dtype, seed=3)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_add_relu_keeps_nan_and_refuses_mismatches(ops):
    a = np.array([np.nan, -np.inf, -1.0, 0.5, np.inf])
    y = ops.add_relu(a, np.ones(5))
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], [0, 0, 1.5, np.inf])
    with pytest.raises(ValueError, match=r"add_relu: expected b of a's shape \(5,\), got \(4,\)"):
        ops.add_relu(a, np.ones(4))
    with pytest.raises(TypeError, match="add_relu"):
        ops.add_relu(a, np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"add_relu: expected out of dtype float64 and shape \(5,\)"):
        ops.add_relu(a, np.ones(5), out=np.empty(5, np.float32))
    with pytest.raises(ValueError, match="add_relu: out must be a writeable C-contiguous array"):
        ops.add_relu(a, np.ones(5), out=np.empty(10)[::2])
