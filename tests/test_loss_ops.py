"""Loss ops (softmax cross-entropy, mean squared error): the Numba backend against the
NumPy reference, and both against float64 oracles and finite differences, on random
shapes and a grid that includes sizes above PARALLEL_THRESHOLD; label dtypes, huge
logits, and the label checks. (Serial/parallel builds, layouts and the other error
cases: test_op_contracts.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from op_helpers import (
    BACKENDS,
    DTYPES,
    GRID_SHAPES,
    NUMBA,
    NUMPY,
    assert_array,
    assert_close,
    dtypes,
    hyp,
    numeric_gradient,
    onehot,
    random,
    seeds,
    shapes,
    tolerance,
)


def ce_oracle(logits, t):
    """Mean cross-entropy in float64 through a log-sum-exp (t: class indices)."""
    z = logits.astype(np.float64)
    log_probs = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    return -log_probs[np.arange(len(t)), t].mean(), np.exp(log_probs)


def check_cross_entropy(n, c, dtype, seed, label_dtype=np.int64, scale=5.0):
    rng = np.random.default_rng(seed)
    logits = random(rng, (n, c), dtype, scale)
    labels = rng.integers(0, c, n).astype(label_dtype)
    loss64, probs64 = ce_oracle(logits, labels)
    soft = rng.random((n, c)).astype(dtype)
    soft /= soft.sum(axis=1, keepdims=True)
    for targets in (labels, onehot(labels, c, dtype), soft):
        kept = (logits.copy(), targets.copy())
        loss_ref, probs_ref = NUMPY.softmax_cross_entropy(logits, targets)
        loss, probs = NUMBA.softmax_cross_entropy(logits, targets)
        assert type(loss) is float and type(loss_ref) is float
        assert_array(probs, dtype, (n, c))
        assert_close(probs, probs_ref, dtype)
        assert_close(loss, loss_ref, dtype, scale=10)
        if targets is not soft:
            assert_close(loss, loss64, dtype, scale=10)
            assert_close(probs, probs64, dtype)
        grad_ref = NUMPY.softmax_cross_entropy_backward(probs_ref, targets)
        grad = NUMBA.softmax_cross_entropy_backward(probs_ref, targets)
        assert_array(grad, dtype, (n, c))
        assert_close(grad, grad_ref, dtype)
        np.testing.assert_array_equal(logits, kept[0])
        np.testing.assert_array_equal(targets, kept[1])


@hyp
@given(n=st.integers(1, 9), c=st.integers(1, 9), dtype=dtypes, seed=seeds)
def test_cross_entropy_random_shapes(n, c, dtype, seed):
    check_cross_entropy(n, c, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c", [(1, 1), (1, 10), (7, 3), (64, 10), (300, 300), (4000, 10)])
def test_cross_entropy_grid(n, c, dtype):
    check_cross_entropy(n, c, dtype, seed=7)


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8, np.intp])
def test_cross_entropy_label_dtypes(label_dtype):
    check_cross_entropy(6, 5, np.float32, seed=8, label_dtype=label_dtype)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_cross_entropy_one_hot_of_the_other_float_dtype(ops):
    rng = np.random.default_rng(9)
    logits, t = rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 4, 5)
    loss, probs = ops.softmax_cross_entropy(logits, onehot(t, 4, np.float64))
    assert probs.dtype == np.float32
    assert loss == pytest.approx(ops.softmax_cross_entropy(logits, t)[0], rel=1e-6)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_huge_logits_stay_finite(ops, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    t = np.array([1, 2, 0])
    loss, probs = ops.softmax_cross_entropy(logits, t)
    # Row losses: 2e4, log 2, log 3.
    expected = (2e4 + math.log(2) + math.log(3)) / 3
    assert math.isfinite(loss)
    assert loss == pytest.approx(expected, rel=tolerance(dtype)["rtol"])
    assert np.all(np.isfinite(probs))
    assert_close(probs, [[1, 0, 0], [0, 0.5, 0.5], [1 / 3] * 3], dtype)
    loss_hot, _ = ops.softmax_cross_entropy(logits, onehot(t, 3, dtype))
    assert loss_hot == pytest.approx(expected, rel=tolerance(dtype)["rtol"])
    grad = ops.softmax_cross_entropy_backward(probs, t)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1, 2, 10, 1000])
def test_cross_entropy_of_uniform_logits_is_log_c(ops, dtype, c):
    logits = np.full((4, c), 7.5, dtype=dtype)
    loss, probs = ops.softmax_cross_entropy(logits, np.arange(4) % c)
    assert loss == pytest.approx(math.log(c), rel=tolerance(dtype)["rtol"], abs=1e-6)
    assert_close(probs, np.full((4, c), 1 / c), dtype)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_cross_entropy_backward_matches_finite_differences(ops):
    rng = np.random.default_rng(10)
    logits, t = rng.standard_normal((3, 5)), rng.integers(0, 5, 3)
    _, probs = ops.softmax_cross_entropy(logits, t)
    grad = ops.softmax_cross_entropy_backward(probs, t)
    loss = lambda z: np.asarray(NUMPY.softmax_cross_entropy(z, t)[0])  # noqa: E731
    np.testing.assert_allclose(grad, numeric_gradient(loss, logits, 1.0), rtol=1e-6, atol=1e-9)


def check_mse(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    y, t = random(rng, shape, dtype), random(rng, shape, dtype)
    kept = (y.copy(), t.copy())
    diff = y.astype(np.float64) - t.astype(np.float64)
    n = shape[0]
    loss64 = 0.5 * np.sum(diff * diff) / n
    loss_ref, loss = NUMPY.mse(y, t), NUMBA.mse(y, t)
    assert type(loss) is float
    # a float32 sum of many squares: rounding grows with the number of terms
    rtol = 1e-10 if dtype == np.float64 else 1e-5 * max(1.0, math.log2(y.size))
    assert loss == pytest.approx(loss_ref, rel=rtol)
    assert loss == pytest.approx(loss64, rel=rtol)
    grad = NUMBA.mse_backward(y, t)
    assert_array(grad, dtype, shape)
    assert_close(grad, NUMPY.mse_backward(y, t), dtype)
    assert_close(grad, diff / n, dtype)
    np.testing.assert_array_equal(y, kept[0])
    np.testing.assert_array_equal(t, kept[1])


@hyp
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_mse_random_shapes(shape, dtype, seed):
    check_mse(shape, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GRID_SHAPES + [(3, 4097), (100_003,)], ids=str)
def test_mse_grid(shape, dtype):
    check_mse(shape, dtype, seed=11)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("op", ["softmax_cross_entropy", "softmax_cross_entropy_backward"])
@pytest.mark.parametrize("bad", [5, 7, -1])
def test_labels_out_of_range(ops, op, bad):
    logits = np.zeros((3, 5), np.float32)
    t = np.array([0, bad, 1])
    with pytest.raises(ValueError, match=rf"{op}\b.*\[0, 5\)"):
        getattr(ops, op)(logits, t)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("op", ["softmax_cross_entropy", "softmax_cross_entropy_backward"])
@pytest.mark.parametrize(
    "t",
    [np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2], np.float32), np.array([True, False, True])],
    ids=["float64", "float32", "bool"],
)
def test_float_class_indices_raise_type_error(ops, op, t):
    with pytest.raises(TypeError, match=op):
        getattr(ops, op)(np.zeros((3, 5), np.float32), t)


# ------------------------------------------------------------ sigmoid cross-entropy


def bce_oracle(logits, t):
    """Nielsen's C in float64, straight from the definition with p = sigmoid(z):
    -(1/N) sum t log p + (1 - t) log(1 - p); log p = -log(1 + exp(-z)) via logaddexp."""
    z = logits.astype(np.float64)
    t = t.reshape(z.shape).astype(np.float64)
    log_p, log_not_p = -np.logaddexp(0, -z), -np.logaddexp(0, z)
    loss = -(t * log_p + (1 - t) * log_not_p).sum() / len(z)
    return loss, np.exp(log_p)


def check_sigmoid_cross_entropy(n, c, dtype, seed, target_dtype=np.int64, scale=5.0, flat=False):
    rng = np.random.default_rng(seed)
    logits = random(rng, (n, c), dtype, scale)
    t = rng.integers(0, 2, (n,) if flat else (n, c)).astype(target_dtype)
    kept = (logits.copy(), t.copy())
    loss64, probs64 = bce_oracle(logits, t)
    loss_ref, probs_ref = NUMPY.sigmoid_cross_entropy(logits, t)
    loss, probs = NUMBA.sigmoid_cross_entropy(logits, t)
    assert type(loss) is float and type(loss_ref) is float
    assert_array(probs, dtype, (n, c))
    assert_array(probs_ref, dtype, (n, c))
    assert_close(probs, probs_ref, dtype)
    assert_close(probs, probs64, dtype)
    assert loss == pytest.approx(loss_ref, rel=tolerance(dtype)["rtol"] * 10, abs=1e-6)
    assert loss == pytest.approx(loss64, rel=tolerance(dtype)["rtol"] * 10, abs=1e-6)
    grad_ref = NUMPY.sigmoid_cross_entropy_backward(probs_ref, t)
    grad = NUMBA.sigmoid_cross_entropy_backward(probs_ref, t)
    assert_array(grad, dtype, (n, c))
    assert_close(grad, grad_ref, dtype)
    assert_close(grad, (probs64 - t.reshape(n, c)) / n, dtype)
    np.testing.assert_array_equal(logits, kept[0])
    np.testing.assert_array_equal(t, kept[1])


@hyp
@given(n=st.integers(1, 9), c=st.integers(1, 9), dtype=dtypes, seed=seeds)
def test_sigmoid_cross_entropy_random_shapes(n, c, dtype, seed):
    check_sigmoid_cross_entropy(n, c, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c", [(1, 1), (1, 10), (7, 3), (64, 10), (300, 300), (4000, 1)])
def test_sigmoid_cross_entropy_grid(n, c, dtype):
    check_sigmoid_cross_entropy(n, c, dtype, seed=12)


@pytest.mark.parametrize("target_dtype", [np.int64, np.int32, np.uint8, np.bool_, np.float32, np.float64])
@pytest.mark.parametrize("flat", [False, True], ids=["(N, 1)", "(N,)"])
def test_sigmoid_cross_entropy_target_dtypes_and_one_output(target_dtype, flat):
    check_sigmoid_cross_entropy(9, 1, np.float32, seed=13, target_dtype=target_dtype, flat=flat)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1, 4])
def test_sigmoid_cross_entropy_is_c_times_torch_bce_with_logits(dtype, c):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    logits, t = random(rng, (11, c), dtype), rng.integers(0, 2, (11, c))
    theirs = torch.tensor(logits, requires_grad=True)
    value = torch.nn.BCEWithLogitsLoss()(theirs, torch.tensor(t, dtype=theirs.dtype)) * c
    value.backward()
    for ops in BACKENDS:
        loss, probs = ops.sigmoid_cross_entropy(logits, t)
        assert loss == pytest.approx(value.item(), rel=tolerance(dtype)["rtol"] * 10)
        assert_close(ops.sigmoid_cross_entropy_backward(probs, t), theirs.grad.numpy(), dtype)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_cross_entropy_huge_logits_stay_finite(ops, dtype):
    logits = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 0.0]], dtype=dtype)
    t = np.array([[1, 0], [1, 0], [0, 1]])
    loss, probs = ops.sigmoid_cross_entropy(logits, t)
    # Row losses: 0, 1e4 + 1e4, 1e4 + log 2 (a confidently wrong output costs |z|).
    expected = (2e4 + 1e4 + math.log(2)) / 3
    assert math.isfinite(loss)
    assert loss == pytest.approx(expected, rel=tolerance(dtype)["rtol"])
    assert_close(probs, [[1, 0], [0, 1], [1, 0.5]], dtype)
    grad = ops.sigmoid_cross_entropy_backward(probs, t)
    assert np.all(np.isfinite(grad))
    assert_close(grad, np.array([[0, 0], [-1, 1], [1, -0.5]]) / 3, dtype)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_sigmoid_cross_entropy_backward_matches_finite_differences(ops):
    rng = np.random.default_rng(15)
    logits, t = rng.standard_normal((4, 3)) * 2, rng.integers(0, 2, (4, 3))
    _, probs = ops.sigmoid_cross_entropy(logits, t)
    grad = ops.sigmoid_cross_entropy_backward(probs, t)
    loss = lambda z: np.asarray(bce_oracle(z, t)[0])  # noqa: E731
    np.testing.assert_allclose(grad, numeric_gradient(loss, logits, 1.0), rtol=1e-6, atol=1e-9)


SIGMOID_TARGET_ERRORS = [
    (
        np.zeros((3, 2)),
        np.array([[0, 1], [1, 2], [0, 0]]),
        ValueError,
        r"0 or 1 .* 1 other value\(s\), e\.g\. 2",
    ),
    (np.zeros((3, 2)), np.array([[0, 0.5], [1, 1], [0, 0]]), ValueError, r"0 or 1 .* e\.g\. 0\.5"),
    (np.zeros((3, 1)), np.array([0.0, np.nan, 1.0]), ValueError, r"0 or 1 .* e\.g\. nan"),
    (np.zeros((3, 1)), np.array([0, -1, 1]), ValueError, r"0 or 1 .* e\.g\. -1"),
    (
        np.zeros((3, 2)),
        np.array([0, 1, 1]),
        ValueError,
        r"shape \(3, 2\), got \(3,\); .* SoftmaxCrossEntropy",
    ),
    (np.zeros((3, 2)), np.zeros((3, 3)), ValueError, r"shape \(3, 2\), got \(3, 3\)"),
    (np.zeros((3, 1)), np.zeros((2, 1)), ValueError, r"shape \(3, 1\) or \(3,\), got \(2, 1\)"),
    (np.zeros((3, 1)), np.zeros((3, 1, 1)), ValueError, r"shape \(3, 1\) or \(3,\), got \(3, 1, 1\)"),
    (np.zeros((3, 1)), [0, 1, 1], TypeError, r"targets as a numpy array, got list"),
    (np.zeros((3, 1)), np.array(["0", "1", "1"]), TypeError, r"integer, bool or float dtype, got <U1"),
    (np.zeros(3), np.zeros(3), ValueError, r"logits of shape \(N, C\), got \(3,\)"),
    (np.zeros((3, 0)), np.zeros((3, 0)), ValueError, r"at least one output"),
]


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("logits, t, error, message", SIGMOID_TARGET_ERRORS)
def test_sigmoid_cross_entropy_errors_name_the_op_and_the_shapes(ops, logits, t, error, message):
    with pytest.raises(error, match=r"^sigmoid_cross_entropy: .*" + message):
        ops.sigmoid_cross_entropy(logits, t)
    if isinstance(logits, np.ndarray) and logits.ndim == 2 and logits.shape[1]:
        with pytest.raises(error, match=r"^sigmoid_cross_entropy_backward: .*" + message):
            ops.sigmoid_cross_entropy_backward(logits, t)


# ------------------------------------------ class labels of shape (N, 1): a clear error


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("op", ["softmax_cross_entropy", "softmax_cross_entropy_backward"])
@pytest.mark.parametrize("label_dtype", [np.int64, np.uint8, np.bool_])
def test_column_of_class_labels_asks_for_ravel(ops, op, label_dtype):
    t = np.array([[0], [1], [1]], dtype=label_dtype)
    with pytest.raises(
        ValueError, match=rf"^{op}: class labels must be 1-D, shape \(3,\), .*\(3, 1\); pass t\.ravel\(\)"
    ):
        getattr(ops, op)(np.zeros((3, 4), np.float32), t)
    getattr(ops, op)(np.full((3, 4), 0.25, np.float32), t.ravel().astype(np.int64))  # what it suggests works


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_integer_one_hot_targets_say_what_to_pass(ops):
    with pytest.raises(
        TypeError,
        match=r"one-hot targets \(N, 4\) must be float32 or float64, got int64; "
        r"pass class labels of shape \(3,\) or t\.astype\(np\.float32\)",
    ):
        ops.softmax_cross_entropy(np.zeros((3, 4), np.float32), np.eye(4, dtype=np.int64)[:3])
