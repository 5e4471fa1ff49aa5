"""The playground's settings: their defaults, allowed values, and the check of a change.

Every setting the page can send is listed in :data:`SPEC` with its kind and allowed range;
:func:`validate` turns a JSON object of changes into checked Python values or raises
:class:`SettingsError` naming the field, the allowed range and the value it got.
"""

from __future__ import annotations

import math
import numbers

from .datasets import DATASETS
from .features import FEATURES

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
REGULARIZATIONS = ("none", "l1", "l2")
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
BACKENDS = ("numpy", "numba")
MAX_LAYERS = 6
MAX_NEURONS = 8

#: name -> (kind, allowed) where kind is "int" / "float" (allowed: (low, high), inclusive),
#: "choice" (allowed: the names), "layers" or "features".
SPEC = {
    "dataset": ("choice", DATASETS + ("custom",)),
    "noise": ("int", (0, 50)),
    "train_ratio": ("int", (10, 90)),
    "num_samples": ("int", (20, 2000)),
    "classes": ("int", (2, 6)),
    "seed": ("int", (0, 2**31 - 1)),
    "features": ("features", tuple(FEATURES)),
    "layers": ("layers", (0, MAX_LAYERS, 1, MAX_NEURONS)),
    "activation": ("choice", ACTIVATIONS),
    "dropout": ("float", (0.0, 0.9)),
    "lr": ("float", (1e-5, 10.0)),
    "optimizer": ("choice", OPTIMIZERS),
    "regularization": ("choice", REGULARIZATIONS),
    "reg_rate": ("float", (0.0, 10.0)),
    "batch_size": ("int", (1, 30)),
    "max_epochs": ("int", (0, 1_000_000)),
    "stop_loss": ("float", (0.0, 10.0)),
    "backend": ("choice", BACKENDS),
}

#: The original playground's starting point (circle, X1 and X2, two hidden layers 4-2, tanh).
DEFAULTS = {
    "dataset": "circle",
    "noise": 0,
    "train_ratio": 50,
    "num_samples": 500,
    "classes": 3,
    "seed": 0,
    "features": ["x1", "x2"],
    "layers": [4, 2],
    "activation": "tanh",
    "dropout": 0.0,
    "lr": 0.03,
    "optimizer": "sgd",
    "regularization": "none",
    "reg_rate": 0.0,
    "batch_size": 10,
    "max_epochs": 0,
    "stop_loss": 0.0,
    "backend": "numba",
}

#: Settings whose change means new points (and so a new network).
DATA_KEYS = ("dataset", "noise", "train_ratio", "num_samples", "classes", "seed")
#: Settings whose change means a new network on the same points.
NETWORK_KEYS = ("features", "layers", "activation", "dropout")
#: Settings whose change means a new optimizer, keeping the weights.
OPTIMIZER_KEYS = ("lr", "optimizer", "regularization", "reg_rate")


class SettingsError(ValueError):
    """A setting out of its range; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"playground setting '{field}': {message}")
        self.field = field


def describe(name: str) -> str:
    """The allowed values of a setting, in words."""
    kind, allowed = SPEC[name]
    if kind == "float":
        return f"a number from {allowed[0]:g} to {allowed[1]:g}"
    if kind == "int":
        return f"an integer from {allowed[0]} to {allowed[1]}"
    if kind == "choice":
        return "one of " + ", ".join(allowed)
    if kind == "features":
        return "a non-empty list of distinct names from " + ", ".join(allowed)
    low, high, smallest, largest = allowed
    return f"a list of {low} to {high} layer sizes, each an integer from {smallest} to {largest}"


def validate(changes) -> dict:
    """Checked copies of the settings in ``changes`` (a dict from the page's JSON)."""
    if not isinstance(changes, dict):
        raise SettingsError("(body)", f"expected a JSON object of settings, got {type(changes).__name__}")
    checked = {}
    for name, value in changes.items():
        if name not in SPEC:
            raise SettingsError(name, f"unknown setting; expected one of {', '.join(SPEC)}")
        checked[name] = _check(name, value)
    return checked


def _bad(name, value):
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return SettingsError(name, f"expected {describe(name)}, got {shown}")


def _integer(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(name, value)
    if not math.isfinite(value) or value != int(value):
        raise _bad(name, value)
    return int(value)


def _check(name, value):
    kind, allowed = SPEC[name]
    if kind == "choice":
        if not isinstance(value, str) or value not in allowed:
            raise _bad(name, value)
        return value
    if kind == "int":
        number = _integer(name, value)
        if not allowed[0] <= number <= allowed[1]:
            raise _bad(name, value)
        return number
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise _bad(name, value)
        if not allowed[0] <= value <= allowed[1]:
            raise _bad(name, value)
        return float(value)
    if not isinstance(value, list):
        raise _bad(name, value)
    if kind == "features":
        if not value or len(set(map(str, value))) != len(value) or any(v not in allowed for v in value):
            raise _bad(name, value)
        return [str(v) for v in value]
    low, high, smallest, largest = allowed
    if not low <= len(value) <= high:
        raise _bad(name, value)
    sizes = []
    for size in value:
        if isinstance(size, bool) or not isinstance(size, numbers.Real) or not math.isfinite(size):
            raise _bad(name, value)
        if size != int(size) or not smallest <= size <= largest:
            raise _bad(name, value)
        sizes.append(int(size))
    return sizes
