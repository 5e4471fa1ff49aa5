"""Tests for fastnn.datasets (IDX reading, search order, download) and fastnn._progress."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn import datasets
from fastnn._progress import ProgressBar, format_bytes, format_time
from fastnn.datasets import (
    CorruptDatasetError,
    DatasetNotFoundError,
    load_digits,
    load_mnist,
    read_idx_images,
    read_idx_labels,
)

NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
N_TRAIN, N_TEST = 12, 5  # sizes of the synthetic datasets


# --------------------------------------------------------------------------
# helpers: write valid (or deliberately broken) gzip IDX files
# --------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """Raw IDX content: big-endian magic, dims, then uint8 data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_gz(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


def write_images(path: Path, images: np.ndarray) -> Path:
    return write_gz(path, idx_bytes(images, 2051))


def write_labels(path: Path, labels: np.ndarray) -> Path:
    return write_gz(path, idx_bytes(labels, 2049))


def synthetic_images(n: int, value: int, seed: int = 0) -> np.ndarray:
    """Mostly-zero 28x28 images with a few random strokes; pixel (0, 0) holds ``value``."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    mask = rng.random(images.shape) < 0.2
    images[mask] = rng.integers(1, 256, mask.sum())
    images[:, 0, 0] = value
    return images


def make_dataset(directory: Path, value: int, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Path:
    """Four valid files in ``directory``; every image has pixel (0, 0) == ``value``."""
    write_images(directory / NAMES[0], synthetic_images(n_train, value, seed=value))
    write_labels(directory / NAMES[1], np.arange(n_train) % 10)
    write_images(directory / NAMES[2], synthetic_images(n_test, value, seed=value + 1))
    write_labels(directory / NAMES[3], np.arange(n_test) % 10)
    return directory


def marker(result) -> int:
    """The ``value`` a dataset built by make_dataset was made with."""
    (x_train, _), (x_test, _) = result
    assert np.all(x_train[:, 0, 0, 0] == x_test[0, 0, 0, 0])
    return int(round(float(x_train[0, 0, 0, 0]) * 255))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def file_url(directory: Path) -> str:
    return directory.resolve().as_uri() + "/"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No FASTNN_DATA, an empty cache in tmp, mirrors that fail, tiny expected counts."""
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [file_url(tmp_path / "no-mirror")])
    monkeypatch.setitem(datasets.MIRRORS, "fashion-mnist", [file_url(tmp_path / "no-mirror")])
    return tmp_path


@pytest.fixture
def small(isolated, monkeypatch):
    """`isolated`, and load_mnist expects the synthetic sizes N_TRAIN / N_TEST."""
    monkeypatch.setitem(datasets.FILES, "train", (NAMES[0], NAMES[1], N_TRAIN))
    monkeypatch.setitem(datasets.FILES, "test", (NAMES[2], NAMES[3], N_TEST))
    return isolated


# --------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist(shared_data):
    return load_mnist("mnist", path=shared_data, download=False, verbose=False)


@pytest.fixture(scope="module")
def fashion(shared_data):
    return load_mnist("fashion-mnist", path=shared_data, download=False, verbose=False)


def check_arrays(result):
    (x_train, t_train), (x_test, t_test) = result
    for x, t, n in ((x_train, t_train, 60000), (x_test, t_test, 10000)):
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert x.flags.c_contiguous
        assert t.shape == (n,) and t.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert t.min() == 0 and t.max() == 9


def test_mnist_real(mnist):
    check_arrays(mnist)
    (x_train, t_train), (x_test, t_test) = mnist
    assert x_train.mean() == pytest.approx(0.1307, abs=5e-4)
    assert x_train.std() == pytest.approx(0.3081, abs=5e-4)
    train_counts = np.bincount(t_train, minlength=10)
    assert train_counts.sum() == 60000
    assert np.all((train_counts >= 5000) & (train_counts <= 7000)), train_counts
    assert train_counts[1] == 6742 and train_counts[5] == 5421  # published class sizes
    test_counts = np.bincount(t_test, minlength=10)
    assert np.all((test_counts >= 800) & (test_counts <= 1200)), test_counts
    assert list(t_train[:5]) == [5, 0, 4, 1, 9] and list(t_test[:3]) == [7, 2, 1]


