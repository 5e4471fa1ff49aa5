"""maxpool2d / avgpool2d and their backward passes: numba kernels against the NumPy
reference, and the reference against plain-loop oracles and numerical gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastnn.backends import get_ops
from fastnn.gradcheck import numerical_gradient as numerical_grad

REF = get_ops("numpy")
NB = get_ops("numba")
DTYPES = (np.float32, np.float64)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_shape(x_shape, size, stride, pad):
    (kh, kw) = _pair(size)
    (sh, sw) = _pair(size if stride is None else stride)
    (ph, pw) = _pair(pad)
    N, C, H, W = x_shape
    return N, C, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


def assert_close(actual, expected, dtype, name=""):
    assert actual.dtype == np.dtype(dtype), name
    assert actual.shape == expected.shape, name
    assert actual.flags.c_contiguous, name
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=name)


def loop_maxpool(x, size, stride, pad):
    """Oracle: -inf padding, first maximum in row-major window order wins."""
    (kh, kw), (ph, pw) = _pair(size), _pair(pad)
    (sh, sw) = _pair(size if stride is None else stride)
    shape = out_shape(x.shape, size, stride, pad)
    y = np.empty(shape, x.dtype)
    argmax = np.empty(shape, np.int64)
    H, W = x.shape[2:]
    for n, c, i, j in np.ndindex(*shape):
        best, at = -np.inf, -1
        for a in range(kh):
            for b in range(kw):
                h, w = i * sh + a - ph, j * sw + b - pw
                if 0 <= h < H and 0 <= w < W and (at < 0 or x[n, c, h, w] > best):
                    best, at = x[n, c, h, w], h * W + w
        y[n, c, i, j], argmax[n, c, i, j] = best, at
    return y, argmax


def loop_avgpool(x, size, stride, pad):
    (kh, kw), (ph, pw) = _pair(size), _pair(pad)
    (sh, sw) = _pair(size if stride is None else stride)
    shape = out_shape(x.shape, size, stride, pad)
    xp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
    xp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    y = np.empty(shape)
    for n, c, i, j in np.ndindex(*shape):
        y[n, c, i, j] = xp[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw].sum() / (kh * kw)
    return y


# (x_shape, size, stride, pad)
CASES = [
    ((2, 3, 8, 8), 2, None, 0),  # the usual 2x2/2
    ((1, 2, 7, 9), 2, None, 0),  # odd sizes: last row/column dropped
    ((2, 2, 7, 7), 3, 2, 1),  # overlapping, padded
    ((3, 1, 6, 5), 3, 1, 1),  # heavily overlapping
    ((1, 4, 9, 8), (3, 2), (1, 2), (1, 0)),  # rectangular everything
    ((2, 3, 5, 6), (2, 3), None, (1, 1)),
    ((1, 1, 1, 1), 1, None, 0),
    ((2, 2, 4, 4), 4, None, 0),  # one window covers the image
    ((4, 16, 20, 20), 2, None, 0),  # large enough for the parallel builds
    ((4, 16, 20, 18), 3, 2, 1),  # parallel, overlapping, padded
]


def _ids(case):
    return f"{'x'.join(map(str, case[0]))}_k{case[1]}_s{case[2]}_p{case[3]}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("x_shape,size,stride,pad", CASES, ids=[_ids(c) for c in CASES])
def test_maxpool_matches_reference(x_shape, size, stride, pad, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    y_ref, arg_ref = REF.maxpool2d(x, size, stride, pad)
    y, arg = NB.maxpool2d(x, size, stride, pad)
    assert_close(y, y_ref, dtype, "y")
    assert arg.dtype == np.int64 and arg.flags.c_contiguous
    np.testing.assert_array_equal(arg, arg_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx_ref = REF.maxpool2d_backward(dy, arg_ref, x_shape, size, stride, pad)
    dx = NB.maxpool2d_backward(dy, arg, x_shape, size, stride, pad)
    assert_close(dx, dx_ref, dtype, "dx")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("x_shape,size,stride,pad", CASES, ids=[_ids(c) for c in CASES])
def test_avgpool_matches_reference(x_shape, size, stride, pad, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    assert_close(NB.avgpool2d(x, size, stride, pad), REF.avgpool2d(x, size, stride, pad), dtype, "y")
    dy = rng.standard_normal(out_shape(x_shape, size, stride, pad)).astype(dtype)
    assert_close(
        NB.avgpool2d_backward(dy, x_shape, size, stride, pad),
        REF.avgpool2d_backward(dy, x_shape, size, stride, pad),
        dtype,
        "dx",
    )


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 8),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    default_stride=st.booleans(),
    ties=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_pool_random_shapes(N, C, H, W, kh, kw, sh, sw, ph, pw, default_stride, ties, dtype, seed):
    assume(ph < kh and pw < kw and kh <= H + 2 * ph and kw <= W + 2 * pw)
    stride = None if default_stride else (sh, sw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    if ties:
        x = np.round(x)  # many equal values: first maximum must win
    x = x.astype(dtype)
    y_loop, arg_loop = loop_maxpool(x, (kh, kw), stride, (ph, pw))
    for ops in (REF, NB):
        y, arg = ops.maxpool2d(x, (kh, kw), stride, (ph, pw))
        np.testing.assert_array_equal(y, y_loop)
        np.testing.assert_array_equal(arg, arg_loop)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = ops.maxpool2d_backward(dy, arg, x.shape, (kh, kw), stride, (ph, pw))
        assert_close(
            dx, REF.maxpool2d_backward(dy, arg_loop, x.shape, (kh, kw), stride, (ph, pw)), dtype, "max dx"
        )
        assert_close(
            ops.avgpool2d(x, (kh, kw), stride, (ph, pw)),
            loop_avgpool(x, (kh, kw), stride, (ph, pw)).astype(dtype),
            dtype,
            "avg y",
        )
        dx = ops.avgpool2d_backward(dy, x.shape, (kh, kw), stride, (ph, pw))
        assert_close(dx, REF.avgpool2d_backward(dy, x.shape, (kh, kw), stride, (ph, pw)), dtype, "avg dx")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_maxpool_ties_and_nan(backend):
    ops = get_ops(backend)
    x = np.zeros((1, 1, 4, 4), np.float32)
    y, arg = ops.maxpool2d(x, 2)
    np.testing.assert_array_equal(arg[0, 0], [[0, 2], [8, 10]])  # first of four equal values
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 0, 3] = -np.inf
    x[0, 0, 1, 3] = -np.inf
    x[0, 0, 0, 2] = -np.inf
    x[0, 0, 1, 2] = -np.inf
    y, arg = ops.maxpool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 5  # NaN propagates
    assert y[0, 0, 0, 1] == -np.inf and arg[0, 0, 0, 1] == 2  # an all -inf window
    y, arg = ops.maxpool2d(-np.ones((1, 1, 2, 2)), 2, 1, 1)  # padding never wins
    assert (y == -1).all()
    np.testing.assert_array_equal(arg[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_windows_of_minus_inf_alone_point_inside(stride, dtype):
    """The whole-plane kernel (3x3 with pad 1 at strides 1 and 2) and the row kernel
    (stride 3): a window whose real values are all -inf reports the first of them, never a
    padding position, beside ordinary windows."""
    x = np.random.default_rng(5).standard_normal((2, 3, 9, 10)).astype(dtype)
    x[0, 0, :2, :2] = -np.inf  # the top-left window holds -inf and padding alone
    x[1, 2, 4:7, 3:8] = -np.inf
    x[1, 1, -2:, -2:] = -np.inf  # the bottom-right window at stride 1
    y, arg = get_ops("numba").maxpool2d(x, 3, stride, 1)
    y_ref, arg_ref = REF.maxpool2d(x, 3, stride, 1)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert y[0, 0, 0, 0] == -np.inf and arg[0, 0, 0, 0] == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1), (1, 0), (2, 0), ((1, 2), (0, 1))])
@pytest.mark.parametrize("x_shape", [(3, 5, 14, 14), (2, 7, 9, 12), (40, 6, 7, 7), (1, 1, 3, 3)])
def test_maxpool_3x3_unrolled_taps(x_shape, stride, pad, dtype):
    """The op's 3x3 windows at strides up to 2 (the whole-plane kernel's unrolled taps), with
    ties and -inf among the values against the loop over windows, then with NaNs too against
    the reference; stacks of several planes, and the last one short, on (40, 6, 7, 7)."""
    rng = np.random.default_rng(7)
    x = np.round(rng.standard_normal(x_shape) * 2).astype(dtype)  # many ties
    x.reshape(-1)[5::9] = -np.inf
    y, arg = NB.maxpool2d(x, 3, stride, pad)
    y_loop, arg_loop = loop_maxpool(x, 3, stride, pad)
    np.testing.assert_array_equal(y, y_loop)
    np.testing.assert_array_equal(arg, arg_loop)
    x.reshape(-1)[::13] = np.nan
    y, arg = NB.maxpool2d(x, 3, stride, pad)
    y_ref, arg_ref = REF.maxpool2d(x, 3, stride, pad)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert np.isnan(y).any()


def pooling_input(shape, special: bool, dtype, seed: int) -> np.ndarray:
    """Random planes with many ties, and with ``special`` -inf (a fifth, so whole windows of
    -inf) and NaN."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)
    if special:
        x[rng.random(x.shape) < 0.2] = -np.inf
        x[rng.random(x.shape) < 0.05] = np.nan
    return x


