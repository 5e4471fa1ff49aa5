"""lppool2d / lppool2d_backward and the LPPool2D layer: the kernels against the NumPy
reference, the reference against a plain-loop oracle and numerical gradients, PyTorch's
lp_pool2d (when installed), ONNX's LpPool (when installed), the layer's gradient check,
save/load and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastnn as fnn
from fastnn.backends import get_ops
from fastnn.gradcheck import numerical_gradient

REF = get_ops("numpy")
NB = get_ops("numba")
DTYPES = (np.float32, np.float64)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def loop_lppool(x, size, stride, pad, p):
    """Oracle in float64: the p-norm of each zero-padded window, one window at a time."""
    (kh, kw), (ph, pw) = _pair(size), _pair(pad)
    (sh, sw) = _pair(size if stride is None else stride)
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph : ph + H, pw : pw + W] = x
    shape = (N, C, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)
    y = np.empty(shape)
    for n, c, i, j in np.ndindex(*shape):
        window = xp[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
        y[n, c, i, j] = np.sum(np.abs(window) ** p) ** (1.0 / p)
    return y


def assert_close(actual, expected, dtype, name=""):
    assert actual.dtype == np.dtype(dtype), name
    assert actual.shape == expected.shape, name
    assert actual.flags.c_contiguous, name
    tol = 2e-5 if np.dtype(dtype) == np.float32 else 1e-11
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=name)


# (x_shape, size, stride, pad, p)
CASES = [
    ((2, 3, 8, 8), 2, None, 0, 2),  # Nielsen's L2 pooling, 2x2 windows
    ((1, 2, 7, 9), 2, None, 0, 2),  # odd sizes: the last row and column dropped
    ((2, 2, 7, 7), 3, 2, 1, 2),  # overlapping, padded
    ((1, 4, 9, 8), (3, 2), (1, 2), (1, 0), 3),  # rectangular everything, p = 3
    ((2, 3, 5, 6), (2, 3), None, (1, 1), 1),  # p = 1: the sum of |x|
    ((3, 1, 6, 5), 3, 1, 1, 2.5),  # a fractional p
    ((1, 1, 1, 1), 1, None, 0, 2),
    ((4, 16, 20, 20), 2, None, 0, 2),  # large enough for the parallel builds
    ((4, 16, 20, 18), 3, 2, 1, 4),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("x_shape,size,stride,pad,p", CASES)
def test_lppool_matches_reference_and_oracle(x_shape, size, stride, pad, p, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    y_ref = REF.lppool2d(x, size, stride, pad, p)
    assert_close(y_ref, loop_lppool(x, size, stride, pad, p).astype(dtype), dtype, "reference y")
    assert_close(NB.lppool2d(x, size, stride, pad, p), y_ref, dtype, "y")
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    assert_close(
        NB.lppool2d_backward(dy, x, y_ref, size, stride, pad, p),
        REF.lppool2d_backward(dy, x, y_ref, size, stride, pad, p),
        dtype,
        "dx",
    )


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 6),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    default_stride=st.booleans(),
    p=st.sampled_from([1.0, 2.0, 3.0, 1.5]),
    zeros=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_lppool_random_shapes(N, C, H, W, kh, kw, sh, sw, ph, pw, default_stride, p, zeros, dtype, seed):
    assume(ph < kh and pw < kw and kh <= H + 2 * ph and kw <= W + 2 * pw)
    stride = None if default_stride else (sh, sw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    if zeros:
        x[rng.random(x.shape) < 0.5] = 0.0  # exact zeros, and some all-zero windows
    x = x.astype(dtype)
    geometry = ((kh, kw), stride, (ph, pw), p)
    y_ref = REF.lppool2d(x, *geometry)
    assert_close(y_ref, loop_lppool(x, *geometry).astype(dtype), dtype, "reference y")
    assert_close(NB.lppool2d(x, *geometry), y_ref, dtype, "y")
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref = REF.lppool2d_backward(dy, x, y_ref, *geometry)
    assert np.isfinite(dx_ref).all()
    assert_close(NB.lppool2d_backward(dy, x, y_ref, *geometry), dx_ref, dtype, "dx")


@pytest.mark.parametrize("p", [2, 1, 3, 2.5])
@pytest.mark.parametrize("size,stride,pad", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1))])
def test_lppool_gradient_numerically(size, stride, pad, p):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 6, 7))
    x[np.abs(x) < 0.05] = 0.3  # p = 1 has a kink at 0: keep the values away from it
    y = REF.lppool2d(x, size, stride, pad, p)
    dy = rng.standard_normal(y.shape)
    numeric = numerical_gradient(lambda: float(np.sum(REF.lppool2d(x, size, stride, pad, p) * dy)), x)
    for ops in (REF, NB):
        np.testing.assert_allclose(
            ops.lppool2d_backward(dy, x, y, size, stride, pad, p), numeric, rtol=1e-6, atol=1e-8
        )


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_l2_pooling_formula_and_the_all_zero_window(backend):
    """p = 2: y = sqrt(sum of squares), dx = dy * x / y; an all-zero window gives y = 0 and
    passes no gradient (nor NaN); overlapping windows accumulate."""
    ops = get_ops(backend)
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = [[3.0, 0.0], [0.0, -4.0]]
    y = ops.lppool2d(x, 2)
    np.testing.assert_allclose(y[0, 0], [[5.0, 0.0], [0.0, 0.0]])
    dx = ops.lppool2d_backward(np.ones_like(y), x, y, 2)
    expected = np.zeros((4, 4))
    expected[:2, :2] = [[0.6, 0.0], [0.0, -0.8]]
    np.testing.assert_allclose(dx[0, 0], expected)
    x = np.ones((1, 1, 3, 3))
    y = ops.lppool2d(x, 2, 1)  # four overlapping windows of four ones: y = 2 each
    np.testing.assert_allclose(y, 2.0)
    dx = ops.lppool2d_backward(np.ones_like(y), x, y, 2, 1)
    np.testing.assert_allclose(dx[0, 0], [[0.5, 1.0, 0.5], [1.0, 2.0, 1.0], [0.5, 1.0, 0.5]])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_nan_propagates_through_lppool(backend):
    ops = get_ops(backend)
    x = np.ones((1, 1, 2, 4), np.float32)
    x[0, 0, 0, 0] = np.nan
    y = ops.lppool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 2.0
    dx = ops.lppool2d_backward(np.ones_like(y), x, y, 2)
    assert np.isnan(dx[0, 0, :, :2]).all() and np.isfinite(dx[0, 0, :, 2:]).all()


@pytest.mark.parametrize("p", [2, 4, 3])
def test_lppool_matches_torch(p):
    """PyTorch's lp_pool2d (no padding) computes (sum x^p)^(1/p): the same as fastnn's for
    even p on any x, and for any p on x >= 0; and its gradient agrees, the all-zero window
    included (PyTorch gives 0 there too)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 8))
    if p % 2:
        x = np.abs(x)
    x[0, 0, :3, :3] = 0.0  # an all-zero window
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.lp_pool2d(xt, p, 3, 2)
    dy = rng.standard_normal(tuple(yt.shape))
    (yt * torch.tensor(dy)).sum().backward()
    for ops in (REF, NB):
        y = ops.lppool2d(x, 3, 2, 0, p)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            ops.lppool2d_backward(dy, x, y, 3, 2, 0, p), xt.grad.numpy(), rtol=1e-10, atol=1e-12
        )


