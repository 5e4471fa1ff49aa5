"""CIFAR-10 from its official binary version, found locally or downloaded.

``load_cifar10()`` returns ``(x_train, t_train), (x_test, t_test)``: C-contiguous float32
images in [0, 1] shaped ``(N, 3, 32, 32)`` (channels R, G, B) and int64 labels in 0..9
(:data:`CLASSES`), 50,000 and 10,000 of them.

It reads only ``cifar-10-binary.tar.gz`` (:data:`ARCHIVE`) or the folder
``cifar-10-batches-bin/`` (:data:`FOLDER`) extracted from it, never the Python version,
whose files are pickles. Where it looks, in order:

1. ``path``, which must exist: the tarball itself, the folder ``cifar-10-batches-bin/``,
   or a folder ``D`` holding either (also in ``D/cifar10/``);
2. each entry of ``$FASTNN_DATA``, taken the same way;
3. the cache, ``<cache>/cifar10/``.

Otherwise it downloads the tarball into the cache (never into ``path``), checks its md5
and moves it into place atomically. The tarball is kept as it is and read straight
out of with :mod:`tarfile` on every load (about a second to decompress): nothing is
extracted, so no member of it can write anywhere. Formats and checks:
:mod:`fastnn.datasets.cifar10_format`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _download
from .cifar10_format import IMAGE_SHAPE, PYTHON_FOLDER, parse_batch, read_folder, read_tarball

ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
#: Where the tarball is downloaded from, tried in order.
URLS = ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
BATCH_FILES = (*TRAIN_FILES, TEST_FILE)
#: Records in each batch file (tests that build small archives lower it).
RECORDS_PER_FILE = 10000
CACHE_NAME = "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _missing(folder: Path) -> list[str]:
    return [name for name in BATCH_FILES if not (folder / name).is_file()]


def _look_in(directory: Path) -> tuple[Path | None, str]:
    """The batch folder or the tarball in ``directory``, or None and why not."""
    if not directory.is_dir():
        return None, "does not exist"
    folders = (directory, directory / FOLDER)
    for folder in folders:
        if not _missing(folder):
            return folder, ""
    if (directory / ARCHIVE).is_file():
        return directory / ARCHIVE, ""
    for folder in folders:
        missing = _missing(folder)
        if len(missing) < len(BATCH_FILES):
            where = "" if folder == directory else f"{FOLDER}/ "
            return None, f"{where}missing {', '.join(missing)}"
    if (directory / PYTHON_FOLDER).exists() or (directory / "cifar-10-python.tar.gz").exists():
        return None, "holds only the Python version of CIFAR-10 (pickles), which fastnn never reads"
    return None, f"no {ARCHIVE} and no {FOLDER}/"


def _find(path) -> tuple[Path | None, list]:
    """The first batch folder or tarball, and ``(place, why it was passed over)`` for the others."""
    places = []
    for root in _download.search_roots(path):
        places += [root] if root.is_file() else [root, root / CACHE_NAME]
    places.append(_download.cache_dir() / CACHE_NAME)
    searched = []
    for place in places:
        found, reason = (place, "") if place.is_file() else _look_in(place)
        if found is not None:
            return found, searched
        searched.append((place, reason))
    return None, searched


def _not_found(searched, attempts, download: bool):
    fix = (
        f"To fix it, put {ARCHIVE} (the binary version, from {URLS[0]}) or the folder {FOLDER}/ "
        "extracted from it in a directory D and either pass path=D to load_cifar10, set the "
        "FASTNN_DATA environment variable to D, or use --data-dir D on the command line; or "
        "retry the download with network access."
    )
    return _download.not_found_error(CACHE_NAME, searched, attempts, download, fix)


def _read(source: Path) -> dict[str, tuple[str, bytes]]:
    """Every batch file's ``(origin, bytes)`` from a folder or a tarball."""
    if source.is_dir():
        return read_folder(source, BATCH_FILES, RECORDS_PER_FILE)
    return read_tarball(source, FOLDER, BATCH_FILES, RECORDS_PER_FILE)


def _split(batches: dict, names) -> tuple[np.ndarray, np.ndarray]:
    """The batch files ``names`` in order as ``(x (N, 3, 32, 32) float32 = bytes / 255, t (N,) int64)``."""
    parts = [parse_batch(*batches[name]) for name in names]
    x = np.empty((sum(len(t) for _, t in parts), *IMAGE_SHAPE), dtype=np.float32)
    t = np.empty(len(x), dtype=np.int64)
    start = 0
    for images, labels in parts:
        stop = start + len(labels)
        np.divide(images, np.float32(255), out=x[start:stop], dtype=np.float32)
        t[start:stop] = labels
        start = stop
    return x, t


def load_cifar10(path=None, download: bool = True, verbose: bool = True):
    """Load CIFAR-10 from its binary version (``cifar-10-binary.tar.gz``).

    Args:
        path: the tarball, the folder ``cifar-10-batches-bin/``, or a folder ``D``
            holding either (in ``D/`` or ``D/cifar10/``); str or Path, optional;
            searched before ``$FASTNN_DATA`` and the cache. It must exist: a path that
            does not is an error at once (no download).
        download: download the tarball into the cache (never into ``path``) when it is
            found nowhere.
        verbose: show download messages and a progress bar on stderr.

    Returns:
        ``(x_train, t_train), (x_test, t_test)``. ``x``: C-contiguous float32 in [0, 1]
        (byte / 255), shape ``(N, 3, 32, 32)``, channels R, G, B; ``t``: int64 class
        indices in 0..9 (:data:`CLASSES`), shape ``(N,)``. N is 50000 (data_batch_1.bin
        to data_batch_5.bin, in order) and 10000 (test_batch.bin).

    Raises:
        CorruptDatasetError: a batch file or the tarball is damaged, truncated, of the
            wrong size, holds a label above 9, or lacks a batch file (the message names
            the file).
        DatasetNotFoundError: ``path`` does not exist, or the data is nowhere on disk
            and could not be downloaded.
    """
    holding = f"{ARCHIVE}, the folder {FOLDER}/ extracted from it, or the folder that holds either"
    _download.check_path(path, "load_cifar10", holding, file_ok=True)
    source, searched = _find(path)
    if source is None:
        if not download:
            raise _not_found(searched, [], download=False)
        target = _download.cache_dir() / CACHE_NAME
        attempts = _download.download_into(target, {ARCHIVE: (URLS, ARCHIVE_MD5)}, verbose)
        source = target / ARCHIVE
        if not source.is_file():
            raise _not_found(searched, attempts, download=True)
    batches = _read(source)
    return _split(batches, TRAIN_FILES), _split(batches, (TEST_FILE,))