def whole_plane_kernel(x, stride: int, PH: int, PW: int):
    """(y, argmax) of 3x3 max pooling of x by maxpool_forward_wide, serial build, one stack
    size as maxpool2d picks it."""
    from fastnn.backends.numba_pool import wide_stack
    from fastnn.kernels import pool as pool_kernels

    N, C, H, W = x.shape
    out = (N, C, (H + 2 * PH - 3) // stride + 1, (W + 2 * PW - 3) // stride + 1)
    y, arg = np.empty(out, x.dtype), np.empty(out, np.int64)
    stack = wide_stack(N * C, H, W, PH, PW)
    plane, wide = pool_kernels.wide_scratch(H, W, 3, 3, PH, PW, stack)
    pool_kernels.maxpool_forward_wide.serial(
        x,
        *(3, 3, stride, stride, PH, PW, stack),
        np.empty((1, plane), x.dtype),
        np.empty((1, wide), x.dtype),
        np.empty((1, wide), np.int32),
        y,
        arg,
    )
    return y, arg


def assert_equal_pools(got, expected):
    """Both (y, argmax) pairs equal, bit for bit (NaN where NaN)."""
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def assert_the_same_on_one_thread_and_on_all(run, y, arg):
    """``run(y_out, arg_out)`` (a parallel build) on 1 thread and on every thread fills in
    exactly y and arg."""
    from fastnn import _config

    for threads in (1, _config.get_num_threads()):
        before = _config.get_num_threads()
        _config.set_num_threads(threads)
        try:
            y_t, arg_t = np.empty_like(y), np.empty_like(arg)
            run(y_t, arg_t)
        finally:
            _config.set_num_threads(before)
        assert_equal_pools((y_t, arg_t), (y, arg))


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 40),
    H=st.integers(1, 17),
    W=st.integers(1, 17),
    special=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_maxpool_3x3_same_kernel_equals_the_whole_plane_kernel(N, C, H, W, special, dtype, seed):
    """GoogLeNet's 3x3 stride-1 pad-1 pooling, which maxpool2d gives to
    maxpool_forward_3x3_same: the same maxima and argmax, bit for bit, as the whole-plane
    kernel it replaced there and as the loop over windows, on planes down to one row or
    column (where both edge masks hit one position), groups of planes with a short last
    one, ties, -inf (windows of -inf alone) and NaN; and the same on 1 thread and on all."""
    from fastnn import _config
    from fastnn.kernels import pool as pool_kernels

    x = pooling_input((N, C, H, W), special, dtype, seed)
    y, arg = NB.maxpool2d(x, 3, 1, 1)
    assert_equal_pools((y, arg), whole_plane_kernel(x, 1, 1, 1))
    assert_equal_pools((y, arg), REF.maxpool2d(x, 3, 1, 1))
    group = 2  # several groups per call, the last one short when N*C is odd
    same = np.empty((_config.get_num_threads(), pool_kernels.same_3x3_scratch(H, W)), dtype)
    first, last = pool_kernels.edge_columns(H, W)
    kernel = pool_kernels.maxpool_forward_3x3_same.parallel
    assert_the_same_on_one_thread_and_on_all(lambda *out: kernel(x, group, same, first, last, *out), y, arg)


