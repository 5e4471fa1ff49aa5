"""Datasets: MNIST and Fashion-MNIST (IDX files, found locally or downloaded), and digits.

``load_mnist(kind)`` returns ``(x_train, t_train), (x_test, t_test)`` with images as
C-contiguous float32 arrays in [0, 1] shaped ``(N, 1, 28, 28)`` and labels as int64
arrays shaped ``(N,)``: 60,000 training and 10,000 test examples.

Where the four gzip IDX files are looked for, in order:

1. the ``path`` argument (it must exist: a ``path`` that does not is an immediate
   :class:`DatasetNotFoundError`, as a typo should be, not a download),
2. each directory in the ``FASTNN_DATA`` environment variable (``os.pathsep``-separated,
   a search path like ``PATH``: entries that do not exist are passed over),
3. the cache, ``<cache>/<kind>/``, where ``<cache>`` is ``$FASTNN_CACHE_DIR``, else
   ``$XDG_CACHE_HOME/fastnn``, else ``~/.cache/fastnn``.

In a directory ``D`` from 1 or 2 the files may lie in ``D/<kind>/`` or directly in
``D/``, so both ``path="data"`` and ``path="data/mnist"`` work. If no directory holds
all four files they are downloaded from the mirrors in :data:`MIRRORS` into the
cache (never into ``path``), verified against the official md5 sums in :data:`MD5`,
and moved into place atomically: an interrupted or corrupt download never leaves a
file under its final name, and a download that fails leaves no partial file and no
empty folder behind.

Every file read is checked (gzip integrity, IDX magic number, counts, payload length,
label range); a bad file raises :class:`CorruptDatasetError` (a ``ValueError``)
whose message names the file and what is wrong.

``load_digits()`` returns scikit-learn's 8x8 digits (1,797 images, shipped with
scikit-learn, so offline) as ``(N, 1, 8, 8)`` float32 in [0, 1] with a deterministic
stratified train/test split.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ._progress import ProgressBar

__all__ = [
    "load_mnist",
    "load_digits",
    "read_idx_images",
    "read_idx_labels",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "KINDS",
    "FILES",
    "MD5",
    "MIRRORS",
    "cache_dir",
]

KINDS = ("mnist", "fashion-mnist")

#: split -> (images file, labels file, expected number of examples)
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
_FILENAMES = tuple(name for images, labels, _ in FILES.values() for name in (images, labels))

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension

#: Official md5 sums of the published files.
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: Download mirrors, tried in order; each is a base URL the file name is appended to.
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ],
}

_TIMEOUT = 60  # seconds, per network operation
_CHUNK = 1 << 16


class CorruptDatasetError(ValueError):
    """A dataset file exists but is not a valid (or not the expected) IDX file."""


class DatasetNotFoundError(OSError):
    """The dataset is not on disk and could not be downloaded.

    ``searched`` lists ``(directory, why it was not used)``; ``attempts`` lists
    ``(url, reason)`` for each failed download.
    """

    def __init__(self, message: str, searched=(), attempts=()):
        super().__init__(message)
        self.searched = list(searched)
        self.attempts = list(attempts)

    def __str__(self) -> str:
        return self.args[0]


class _ChecksumError(ValueError):
    """A downloaded file does not have the expected md5."""


# --------------------------------------------------------------------------
# IDX reading
# --------------------------------------------------------------------------


def _corrupt(filename, what: str) -> CorruptDatasetError:
    return CorruptDatasetError(f"{filename}: {what}")


def _read_gzip(filename) -> bytes:
    """Whole decompressed content of a gzip file; any gzip damage -> CorruptDatasetError."""
    with open(filename, "rb") as raw:  # a missing/unreadable file raises its own OSError
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return f.read()
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise _corrupt(filename, f"not a valid gzip file ({type(exc).__name__}: {exc})") from exc


def _parse_idx(filename, data: bytes, magic: int, ndim: int, what: str) -> np.ndarray:
    """Check an IDX header and payload; return the uint8 payload as a read-only array."""
    header_len = 4 * (1 + ndim)
    if len(data) < header_len:
        raise _corrupt(
            filename, f"truncated IDX header: {len(data)} bytes, expected at least {header_len} ({what})"
        )
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if int(header[0]) != magic:
        raise _corrupt(filename, f"magic number {int(header[0])}, expected {magic} ({what})")
    shape = tuple(int(d) for d in header[1:])
    expected = int(np.prod(shape, dtype=object))
    payload = len(data) - header_len
    if payload != expected:
        problem = "short payload" if payload < expected else "trailing bytes"
        dims = " x ".join(str(d) for d in shape)
        raise _corrupt(filename, f"{problem}: {payload} data bytes, header says {dims} = {expected} ({what})")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def _read_images(filename) -> np.ndarray:
    return _parse_idx(filename, _read_gzip(filename), IDX_IMAGES_MAGIC, 3, "IDX images")


def _read_labels(filename) -> np.ndarray:
    return _parse_idx(filename, _read_gzip(filename), IDX_LABELS_MAGIC, 1, "IDX labels")


def read_idx_images(filename) -> np.ndarray:
    """Read a gzip-compressed IDX image file.

    Returns a writable uint8 array shaped ``(N, rows, cols)``. Raises
    :class:`CorruptDatasetError` (a ``ValueError``) naming the file if it is not valid
    gzip, its magic number is not 2051, or its payload length differs from
    ``N * rows * cols``.
    """
    return _read_images(filename).copy()


def read_idx_labels(filename) -> np.ndarray:
    """Read a gzip-compressed IDX label file.

    Returns a writable uint8 array shaped ``(N,)``. Raises :class:`CorruptDatasetError`
    (a ``ValueError``) naming the file if it is not valid gzip, its magic number is
    not 2049, or its payload length differs from ``N``.
    """
    return _read_labels(filename).copy()


def _load_split(directory: Path, split: str):
    """Read and check one split: ``(x (N,1,28,28) float32 in [0,1], t (N,) int64)``."""
    images_name, labels_name, count = FILES[split]
    images_file, labels_file = directory / images_name, directory / labels_name
    images = _read_images(images_file)
    labels = _read_labels(labels_file)
    if images.shape[0] != count:
        raise _corrupt(images_file, f"{images.shape[0]} images, expected {count} ({split} split)")
    if images.shape[1:] != IMAGE_SHAPE:
        raise _corrupt(
            images_file,
            f"images are {images.shape[1]}x{images.shape[2]}, expected {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}",
        )
    if labels.shape[0] != images.shape[0]:
        raise _corrupt(
            labels_file, f"{labels.shape[0]} labels but {images_file.name} has {images.shape[0]} images"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise _corrupt(
            labels_file, f"label {int(labels[bad])} at index {bad} is outside 0..{NUM_CLASSES - 1}"
        )
    x = np.divide(images, np.float32(255), dtype=np.float32).reshape(-1, 1, *IMAGE_SHAPE)
    return x, labels.astype(np.int64)


# --------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------


def cache_dir() -> Path:
    """Root of the download cache.

    ``$FASTNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastnn``, else ``~/.cache/fastnn``.
    """
    env = os.environ.get("FASTNN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "fastnn"
    return Path.home() / ".cache" / "fastnn"


def _candidates(kind: str, path) -> list[Path]:
    """Directories to look in, in search order."""
    roots = []
    if path is not None:
        roots.append(Path(path).expanduser())
    env = os.environ.get("FASTNN_DATA", "")
    roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    dirs = []
    for root in roots:
        dirs += [root / kind, root]
    dirs.append(cache_dir() / kind)
    return dirs


def _md5(filename) -> str:
    digest = hashlib.md5()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _other_kind(directory: Path, kind: str) -> str | None:
    """The other official dataset whose label file lies in ``directory``, if any.

    Guards ``load_mnist("fashion-mnist", path="data/mnist")`` against silently
    returning MNIST. Only the small label file is hashed.
    """
    name = FILES["train"][1]
    digest = _md5(directory / name)
    for other, sums in MD5.items():
        if other != kind and sums.get(name) == digest:
            return other
    return None


def _find(kind: str, path):
    """First directory holding all four files, and ``(directory, reason)`` for those passed over."""
    searched = []
    for directory in _candidates(kind, path):
        missing = [name for name in _FILENAMES if not (directory / name).is_file()]
        if missing:
            reason = "does not exist" if not directory.is_dir() else "missing " + ", ".join(missing)
            searched.append((directory, reason))
            continue
        other = _other_kind(directory, kind)
        if other is not None:
            searched.append((directory, f"holds the {other} files, not {kind}"))
            continue
        return directory, searched
    return None, searched


# --------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------


def _log(message: str, verbose: bool) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


def _fetch(url: str, dest: Path, expected_md5: str, verbose: bool) -> None:
    """Download ``url`` to ``dest`` through a temp file in the same directory.

    The md5 is checked and the data fsync'ed before ``os.replace`` moves it into
    place; on any failure the temp file is removed and nothing exists under ``dest``.
    """
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_to(url, out, dest.name, verbose)
            if actual != expected_md5:
                raise _ChecksumError(f"{dest.name}: md5 mismatch: expected {expected_md5}, got {actual}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(dest.parent)


def _stream_to(url: str, out, name: str, verbose: bool) -> str:
    """Copy the body at ``url`` into ``out`` with a byte progress bar; return its md5."""
    request = urllib.request.Request(url, headers={"User-Agent": "fastnn"})
    digest = hashlib.md5()
    received = 0
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with ProgressBar(total, desc=name, unit="B", disable=not verbose) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise OSError(f"incomplete download: got {received} of {total} bytes")
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort; not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _download_file(kind: str, name: str, target: Path, verbose: bool, attempts: list) -> bool:
    """Try each mirror for one file; record failures in ``attempts``; True on success."""
    for base in MIRRORS[kind]:
        url = base if base.endswith("/") else base + "/"
        url += name
        _log(f"Downloading {url}", verbose)
        try:
            _fetch(url, target / name, MD5[kind][name], verbose)
            return True
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
            reason = str(exc) or type(exc).__name__
            attempts.append((url, reason))
            _log(f"  failed: {reason}", verbose)
    return False


def _download(kind: str, verbose: bool) -> tuple[Path, list]:
    """Download the missing files into ``<cache>/<kind>/``; return it and the failed attempts.

    The folders it creates are removed again if they are still empty at the end, so a
    failed download leaves nothing behind.
    """
    target = cache_dir() / kind
    attempts: list = []
    created = [d for d in (target, *target.parents) if not d.exists()]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        attempts.append((str(target), f"cannot create cache directory: {exc}"))
        return target, attempts
    try:
        for name in _FILENAMES:
            if not (target / name).is_file():
                _download_file(kind, name, target, verbose, attempts)
    finally:
        _remove_if_empty(created)
    return target, attempts


def _remove_if_empty(directories) -> None:
    """Remove each of ``directories`` (deepest first) that holds nothing."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:  # not empty, or already gone
            return


