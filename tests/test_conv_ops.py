"""conv2d, conv2d_backward, im2col, col2im: the numba kernels against the NumPy reference.

The reference itself is checked against plain-loop oracles written here and against
central-difference gradients, so the two backends cannot agree on a wrong answer.
"""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastnn import _config
from fastnn.backends import get_ops, numba_conv
from fastnn.gradcheck import numerical_gradient as numerical_grad
from fastnn.kernels import conv as conv_kernels
from fastnn.kernels import pool as pool_kernels
from fastnn.kernels import tuning

REF = get_ops("numpy")
NB = get_ops("numba")
IMPLS = ("direct", "im2col", "polyphase", "auto")
DTYPES = (np.float32, np.float64)


def _tol(dtype):
    return (1e-4, 1e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-10)


def assert_close(actual, expected, dtype, name=""):
    """Same dtype, C-contiguous, and close with an atol scaled by the size of the values."""
    assert actual.dtype == np.dtype(dtype), f"{name}: dtype {actual.dtype} != {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert actual.flags.c_contiguous, f"{name}: output is not C-contiguous"
    rtol, atol = _tol(dtype)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=name)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _data(rng, N, C, H, W, F, KH, KW, stride, pad, dtype):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, KH, KW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    dy = rng.standard_normal((N, F, OH, OW)).astype(dtype)
    return x, Wt, b, dy


def check_conv(x, Wt, b, dy, stride, pad, impl):
    dtype = x.dtype
    y_ref = REF.conv2d(x, Wt, b, stride, pad)
    y = NB.conv2d(x, Wt, b, stride, pad, impl)
    assert_close(y, y_ref, dtype, f"y ({impl})")
    grads_ref = REF.conv2d_backward(dy, x, Wt, stride, pad)
    grads = NB.conv2d_backward(dy, x, Wt, stride, pad, impl)
    for name, g, g_ref in zip(("dx", "dW", "db"), grads, grads_ref):
        assert_close(g, g_ref, dtype, f"{name} ({impl})")


# (N, C, H, W, F, KH, KW, stride, pad)
CASES = [
    (1, 1, 5, 5, 1, 1, 1, 1, 0),
    (2, 3, 7, 8, 4, 3, 3, 1, 1),
    (1, 2, 9, 7, 5, 3, 2, 2, 2),
    (3, 1, 11, 13, 6, 5, 5, 1, 0),
    (2, 4, 10, 9, 3, 2, 3, (2, 1), (0, 2)),
    (2, 5, 8, 11, 3, 4, 2, (1, 3), (2, 1)),
    (1, 2, 3, 4, 2, 3, 4, 1, 0),  # kernel as large as the input
    (1, 1, 1, 1, 2, 3, 3, 1, 1),  # 1x1 image, padding makes room
    (5, 8, 16, 16, 8, 3, 3, 1, 1),  # large enough for the parallel builds
    (4, 16, 12, 10, 12, 3, 3, 2, 1),  # parallel, strided
    (2, 64, 6, 5, 4, 3, 3, 1, 1),  # many channels
    (3, 6, 14, 14, 5, 5, 5, 3, 2),
    (2, 3, 9, 21, 5, 3, 3, 1, 1),  # rows of a vector and a clamped tail (float32)
    (2, 1, 7, 37, 11, 3, 3, 1, 1),  # ... few taps, pairs of vectors over rows
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"_s{c[7]}_p{c[8]}")
def test_conv_matches_reference(case, impl, dtype):
    N, C, H, W, F, KH, KW, stride, pad = case
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x, Wt, b, dy = _data(rng, N, C, H, W, F, KH, KW, stride, pad, dtype)
    check_conv(x, Wt, b, dy, stride, pad, impl)


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 64),
    F=st.integers(1, 6),
    H=st.integers(1, 12),
    W=st.integers(1, 12),
    KH=st.integers(1, 5),
    KW=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    impl=st.sampled_from(IMPLS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_conv_random_shapes(N, C, F, H, W, KH, KW, sh, sw, ph, pw, impl, dtype, seed):
    assume(KH <= H + 2 * ph and KW <= W + 2 * pw)
    assume(C * H * W <= 4096)
    rng = np.random.default_rng(seed)
    x, Wt, b, dy = _data(rng, N, C, H, W, F, KH, KW, (sh, sw), (ph, pw), dtype)
    check_conv(x, Wt, b, dy, (sh, sw), (ph, pw), impl)


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 70),
    C=st.integers(1, 9),
    F=st.integers(1, 40),
    H=st.integers(1, 10),
    W=st.integers(1, 10),
    KH=st.integers(1, 4),
    KW=st.integers(1, 4),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_direct_register_tiles_random_shapes(N, C, F, H, W, KH, KW, ph, pw, dtype, seed):
    """The stride-1 direct kernels' tiles: F past a multiple of 8 (forward tile), of 4 (dW
    4x4 tile) and of two vectors (the GEMM-style dW tile, F >= 32 in float32), C*KH*KW past
    a multiple of 4 and of 12, planes of one to several vectors, and batches whose dW
    groups hold several images (chunks of DW_CHUNK and a partial one)."""
    assume(KH <= H + 2 * ph and KW <= W + 2 * pw)
    rng = np.random.default_rng(seed)
    x, Wt, b, dy = _data(rng, N, C, H, W, F, KH, KW, 1, (ph, pw), dtype)
    check_conv(x, Wt, b, dy, 1, (ph, pw), "direct")