def test_maxpool_3x3_same_is_the_kernel_the_op_runs(monkeypatch):
    """maxpool2d(x, 3, 1, 1) runs maxpool_forward_3x3_same, and other 3x3 windows do not."""
    from fastnn.kernels import pool as pool_kernels

    calls = []
    kernel = pool_kernels.maxpool_forward_3x3_same
    monkeypatch.setattr(pool_kernels, "maxpool_forward_3x3_same", lambda *a: calls.append(a) or kernel(*a))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32)
    NB.maxpool2d(x, 3, 1, 1)
    assert len(calls) == 1
    NB.maxpool2d(x, 3, 2, 1)
    NB.maxpool2d(x, 3, 1, 0)
    assert len(calls) == 1


@settings(max_examples=60, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 40),
    H=st.integers(1, 40),
    W=st.integers(1, 40),
    PH=st.integers(0, 2),
    PW=st.integers(0, 2),
    special=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_maxpool_3x3_stride_2_kernel_equals_the_reference(N, C, H, W, PH, PW, special, dtype, seed):
    """AlexNet's and GoogLeNet's 3x3 stride-2 pooling, which maxpool2d gives to
    maxpool_forward_3x3_s2: the maxima and argmax of the loop over windows and of the
    whole-plane kernel it replaced there, bit for bit, at paddings 0 to 2, on planes from
    one value to rows of more than two vectors (masked lanes, several steps per row),
    groups of planes with a short last one, ties, -inf (windows of -inf alone) and NaN;
    the same on 1 thread and on all."""
    from fastnn import _config
    from fastnn.kernels import pool_3x3_s2

    assume(H + 2 * PH >= 3 and W + 2 * PW >= 3)
    x = pooling_input((N, C, H, W), special, dtype, seed)
    y, arg = NB.maxpool2d(x, 3, 2, (PH, PW))
    assert_equal_pools((y, arg), REF.maxpool2d(x, 3, 2, (PH, PW)))
    assert_equal_pools((y, arg), whole_plane_kernel(x, 2, PH, PW))
    length = pool_3x3_s2.scratch_3x3_s2(W, PW, y.shape[2], dtype)
    slots = _config.get_num_threads()
    buffers = np.empty((slots, length), dtype), np.empty((slots, length), np.int32)
    kernel = pool_3x3_s2.maxpool_forward_3x3_s2.parallel
    assert_the_same_on_one_thread_and_on_all(lambda *out: kernel(x, PH, PW, 2, *buffers, *out), y, arg)


