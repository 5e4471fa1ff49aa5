"""The model file: a model's architecture and weights in one .npz, written atomically, never pickled.

The file holds ``__fastnn__`` (format version), ``config`` (the architecture as
JSON text, stored as uint8 bytes), ``params`` (the flat parameter buffer) and
``buffers/<layer index>/<name>`` for each layer's non-trainable arrays.
Loading reads with ``allow_pickle=False``: no code from a file is ever run.
A file may also hold ``digest``, a SHA-256 over every other entry (checkpoints
write one, see :mod:`fastnn.checkpoint`); when present, loading verifies it, so a
changed byte anywhere in the stored values is an error, not a silently different model.

This module sits below :mod:`fastnn.model`: it knows a model only through
``get_config()``, ``flat_params``, ``layers`` and ``layer_name()``. ``load_model``
rebuilds the model class named in the config from :data:`MODEL_CLASSES`, which
``fastnn.model`` fills (as the layer classes fill :data:`fastnn.layers.LAYERS`).
"""

from __future__ import annotations

import numpy as np

from ._files import FORMAT_VERSION, atomic_write, json_bytes, parse_json, read_npz
from .errors import ModelFileError

__all__ = [
    "FORMAT_VERSION",
    "MODEL_CLASSES",
    "ModelFileError",
    "atomic_write",
    "load_model",
    "model_arrays",
    "model_from_config",
    "register_model_class",
    "save_model",
    "set_model_arrays",
]

#: Model classes by name, for :func:`model_from_config`; ``config["class"]`` picks one
#: (files without that key hold a Sequential).
MODEL_CLASSES: dict[str, type] = {}


def register_model_class(cls: type) -> type:
    """Let :func:`load_model` rebuild ``cls`` (a class decorator; ``cls.from_config(config)``)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_arrays(model) -> dict:
    """The entries of a model file: marker, ``config`` (JSON bytes), ``params`` and ``buffers/i/name``."""
    arrays = {
        "__fastnn__": np.array([FORMAT_VERSION], dtype=np.int64),
        "config": json_bytes(model.get_config()),
        "params": model.flat_params,
    }
    for index, layer in enumerate(model.layers):
        for name, array in layer.buffers.items():
            arrays[f"buffers/{index}/{name}"] = array
    return arrays


def save_model(model, path) -> None:
    """Write ``model``'s architecture and weights to ``path`` (.npz), atomically."""
    arrays = model_arrays(model)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def model_from_config(config: dict, path="<config>"):
    """A freshly built model from its ``get_config()`` output.

    Raises:
        ModelFileError: naming ``path`` when the config does not describe a valid model.
    """
    try:
        cls = MODEL_CLASSES[config.get("class", "Sequential")]
        return cls.from_config(config)
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as error:
        # RecursionError: blocks nested deeper than Python's stack (a hostile file)
        raise ModelFileError(f"{path}: invalid architecture ({type(error).__name__}: {error})") from None


def load_model(path, backend: str | None = None):
    """Rebuild the model saved at ``path``; ``backend`` overrides the saved one.

    Also reads the model out of a checkpoint file (:mod:`fastnn.checkpoint`).

    Raises:
        ModelFileError: naming ``path`` when the file is not an intact fastnn file.
    """
    arrays = read_npz(path)
    config = parse_json(path, arrays, "config")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: invalid architecture (config is not a JSON object)")
    if backend is not None:
        config = {**config, "backend": backend}
    model = model_from_config(config, path)
    set_model_arrays(model, arrays, path)
    return model


def set_model_arrays(model, arrays: dict, path="<arrays>") -> None:
    """Copy ``params`` and every layer buffer from a model file's ``arrays`` into ``model``.

    Everything is checked before anything is copied, so a bad file leaves ``model`` untouched.
    """
    params = arrays.get("params")
    if params is None or params.shape != model.flat_params.shape:
        raise ModelFileError(
            f"{path}: parameter buffer has shape {None if params is None else params.shape}, "
            f"the architecture needs {model.flat_params.shape}"
        )
    if params.dtype.kind != "f" or not np.isfinite(params).all():
        raise ModelFileError(f"{path}: parameters are corrupt (non-float or non-finite values)")
    buffers = []
    for index, layer in enumerate(model.layers):
        for name, current in layer.buffers.items():
            saved = arrays.get(f"buffers/{index}/{name}")
            if saved is None or saved.shape != current.shape or saved.dtype.kind != current.dtype.kind:
                raise ModelFileError(
                    f"{path}: missing or malformed buffer '{name}' of {model.layer_name(index)}"
                )
            buffers.append((current, saved))
    model.flat_params[...] = params
    for current, saved in buffers:
        current[...] = saved
