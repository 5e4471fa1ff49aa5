"""Fused layers: Conv2D/Dense + ReLU run as one kernel, and the first layer skips dx.

fastnn.fusion groups a Conv2D or Dense directly followed by ReLU (and a MaxPool2D after a
Conv2D + ReLU). Every fused path must
give the numbers of the unfused one (the ReLU is applied in the store and its mask
in the backward kernel's reads, on the same values), so these tests compare them
bitwise where the arithmetic is the same, and against the NumPy reference otherwise.
"""

import functools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastnn as fnn
from fastnn.backends import get_ops
from fastnn.fusion import ConvReLUMaxPool, DenseActivation, FusedGroup
from fastnn.models import deep_convnet, lenet5, mlp, simple_convnet

REF = get_ops("numpy")
NB = get_ops("numba")
DTYPES = (np.float32, np.float64)


def close(actual, expected, dtype, where):
    rtol, atol = (2e-4, 2e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-11)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=where)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("impl", ["direct", "im2col", "auto"])
@pytest.mark.parametrize(
    "case",
    [
        (3, 2, 9, 7, 5, 3, 1, 1),
        (2, 4, 8, 8, 11, 3, 1, 2),
        (5, 1, 6, 6, 3, 2, 2, 0),
        # rows of whole vectors, with and without a clamped tail
        (2, 3, 5, 37, 6, 3, 1, 1),
        (3, 2, 4, 16, 9, 3, 1, 1),
        (2, 1, 5, 37, 6, 3, 1, 1),  # one input channel
        # two vectors of channels and more: the GEMM-style dW tile
        (3, 2, 6, 5, 33, 3, 1, 1),
    ],
)
def test_conv2d_relu_fused_matches_reference(case, impl, dtype):
    N, C, H, W, F, K, stride, pad = case
    rng = np.random.default_rng(N * 100 + F)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, K, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    y_ref = REF.conv2d(x, Wt, b, stride, pad, relu=True)
    np.testing.assert_array_equal(y_ref, np.maximum(REF.conv2d(x, Wt, b, stride, pad), 0))
    y = NB.conv2d(x, Wt, b, stride, pad, impl=impl, relu=True)
    close(y, y_ref, dtype, "conv2d relu")
    assert (y == 0).any() and (y > 0).any()
    dy = rng.standard_normal(y.shape).astype(dtype)
    want = REF.conv2d_backward(np.where(y_ref > 0, dy, 0).astype(dtype), x, Wt, stride, pad)
    for input_grad in (True, False):
        got = NB.conv2d_backward(dy, x, Wt, stride, pad, impl=impl, relu_out=y, input_grad=input_grad)
        ref = REF.conv2d_backward(dy, x, Wt, stride, pad, relu_out=y_ref, input_grad=input_grad)
        if input_grad:
            close(got[0], want[0], dtype, "dx")
            close(ref[0], want[0], dtype, "reference dx")
        else:
            assert got[0] is None and ref[0] is None
        for g, r, w, name in zip(got[1:], ref[1:], want[1:], ("dW", "db")):
            close(g, w, dtype, name)
            close(r, w, dtype, "reference " + name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n, d, m", [(1, 3, 2), (7, 13, 9), (100, 300, 40)])
def test_affine_relu_fused_matches_reference(n, d, m, dtype):
    rng = np.random.default_rng(n + d + m)
    x = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((d, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    dy = rng.standard_normal((n, m)).astype(dtype)
    for ops in (REF, NB):
        y = ops.affine(x, W, b, relu=True)
        close(y, np.maximum(x @ W + b, 0), dtype, f"{ops.name} affine relu")
        want = REF.affine_backward(np.where(y > 0, dy, 0).astype(dtype), x, W)
        got = ops.affine_backward(dy, x, W, relu_out=y)
        for g, w, name in zip(got, want, ("dx", "dW", "db")):
            close(g, w, dtype, f"{ops.name} {name}")
        dx, dW, db = ops.affine_backward(dy, x, W, input_grad=False)
        assert dx is None
        close(dW, x.T @ dy, dtype, f"{ops.name} dW without dx")


@pytest.mark.parametrize("ops", [REF, NB], ids=lambda o: o.name)
def test_relu_out_of_the_wrong_shape_or_dtype_is_refused(ops):
    x = np.ones((2, 1, 5, 5), np.float32)
    W = np.ones((3, 1, 3, 3), np.float32)
    dy = np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"conv2d_backward: expected relu_out of shape \(2, 3, 3, 3\)"):
        ops.conv2d_backward(dy, x, W, relu_out=np.ones((2, 3, 3, 2), np.float32))
    with pytest.raises(TypeError, match="conv2d_backward: expected relu_out of dtype float32"):
        ops.conv2d_backward(dy, x, W, relu_out=np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="affine_backward"):
        ops.affine_backward(
            np.ones((2, 4), np.float32),
            np.ones((2, 3), np.float32),
            np.ones((3, 4), np.float32),
            relu_out=np.ones((2, 5), np.float32),
        )


def _steps(model, x, t, steps=3):
    optimizer = fnn.optim.Adam(lr=1e-3)
    losses = [model.train_step(x, t, optimizer) for _ in range(steps)]
    return losses, model.flat_params.copy()


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize(
    "make, shape",
    [
        (mlp, (8, 784)),
        (simple_convnet, (4, 1, 28, 28)),
        (deep_convnet, (3, 1, 28, 28)),
        (functools.partial(lenet5, classic=True), (4, 1, 28, 28)),
    ],
    ids=["mlp", "simple_convnet", "deep_convnet", "lenet5_classic"],
)
def test_fused_training_is_bitwise_the_unfused_training(make, shape, backend):
    """Same losses and weights, bit for bit, with and without the fused steps."""
    rng = np.random.default_rng(5)
    x = rng.random(shape, dtype=np.float32)
    t = rng.integers(0, 10, shape[0])
    fused = make(seed=3, backend=backend)
    plain = make(seed=3, backend=backend)
    plain.fuse_layers = False
    assert any(isinstance(unit, FusedGroup) for unit in fused._plan())
    assert not any(isinstance(unit, FusedGroup) for unit in plain._plan())
    a, b = _steps(fused, x, t), _steps(plain, x, t)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_plan_fuses_only_conv_or_dense_directly_followed_by_an_activation():
    model = fnn.Sequential(
        [
            fnn.Conv2D(1, 2, 3),
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.ReLU(),
            fnn.Flatten(),
            fnn.Dense(2, 3),
            fnn.Sigmoid(),
            fnn.Dense(3, 2),
            fnn.ReLU(),
            fnn.Dense(2, 2),
        ],
        seed=0,
    )
    plan = [
        (type(unit).__name__, [type(layer).__name__ for layer in getattr(unit, "layers", [unit])])
        for unit in model._plan()
    ]
    assert plan == [
        ("ConvReLUMaxPool", ["Conv2D", "ReLU", "MaxPool2D"]),  # 2x2: in the kernel
        ("ReLU", ["ReLU"]),
        ("Flatten", ["Flatten"]),
        ("DenseActivation", ["Dense", "Sigmoid"]),
        ("DenseActivation", ["Dense", "ReLU"]),
        ("Dense", ["Dense"]),
    ]
    assert model._plan()[0].pools_in_kernel
    assert all(a is b for a, b in zip(model._plan()[-2].layers, model.layers[7:9]))
    model.fuse_layers = False
    assert model._plan() == model.layers


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_fused_layers_pass_the_gradient_check(backend):
    """Conv2D+ReLU and Dense+ReLU run fused through model.loss/backward, in float64."""
    rng = np.random.default_rng(8)
    model = fnn.Sequential(
        [
            fnn.Conv2D(2, 3, 3, pad=1),
            fnn.ReLU(),
            fnn.Flatten(),
            fnn.Dense(3 * 5 * 5, 6),
            fnn.ReLU(),
            fnn.Dense(6, 3),
        ],
        backend=backend,
        dtype="float64",
        seed=2,
    )
    assert [isinstance(unit, FusedGroup) for unit in model._plan()] == [True, False, True, False]
    x = rng.standard_normal((3, 2, 5, 5))
    errors = fnn.gradcheck(model, x, rng.integers(0, 3, 3), check_input=True, verbose=False)
    assert set(errors) >= {"input"}
    for name, error in errors.items():
        assert error < 1e-6, f"{name}: relative error {error:.2e}"


def test_training_step_skips_the_first_layers_input_gradient(monkeypatch):
    model = simple_convnet(seed=0)
    calls = []
    first = type(model._plan()[0])  # Conv2D + ReLU + MaxPool2D, run as one unit
    assert first is ConvReLUMaxPool
    original = first.backward

    def spy(unit, dy, input_grad=True):
        calls.append(input_grad)
        return original(unit, dy, input_grad=input_grad)

    monkeypatch.setattr(first, "backward", spy)
    rng = np.random.default_rng(0)
    model.train_step(rng.random((2, 1, 28, 28), dtype=np.float32), [1, 2], fnn.optim.SGD(lr=0.1))
    assert calls == [False]
    assert model.backward() is not None and calls[-1] is True


def test_an_mlp_step_skips_the_input_gradient_behind_flatten(monkeypatch):
    model = mlp(seed=0)
    assert type(model.layers[0]).__name__ == "Flatten"
    calls = []

    def spy_on(cls, dense_of):
        original = cls.backward

        def spy(unit, dy, input_grad=True):
            calls.append((dense_of(unit).describe(), input_grad))
            return original(unit, dy, input_grad=input_grad)

        monkeypatch.setattr(cls, "backward", spy)

    spy_on(fnn.Dense, lambda layer: layer)  # the last Dense, on its own
    spy_on(DenseActivation, lambda group: group.layers[0])  # Dense + ReLU, run as one unit
    rng = np.random.default_rng(0)
    model.train_step(rng.random((2, 784), dtype=np.float32), [1, 2], fnn.optim.SGD(lr=0.1))
    assert calls[-1] == ("Dense(784->100)", False)
    assert all(flag for _, flag in calls[:-1])


@pytest.mark.parametrize("ops", [NB, REF], ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_all_finite_finds_every_nan_and_inf(dtype, ops):
    """The training step's finiteness check (numba: a kernel over fixed blocks)."""
    all_finite = ops.all_finite
    rng = np.random.default_rng(3)
    for size in (1, 4095, 4096, 4097, 100_003):
        a = rng.standard_normal(size).astype(dtype)
        assert all_finite(a)
        for bad in (np.nan, np.inf, -np.inf):
            for at in {0, size // 2, size - 1}:
                b = a.copy()
                b[at] = bad
                assert not all_finite(b), (size, bad, at)
        big = a.copy()
        big[-1] = np.finfo(dtype).max
        assert all_finite(big)
    grid = rng.standard_normal((6, 8)).astype(dtype)
    grid[1, 3] = np.nan
    assert not all_finite(grid) and all_finite(grid[:, ::2][:, :1])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("impl", ["direct", "im2col", "polyphase", "auto"])
@pytest.mark.parametrize(
    "pool_geometry",
    [(2, 2, 0), (3, 2, 1), (2, 1, 0)],
    ids=["2x2", "3x3s2p1-overlapping", "2x2s1-overlapping"],
)
@pytest.mark.parametrize(
    "case",
    [
        (3, 2, 9, 7, 5, 3, 1, 1),
        (4, 3, 8, 8, 9, 3, 1, 2),
        (2, 1, 6, 6, 3, 2, 2, 0),
        (2, 4, 30, 30, 8, 3, 2, 1),  # 15 output columns: "auto" splits the backward pass
    ],
)
def test_conv_backward_through_relu_and_maxpool(case, pool_geometry, impl, dtype):
    """pool=(argmax, pooled): the gradient routed back through max pooling and the ReLU
    inside the kernel, against maxpool2d_backward + the ReLU mask + conv2d_backward."""
    N, C, H, W, F, K, stride, pad = case
    size, pstride, ppad = pool_geometry
    rng = np.random.default_rng(N * 10 + size)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, K, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    y = NB.conv2d(x, Wt, b, stride, pad, impl=impl, relu=True)
    if min(y.shape[2:]) < size:
        pytest.skip("output smaller than the pooling window")
    pooled, argmax = NB.maxpool2d(y, size, pstride, ppad)
    dp = rng.standard_normal(pooled.shape).astype(dtype)
    dy = REF.relu_backward(REF.maxpool2d_backward(dp, argmax, y.shape, size, pstride, ppad), y)
    want = REF.conv2d_backward(dy, x, Wt, stride, pad)
    for ops in (NB, REF):
        for input_grad in (True, False):
            got = ops.conv2d_backward(
                dp, x, Wt, stride, pad, impl=impl, input_grad=input_grad, pool=(argmax, pooled)
            )
            where = f"{ops.name} input_grad={input_grad}"
            if input_grad:
                close(got[0], want[0], dtype, where + " dx")
            else:
                assert got[0] is None
            close(got[1], want[1], dtype, where + " dW")
            close(got[2], want[2], dtype, where + " db")


@pytest.mark.parametrize("ops", [REF, NB], ids=lambda o: o.name)
def test_bad_pool_arguments_are_refused(ops):
    x = np.ones((2, 1, 6, 6), np.float32)
    W = np.ones((3, 1, 3, 3), np.float32)
    y = ops.conv2d(x, W, np.zeros(3, np.float32), 1, 1, relu=True)
    pooled, argmax = ops.maxpool2d(y, 2)
    dp = np.ones_like(pooled)
    with pytest.raises(ValueError, match="conv2d_backward: give relu_out= or pool=, not both"):
        ops.conv2d_backward(dp, x, W, 1, 1, relu_out=y, pool=(argmax, pooled))
    with pytest.raises(ValueError, match=r"conv2d_backward: expected pool argmax of shape \(2, 3, 3, 3\)"):
        ops.conv2d_backward(dp, x, W, 1, 1, pool=(argmax[:, :, :2], pooled))
    with pytest.raises(TypeError, match="conv2d_backward: expected pool argmax of dtype int64"):
        ops.conv2d_backward(dp, x, W, 1, 1, pool=(argmax.astype(np.int32), pooled))
    with pytest.raises(TypeError, match="conv2d_backward: pool must be a pair"):
        ops.conv2d_backward(dp, x, W, 1, 1, pool=argmax)
    with pytest.raises(ValueError, match="differ in batch or channels"):
        ops.conv2d_backward(dp[:1], x, W, 1, 1, pool=(argmax[:1], pooled[:1]))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_conv_relu_maxpool_fused_passes_the_gradient_check(backend):
    rng = np.random.default_rng(9)
    model = fnn.Sequential(
        [
            fnn.Conv2D(2, 3, 3, pad=1),
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.Conv2D(3, 4, 3, pad=1),
            fnn.ReLU(),
            fnn.MaxPool2D(3, stride=1),
            fnn.Flatten(),
            fnn.Dense(4 * 1 * 1, 3),
        ],
        backend=backend,
        dtype="float64",
        seed=4,
    )
    plan = model._plan()
    assert [isinstance(unit, ConvReLUMaxPool) for unit in plan] == [True, True, False, False]
    assert [unit.pools_in_kernel for unit in plan[:2]] == [True, False]  # 3x3 pools apart
    x = rng.standard_normal((3, 2, 6, 6))
    errors = fnn.gradcheck(model, x, rng.integers(0, 3, 3), check_input=True, verbose=False)
    for name, error in errors.items():
        assert error < 1e-6, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("impl", ["direct", "im2col", "auto"])
@pytest.mark.parametrize(
    "case",
    [
        (3, 2, 9, 7, 5, 3, 1, 1),
        (4, 3, 8, 8, 9, 3, 1, 2),
        (2, 1, 12, 12, 3, 5, 1, 2),
        (2, 1, 9, 9, 3, 3, 2, 1),
        (1, 2, 7, 7, 4, 3, 1, 1),
    ],
)
def test_conv2d_relu_maxpool2x2_matches_the_ops_apart(case, impl, dtype):
    """Pooling inside the convolution kernel (even outputs) gives the arrays of
    conv2d(relu=True) then maxpool2d(., 2), bit for bit; odd outputs and strides fall back."""
    N, C, H, W, F, K, stride, pad = case
    rng = np.random.default_rng(N + F + K)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, K, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    for ops in (NB, REF):
        pooled, argmax = ops.conv2d_relu_maxpool2x2(x, Wt, b, stride, pad, impl=impl)
        y2 = ops.conv2d(x, Wt, b, stride, pad, impl=impl, relu=True)
        p2, a2 = ops.maxpool2d(y2, 2)
        np.testing.assert_array_equal(pooled, p2)
        np.testing.assert_array_equal(argmax, a2)
    close(pooled, REF.maxpool2d(REF.conv2d(x, Wt, b, stride, pad, relu=True), 2)[0], dtype, "pooled")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("width", [7, 16, 21, 37])  # output rows narrower, as wide as, wider than a vector
def test_conv2d_relu_keeps_nan_and_clamps_like_the_reference(width, dtype):
    """The fused ReLU's store (whole-vector rows when a row holds a vector, else per
    element) gives max(y, 0) with NaN left NaN, at exactly the reference's positions."""
    rng = np.random.default_rng(width)
    x = rng.standard_normal((2, 2, 6, width + 2)).astype(dtype)
    x[0, 1, 2, 3] = np.nan
    x[1, 0, 5, width - 1] = np.nan
    Wt = rng.standard_normal((9, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(9).astype(dtype)
    y_ref = REF.conv2d(x, Wt, b, 1, 1, relu=True)
    y = NB.conv2d(x, Wt, b, 1, 1, impl="direct", relu=True)
    assert np.isnan(y_ref).any() and (y_ref == 0).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    np.testing.assert_array_equal(y == 0, y_ref == 0)
    close(np.nan_to_num(y), np.nan_to_num(y_ref), dtype, "conv2d relu with NaN")


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    f=st.sampled_from([1, 3, 17, 33]),
    ph=st.integers(1, 5),
    pw=st.integers(1, 36),
    pad=st.integers(0, 2),
    stray=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_pooled_gradient_routing_vectors_tails_and_strays(n, c, f, ph, pw, pad, stray, dtype, seed):
    """The 2x2 routing in the backward kernel (a vector of windows at a time, masked
    tails: pooled rows shorter than, equal to and longer than a vector; and, from two
    vectors of channels on, straight into the pixel-major rows of the GEMM-style dW
    tile) against the reference, dx and dW; pooled values <= 0 and NaN stop the
    gradient. ``stray`` moves some live winners outside their windows, which the general
    scatter must then route."""
    rng = np.random.default_rng(seed)
    K = 3
    H, W = 2 * ph + K - 1 - 2 * pad, 2 * pw + K - 1 - 2 * pad
    assume(H >= 1 and W >= 1)
    x = rng.standard_normal((n, c, H, W)).astype(dtype)
    Wt = rng.standard_normal((f, c, K, K)).astype(dtype)
    y = NB.conv2d(x, Wt, rng.standard_normal(f).astype(dtype), 1, pad, relu=True)
    assert y.shape[2:] == (2 * ph, 2 * pw)
    pooled, argmax = NB.maxpool2d(y, 2)
    pooled.flat[rng.integers(0, pooled.size, 2)] = np.nan
    if stray:
        live = np.flatnonzero(pooled > 0)
        if live.size:
            moved = rng.choice(live, min(3, live.size), replace=False)
            argmax.flat[moved] = rng.integers(0, 4 * ph * pw, moved.size)
    dp = rng.standard_normal(pooled.shape).astype(dtype)
    want = REF.conv2d_backward(dp, x, Wt, 1, pad, pool=(argmax, pooled))
    for input_grad in (True, False):
        got = NB.conv2d_backward(dp, x, Wt, 1, pad, input_grad=input_grad, pool=(argmax, pooled))
        if input_grad:
            close(got[0], want[0], dtype, "dx")
        close(got[1], want[1], dtype, "dW")
        close(got[2], want[2], dtype, "db")


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    f=st.integers(1, 11),
    ph=st.integers(1, 4),
    pw=st.integers(4, 20),
    nans=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_pooling_in_the_register_tiles_is_the_pool_op(n, c, f, ph, pw, nans, dtype, seed):
    """Rows of at least a vector (8 to 40 wide) are pooled inside the forward tiles, the
    last vector of a row clamped to its end: the same pooled values and argmax, bit for
    bit, as conv2d(relu=True) then maxpool2d(., 2), with the ReLU's zeros tying (first
    maximum wins) and NaN beating numbers; more than 8 channels take a partial block."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, 2 * ph, 2 * pw)).astype(dtype)
    if nans:
        x.flat[rng.integers(0, x.size, 3)] = np.nan
    Wt = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    b = (rng.standard_normal(f) - 1.5).astype(dtype)
    pooled, argmax = NB.conv2d_relu_maxpool2x2(x, Wt, b, 1, 1)
    apart, apart_argmax = NB.maxpool2d(NB.conv2d(x, Wt, b, 1, 1, relu=True), 2)
    np.testing.assert_array_equal(pooled, apart)
    np.testing.assert_array_equal(argmax, apart_argmax)
    ref, _ = REF.maxpool2d(REF.conv2d(x, Wt, b, 1, 1, relu=True), 2)
    close(pooled, ref, dtype, "pooled against the reference")


# ---------------------------------------------------------------- Residual + ReLU


def _tiny_resnet(backend, seed=0, dtype="float32"):
    return fnn.models.resnet(
        depth=8, width=4, in_channels=1, input_size=12, num_classes=3, seed=seed, backend=backend, dtype=dtype
    )


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_residual_block_and_its_relu_train_as_one_unit_bit_for_bit(backend, dtype, monkeypatch):
    """In training the sum and the ReLU run in the batch norm kernel of the body's last
    Conv2D + BatchNorm group (no add_relu call), with the numbers of the layers run one by
    one, bit for bit."""
    from fastnn.fusion import ResidualReLU

    rng = np.random.default_rng(6)
    x, t = rng.random((5, 1, 12, 12)).astype(dtype), rng.integers(0, 3, 5)
    fused, plain = _tiny_resnet(backend, dtype=dtype.__name__), _tiny_resnet(backend, dtype=dtype.__name__)
    plain.fuse_layers = False
    assert sum(isinstance(unit, ResidualReLU) for unit in fused._plan()) == 3  # one per stage
    calls = []
    ops = fused.layers[0].ops
    for name in ("add_relu", "batchnorm"):
        original = getattr(ops, name)

        @functools.wraps(original)  # the op's signature, which the fusion reads
        def spy(*a, original=original, name=name, **k):
            calls.append((name, k.get("residual") is not None))
            return original(*a, **k)

        monkeypatch.setattr(ops, name, spy)
    b = _steps(plain, x, t)
    calls.clear()  # the backends' ops are shared: count the fused model's calls only
    a = _steps(fused, x, t)
    assert ("add_relu", False) not in calls
    assert calls.count(("batchnorm", True)) == 3 * 3  # a block per stage, three steps
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    x0 = x.copy()  # inference adds into the body's output in place, never into x
    np.testing.assert_allclose(fused.predict(x), plain.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, x0)
    # its float64 gradients: test_architectures.py::test_float64_gradients_match_central_differences


@pytest.mark.parametrize("body", ["dropout", "identity_like"])
def test_inference_never_writes_into_the_blocks_input(body):
    """A body whose inference output may be its input (Dropout returns x) gets a new array."""
    layers = [fnn.Dropout(0.5)] if body == "dropout" else [fnn.Dense(4, 4)]
    model = fnn.Sequential([fnn.Residual(layers), fnn.ReLU()], input_shape=(4,), seed=0)
    x = np.random.default_rng(8).standard_normal((6, 4)).astype(np.float32)
    x0 = x.copy()
    y = model.predict(x)
    np.testing.assert_array_equal(x, x0)
    want = np.maximum(model.layers[0].forward(x, train=False), 0)
    np.testing.assert_array_equal(y, want)