def test_maxpool_3x3_stride_2_is_the_kernel_the_op_runs(monkeypatch):
    """maxpool2d(x, 3, 2, p) runs maxpool_forward_3x3_s2, and other windows and strides do not."""
    from fastnn.kernels import pool_3x3_s2

    calls = []
    kernel = pool_3x3_s2.maxpool_forward_3x3_s2
    monkeypatch.setattr(pool_3x3_s2, "maxpool_forward_3x3_s2", lambda *a: calls.append(a) or kernel(*a))
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    NB.maxpool2d(x, 3, 2, 1)
    NB.maxpool2d(x, 3, 2, 0)
    assert len(calls) == 2
    NB.maxpool2d(x, 3, 1, 1)
    NB.maxpool2d(x, 3, (2, 1), 1)
    NB.maxpool2d(x, 2, 2, 0)
    assert len(calls) == 2


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_overlapping_windows_accumulate(backend):
    ops = get_ops(backend)
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the maximum of all four 2x2 windows
    y, arg = ops.maxpool2d(x, 2, 1)
    dx = ops.maxpool2d_backward(np.ones_like(y), arg, x.shape, 2, 1)
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0
    dx = ops.avgpool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2, 1)
    np.testing.assert_allclose(dx[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


@pytest.mark.parametrize("size,stride,pad", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1))])
def test_pool_gradients_numerically(size, stride, pad):
    rng = np.random.default_rng(3)
    x_shape = (2, 2, 6, 7)
    # distinct values far apart compared with eps: no ties, no switching maxima
    x = rng.permutation(np.prod(x_shape)).reshape(x_shape).astype(np.float64) * 0.01
    dy = rng.standard_normal(out_shape(x_shape, size, stride, pad))
    num_max = numerical_grad(lambda: float(np.sum(REF.maxpool2d(x, size, stride, pad)[0] * dy)), x)
    num_avg = numerical_grad(lambda: float(np.sum(REF.avgpool2d(x, size, stride, pad) * dy)), x)
    for ops in (REF, NB):
        _, arg = ops.maxpool2d(x, size, stride, pad)
        np.testing.assert_allclose(
            ops.maxpool2d_backward(dy, arg, x_shape, size, stride, pad), num_max, rtol=1e-6, atol=1e-8
        )
        np.testing.assert_allclose(
            ops.avgpool2d_backward(dy, x_shape, size, stride, pad), num_avg, rtol=1e-6, atol=1e-8
        )


