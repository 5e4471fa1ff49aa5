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

    history = model.fit(x, t, epochs=30, batch_size=20, optimizer=Degrading(lr=0.1), patience=2,
                        validation_data=(xv, tv), verbose=0)
    seen = history["val_loss"]
    assert history.stop_reason and "early stopping" in history.stop_reason
    assert len(seen) < 30
    best = int(np.argmin(seen))
    assert history.best_epoch == best
    assert model.evaluate(xv, tv)["loss"] == pytest.approx(seen[best], rel=1e-5)
