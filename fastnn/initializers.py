"""Weight initialisation: "he", "xavier", "nielsen", "large", or a fixed standard deviation.

W ~ Normal(0, std**2) with
    he:      std = sqrt(2 / fan_in)   (He et al. 2015; for ReLU)
    xavier:  std = sqrt(1 / fan_in)   (the "Xavier" value as Deep Learning from Scratch uses it;
                                       for sigmoid and tanh)
    nielsen: std = 1 / sqrt(fan_in)   (Nielsen's network2.py ``default_weight_initializer``, the
                                       "Gaussian with small std" of chapter 3: xavier's value
                                       under the name his readers know)
    large:   std = 1                  (Nielsen's "old" ``large_weight_initializer``, the
                                       initialisation of network.py: saturates sigmoid units)
    float s: std = s                  (the books' ``weight_init_std``, e.g. 0.01)

fan_in is a Dense layer's in_features, a Conv2D's in_channels * KH * KW. Layers start
their biases at 0; Nielsen draws them from Normal(0, 1) in both initialisers, which
:func:`gaussian_biases` does to a built model.
"""

from __future__ import annotations

import numbers

import numpy as np

INITS = ("he", "xavier", "nielsen", "large")


def check_init(where: str, init) -> None:
    """Raise a ValueError naming ``where`` unless ``init`` is one of :data:`INITS` or a positive float."""
    names = ", ".join(repr(name) for name in INITS)
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"{where}: init must be one of {names} or a float std, got {init!r}")
    elif not isinstance(init, numbers.Real) or isinstance(init, bool) or not init > 0:
        raise ValueError(f"{where}: init must be one of {names} or a positive float std, got {init!r}")


def init_std(init, fan_in: int) -> float:
    """The standard deviation for ``init`` with ``fan_in`` inputs per output unit."""
    if init == "he":
        return float(np.sqrt(2.0 / fan_in))
    if init in ("xavier", "nielsen"):
        return float(np.sqrt(1.0 / fan_in))
    if init == "large":
        return 1.0
    return float(init)


def normal_weights(shape, init, fan_in: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """Weights of ``shape`` drawn from Normal(0, init_std(init, fan_in)**2), in ``dtype``."""
    return (rng.standard_normal(shape) * init_std(init, fan_in)).astype(dtype)


def gaussian_biases(model, seed=None, std: float = 1.0) -> None:
    """Redraw every bias ``b`` of ``model`` (its layers, and those inside blocks) from
    Normal(0, std**2), in place: Nielsen's bias initialisation (network.py, network2.py).

    ``model`` is a built Sequential; the draws come from ``np.random.default_rng(seed)``
    in the order of the layers.
    """
    if not (isinstance(std, numbers.Real) and not isinstance(std, bool) and std > 0):
        raise ValueError(f"gaussian_biases: std must be a positive float, got {std!r}")
    rng = np.random.default_rng(seed)
    pending = list(model.layers)
    while pending:
        layer = pending.pop(0)
        if "b" in layer.params:
            b = layer.params["b"]
            b[...] = rng.standard_normal(b.shape) * std
        for group in (
            getattr(layer, "body", []),
            getattr(layer, "shortcut", []),
            *getattr(layer, "branches", []),
        ):
            pending.extend(group)