def test_mnist_pixels_match_raw_file(mnist, mnist_dir):
    (_, _), (x_test, t_test) = mnist
    raw = read_idx_images(mnist_dir / NAMES[2])
    assert raw.dtype == np.uint8 and raw.shape == (10000, 28, 28)
    np.testing.assert_array_equal(x_test[:, 0], raw.astype(np.float32) / np.float32(255))
    labels = read_idx_labels(mnist_dir / NAMES[3])
    assert labels.dtype == np.uint8 and labels.shape == (10000,)
    np.testing.assert_array_equal(labels, t_test)
    raw[0, 0, 0] = 7  # public readers return writable arrays


def test_fashion_mnist_real(fashion, mnist):
    check_arrays(fashion)
    (x_train, t_train), (_, t_test) = fashion
    assert x_train.mean() == pytest.approx(0.2860, abs=5e-4)
    np.testing.assert_array_equal(np.bincount(t_train, minlength=10), 6000)
    np.testing.assert_array_equal(np.bincount(t_test, minlength=10), 1000)
    assert not np.array_equal(t_train, mnist[0][1])


def test_md5_table_matches_shared_files(shared_data):
    for kind in datasets.KINDS:
        for name in NAMES:
            assert md5(shared_data / kind / name) == datasets.MD5[kind][name], (kind, name)


def test_both_layouts_found_for_real_data(shared_data, mnist_dir, isolated):
    assert datasets.mnist._find("mnist", shared_data)[0] == mnist_dir
    assert datasets.mnist._find("mnist", mnist_dir)[0] == mnist_dir


def test_wrong_kind_in_flat_layout_is_not_used(mnist_dir, isolated):
    """path=data/mnist must not be returned as Fashion-MNIST."""
    with pytest.raises(DatasetNotFoundError, match="holds the mnist files, not fashion-mnist"):
        load_mnist("fashion-mnist", path=mnist_dir, download=False)


def test_unknown_kind():
    with pytest.raises(ValueError, match="mnist.*fashion-mnist"):
        load_mnist("cifar10")


# --------------------------------------------------------------------------
# search order and layouts (synthetic data)
# --------------------------------------------------------------------------


def test_search_order_path_env_cache(small, monkeypatch):
    tmp = small
    make_dataset(tmp / "given", 11)
    make_dataset(tmp / "env" / "mnist", 22)
    make_dataset(tmp / "cache" / "mnist", 33)
    monkeypatch.setenv("FASTNN_DATA", str(tmp / "env"))
    assert marker(load_mnist(path=tmp / "given", verbose=False)) == 11
    assert marker(load_mnist(path=str(tmp / "given"), verbose=False)) == 11
    # path without the files falls through to FASTNN_DATA, then to the cache
    (tmp / "empty").mkdir()
    assert marker(load_mnist(path=tmp / "empty", verbose=False)) == 22
    assert marker(load_mnist(verbose=False)) == 22
    monkeypatch.delenv("FASTNN_DATA")
    assert marker(load_mnist(path=tmp / "empty", verbose=False)) == 33
    assert marker(load_mnist(verbose=False)) == 33


def test_layouts_kind_subdir_and_flat(small):
    tmp = small
    make_dataset(tmp / "a" / "fashion-mnist", 40)
    make_dataset(tmp / "b", 50)
    assert marker(load_mnist("fashion-mnist", path=tmp / "a", verbose=False)) == 40
    assert marker(load_mnist("fashion-mnist", path=tmp / "b", verbose=False)) == 50
    make_dataset(tmp / "b" / "fashion-mnist", 60)  # D/<kind>/ wins over D/
    assert marker(load_mnist("fashion-mnist", path=tmp / "b", verbose=False)) == 60
    assert marker(load_mnist("fashion-mnist", path=tmp / "b" / "fashion-mnist", verbose=False)) == 60


