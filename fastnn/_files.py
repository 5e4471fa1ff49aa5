"""File helpers under every saved file: atomic writes and fastnn's checked .npz container.

A fastnn file (a model or a checkpoint) is a NumPy ``.npz`` archive of plain arrays:
``__fastnn__`` (the format version), JSON entries stored as uint8 bytes, and, in
checkpoints, ``digest``, a SHA-256 over every other entry. Reading never unpickles
(``allow_pickle=False``), so no code from a file ever runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError

#: Version of the ``__fastnn__`` marker; files with a larger number are refused.
FORMAT_VERSION = 1


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
    """``obj`` as JSON text in a uint8 array (how JSON entries are stored)."""
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def parse_json(path, arrays: dict, key: str):
    """The JSON value stored as bytes in ``arrays[key]``; ModelFileError naming ``path`` if it is bad."""
    try:
        raw = arrays[key]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("not a byte array")
        return json.loads(raw.tobytes().decode("utf-8"))
    except (KeyError, ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: corrupt or missing '{key}' entry ({error})") from None


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

    Raises:
        ModelFileError: naming ``path``, for anything that is not an intact fastnn file.
        FileNotFoundError, IsADirectoryError, PermissionError: unchanged.
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
        raise ModelFileError(
            f"{path}: not a readable {what} file ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(arrays, dict) or "__fastnn__" not in arrays:
        raise ModelFileError(f"{path}: not a {what} file (no '__fastnn__' marker)")
    version = arrays["__fastnn__"]
    if version.shape != (1,) or version.dtype.kind not in "iu":
        raise ModelFileError(f"{path}: corrupt format marker")
    if int(version[0]) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer fastnn (format {int(version[0])}); this version reads "
            f"format {FORMAT_VERSION} and older. Upgrade fastnn to load it."
        )
    if "digest" in arrays:
        digest = arrays["digest"]
        if (
            digest.dtype != np.uint8
            or digest.shape != (32,)
            or not np.array_equal(digest, content_digest(arrays))
        ):
            raise ModelFileError(
                f"{path}: corrupt {what} file (its contents do not match their SHA-256 digest)"
            )
    return arrays
