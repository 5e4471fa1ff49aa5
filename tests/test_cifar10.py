"""Tests for fnn.datasets.load_cifar10 on archives built here in the official binary format.

This machine has no copy of CIFAR-10, so every test writes its own: the six batch files
of ``cifar-10-batches-bin/`` with RECORDS records each (the loader is told to expect that
many instead of 10,000), loose or in a real ``cifar-10-binary.tar.gz``. Each record is
written from the format's description (a label byte, then the red, green and blue
32x32 planes, row by row), not by the reader's reshape.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn import datasets
from fastnn.cli import main
from fastnn.datasets import CorruptDatasetError, DatasetNotFoundError, load_cifar10

RECORDS = 20  # per batch file
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
NAMES = [*TRAIN_FILES, "test_batch.bin"]
FOLDER = "cifar-10-batches-bin"
ARCHIVE = "cifar-10-binary.tar.gz"


# --------------------------------------------------------------------------
# helpers: the official format, written by hand
# --------------------------------------------------------------------------


def record(label: int, red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> bytes:
    """One 3,073-byte record: the label byte, then each 32x32 plane row by row."""
    planes = b"".join(bytes(int(v) for row in plane for v in row) for plane in (red, green, blue))
    return bytes([label]) + planes


@functools.lru_cache(maxsize=None)
def batch(seed: int, n: int = RECORDS) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A batch file's bytes, its images (n, 3, 32, 32) uint8 and its labels (n,)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = (np.arange(n) + seed) % 10
    data = b"".join(record(int(labels[k]), *images[k]) for k in range(n))
    return data, images, labels


def write_folder(folder: Path, seed: int = 0) -> dict[str, bytes]:
    """The six batch files in ``folder``; returns name -> bytes. Seeds: seed + file index."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: batch(seed + i)[0] for i, name in enumerate(NAMES)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def expected(seed: int = 0):
    """What load_cifar10 must return for the data written with ``seed``."""
    parts = [batch(seed + i) for i in range(len(NAMES))]
    x = [images.astype(np.float32) / np.float32(255) for _, images, _ in parts]
    t = [labels.astype(np.int64) for _, _, labels in parts]
    return (np.concatenate(x[:5]), np.concatenate(t[:5])), (x[5], t[5])


