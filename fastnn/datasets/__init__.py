"""Datasets: MNIST, Fashion-MNIST and CIFAR-10 (found locally or downloaded), and digits.

=====================  ===================================================================
loader                 returns ``(x_train, t_train), (x_test, t_test)``
=====================  ===================================================================
``load_mnist(kind)``   MNIST or Fashion-MNIST: float32 (N, 1, 28, 28) in [0, 1], int64
                       labels; 60,000 / 10,000 (:mod:`~fastnn.datasets.mnist`)
``load_cifar10()``     CIFAR-10's binary version: float32 (N, 3, 32, 32) in [0, 1], int64
                       labels; 50,000 / 10,000 (:mod:`~fastnn.datasets.cifar10`)
``load_digits()``      scikit-learn's 8x8 digits: float32 (N, 1, 8, 8), a seeded
                       stratified split of 1,797 images (:mod:`~fastnn.datasets.digits`)
=====================  ===================================================================

The files of MNIST and CIFAR-10 are looked for in the ``path`` argument (which must
exist: a typo is an immediate :class:`DatasetNotFoundError`, not a download), then in
each directory of the ``FASTNN_DATA`` environment variable (``os.pathsep``-separated;
entries that do not exist are passed over), then in the cache, ``<cache>/<name>/``,
where ``<cache>`` is ``$FASTNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastnn``, else
``~/.cache/fastnn`` (:func:`cache_dir`). If none holds them they are downloaded into the
cache (never into ``path``), md5-checked, and moved into place atomically: an
interrupted or corrupt download never leaves a file under its final name, and a failed
one leaves no partial file and no empty folder behind (:mod:`~fastnn.datasets._download`).

Every file read is checked; a bad one raises :class:`CorruptDatasetError` (a
``ValueError``) whose message names the file and what is wrong. Nothing is ever
unpickled.
"""

from __future__ import annotations

from ._download import cache_dir
from ._errors import CorruptDatasetError, DatasetNotFoundError
from .cifar10 import load_cifar10
from .digits import load_digits
from .idx import read_idx_images, read_idx_labels
from .mnist import FILES, KINDS, MD5, MIRRORS, load_mnist

__all__ = [
    "load_mnist",
    "load_cifar10",
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