def _check_path(kind: str, path) -> None:
    """Refuse a ``path`` the user named that is not a folder: a typo must not start a download."""
    if path is None:
        return
    where = Path(path).expanduser()
    if not where.exists():
        raise DatasetNotFoundError(
            f"load_mnist: path {str(path)!r} does not exist. Pass the folder D that holds the four "
            f".gz files of {kind} (in D or D/{kind}/), or leave path unset to use $FASTNN_DATA "
            "and the download cache",
            searched=[(where, "does not exist")],
        )
    if not where.is_dir():
        raise DatasetNotFoundError(
            f"load_mnist: path {str(path)!r} is a file; pass the folder that holds the four "
            f".gz files of {kind}",
            searched=[(where, "is a file")],
        )


def _not_found(kind: str, searched, attempts, download: bool) -> DatasetNotFoundError:
    lines = [f"{kind} dataset not found locally. Searched:"]
    lines += [f"  {d}: {why}" for d, why in searched]
    if download:
        lines.append("Downloading it failed:")
        lines += [f"  {url}: {why}" for url, why in attempts]
    else:
        lines.append("Downloading is disabled (download=False).")
    lines += [
        "To fix it, put the four files "
        f"({', '.join(_FILENAMES)}) in a directory D or D/{kind}/ and either pass "
        "path=D to load_mnist, set the FASTNN_DATA environment variable to D, or use "
        "--data-dir D on the command line; or retry the download with network access.",
    ]
    return DatasetNotFoundError("\n".join(lines), searched, attempts)


