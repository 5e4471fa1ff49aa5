"""The register transposition of the direct backward pass against NumPy's transpose.

:func:`fastnn.kernels._simd_transpose.vtranspose_block` moves a lanes x lanes block;
``_grad_rows`` (dy (F, P) to pixel-major rows (P, Fp), with an optional ReLU mask and db)
takes whole blocks through it and the remaining rows and columns one element at a time.
Both must give exactly the values of a plain transpose, block edges included.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastnn.kernels._simd import VECTOR_BYTES
from fastnn.kernels._simd_transpose import vtranspose_block
from fastnn.kernels.conv.direct_backward import _grad_rows
from fastnn.kernels.conv.modes import DY_AS_GIVEN, DY_RELU_MASKED

DTYPES = [np.float32, np.float64]


@numba.njit
def _block(src, mask, masked, s0, sstride, dst, d0, dstride):
    vtranspose_block(src, mask, masked, s0, sstride, dst, d0, dstride)


def _lanes(dtype):
    return VECTOR_BYTES // np.dtype(dtype).itemsize


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
def test_one_block_at_an_offset_with_strides(dtype, masked):
    L = _lanes(dtype)
    rng = np.random.default_rng(L + masked)
    sstride, dstride, s0, d0 = L + 5, L + 3, 7, 2
    src = rng.standard_normal(s0 + sstride * L + L).astype(dtype)
    mask = rng.standard_normal(src.size).astype(dtype)
    mask[::13] = np.nan  # an unordered compare keeps nothing
    dst = np.full(d0 + dstride * L + L, 99.0, dtype)
    _block(src, mask, masked, s0, sstride, dst, d0, dstride)
    block = np.lib.stride_tricks.as_strided(src[s0:], (L, L), (sstride * src.itemsize, src.itemsize))
    keep = np.lib.stride_tricks.as_strided(mask[s0:], (L, L), (sstride * src.itemsize, src.itemsize))
    expected = np.where(keep > 0, block, 0) if masked else block
    got = np.lib.stride_tricks.as_strided(dst[d0:], (L, L), (dstride * dst.itemsize, dst.itemsize))
    np.testing.assert_array_equal(got, expected.T)
    untouched = np.ones(dst.size, bool)
    for j in range(L):
        untouched[d0 + j * dstride : d0 + j * dstride + L] = False
    assert (dst[untouched] == 99.0).all()  # nothing written between or around the rows


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [DY_AS_GIVEN, DY_RELU_MASKED])
@pytest.mark.parametrize("F,P", [(32, 256), (48, 49), (40, 196), (33, 17), (64, 15), (16, 16), (7, 100)])
def test_grad_rows_is_the_masked_transpose(dtype, mode, F, P):
    L = _lanes(dtype)
    rng = np.random.default_rng(F * 1000 + P)
    Fp = (F + 2 * L - 1) // (2 * L) * (2 * L)
    dy = rng.standard_normal((F, P)).astype(dtype)
    mask = rng.standard_normal((F, P)).astype(dtype)
    mask.reshape(-1)[::11] = np.nan
    g = np.where(mask > 0, dy, 0).astype(dtype) if mode == DY_RELU_MASKED else dy
    dst = np.full(P * Fp, np.nan, dtype)
    sums = np.empty(Fp, dtype)
    db = np.full(F, 0.5, dtype)
    empty_i = np.empty(0, np.int64)
    empty_f = np.empty(0, dtype)
    _grad_rows(dy.reshape(-1), mask.reshape(-1), empty_i, empty_f, mode, F, P, Fp, dst, sums, db)
    rows = dst.reshape(P, Fp)
    np.testing.assert_array_equal(rows[:, :F], g.T)
    assert (rows[:, F:] == 0).all()
    expected_db = np.full(F, 0.5, dtype)
    for f in range(F):  # in pixel order, as the kernel adds
        s = dtype(0)
        for p in range(P):
            s = dtype(s + g[f, p])
        expected_db[f] = dtype(expected_db[f] + s)
    np.testing.assert_allclose(db, expected_db, rtol=1e-6 if dtype == np.float32 else 1e-12)