@settings(max_examples=40, deadline=None)
@given(
    case=st.sampled_from(CASES),
    impl=st.sampled_from(IMPLS),
    activation=st.sampled_from([None, "relu", "tanh", "leaky_relu"]),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_conv_with_a_residual_is_the_convolution_then_the_sum_then_f(case, impl, activation, dtype, seed):
    """conv2d(..., residual=r) = f(conv2d(...) + r): bit for bit the convolution, then
    add_relu (ReLU) or the sum and f's op, on every algorithm (the direct kernel takes the
    sum in its pass over each image); the reference backend agrees within rounding."""
    N, C, H, W, F, KH, KW, stride, pad = case
    rng = np.random.default_rng(seed)
    x, Wt, b, r = _data(rng, N, C, H, W, F, KH, KW, stride, pad, dtype)
    kept = r.copy()
    y = NB.conv2d(x, Wt, b, stride, pad, impl, activation=activation, alpha=0.1, residual=r)
    plain = NB.conv2d(x, Wt, b, stride, pad, impl)
    want = NB.add_relu(plain, r) if activation == "relu" else NB._activate(plain + r, activation, 0.1)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(r, kept)
    y_ref = REF.conv2d(x, Wt, b, stride, pad, activation=activation, alpha=0.1, residual=r)
    # f is 1-Lipschitz, so the rounding of the sum before it bounds the difference: atol
    # scales with the size of that sum, not of f's (saturated) output
    pre = np.abs(REF.conv2d(x, Wt, b, stride, pad) + r).max(initial=0.0)
    rtol, atol = _tol(dtype)
    np.testing.assert_allclose(
        y, y_ref, rtol=rtol, atol=atol * max(1.0, pre), err_msg=f"y with a residual ({impl}, {activation})"
    )


@pytest.mark.parametrize("ops", [NB, REF], ids=["numba", "numpy"])
def test_a_residual_of_another_shape_or_dtype_is_refused(ops):
    x, Wt, b = np.ones((2, 3, 6, 6)), np.ones((4, 3, 3, 3)), np.ones(4)
    with pytest.raises(
        ValueError,
        match=re.escape("conv2d: expected residual of the output's shape (2, 4, 4, 4), got (2, 4, 6, 6)"),
    ):
        ops.conv2d(x, Wt, b, residual=np.ones((2, 4, 6, 6)))
    with pytest.raises(
        TypeError, match="conv2d: expected residual of the output's dtype float64, got float32"
    ):
        ops.conv2d(x, Wt, b, residual=np.ones((2, 4, 4, 4), np.float32))


@pytest.mark.parametrize("groups", [16, 2])
@pytest.mark.parametrize("chunk_bytes", [1, 3 * 8 * 72 * 8 * 2])
@pytest.mark.parametrize("impl", ["im2col"])
def test_im2col_path_in_several_chunks(monkeypatch, impl, chunk_bytes, groups):
    """Small chunk budgets: one or two images per chunk, a partial last chunk, and
    fewer dW groups than chunks."""
    monkeypatch.setattr(tuning, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(tuning, "CHUNK_GROUPS", groups)
    rng = np.random.default_rng(3)
    x, Wt, b, dy = _data(rng, 5, 3, 9, 8, 4, 3, 3, 1, 1, np.float64)
    check_conv(x, Wt, b, dy, 1, 1, impl)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("impl,stride", [("direct", 1), ("im2col", 1), ("im2col", 2), ("polyphase", 2)])
def test_results_do_not_depend_on_thread_count(impl, stride):
    rng = np.random.default_rng(12)
    x, Wt, b, dy = _data(rng, 6, 8, 14, 14, 6, 3, 3, stride, 1, np.float32)
    threads = numba.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            results.append(
                (NB.conv2d(x, Wt, b, stride, 1, impl),) + NB.conv2d_backward(dy, x, Wt, stride, 1, impl)
            )
    finally:
        numba.set_num_threads(threads)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_book_layer_shapes_float32():
    """The first layers of the book networks at a small batch: C=1 5x5 and C=16 3x3 pad 1."""
    rng = np.random.default_rng(4)
    for C, F, H, K, pad in [(1, 30, 28, 5, 0), (16, 16, 14, 3, 1)]:
        x, Wt, b, dy = _data(rng, 3, C, H, H, F, K, K, 1, pad, np.float32)
        for impl in IMPLS:
            check_conv(x, Wt, b, dy, 1, pad, impl)


def test_auto_rule():
    def choose(C, F, K, stride=1, forward=False, size=9, input_grad=True):
        g = numba_conv.conv_geometry("t", np.zeros((1, C, size, size)), np.zeros((F, C, K, K)), stride, 1)
        return numba_conv._choose(g, F, forward, input_grad)

    for C, F, K in [(1, 16, 3), (16, 32, 3), (32, 64, 3), (4, 30, 5), (1, 30, 5)]:
        for forward in (False, True):
            assert choose(C, F, K, forward=forward) == "direct"  # stride 1: always direct

    assert tuning.STRIDED_POLYPHASE_MIN_WIDTH == 12
    assert tuning.STRIDED_POLYPHASE_WEIGHTS_CHANNELS == 3
    assert tuning.STRIDED_POLYPHASE_WIDE_WEIGHTS_CHANNELS == 32
    # strided, with block = two vectors (32 float32 channels). Forward: the channel tiles
    # ("direct") for F >= block when the kernel is above 1x1 or C fills a vector, otherwise
    # the polyphase split for output rows of 12 pixels or more and for 1x1 kernels, else
    # im2col. The weights alone: direct for F >= block, otherwise polyphase up to 3
    # channels, or up to 32 for wide rows when the kernel is larger than the stride, else
    # im2col. A full backward pass adds dx: direct for C >= block, else im2col; two
    # different parts are "W+X" ("split" for polyphase+im2col). Padding 1 throughout.
    for C, F, K, stride, size, forward, alone, full in [
        (1, 16, 3, 2, 28, "polyphase", "polyphase", "split"),  # 14 output columns
        (1, 16, 3, 2, 9, "im2col", "polyphase", "split"),  # 5
        (3, 64, 7, 2, 64, "direct", "direct", "direct+im2col"),
        (16, 32, 3, 2, 32, "direct", "direct", "direct+im2col"),  # 16
        (16, 32, 3, 2, 14, "direct", "direct", "direct+im2col"),  # 7
        (16, 31, 3, 2, 32, "polyphase", "polyphase", "split"),  # less than a block
        (16, 31, 3, 2, 14, "im2col", "im2col", "im2col"),
        (16, 32, 1, 2, 14, "direct", "direct", "direct+im2col"),  # 1x1, C a vector
        (16, 32, 1, 2, 32, "direct", "direct", "direct+im2col"),
        (15, 32, 1, 2, 32, "polyphase", "direct", "direct+im2col"),  # 1x1: one phase
        (3, 64, 1, 2, 9, "polyphase", "direct", "direct+im2col"),
        (16, 32, 3, 3, 48, "direct", "direct", "direct+im2col"),  # 16 columns, kernel = stride
        (16, 31, 3, 3, 48, "polyphase", "im2col", "im2col"),  # kernel not above the stride
        (31, 64, 3, 2, 22, "direct", "direct", "direct+im2col"),
        (32, 64, 3, 2, 22, "direct", "direct", "direct"),  # dx's lanes: a block of C
        (33, 31, 3, 2, 24, "polyphase", "im2col", "im2col+direct"),
        (128, 256, 3, 2, 32, "direct", "direct", "direct"),
        (128, 256, 5, 2, 16, "direct", "direct", "direct"),  # 7
    ]:
        where = (C, F, K, stride, size)
        assert choose(C, F, K, stride=stride, size=size, forward=True) == forward, where
        assert choose(C, F, K, stride=stride, size=size, input_grad=False) == alone, where
        assert choose(C, F, K, stride=stride, size=size) == full, where
    assert numba_conv._parts("split") == ("polyphase", "im2col")
    assert numba_conv._parts("direct+im2col") == ("direct", "im2col")
    assert numba_conv._parts("direct") is None


# ---------------------------------------------------------------- oracles


def loop_im2col(x, kh, kw, stride, pad):
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, W = x.shape
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    col = np.zeros((N * OH * OW, C * kh * kw), dtype=x.dtype)
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    for a in range(kh):
                        for bb in range(kw):
                            h, w = i * sh + a - ph, j * sw + bb - pw
                            if 0 <= h < H and 0 <= w < W:
                                col[(n * OH + i) * OW + j, (c * kh + a) * kw + bb] = x[n, c, h, w]
    return col


def loop_col2im(col, x_shape, kh, kw, stride, pad):
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, W = x_shape
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    x = np.zeros(x_shape, dtype=col.dtype)
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    for a in range(kh):
                        for bb in range(kw):
                            h, w = i * sh + a - ph, j * sw + bb - pw
                            if 0 <= h < H and 0 <= w < W:
                                x[n, c, h, w] += col[(n * OH + i) * OW + j, (c * kh + a) * kw + bb]
    return x


def loop_conv2d(x, Wt, b, stride, pad):
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, W = x.shape
    F, _, KH, KW = Wt.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=np.float64)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    y = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    window = xp[n, :, i * sh : i * sh + KH, j * sw : j * sw + KW]
                    y[n, f, i, j] = b[f] + np.sum(window * Wt[f])
    return y


IM2COL_CASES = [
    ((2, 3, 5, 6), 3, 3, 1, 0),
    ((1, 2, 7, 5), 3, 2, 2, 1),
    ((2, 1, 6, 6), 2, 3, (1, 2), (2, 0)),
    ((3, 4, 4, 4), 4, 4, 1, 2),
    ((1, 1, 9, 8), 3, 3, 3, 1),  # overlap-free strides larger than... windows
    ((2, 2, 8, 8), 5, 5, 1, 1),  # heavily overlapping windows
]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,kh,kw,stride,pad", IM2COL_CASES)
def test_im2col_col2im_against_loops(backend, dtype, shape, kh, kw, stride, pad):
    ops = get_ops(backend)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    col = ops.im2col(x, kh, kw, stride, pad)
    np.testing.assert_array_equal(col, loop_im2col(x, kh, kw, stride, pad))
    assert col.dtype == x.dtype and col.flags.c_contiguous
    dcol = rng.standard_normal(col.shape).astype(dtype)
    back = ops.col2im(dcol, shape, kh, kw, stride, pad)
    assert_close(back, loop_col2im(dcol, shape, kh, kw, stride, pad), dtype, "col2im")
    # col2im is the adjoint of im2col: <im2col(x), dcol> == <x, col2im(dcol)>
    lhs = np.sum(col.astype(np.float64) * dcol)
    rhs = np.sum(x.astype(np.float64) * back)
    assert abs(lhs - rhs) <= 1e-4 * (1 + abs(lhs))


def test_im2col_roundtrip_large_parallel():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 6, 20, 18)).astype(np.float32)
    col = NB.im2col(x, 3, 3, 1, 1)
    np.testing.assert_array_equal(col, REF.im2col(x, 3, 3, 1, 1))
    assert_close(
        NB.col2im(col, x.shape, 3, 3, 1, 1), REF.col2im(col, x.shape, 3, 3, 1, 1), np.float32, "col2im"
    )


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_reference_conv_against_loops(stride, pad):
    rng = np.random.default_rng(7)
    x, Wt, b, _ = _data(rng, 2, 3, 7, 6, 4, 3, 2, stride, pad, np.float64)
    np.testing.assert_allclose(
        REF.conv2d(x, Wt, b, stride, pad), loop_conv2d(x, Wt, b, stride, pad), rtol=1e-12, atol=1e-12
    )


