"""The channel-tiled convolution: forward (any stride; stride-1 planes narrower than a
vector) and backward (any stride).

Against the NumPy reference on random shapes that cross whole channel blocks (two vectors:
32 float32 or 16 float64 channels) and whole pixel tiles (10 pixels forward on AVX-512, 12
backward and on AVX2), odd sizes included, both dtypes, both builds; the forward tile
against the backward tile it stands in for, bit for bit; fused activations and a residual
bit for bit equal to the separate ops; and its narrow-row padding against ``np.pad``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastnn.backends import get_ops, numba_conv
from fastnn.kernels import conv as conv_k
from fastnn.kernels.activations import ACT_IDENTITY, ACTIVATION_CODES
from fastnn.kernels.conv.channel_tiles import FORWARD_PIXELS, _forward_tile_2v10, channel_block
from fastnn.kernels.conv.direct_backward import DW_TAPS, _dw_tile_2v12
from fastnn.kernels.conv.modes import DY_AS_GIVEN, DY_RELU_MASKED
from fastnn.kernels.conv.padding import _pad_image_narrow

REF = get_ops("numpy")
NB = get_ops("numba")
NONE = {np.float32: np.empty((0, 0, 0, 0), np.float32), np.float64: np.empty((0, 0, 0, 0), np.float64)}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tolerances(dtype):
    return (2e-5, 2e-5) if dtype == np.float32 else (1e-12, 1e-12)


def run(x, W, b, stride, pad, code=ACT_IDENTITY, alpha=0.0, res=None, build="parallel"):
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH, OW = (H + 2 * pad - KH) // stride + 1, (Wd + 2 * pad - KW) // stride + 1
    y = np.full((N, F, OH, OW), np.nan, x.dtype)
    kernel = getattr(conv_k.channel_tiled_forward, build)
    rows = conv_k.pack_weight_rows(W)
    kernel(
        x,
        rows,
        b,
        KH,
        KW,
        stride,
        stride,
        pad,
        pad,
        code,
        x.dtype.type(alpha),
        NONE[x.dtype.type] if res is None else res,
        y,
    )
    return y


#: Random geometries: planes of one pixel to more than a vector, kernels 1x1 to 5x5,
#: strides 1 to 3; the channel counts are each test's.
GEOMETRY = dict(
    N=st.integers(1, 3),
    H=st.integers(1, 20),
    W=st.integers(1, 20),
    K=st.integers(1, 5),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    dtype=st.sampled_from([np.float32, np.float64]),
    build=st.sampled_from(["serial", "parallel"]),
    seed=st.integers(0, 2**31),
)


@SETTINGS
@given(C=st.integers(1, 7), F=st.integers(1, 70), **GEOMETRY)
def test_matches_the_reference_on_random_shapes(N, C, F, H, W, K, stride, pad, dtype, build, seed):
    assume(K <= H + 2 * pad and K <= W + 2 * pad)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(dtype)
    Wt = rng.uniform(-1, 1, (F, C, K, K)).astype(dtype)
    b = rng.uniform(-1, 1, F).astype(dtype)
    x_before = x.copy()
    y = run(x, Wt, b, stride, pad, build=build)
    rtol, atol = tolerances(dtype)
    np.testing.assert_allclose(y, REF.conv2d(x, Wt, b, stride, pad), rtol=rtol, atol=atol * C * K * K)
    np.testing.assert_array_equal(x, x_before)


@SETTINGS
@given(
    C=st.integers(1, 9),
    KH=st.integers(1, 5),
    KW=st.integers(1, 5),
    OH=st.integers(1, 9),
    OW=st.integers(1, 13),
    stride=st.integers(1, 3),
    blocks=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_the_forward_tile_gives_the_backward_tiles_sums(C, KH, KW, OH, OW, stride, blocks, dtype, seed):
    """_forward_tile_2v10 (one flat loop over the taps) against _dw_tile_2v12 run in the forward
    role (loops over channels, rows and columns), which the AVX2 build keeps: every pixel of
    every tile, first, middle and clamped last ones, the same bits, for any block of
    channels f0 of a wider weight row."""
    rng = np.random.default_rng(seed)
    L = channel_block(dtype) // 2
    Fp = 2 * L * blocks
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW + int(rng.integers(0, 3))
    plane = Hp * Wp
    T = C * KH * KW
    xn = rng.uniform(-1, 1, C * plane).astype(dtype)
    w_flat = rng.uniform(-1, 1, T * Fp).astype(dtype)
    P = OH * OW
    pix = np.array([(p // OW) * stride * Wp + (p % OW) * stride for p in range(P)], np.int64)
    taps = np.array([c * plane + kh * Wp + kw for c in range(C) for kh in range(KH) for kw in range(KW)])
    weights = w_flat.reshape(T, Fp)
    rtol, atol = tolerances(dtype)
    for f0 in range(0, Fp, 2 * L):
        for p0 in range(0, P, FORWARD_PIXELS):
            got = np.full(FORWARD_PIXELS * 2 * L, np.nan, dtype)
            want = np.full(DW_TAPS * 2 * L, np.nan, dtype)
            _forward_tile_2v10(xn, w_flat, T, KH, KW, Wp, plane, pix, f0, p0, P, Fp, L, got)
            _dw_tile_2v12(xn, w_flat, C, pix, f0, p0, P, KH, KW, Wp, 1, Fp, plane, L, want)
            np.testing.assert_array_equal(got, want[: got.size], err_msg=f"f0={f0} p0={p0}")
            pixels = min(FORWARD_PIXELS, P - p0)
            exact = np.zeros((pixels, 2 * L))
            for k in range(pixels):
                exact[k] = xn[taps + pix[p0 + k]] @ weights[:, f0 : f0 + 2 * L]
            np.testing.assert_allclose(got.reshape(-1, 2 * L)[:pixels], exact, rtol=rtol, atol=atol * T)


@SETTINGS
@given(C=st.integers(1, 40), F=st.integers(1, 40), **GEOMETRY)
def test_backward_matches_the_reference_on_random_shapes(N, C, F, H, W, K, stride, pad, dtype, build, seed):
    """dW and db (:func:`channel_tiled_weights`, output channels along the lanes) and dx
    (:func:`channel_tiled_data`, input channels along the lanes): F and C either side of a
    block, images in one chunk or several groups."""
    assume(K <= H + 2 * pad and K <= W + 2 * pad)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(dtype)
    Wt = rng.uniform(-1, 1, (F, C, K, K)).astype(dtype)
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    dy = rng.uniform(-1, 1, (N, F, OH, OW)).astype(dtype)
    dx_ref, dW_ref, db_ref = REF.conv2d_backward(dy, x, Wt, stride, pad)
    geometry = (K, K, stride, stride, pad, pad)
    rtol, atol = tolerances(dtype)
    relu_out = np.maximum(rng.uniform(-1, 1, dy.shape), 0).astype(dtype)
    masked_ref = REF.conv2d_backward(dy * (relu_out > 0), x, Wt, stride, pad)
    for mode, relu, want in [
        (DY_AS_GIVEN, dy, (dx_ref, dW_ref, db_ref)),
        (DY_RELU_MASKED, relu_out, masked_ref),
    ]:
        dW, db = np.full(Wt.shape, np.nan, dtype), np.full(F, np.nan, dtype)
        dx = np.full(x.shape, np.nan, dtype)
        getattr(conv_k.channel_tiled_weights, build)(x, dy, relu, mode, *geometry, dW, db)
        getattr(conv_k.channel_tiled_data, build)(dy, relu, mode, conv_k.pack_tap_rows(Wt), *geometry, dx)
        np.testing.assert_allclose(dW, want[1], rtol=rtol, atol=atol * N * OH * OW)
        np.testing.assert_allclose(db, want[2], rtol=rtol, atol=atol * N * OH * OW)
        np.testing.assert_allclose(dx, want[0], rtol=rtol, atol=atol * F * K * K)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "K, stride, pad, H, W",
    [
        (1, 2, 0, 9, 8),  # phases without taps (zeros), dy's planes read as they are
        (1, 3, 1, 10, 7),  # the same, with padding dropped at the borders
        (3, 2, 1, 14, 13),  # one and two taps per phase, a zero row after dy
        (5, 2, 2, 11, 12),  # zero rows before and after
        (3, 3, 0, 17, 16),  # one tap per phase, no border
        (4, 3, 2, 8, 9),  # phases of one and two taps, the last input rows in no window
        (2, 1, 1, 6, 5),  # stride 1: one phase, the whole kernel flipped
    ],
)
def test_the_input_gradient_covers_every_phase(K, stride, pad, H, W, dtype):
    """:func:`channel_tiled_data` splits the input pixels by stride phase: each phase's taps,
    the zero border dy needs for them, phases without taps and input pixels no window
    covers, in both modes and builds, against the reference; C past a whole block."""
    rng = np.random.default_rng(K * 100 + stride * 10 + pad)
    N, C, F = 2, channel_block(dtype) + 3, 7
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(dtype)
    Wt = rng.uniform(-1, 1, (F, C, K, K)).astype(dtype)
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    dy = rng.uniform(-1, 1, (N, F, OH, OW)).astype(dtype)
    relu_out = np.maximum(rng.uniform(-1, 1, dy.shape), 0).astype(dtype)
    rtol, atol = tolerances(dtype)
    for mode, relu, g in [(DY_AS_GIVEN, dy, dy), (DY_RELU_MASKED, relu_out, dy * (relu_out > 0))]:
        want = REF.conv2d_backward(g, x, Wt, stride, pad)[0]
        for build in ("serial", "parallel"):
            dx = np.full(x.shape, np.nan, dtype)
            rows = conv_k.pack_tap_rows(Wt)
            getattr(conv_k.channel_tiled_data, build)(
                dy, relu, mode, rows, K, K, stride, stride, pad, pad, dx
            )
            np.testing.assert_allclose(dx, want, rtol=rtol, atol=atol * F * K * K, err_msg=f"{mode} {build}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_backward_takes_the_channel_tiles_where_the_rule_says(dtype, monkeypatch):
    """conv2d_backward at a stride: dW through the channel tiles for F >= block, dx for
    C >= block, each part alone otherwise through its own rule; the reference's numbers."""
    calls = []
    for name in ("channel_tiled_weights", "channel_tiled_data"):
        real = getattr(conv_k, name)
        monkeypatch.setattr(conv_k, name, lambda *a, real=real, name=name: (calls.append(name), real(*a))[1])
    rng = np.random.default_rng(9)
    block = channel_block(dtype)
    for C, F, expect in [
        (block, block, {"channel_tiled_weights", "channel_tiled_data"}),
        (block - 1, block, {"channel_tiled_weights"}),
        (block, block - 1, {"channel_tiled_data"}),
        (3, 5, set()),
    ]:
        calls.clear()
        x = rng.standard_normal((3, C, 11, 11)).astype(dtype)
        Wt = rng.standard_normal((F, C, 3, 3)).astype(dtype)
        y = NB.conv2d(x, Wt, np.zeros(F, dtype), 2, 1, relu=True)
        dy = rng.standard_normal(y.shape).astype(dtype)
        got = NB.conv2d_backward(dy, x, Wt, 2, 1, relu_out=y)
        assert set(calls) == expect, (C, F)
        unfused = NB.conv2d_backward(NB.relu_backward(dy, y), x, Wt, 2, 1)
        for a, b in zip(got, unfused):  # the ReLU's mask read with dy: the same bits
            np.testing.assert_array_equal(a, b)
        want = REF.conv2d_backward(dy * (y > 0), x, Wt, 2, 1)
        rtol, atol = tolerances(dtype)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * 100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_input_gradients_without_weight_gradients_take_the_build_without_their_code(
    dtype, monkeypatch
):
    """Every im2col backward call without weight gradients (a frozen layer, or dx alone when
    the channel tiles or polyphase take dW) runs ``im2col_backward_data``, and every call
    with them ``im2col_backward``; the reference's numbers either way."""
    calls = []  # (kernel, its weight_grad argument)

    def spy(name):
        real = getattr(conv_k, name)
        return lambda work, *args: (calls.append((name, args[10])), real(work, *args))[1]

    for name in ("im2col_backward", "im2col_backward_data"):
        monkeypatch.setattr(conv_k, name, spy(name))
    rng = np.random.default_rng(4)
    block = channel_block(dtype)
    rtol, atol = tolerances(dtype)
    for C, F, weight_grad in [(block - 1, block, True), (3, 5, True), (3, 5, False), (block, 5, True)]:
        x = rng.standard_normal((3, C, 11, 11)).astype(dtype)
        Wt = rng.standard_normal((F, C, 3, 3)).astype(dtype)
        dy = rng.standard_normal((3, F, 6, 6)).astype(dtype)
        got = NB.conv2d_backward(dy, x, Wt, 2, 1, weight_grad=weight_grad)
        np.testing.assert_allclose(
            got[0], REF.conv2d_backward(dy, x, Wt, 2, 1)[0], rtol=rtol, atol=atol * 100
        )
    assert {name for name, _ in calls} == {"im2col_backward", "im2col_backward_data"}
    for name, weight_grad in calls:
        assert (name == "im2col_backward_data") == (not weight_grad), (name, weight_grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, H, pad", [(2, 14, 1), (3, 17, 0), (1, 7, 1), (1, 9, 2)])
def test_fused_activations_and_residual_give_the_separate_ops_bits(dtype, stride, H, pad):
    rng = np.random.default_rng(3)
    F = channel_block(dtype) + 5  # a whole block and a part one
    x = rng.standard_normal((3, 6, H, H)).astype(dtype)
    Wt = rng.standard_normal((F, 6, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    plain = run(x, Wt, b, stride, pad)
    for name in ("relu", "sigmoid", "tanh", "leaky_relu"):
        alpha = 0.1 if name == "leaky_relu" else 0.0
        fused = run(x, Wt, b, stride, pad, ACTIVATION_CODES[name], alpha)
        separate = {
            "relu": NB.relu,
            "sigmoid": NB.sigmoid,
            "tanh": NB.tanh,
            "leaky_relu": lambda v: NB.leaky_relu(v, alpha),
        }[name](plain)
        np.testing.assert_array_equal(fused, separate, err_msg=name)
    res = rng.standard_normal(plain.shape).astype(dtype)
    fused = run(x, Wt, b, stride, pad, ACTIVATION_CODES["relu"], 0.0, res)
    np.testing.assert_array_equal(fused, NB.add_relu(plain, res))


def test_nan_stays_nan_through_the_fused_relu():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[1, 2, 4, 4] = np.nan
    Wt = rng.standard_normal((40, 3, 3, 3)).astype(np.float32)
    y = run(x, Wt, np.zeros(40, np.float32), 2, 1, ACTIVATION_CODES["relu"])
    assert np.isnan(y[1]).any() and not np.isnan(y[0]).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(REF.conv2d(x, Wt, np.zeros(40, np.float32), 2, 1)))


def test_thread_count_does_not_change_the_bits():
    """Forward and backward (dx per image, dW over fixed groups of images added in order)."""
    import numba

    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 5, 13, 13)).astype(np.float32)
    Wt = rng.standard_normal((45, 5, 3, 3)).astype(np.float32)
    b = rng.standard_normal(45).astype(np.float32)
    many = run(x, Wt, b, 2, 1)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = run(x, Wt, b, 2, 1)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(run(x, Wt, b, 2, 1, build="serial"), many)
    dy = rng.standard_normal(many.shape).astype(np.float32)

    def backward(threads):
        numba.set_num_threads(threads)
        try:
            return NB.conv2d_backward(dy, x, Wt, 2, 1, impl="direct")
        finally:
            numba.set_num_threads(before)

    for a, b in zip(backward(1), backward(before)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(
    C=st.integers(1, 4),
    H=st.integers(1, 12),
    W=st.integers(1, 40),
    top=st.integers(0, 3),
    left=st.integers(0, 3),
    extra_rows=st.integers(0, 3),
    extra_cols=st.integers(0, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_narrow_padding_matches_np_pad(C, H, W, top, left, extra_rows, extra_cols, dtype):
    """Every padded element right, and nothing written past the slack the doc asks for."""
    L = 64 // np.dtype(dtype).itemsize
    src = np.random.default_rng(H * W).uniform(-1, 1, (C, H, W)).astype(dtype)
    Hin, Win = top + H + extra_rows, left + W + extra_cols
    slack = -(-W // L) * L
    dst = np.full(C * Hin * Win + slack + 5, 7.0, dtype)
    _pad_image_narrow(src, top, left, Hin, Win, dst, L)
    expected = np.pad(src, ((0, 0), (top, extra_rows), (left, extra_cols)))
    np.testing.assert_array_equal(dst[: C * Hin * Win].reshape(C, Hin, Win), expected)
    assert np.all(dst[C * Hin * Win + slack :] == 7.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_op_takes_the_channel_tiles_where_the_rule_says(dtype, monkeypatch):
    """conv2d runs channel_tiled_forward for strided layers of a full block of channels and
    for stride-1 planes narrower than a vector, and gives the reference's numbers there."""
    calls = []
    for name in ("channel_tiled_forward", "channel_tiled_forward_rectified"):  # any activation's build
        real = getattr(conv_k, name)
        monkeypatch.setattr(conv_k, name, lambda *a, real=real: (calls.append(a), real(*a))[1])
    rng = np.random.default_rng(8)
    block = channel_block(dtype)
    L = block // 2
    for C, F, H, K, stride, pad, expect in [
        (4, block, 14, 3, 2, 1, True),
        (4, block - 1, 14, 3, 2, 1, False),  # not a whole block: polyphase or im2col
        (4, block, 14, 1, 2, 0, False),  # 1x1: polyphase
        (4, block, L - 3, 3, 1, 1, True),  # stride 1, narrow
        (4, block, L + 1, 3, 1, 1, False),  # stride 1, a vector wide: the pixel tiles
        (4, block, L - 3, 1, 1, 0, False),  # stride 1, narrow, 1x1: no junk columns
    ]:
        calls.clear()
        x = rng.standard_normal((2, C, H, H)).astype(dtype)
        Wt = rng.standard_normal((F, C, K, K)).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        y = NB.conv2d(x, Wt, b, stride, pad, relu=True)
        assert bool(calls) == expect, (C, F, H, K, stride)
        rtol, atol = tolerances(dtype)
        np.testing.assert_allclose(
            y, np.maximum(REF.conv2d(x, Wt, b, stride, pad), 0), rtol=rtol, atol=atol * 40
        )
        g = numba_conv.conv_geometry("t", x, Wt, stride, pad)
        assert (numba_conv._choose(g, F, forward=True, dtype=dtype) == "direct") == (expect or stride == 1)
