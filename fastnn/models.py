"""The books' networks, each returned as a ready-to-train ``Sequential``."""

from __future__ import annotations

from .layers import Dense, Flatten, ReLU
from .losses import SoftmaxCrossEntropy
from .model import Sequential


def mlp(in_features: int = 784, hidden=(100, 100), classes: int = 10, init="he",
        seed: int | None = None, backend: str = "numba", dtype: str = "float32") -> Sequential:
    """Flatten -> Dense(in->100) -> ReLU -> Dense(100->100) -> ReLU -> Dense(100->classes).

    Takes images (N, 1, 28, 28) as they come (or any input with ``in_features`` values
    per sample), trained with softmax cross-entropy.
    """
    layers = [Flatten()]
    width = in_features
    for units in hidden:
        layers += [Dense(width, units, init=init), ReLU()]
        width = units
    layers.append(Dense(width, classes, init=init))
    return Sequential(layers, loss=SoftmaxCrossEntropy(), backend=backend, dtype=dtype, seed=seed)


MODELS = {"mlp": mlp}
