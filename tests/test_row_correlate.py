"""The stride-1 input gradient on rows one vector wide (:mod:`fastnn.kernels.conv.row_correlate`).

Against the forward tiles it stands in for (:func:`~fastnn.kernels.conv.direct._conv_planes`
on the same padded gradient), bit for bit, and against the NumPy reference, on random
shapes: channels either side of a block of eight, odd row counts, kernels of 1 to 5 with
every padding, both dtypes; then through ``conv2d_backward``, where the rule sends it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn.backends import get_ops
from fastnn.kernels import tuning
from fastnn.kernels._simd import VECTOR_BYTES
from fastnn.kernels.conv.direct import HALF_TILES, OUT_BLOCK, _conv_planes, _pack_weights, _run, _tap_offsets
from fastnn.kernels.conv.row_correlate import correlate_rows, rows_pay

REF = get_ops("numpy")
NB = get_ops("numba")


def lanes_of(dtype) -> int:
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def padded_gradient(dy, H, W, KH, KW, PH, PW, L):
    """dy (F, OH, OW) inside the full correlation's zero border: (F, H+KH-1, W+KW-1), flat,
    with L + KW elements of zero slack."""
    F, OH, OW = dy.shape
    Hf, Wf = H + KH - 1, W + KW - 1
    dyn = np.zeros(F * Hf * Wf + L + KW, dy.dtype)
    planes = dyn[: F * Hf * Wf].reshape(F, Hf, Wf)
    planes[:, KH - 1 - PH : KH - 1 - PH + OH, KW - 1 - PW : KW - 1 - PW + OW] = dy
    return dyn, Hf, Wf


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    C=st.integers(1, 20),
    F=st.integers(1, 12),
    H=st.integers(1, 9),
    K=st.integers(1, 5),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_rows_give_the_tiles_bits_and_the_reference(C, F, H, K, data, dtype, seed):
    L = lanes_of(dtype)
    W = data.draw(st.integers(max(1, L // 2 + 1), L), label="W")  # rows of more than half a vector
    pad = data.draw(st.integers(0, K - 1), label="pad")
    OH, OW = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    if OH < 1 or OW < 1:
        return
    rng = np.random.default_rng(seed)
    Wt = rng.uniform(-1, 1, (F, C, K, K)).astype(dtype)
    dy = rng.uniform(-1, 1, (1, F, OH, OW)).astype(dtype)
    dy[0, :, ::3, 1::4] = 0  # exact zeros and signed zeros among the values
    dy[0, :, 1::5, ::3] = -0.0
    flipped = np.ascontiguousarray(Wt[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    packed, packed_zeros = _pack_weights(flipped, np.zeros(C, dtype))
    dyn, Hf, Wf = padded_gradient(dy[0], H, W, K, K, pad, pad, L)
    rows = np.full((C, H, W), np.nan, dtype)
    correlate_rows(dyn[: F * Hf * Wf], Hf, Wf, K, K, K - 1 - pad, OH, packed, np.empty(16 * L, dtype), rows)
    tiles = np.full((C, H, W), np.nan, dtype)
    acc = np.empty(max(1, OUT_BLOCK * _run(H, W, Wf)), dtype)
    _conv_planes(dyn, Wf, _tap_offsets(F, K, K, Hf, Wf), packed, packed_zeros, False, acc, tiles)
    np.testing.assert_array_equal(
        rows.view(f"i{np.dtype(dtype).itemsize}"), tiles.view(f"i{np.dtype(dtype).itemsize}")
    )
    x = np.zeros((1, C, H, W), dtype)
    want = REF.conv2d_backward(dy, x, Wt, 1, pad)[0][0]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(rows, want, rtol=tol, atol=tol * F * K * K)


def test_the_rule_takes_rows_of_13_to_15_float32_columns_kernels_above_3x3_and_16_channels_at_most():
    L = lanes_of(np.float32)
    most = tuning.ROW_CORRELATE_CHANNELS
    taken = {W for W in range(1, 2 * L) if rows_pay(6, 5, 5, W, L, False, most)}
    assert taken == set(range(-(-13 * L // 16), L))
    assert rows_pay(most, 5, 5, L - 2, L, False, most) and not rows_pay(most + 1, 5, 5, L - 2, L, False, most)
    assert rows_pay(6, 4, 3, L - 2, L, False, most) and not rows_pay(6, 3, 3, L - 2, L, False, most)
    assert not rows_pay(6, 5, 5, L - 2, L, True, most)  # AVX2: the tile's accumulators would spill


def test_the_backward_pass_runs_the_rows_item_where_the_rule_says(monkeypatch):
    """conv2d_backward hands direct_backward_s1 the rows item for LeNet-5's 6->16 5x5 layer
    and the tiles' item for a 3x3 one on the same plane; both give the reference's dx."""
    from fastnn.kernels import conv as conv_k

    given = []
    real = conv_k.backward_items

    def spy(dtype, rows=False):
        given.append(rows)
        return real(dtype, rows)

    monkeypatch.setattr(conv_k, "backward_items", spy)
    rng = np.random.default_rng(3)
    for K, pad, rows in [(5, 0, not HALF_TILES), (3, 1, False)]:
        given.clear()
        x = rng.uniform(-1, 1, (2, 6, 14, 14)).astype(np.float32)
        Wt = rng.uniform(-1, 1, (16, 6, K, K)).astype(np.float32)
        OH = 14 + 2 * pad - K + 1
        dy = rng.uniform(-1, 1, (2, 16, OH, OH)).astype(np.float32)
        dx = NB.conv2d_backward(dy, x, Wt, 1, pad, impl="direct")[0]
        assert given == [rows]
        np.testing.assert_allclose(dx, REF.conv2d_backward(dy, x, Wt, 1, pad)[0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "C, F, K, pad", [(6, 16, 5, 0), (8, 24, 5, 2), (16, 32, 4, 1), (4, 5, 5, 4), (9, 3, 5, 2)]
)
def test_conv2d_backward_through_the_rows_matches_the_reference(dtype, C, F, K, pad):
    """LeNet-5's 6->16 layer and GoogLeNet-style branches on 14-column planes (7 in float64),
    every mode of the gradient's read: as given, through a fused ReLU, through a fused
    ReLU and 2x2 max pooling."""
    L = lanes_of(dtype)
    H = W = L - 2 if dtype == np.float32 else L - 1  # 14 and 7 columns
    if (
        not rows_pay(C, K, K, W, L, HALF_TILES, tuning.ROW_CORRELATE_CHANNELS)
        or C <= tuning.SCATTER_MAX_CHANNELS
    ):
        pytest.skip("the rule does not send this layer to the rows here")
    rng = np.random.default_rng(C * 10 + K)
    x = rng.uniform(-1, 1, (3, C, H, W)).astype(dtype)
    Wt = rng.uniform(-1, 1, (F, C, K, K)).astype(dtype)
    b = np.zeros(F, dtype)
    y = NB.conv2d(x, Wt, b, 1, pad, relu=True)
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    dx, dW, db = NB.conv2d_backward(dy, x, Wt, 1, pad)
    want = REF.conv2d_backward(dy, x, Wt, 1, pad)
    for got, ref in zip((dx, dW, db), want):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * F * K * K * 10)
    fused = NB.conv2d_backward(dy, x, Wt, 1, pad, relu_out=y)[0]
    np.testing.assert_array_equal(fused, NB.conv2d_backward(NB.relu_backward(dy, y), x, Wt, 1, pad)[0])
    np.testing.assert_allclose(
        fused, REF.conv2d_backward(dy * (y > 0), x, Wt, 1, pad)[0], rtol=tol, atol=tol * F * K * K * 10
    )
    if y.shape[2] % 2 == 0:
        pooled, argmax = NB.maxpool2d(y, 2, 2, 0)
        dp = rng.uniform(-1, 1, pooled.shape).astype(dtype)
        through = NB.conv2d_backward(dp, x, Wt, 1, pad, pool=(argmax, pooled))[0]
        routed = NB.relu_backward(NB.maxpool2d_backward(dp, argmax, y.shape, 2, 2, 0), y)
        np.testing.assert_array_equal(through, NB.conv2d_backward(routed, x, Wt, 1, pad)[0])
