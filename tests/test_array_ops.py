"""The blocks' whole-array ops on both backends: ``add``, ``concat_channels``, ``channel_slice``.

Each is a sum or a copy, so the two backends must agree bit for bit, on any shape (odd
sizes, rows longer than a kernel's piece), in both dtypes, in the serial and the parallel
builds (tiny and large arrays), and must refuse bad arguments by name.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.backends import get_ops

NUMBA, NUMPY = get_ops("numba"), get_ops("numpy")
BACKENDS = (NUMPY, NUMBA)
DTYPES = (np.float32, np.float64)

hyp = settings(max_examples=40, deadline=None)
#: (N, C, H, W) and (N, D) shapes, the last axes sometimes longer than a piece (4096 values).
tails = st.one_of(
    st.tuples(), st.tuples(st.integers(1, 9), st.integers(1, 9)), st.tuples(st.integers(60, 90))
)


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_fresh(y, dtype, shape):
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == tuple(shape)
    assert y.flags.c_contiguous and y.flags.writeable


@hyp
@given(
    N=st.integers(1, 5),
    C=st.integers(1, 70),
    tail=tails,
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 999),
)
def test_add_is_numpys_sum_in_place_or_not(N, C, tail, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (N, C, *tail)
    a, b = random(rng, shape, dtype), random(rng, shape, dtype)
    a0 = a.copy()
    for ops in BACKENDS:
        y = ops.add(a, b)
        assert_fresh(y, dtype, shape)
        np.testing.assert_array_equal(y, a0 + b)
        np.testing.assert_array_equal(a, a0)
        inplace = a.copy()
        assert ops.add(inplace, b, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, a0 + b)


@hyp
@given(
    N=st.integers(1, 5),
    widths=st.lists(st.integers(1, 70), min_size=1, max_size=5),
    tail=tails,
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 999),
)
def test_concat_channels_is_numpys_concatenate(N, widths, tail, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = [random(rng, (N, c, *tail), dtype) for c in widths]
    want = np.concatenate(arrays, axis=1)
    for ops in BACKENDS:
        y = ops.concat_channels(*arrays)
        assert_fresh(y, dtype, want.shape)
        np.testing.assert_array_equal(y, want)


@hyp
@given(N=st.integers(1, 5), C=st.integers(1, 70), tail=tails, dtype=st.sampled_from(DTYPES), data=st.data())
def test_channel_slice_is_a_contiguous_copy_of_the_channels(N, C, tail, dtype, data):
    start = data.draw(st.integers(0, C))
    stop = data.draw(st.integers(start, C))
    x = random(np.random.default_rng(C), (N, C, *tail), dtype)
    for ops in BACKENDS:
        y = ops.channel_slice(x, start, stop)
        assert_fresh(y, dtype, (N, stop - start, *tail))
        np.testing.assert_array_equal(y, x[:, start:stop])
        assert not np.may_share_memory(y, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_big_arrays_run_the_parallel_builds_and_split_rows_into_pieces(dtype):
    rng = np.random.default_rng(1)
    parts = [random(rng, (3, c, 33, 31), dtype) for c in (7, 1, 12)]  # rows of 7,161 to 12,276 values
    joined = NUMBA.concat_channels(*parts)
    np.testing.assert_array_equal(joined, np.concatenate(parts, axis=1))
    np.testing.assert_array_equal(NUMBA.channel_slice(joined, 7, 8), parts[1])
    np.testing.assert_array_equal(NUMBA.add(joined, joined), joined * 2)


def test_non_contiguous_and_non_native_inputs_give_the_same_numbers():
    rng = np.random.default_rng(2)
    x = random(rng, (4, 6, 5, 3), np.float64)
    strided = x[:, :, ::2]
    swapped = x.astype(">f8")
    for ops in BACKENDS:
        np.testing.assert_array_equal(ops.channel_slice(strided, 1, 4), strided[:, 1:4])
        reversed_w = x[:, :, :, ::-1]
        np.testing.assert_array_equal(ops.concat_channels(swapped, reversed_w)[:, 6:], reversed_w)
        np.testing.assert_array_equal(ops.concat_channels(swapped, x)[:, :6], x)
        np.testing.assert_array_equal(ops.add(swapped, x), 2 * x)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_bad_arguments_are_refused_by_name(ops):
    a = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"add: expected b of a's shape \(2, 3, 4\), got \(2, 3\)"):
        ops.add(a, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="add"):
        ops.add(a, a.astype(np.float32))
    with pytest.raises(ValueError, match=r"concat_channels: arrays\[1\] has shape \(2, 3, 5\) but"):
        ops.concat_channels(a, np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="concat_channels: expected at least one array"):
        ops.concat_channels()
    with pytest.raises(TypeError, match=r"concat_channels: arrays\[1\] has dtype float32"):
        ops.concat_channels(a, a.astype(np.float32))
    with pytest.raises(ValueError, match=r"channel_slice: expected integers 0 <= start <= stop <= 3"):
        ops.channel_slice(a, 2, 4)
    with pytest.raises(ValueError, match="channel_slice: expected x with 2 or more dimensions"):
        ops.channel_slice(np.zeros(3), 0, 1)
