"""NonFiniteGuard: a NaN or Inf loss or gradient stops training; the model keeps the last
weights whose loss was finite, and the checkpoint folder the last good state."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn
from fastnn.checkpoint import load_latest
from fastnn.optim import SGD, Adam

from fit_recipe import blobs, clusters, latest_step, recipe_model, small_model


def test_nan_loss_stops_training_and_keeps_the_last_good_weights():
    x, t = clusters(100)
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


class InfGradient(fnn.layers.Layer):
    """Identity forward; backward multiplies by inf: a finite loss, non-finite gradients."""

    def forward(self, x, train=True):
        return x

    def backward(self, dy):
        return dy * np.float32(np.inf)


def test_non_finite_gradient_names_the_first_layer_and_keeps_the_weights():
    x, t = blobs(64)
    model = fnn.Sequential([fnn.Dense(16, 8), fnn.ReLU(), InfGradient(), fnn.Dense(8, 4)], seed=0)
    before = model.flat_params.copy()
    message = r"gradient is not finite: first in layers\[0\] Dense\(16->8\) grads\['W'\]"
    with pytest.raises(fnn.NonFiniteError, match=message):
        model.train_step(x, t, Adam())
    np.testing.assert_array_equal(model.flat_params, before)
    with pytest.warns(RuntimeWarning, match=r"layers\[0\] Dense"):
        history = model.fit(x, t, epochs=2, verbose=0)
    assert "step 1" in history.stop_reason and history.epochs == 0
    np.testing.assert_array_equal(model.flat_params, before)


def test_nan_in_the_middle_of_training_keeps_the_last_good_checkpoint(tmp_path):
    """A NaN stops training without writing a checkpoint: the folder keeps the last good state."""
    x, t = blobs()

    class Poison(SGD):
        def step(self, model):
            super().step(model)
            if self.iterations == 12:
                model.flat_params[5] = np.nan

    model = recipe_model()
    with pytest.warns(RuntimeWarning, match="not finite|nan"):
        history = model.fit(
            x,
            t,
            epochs=3,
            batch_size=32,
            optimizer=Poison(0.01),
            verbose=0,
            checkpoint=tmp_path,
            checkpoint_every=5,
        )
    assert history.stop_reason and np.isfinite(model.flat_params).all()
    assert latest_step(tmp_path) == 10
    assert np.isfinite(load_latest(tmp_path).arrays["params"]).all()


def test_a_gradient_that_is_not_finite_keeps_the_weights_and_restores_running_statistics():
    """A finite loss with a NaN gradient: the weights stay, and BatchNorm's running
    statistics, which the failed step's forward pass moved, go back."""
    x, t = blobs(64)

    class NaNGradient(fnn.layers.Layer):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x, train=True):
            return x

        def backward(self, dy):
            self.calls += 1
            return dy * np.float32(np.nan) if self.calls == 3 else dy

    model = fnn.Sequential(
        [fnn.Dense(16, 8), fnn.BatchNorm(8), NaNGradient(), fnn.ReLU(), fnn.Dense(8, 4)], seed=0
    )
    running = []

    class Watch(fnn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs, model, optimizer):
            running.append((model.flat_params.copy(), model.layers[1].running_mean.copy()))

    with pytest.warns(RuntimeWarning, match="gradient is not finite"):
        history = model.fit(x, t, epochs=1, batch_size=16, optimizer=SGD(0.1), verbose=0, callbacks=[Watch()])
    assert len(running) == 2 and "step 3" in history.stop_reason
    np.testing.assert_array_equal(model.flat_params, running[-1][0])
    np.testing.assert_array_equal(model.layers[1].running_mean, running[-1][1])


def test_fit_runs_one_guard_and_takes_the_callers():
    x, t = clusters(20)
    guard = fnn.callbacks.NonFiniteGuard()
    seen = []

    class Look(fnn.callbacks.Callback):
        def on_train_begin(self, model, optimizer):
            seen.extend(c for c in self.loop.callbacks if isinstance(c, fnn.callbacks.NonFiniteGuard))

    small_model().fit(x, t, epochs=1, batch_size=10, verbose=0, callbacks=[Look(), guard])
    assert seen == [guard]