# --------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------


def load_mnist(kind: str = "mnist", path=None, download: bool = True, verbose: bool = True):
    """Load MNIST or Fashion-MNIST.

    Args:
        kind: "mnist" or "fashion-mnist".
        path: a directory ``D`` (str or Path, optional) holding the four ``.gz`` files,
            in ``D/<kind>/`` or ``D/``; searched before ``$FASTNN_DATA`` and the cache.
            It must exist: a path that does not is an error at once (no download).
        download: download into the cache (never into ``path``) when no directory has
            the files.
        verbose: show download messages and a progress bar on stderr.

    Returns:
        ``(x_train, t_train), (x_test, t_test)``. ``x``: C-contiguous float32 in [0, 1],
        shape ``(N, 1, 28, 28)``; ``t``: int64 class indices in 0..9, shape ``(N,)``.
        N is 60000 and 10000.

    Raises:
        ValueError: unknown ``kind``.
        CorruptDatasetError: a file is damaged or not the expected IDX file (the message
            names the file).
        DatasetNotFoundError: ``path`` does not exist or is a file, or the files are
            nowhere on disk and could not be downloaded.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    _check_path(kind, path)
    directory, searched = _find(kind, path)
    if directory is None:
        if not download:
            raise _not_found(kind, searched, [], download=False)
        directory, attempts = _download(kind, verbose)
        if not all((directory / name).is_file() for name in _FILENAMES):
            raise _not_found(kind, searched, attempts, download=True)
    return _load_split(directory, "train"), _load_split(directory, "test")


def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8x8 handwritten digits with a stratified train/test split.

    Each class is shuffled with ``numpy.random.default_rng(seed)`` and
    ``round(test_fraction * class size)`` of its examples go to the test set;
    both sets are then shuffled. The same seed gives the same split.

    Returns:
        ``(x_train, t_train), (x_test, t_test)``. ``x``: float32 in [0, 1] (pixel / 16),
        shape ``(N, 1, 8, 8)``; ``t``: int64 in 0..9, shape ``(N,)``; 1797 examples in all.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn: pip install 'fastnn[data]'") from exc
    bunch = sklearn_digits()
    x = np.divide(bunch.images, np.float32(16), dtype=np.float32).reshape(-1, 1, 8, 8)
    t = np.asarray(bunch.target, dtype=np.int64)
    train, test = _stratified_split(t, test_fraction, np.random.default_rng(seed))
    return (x[train], t[train]), (x[test], t[test])


def _stratified_split(t: np.ndarray, test_fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test) with each class split in the same proportion."""
    train, test = [], []
    for label in np.unique(t):
        idx = rng.permutation(np.flatnonzero(t == label))
        n_test = int(round(test_fraction * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