# --------------------------------------------------------- gradient check


@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 0), ((2, 1), (1, 2))])
def test_conv_gradient_numerically(stride, pad):
    rng = np.random.default_rng(8)
    x, Wt, b, dy = _data(rng, 2, 2, 5, 6, 3, 3, 2, stride, pad, np.float64)

    def loss():
        return float(np.sum(REF.conv2d(x, Wt, b, stride, pad) * dy))

    numeric = [numerical_grad(loss, a) for a in (x, Wt, b)]
    for ops in (REF, NB):
        for impl in ("direct", "im2col", "polyphase"):
            analytic = ops.conv2d_backward(dy, x, Wt, stride, pad, impl)
            for name, g, num in zip(("dx", "dW", "db"), analytic, numeric):
                np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7, err_msg=f"{name} {impl}")


# ----------------------------------------------------------------- inputs


@pytest.mark.parametrize("impl", ["direct", "im2col"])
def test_noncontiguous_and_big_endian_inputs(impl):
    rng = np.random.default_rng(9)
    x_big = rng.standard_normal((3, 2, 14, 9))
    W_big = rng.standard_normal((4, 2, 3, 3))
    x = x_big[:, :, ::2]  # non-contiguous view
    Wt = W_big.astype(">f8")  # big-endian
    b = rng.standard_normal(4).astype(">f8")
    dy = np.asfortranarray(rng.standard_normal((3, 4, 7, 9)))
    copies = [a.copy() for a in (x, Wt, b, dy)]
    plain = [np.ascontiguousarray(a, dtype=np.float64) for a in (x, Wt, b, dy)]
    y = NB.conv2d(x, Wt, b, 1, 1, impl)
    assert_close(y, NB.conv2d(*plain[:3], 1, 1, impl), np.float64, "y")
    grads = NB.conv2d_backward(dy, x, Wt, 1, 1, impl)
    for g, g_plain in zip(grads, NB.conv2d_backward(plain[3], plain[0], plain[1], 1, 1, impl)):
        assert_close(g, g_plain, np.float64)
    col = NB.im2col(x, 3, 3, 1, 1)
    np.testing.assert_array_equal(col, NB.im2col(plain[0], 3, 3, 1, 1))
    np.testing.assert_array_equal(
        NB.col2im(np.asfortranarray(col), x.shape, 3, 3, 1, 1), NB.col2im(col, x.shape, 3, 3, 1, 1)
    )
    for a, a_copy in zip((x, Wt, b, dy), copies):
        np.testing.assert_array_equal(a, a_copy)


