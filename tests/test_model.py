"""Sequential: flat buffers, training behaviour, inference, and errors on bad input."""

import numpy as np
import pytest

import fastnn as fnn
from fastnn.optim import SGD, Adam

from fit_recipe import clusters as blobs
from fit_recipe import small_model

BACKENDS = ["numba", "numpy"]


# -- the flat buffers -----------------------------------------------------------


def test_layer_params_are_views_into_one_flat_buffer():
    model = small_model()
    dense = model.layers[0]
    assert model.flat_params.size == 4 * 8 + 8 + 8 * 3 + 3 == model.num_params
    for name in ("W", "b"):
        assert np.shares_memory(dense.params[name], model.flat_params)
        assert np.shares_memory(dense.grads[name], model.flat_grads)
    model.flat_params[:] = 0
    assert np.all(dense.params["W"] == 0)


def test_one_optimizer_step_updates_every_layer_through_the_flat_buffer():
    model = small_model(backend="numpy")
    x, t = blobs(16)
    before = [layer.params["W"].copy() for layer in (model.layers[0], model.layers[2])]
    model.loss(x, t)
    model.backward()
    expected = model.flat_params - 0.1 * model.flat_grads
    SGD(lr=0.1).step(model)
    np.testing.assert_allclose(model.flat_params, expected, rtol=1e-6)
    after = [layer.params["W"] for layer in (model.layers[0], model.layers[2])]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


def test_seed_makes_initialisation_reproducible():
    assert np.array_equal(small_model(seed=3).flat_params, small_model(seed=3).flat_params)
    assert not np.array_equal(small_model(seed=3).flat_params, small_model(seed=4).flat_params)


@pytest.mark.parametrize(
    "init,expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)), (0.01, 0.01)]
)
def test_initialisers_have_the_documented_std(init, expected_std):
    model = fnn.Sequential([fnn.Dense(400, 300, init=init)], seed=0)
    W = model.layers[0].params["W"]
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert np.all(model.layers[0].params["b"] == 0)


