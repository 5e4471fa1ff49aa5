"""``out=(dW, db)`` of the backward ops: the gradients land in the given arrays."""

import numpy as np
import pytest

from fastnn.backends import get_ops

BACKENDS = ["numpy", "numba"]


def _affine_case(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 45)).astype(dtype)
    W = rng.standard_normal((45, 11)).astype(dtype)
    dy = rng.standard_normal((7, 11)).astype(dtype)
    return dict(dy=dy, x=x, W=W), W.shape, (11,)


def _conv_case(dtype, stride, impl):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 9, 9)).astype(dtype)
    W = rng.standard_normal((5, 4, 3, 3)).astype(dtype)
    oh = (9 + 2 - 3) // stride + 1
    dy = rng.standard_normal((3, 5, oh, oh)).astype(dtype)
    return dict(dy=dy, x=x, W=W, stride=stride, pad=1, impl=impl), W.shape, (5,)


CASES = [("affine_backward", lambda dt: _affine_case(dt))] + [
    ("conv2d_backward", lambda dt, s=s, i=i: _conv_case(dt, s, i))
    for s in (1, 2)
    for i in ("direct", "im2col")
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("op,case", CASES)
def test_out_receives_the_same_gradients(backend, dtype, input_grad, op, case):
    ops = get_ops(backend)
    kwargs, w_shape, b_shape = case(dtype)
    dx0, dW0, db0 = getattr(ops, op)(input_grad=input_grad, **kwargs)
    dW = np.full(w_shape, np.nan, dtype)
    db = np.full(b_shape, np.nan, dtype)
    dx, dW1, db1 = getattr(ops, op)(input_grad=input_grad, out=(dW, db), **kwargs)
    assert dW1 is dW and db1 is db
    np.testing.assert_array_equal(dW, dW0)
    np.testing.assert_array_equal(db, db0)
    if input_grad:
        np.testing.assert_array_equal(dx, dx0)
    else:
        assert dx is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,case", CASES[:2])
def test_out_is_checked(backend, op, case):
    ops = get_ops(backend)
    kwargs, w_shape, b_shape = case(np.float32)
    good_W, good_b = np.zeros(w_shape, np.float32), np.zeros(b_shape, np.float32)
    with pytest.raises(TypeError, match=f"{op}: out must be a pair"):
        getattr(ops, op)(out=good_W, **kwargs)
    with pytest.raises(ValueError, match=f"{op}: expected out dW of shape"):
        getattr(ops, op)(out=(np.zeros(w_shape, np.float64), good_b), **kwargs)
    with pytest.raises(ValueError, match=f"{op}: expected out db of shape"):
        getattr(ops, op)(out=(good_W, np.zeros(b_shape[0] + 1, np.float32)), **kwargs)
    strided = np.zeros((w_shape[0] * 2,) + w_shape[1:], np.float32)[::2]
    with pytest.raises(ValueError, match=f"{op}: out dW must be a writeable, C-contiguous"):
        getattr(ops, op)(out=(strided, good_b), **kwargs)
    frozen = good_b.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=f"{op}: out db must be a writeable"):
        getattr(ops, op)(out=(good_W, frozen), **kwargs)
