"""Weight initialisation: "he", "xavier", or a fixed standard deviation.

W ~ Normal(0, std**2) with
    he:      std = sqrt(2 / fan_in)   (He et al. 2015; for ReLU)
    xavier:  std = sqrt(1 / fan_in)   (the "Xavier" value as Deep Learning from Scratch uses it;
                                       for sigmoid and tanh)
    float s: std = s                  (the books' ``weight_init_std``, e.g. 0.01)
"""

from __future__ import annotations

import numbers

import numpy as np

INITS = ("he", "xavier")


def check_init(where: str, init) -> None:
    """Raise a ValueError naming ``where`` unless ``init`` is "he", "xavier" or a positive float."""
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"{where}: init must be 'he', 'xavier' or a float std, got {init!r}")
    elif not isinstance(init, numbers.Real) or isinstance(init, bool) or not init > 0:
        raise ValueError(f"{where}: init must be 'he', 'xavier' or a positive float std, got {init!r}")


def init_std(init, fan_in: int) -> float:
    """The standard deviation for ``init`` with ``fan_in`` inputs per output unit."""
    if init == "he":
        return float(np.sqrt(2.0 / fan_in))
    if init == "xavier":
        return float(np.sqrt(1.0 / fan_in))
    return float(init)


def normal_weights(shape, init, fan_in: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """Weights of ``shape`` drawn from Normal(0, init_std(init, fan_in)**2), in ``dtype``."""
    return (rng.standard_normal(shape) * init_std(init, fan_in)).astype(dtype)
