"""Saving and loading models as a single .npz file, written atomically, never pickled.

The file holds ``__fastnn__`` (format version), ``config`` (the architecture as
JSON text, stored as uint8 bytes), ``params`` (the flat parameter buffer) and
``buffers/<layer index>/<name>`` for each layer's non-trainable arrays.
Loading reads with ``allow_pickle=False``: no code from a file is ever run.
A file may also hold ``digest``, a SHA-256 over every other entry (checkpoints
write one, see :mod:`fastnn.checkpoint`); when present, loading verifies it, so a
changed byte anywhere in the stored values is an error, not a silently different model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A file is not a fastnn model, is corrupt or truncated, or is from a newer version."""


def atomic_write(path, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then rename it into place.

    Either the old file stays untouched or the new one is complete.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def json_bytes(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


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


def content_digest(arrays: dict) -> np.ndarray:
    """SHA-256 (32 uint8) over every entry but ``digest``: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "digest":
            continue
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode("utf-8"))
        h.update(array.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def read_npz(path, what: str = "fastnn model") -> dict:
    """All arrays of a fastnn .npz, checked for the marker, the format version and the digest.

    Raises :class:`ModelFileError` naming ``path`` for anything that is not an intact
    fastnn file (FileNotFoundError and IsADirectoryError pass through unchanged).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise ModelFileError(f"{path}: not a readable {what} file ({error})") from None
    except Exception as error:  # a damaged .npy header can raise almost anything
        raise ModelFileError(f"{path}: not a readable {what} file "
                             f"({type(error).__name__}: {error})") from None
    if not isinstance(arrays, dict) or "__fastnn__" not in arrays:
        raise ModelFileError(f"{path}: not a {what} file (no '__fastnn__' marker)")
    version = arrays["__fastnn__"]
    if version.shape != (1,) or version.dtype.kind not in "iu":
        raise ModelFileError(f"{path}: corrupt format marker")
    if int(version[0]) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer fastnn (format {int(version[0])}); this version reads "
            f"format {FORMAT_VERSION} and older. Upgrade fastnn to load it.")
    if "digest" in arrays:
        digest = arrays["digest"]
        if (digest.dtype != np.uint8 or digest.shape != (32,)
                or not np.array_equal(digest, content_digest(arrays))):
            raise ModelFileError(f"{path}: corrupt {what} file (its contents do not match "
                                 "their SHA-256 digest)")
    return arrays


def parse_json(path, arrays: dict, key: str):
    try:
        raw = arrays[key]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("not a byte array")
        return json.loads(raw.tobytes().decode("utf-8"))
    except (KeyError, ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: corrupt or missing '{key}' entry ({error})") from None


def model_from_config(config: dict, path="<config>"):
    """A freshly built Sequential from ``Sequential.get_config()`` output."""
    from .layers import LAYERS
    from .losses import LOSSES
    from .model import Sequential

    try:
        layers = []
        for spec in config["layers"]:
            cls = LAYERS[spec["class"]]
            layers.append(cls(**spec["config"]))
        loss = LOSSES[config["loss"]["class"]](**config["loss"]["config"])
        return Sequential(layers, loss=loss, backend=config.get("backend", "numba"),
                          dtype=config.get("dtype", "float32"), seed=config.get("seed"))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, MemoryError) as error:
        raise ModelFileError(f"{path}: invalid architecture ({type(error).__name__}: {error})") from None


def load_model(path, backend: str | None = None):
    """Rebuild the model saved at ``path``; ``backend`` overrides the saved one.

    Also reads the model out of a checkpoint file (:mod:`fastnn.checkpoint`).
    Raises :class:`ModelFileError` naming ``path`` when the file is not an intact fastnn file.
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
            f"the architecture needs {model.flat_params.shape}")
    if params.dtype.kind != "f" or not np.isfinite(params).all():
        raise ModelFileError(f"{path}: parameters are corrupt (non-float or non-finite values)")
    buffers = []
    for index, layer in enumerate(model.layers):
        for name, current in layer.buffers.items():
            saved = arrays.get(f"buffers/{index}/{name}")
            if saved is None or saved.shape != current.shape or saved.dtype.kind != current.dtype.kind:
                raise ModelFileError(f"{path}: missing or malformed buffer '{name}' of "
                                     f"{model.layer_name(index)}")
            buffers.append((current, saved))
    model.flat_params[...] = params
    for current, saved in buffers:
        current[...] = saved
