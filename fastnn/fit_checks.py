"""fit's plain arguments checked before anything runs: types, ranges and names.

:func:`check_fit_arguments` is what :func:`fastnn.training.fit` calls first, so a typo
fails at once with the valid values listed, not after an epoch of training. The data
(``x``, ``t``, ``validation_data``) is checked by the model's ``prepare_input`` and
``prepare_targets``; callbacks check themselves through ``Callback.check(loop)``.
"""

from __future__ import annotations

import difflib
import numbers
import os

import numpy as np

from ._checks import check_batch_size, check_count
from .callbacks import Callback
from .optim import OPTIMIZERS, Optimizer

__all__ = ["check_fit_arguments", "check_optimizer"]


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _check_flag(name: str, value) -> bool:
    if not _is_bool(value):
        raise TypeError(f"fit: {name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_optimizer(optimizer) -> None:
    """None, an :class:`~fastnn.optim.Optimizer` or one of the optimizer names."""
    if optimizer is None or isinstance(optimizer, Optimizer):
        return
    names = sorted(OPTIMIZERS)
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        raise TypeError(
            f"fit: optimizer is the class {optimizer.__name__}, not an optimizer; pass an instance "
            f"such as {optimizer.__name__}() or {optimizer.__name__}(lr=...)"
        )
    if not isinstance(optimizer, str):
        raise TypeError(
            f"fit: optimizer must be a fastnn.optim.Optimizer (e.g. fnn.optim.Adam(1e-3)) or one of "
            f"the names {', '.join(map(repr, names))}; got {type(optimizer).__name__} {optimizer!r}"
        )
    if optimizer.lower() not in OPTIMIZERS:
        close = difflib.get_close_matches(optimizer.lower(), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"fit: optimizer={optimizer!r} is not an optimizer name; expected one of "
            f"{', '.join(map(repr, names))}{hint}"
        )


def _check_callbacks(callbacks) -> list:
    if isinstance(callbacks, Callback):
        raise TypeError(
            f"fit: callbacks must be a list of callbacks, got a single {type(callbacks).__name__}; "
            f"pass callbacks=[{type(callbacks).__name__}(...)]"
        )
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(
            f"fit: callbacks must be a list of fastnn.callbacks.Callback objects, got "
            f"{type(callbacks).__name__} {callbacks!r}"
        ) from None
    for i, callback in enumerate(callbacks):
        if isinstance(callback, type) and issubclass(callback, Callback):
            raise TypeError(
                f"fit: callbacks[{i}] is the class {callback.__name__}, not a callback; pass an "
                f"instance such as {callback.__name__}(...)"
            )
        if not isinstance(callback, Callback):
            raise TypeError(
                f"fit: callbacks[{i}] is a {type(callback).__name__}, not a fastnn.callbacks.Callback"
            )
    return callbacks


def check_fit_arguments(
    *,
    epochs,
    batch_size,
    optimizer,
    validation_split,
    shuffle,
    patience,
    monitor,
    min_delta,
    restore_best_weights,
    verbose,
    seed,
    callbacks,
    augment,
    include_penalty,
    file,
    clip_norm,
    checkpoint,
    checkpoint_every,
    keep,
    resume,
) -> dict:
    """Check fit's arguments other than the data; returns the normalised ones by name.

    Raises TypeError for a wrong type and ValueError for a wrong value, each naming
    ``fit``, the argument, what it must be and what was given.
    """
    if verbose not in (0, 1, 2) or not isinstance(verbose, (numbers.Integral, np.bool_)):
        raise ValueError(
            f"fit: verbose must be 0 (silent), 1 (a progress bar and a line per epoch) or 2 (a line "
            f"per epoch), got {verbose!r}"
        )
    if (
        not isinstance(validation_split, numbers.Real)
        or _is_bool(validation_split)
        or not 0.0 <= validation_split < 1.0
    ):
        raise ValueError(
            "fit: validation_split must be a number in [0, 1) (the fraction held out), "
            f"got {validation_split!r}"
        )
    if seed is not None and not (isinstance(seed, numbers.Integral) and not _is_bool(seed) and seed >= 0):
        raise ValueError(f"fit: seed must be None or a non-negative integer, got {seed!r}")
    if augment is not None and not callable(augment):
        raise TypeError(
            f"fit: augment must be a function augment(x_batch, rng) -> x_batch (e.g. "
            f"fnn.augment.RandomShift(2)), got {type(augment).__name__}"
        )
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(
            "fit: file must be a text stream with write() (sys.stdout, an open file), "
            f"got {type(file).__name__}"
        )
    if monitor is not None and patience is None:
        raise ValueError(
            f"fit: monitor={monitor!r} is read only by early stopping; pass patience=N as well "
            "(or a callback such as ReduceLROnPlateau(monitor=...)), or drop monitor"
        )
    if patience is None and not (isinstance(min_delta, numbers.Real) and min_delta == 0):
        raise ValueError(
            f"fit: min_delta={min_delta!r} is read only by early stopping; "
            "pass patience=N as well, or drop it"
        )
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"fit: checkpoint must be a folder path (str or Path), got {type(checkpoint).__name__}"
        )
    if clip_norm is not None and not (
        isinstance(clip_norm, numbers.Real)
        and not _is_bool(clip_norm)
        and np.isfinite(clip_norm)
        and clip_norm > 0
    ):
        raise ValueError(f"fit: clip_norm must be a positive finite number, got {clip_norm!r}")
    check_optimizer(optimizer)
    checked = {
        "epochs": check_count("fit", "epochs", epochs, 0),
        "batch_size": check_batch_size("fit", batch_size),
        "keep": check_count("fit", "keep", keep, 1),
        "checkpoint_every": None
        if checkpoint_every is None
        else check_count("fit", "checkpoint_every", checkpoint_every, 1),
        "shuffle": _check_flag("shuffle", shuffle),
        "restore_best_weights": _check_flag("restore_best_weights", restore_best_weights),
        "include_penalty": _check_flag("include_penalty", include_penalty),
        "resume": _check_flag("resume", resume),
        "verbose": int(verbose),
        "callbacks": _check_callbacks(callbacks),
    }
    if checkpoint is None and (checked["resume"] or checked["checkpoint_every"] is not None):
        raise ValueError("fit: resume and checkpoint_every need checkpoint=DIR, the checkpoint folder")
    return checked