def test_fastnn_data_may_list_several_dirs(small, monkeypatch):
    tmp = small
    make_dataset(tmp / "second", 70)
    monkeypatch.setenv("FASTNN_DATA", os.pathsep.join([str(tmp / "first"), str(tmp / "second")]))
    assert marker(load_mnist(verbose=False)) == 70


def test_incomplete_directory_is_skipped(small, monkeypatch):
    tmp = small
    make_dataset(tmp / "partial", 1)
    (tmp / "partial" / NAMES[3]).unlink()
    make_dataset(tmp / "env", 2)
    monkeypatch.setenv("FASTNN_DATA", str(tmp / "env"))
    assert marker(load_mnist(path=tmp / "partial", verbose=False)) == 2


def test_download_false_reports_every_directory(small, monkeypatch):
    tmp = small
    (tmp / "given").mkdir()
    make_dataset(tmp / "given", 1)
    (tmp / "given" / NAMES[0]).unlink()
    monkeypatch.setenv("FASTNN_DATA", str(tmp / "env"))

    def no_network(*args, **kwargs):
        raise AssertionError("download attempted with download=False")

    monkeypatch.setattr(datasets._download, "fetch", no_network)
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(path=tmp / "given", download=False)
    message = str(info.value)
    for directory in (tmp / "given", tmp / "given" / "mnist", tmp / "env", tmp / "cache" / "mnist"):
        assert str(directory) in message
    assert "missing train-images-idx3-ubyte.gz" in message
    assert "download=False" in message and "FASTNN_DATA" in message


# --------------------------------------------------------------------------
# corrupt files
# --------------------------------------------------------------------------


def assert_names(exc_info, path: Path):
    assert str(path) in str(exc_info.value), str(exc_info.value)


def test_wrong_magic(tmp_path):
    images = write_gz(tmp_path / NAMES[0], idx_bytes(np.zeros((2, 28, 28)), 2049))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051") as info:
        read_idx_images(images)
    assert_names(info, images)
    labels = write_gz(tmp_path / NAMES[1], idx_bytes(np.zeros(2), 2051))
    with pytest.raises(CorruptDatasetError, match="magic number 2051, expected 2049") as info:
        read_idx_labels(labels)
    assert_names(info, labels)


@pytest.mark.parametrize("extra, problem", [(-1, "short payload"), (1, "trailing bytes")])
def test_payload_length(tmp_path, extra, problem):
    raw = idx_bytes(np.zeros((3, 28, 28)), 2051)
    raw = raw[:extra] if extra < 0 else raw + b"\0" * extra
    path = write_gz(tmp_path / NAMES[0], raw)
    with pytest.raises(CorruptDatasetError, match=problem) as info:
        read_idx_images(path)
    assert_names(info, path)
    labels = write_gz(
        tmp_path / NAMES[1],
        idx_bytes(np.zeros(3), 2049)[:extra] if extra < 0 else idx_bytes(np.zeros(3), 2049) + b"\1",
    )
    with pytest.raises(CorruptDatasetError, match=problem):
        read_idx_labels(labels)


def test_truncated_header(tmp_path):
    path = write_gz(tmp_path / NAMES[0], idx_bytes(np.zeros((1, 28, 28)), 2051)[:10])
    with pytest.raises(CorruptDatasetError, match="truncated IDX header") as info:
        read_idx_images(path)
    assert_names(info, path)


def test_not_gzip_and_empty(tmp_path):
    raw = tmp_path / NAMES[1]
    raw.write_bytes(idx_bytes(np.zeros(3), 2049))  # uncompressed
    with pytest.raises(CorruptDatasetError, match="gzip") as info:
        read_idx_labels(raw)
    assert_names(info, raw)
    raw.write_bytes(b"")
    with pytest.raises(CorruptDatasetError):
        read_idx_labels(raw)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx_images(tmp_path / "nope.gz")