def test_backends_give_the_same_training_trajectory():
    x, t = blobs(64)
    histories = {}
    for backend in BACKENDS:
        model = small_model(backend=backend, seed=1)
        histories[backend] = model.fit(x, t, epochs=3, batch_size=16, optimizer=Adam(0.01), verbose=0, seed=0)
        histories[backend + "_params"] = model.flat_params.copy()
    np.testing.assert_allclose(histories["numba"]["loss"], histories["numpy"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(histories["numba_params"], histories["numpy_params"], atol=1e-4)


# -- learning -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_two_one_network_learns_xor(backend):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0], [1], [1], [0]], dtype=np.float64)
    model = fnn.Sequential(
        [fnn.Dense(2, 2, init=1.0), fnn.Sigmoid(), fnn.Dense(2, 1, init=1.0), fnn.Sigmoid()],
        loss=fnn.MeanSquaredError(),
        backend=backend,
        dtype="float64",
        seed=0,
    )
    model.fit(x, t, epochs=3000, batch_size=4, optimizer=SGD(lr=2.0), verbose=0)
    y = model.predict(x)
    assert np.array_equal((y > 0.5).astype(int), t.astype(int)), y.ravel()
    assert model.evaluate(x, t)["accuracy"] == 1.0


def test_digits_reach_95_percent_test_accuracy():
    (x, t), (x_test, t_test) = fnn.datasets.load_digits(seed=0)
    model = fnn.models.mlp(in_features=64, seed=0)
    model.fit(x, t, epochs=30, batch_size=32, optimizer=Adam(1e-3), verbose=0, seed=0)
    accuracy = model.evaluate(x_test, t_test)["accuracy"]
    assert accuracy >= 0.95, accuracy


# -- fit ------------------------------------------------------------------------


def test_train_step_refuses_non_finite_loss_without_touching_weights():
    x, t = blobs(10)
    model = small_model()
    model.layers[2].params["W"][0, 0] = np.nan
    before = model.flat_params.copy()
    with pytest.raises(fnn.NonFiniteError, match=r"layers\[2\] Dense\(8->3\)"):
        model.train_step(x, t, Adam())
    np.testing.assert_array_equal(model.flat_params, before)


# -- inference ------------------------------------------------------------------


def test_predict_and_evaluate_run_in_batches_with_the_same_result():
    x, t = blobs(103)
    model = small_model()
    whole = model.forward(x)
    np.testing.assert_allclose(model.predict(x, batch_size=10), whole, rtol=1e-6)
    small = model.evaluate(x, t, batch_size=7)
    large = model.evaluate(x, t, batch_size=1000)
    assert small["loss"] == pytest.approx(large["loss"], rel=1e-5)
    assert small["accuracy"] == large["accuracy"]
    assert large["accuracy"] == np.mean(whole.argmax(1) == t)


def test_the_default_inference_batch_grows_for_small_networks_only():
    """Without batch_size, predict and evaluate take chunks of at least 256 samples, more
    while a chunk's largest layer output stays within INFERENCE_CHUNK_BYTES, or
    INFERENCE_VECTOR_CHUNK_BYTES for a network of vectors alone."""
    from fastnn import model as model_module

    mlp = fnn.models.mlp(seed=0)  # vectors alone, 784 inputs the largest: 32 MiB / (784 * 4 bytes)
    expected = model_module.INFERENCE_VECTOR_CHUNK_BYTES // (784 * 4)
    assert mlp.inference_batch_size((1, 28, 28)) == expected == 10699
    conv = fnn.models.deep_convnet(seed=0)  # 16 x 28 x 28 outputs: a chunk of 256 is already 12 MiB
    assert conv.inference_batch_size((1, 28, 28)) == model_module.INFERENCE_BATCH == 256
    small_images = fnn.Sequential([fnn.Conv2D(1, 2, 3), fnn.Flatten(), fnn.Dense(2 * 26 * 26, 10)], seed=0)
    assert small_images.inference_batch_size((1, 28, 28)) == model_module.INFERENCE_CHUNK_BYTES // (1352 * 4)
    wide = fnn.Sequential([fnn.Dense(4, 100000)], seed=0)  # 400 kB a sample: the floor holds
    assert wide.inference_batch_size((4,)) == 256
    x, t = blobs(103)
    model = small_model()
    chunks = []
    original = model._forward
    model._forward = lambda xb, train: chunks.append(len(xb)) or original(xb, train)
    np.testing.assert_array_equal(
        model.predict(x), model.predict(x, batch_size=model.inference_batch_size((4,)))
    )
    assert chunks == [103, 103]  # one chunk: a small network's default holds all 103
    assert model.evaluate(x, t) == model.evaluate(x, t, batch_size=103)
    with pytest.raises(ValueError, match="Sequential.predict: batch_size"):
        model.predict(x, batch_size=0)
    walks = []
    model.inference_batch_size = lambda shape: walks.append(shape) or 50
    model._inference_batches.clear()
    model.predict(x), model.predict(x[:7]), model.evaluate(x, t)
    assert walks == [(4,)]  # the layers are walked once per sample shape, not per call
    model.layers.append(fnn.Identity())  # other layers: walked again
    chunks.clear()
    model.predict(x)
    assert walks == [(4,), (4,)] and chunks == [50, 50, 3]


# -- bad input -------------------------------------------------------------------


def test_wrong_feature_count_names_the_layer_and_shapes():
    model = small_model()
    with pytest.raises(
        ValueError,
        match=r"Sequential.predict: inputs of shape \(N, 5\) do not fit the model at layers\[0\]: "
        r"Dense\(4->8\): expected inputs of 4 features, got shape \(5,\)",
    ):
        model.predict(np.zeros((2, 5), np.float32))
    layer = fnn.Dense(4, 8).initialize(0)  # the layer on its own checks the batch
    with pytest.raises(ValueError, match=r"Dense\(4->8\): expected input of shape \(N, 4\), got \(2, 5\)"):
        layer.forward(np.zeros((2, 5), np.float32))


def test_image_input_to_a_dense_layer_suggests_flatten():
    model = small_model()
    with pytest.raises(ValueError, match="Flatten"):
        model.predict(np.zeros((2, 1, 2, 2), np.float32))


def test_labels_out_of_range_name_the_loss_and_range():
    x, _ = blobs(4)
    with pytest.raises(
        ValueError, match=r"SoftmaxCrossEntropy: expected class labels in \[0, 3\), got labels in \[0, 3\]"
    ):
        small_model().loss(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        small_model().fit(x, np.array([0, 1, -1, 1]), verbose=0)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, object, bool])
def test_non_float_input_is_a_type_error_naming_the_dtype(dtype):
    x = np.zeros((2, 4), dtype=dtype)
    with pytest.raises(TypeError, match=f"expected float input.*got dtype {np.dtype(dtype)}"):
        small_model().predict(x)


def test_nan_in_input_is_rejected():
    x, t = blobs(4)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        small_model().fit(x, t, verbose=0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        small_model().predict(x)


def test_float_class_labels_are_rejected():
    x, t = blobs(4)
    with pytest.raises(TypeError, match="integer dtype"):
        small_model().loss(x, t.astype(np.float32))


def test_layer_dtype_mismatch_names_the_layer():
    layer = fnn.Dense(3, 2).initialize(0, dtype="float32")
    with pytest.raises(TypeError, match=r"Dense\(3->2\): expected input of dtype float32, got float64"):
        layer.forward(np.zeros((1, 3)))


def test_float64_input_is_cast_to_a_float32_model():
    x, t = blobs(8, dtype=np.float64)
    assert small_model().predict(x).dtype == np.float32


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Dense: in_features"):
        fnn.Dense(0, 3)
    with pytest.raises(ValueError, match="Dense: init"):
        fnn.Dense(2, 3, init="glorot_magic")
    with pytest.raises(TypeError, match="layers\\[1\\]"):
        fnn.Sequential([fnn.Dense(2, 3), "relu"])
    with pytest.raises(ValueError, match="unknown backend"):
        fnn.Sequential([fnn.Dense(2, 3)], backend="cuda")
    with pytest.raises(ValueError, match="unknown optimizer"):
        fnn.optim.get_optimizer("adamx")


def test_backward_before_forward_is_a_clear_error():
    layer = fnn.Dense(3, 2).initialize(0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_backward_with_a_loss_scale_gives_that_multiple_of_every_gradient(backend):
    """backward(loss_scale=s) backpropagates s * loss: every parameter gradient and the input
    gradient are s times the plain ones (a data-parallel rank's share of the global loss)."""
    rng = np.random.default_rng(3)
    layers = [
        fnn.layers.Conv2D(2, 3, 3, pad=1),
        fnn.layers.BatchNorm(3),
        fnn.layers.ReLU(),
        fnn.layers.Flatten(),
        fnn.layers.Dense(48, 5),
    ]
    model = fnn.Sequential(layers, seed=0, dtype=np.float64, backend=backend)
    x, t = rng.normal(size=(7, 2, 4, 4)), rng.integers(0, 5, size=7)
    model.loss(x, t)
    dx = model.backward()
    grads = model.flat_grads.copy()
    model.loss(x, t)
    dx_scaled = model.backward(loss_scale=0.3)
    np.testing.assert_allclose(model.flat_grads, 0.3 * grads, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx_scaled, 0.3 * dx, rtol=1e-12, atol=1e-15)
    assert np.abs(grads).max() > 0


def test_summary_lists_layers_and_parameter_counts():
    text = fnn.models.mlp(seed=0).summary()
    assert "Dense(784->100)" in text and "78,500" in text and "89,610" in text


# -- predict_proba and predict_classes -----------------------------------------------


def test_predict_proba_is_the_softmax_of_predict_and_classes_its_argmax():
    x, _ = blobs(37)
    model = small_model(dtype="float64")
    logits = model.predict(x)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # the softmax formula
    probs = model.predict_proba(x, batch_size=8)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(probs, shifted / shifted.sum(axis=1, keepdims=True), rtol=1e-10)
    classes = model.predict_classes(x, batch_size=5)
    assert classes.shape == (37,) and np.array_equal(classes, logits.argmax(axis=1))


def test_predict_proba_of_a_regression_model_is_a_type_error_naming_the_loss():
    model = fnn.Sequential([fnn.Dense(3, 2)], loss="mse", seed=0)
    with pytest.raises(TypeError, match=r"MeanSquaredError is not a classification loss.*use predict\(\)"):
        model.predict_proba(np.zeros((4, 3), np.float32))


# -- the input shape -----------------------------------------------------------------


def test_a_book_convnet_names_the_shape_it_expects():
    model = fnn.models.simple_convnet(seed=0)
    assert model.input_shape == (1, 28, 28)
    expected = (
        r"Sequential.predict: expected inputs of shape \(N, 1, 28, 28\), got \(N, 3, 32, 32\) "
        r"\(the model was built for 1x28x28 images\); resize them to that shape, or build a model "
        r"for 3x32x32 images"
    )
    with pytest.raises(ValueError, match=expected):
        model.predict(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"Sequential.evaluate: .*reshape them: x.reshape\(-1, 1, 28, 28\)"):
        model.evaluate(np.zeros((2, 784), np.float32), [0, 1])
    with pytest.raises(ValueError, match=r"fit: expected inputs of shape \(N, 1, 28, 28\)"):
        model.fit(np.zeros((2, 1, 32, 32), np.float32), [0, 1], verbose=0)
    with pytest.raises(ValueError, match=r"Sequential.train_step: expected inputs of shape \(N, 1, 28, 28\)"):
        model.train_step(np.zeros((2, 1, 32, 32), np.float32), [0, 1], SGD())
    with pytest.raises(ValueError, match=r"Sequential.forward: expected"):
        model.forward(np.zeros((2, 1, 27, 28), np.float32))


def test_the_first_training_step_records_an_unknown_input_shape():
    (x, t), _ = fnn.datasets.load_digits(seed=0)
    model = fnn.models.mlp(in_features=64, hidden=(8,), seed=0)
    assert model.input_shape is None
    model.predict(x[:3].reshape(3, 64))  # unknown: any shape the layers take
    with pytest.raises(ValueError, match=r"Sequential.predict: inputs of shape \(N, 3, 8, 8\) do not fit "):
        model.predict(np.zeros((2, 3, 8, 8), np.float32))
    model.fit(x[:64], t[:64], epochs=1, batch_size=32, verbose=0)
    assert model.input_shape == (1, 8, 8)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(N, 1, 8, 8\), got \(N, 64\)"):
        model.predict(x[:3].reshape(3, 64))


def test_an_unknown_shape_fails_at_the_entry_naming_the_first_layer_that_cannot_take_it():
    model = fnn.Sequential([fnn.Conv2D(1, 4, 3), fnn.ReLU(), fnn.Flatten(), fnn.Dense(4 * 6 * 6, 2)], seed=0)
    model.predict(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"at layers\[3\]: Dense\(144->2\): expected inputs of 144 features"):
        model.loss(np.zeros((1, 1, 9, 9), np.float32), [0])
    with pytest.raises(ValueError, match=r"at layers\[0\]: Conv2D\(1->4, 3x3\): expected input with 4 dim"):
        model.predict(np.zeros((2, 64), np.float32))
    dense = fnn.Sequential([fnn.Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match=r"Dense\(4->2\).*\(add Flatten\(\) before it\)"):
        dense.predict(np.zeros((2, 1, 2, 2), np.float32))


def test_changing_the_layers_checks_the_shape_again():
    model = fnn.Sequential([fnn.Dense(4, 3)], seed=0)
    model.predict(np.zeros((1, 4), np.float32))
    model.layers[0] = fnn.Dense(5, 3).initialize(0)
    with pytest.raises(ValueError, match=r"inputs of shape \(N, 4\) do not fit the model at layers\[0\]"):
        model.predict(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("in_features", [1, 7, 300])
def test_dense_and_mse_models_of_any_width_train_on_flat_inputs(in_features):
    rng = np.random.default_rng(in_features)
    x = rng.standard_normal((20, in_features)).astype(np.float32)
    t = rng.standard_normal((20, 2)).astype(np.float32)
    model = fnn.Sequential([fnn.Dense(in_features, 2)], loss="mse", seed=0)
    model.fit(x, t, epochs=2, batch_size=10, verbose=0)
    assert model.input_shape == (in_features,)
    assert model.predict(x).shape == (20, 2)


def test_input_shape_is_checked_at_construction_and_saved(tmp_path):
    with pytest.raises(
        ValueError, match=r"Sequential\(input_shape=...\): inputs of shape \(N, 5\) do not fit"
    ):
        fnn.Sequential([fnn.Dense(4, 2)], input_shape=(5,))
    with pytest.raises(ValueError, match=r"input_shape must be the shape of one sample .* got \(0, 4\)"):
        fnn.Sequential([fnn.Dense(4, 2)], input_shape=(0, 4))
    model = fnn.Sequential([fnn.Flatten(), fnn.Dense(4, 2)], input_shape=[1, 2, 2], seed=0)
    model.save(tmp_path / "m.npz")
    assert fnn.load(tmp_path / "m.npz").input_shape == (1, 2, 2)
    config = model.get_config()
    del config["input_shape"]  # a file written before the input shape was saved
    assert fnn.Sequential.from_config(config).input_shape is None


# -- evaluate's metrics ----------------------------------------------------------------


def test_evaluate_metrics_equal_the_metric_functions_on_the_whole_set():
    x, t = blobs(90)
    model = small_model()
    model.fit(x, t, epochs=3, batch_size=16, optimizer=Adam(0.01), verbose=0)
    names = ["accuracy", "top_k_accuracy", "precision", "recall", "f1", "confusion_matrix"]

    def errors(y, t):
        return int(np.count_nonzero(y.argmax(axis=1) != t))

    result = model.evaluate(x, t, batch_size=7, metrics=names + [errors])
    y = model.predict(x)
    assert result["accuracy"] == pytest.approx(np.mean(y.argmax(1) == t))
    assert result["top_k_accuracy"] == 1.0  # 3 classes, k=5
    np.testing.assert_array_equal(result["confusion_matrix"], fnn.metrics.confusion_matrix(y, t))
    assert result["confusion_matrix"].sum() == 90
    np.testing.assert_allclose(result["f1"], fnn.metrics.f1_score(y, t))
    np.testing.assert_allclose(result["precision"], fnn.metrics.precision(y, t))
    assert result["errors"] == 90 - round(90 * result["accuracy"]) == np.sum(y.argmax(1) != t)


def test_evaluate_regression_metrics_and_the_loss_agree():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3)).astype(np.float64)
    t = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((50, 1))
    model = fnn.Sequential([fnn.Dense(3, 1)], loss="mse", dtype="float64", seed=0)
    result = model.evaluate(x, t, batch_size=16, metrics=["mse", "mae", "r2"])
    residual = model.predict(x) - t
    assert result["mse"] == pytest.approx(np.mean(residual**2))
    assert result["loss"] == pytest.approx(0.5 * result["mse"])  # the loss is half the sum of squares
    assert result["mae"] == pytest.approx(np.mean(np.abs(residual)))
    assert result["r2"] == pytest.approx(1 - np.sum(residual**2) / np.sum((t - t.mean()) ** 2))


def test_evaluate_regression_metrics_of_a_classifier_compare_with_one_hot_targets():
    x, t = blobs(40)
    model = small_model()
    result = model.evaluate(x, t, metrics=["mse"])
    y = model.predict(x)
    assert result["mse"] == pytest.approx(np.mean((y - np.eye(3)[t]) ** 2), rel=1e-5)


def test_an_unknown_metric_is_refused_at_once_with_the_valid_names():
    with pytest.raises(
        ValueError, match=r"Sequential.evaluate: unknown metric 'f2'; expected one of \['accuracy'"
    ):
        small_model().evaluate(np.zeros((2, 99), np.float32), [0, 1], metrics=["f1", "f2"])