def test_inputs_not_modified_float32():
    rng = np.random.default_rng(10)
    x, Wt, b, dy = _data(rng, 4, 8, 12, 12, 8, 3, 3, 1, 1, np.float32)
    copies = [a.copy() for a in (x, Wt, b, dy)]
    for impl in ("direct", "im2col"):
        NB.conv2d(x, Wt, b, 1, 1, impl)
        NB.conv2d_backward(dy, x, Wt, 1, 1, impl)
    for a, a_copy in zip((x, Wt, b, dy), copies):
        np.testing.assert_array_equal(a, a_copy)


# ----------------------------------------------------------------- errors


def _conv_args():
    x = np.zeros((2, 3, 6, 6), np.float32)
    W = np.zeros((4, 3, 3, 3), np.float32)
    b = np.zeros(4, np.float32)
    return x, W, b


BAD_CALLS = [
    ("channels", ValueError, "3 channels but W expects 2", lambda ops, x, W, b: ops.conv2d(x, W[:, :2], b)),
    (
        "kernel too large",
        ValueError,
        "larger than the padded input",
        lambda ops, x, W, b: ops.conv2d(x[:, :, :2, :2], W, b),
    ),
    (
        "kernel too large with pad",
        ValueError,
        "larger than the padded input",
        lambda ops, x, W, b: ops.conv2d(x[:, :, :1], W, b, pad=(0, 1)),
    ),
    (
        "3-D x",
        ValueError,
        "expected x with 4 dimensions (N, C, H, W), got shape (3, 6, 6)",
        lambda ops, x, W, b: ops.conv2d(x[0], W, b),
    ),
    (
        "stride 0",
        ValueError,
        "stride must be >= 1, got 0",
        lambda ops, x, W, b: ops.conv2d(x, W, b, stride=0),
    ),
    (
        "negative pad",
        ValueError,
        "pad must be >= 0, got -1",
        lambda ops, x, W, b: ops.conv2d(x, W, b, pad=-1),
    ),
    ("bad impl", ValueError, "impl must be one of", lambda ops, x, W, b: ops.conv2d(x, W, b, impl="fft")),
    ("float stride", TypeError, "stride", lambda ops, x, W, b: ops.conv2d(x, W, b, stride=1.5)),
    ("dtype mismatch", TypeError, "dtype", lambda ops, x, W, b: ops.conv2d(x, W.astype(np.float64), b)),
    ("bias shape", ValueError, "b of shape (4,)", lambda ops, x, W, b: ops.conv2d(x, W, b[:3])),
]