def test_truncated_gzip_every_length(tmp_path):
    good = write_images(tmp_path / "good.gz", synthetic_images(3, 1))
    data = good.read_bytes()
    bad = tmp_path / NAMES[0]
    for cut in range(len(data)):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError) as info:
            read_idx_images(bad)
        assert_names(info, bad)


@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_flipped_bytes_give_clean_errors(tmp_path, xor):
    """Corrupting any single byte either leaves the data intact (gzip header fields
    like mtime are not checked) or raises a ValueError naming the file."""
    for name, write, read, array in (
        (NAMES[0], write_images, read_idx_images, synthetic_images(4, 9)),
        (NAMES[1], write_labels, read_idx_labels, np.arange(40) % 10),
    ):
        good = write(tmp_path / ("good-" + name), array)
        data = bytearray(good.read_bytes())
        bad = tmp_path / name
        errors = 0
        for position in range(len(data)):
            flipped = data.copy()
            flipped[position] ^= xor
            bad.write_bytes(flipped)
            try:
                result = read(bad)
            except ValueError as exc:
                assert str(bad) in str(exc)
                errors += 1
            else:
                np.testing.assert_array_equal(result, array)
        # harmless: gzip header mtime/xfl/os/FTEXT, deflate bits that code nothing used
        assert errors >= 0.9 * len(data) - 10


def test_flipped_byte_through_load_mnist(small):
    directory = make_dataset(small / "d", 5)
    target = directory / NAMES[2]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(data)
    with pytest.raises(CorruptDatasetError) as info:
        load_mnist(path=directory)
    assert_names(info, target)


def test_wrong_count(small):
    directory = make_dataset(small / "d", 5, n_train=N_TRAIN + 1)
    with pytest.raises(CorruptDatasetError, match=f"{N_TRAIN + 1} images, expected {N_TRAIN}") as info:
        load_mnist(path=directory)
    assert_names(info, directory / NAMES[0])


def test_real_counts_expected_by_default(isolated):
    directory = make_dataset(isolated / "d", 5)  # 12 images where 60000 are expected
    with pytest.raises(ValueError, match="expected 60000") as info:
        load_mnist(path=directory)
    assert_names(info, directory / NAMES[0])


def test_image_and_label_counts_disagree(small):
    directory = make_dataset(small / "d", 5)
    write_labels(directory / NAMES[3], np.zeros(N_TEST + 2))
    with pytest.raises(CorruptDatasetError, match="labels but") as info:
        load_mnist(path=directory)
    assert_names(info, directory / NAMES[3])


def test_labels_out_of_range(small):
    directory = make_dataset(small / "d", 5)
    labels = np.arange(N_TRAIN) % 10
    labels[7] = 12
    write_labels(directory / NAMES[1], labels)
    with pytest.raises(CorruptDatasetError, match="label 12 at index 7") as info:
        load_mnist(path=directory)
    assert_names(info, directory / NAMES[1])


def test_wrong_image_size(small):
    directory = make_dataset(small / "d", 5)
    write_images(directory / NAMES[0], np.zeros((N_TRAIN, 8, 8)))
    with pytest.raises(CorruptDatasetError, match="8x8, expected 28x28") as info:
        load_mnist(path=directory)
    assert_names(info, directory / NAMES[0])


def test_synthetic_values_are_scaled_exactly(small):
    directory = make_dataset(small / "d", 5)
    (x_train, t_train), (x_test, t_test) = load_mnist(path=directory)
    raw = read_idx_images(directory / NAMES[0])
    assert x_train.shape == (N_TRAIN, 1, 28, 28) and x_test.shape == (N_TEST, 1, 28, 28)
    np.testing.assert_array_equal(x_train[:, 0], raw / np.float32(255))
    np.testing.assert_array_equal(t_train, np.arange(N_TRAIN) % 10)
    assert t_test.dtype == np.int64


