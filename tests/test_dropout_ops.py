"""ops.dropout: the Numba kernel against the NumPy reference, bit for bit, and the mask's
properties (the rule is in fastnn.kernels.dropout)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _config
from fastnn.backends import get_ops
from fastnn.kernels.dropout import dropout_forward

NB, REF = get_ops("numba"), get_ops("numpy")
DTYPES = [np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple),
    dtype=st.sampled_from(DTYPES),
    p=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 0.999]),
    key=st.integers(0, 2**64 - 1),
)
def test_the_kernel_is_the_reference(shape, dtype, p, key):
    x = np.random.default_rng(key % 2**32).standard_normal(shape).astype(dtype)
    y, mask = NB.dropout(x, p, key)
    y_ref, mask_ref = REF.dropout(x, p, key)
    assert y.dtype == mask.dtype == dtype and y.shape == mask.shape == shape
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(y, y_ref)
    scale = dtype(1 / (1 - p))
    assert set(np.unique(mask)) <= {dtype(0), scale}
    np.testing.assert_array_equal(y, x * mask)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_serial_and_parallel_builds_and_thread_counts_agree(dtype):
    x = np.random.default_rng(0).standard_normal(100_003).astype(dtype)
    p = 3_000_000 / 2**24
    args = (x, np.uint64(2**63 + 7), np.uint64(3_000_000), dtype(1 / (1 - p)))
    outs = []
    for build in (dropout_forward.serial, dropout_forward.parallel):
        y, m = np.full_like(x, np.nan), np.full_like(x, np.nan)
        build(*args, y, m)
        outs.append((y, m))
    before = _config.get_num_threads()
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            _config.set_num_threads(threads)
            outs.append(NB.dropout(x, p, 2**63 + 7))
    finally:
        _config.set_num_threads(before)
    for y, m in outs[1:]:
        np.testing.assert_array_equal(y, outs[0][0])
        np.testing.assert_array_equal(m, outs[0][1])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_the_mask_keeps_one_minus_p_with_no_pattern(p):
    x = np.ones((400, 500), np.float32)
    fractions = []
    for key in range(5):
        mask = NB.dropout(x, p, key)[1] != 0
        fractions.append(mask.mean())
        # rows, columns and neighbours are independent enough: each slice keeps about 1 - p
        assert abs(mask.mean(axis=0).mean() - (1 - p)) < 0.01
        assert np.abs(mask.mean(axis=1) - (1 - p)).max() < 0.12  # 500 draws a row: 5 sigma
        both = (mask[:, 1:] & mask[:, :-1]).mean()
        assert abs(both - (1 - p) ** 2) < 0.01
    assert abs(np.mean(fractions) - (1 - p)) < 0.005
    masks = [NB.dropout(x, p, key)[1] for key in (1, 2)]
    assert 0.3 < np.mean(masks[0] == masks[1]) < 0.99  # another key, another mask


@pytest.mark.parametrize("ops", [NB, REF], ids=lambda o: o.name)
def test_bad_arguments_name_the_op(ops):
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="dropout: p must be"):
        ops.dropout(x, 1.0, 0)
    with pytest.raises(ValueError, match="dropout: key must be"):
        ops.dropout(x, 0.5, -1)
    with pytest.raises(TypeError, match="dropout: expected x with dtype float32 or float64, got dtype int64"):
        ops.dropout(np.ones(4, np.int64), 0.5, 0)
    with pytest.raises(TypeError, match="dropout: expected x to be a numpy array, got list"):
        ops.dropout([1.0, 2.0], 0.5, 0)
