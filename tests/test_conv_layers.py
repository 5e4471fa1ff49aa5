"""Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D and Dropout as layers: gradients, shapes, errors."""

import numpy as np
import pytest

import fastnn as fnn

BACKENDS = ["numpy", "numba"]
TOLERANCE = 1e-6


def check_model(model, x, t):
    errors = fnn.gradcheck(model, x, t, check_input=True, verbose=False)
    for name, error in errors.items():
        assert error < TOLERANCE, f"{name}: relative error {error:.2e}"
    return errors


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("impl", ["direct", "im2col"])
@pytest.mark.parametrize("stride,pad,kernel", [(1, 0, 3), (2, 1, 3), (3, 2, (2, 3)), (1, (1, 2), (3, 1))])
def test_conv2d_gradient(backend, impl, stride, pad, kernel):
    rng = np.random.default_rng(0)
    conv = fnn.Conv2D(2, 3, kernel, stride=stride, pad=pad, impl=impl)
    model = fnn.Sequential(
        [conv, fnn.Flatten()], loss=fnn.MeanSquaredError(), backend=backend, dtype="float64", seed=1
    )
    conv.params["b"][...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 2, 7, 6))
    out = model.output_shape(x.shape[1:])
    errors = check_model(model, x, rng.standard_normal((2, int(np.prod(out)))))
    assert set(errors) == {"layers[0] " + conv.describe(), "input"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "layer",
    [
        lambda: fnn.MaxPool2D(2),
        lambda: fnn.MaxPool2D(3, stride=2, pad=1),
        lambda: fnn.AvgPool2D(2),
        lambda: fnn.AvgPool2D(3, stride=1, pad=1),
        lambda: fnn.GlobalAvgPool2D(),
    ],
    ids=["max2", "max3s2p1", "avg2", "avg3s1p1", "global_avg"],
)
def test_pool_gradient(backend, layer):
    rng = np.random.default_rng(2)
    pool = layer()
    model = fnn.Sequential(
        [fnn.Conv2D(1, 2, 2), pool, fnn.Flatten()],
        loss=fnn.MeanSquaredError(),
        backend=backend,
        dtype="float64",
        seed=3,
    )
    # distinct values: max pooling's derivative is undefined at ties
    x = rng.permutation(2 * 1 * 7 * 7).reshape(2, 1, 7, 7).astype(np.float64) / 10
    out = model.output_shape(x.shape[1:])
    check_model(model, x, rng.standard_normal((2, int(np.prod(out)))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_gradient_with_a_fixed_mask(backend):
    rng = np.random.default_rng(4)
    dropout = fnn.Dropout(0.3)
    model = fnn.Sequential(
        [fnn.Dense(5, 6), dropout, fnn.Dense(6, 3)], backend=backend, dtype="float64", seed=5
    )
    state = dropout.rng.bit_generator.state

    class SameMask:
        """Restart the generator before each draw so every forward pass uses one mask."""

        def integers(self, *args, **kwargs):
            dropout_rng = np.random.default_rng()
            dropout_rng.bit_generator.state = state
            return dropout_rng.integers(*args, **kwargs)

    dropout.rng = SameMask()
    check_model(model, rng.standard_normal((4, 5)), rng.integers(0, 3, 4))


def test_dropout_keeps_the_expected_fraction_and_scale():
    layer = fnn.Dropout(0.3).initialize(0)
    x = np.ones((200, 500), np.float32)
    y = layer.forward(x, train=True)
    kept = y != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert y.mean() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    assert layer.forward(x, train=False) is x


def test_dropout_is_seeded_by_the_model():
    def masks(seed):
        model = fnn.Sequential([fnn.Dense(3, 40), fnn.Dropout(0.5)], seed=seed)
        return model.layers[1].forward(np.ones((2, 40), np.float32))

    np.testing.assert_array_equal(masks(1), masks(1))
    assert not np.array_equal(masks(1), masks(2))


def test_conv_layers_take_params_from_the_flat_buffer():
    model = fnn.models.simple_convnet(seed=0)
    conv = model.layers[0]
    assert conv.params["W"].shape == (30, 1, 5, 5)
    assert np.shares_memory(conv.params["W"], model.flat_params)
    assert np.shares_memory(conv.grads["W"], model.flat_grads)
    assert conv.params["W"].std() == pytest.approx(np.sqrt(2 / 25), rel=0.1)


@pytest.mark.parametrize(
    "name,params",
    [("mlp", 89_610), ("simple_convnet", 433_890), ("deep_convnet", 123_552), ("lenet5", 61_706)],
)
def test_book_networks_have_the_books_shapes(name, params):
    model = fnn.models.MODELS[name](seed=0)
    assert model.num_params == params
    assert model.output_shape((1, 28, 28)) == (10,)
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    assert model.predict(x).shape == (3, 10)


def test_deep_convnet_is_the_dlfs_architecture():
    model = fnn.models.deep_convnet(seed=0)
    assert [layer.describe() for layer in model.layers] == [
        "Conv2D(1->16, 3x3, pad 1)",
        "ReLU()",
        "Conv2D(16->16, 3x3, pad 1)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Conv2D(16->32, 3x3, pad 1)",
        "ReLU()",
        "Conv2D(32->32, 3x3, pad 2)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Conv2D(32->64, 3x3, pad 1)",
        "ReLU()",
        "Conv2D(64->64, 3x3, pad 1)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Flatten()",
        "Dense(1024->50)",
        "ReLU()",
        "Dropout(p=0.5)",
        "Dense(50->10)",
        "Dropout(p=0.5)",
    ]


def test_lenet5_and_simple_convnet_layouts():
    assert [layer.describe() for layer in fnn.models.lenet5().layers][:6] == [
        "Conv2D(1->6, 5x5, pad 2)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Conv2D(6->16, 5x5)",
        "ReLU()",
        "MaxPool2D(2x2)",
    ]
    assert [layer.describe() for layer in fnn.models.simple_convnet().layers] == [
        "Conv2D(1->30, 5x5)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Flatten()",
        "Dense(4320->100)",
        "ReLU()",
        "Dense(100->10)",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_models_save_and_load(tmp_path, backend):
    model = fnn.models.lenet5(seed=0, backend=backend)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    model.save(tmp_path / "lenet.npz")
    loaded = fnn.load(tmp_path / "lenet.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# -- errors -----------------------------------------------------------------------


def test_channel_mismatch_names_the_layer():
    model = fnn.Sequential([fnn.Conv2D(3, 4, 3)], seed=0)
    with pytest.raises(ValueError, match=r"Conv2D\(3->4, 3x3\): expected 3 input channels, got 1"):
        model.predict(np.zeros((2, 1, 8, 8), np.float32))


def test_kernel_larger_than_padded_input_names_the_layer():
    model = fnn.Sequential([fnn.Conv2D(1, 4, 5, pad=1)], seed=0)
    with pytest.raises(ValueError, match=r"Conv2D\(1->4, 5x5, pad 1\).*larger than the padded input"):
        model.predict(np.zeros((2, 1, 2, 8), np.float32))


def test_non_4d_input_to_conv2d_names_the_layer():
    model = fnn.Sequential([fnn.Conv2D(1, 4, 3)], seed=0)
    expected = r"Conv2D\(1->4, 3x3\): expected input with 4 dimensions \(N, C, H, W\), got shape \(N, 28, 28"
    with pytest.raises(ValueError, match=expected):
        model.predict(np.zeros((2, 28, 28), np.float32))


@pytest.mark.parametrize(
    "make",
    [
        lambda: fnn.Conv2D(1, 4, 3, stride=0),
        lambda: fnn.MaxPool2D(2, stride=0),
        lambda: fnn.AvgPool2D(2, stride=0),
    ],
)
def test_stride_zero_is_refused_at_construction(make):
    with pytest.raises(ValueError, match="stride must be >= 1"):
        make()


def test_bad_conv_arguments():
    with pytest.raises(ValueError, match="Conv2D: impl"):
        fnn.Conv2D(1, 2, 3, impl="winograd")
    with pytest.raises(ValueError, match="Conv2D: pad"):
        fnn.Conv2D(1, 2, 3, pad=-1)
    with pytest.raises(ValueError, match="Dropout: p"):
        fnn.Dropout(1.0)


def test_model_output_shape_names_the_failing_layer():
    with pytest.raises(ValueError, match=r"Dense\(4320->100\)"):
        fnn.models.simple_convnet().output_shape((1, 8, 8))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_global_avg_pool_is_the_mean_of_each_plane(backend, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 7, 4)).astype(dtype)
    layer = fnn.GlobalAvgPool2D().initialize(ops=backend, dtype=dtype)
    y = layer.forward(x)
    assert y.shape == (3, 5) and y.dtype == x.dtype
    tolerance = 1e-6 if dtype == "float32" else 1e-13  # absolute: the means of N(0, 1) samples, near 0
    np.testing.assert_allclose(y, x.astype(np.float64).mean(axis=(2, 3)), rtol=0, atol=tolerance)
    dy = rng.standard_normal((3, 5)).astype(dtype)
    expected = np.broadcast_to(dy[:, :, None, None] / 28, x.shape)
    np.testing.assert_allclose(layer.backward(dy), expected, rtol=1e-6 if dtype == "float32" else 1e-13)
    assert fnn.Sequential([fnn.GlobalAvgPool2D()]).output_shape((5, 7, 4)) == (5,)
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D\(\): expected input with 4 dimensions"):
        layer.forward(x[0])
