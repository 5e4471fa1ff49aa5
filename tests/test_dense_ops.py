"""Dense ops: the Numba backend against the NumPy reference, and both against the math.

Every forward and backward op (affine, activations, losses) is compared on random
shapes (hypothesis: odd and size-1 dimensions) and on a fixed grid that includes
sizes above PARALLEL_THRESHOLD, so both the serial and the parallel build of each
kernel run. We also call ``kernel.serial`` and ``kernel.parallel`` directly on the
same data, check dtypes, shapes and that inputs are left alone, feed strided,
transposed and read-only arrays, check the error contract, and compare with
independent oracles (closed forms, finite differences) where that is cheap.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn._config import PARALLEL_THRESHOLD, ParallelKernel
from fastnn.backends import get_ops
from fastnn.kernels import activations, affine, losses

NUMPY = get_ops("numpy")
NUMBA = get_ops("numba")
BACKENDS = [NUMPY, NUMBA]
DTYPES = [np.float32, np.float64]

# Shapes for the fixed grid: size-1 and odd dims (serial) and 300x300 (parallel).
BIG = (300, 300)
GRID_SHAPES = [(1,), (7,), (1, 1), (3, 5), (2, 3, 4), (5, 1, 3), BIG]
assert math.prod(BIG) >= PARALLEL_THRESHOLD > 7 * 5 * 3

# Activations: name -> (what the backward takes besides dy, keyword arguments).
ACTIVATIONS = {
    "identity": ("x", {}),
    "step": ("x", {}),
    "sigmoid": ("y", {}),
    "tanh": ("y", {}),
    "relu": ("x", {}),
    "leaky_relu": ("x", {"alpha": 0.2}),
    "softmax": ("y", {}),
}

hyp = settings(max_examples=30, deadline=None)
shapes = st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple)
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


# ----------------------------------------------------------------- helpers

def tolerance(dtype) -> dict:
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-10, atol=1e-12)


def assert_close(actual, expected, dtype, scale=1.0):
    """Compare with the dtype's tolerance; ``scale`` widens atol for values of that size."""
    tol = tolerance(dtype)
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def assert_array(actual, dtype, shape):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == dtype, f"got {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == tuple(shape)


def random(rng, shape, dtype, scale=3.0):
    """Normal values with about one in eight set to exactly 0 (the kink of relu/step)."""
    x = rng.standard_normal(shape) * scale
    x[rng.random(shape) < 0.125] = 0.0
    return x.astype(dtype)


def activation(ops, name, x, dy):
    """(y, dx) from ``ops``; the backward gets the reference's y, so both backends see equal inputs."""
    takes, kwargs = ACTIVATIONS[name]
    y = getattr(ops, name)(x, **kwargs)
    ref = x if takes == "x" else getattr(NUMPY, name)(x, **kwargs)
    dx = getattr(ops, name + "_backward")(dy, ref, **kwargs)
    return y, dx