def test_noncontiguous_and_big_endian_inputs():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((2, 3, 12, 10))
    plain = np.ascontiguousarray(base[:, :, ::2])
    y = NB.lppool2d(plain, 3, 2, 1)
    dy = rng.standard_normal(y.shape)
    dx = NB.lppool2d_backward(dy, plain, y, 3, 2, 1)
    for x in (base[:, :, ::2], plain.astype(">f8"), np.asfortranarray(plain)):
        np.testing.assert_array_equal(NB.lppool2d(x, 3, 2, 1), y)
        np.testing.assert_array_equal(
            NB.lppool2d_backward(np.asfortranarray(dy), x, y.astype(">f8"), 3, 2, 1), dx
        )


# ----------------------------------------------------------------- errors

X = np.ones((2, 3, 6, 6), np.float32)
Y = np.ones((2, 3, 3, 3), np.float32)

BAD = [
    (
        "lppool2d",
        ValueError,
        "expected p as a finite number >= 1, got 0.5",
        lambda ops: ops.lppool2d(X, 2, p=0.5),
    ),
    ("lppool2d", ValueError, "got inf", lambda ops: ops.lppool2d(X, 2, p=np.inf)),
    ("lppool2d", TypeError, "expected p as a number >= 1, got str", lambda ops: ops.lppool2d(X, 2, p="2")),
    ("lppool2d", ValueError, "pad must be smaller than the window", lambda ops: ops.lppool2d(X, 2, 2, 2)),
    ("lppool2d", ValueError, "expected x with 4 dimensions", lambda ops: ops.lppool2d(X[0], 2)),
    (
        "lppool2d_backward",
        ValueError,
        "expected dy of shape (2, 3, 3, 3)",
        lambda ops: ops.lppool2d_backward(Y[:, :, :2], X, Y, 2),
    ),
    (
        "lppool2d_backward",
        ValueError,
        "expected y (the forward's output) of shape (2, 3, 3, 3), got (2, 3, 3, 2)",
        lambda ops: ops.lppool2d_backward(Y, X, Y[:, :, :, :2], 2),
    ),
    (
        "lppool2d_backward",
        TypeError,
        "dtype",
        lambda ops: ops.lppool2d_backward(Y, X.astype(np.float64), Y, 2),
    ),
    ("lppool2d_backward", ValueError, "got 0", lambda ops: ops.lppool2d_backward(Y, X, Y, 2, p=0)),
]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("op,error,message,call", BAD, ids=[f"{b[0]}-{b[2][:24]}" for b in BAD])
def test_lppool_errors(backend, op, error, message, call):
    with pytest.raises(error) as info:
        call(get_ops(backend))
    assert str(info.value).startswith(op + ":"), str(info.value)
    assert message in str(info.value)


