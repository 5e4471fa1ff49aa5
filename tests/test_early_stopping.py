"""EarlyStopping: stop on a plateau and end with the best epoch's weights."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn

from fit_recipe import clusters as blobs
from fit_recipe import small_model


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

    history = model.fit(
        x,
        t,
        epochs=30,
        batch_size=20,
        optimizer=Degrading(lr=0.1),
        patience=2,
        validation_data=(xv, tv),
        verbose=0,
    )
    seen = history["val_loss"]
    assert history.stop_reason and "early stopping" in history.stop_reason
    assert len(seen) < 30
    best = int(np.argmin(seen))
    assert history.best_epoch == best
    assert model.evaluate(xv, tv)["loss"] == pytest.approx(seen[best], rel=1e-5)


def _fit(model, callbacks=(), **kwargs):
    x, t = blobs(200)
    xv, tv = blobs(100, seed=1)
    return model.fit(
        x,
        t,
        epochs=12,
        batch_size=20,
        optimizer=fnn.optim.SGD(lr=3.0),
        verbose=0,
        validation_data=(xv, tv),
        seed=4,
        callbacks=callbacks,
        **kwargs,
    )


def test_the_callback_is_what_fits_patience_builds():
    shorthand, explicit = small_model(seed=1), small_model(seed=1)
    a = _fit(shorthand, patience=2, monitor="val_accuracy", min_delta=0.001)
    b = _fit(explicit, [fnn.callbacks.EarlyStopping(2, monitor="val_accuracy", min_delta=0.001)])
    assert a.stop_reason == b.stop_reason and a.best_epoch == b.best_epoch
    assert dict(a) == {k: v for k, v in b.items() if k != "time"} | {"time": a["time"]}
    np.testing.assert_array_equal(shorthand.flat_params, explicit.flat_params)


def test_without_restoring_the_model_keeps_its_last_weights():
    kept, restored = small_model(seed=1), small_model(seed=1)
    _fit(kept, [fnn.callbacks.EarlyStopping(1, "val_accuracy", restore_best_weights=False)])
    history = _fit(restored, [fnn.callbacks.EarlyStopping(1, "val_accuracy")])
    assert history.stop_reason and history.best_epoch < history.epochs - 1
    assert not np.array_equal(kept.flat_params, restored.flat_params)


def test_accuracy_is_maximised_and_loss_minimised():
    stopper = fnn.callbacks.EarlyStopping(3, monitor="val_accuracy")
    stopper.set_loop(type("Loop", (), {"validation": (1, 2)})())
    stopper.on_train_begin(None, None)
    assert stopper.improved(0.5) and (stopper.best, stopper.maximise) == (-np.inf, True)
    stopper.set_loop(type("Loop", (), {"validation": None})())
    loss = fnn.callbacks.EarlyStopping(3, min_delta=0.1)
    loss.set_loop(stopper.loop)
    loss.on_train_begin(None, None)
    loss.best = 1.0
    assert loss.improved(0.85) and not loss.improved(0.95) and loss.watched == "loss"


def test_state_round_trips_with_the_best_weights():
    model = small_model()
    x, t = blobs(60)
    stopper = fnn.callbacks.EarlyStopping(5)
    model.fit(x, t, epochs=2, batch_size=20, verbose=0, callbacks=[stopper])
    state = stopper.state_dict()
    assert state["monitor"] == "loss" and state["wait"] == stopper.wait
    np.testing.assert_array_equal(state["best_weights"]["params"], stopper.best_weights["params"])
    copy = fnn.callbacks.EarlyStopping(5)
    copy.load_state_dict(state)
    assert (copy.best, copy.best_epoch, copy.wait) == (stopper.best, stopper.best_epoch, stopper.wait)
    assert copy.best_weights is state["best_weights"]


def test_bad_arguments_name_the_callback():
    with pytest.raises(ValueError, match="EarlyStopping: patience must be a positive integer"):
        fnn.callbacks.EarlyStopping(0)
    with pytest.raises(ValueError, match="EarlyStopping: min_delta"):
        fnn.callbacks.EarlyStopping(2, min_delta=-1)
    with pytest.raises(TypeError, match="EarlyStopping: monitor must be the name of a metric.*got int 3"):
        fnn.callbacks.EarlyStopping(2, monitor=3)
    with pytest.raises(TypeError, match="ReduceLROnPlateau: monitor must be the name of a metric"):
        fnn.callbacks.ReduceLROnPlateau(monitor=None)
    x, t = blobs(20)
    with pytest.raises(ValueError, match="EarlyStopping: monitor='val_accuracy' needs validation"):
        small_model().fit(x, t, verbose=0, callbacks=[fnn.callbacks.EarlyStopping(2, "val_accuracy")])