BAD_BACKWARD = [
    (
        "dy shape",
        ValueError,
        "expected dy of shape (2, 4, 4, 4)",
        lambda ops, x, W, dy: ops.conv2d_backward(dy[:, :, :3], x, W),
    ),
    (
        "channels",
        ValueError,
        "channels but W expects",
        lambda ops, x, W, dy: ops.conv2d_backward(dy, x[:, :2], W),
    ),
    (
        "bad impl",
        ValueError,
        "impl must be one of",
        lambda ops, x, W, dy: ops.conv2d_backward(dy, x, W, impl="Direct"),
    ),
    (
        "stride 0",
        ValueError,
        "stride must be >= 1",
        lambda ops, x, W, dy: ops.conv2d_backward(dy, x, W, stride=(1, 0)),
    ),
    ("dtype", TypeError, "dtype", lambda ops, x, W, dy: ops.conv2d_backward(dy.astype(np.float64), x, W)),
]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name,error,message,call", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_conv2d_errors(backend, name, error, message, call):
    x, W, b = _conv_args()
    with pytest.raises(error) as info:
        call(get_ops(backend), x, W, b)
    assert str(info.value).startswith("conv2d:")
    assert message in str(info.value)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name,error,message,call", BAD_BACKWARD, ids=[c[0] for c in BAD_BACKWARD])
