"""Gradient checking: backprop against central differences.

For a scalar loss L(theta), the numerical derivative of each entry is
    (L(theta + eps e_i) - L(theta - eps e_i)) / (2 eps),
and the relative error against the analytic gradient g is
    max_i |g_i - g_num_i| / max(|g_i| + |g_num_i|, floor),
where floor = 1e-3 * max_i(|g_i| + |g_num_i|) keeps entries that are tiny next to
the rest of the array from being judged on finite-difference noise alone.
Use float64 models: in float32, rounding swamps differences of size eps.
"""

from __future__ import annotations

import numpy as np

from .layers.blocks import leaves


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f()`` w.r.t. array ``x``.

    Each entry of ``x`` is nudged in place (any layout) and restored; ``f`` must read ``x``.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(*x.shape):
        saved = x[i]
        x[i] = saved + eps
        plus = f()
        x[i] = saved - eps
        minus = f()
        x[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max_i |a_i - n_i| / max(|a_i| + |n_i|, floor), floor = max(1e-3 * max_i(|a_i| + |n_i|), 1e-12)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.size == 0:
        return 0.0
    magnitude = np.abs(analytic) + np.abs(numeric)
    scale = np.maximum(magnitude, max(1e-3 * magnitude.max(), 1e-12))
    return float((np.abs(analytic - numeric) / scale).max())


def gradcheck(model, x, t, eps: float = 1e-5, check_input: bool = False, verbose: bool = True) -> dict:
    """Compare ``model``'s backprop gradients with central differences.

    Every pass, analytic and numerical, runs the loss in training mode (batch norm
    uses the batch's statistics). Layers that draw random numbers from a numpy
    generator attribute (Dropout's ``rng``, a block's sublayers' too) get the same draws
    on every pass, so each pass sees one fixed mask. The layers' buffers (batch norm's
    running statistics, which each training pass moves) are put back afterwards:
    checking leaves the model as it was.
    Returns {layer name: worst relative error over its parameters} (and
    "input" if ``check_input``), and prints the table when ``verbose``. A frozen layer
    (``trainable = False``, or inside a frozen block) has no weight gradient: its
    parameters are left out, and a layer with nothing else is not in the result.
    """
    if model.dtype != np.float64:
        raise TypeError(f"gradcheck: use a float64 model, got {model.dtype}")
    x = model.prepare_input(x, "gradcheck").copy()
    t = model.prepare_targets(t, "gradcheck")
    generators = [  # a block holds its sublayers' generators as attributes too
        value
        for layer in model.layers
        for value in vars(layer).values()
        if isinstance(value, np.random.Generator)
    ]
    states = [generator.bit_generator.state for generator in generators]
    buffers = [(array, array.copy()) for layer in model.layers for array in layer.buffers.values()]

    def loss():
        for generator, state in zip(generators, states):
            generator.bit_generator.state = state
        return model.loss(x, t, train=True)

    errors, frozen = {}, []
    try:
        loss()
        dx = model.backward()
        for index, layer in enumerate(model.layers):
            checked = [leaf for leaf, trainable in leaves([layer]) if trainable and leaf.params]
            worst = 0.0
            for leaf in checked:
                for name, param in leaf.params.items():
                    numeric = numerical_gradient(loss, param, eps)
                    worst = max(worst, relative_error(leaf.grads[name], numeric))
            if checked:
                errors[model.layer_name(index)] = worst
            elif layer.params:
                frozen.append(model.layer_name(index))
        if check_input:
            errors["input"] = relative_error(dx, numerical_gradient(loss, x, eps))
    finally:
        for array, saved in buffers:
            array[...] = saved
    if verbose:
        width = max((len(k) for k in errors), default=10)
        for name, error in errors.items():
            print(f"{name:<{width}}  worst relative error {error:.2e}")
        for name in frozen:
            print(f"{name:<{width}}  frozen (trainable = False): no weight gradient to check")
    return errors