def test_noncontiguous_and_big_endian_inputs():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((2, 3, 12, 10))
    for x in (base[:, :, ::2], base.astype(">f8"), np.asfortranarray(base)):
        x_copy = x.copy()
        plain = np.ascontiguousarray(x, dtype=np.float64)
        y, arg = NB.maxpool2d(x, 3, 2, 1)
        y_plain, arg_plain = NB.maxpool2d(plain, 3, 2, 1)
        np.testing.assert_array_equal(y, y_plain)
        np.testing.assert_array_equal(arg, arg_plain)
        dy = np.asfortranarray(rng.standard_normal(y.shape)).astype(">f8")
        arg_swapped = arg.astype(">i8")
        dx = NB.maxpool2d_backward(dy, arg_swapped, x.shape, 3, 2, 1)
        np.testing.assert_array_equal(
            dx, NB.maxpool2d_backward(np.ascontiguousarray(dy, np.float64), arg, x.shape, 3, 2, 1)
        )
        np.testing.assert_array_equal(NB.avgpool2d(x, 3, 2, 1), NB.avgpool2d(plain, 3, 2, 1))
        np.testing.assert_array_equal(
            NB.avgpool2d_backward(dy, x.shape, 3, 2, 1),
            NB.avgpool2d_backward(np.ascontiguousarray(dy, np.float64), x.shape, 3, 2, 1),
        )
        np.testing.assert_array_equal(x, x_copy)


# ----------------------------------------------------------------- errors

X = np.zeros((2, 3, 6, 6), np.float32)