def test_conv2d_backward_errors(backend, name, error, message, call):
    x, W, _ = _conv_args()
    dy = np.zeros((2, 4, 4, 4), np.float32)
    with pytest.raises(error) as info:
        call(get_ops(backend), x, W, dy)
    assert str(info.value).startswith("conv2d_backward:")
    assert message in str(info.value)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_im2col_col2im_errors(backend):
    ops = get_ops(backend)
    x = np.zeros((2, 3, 6, 6), np.float32)
    with pytest.raises(ValueError, match="^im2col: .*larger than the padded input"):
        ops.im2col(x, 7, 3)
    with pytest.raises(ValueError, match="^im2col: expected x with 4 dimensions"):
        ops.im2col(x[0], 3, 3)
    with pytest.raises(ValueError, match="^im2col: stride must be >= 1"):
        ops.im2col(x, 3, 3, stride=0)
    with pytest.raises(ValueError, match=r"^col2im: expected col of shape \(32, 27\)"):
        ops.col2im(np.zeros((32, 26), np.float32), x.shape, 3, 3)
    with pytest.raises(ValueError, match="^col2im: pad must be >= 0"):
        ops.col2im(np.zeros((32, 27), np.float32), x.shape, 3, 3, pad=-2)


# ------------------------------------------------- no float64 in float32 code

