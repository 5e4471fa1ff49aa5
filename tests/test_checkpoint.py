"""Checkpoint files (fastnn.checkpoint): damage, truncation and foreign files are clean
errors; only plain arrays are stored. fit's checkpoints are tested in
test_model_checkpoint.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.checkpoint import CHECKPOINT_FORMAT, list_checkpoints, load_checkpoint, save_checkpoint
from fastnn.errors import ModelFileError
from fastnn.optim import Adam

from fit_recipe import Crash, crash_at, recipe_model, train


@pytest.fixture(scope="module")
def one_checkpoint(tmp_path_factory):
    """A small checkpoint with every kind of entry: Adam state, a Dropout generator,
    early stopping, a mid-epoch sample order (about 4 KB)."""
    directory = tmp_path_factory.mktemp("one")
    rng = np.random.default_rng(0)
    x, t = rng.random((40, 3), dtype=np.float32), rng.integers(0, 2, 40)
    model = fnn.Sequential([fnn.Dense(3, 4), fnn.ReLU(), fnn.Dropout(0.2), fnn.Dense(4, 2)], seed=0)
    model.fit(
        x,
        t,
        epochs=1,
        batch_size=8,
        checkpoint=directory,
        checkpoint_every=3,
        patience=2,
        validation_split=0.2,
        verbose=0,
    )
    path = list_checkpoints(directory)[0]
    return path, load_checkpoint(path)


def _same_checkpoint(a, b) -> bool:
    return a.arrays.keys() == b.arrays.keys() and all(
        np.array_equal(a.arrays[k], b.arrays[k]) and a.arrays[k].dtype == b.arrays[k].dtype for k in a.arrays
    )


def flip_every_byte(path: Path, load, original, same, stride=1) -> int:
    """Flip each byte of ``path`` in turn (xor 0xFF, in place, then put it back) and load it.

    Every load must raise ModelFileError naming the file or give content ``same`` as
    ``original``. Returns how many flips loaded.
    """
    data = path.read_bytes()
    harmless = 0
    fd = os.open(path, os.O_RDWR)
    try:
        for position in range(0, len(data), stride):
            os.pwrite(fd, bytes([data[position] ^ 0xFF]), position)
            try:
                loaded = load(path)
            except ModelFileError as error:
                assert path.name in str(error)
            else:
                harmless += 1
                assert same(loaded, original), f"byte {position} changed a value silently"
            os.pwrite(fd, data[position : position + 1], position)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    return harmless


def truncate_every_length(path: Path, load, stride=1) -> None:
    """Cut ``path`` to every length from len-1 down to 0; each load must raise ModelFileError."""
    data = path.read_bytes()
    fd = os.open(path, os.O_RDWR)
    try:
        for cut in range(len(data) - 1, -1, -stride):
            os.ftruncate(fd, cut)
            with pytest.raises(ModelFileError, match=path.name):
                load(path)
    finally:
        os.close(fd)


def test_every_flipped_byte_is_a_clean_error_or_changes_nothing(one_checkpoint, tmp_path):
    """Byte by byte over the whole file: the digest catches any change to a stored value;
    a flip that loads must have hit zip bookkeeping that changes no value at all."""
    path, original = one_checkpoint
    broken = tmp_path / "checkpoint-000000001.npz"
    broken.write_bytes(path.read_bytes())
    harmless = flip_every_byte(broken, load_checkpoint, original, _same_checkpoint)
    # zip bookkeeping (timestamps, attributes, unused header fields) is ~1/8 of so small a file
    assert harmless < broken.stat().st_size // 4


def test_every_truncation_is_a_clean_error(one_checkpoint, tmp_path):
    path, _ = one_checkpoint
    broken = tmp_path / "cut.npz"
    broken.write_bytes(path.read_bytes())
    truncate_every_length(broken, load_checkpoint)


@pytest.mark.slow
def test_every_flipped_byte_of_a_larger_checkpoint(tmp_path):
    with pytest.raises(Crash):
        train(checkpoint=tmp_path / "ckpt", every=5, hook=crash_at(9), epochs=1)
    path = list_checkpoints(tmp_path / "ckpt")[-1]
    flip_every_byte(path, load_checkpoint, load_checkpoint(path), _same_checkpoint)
    truncate_every_length(path, load_checkpoint)


def test_newer_foreign_and_model_files_are_refused(one_checkpoint, tmp_path):
    path, ckpt = one_checkpoint
    arrays = dict(ckpt.arrays)
    meta = json.loads(arrays["checkpoint"].tobytes())
    meta["format"] = CHECKPOINT_FORMAT + 1
    arrays["checkpoint"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    from fastnn._files import content_digest

    arrays["digest"] = content_digest(arrays)
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    with pytest.raises(ModelFileError, match="newer fastnn"):
        load_checkpoint(newer)
    model_file = tmp_path / "model.npz"
    recipe_model().save(model_file)
    with pytest.raises(ModelFileError, match="not a fastnn checkpoint"):
        load_checkpoint(model_file)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a fastnn checkpoint"):
        load_checkpoint(plain)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="text.npz"):
        load_checkpoint(tmp_path / "text.npz")


def test_save_checkpoint_keeps_plain_arrays_only(tmp_path):
    model = recipe_model()
    with pytest.raises(TypeError, match="object array"):
        save_checkpoint(tmp_path, model, Adam(), extra={"bad": np.array([{}], dtype=object)})
    assert list_checkpoints(tmp_path) == []
