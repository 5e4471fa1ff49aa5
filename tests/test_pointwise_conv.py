"""The 1x1 stride-1 convolution as one BLAS product per image (fastnn.kernels.conv.pointwise):
the rule that picks it, its results against the reference forward and backward with every
fused extra, the float64 gradient check, and independence from the thread count."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.backends import get_ops, numba_conv
from fastnn.gradcheck import numerical_gradient
from fastnn.kernels.conv.channel_tiles import channel_block

REF = get_ops("numpy")
NB = get_ops("numba")
DTYPES = (np.float32, np.float64)


def tolerance(dtype):
    return dict(rtol=2e-4, atol=2e-4) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-10)


def pays(C, F, H, W, K=1, stride=1, pad=0, dtype=np.float32, forward=True):
    g = numba_conv.conv_geometry("t", np.zeros((2, C, H, W)), np.zeros((F, C, K, K)), stride, pad)
    return numba_conv._pointwise_pays(g, F, dtype, forward)


def test_the_rule_takes_1x1_layers_with_few_channels_or_narrow_rows():
    block = channel_block(np.float32)  # two vectors of channels; a vector of pixels is half
    assert pays(80, block // 4, 14, 14) and pays(120, block - 1, 64, 64)  # few output channels
    assert pays(256, 4 * block, block // 2 - 1, block // 2 - 1)  # rows narrower than a vector
    assert not pays(64, 4 * block, block // 2, block // 2)  # the zoo's pointwise_1x1 (64 -> 256, 16x16)
    assert pays(64, 4 * block, block // 2, block // 2, forward=False)  # backward: every 1x1 layer
    assert not pays(16, 8, 14, 14, K=3, pad=1)  # 3x3
    assert not pays(16, 8, 14, 14, pad=1)  # padded 1x1
    assert not pays(16, 8, 14, 14, stride=2)  # strided 1x1 (the polyphase split)
    assert not pays(16, 8, 14, 14, pad=1, forward=False) and not pays(16, 8, 14, 14, K=3, forward=False)
    wide = channel_block(np.float64)
    assert pays(64, wide - 1, 64, 64, dtype=np.float64) and not pays(64, wide, 64, 64, dtype=np.float64)


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 19),
    C=st.integers(1, 40),
    F=st.integers(1, 31),
    H=st.integers(1, 12),
    W=st.integers(1, 12),
    activation=st.sampled_from([None, "relu", "tanh", "sigmoid", "leaky_relu"]),
    residual=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_forward_and_backward_match_the_reference(N, C, F, H, W, activation, residual, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, 1, 1)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    res = rng.standard_normal((N, F, H, W)).astype(dtype) if residual else None
    kwargs = dict(activation=activation, alpha=0.1, residual=res)
    y = NB.conv2d(x, Wt, b, **kwargs)
    np.testing.assert_allclose(y, REF.conv2d(x, Wt, b, **kwargs), **tolerance(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    grad = {} if activation is None else dict(activation=activation, act_out=y, alpha=0.1)
    expected = REF.conv2d_backward(dy, x, Wt, **grad)
    for got, want, name in zip(NB.conv2d_backward(dy, x, Wt, **grad), expected, ("dx", "dW", "db")):
        np.testing.assert_allclose(got, want, **tolerance(dtype), err_msg=name)
    dx, dW, db = NB.conv2d_backward(dy, x, Wt, input_grad=False, **grad)
    assert dx is None
    np.testing.assert_allclose(dW, expected[1], **tolerance(dtype))
    out = (np.full(Wt.shape, 5.0, dtype), np.full(F, 5.0, dtype))
    dx, dW, db = NB.conv2d_backward(dy, x, Wt, weight_grad=False, out=out, **grad)
    assert dW is None and db is None and (out[0] == 5.0).all() and (out[1] == 5.0).all()
    np.testing.assert_allclose(dx, expected[0], **tolerance(dtype))
    dx, dW, db = NB.conv2d_backward(dy, x, Wt, out=out, **grad)
    assert dW is out[0] and db is out[1]
    np.testing.assert_allclose(dW, expected[1], **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_through_relu_and_max_pooling(dtype):
    """relu_out (the mask read in the kernel) and pool=(argmax, pooled) (routed back first)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 24, 8, 8)).astype(dtype)
    Wt = rng.standard_normal((12, 24, 1, 1)).astype(dtype)
    b = rng.standard_normal(12).astype(dtype)
    y = NB.conv2d(x, Wt, b, relu=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = REF.conv2d_backward(dy, x, Wt, relu_out=y)
    for got, want in zip(NB.conv2d_backward(dy, x, Wt, relu_out=y), expected):
        np.testing.assert_allclose(got, want, **tolerance(dtype))
    pooled, argmax = REF.maxpool2d(y, 2)
    dp = rng.standard_normal(pooled.shape).astype(dtype)
    got = NB.conv2d_backward(dp, x, Wt, pool=(argmax, pooled))
    want = REF.conv2d_backward(dp, x, Wt, pool=(argmax, pooled))
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, **tolerance(dtype))


def test_float64_gradients_numerically():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4, 3))
    Wt = rng.standard_normal((6, 5, 1, 1))
    b = rng.standard_normal(6)
    res = rng.standard_normal((3, 6, 4, 3))
    weights = rng.standard_normal((3, 6, 4, 3))

    def loss():
        return float((NB.conv2d(x, Wt, b, activation="tanh", residual=res) * weights).sum())

    y = NB.conv2d(x, Wt, b, activation="tanh", residual=res)
    dx, dW, db = NB.conv2d_backward(weights, x, Wt, activation="tanh", act_out=y)
    for analytic, wrt in ((dx, x), (dW, Wt), (db, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, wrt), rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, 40, 7, 7)).astype(np.float32)
    Wt = rng.standard_normal((24, 40, 1, 1)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    threads = numba.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            y = NB.conv2d(x, Wt, b, relu=True)
            results.append((y,) + NB.conv2d_backward(np.cos(y), x, Wt, relu_out=y))
    finally:
        numba.set_num_threads(threads)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