# --------------------------------------------------------------------------
# downloading (file:// mirrors, offline)
# --------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in NAMES)


def test_download_real_mnist_from_file_mirror(mnist_dir, mnist, isolated, monkeypatch):
    tmp = isolated
    given = tmp / "given"
    given.mkdir()
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [file_url(tmp / "missing-mirror"), file_url(mnist_dir)])
    result = load_mnist(path=given, verbose=False)
    target = tmp / "cache" / "mnist"
    for name in NAMES:
        assert md5(target / name) == datasets.MD5["mnist"][name]
    assert leftovers(target) == []
    assert list(given.iterdir()) == []  # never downloads into the user's path
    for (x, t), (x_ref, t_ref) in zip(result, mnist):
        np.testing.assert_array_equal(t, t_ref)
        np.testing.assert_array_equal(x, x_ref)
    # the cache is used next time, without any mirror
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [])
    assert datasets.mnist._find("mnist", None)[0] == target


def test_download_only_missing_files_with_progress(small, monkeypatch, capsys):
    tmp = small
    mirror = make_dataset(tmp / "mirror", 77)
    monkeypatch.setitem(datasets.MD5, "mnist", {name: md5(mirror / name) for name in NAMES})
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [file_url(mirror)])
    target = tmp / "cache" / "mnist"
    make_dataset(target, 77)
    (target / NAMES[2]).unlink()
    before = (target / NAMES[0]).stat().st_mtime_ns
    assert marker(load_mnist(verbose=True)) == 77
    err = capsys.readouterr().err
    assert NAMES[2] in err and NAMES[0] not in err
    assert "B/s" in err and "100%" in err
    assert (target / NAMES[0]).stat().st_mtime_ns == before
    assert leftovers(target) == []
    load_mnist(verbose=False)
    assert capsys.readouterr().err == ""


def test_md5_mismatch_leaves_nothing(small, monkeypatch):
    tmp = small
    mirror = make_dataset(tmp / "mirror", 3)
    sums = {name: md5(mirror / name) for name in NAMES}
    wrong = "0" * 32
    sums[NAMES[0]] = wrong
    monkeypatch.setitem(datasets.MD5, "mnist", sums)
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [file_url(mirror)])
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(verbose=False)
    message = str(info.value)
    assert NAMES[0] in message and wrong in message and md5(mirror / NAMES[0]) in message
    target = tmp / "cache" / "mnist"
    assert not (target / NAMES[0]).exists()
    assert leftovers(target) == []
    assert (target / NAMES[1]).exists()  # the good files are kept


def test_md5_mismatch_tries_next_mirror(small, monkeypatch):
    tmp = small
    impostor = make_dataset(tmp / "impostor", 4)
    good = make_dataset(tmp / "good", 8)
    monkeypatch.setitem(datasets.MD5, "mnist", {name: md5(good / name) for name in NAMES})
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [file_url(impostor), file_url(good)])
    assert marker(load_mnist(verbose=False)) == 8


def test_all_mirrors_fail(small, monkeypatch):
    tmp = small
    urls = [file_url(tmp / "down-1"), file_url(tmp / "down-2")]
    monkeypatch.setitem(datasets.MIRRORS, "fashion-mnist", urls)
    (tmp / "given").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("fashion-mnist", path=tmp / "given", verbose=False)
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert "not found locally" in message
    assert str(tmp / "given") in message and str(tmp / "cache" / "fashion-mnist") in message
    for url in urls:
        for name in NAMES:
            assert url + name in message
    assert "FASTNN_DATA" in message and "path=" in message and "--data-dir" in message
    assert len(info.value.attempts) == 2 * len(NAMES)
    assert not (tmp / "cache").exists()  # a failed download leaves no empty folder
    assert list((tmp / "given").iterdir()) == []  # and never downloads into path


