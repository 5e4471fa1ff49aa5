"""Calls through a compiled helper's address (fastnn.kernels._native)."""

import numba
import numpy as np
import pytest
from numba import njit, prange

from fastnn.kernels._native import NativeFunction, call_native


@njit
def _scale_row(i, x, factor, out):
    for j in range(x.shape[1]):
        out[i, j] = x[i, j] * factor


@njit
def _row_sum(x, i):
    return x[i].sum()


@njit(parallel=True)
def _scale_rows(x, factor, out, helper):
    for i in prange(x.shape[0]):
        call_native(helper, (np.int64(i), x, factor, out))


def _handle(dtype):
    a2 = numba.types.Array(numba.from_dtype(np.dtype(dtype)), 2, "C")
    return NativeFunction(_scale_row, (numba.int64, a2, numba.from_dtype(np.dtype(dtype)), a2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_call_native_runs_the_helper(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 5)).astype(dtype)
    out = np.zeros_like(x)
    _scale_rows(x, dtype(3), out, _handle(dtype))
    np.testing.assert_array_equal(out, x * dtype(3))


def test_call_native_accepts_a_read_only_array():
    x = np.arange(12.0).reshape(3, 4)
    x.flags.writeable = False
    out = np.zeros((3, 4))
    _scale_rows(x, 2.0, out, _handle(np.float64))
    np.testing.assert_array_equal(out, x * 2)


def test_call_native_refuses_arguments_of_other_types():
    x = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(numba.core.errors.TypingError, match="call_native"):
        _scale_rows(x, np.float32(2), np.zeros_like(x), _handle(np.float64))


def test_native_function_must_return_none():
    a2 = numba.types.Array(numba.float64, 2, "C")
    with pytest.raises(TypeError, match="must return None"):
        NativeFunction(_row_sum, (a2, numba.int64)).compile()