# float64 arithmetic, or a float32 value widened to float64. (Numba's own reshape code
# compares sizes as doubles, so fcmp/sitofp on doubles are not a sign of promotion.)
FLOAT64_OPS = re.compile(
    r"\b(fadd|fsub|fmul|fdiv|frem)( fast| nsz| arcp| contract| reassoc| afn)* "
    r"(<\d+ x )?double\b|\bfpext (<\d+ x )?float\b"
)


def float64_ops_in(py_func, sig, parallel):
    """Compile a fresh, uncached copy (cached code cannot be inspected) and grep its IR."""
    fresh = numba.njit(cache=False, fastmath=_config.FASTMATH, nogil=True, parallel=parallel)(py_func)
    fresh.compile(sig)
    ir = fresh.inspect_llvm(sig)
    return sorted(set(m.group(0) for m in FLOAT64_OPS.finditer(ir)))


def _float32_kernels():
    """Every conv/pool ParallelKernel with the float32 signatures this process compiled."""
    rng = np.random.default_rng(11)
    for shape, kernel, stride, pad, N in [
        ((2, 3, 5, 5), 3, 1, 1, 1),
        ((2, 3, 7, 7), 3, 2, 1, 1),
        ((8, 16, 16, 16), 3, 1, 1, 8),
        ((8, 16, 16, 16), 3, 2, 1, 8),
    ]:
        x, Wt, b, dy = _data(rng, N, shape[1], shape[2], shape[3], 4, kernel, kernel, stride, pad, np.float32)
        for impl in ("direct", "im2col"):
            NB.conv2d(x, Wt, b, stride, pad, impl)
            NB.conv2d(x, Wt, b, stride, pad, impl, activation="tanh")  # the full builds
            NB.conv2d_backward(dy, x, Wt, stride, pad, impl)
        col = NB.im2col(x, kernel, kernel, stride, pad)
        NB.col2im(col, x.shape, kernel, kernel, stride, pad)
        W1 = rng.standard_normal((4, shape[1], 1, 1)).astype(np.float32)
        y1 = NB.conv2d(x, W1, b, relu=True)  # "auto": the 1x1 kernels (conv.pointwise)
        NB.conv2d(x, W1, b, activation="sigmoid")
        NB.conv2d_backward(y1, x, W1, relu_out=y1)
        NB.conv2d_backward(y1, x, W1)
        y, argmax = NB.maxpool2d(x, 2, 1, 1)
        NB.maxpool2d_backward(y, argmax, x.shape, 2, 1, 1)
        NB.maxpool2d(x, 2, 2)  # the 2x2 stride-2 fast path
        NB.maxpool2d(x, 3, 3)  # stride 3: the row kernel (stride 1 takes the whole-plane one)
        NB.maxpool2d(x, 3, 1, 1)  # 3x3 stride 1 pad 1: a kernel of its own
        y = NB.avgpool2d(x, 2, 1, 1)
        NB.avgpool2d_backward(y, x.shape, 2, 1, 1)
        y = NB.avgpool2d(x, 2, 2)  # the 2x2 stride-2 fast paths
        NB.avgpool2d_backward(y, x.shape, 2, 2)
        NB.avgpool2d_backward(y, x.shape, 2, 2, activation="tanh", act_out=np.tanh(x))  # through tanh
        for p in (2, 3.0):  # p = 2 has a path of its own
            y = NB.lppool2d(x, 2, 1, 1, p=p)
            NB.lppool2d_backward(y, x, y, 2, 1, 1, p=p)
    for module in (conv_kernels, pool_kernels):
        for name in sorted(vars(module)):
            kernel = getattr(module, name)
            if isinstance(kernel, _config.ParallelKernel):
                yield name, kernel