class FailingResponse(io.BytesIO):
    """A response that delivers some bytes, then raises ``error``."""

    def __init__(self, data: bytes, error: BaseException):
        super().__init__(data)
        self.headers = {"Content-Length": str(10 * len(data))}
        self.error = error
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls > 1:
            raise self.error
        return super().read(size)


@pytest.mark.parametrize(
    "error, expected",
    [
        (ConnectionResetError("connection reset"), DatasetNotFoundError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_interrupted_download_leaves_nothing(small, monkeypatch, error, expected):
    monkeypatch.setattr(
        datasets._download.urllib.request, "urlopen", lambda *a, **k: FailingResponse(b"x" * 1000, error)
    )
    target = small / "cache" / "mnist"
    with pytest.raises(expected) as info:
        load_mnist(verbose=False)
    if expected is DatasetNotFoundError:
        assert "connection reset" in str(info.value)
    assert not target.exists() and not target.parent.exists()


def test_short_download_is_rejected(small, monkeypatch):
    class Short(io.BytesIO):
        headers = {"Content-Length": "5000"}

    monkeypatch.setattr(datasets._download.urllib.request, "urlopen", lambda *a, **k: Short(b"x" * 100))
    with pytest.raises(DatasetNotFoundError, match="incomplete download: got 100 of 5000"):
        load_mnist(verbose=False)
    assert not (small / "cache").exists()


def no_network(*args, **kwargs):
    raise AssertionError("a download was attempted")


def test_a_path_that_does_not_exist_is_an_error_at_once(small, monkeypatch):
    monkeypatch.setattr(datasets._download.urllib.request, "urlopen", no_network)
    missing = small / "typo"
    with pytest.raises(
        DatasetNotFoundError,
        match=rf"^load_mnist: path '{re.escape(str(missing))}' does not exist\. Pass the",
    ) as info:
        load_mnist("fashion-mnist", path=missing, verbose=False)
    assert "fashion-mnist" in str(info.value) and "$FASTNN_DATA" in str(info.value)
    assert info.value.searched == [(missing, "does not exist")]
    assert not (small / "cache").exists() and not missing.exists()


def test_a_path_that_is_a_file_is_an_error_at_once(small, monkeypatch):
    monkeypatch.setattr(datasets._download.urllib.request, "urlopen", no_network)
    plain = small / "train-images-idx3-ubyte.gz"
    plain.write_bytes(b"")
    with pytest.raises(
        DatasetNotFoundError, match=r"path '.*train-images-idx3-ubyte\.gz' is a file; pass the"
    ):
        load_mnist(path=plain, verbose=False)


def test_missing_fastnn_data_entries_are_passed_over(small, monkeypatch):
    make_dataset(small / "cache" / "mnist", 9)
    monkeypatch.setenv("FASTNN_DATA", str(small / "gone"))
    monkeypatch.setattr(datasets._download.urllib.request, "urlopen", no_network)
    assert marker(load_mnist(verbose=False)) == 9


def test_a_failed_download_leaves_no_folder_behind(small, monkeypatch):
    import urllib.error

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    deep = small / "deep" / "er"
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(deep / "cache"))
    monkeypatch.setattr(datasets._download.urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetNotFoundError, match="no network in tests") as info:
        load_mnist(verbose=False)
    assert len(info.value.attempts) == len(NAMES) * len(datasets.MIRRORS["mnist"])
    assert not (small / "deep").exists()


def test_a_failed_download_keeps_a_cache_folder_that_was_there(small, monkeypatch):
    import urllib.error

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline")

    (small / "cache" / "mnist").mkdir(parents=True)
    monkeypatch.setattr(datasets._download.urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetNotFoundError):
        load_mnist(verbose=False)
    assert list((small / "cache" / "mnist").iterdir()) == []


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path / "c"))
    assert datasets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FASTNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert datasets.cache_dir() == tmp_path / "x" / "fastnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets.cache_dir() == Path.home() / ".cache" / "fastnn"


# --------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------


