"""The strided BLAS GEMM (fastnn.kernels.gemm) against NumPy's matmul."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.kernels.gemm import GEMM_BAD_STRIDES, check_gemm_status, gemm

DTYPES = [np.float32, np.float64]


@numba.njit
def _call(a, b, c, beta):
    return gemm(a, b, c, beta)


def _tolerance(dtype, k):
    return (1e-4 * max(1, k) ** 0.5, 1e-5) if dtype == np.float32 else (1e-11, 1e-12)


def _views(rng, dtype, rows, cols, kind):
    """A (rows, cols) operand laid out as ``kind``: contiguous, a block of a wider
    matrix's columns, or the transpose of such a block."""
    if kind == "contiguous":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if kind == "column block":
        big = rng.standard_normal((rows, cols + 7)).astype(dtype)
        return big[:, 3 : 3 + cols]
    big = rng.standard_normal((cols, rows + 5)).astype(dtype)  # transposed block
    return big[:, 2 : 2 + rows].T


KINDS = ["contiguous", "column block", "transposed block"]


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 33),
    k=st.integers(0, 40),
    n=st.integers(1, 33),
    kind_a=st.sampled_from(KINDS),
    kind_b=st.sampled_from(KINDS),
    beta=st.sampled_from([0.0, 1.0, 0.5]),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_gemm_matches_matmul_on_strided_operands(m, k, n, kind_a, kind_b, beta, dtype, seed):
    rng = np.random.default_rng(seed)
    a = _views(rng, dtype, m, k, kind_a)
    b = _views(rng, dtype, k, n, kind_b)
    wide = rng.standard_normal((m, n + 4)).astype(dtype)
    c = wide[:, 1 : 1 + n]  # the output is a column block too
    want = a.astype(np.float64) @ b.astype(np.float64) + beta * c.astype(np.float64)
    outside = (wide[:, :1].copy(), wide[:, 1 + n :].copy())
    a0, b0 = a.copy(), b.copy()
    assert _call(a, b, c, beta) == 0
    rtol, atol = _tolerance(dtype, k)
    np.testing.assert_allclose(c, want, rtol=rtol, atol=atol * max(1.0, np.abs(want).max()))
    np.testing.assert_array_equal(wide[:, :1], outside[0])  # nothing outside c written
    np.testing.assert_array_equal(wide[:, 1 + n :], outside[1])
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_with_zero_depth_scales_the_output(dtype):
    c = np.full((3, 4), np.nan, dtype)
    assert _call(np.ones((3, 0), dtype), np.ones((0, 4), dtype), c, 0.0) == 0
    np.testing.assert_array_equal(c, 0)  # beta = 0 overwrites, NaN included
    c = np.full((3, 4), 2, dtype)
    _call(np.ones((3, 0), dtype), np.ones((0, 4), dtype), c, 0.5)
    np.testing.assert_array_equal(c, 1)


def test_gemm_reports_operands_without_a_unit_stride():
    a = np.ones((4, 6))[::2, ::2]  # strided both ways
    c = np.zeros((2, 3))
    assert _call(a, np.ones((3, 3)), c, 0.0) == GEMM_BAD_STRIDES
    np.testing.assert_array_equal(c, 0)
    with pytest.raises(ValueError, match="gemm: an operand has no unit stride"):
        check_gemm_status(np.array([0, GEMM_BAD_STRIDES], dtype=np.int32))
    with pytest.raises(RuntimeError, match="gemm: the BLAS wrapper"):
        check_gemm_status(np.array([3], dtype=np.int32))
    check_gemm_status(np.zeros(2, dtype=np.int32))
