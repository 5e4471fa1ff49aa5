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
from pathlib import Path

import numpy as np

from .errors import ModelFileError

#: Version of the ``__fastnn__`` marker; files with a larger number are refused.
FORMAT_VERSION = 1


def atomic_write(path, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then rename it into place.

    Either the old file stays untouched or the new one is complete. The new file gets the
    permissions ``open`` would give it (0o666 less the umask; mkstemp's are 0o600). The folder must
    exist (as with ``open`` and ``torch.save``, none is created): a missing folder, a
    folder that is a file, or ``path`` being a folder raise an OSError naming ``path``,
    never the hidden temp file.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    _check_writable(path, directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise type(error)(
            f"cannot write {path}: cannot create a file in the folder {directory} ({error.strerror})"
        ) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())
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


def _umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_writable(path: Path, directory: Path) -> None:
    """Raise an OSError naming ``path`` when its folder is missing or ``path`` is a folder."""
    if not directory.exists():
        raise FileNotFoundError(
            f"cannot write {path}: the folder {directory} does not exist; create it first "
            f"(mkdir -p {directory}) or choose another path",
        )
    if not directory.is_dir():
        raise NotADirectoryError(
            f"cannot write {path}: {directory} is a file, not a folder; choose another path"
        )
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name inside it")


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


#: The first bytes of a zip archive (an .npz is one): a local file header, or an empty archive.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def not_a_fastnn_file(path, what: str, why: str) -> ModelFileError:
    """The error for a file that is not a fastnn .npz: names ``path``, says ``why`` and what would be."""
    return ModelFileError(
        f"{path}: not a {what} file: {why}. A {what} file is the .npz archive written by "
        f"{_WRITERS.get(what, 'fastnn')}; check the path"
    )


_WRITERS = {
    "fastnn model": "model.save(path) (or a checkpoint of fit(checkpoint=DIR))",
    "fastnn checkpoint": "fit(checkpoint=DIR) or fastnn train --checkpoint DIR",
}


def _sniff(path: Path, what: str) -> None:
    """Refuse, by its first bytes, a file that is not a zip archive (empty, .npy, text, ...)."""
    with open(path, "rb") as handle:  # FileNotFoundError, IsADirectoryError, PermissionError pass through
        head = handle.read(8)
    if not head:
        raise not_a_fastnn_file(path, what, "it is empty (0 bytes)")
    if head.startswith(_NPY_MAGIC):
        raise not_a_fastnn_file(path, what, "it is a single NumPy array (.npy), not an .npz archive")
    if not head.startswith(_ZIP_MAGICS):
        raise not_a_fastnn_file(path, what, f"it is not an .npz (zip) archive (it starts with {head[:4]!r})")


def read_npz(path, what: str = "fastnn model") -> dict:
    """All arrays of a fastnn .npz, checked for the marker, the format version and the digest.

    Never unpickles, and never passes on numpy's advice to allow it.

    Raises:
        ModelFileError: naming ``path``, for anything that is not an intact fastnn file.
        FileNotFoundError, IsADirectoryError, PermissionError: unchanged.
    """
    path = Path(path)
    _sniff(path, what)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:  # a damaged archive or .npy header can raise almost anything
        if "pickle" in str(error):
            why = "it holds a pickled (object) array, which fastnn never loads"
        else:
            why = f"a damaged or truncated .npz archive ({type(error).__name__}: {error})"
        raise not_a_fastnn_file(path, what, why) from None
    if not isinstance(arrays, dict) or "__fastnn__" not in arrays:
        raise not_a_fastnn_file(path, what, "an .npz archive without the '__fastnn__' marker")
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