def test_load_digits_shapes_and_ranges():
    (x_train, t_train), (x_test, t_test) = load_digits()
    assert x_train.shape[1:] == (1, 8, 8) and x_test.shape[1:] == (1, 8, 8)
    assert len(x_train) + len(x_test) == 1797
    assert x_train.dtype == np.float32 and t_train.dtype == np.int64 and t_test.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(np.unique(t_test)) == set(range(10))


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_load_digits_stratified_and_a_partition(fraction):
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    (x_train, t_train), (x_test, t_test) = load_digits(test_fraction=fraction)
    full = np.bincount(bunch.target)
    np.testing.assert_array_equal(np.bincount(t_test, minlength=10), np.round(fraction * full))
    np.testing.assert_array_equal(np.bincount(t_train) + np.bincount(t_test), full)
    # train + test is exactly the original data set, each (image, label) once
    ours = np.concatenate([x_train.reshape(-1, 64) * 16, x_test.reshape(-1, 64) * 16], axis=0)
    ours = np.column_stack([ours, np.concatenate([t_train, t_test])])
    ref = np.column_stack([bunch.data, bunch.target])
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], ref[np.lexsort(ref.T)])
    # shuffled: not one class after another
    assert not np.all(np.diff(t_train) >= 0)


def test_load_digits_deterministic_by_seed():
    a = load_digits(seed=3)
    b = load_digits(seed=3)
    c = load_digits(seed=4)
    for (xa, ta), (xb, tb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ta, tb)
    assert not np.array_equal(a[1][1], c[1][1])


def test_load_digits_bad_fraction():
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            load_digits(test_fraction=fraction)


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"fastnn\[data\]"):
        load_digits()


# --------------------------------------------------------------------------
# progress bar
# --------------------------------------------------------------------------


def test_progress_disabled_writes_nothing():
    out = io.StringIO()
    with ProgressBar(10, desc="x", file=out, disable=True) as bar:
        for _ in range(10):
            bar.update()
        bar.set_postfix(loss=1.0)
    bar.close()
    assert out.getvalue() == ""


def test_progress_final_line():
    out = io.StringIO()
    with ProgressBar(10, desc="epoch 1", file=out, width=10) as bar:
        for _ in range(10):
            bar.update()
        bar.set_postfix(loss=0.123456, acc=0.5, step=3)
    bar.close()  # a second close writes nothing more
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("epoch 1: 100%")
    assert "[==========]" in final and "10/10" in final and "it/s" in final
    assert final.endswith("loss=0.1235, acc=0.5, step=3")


def test_progress_partial_bar_and_unknown_total():
    out = io.StringIO()
    bar = ProgressBar(4, file=out, width=8)
    bar.update(2)
    assert "50%" in bar.format_line() and "[====>   ]" in bar.format_line()
    assert "2/4" in bar.format_line()
    bar.close()
    out = io.StringIO()
    with ProgressBar(None, desc="read", unit="batch", file=out) as bar:
        bar.update(7)
    final = out.getvalue().split("\r")[-1]
    assert final.startswith("read: 7 [") and "batch/s" in final and "%" not in final


def test_progress_is_throttled():
    out = io.StringIO()
    with ProgressBar(20000, file=out) as bar:
        for _ in range(20000):
            bar.update()
    draws = out.getvalue().count("\r")
    assert 2 <= draws <= 12, draws  # initial + final, and at most ~10 per second between
    assert "20000/20000" in out.getvalue().split("\r")[-1]


def test_progress_bytes_and_formatters():
    assert format_bytes(9961472) == "9.5 MiB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KiB"
    assert format_time(65) == "01:05" and format_time(3725) == "1:02:05"
    out = io.StringIO()
    with ProgressBar(3 * 1024 * 1024, desc="f.gz", unit="B", file=out) as bar:
        bar.update(3 * 1024 * 1024)
    final = out.getvalue().split("\r")[-1]
    assert "3.0 MiB/3.0 MiB" in final and "B/s" in final
