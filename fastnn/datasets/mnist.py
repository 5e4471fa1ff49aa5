"""MNIST and Fashion-MNIST: the four gzip IDX files, found locally or downloaded.

``load_mnist(kind)`` returns ``(x_train, t_train), (x_test, t_test)`` with images as
C-contiguous float32 arrays in [0, 1] shaped ``(N, 1, 28, 28)`` and labels as int64
arrays shaped ``(N,)``: 60,000 training and 10,000 test examples.

Where the four files are looked for, in order: the ``path`` argument (it must exist),
each directory in ``$FASTNN_DATA``, then the cache ``<cache>/<kind>/`` (see
:mod:`fastnn.datasets._download`). In a directory ``D`` from the first two the files
may lie in ``D/<kind>/`` or directly in ``D/``. If no directory holds all four they are
downloaded from the mirrors in :data:`MIRRORS` into the cache (never into ``path``) and
checked against the official md5 sums in :data:`MD5`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _download
from ._errors import corrupt
from .idx import idx_images_view, idx_labels_view

KINDS = ("mnist", "fashion-mnist")

#: split -> (images file, labels file, expected number of examples)
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
_FILENAMES = tuple(name for images, labels, _ in FILES.values() for name in (images, labels))

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

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


def _load_split(directory: Path, split: str):
    """Read and check one split: ``(x (N,1,28,28) float32 in [0,1], t (N,) int64)``."""
    images_name, labels_name, count = FILES[split]
    images_file, labels_file = directory / images_name, directory / labels_name
    images = idx_images_view(images_file)
    labels = idx_labels_view(labels_file)
    if images.shape[0] != count:
        raise corrupt(images_file, f"{images.shape[0]} images, expected {count} ({split} split)")
    if images.shape[1:] != IMAGE_SHAPE:
        raise corrupt(
            images_file,
            f"images are {images.shape[1]}x{images.shape[2]}, expected {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}",
        )
    if labels.shape[0] != images.shape[0]:
        raise corrupt(
            labels_file, f"{labels.shape[0]} labels but {images_file.name} has {images.shape[0]} images"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise corrupt(labels_file, f"label {int(labels[bad])} at index {bad} is outside 0..{NUM_CLASSES - 1}")
    x = np.divide(images, np.float32(255), dtype=np.float32).reshape(-1, 1, *IMAGE_SHAPE)
    return x, labels.astype(np.int64)


def _candidates(kind: str, path) -> list[Path]:
    """Directories to look in, in search order."""
    dirs = []
    for root in _download.search_roots(path):
        dirs += [root / kind, root]
    dirs.append(_download.cache_dir() / kind)
    return dirs


def _other_kind(directory: Path, kind: str) -> str | None:
    """The other official dataset whose label file lies in ``directory``, if any.

    Guards ``load_mnist("fashion-mnist", path="data/mnist")`` against silently
    returning MNIST. Only the small label file is hashed.
    """
    name = FILES["train"][1]
    digest = _download.md5_of(directory / name)
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


def _download_files(kind: str, verbose: bool) -> tuple[Path, list]:
    """Download the missing files into ``<cache>/<kind>/``; return it and the failed attempts."""
    target = _download.cache_dir() / kind
    bases = [base if base.endswith("/") else base + "/" for base in MIRRORS[kind]]
    files = {name: ([base + name for base in bases], MD5[kind][name]) for name in _FILENAMES}
    return target, _download.download_into(target, files, verbose)


def _not_found(kind: str, searched, attempts, download: bool):
    fix = (
        "To fix it, put the four files "
        f"({', '.join(_FILENAMES)}) in a directory D or D/{kind}/ and either pass "
        "path=D to load_mnist, set the FASTNN_DATA environment variable to D, or use "
        "--data-dir D on the command line; or retry the download with network access."
    )
    return _download.not_found_error(kind, searched, attempts, download, fix)


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
    holding = f"the folder D that holds the four .gz files of {kind} (in D or D/{kind}/)"
    _download.check_path(path, "load_mnist", holding)
    directory, searched = _find(kind, path)
    if directory is None:
        if not download:
            raise _not_found(kind, searched, [], download=False)
        directory, attempts = _download_files(kind, verbose)
        if not all((directory / name).is_file() for name in _FILENAMES):
            raise _not_found(kind, searched, attempts, download=True)
    return _load_split(directory, "train"), _load_split(directory, "test")
