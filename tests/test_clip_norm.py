"""clip_norm: optim.clip_grad_norm's formula, and model.train_step clipping before the step."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.optim import SGD, clip_grad_norm

from fit_recipe import blobs, recipe_model


@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 1e6])
def test_clip_grad_norm_follows_the_formula(max_norm):
    rng = np.random.default_rng(0)
    grads = rng.standard_normal(1000).astype(np.float32)
    norm = np.sqrt(np.sum(grads.astype(np.float64) ** 2))
    expected = grads * np.float32(min(1.0, max_norm / (norm + 1e-6)))
    clipped = grads.copy()
    assert clip_grad_norm(clipped, max_norm) == pytest.approx(norm, rel=1e-12)
    np.testing.assert_array_equal(clipped, expected)
    assert np.sqrt(np.sum(clipped.astype(np.float64) ** 2)) <= max(max_norm, norm) * (1 + 1e-6)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(clipped, 0.0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_train_step_clips_before_the_optimizer_step(backend):
    x, t = blobs(64)
    model, manual = recipe_model(backend), recipe_model(backend)
    model.layers[2].p = manual.layers[2].p = 0.0  # no dropout: same forward pass
    manual.loss(x, t)
    manual.backward()
    g = manual.flat_grads.astype(np.float64)
    norm = np.sqrt(g @ g)
    assert norm > 0.1
    expected = manual.flat_params - np.float32(0.5) * (manual.flat_grads * np.float32(0.1 / (norm + 1e-6)))
    model.train_step(x, t, SGD(lr=0.5), clip_norm=0.1)
    np.testing.assert_allclose(model.flat_params, expected, rtol=1e-6, atol=1e-7)
    step = model.flat_params - manual.flat_params
    assert np.sqrt(np.sum(step.astype(np.float64) ** 2)) == pytest.approx(0.5 * 0.1, rel=1e-4)
