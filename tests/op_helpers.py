"""Helpers the op tests share (test_affine_ops, test_activation_ops, test_loss_ops,
test_op_contracts): backends, dtypes, shapes, random data with exact zeros, tolerances,
oracles and the layouts an op must accept."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from fastnn._config import PARALLEL_THRESHOLD
from fastnn.backends import get_ops

NUMPY = get_ops("numpy")
NUMBA = get_ops("numba")
BACKENDS = [NUMPY, NUMBA]
DTYPES = [np.float32, np.float64]

# Shapes for the fixed grid: size-1 and odd dims (serial) and 300x300 (parallel).
BIG = (300, 300)
GRID_SHAPES = [(1,), (7,), (1, 1), (3, 5), (2, 3, 4), (5, 1, 3), BIG]
assert math.prod(BIG) >= PARALLEL_THRESHOLD > 7 * 5 * 3

# Activations: name -> (what the backward takes besides dy, keyword arguments).
ACTIVATIONS = {
    "identity": ("x", {}),
    "heaviside": ("x", {}),
    "sigmoid": ("y", {}),
    "tanh": ("y", {}),
    "relu": ("x", {}),
    "leaky_relu": ("x", {"alpha": 0.2}),
    "softmax": ("y", {}),
}

hyp = settings(max_examples=30, deadline=None)
shapes = st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple)
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


def tolerance(dtype) -> dict:
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-10, atol=1e-12)


def assert_close(actual, expected, dtype, scale=1.0):
    """Compare with the dtype's tolerance; ``scale`` widens atol for values of that size."""
    tol = tolerance(dtype)
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def assert_array(actual, dtype, shape):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == dtype, f"got {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == tuple(shape)


def random(rng, shape, dtype, scale=3.0):
    """Normal values with about one in eight set to exactly 0 (the kink of relu/step)."""
    x = rng.standard_normal(shape) * scale
    x[rng.random(shape) < 0.125] = 0.0
    return x.astype(dtype)


def activation(ops, name, x, dy):
    """(y, dx) from ``ops``; the backward gets the reference's y, so both backends see equal inputs."""
    takes, kwargs = ACTIVATIONS[name]
    y = getattr(ops, name)(x, **kwargs)
    ref = x if takes == "x" else getattr(NUMPY, name)(x, **kwargs)
    dx = getattr(ops, name + "_backward")(dy, ref, **kwargs)
    return y, dx


def numeric_gradient(f, x, dy, h=1e-6):
    """d sum(dy * f(x)) / dx by central differences (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + h
        plus = np.sum(dy * f(x))
        x[i] = orig - h
        minus = np.sum(dy * f(x))
        x[i] = orig
        grad[i] = (plus - minus) / (2 * h)
    return grad


def onehot(t, classes, dtype):
    return np.eye(classes, dtype=dtype)[t]


def layouts(a):
    """Views equal to ``a`` that are not plain C-contiguous arrays."""
    every_other = tuple(slice(None, None, 2) for _ in a.shape)
    wide = np.zeros(tuple(2 * size for size in a.shape), a.dtype)
    wide[every_other] = a
    readonly = a.copy()
    readonly.setflags(write=False)
    cases = {
        "strided": wide[every_other],
        "reversed": np.ascontiguousarray(a[::-1])[::-1],
        "readonly": readonly,
    }
    if a.ndim == 2:
        cases["transposed"] = np.ascontiguousarray(a.T).T
    return cases


def same_on_layouts(ops_call, *arrays):
    """ops_call(*views) equals ops_call(*plain copies), for each kind of view of the arrays."""
    expected = ops_call(*[np.array(a) for a in arrays])
    expected = expected if isinstance(expected, tuple) else (expected,)
    views = [layouts(a) for a in arrays]
    for kind in views[0]:
        args = [v.get(kind, np.array(a)) for v, a in zip(views, arrays)]
        for arg, plain in zip(args, arrays):
            np.testing.assert_array_equal(arg, plain)
        got = ops_call(*args)
        for g, e in zip(got if isinstance(got, tuple) else (got,), expected):
            assert type(g) is type(e)
            if isinstance(e, np.ndarray):
                assert g.dtype == e.dtype and g.shape == e.shape, kind
            assert_close(g, e, arrays[0].dtype, scale=10)