def add_member(archive: tarfile.TarFile, name: str, data: bytes = b"", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


def write_tarball(path: Path, files: dict[str, bytes], prefix: str = FOLDER + "/", extra=()) -> Path:
    """A real .tar.gz with the members ``prefix + name``, then ``extra`` (name, bytes, fields)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        add_member(archive, FOLDER, type=tarfile.DIRTYPE, mode=0o755)
        for name, data in files.items():
            add_member(archive, prefix + name, data)
        for name, data, fields in extra:
            add_member(archive, name, data, **fields)
    return path


def official_tarball(path: Path, seed: int = 0) -> Path:
    files = {name: batch(seed + i)[0] for i, name in enumerate(NAMES)}
    return write_tarball(path, files)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_loaded(result, seed: int = 0) -> None:
    """``result`` is exactly the data written with ``seed``, in the promised dtypes and layout."""
    (x, t), (x_test, t_test) = result
    (ex, et), (ex_test, et_test) = expected(seed)
    for got, want in ((x, ex), (x_test, ex_test)):
        assert got.dtype == np.float32 and got.flags.c_contiguous
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    for got, want in ((t, et), (t_test, et_test)):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No FASTNN_DATA, an empty cache in tmp, a download URL that fails, RECORDS per file."""
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.cifar10, "URLS", [(tmp_path / "no-mirror" / ARCHIVE).as_uri()])
    monkeypatch.setattr(datasets.cifar10, "RECORDS_PER_FILE", RECORDS)
    return tmp_path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One extracted folder and one tarball of the seed-0 data, shared by the read-only tests."""
    root = tmp_path_factory.mktemp("cifar")
    write_folder(root / "extracted" / FOLDER)
    official_tarball(root / "packed" / ARCHIVE)
    return root


# --------------------------------------------------------------------------
# the layout of a record
# --------------------------------------------------------------------------


def test_a_record_is_the_label_then_the_red_green_and_blue_planes(isolated):
    red = np.full((32, 32), 10)
    green = np.full((32, 32), 20)
    blue = np.full((32, 32), 30)
    green[1, 2] = 255  # row 1, column 2
    blue[31, 0] = 0
    special = record(7, red, green, blue)
    files = write_folder(isolated / FOLDER)
    files["test_batch.bin"] = special + files["test_batch.bin"][len(special) :]
    (isolated / FOLDER / "test_batch.bin").write_bytes(files["test_batch.bin"])
    _, (x_test, t_test) = load_cifar10(isolated / FOLDER, verbose=False)
    assert t_test[0] == 7
    image = x_test[0]
    assert image[1, 1, 2] == 1.0 and image[2, 31, 0] == 0.0
    image[1, 1, 2], image[2, 31, 0] = np.float32(20 / 255), np.float32(30 / 255)
    for channel, value in enumerate((10, 20, 30)):
        assert np.all(image[channel] == np.float32(value) / np.float32(255)), channel


def test_the_extracted_folder_loads_exactly(built, isolated):
    result = load_cifar10(built / "extracted" / FOLDER, verbose=False)
    assert_loaded(result)
    (x, _), (x_test, _) = result
    assert len(x) == 5 * RECORDS and len(x_test) == RECORDS
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


@pytest.mark.parametrize(
    "where",
    [
        "extracted",  # the folder holding cifar-10-batches-bin/
        "packed",  # the folder holding the tarball
        f"packed/{ARCHIVE}",  # the tarball itself
    ],
)
def test_path_may_be_the_tarball_the_batch_folder_or_a_folder_holding_either(built, isolated, where):
    assert_loaded(load_cifar10(built / where, verbose=False))


def test_a_cifar10_subfolder_is_searched_like_mnist_s(isolated):
    official_tarball(isolated / "data" / "cifar10" / ARCHIVE, seed=3)
    assert_loaded(load_cifar10(isolated / "data", verbose=False), seed=3)


def test_the_folder_is_preferred_to_the_tarball_beside_it(isolated):
    write_folder(isolated / "both" / FOLDER, seed=1)
    official_tarball(isolated / "both" / ARCHIVE, seed=2)
    assert_loaded(load_cifar10(isolated / "both", verbose=False), seed=1)


# --------------------------------------------------------------------------
# where it looks
# --------------------------------------------------------------------------


def test_fastnn_data_is_searched_after_path_and_missing_entries_are_passed_over(isolated, monkeypatch):
    official_tarball(isolated / "env" / ARCHIVE, seed=4)
    write_folder(isolated / "given" / FOLDER, seed=5)
    monkeypatch.setenv("FASTNN_DATA", f"{isolated / 'nowhere'}:{isolated / 'env'}")
    assert_loaded(load_cifar10(verbose=False), seed=4)
    assert_loaded(load_cifar10(isolated / "given", verbose=False), seed=5)


def test_a_tarball_named_in_fastnn_data_comes_after_path(isolated, monkeypatch):
    tarball = official_tarball(isolated / "env" / ARCHIVE, seed=8)
    write_folder(isolated / "given" / FOLDER, seed=9)
    monkeypatch.setenv("FASTNN_DATA", str(tarball))
    assert_loaded(load_cifar10(isolated / "given", verbose=False), seed=9)
    assert_loaded(load_cifar10(verbose=False), seed=8)


def test_the_cache_is_used_when_nothing_else_holds_it(isolated):
    official_tarball(isolated / "cache" / "cifar10" / ARCHIVE, seed=6)
    assert_loaded(load_cifar10(download=False, verbose=False), seed=6)


def test_download_false_lists_every_place_and_why(isolated, monkeypatch):
    (isolated / "given").mkdir()
    partial = isolated / "env" / FOLDER
    write_folder(partial)
    (partial / "data_batch_3.bin").unlink()
    (partial / "test_batch.bin").unlink()
    monkeypatch.setenv("FASTNN_DATA", str(isolated / "env"))

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted with download=False")

    monkeypatch.setattr(datasets._download, "fetch", no_network)
    with pytest.raises(DatasetNotFoundError, match="cifar10 dataset not found locally") as info:
        load_cifar10(isolated / "given", download=False)
    message = str(info.value)
    assert f"  {isolated / 'given'}: no {ARCHIVE} and no {FOLDER}/" in message
    assert f"  {isolated / 'env'}: {FOLDER}/ missing data_batch_3.bin, test_batch.bin" in message
    assert f"  {isolated / 'cache' / 'cifar10'}: does not exist" in message
    assert "download=False" in message and "FASTNN_DATA" in message and "--data-dir" in message


def test_the_python_version_is_named_and_refused(isolated):
    (isolated / "py" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="Python version of CIFAR-10 \\(pickles\\)"):
        load_cifar10(isolated / "py", download=False)
    python_tarball = write_tarball(
        isolated / "cifar-10-python.tar.gz", {"data_batch_1": b"not read"}, prefix="cifar-10-batches-py/"
    )
    with pytest.raises(CorruptDatasetError, match="it is the Python version") as info:
        load_cifar10(python_tarball)
    assert str(python_tarball) in str(info.value)


def test_a_path_that_does_not_exist_is_refused_before_any_download(isolated, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(datasets._download, "fetch", no_network)
    missing = isolated / "typo"
    with pytest.raises(
        DatasetNotFoundError, match=f"^load_cifar10: path '{re.escape(str(missing))}' does not exist\\. Pass"
    ):
        load_cifar10(missing)


# --------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------


def test_a_download_is_md5_checked_cached_and_then_read_from_the_cache(isolated, monkeypatch, capsys):
    mirror = official_tarball(isolated / "mirror" / ARCHIVE, seed=7)
    monkeypatch.setattr(datasets.cifar10, "URLS", [(isolated / "gone" / ARCHIVE).as_uri(), mirror.as_uri()])
    monkeypatch.setattr(datasets.cifar10, "ARCHIVE_MD5", md5(mirror))
    assert_loaded(load_cifar10(verbose=True), seed=7)
    cached = isolated / "cache" / "cifar10" / ARCHIVE
    assert md5(cached) == md5(mirror)
    assert sorted(p.name for p in cached.parent.iterdir()) == [ARCHIVE]  # no temp file left
    assert f"Downloading {mirror.as_uri()}" in capsys.readouterr().err
    mirror.unlink()  # the next load must not need the network
    assert_loaded(load_cifar10(verbose=False), seed=7)


def test_a_download_with_the_wrong_md5_leaves_nothing_behind(isolated, monkeypatch):
    mirror = official_tarball(isolated / "mirror" / ARCHIVE)
    monkeypatch.setattr(datasets.cifar10, "URLS", [mirror.as_uri()])
    monkeypatch.setattr(datasets.cifar10, "ARCHIVE_MD5", "0" * 32)
    with pytest.raises(DatasetNotFoundError, match="Downloading it failed") as info:
        load_cifar10(verbose=False)
    message = str(info.value)
    assert f"{mirror.as_uri()}: {ARCHIVE}: md5 mismatch: expected {'0' * 32}, got {md5(mirror)}" in message
    assert not (isolated / "cache").exists()


def test_the_official_md5_and_url_are_the_published_ones():
    assert datasets.cifar10.ARCHIVE_MD5 == "c32a1d4ab5d03f1284b67883e8d87530"
    assert datasets.cifar10.URLS[0] == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert datasets.cifar10.RECORDS_PER_FILE == 10000


# --------------------------------------------------------------------------
# damaged files
# --------------------------------------------------------------------------


def test_a_truncated_batch_file_is_named(isolated):
    write_folder(isolated / FOLDER)
    bad = isolated / FOLDER / "data_batch_2.bin"
    bad.write_bytes(bad.read_bytes()[:-100])
    size = RECORDS * 3073 - 100
    with pytest.raises(
        CorruptDatasetError, match=f"{size:,d} bytes is not a whole number of 3,073-byte"
    ) as info:
        load_cifar10(isolated / FOLDER)
    assert str(bad) in str(info.value)


def test_a_batch_file_one_record_short_is_named(isolated):
    write_folder(isolated / FOLDER)
    bad = isolated / FOLDER / "test_batch.bin"
    bad.write_bytes(bad.read_bytes()[:-3073])
    with pytest.raises(CorruptDatasetError, match=f"{RECORDS - 1} records .* expected {RECORDS} ") as info:
        load_cifar10(isolated / FOLDER)
    assert str(bad) in str(info.value)


def test_a_label_above_9_is_named_with_its_record(isolated):
    files = write_folder(isolated / FOLDER)
    data = bytearray(files["data_batch_4.bin"])
    data[3 * 3073] = 12  # the label byte of record 3
    (isolated / FOLDER / "data_batch_4.bin").write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError, match="label 12 in record 3 is outside 0..9") as info:
        load_cifar10(isolated / FOLDER)
    assert "data_batch_4.bin" in str(info.value)


@pytest.mark.parametrize("cut", ["garbage", "half", "header"])
def test_a_bad_or_truncated_tarball_is_named(isolated, cut):
    tarball = official_tarball(isolated / "t" / ARCHIVE)
    data = tarball.read_bytes()
    damaged = {"garbage": b"not a tarball at all" * 10, "half": data[: len(data) // 2], "header": data[:5]}
    tarball.write_bytes(damaged[cut])
    with pytest.raises(CorruptDatasetError, match="not a valid .tar.gz archive, or truncated") as info:
        load_cifar10(tarball)
    assert str(info.value).startswith(f"{tarball}: ")


def test_a_tarball_without_a_batch_file_is_named(isolated):
    files = {name: batch(i)[0] for i, name in enumerate(NAMES) if name != "data_batch_5.bin"}
    tarball = write_tarball(isolated / ARCHIVE, files)
    with pytest.raises(CorruptDatasetError, match=f"missing {FOLDER}/data_batch_5.bin") as info:
        load_cifar10(tarball)
    assert str(tarball) in str(info.value)


def test_a_member_of_the_wrong_size_is_named_inside_the_tarball(isolated):
    files = {name: batch(i)[0] for i, name in enumerate(NAMES)}
    files["data_batch_2.bin"] += b"\0"
    tarball = write_tarball(isolated / ARCHIVE, files)
    with pytest.raises(CorruptDatasetError, match="is not a whole number of 3,073-byte records") as info:
        load_cifar10(tarball)
    assert f"{tarball}:{FOLDER}/data_batch_2.bin" in str(info.value)


# --------------------------------------------------------------------------
# hostile tarballs: nothing is extracted, links and doubles are refused
# --------------------------------------------------------------------------


def test_members_with_dotdot_or_absolute_paths_write_nothing(isolated, monkeypatch):
    workdir = isolated / "work" / "deep"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    files = {name: batch(i)[0] for i, name in enumerate(NAMES)}
    extra = [
        ("../escaped.bin", b"x" * 10, {}),
        (f"{FOLDER}/../../escaped-too.bin", b"y" * 10, {}),
        (str(isolated / "absolute.bin"), b"z" * 10, {}),
    ]
    tarball = write_tarball(isolated / "t" / ARCHIVE, files, extra=extra)
    before = sorted(isolated.rglob("*"))
    assert_loaded(load_cifar10(tarball, verbose=False))
    assert sorted(isolated.rglob("*")) == before
    assert not (isolated / "absolute.bin").exists()


@pytest.mark.parametrize(
    "kind, fields",
    [
        ("symbolic link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("hard link", {"type": tarfile.LNKTYPE, "linkname": f"{FOLDER}/data_batch_1.bin"}),
    ],
)
def test_a_batch_member_that_is_a_link_is_refused(isolated, kind, fields):
    files = {name: batch(i)[0] for i, name in enumerate(NAMES) if name != "test_batch.bin"}
    tarball = write_tarball(isolated / ARCHIVE, files, extra=[(f"{FOLDER}/test_batch.bin", b"", fields)])
    with pytest.raises(CorruptDatasetError, match=f"is a {kind}, expected a regular file") as info:
        load_cifar10(tarball)
    assert f"{tarball}:{FOLDER}/test_batch.bin" in str(info.value)


def test_a_batch_member_that_appears_twice_is_refused(isolated):
    files = {name: batch(i)[0] for i, name in enumerate(NAMES)}
    duplicate = [(f"{FOLDER}/data_batch_1.bin", batch(99)[0], {})]
    tarball = write_tarball(isolated / ARCHIVE, files, extra=duplicate)
    with pytest.raises(CorruptDatasetError, match="appears twice in the archive"):
        load_cifar10(tarball)


# --------------------------------------------------------------------------
# the command line and augmentation
# --------------------------------------------------------------------------


def test_fastnn_train_and_evaluate_on_cifar10_end_to_end(built, isolated, capsys):
    data = ["--dataset", "cifar10", "--data-dir", str(built / "packed")]
    saved = str(isolated / "model.npz")
    argv = ["train", *data, "--epochs", "1", "--augment", "crop=4,flip", "--batch-size", "25"]
    assert main([*argv, "--backend", "numpy", "--quiet", "--save", saved]) == 0
    out = capsys.readouterr().out
    assert f"fastnn mlp on cifar10: {5 * RECORDS} train / {RECORDS} test" in out
    assert "test accuracy" in out
    assert main(["evaluate", saved, *data, "--quiet"]) == 0
    assert f"on the cifar10 test set ({RECORDS} samples)" in capsys.readouterr().out


def test_fastnn_train_on_a_damaged_cifar10_is_a_clean_error(isolated, capsys):
    write_folder(isolated / "d" / FOLDER)
    (isolated / "d" / FOLDER / "data_batch_1.bin").write_bytes(b"\0" * 10)
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(isolated / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fastnn train: error:" in err and "data_batch_1.bin: 10 bytes is not a whole number" in err


def pad_crop_flip_oracle(x: np.ndarray, seed: int, pad: int = 4) -> np.ndarray:
    """RandomCrop(pad) then RandomHorizontalFlip(0.5) with NumPy: pad with zeros, slice, reverse."""
    rng = np.random.default_rng(seed)
    n, _, h, w = x.shape
    offsets = rng.integers(0, 2 * pad + 1, size=(2, n))  # the draws RandomCrop makes, in order
    flips = rng.random(n) < 0.5  # then RandomHorizontalFlip's
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.stack(
        [padded[k, :, offsets[0, k] : offsets[0, k] + h, offsets[1, k] : offsets[1, k] + w] for k in range(n)]
    )
    out[flips] = out[flips][..., ::-1]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_cifar_augmentation_pads_crops_and_flips_three_channel_batches(dtype):
    x = np.random.default_rng(0).random((16, 3, 32, 32)).astype(dtype)
    augment = fnn.augment.Compose([fnn.augment.RandomCrop(4), fnn.augment.RandomHorizontalFlip()])
    out = augment(x, np.random.default_rng(5))
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out, pad_crop_flip_oracle(x, 5))
    np.testing.assert_array_equal(augment(x, np.random.default_rng(5)), out)  # seeded
    assert not np.array_equal(augment(x, np.random.default_rng(6)), out)
    assert np.array_equal(fnn.augment.from_spec("crop=4,flip")(x, np.random.default_rng(5)), out)
