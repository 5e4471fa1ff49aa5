"""Sequential: flat buffers, training behaviour, inference, and errors on bad input."""

import io

import numpy as np
import pytest

import fastnn as fnn
from fastnn.optim import SGD, Adam

BACKENDS = ["numba", "numpy"]


def small_model(backend="numba", seed=0, dtype="float32"):
    return fnn.Sequential([fnn.Dense(4, 8), fnn.ReLU(), fnn.Dense(8, 3)], backend=backend,
                          dtype=dtype, seed=seed)


def blobs(n=300, seed=0, dtype=np.float32):
    """Three well separated Gaussian clusters in 4-D."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype=np.float64)
    x = centres[t] + 0.3 * rng.standard_normal((n, 4))
    return x.astype(dtype), t


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


@pytest.mark.parametrize("init,expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)),
                                               (0.01, 0.01)])
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
        histories[backend] = model.fit(x, t, epochs=3, batch_size=16, optimizer=Adam(0.01),
                                       verbose=0, seed=0)
        histories[backend + "_params"] = model.flat_params.copy()
    np.testing.assert_allclose(histories["numba"]["loss"], histories["numpy"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(histories["numba_params"], histories["numpy_params"], atol=1e-4)


# -- learning -------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_two_two_one_network_learns_xor(backend):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0], [1], [1], [0]], dtype=np.float64)
    model = fnn.Sequential([fnn.Dense(2, 2, init=1.0), fnn.Sigmoid(), fnn.Dense(2, 1, init=1.0),
                            fnn.Sigmoid()], loss=fnn.MeanSquaredError(), backend=backend,
                           dtype="float64", seed=0)
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

def test_fit_records_history_with_validation_data():
    x, t = blobs(200)
    xv, tv = blobs(60, seed=1)
    history = small_model().fit(x, t, epochs=4, batch_size=32, validation_data=(xv, tv),
                                optimizer=Adam(0.01), verbose=0)
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert history.epochs == 4 and all(len(history[k]) == 4 for k in ("loss", "val_accuracy"))
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history.stop_reason is None


def test_validation_split_holds_out_the_last_samples():
    x, t = blobs(100)
    model = small_model()
    history = model.fit(x, t, epochs=1, batch_size=10, validation_split=0.2, verbose=0)
    expected = model.evaluate(x[80:], t[80:])
    assert history["val_loss"][0] == pytest.approx(expected["loss"], rel=1e-6)
    assert history["val_accuracy"][0] == pytest.approx(expected["accuracy"])


def test_shuffling_changes_batches_each_epoch_and_is_seeded():
    x, t = blobs(100)
    runs = []
    for _ in range(2):
        model = small_model(seed=0)
        model.fit(x, t, epochs=2, batch_size=10, verbose=0, seed=5)
        runs.append(model.flat_params.copy())
    assert np.array_equal(runs[0], runs[1])
    unshuffled = small_model(seed=0)
    unshuffled.fit(x, t, epochs=2, batch_size=10, verbose=0, seed=5, shuffle=False)
    assert not np.array_equal(runs[0], unshuffled.flat_params)


def test_early_stopping_restores_the_best_weights():
    x, t = blobs(200)
    xv, tv = blobs(100, seed=1)
    model = small_model()
    seen = []

    noise = np.random.default_rng(0)

    class Degrading(fnn.optim.SGD):
        """SGD for two epochs, then it adds growing noise, so validation loss gets worse."""

        def step(self, model):
            super().step(model)
            if self.iterations > 20:
                model.flat_params += noise.normal(0, 0.05 * self.iterations, model.num_params)

    history = model.fit(x, t, epochs=30, batch_size=20, optimizer=Degrading(lr=0.1), patience=2,
                        validation_data=(xv, tv), verbose=0)
    seen = history["val_loss"]
    assert history.stop_reason and "early stopping" in history.stop_reason
    assert len(seen) < 30
    best = int(np.argmin(seen))
    assert history.best_epoch == best
    assert model.evaluate(xv, tv)["loss"] == pytest.approx(seen[best], rel=1e-5)


def test_nan_loss_stops_training_and_keeps_the_last_good_weights():
    x, t = blobs(100)
    model = small_model(backend="numpy")
    snapshots = []

    class Exploding(fnn.optim.SGD):
        def step(self, model):
            snapshots.append(model.flat_params.copy())
            super().step(model)
            if self.iterations == 3:
                model.flat_params[0] = np.inf

    with pytest.warns(RuntimeWarning, match="stopped"):
        history = model.fit(x, t, epochs=5, batch_size=10, optimizer=Exploding(lr=0.01), verbose=0)
    assert "not finite" in history.stop_reason or "nan" in history.stop_reason.lower()
    assert "layers[0] Dense(4->8)" in history.stop_reason
    assert np.isfinite(model.flat_params).all()
    # the weights of step 3, the last whose loss was finite
    np.testing.assert_array_equal(model.flat_params, snapshots[2])
    assert history.epochs == 0


def test_train_step_refuses_non_finite_loss_without_touching_weights():
    x, t = blobs(10)
    model = small_model()
    model.layers[2].params["W"][0, 0] = np.nan
    before = model.flat_params.copy()
    with pytest.raises(fnn.NonFiniteError, match=r"layers\[2\] Dense\(8->3\)"):
        model.train_step(x, t, Adam())
    np.testing.assert_array_equal(model.flat_params, before)


def test_progress_bar_is_shown_and_silenced():
    x, t = blobs(50)
    out = io.StringIO()
    small_model().fit(x, t, epochs=1, batch_size=10, verbose=1, file=out)
    assert "5/5" in out.getvalue() and "epoch 1/1" in out.getvalue()
    quiet = io.StringIO()
    small_model().fit(x, t, epochs=1, batch_size=10, verbose=0, file=quiet)
    assert quiet.getvalue() == ""


def test_fit_rejects_bad_arguments():
    x, t = blobs(20)
    model = small_model()
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, t, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, t, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="20 samples and t has 19"):
        model.fit(x, t[:-1], verbose=0)
    with pytest.raises(ValueError, match="needs validation"):
        model.fit(x, t, patience=2, monitor="val_loss", verbose=0)


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


# -- bad input -------------------------------------------------------------------

def test_wrong_feature_count_names_the_layer_and_shapes():
    model = small_model()
    with pytest.raises(ValueError, match=r"Dense\(4->8\): expected input of shape \(N, 4\), got \(2, 5\)"):
        model.predict(np.zeros((2, 5), np.float32))


def test_image_input_to_a_dense_layer_suggests_flatten():
    model = small_model()
    with pytest.raises(ValueError, match="Flatten"):
        model.predict(np.zeros((2, 1, 2, 2), np.float32))


def test_labels_out_of_range_name_the_loss_and_range():
    x, _ = blobs(4)
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: expected class labels in \[0, 3\), got labels in \[0, 3\]"):
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
        fnn.optim.get_optimizer("adamw")


def test_backward_before_forward_is_a_clear_error():
    layer = fnn.Dense(3, 2).initialize(0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2), np.float32))


def test_summary_lists_layers_and_parameter_counts():
    text = fnn.models.mlp(seed=0).summary()
    assert "Dense(784->100)" in text and "78,500" in text and "89,610" in text


def test_callbacks_see_every_epoch_and_can_stop_training():
    x, t = blobs(40)
    calls = []

    class StopAfterTwo(fnn.callbacks.Callback):
        stop_reason = "two is enough"

        def on_train_begin(self, model, optimizer):
            calls.append("begin")

        def on_epoch_begin(self, epoch, model, optimizer):
            calls.append(f"epoch {epoch}")
            optimizer.lr = 0.1 / (epoch + 1)

        def on_epoch_end(self, epoch, metrics, model, optimizer):
            calls.append(round(metrics["loss"], 6) > 0)
            return epoch == 1

        def on_train_end(self, model, optimizer):
            calls.append("end")

    history = small_model().fit(x, t, epochs=5, batch_size=10, optimizer=SGD(), verbose=0,
                                callbacks=[StopAfterTwo()])
    assert calls == ["begin", "epoch 0", True, "epoch 1", True, "end"]
    assert history["lr"] == [0.1, 0.05] and history.stop_reason == "two is enough"


def test_augment_is_applied_to_every_training_batch_with_fit_rng():
    x, t = blobs(30)
    seen = []

    def augment(batch, rng):
        assert isinstance(rng, np.random.Generator)
        seen.append(batch.shape)
        return batch + rng.normal(0, 0.01, batch.shape).astype(batch.dtype)

    small_model().fit(x, t, epochs=2, batch_size=8, augment=augment, verbose=0)
    assert seen == [(8, 4), (8, 4), (8, 4), (6, 4)] * 2


def test_include_penalty_adds_the_l2_and_l1_terms_to_the_reported_loss():
    x, t = blobs(30)
    model = small_model(backend="numpy", seed=0)
    plain = small_model(backend="numpy", seed=0)
    optimizer = SGD(lr=0.0001, weight_decay=0.01, l1=0.001)
    with_penalty = model.fit(x, t, epochs=1, batch_size=30, optimizer=optimizer, verbose=0,
                             include_penalty=True, shuffle=False)
    without = plain.fit(x, t, epochs=1, batch_size=30, optimizer=SGD(lr=0.0001, weight_decay=0.01,
                        l1=0.001), verbose=0, shuffle=False)
    p = model.flat_params.astype(np.float64)
    penalty = 0.5 * 0.01 * (p @ p) + 0.001 * np.abs(p).sum()
    assert with_penalty["loss"][0] - without["loss"][0] == pytest.approx(penalty, rel=1e-4)
