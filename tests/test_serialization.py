"""save/load: one .npz with architecture and weights, atomic, no pickle, clear errors."""

import json
import os
import re
import stat

import numpy as np
import pytest

import fastnn as fnn
from fastnn.serialization import FORMAT_VERSION, ModelFileError, atomic_write


@pytest.fixture
def trained(tmp_path):
    rng = np.random.default_rng(0)
    model = fnn.Sequential(
        [
            fnn.Flatten(),
            fnn.Dense(6, 5, init="xavier"),
            fnn.LeakyReLU(0.2),
            fnn.Dense(5, 4),
            fnn.Tanh(),
            fnn.Dense(4, 3),
        ],
        seed=1,
    )
    x = rng.random((40, 2, 3), dtype=np.float32)
    t = rng.integers(0, 3, 40)
    model.fit(x, t, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path, x


def test_round_trip_gives_a_working_identical_model(trained):
    model, path, x = trained
    loaded = fnn.load(path)
    assert [a.describe() for a in loaded.layers] == [b.describe() for b in model.layers]
    assert loaded.layers[2].alpha == 0.2
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.fit(x, np.zeros(40, np.int64), epochs=1, verbose=0)  # it trains


def test_load_can_switch_backend(trained):
    model, path, x = trained
    loaded = fnn.serialization.load_model(path, backend="numpy")
    assert loaded.ops.name == "numpy"
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)


def test_file_holds_no_pickled_objects(trained):
    _, path, _ = trained
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"__fastnn__", "config", "params"}
        assert all(data[k].dtype != object for k in data.files)
        config = json.loads(data["config"].tobytes())
    assert config["layers"][1] == {
        "class": "Dense",
        "config": {"in_features": 6, "out_features": 5, "init": "xavier"},
    }


def test_truncated_files_give_a_clean_error(trained):
    _, path, _ = trained
    data = path.read_bytes()
    for cut in sorted({1, 10, 100, len(data) // 2, len(data) - 30, len(data) - 1}):
        broken = path.with_name(f"cut{cut}.npz")
        broken.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match=str(broken.name)):
            fnn.load(broken)


def test_corrupted_bytes_give_a_clean_error_or_the_same_model(trained):
    model, path, _ = trained
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    broken = path.with_name("flipped.npz")
    for position in rng.choice(len(data), 60, replace=False):
        copy = bytearray(data)
        copy[position] ^= 0xFF
        broken.write_bytes(bytes(copy))
        try:
            loaded = fnn.load(broken)
        except ModelFileError as error:
            assert "flipped.npz" in str(error)
        else:  # the flip hit bytes that do not matter (e.g. zip metadata or padding)
            assert loaded.num_params == model.num_params


def test_not_a_fastnn_file(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a fastnn model"):
        fnn.load(plain)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="notes.npz"):
        fnn.load(text)


def test_newer_format_version_is_refused(trained, tmp_path):
    _, path, _ = trained
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["__fastnn__"] = np.array([FORMAT_VERSION + 1])
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    with pytest.raises(ModelFileError, match="newer fastnn"):
        fnn.load(newer)


def test_pickled_object_arrays_are_never_loaded(trained, tmp_path):
    _, path, _ = trained
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["config"] = np.array([{"evil": True}], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **arrays)
    with pytest.raises(ModelFileError):
        fnn.load(evil)


def test_unknown_layer_class_is_a_clear_error(trained, tmp_path):
    _, path, _ = trained
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    config = json.loads(arrays["config"].tobytes())
    config["layers"][0]["class"] = "os.system"
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    odd = tmp_path / "odd.npz"
    np.savez(odd, **arrays)
    with pytest.raises(ModelFileError, match="invalid architecture"):
        fnn.load(odd)


def test_failed_save_leaves_the_old_file_untouched(trained, monkeypatch):
    model, path, _ = trained
    original = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == original
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_atomic_write_replaces_in_one_step(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def _text_file(path):
    path.write_text("hello")


def _empty_file(path):
    path.write_bytes(b"")


def _npy_file(path):
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes())


def _npz_without_config(path):
    np.savez(path, weights=np.zeros(3))


def _object_array_npz(path):
    np.savez(path, config=np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize(
    "write, why",
    [
        (_text_file, r"not an \.npz \(zip\) archive \(it starts with b'hell'\)"),
        (_empty_file, r"it is empty \(0 bytes\)"),
        (_npy_file, r"a single NumPy array \(\.npy\)"),
        (_random_bytes, r"not an \.npz \(zip\) archive"),
        (_npz_without_config, "without the '__fastnn__' marker"),
        (_object_array_npz, r"pickled \(object\) array, which fastnn never loads"),
    ],
)
def test_a_file_that_is_no_model_gets_one_clear_error(tmp_path, write, why):
    path = tmp_path / "m.npz"
    write(path)
    with pytest.raises(ModelFileError) as info:
        fnn.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a fastnn model file: ")
    assert re.search(why, message), message
    assert "written by model.save(path)" in message
    assert "allow_pickle" not in message and "pickle.load" not in message


def test_a_truncated_model_file_names_the_path_and_no_pickle_advice(trained, tmp_path):
    _, path, _ = trained
    data = path.read_bytes()
    for length in (4, 30, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{length}.npz"
        cut.write_bytes(data[:length])
        with pytest.raises(
            ModelFileError, match=rf"^{re.escape(str(cut))}: not a fastnn model file: "
        ) as info:
            fnn.load(cut)
        assert "allow_pickle" not in str(info.value)


def test_saving_into_a_missing_folder_names_the_path_asked_for(trained, tmp_path, monkeypatch):
    model, _, _ = trained
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError,
        match=r"^cannot write nowhere/m\.npz: the folder nowhere does not exist; create it first",
    ) as info:
        model.save("nowhere/m.npz")
    assert ".tmp" not in str(info.value)
    assert not (tmp_path / "nowhere").exists()


def test_atomic_write_refuses_a_folder_or_a_file_as_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match=rf"cannot write {re.escape(str(tmp_path))}: it is a folder"):
        atomic_write(tmp_path, lambda handle: handle.write(b"x"))
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"plain/x\.bin: .*plain is a file, not a folder"):
        atomic_write(plain / "x.bin", lambda handle: handle.write(b"x"))
    assert sorted(os.listdir(tmp_path)) == ["plain"]


def test_saved_files_get_the_permissions_open_would_give(trained, tmp_path):
    model, _, _ = trained
    previous = os.umask(0o027)
    try:
        model.save(tmp_path / "m.npz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o640  # 0o666 less the umask, not 0o600