BAD = [
    ("maxpool2d", ValueError, "expected x with 4 dimensions", lambda ops: ops.maxpool2d(X[0], 2)),
    ("avgpool2d", ValueError, "expected x with 4 dimensions", lambda ops: ops.avgpool2d(X[0], 2)),
    ("maxpool2d", ValueError, "stride must be >= 1, got 0", lambda ops: ops.maxpool2d(X, 2, 0)),
    ("avgpool2d", ValueError, "stride must be >= 1", lambda ops: ops.avgpool2d(X, 2, (1, 0))),
    ("maxpool2d", ValueError, "pad must be >= 0, got -1", lambda ops: ops.maxpool2d(X, 2, 2, -1)),
    ("maxpool2d", ValueError, "pad must be smaller than the window", lambda ops: ops.maxpool2d(X, 2, 2, 2)),
    ("avgpool2d", ValueError, "larger than the padded input", lambda ops: ops.avgpool2d(X, 7)),
    ("maxpool2d", ValueError, "size must be >= 1", lambda ops: ops.maxpool2d(X, 0)),
    ("maxpool2d", TypeError, "size", lambda ops: ops.maxpool2d(X, 2.0)),
    ("maxpool2d", TypeError, "dtype", lambda ops: ops.maxpool2d(X.astype(np.int32), 2)),
    (
        "maxpool2d_backward",
        ValueError,
        "expected dy of shape (2, 3, 3, 3)",
        lambda ops: ops.maxpool2d_backward(
            np.zeros((2, 3, 3, 2), np.float32), np.zeros((2, 3, 3, 2), np.int64), X.shape, 2
        ),
    ),
    (
        "maxpool2d_backward",
        TypeError,
        "int64",
        lambda ops: ops.maxpool2d_backward(
            np.zeros((2, 3, 3, 3), np.float32), np.zeros((2, 3, 3, 3), np.int32), X.shape, 2
        ),
    ),
    (
        "maxpool2d_backward",
        ValueError,
        "outside the H*W",
        lambda ops: ops.maxpool2d_backward(
            np.zeros((2, 3, 3, 3), np.float32), np.full((2, 3, 3, 3), 36, np.int64), X.shape, 2
        ),
    ),
    (
        "avgpool2d_backward",
        ValueError,
        "expected dy of shape (2, 3, 3, 3)",
        lambda ops: ops.avgpool2d_backward(np.zeros((2, 3, 3, 4), np.float32), X.shape, 2),
    ),
    (
        "avgpool2d_backward",
        ValueError,
        "x_shape",
        lambda ops: ops.avgpool2d_backward(np.zeros((2, 3, 3, 3), np.float32), (3, 6, 6), 2),
    ),
]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("op,error,message,call", BAD, ids=[f"{b[0]}-{b[2][:20]}" for b in BAD])
def test_pool_errors(backend, op, error, message, call):
    with pytest.raises(error) as info:
        call(get_ops(backend))
    assert str(info.value).startswith(op + ":"), str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_maxpool_2x2_fast_path_ties_and_nans(dtype):
    """The 2x2 stride-2 fast path keeps the general kernel's rules: first maximum, NaN wins."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (4, 16, 20, 22)).astype(dtype)  # many ties
    x[rng.random(x.shape) < 0.05] = np.nan
    y_ref, arg_ref = REF.maxpool2d(x, 2, 2, 0)
    y, arg = NB.maxpool2d(x, 2, 2, 0)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    oh=st.integers(1, 9),
    ow=st.integers(1, 30),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_maxpool_2x2_even_vectors_and_tails(n, c, oh, ow, dtype, seed):
    """Even planes take the whole-vector steps when a row holds a vector (a clamped last
    vector per row and per image) and the scalar ones otherwise: both agree exactly with
    the reference, ties and NaN included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (n, c, 2 * oh, 2 * ow)).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    y_ref, arg_ref = REF.maxpool2d(x, 2, 2, 0)
    y, arg = NB.maxpool2d(x, 2, 2, 0)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)


ACTIVATION_OUTPUTS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.1 * x),
}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    h=st.integers(2, 11),
    w=st.integers(2, 11),
    size=st.sampled_from([2, 3]),
    activation=st.sampled_from(sorted(ACTIVATION_OUTPUTS)),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_avgpool_backward_through_an_activation(n, c, h, w, size, activation, dtype, seed):
    """avgpool2d_backward(..., activation=f, act_out=y) is the pooling's gradient taken
    back through f: the reference's numbers, and on the numba backend the bits of the
    two ops apart (2x2 windows: one kernel; odd sizes leave rows and columns the pooling
    never read, whose gradient is f's of 0)."""
    assume(size <= h and size <= w)
    rng = np.random.default_rng(seed)
    x_shape = (n, c, h, w)
    y = ACTIVATION_OUTPUTS[activation](rng.standard_normal(x_shape)).astype(dtype)
    dy = rng.standard_normal((n, c, h // size, w // size)).astype(dtype)
    fused = dict(activation=activation, act_out=y, alpha=0.1)
    got = NB.avgpool2d_backward(dy, x_shape, size, **fused)
    apart = NB._activation_grad(NB.avgpool2d_backward(dy, x_shape, size), y, activation, 0.1)
    np.testing.assert_array_equal(got, apart)
    want = REF.avgpool2d_backward(dy, x_shape, size, **fused)
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_avgpool_backward_activation_arguments_are_checked(backend):
    ops = get_ops(backend)
    dy = np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(
        ValueError, match=r"avgpool2d_backward: expected act_out of shape \(1, 2, 4, 4\) \(x_shape\)"
    ):
        ops.avgpool2d_backward(
            dy, (1, 2, 4, 4), 2, activation="tanh", act_out=np.ones((1, 2, 2, 2), np.float32)
        )
    with pytest.raises(ValueError, match="avgpool2d_backward: activation and act_out go together"):
        ops.avgpool2d_backward(dy, (1, 2, 4, 4), 2, activation="tanh")
    with pytest.raises(TypeError, match="avgpool2d_backward: expected act_out of dtype float32"):
        ops.avgpool2d_backward(dy, (1, 2, 4, 4), 2, activation="tanh", act_out=np.ones((1, 2, 4, 4)))