def test_float32_kernels_have_no_float64_arithmetic():
    checked = 0
    for name, kernel in _float32_kernels():
        sigs = {sig for build in (kernel.serial, kernel.parallel) for sig in build.signatures}
        sigs = [sig for sig in sigs if "float32" in str(sig)]
        assert sigs, f"{name} was never compiled for float32"
        for sig in sigs:
            bad = float64_ops_in(kernel.py_func, sig, parallel=False)
            assert not bad, f"{name}{sig}: float64 arithmetic in a float32 kernel: {bad}"
            checked += 1
    assert checked >= 10


def test_float64_detector_catches_a_bare_literal():
    """The check above would fail if a kernel wrote a bare float literal.

    (``0.5 * x`` alone is exact, and LLVM folds it back to float32; inside a sum it
    is not: inserting ``0.5 * (...)`` in _conv_planes's inner loop fails the
    test above. Here 0.1, which cannot be folded, stands in for it.)
    """

    def halve(x, y):
        for i in range(x.size):
            y[i] = 0.1 * x[i]

    def halve_typed(x, y):
        half = conv_kernels.typed(x, 0.5)
        for i in range(x.size):
            y[i] = half * x[i]

    sig = (numba.float32[::1], numba.float32[::1])
    assert float64_ops_in(halve, sig, parallel=False)
    assert not float64_ops_in(halve_typed, sig, parallel=False)


def test_real_taps_of_the_polyphase_split():
    """The taps list the direct kernels get for a split's W': its real taps, or the empty
    "all taps" list when W' has none to skip; with the count either way."""
    from fastnn.kernels.conv import polyphase

    for C, K, S in [(3, 7, 3), (1, 5, 2), (16, 3, 2), (16, 3, 3), (8, 1, 2), (2, 2, 2)]:
        taps, count = numba_conv._real_taps(C, K, K, S, S)
        real = polyphase.phase_taps(C, K, K, S, S)
        QH, QW, KHq, KWq = polyphase.phase_counts(K, K, S, S)
        assert count == real.size == C * K * K  # every tap of W, once
        if real.size < QH * QW * C * KHq * KWq:
            np.testing.assert_array_equal(taps, real)
        else:
            assert taps.size == 0, (C, K, S)