# ----------------------------------------------------------------- the layer


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(
    "make",
    [lambda: fnn.LPPool2D(2), lambda: fnn.LPPool2D(3, stride=2, pad=1), lambda: fnn.LPPool2D(2, 1, p=3)],
    ids=["l2_2x2", "l2_3s2p1", "l3_2s1"],
)
def test_lppool_layer_gradient(backend, make):
    rng = np.random.default_rng(2)
    model = fnn.Sequential(
        [fnn.Conv2D(1, 2, 2), make(), fnn.Flatten()],
        loss=fnn.MeanSquaredError(),
        backend=backend,
        dtype="float64",
        seed=3,
    )
    x = rng.standard_normal((2, 1, 7, 7))
    out = model.output_shape(x.shape[1:])
    errors = fnn.gradcheck(
        model, x, rng.standard_normal((2, int(np.prod(out)))), check_input=True, verbose=False
    )
    assert errors and max(errors.values()) < 1e-6, errors


def test_lppool_layer_config_describe_and_save(tmp_path):
    layer = fnn.LPPool2D(3, stride=2, pad=1, p=3)
    assert layer.describe() == "LPPool2D(p=3, 3x3, stride 2, pad 1)"
    assert fnn.LPPool2D(2).describe() == "LPPool2D(p=2, 2x2)"
    assert layer.get_config() == {"size": 3, "stride": 2, "pad": 1, "p": 3.0}
    model = fnn.Sequential(
        [fnn.Conv2D(1, 4, 3), fnn.ReLU(), fnn.LPPool2D(2, p=2.5), fnn.Flatten(), fnn.Dense(4 * 13 * 13, 10)],
        seed=0,
    )
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    model.save(tmp_path / "lp.npz")
    loaded = fnn.load(tmp_path / "lp.npz")
    assert isinstance(loaded.layers[2], fnn.LPPool2D) and loaded.layers[2].p == 2.5
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_lppool_layer_errors():
    with pytest.raises(ValueError, match=r"^LPPool2D: expected p as a finite number >= 1, got 0"):
        fnn.LPPool2D(2, p=0)
    with pytest.raises(TypeError, match=r"^LPPool2D: expected p as a number >= 1"):
        fnn.LPPool2D(2, p=None)
    with pytest.raises(TypeError):
        fnn.LPPool2D(2, 2, 0, 2)  # p is keyword-only: LPPool2D(2, 2) means size 2, stride 2
    layer = fnn.LPPool2D(2).initialize(ops=NB, dtype=np.float32)
    with pytest.raises(ValueError, match=r"LPPool2D\(p=2, 2x2\): expected input with 4 dimensions"):
        layer.forward(np.ones((2, 6, 6), np.float32))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward"):
        fnn.LPPool2D(2).initialize(ops=NB, dtype=np.float32).backward(np.ones((1, 1, 1, 1), np.float32))


def test_lppool_onnx_export(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = fnn.Sequential(
        [
            fnn.Conv2D(1, 3, 3),
            fnn.LPPool2D(3, stride=2, pad=1),
            fnn.LPPool2D(2, p=3),
            fnn.Flatten(),
            fnn.Dense(27, 4),
        ],
        seed=1,
    )
    path = tmp_path / "lp.onnx"
    model.to_onnx(path, input_shape=(1, 14, 14))
    x = np.random.default_rng(1).standard_normal((5, 1, 14, 14)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-5)
    fractional = fnn.Sequential([fnn.LPPool2D(2, p=1.5), fnn.Flatten()], seed=0)
    with pytest.raises(ValueError, match=r"ONNX's LpPool takes an integer p, got p=1.5"):
        fractional.to_onnx(tmp_path / "bad.onnx", input_shape=(1, 4, 4))


def test_lppool_translates_to_torch():
    """fastnn bench's PyTorch twin of LPPool2D: zero padding and |x| included."""
    torch = pytest.importorskip("torch")
    from fastnn.bench.torch_models import translate

    model = fnn.Sequential(
        [fnn.Conv2D(1, 3, 3), fnn.LPPool2D(3, stride=2, pad=1, p=3), fnn.Flatten()], seed=0
    )
    x = np.random.default_rng(6).standard_normal((2, 1, 10, 10)).astype(np.float32)
    twin = translate(model).eval()
    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-5)