def check_activation(name, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x, dy = random(rng, shape, dtype), random(rng, shape, dtype)
    x0, dy0 = x.copy(), dy.copy()
    y_ref, dx_ref = activation(NUMPY, name, x, dy)
    y, dx = activation(NUMBA, name, x, dy)
    for out in (y, dx, y_ref, dx_ref):
        assert_array(out, dtype, shape)
    assert_close(y, y_ref, dtype)
    assert_close(dx, dx_ref, dtype, scale=10)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


def numeric_gradient(f, x, dy, h=1e-6):
    """d sum(dy * f(x)) / dx by central differences (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + h
        plus = np.sum(dy * f(x))
        x[i] = orig - h
        minus = np.sum(dy * f(x))
        x[i] = orig
        grad[i] = (plus - minus) / (2 * h)
    return grad


# ------------------------------------------------------------ activations

@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@hyp
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_activation_random_shapes(name, shape, dtype, seed):
    check_activation(name, shape, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GRID_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grid(name, shape, dtype):
    check_activation(name, shape, dtype, seed=1)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_default_alpha(ops, dtype):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=dtype)
    assert_close(ops.leaky_relu(x), np.where(x > 0, x, 0.01 * x), dtype)
    dy = np.full_like(x, 3.0)
    assert_close(ops.leaky_relu_backward(dy, x), np.where(x > 0, 3.0, 0.03), dtype)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_sigmoid_oracle_and_extremes(ops):
    x = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(ops.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-12, atol=1e-300)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        for dtype in DTYPES:
            extreme = np.array([-1e4, -200.0, 0.0, 200.0, 1e4], dtype=dtype)
            y = ops.sigmoid(extreme)
            assert y.dtype == dtype and np.all(np.isfinite(y))
            np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_propagate(ops, dtype):
    """The training loop stops on NaN, so no activation may swallow one."""
    x = np.array([np.nan, -np.inf, -1.0, 0.0, 1.0, np.inf], dtype=dtype)
    for name in ("identity", "sigmoid", "tanh", "relu", "leaky_relu"):
        y = getattr(ops, name)(x)
        assert np.isnan(y[0]), name
        np.testing.assert_array_equal(np.isnan(y[1:]), False, err_msg=name)
    np.testing.assert_array_equal(ops.relu(x)[1:], [0, 0, 0, 1, np.inf])
    assert np.isnan(ops.softmax(x[None, :3])).all()


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "leaky_relu", "softmax"])
def test_activation_backward_matches_finite_differences(ops, name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4)) * 2 + 0.1  # away from leaky_relu's kink at 0
    x[np.abs(x) < 0.05] = 0.3
    dy = rng.standard_normal((3, 4))
    _, dx = activation(ops, name, x, dy)
    f = lambda z: getattr(NUMPY, name)(z, **ACTIVATIONS[name][1])  # noqa: E731
    np.testing.assert_allclose(dx, numeric_gradient(f, x, dy), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (6,), (4, 1), (4, 9), (2, 3, 5), BIG], ids=str)
def test_softmax_properties(ops, dtype, shape):
    rng = np.random.default_rng(3)
    x = random(rng, shape, dtype, scale=5)
    y = ops.softmax(x)
    assert_array(y, dtype, shape)
    assert np.all(y >= 0)
    assert_close(y.sum(axis=-1), np.ones(shape[:-1]), dtype, scale=10)
    # softmax is invariant to a shift of each row, and its backward rows sum to 0.
    assert_close(ops.softmax(x + dtype(5)), y, dtype)
    dx = ops.softmax_backward(random(rng, shape, dtype), y)
    assert_close(dx.sum(axis=-1), np.zeros(shape[:-1]), dtype, scale=100)


def test_softmax_is_over_the_last_axis():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    expected = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    for ops in BACKENDS:
        np.testing.assert_allclose(ops.softmax(x), expected, rtol=1e-12)


# ------------------------------------------------------------------ affine

def check_affine(n, d, m, dtype, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (random(rng, s, dtype) for s in [(n, d), (d, m), (m,)])
    dy = random(rng, (n, m), dtype)
    inputs = [a.copy() for a in (x, W, b, dy)]
    x64, W64, b64, dy64 = (a.astype(np.float64) for a in (x, W, b, dy))
    # float64 oracle, and the textbook bound on a length-k dot product's rounding error:
    # |fl(A @ B) - A @ B| <= k * eps * (|A| @ |B|).
    eps = np.finfo(dtype).eps
    expected = {
        "y": (x64 @ W64 + b64, (d + 1) * eps * (abs(x64) @ abs(W64) + abs(b64))),
        "dx": (dy64 @ W64.T, m * eps * (abs(dy64) @ abs(W64.T))),
        "dW": (x64.T @ dy64, n * eps * (abs(x64.T) @ abs(dy64))),
        "db": (dy64.sum(axis=0), n * eps * abs(dy64).sum(axis=0)),
    }
    shapes = {"y": (n, m), "dx": (n, d), "dW": (d, m), "db": (m,)}
    got = {}
    for ops in BACKENDS:
        got[ops] = dict(zip(["dx", "dW", "db"], ops.affine_backward(dy, x, W)))
        got[ops]["y"] = ops.affine(x, W, b)
        for key, (value, bound) in expected.items():
            assert_array(got[ops][key], dtype, shapes[key])
            error = np.abs(got[ops][key] - value)
            assert np.all(error <= 2 * bound + np.finfo(dtype).tiny), (ops, key, error.max())
    for key, (_, bound) in expected.items():
        error = np.abs(got[NUMBA][key].astype(np.float64) - got[NUMPY][key])
        assert np.all(error <= 4 * bound + np.finfo(dtype).tiny), (key, error.max())
    for before, after in zip(inputs, (x, W, b, dy)):
        np.testing.assert_array_equal(before, after)


@hyp
@given(n=st.integers(1, 9), d=st.integers(1, 9), m=st.integers(1, 9), dtype=dtypes, seed=seeds)
def test_affine_random_shapes(n, d, m, dtype, seed):
    check_affine(n, d, m, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, d, m", [(1, 1, 1), (1, 7, 1), (5, 1, 3), (3, 5, 7), (64, 33, 17),
                                     (300, 150, 200), (257, 3, 300)])
def test_affine_grid(n, d, m, dtype):
    check_affine(n, d, m, dtype, seed=5)


# ------------------------------------------------------------------ losses

def onehot(t, classes, dtype):
    return np.eye(classes, dtype=dtype)[t]


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


# -------------------------------------------------- serial vs parallel builds

def kernel_cases(rng, dtype):
    """kernel -> (inputs, outputs to allocate) for a direct call of each build."""
    n, c, m = 37, 130, 70  # m: more than one of affine's COLUMN_BLOCKs
    assert m > affine.COLUMN_BLOCK
    x = random(rng, (n * c,), dtype)
    dy = random(rng, (n * c,), dtype)
    rows, drows = x.reshape(n, c), dy.reshape(n, c)
    probs = NUMPY.softmax(rows)
    labels = rng.integers(0, c, n)
    hot = onehot(labels, c, dtype)
    W = random(rng, (c, m), dtype)
    dyw = random(rng, (n, m), dtype)
    alpha, scale = dtype(0.2), dtype(1 / n)
    out = lambda *shape: np.empty(shape, dtype)  # noqa: E731
    flat = lambda: out(n * c)  # noqa: E731
    return {
        activations.step_forward: ((x,), [flat()]),
        activations.sigmoid_forward: ((x,), [flat()]),
        activations.sigmoid_backward: ((dy, NUMPY.sigmoid(x)), [flat()]),
        activations.tanh_forward: ((x,), [flat()]),
        activations.tanh_backward: ((dy, np.tanh(x)), [flat()]),
        activations.relu_forward: ((x,), [flat()]),
        activations.relu_backward: ((dy, x), [flat()]),
        activations.leaky_relu_forward: ((x, alpha), [flat()]),
        activations.leaky_relu_backward: ((dy, x, alpha), [flat()]),
        activations.softmax_forward: ((rows,), [out(n, c)]),
        activations.softmax_backward: ((drows, probs), [out(n, c)]),
        affine.affine_forward: ((rows, W, W[0], True), [out(affine.GEMM_PARTS - 1, n, m), out(n, m)]),
        affine.affine_backward: ((dyw, rows, W, dyw, True, True, True),
                                 [out(n, m), out(n, c), out(c, m), out(m)]),
        losses.softmax_cross_entropy_indices: ((rows, labels), [out(n, c), out(n)]),
        losses.softmax_cross_entropy_dense: ((rows, hot), [out(n, c), out(n)]),
        losses.softmax_cross_entropy_backward_indices: ((probs, labels, scale), [out(n, c)]),
        losses.softmax_cross_entropy_backward_dense: ((probs, hot, scale), [out(n, c)]),
        losses.squared_error_blocks: ((x, dy), [out(-(-x.size // losses.SUM_BLOCK))]),
        losses.mse_backward: ((x, dy, scale), [flat()]),
    }


def test_every_dense_kernel_has_a_serial_parallel_case():
    listed = set(kernel_cases(np.random.default_rng(0), np.float64))
    for module in (activations, affine, losses):
        for name, kernel in vars(module).items():
            if isinstance(kernel, ParallelKernel):
                assert kernel in listed, f"{module.__name__}.{name} has no case"


@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_and_parallel_builds_agree(dtype):
    for kernel, (inputs, outputs) in kernel_cases(np.random.default_rng(12), dtype).items():
        kept = [a.copy() for a in inputs if isinstance(a, np.ndarray)]
        serial = [np.full_like(o, np.nan) for o in outputs]
        parallel = [np.full_like(o, np.nan) for o in outputs]
        kernel.serial(*inputs, *serial)
        kernel.parallel(*inputs, *parallel)
        for s, p in zip(serial, parallel):
            assert not np.isnan(s).any(), f"{kernel.__name__} left outputs unwritten"
            assert_close(p, s, dtype, scale=10)
        for before, after in zip(kept, [a for a in inputs if isinstance(a, np.ndarray)]):
            np.testing.assert_array_equal(before, after)


@pytest.fixture
def spy_builds(monkeypatch):
    """Record which build (serial/parallel) of each kernel the ops call."""
    calls = []
    for module in (activations, affine, losses):
        for kernel in vars(module).values():
            if isinstance(kernel, ParallelKernel):
                for build in ("serial", "parallel"):
                    real = getattr(kernel, build)

                    def spy(*args, _real=real, _name=f"{kernel.__name__}.{build}"):
                        calls.append(_name)
                        return _real(*args)

                    monkeypatch.setattr(kernel, build, spy)
    return calls


@pytest.mark.parametrize("shape, build", [((3, 5), "serial"), (BIG, "parallel")], ids=str)
def test_ops_pick_the_build_by_size(spy_builds, shape, build):
    x = random(np.random.default_rng(13), shape, np.float32)
    NUMBA.sigmoid(x)
    NUMBA.relu_backward(x, x)
    NUMBA.softmax(x)
    NUMBA.affine(x, x.T.copy(), x[:, 0].copy())
    NUMBA.softmax_cross_entropy(x, np.zeros(shape[0], np.int64))
    NUMBA.mse(x, x)
    assert len(spy_builds) == 6
    assert all(call.endswith("." + build) for call in spy_builds), spy_builds


# ------------------------------------------------- layouts and read-only data

def layouts(a):
    """Views equal to ``a`` that are not plain C-contiguous arrays."""
    every_other = tuple(slice(None, None, 2) for _ in a.shape)
    wide = np.zeros(tuple(2 * size for size in a.shape), a.dtype)
    wide[every_other] = a
    readonly = a.copy()
    readonly.setflags(write=False)
    cases = {
        "strided": wide[every_other],
        "reversed": np.ascontiguousarray(a[::-1])[::-1],
        "readonly": readonly,
    }
    if a.ndim == 2:
        cases["transposed"] = np.ascontiguousarray(a.T).T
    return cases


def same_on_layouts(ops_call, *arrays):
    """ops_call(*views) equals ops_call(*plain copies), for each kind of view of the arrays."""
    expected = ops_call(*[np.array(a) for a in arrays])
    expected = expected if isinstance(expected, tuple) else (expected,)
    views = [layouts(a) for a in arrays]
    for kind in views[0]:
        args = [v.get(kind, np.array(a)) for v, a in zip(views, arrays)]
        for arg, plain in zip(args, arrays):
            np.testing.assert_array_equal(arg, plain)
        got = ops_call(*args)
        for g, e in zip(got if isinstance(got, tuple) else (got,), expected):
            assert type(g) is type(e)
            if isinstance(e, np.ndarray):
                assert g.dtype == e.dtype and g.shape == e.shape, kind
            assert_close(g, e, arrays[0].dtype, scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layouts(name, dtype):
    rng = np.random.default_rng(14)
    x, dy = random(rng, (6, 5), dtype), random(rng, (6, 5), dtype)
    for ops in BACKENDS:
        same_on_layouts(lambda x, dy: activation(ops, name, x, dy), x, dy)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_and_loss_layouts(ops, dtype):
    rng = np.random.default_rng(15)
    x, W, b, dy = (random(rng, s, dtype) for s in [(6, 4), (4, 5), (5,), (6, 5)])
    same_on_layouts(ops.affine, x, W, b)
    same_on_layouts(ops.affine_backward, dy, x, W)
    t = rng.integers(0, 5, 6)
    same_on_layouts(ops.softmax_cross_entropy, dy, t)
    same_on_layouts(ops.softmax_cross_entropy, dy, onehot(t, 5, dtype))
    probs = NUMPY.softmax(dy)
    same_on_layouts(ops.softmax_cross_entropy_backward, probs, t)
    same_on_layouts(ops.softmax_cross_entropy_backward, probs, onehot(t, 5, dtype))
    same_on_layouts(ops.mse, x, x[::-1])
    same_on_layouts(ops.mse_backward, x, x[::-1])


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
def test_big_endian_inputs(ops):
    rng = np.random.default_rng(16)
    x, W, b = (random(rng, s, np.float32) for s in [(6, 4), (4, 5), (5,)])
    big = lambda a: a.astype(a.dtype.newbyteorder(">"))  # noqa: E731
    for name in ACTIVATIONS:
        for got, expected in zip(activation(ops, name, big(x), big(x)), activation(ops, name, x, x)):
            assert_close(got, expected, np.float32)
    y = ops.affine(big(x), big(W), big(b))
    assert y.dtype.newbyteorder("=") == np.float32
    assert_close(y, ops.affine(x, W, b), np.float32)
    assert ops.mse(big(x), big(x[::-1])) == pytest.approx(ops.mse(x, x[::-1]), rel=1e-6)


# ------------------------------------------------------------------ errors

F32, F64 = np.ones((2, 3), np.float32), np.ones((2, 3), np.float64)
W32, B32 = np.ones((3, 4), np.float32), np.ones(4, np.float32)
LABELS = np.zeros(2, np.int64)

TYPE_ERRORS = {
    "affine W": lambda ops: ops.affine(F32, W32.astype(np.float64), B32),
    "affine b": lambda ops: ops.affine(F32, W32, B32.astype(np.float64)),
    "affine_backward": lambda ops: ops.affine_backward(np.ones((2, 4)), F32, W32),
    "sigmoid_backward": lambda ops: ops.sigmoid_backward(F32, F64),
    "tanh_backward": lambda ops: ops.tanh_backward(F64, F32),
    "relu_backward": lambda ops: ops.relu_backward(F64, F32),
    "leaky_relu_backward": lambda ops: ops.leaky_relu_backward(F32, F64),
    "softmax_backward": lambda ops: ops.softmax_backward(F64, F32),
    "mse": lambda ops: ops.mse(F32, F64),
    "mse_backward": lambda ops: ops.mse_backward(F64, F32),
    "int input": lambda ops: ops.relu(np.ones(3, np.int64)),
    "float16 input": lambda ops: ops.sigmoid(np.ones(3, np.float16)),
    "list input": lambda ops: ops.tanh([1.0, 2.0]),
    "int logits": lambda ops: ops.softmax_cross_entropy(np.ones((2, 3), np.int32), LABELS),
    "int probs": lambda ops: ops.softmax_cross_entropy_backward(np.ones((2, 3), np.int32), LABELS),
}

VALUE_ERRORS = {
    "affine W rows": lambda ops: ops.affine(F64, np.ones((5, 4)), np.ones(4)),
    "affine b": lambda ops: ops.affine(F64, np.ones((3, 4)), np.ones(5)),
    "affine 1-D x": lambda ops: ops.affine(np.ones(3), np.ones((3, 4)), np.ones(4)),
    "affine_backward dy": lambda ops: ops.affine_backward(np.ones((2, 5)), F64, np.ones((3, 4))),
    "sigmoid_backward": lambda ops: ops.sigmoid_backward(np.ones((3, 2)), F64),
    "relu_backward": lambda ops: ops.relu_backward(np.ones(6), F64),
    "leaky_relu_backward": lambda ops: ops.leaky_relu_backward(np.ones((2, 1)), F64),
    "softmax_backward": lambda ops: ops.softmax_backward(np.ones((2, 4)), F64),
    "mse": lambda ops: ops.mse(F64, np.ones((3, 2))),
    "mse_backward": lambda ops: ops.mse_backward(F64, np.ones(6)),
    "ce 1-D logits": lambda ops: ops.softmax_cross_entropy(np.ones(3), np.zeros(3, np.int64)),
    "ce 3-D logits": lambda ops: ops.softmax_cross_entropy(np.ones((2, 3, 1)), LABELS),
    "ce label count": lambda ops: ops.softmax_cross_entropy(F64, np.zeros(3, np.int64)),
    "ce one-hot shape": lambda ops: ops.softmax_cross_entropy(F64, np.ones((2, 4))),
    "ce 3-D targets": lambda ops: ops.softmax_cross_entropy(F64, np.ones((2, 3, 1))),
    "ce no classes": lambda ops: ops.softmax_cross_entropy(np.ones((2, 0)), np.ones((2, 0))),
    "ce_backward label count": lambda ops: ops.softmax_cross_entropy_backward(F64, np.zeros(3, np.int64)),
    "ce_backward one-hot shape": lambda ops: ops.softmax_cross_entropy_backward(F64, np.ones((2, 2))),
    "ce_backward 1-D probs": lambda ops: ops.softmax_cross_entropy_backward(np.ones(3), np.zeros(3, np.int64)),
}


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("case", sorted(TYPE_ERRORS))
def test_bad_dtypes_raise_type_error(ops, case):
    with pytest.raises(TypeError):
        TYPE_ERRORS[case](ops)


@pytest.mark.parametrize("ops", BACKENDS, ids=repr)
@pytest.mark.parametrize("case", sorted(VALUE_ERRORS))
def test_wrong_shapes_raise_value_error(ops, case):
    with pytest.raises(ValueError):
        VALUE_ERRORS[case](ops)


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
@pytest.mark.parametrize("t", [np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2], np.float32),
                               np.array([True, False, True])], ids=["float64", "float32", "bool"])
def test_float_class_indices_raise_type_error(ops, op, t):
    with pytest.raises(TypeError, match=op):
        getattr(ops, op)(np.zeros((3, 5), np.float32), t)
