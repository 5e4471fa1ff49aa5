"""Hostile input: damaged files, bad labels, wrong dtypes, odd layouts, pickles.

Every bad file or argument must give a clear error (naming the file or the function)
and leave nothing half-written; arrays in odd layouts are not errors and must give
exactly what their plain copies give, without the caller's arrays being modified.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_checkpoint import flip_every_byte, truncate_every_length

import fastnn as fnn
from fastnn.checkpoint import load_checkpoint
from fastnn.datasets import CorruptDatasetError, read_idx_images, read_idx_labels
from fastnn.optim import SGD, Adam
from fastnn.serialization import ModelFileError

PACKAGE = Path(fnn.__file__).resolve().parent
BACKENDS = ("numba", "numpy")


def small_model(backend="numba", seed=0):
    return fnn.Sequential([fnn.Dense(4, 6), fnn.ReLU(), fnn.Dense(6, 3)], backend=backend, seed=seed)


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4), dtype=np.float32), rng.integers(0, 3, n)


# ================================================================ model files


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = small_model()
    model.fit(*data(), epochs=1, batch_size=8, verbose=0)
    path = tmp_path_factory.mktemp("model") / "model.npz"
    model.save(path)
    return path, model


def _same_model(a, b) -> bool:
    return (
        a.get_config() == b.get_config()
        and np.array_equal(a.flat_params, b.flat_params)
        and a.flat_params.dtype == b.flat_params.dtype
    )


def test_every_flipped_byte_of_a_model_file_is_a_clean_error_or_changes_nothing(model_file, tmp_path):
    path, model = model_file
    broken = tmp_path / "flipped.npz"
    broken.write_bytes(path.read_bytes())
    harmless = flip_every_byte(broken, fnn.load, model, _same_model)
    assert harmless < broken.stat().st_size // 4


def test_every_truncation_of_a_model_file_is_a_clean_error(model_file, tmp_path):
    path, _ = model_file
    broken = tmp_path / "cut.npz"
    broken.write_bytes(path.read_bytes())
    truncate_every_length(broken, fnn.load)


@pytest.mark.parametrize("load", [fnn.load, load_checkpoint], ids=["model", "checkpoint"])
def test_files_that_are_not_fastnn_files(load, tmp_path):
    cases = {
        "empty.npz": b"",
        "random.npz": np.random.default_rng(0).bytes(3000),
        "text.npz": b"hello, world\n",
        "array.npy": None,  # an .npy, not an archive
        "zip.npz": None,  # a zip of something else
    }
    np.save(tmp_path / "array.npy", np.zeros(3))
    with zipfile.ZipFile(tmp_path / "zip.npz", "w") as archive:
        archive.writestr("readme.txt", "not an array")
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError, match=name):
            load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_a_config_that_is_not_an_object_is_a_clean_error(model_file, tmp_path):
    path, _ = model_file
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    for config in (
        b"[1, 2]",
        b'{"layers": 3}',
        b'{"layers": [{"class": "Dense", "config": [1]}]}',
        b"\xff\xfe",
        b"{",
    ):
        arrays["config"] = np.frombuffer(config, np.uint8)
        odd = tmp_path / "odd.npz"
        np.savez(odd, **arrays)
        with pytest.raises(ModelFileError, match="odd.npz"):
            fnn.load(odd)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("load", [fnn.load, load_checkpoint], ids=["model", "checkpoint"])
def test_a_pickle_in_a_file_is_never_executed(load, model_file, tmp_path):
    path, _ = model_file
    marker = tmp_path / "code-ran"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    assert pickle.loads(pickle.dumps(_Payload(str(marker)))) is None and marker.exists()
    marker.unlink()  # the payload works when unpickled; now hide it in a file
    for key in ("config", "params", "checkpoint", "__fastnn__"):
        evil = dict(arrays)
        evil[key] = np.array([_Payload(str(marker))], dtype=object)
        target = tmp_path / f"evil-{key}.npz"
        np.savez(target, **evil)
        with pytest.raises(ModelFileError):
            load(target)
        assert not marker.exists(), f"loading ran code from the '{key}' entry"


def test_loading_never_unpickles_anything_in_the_source():
    """Every np.load in fastnn passes allow_pickle=False; nothing imports pickle & co."""
    unpicklers = {"pickle", "cPickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}
    loads, banned = 0, []
    for source in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            where = f"{source.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            banned += [f"{where} imports {n}" for n in names if n.split(".")[0] in unpicklers]
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
                banned.append(f"{where} calls {func.id}")
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "load"
                and getattr(func.value, "id", "") in ("np", "numpy")
            ):
                loads += 1
                flag = {k.arg: k.value for k in node.keywords}.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    banned.append(f"{where} np.load without allow_pickle=False")
    assert loads >= 1
    assert not banned, banned


def test_a_failed_save_leaves_no_partial_file(model_file, tmp_path, monkeypatch):
    _, model = model_file
    target = tmp_path / "model.npz"
    model.save(target)
    original = target.read_bytes()

    def half_then_fail(handle, **arrays):
        handle.write(b"PK\x03\x04 half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "new.npz")
    assert target.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_saving_into_a_missing_folder_is_an_error_and_writes_nothing(model_file, tmp_path):
    _, model = model_file
    with pytest.raises(OSError):
        model.save(tmp_path / "no" / "such" / "model.npz")
    assert list(tmp_path.iterdir()) == []


# ================================================================ dataset files


def _gz(path: Path, raw: bytes, extra: bytes = b"") -> Path:
    path.write_bytes(gzip.compress(raw, mtime=0) + extra)
    return path


LABELS = struct.pack(">II", 2049, 5) + bytes(range(5))


def test_dataset_garbage_after_the_gzip_stream(tmp_path):
    with pytest.raises(CorruptDatasetError, match="not a valid gzip"):
        read_idx_labels(_gz(tmp_path / "l.gz", LABELS, b"garbage!"))
    # a second gzip member is more data: the payload no longer matches the header
    with pytest.raises(CorruptDatasetError, match="trailing bytes"):
        read_idx_labels(_gz(tmp_path / "l.gz", LABELS, gzip.compress(b"more", mtime=0)))


def test_dataset_header_with_absurd_counts_fails_fast(tmp_path):
    raw = struct.pack(">IIII", 2051, 0xFFFFFFFF, 0xFFFFFFFF, 28) + bytes(100)
    with pytest.raises(CorruptDatasetError, match="short payload"):
        read_idx_images(_gz(tmp_path / "i.gz", raw))


def test_dataset_with_the_labels_magic_where_images_belong(tmp_path):
    with pytest.raises(CorruptDatasetError, match="magic number 2049, expected 2051"):
        read_idx_images(_gz(tmp_path / "i.gz", struct.pack(">II", 2049, 60) + bytes(60)))


# ================================================================ labels and dtypes


@pytest.mark.parametrize(
    "labels", [[0, 1, 2, 3], [-1, 0, 1, 2], [0, 1, 2, 2**40]], ids=["too large", "negative", "huge"]
)
def test_labels_outside_the_class_range(labels):
    x = data(4)[0]
    t = np.array(labels)
    model = small_model()
    for call in (
        lambda: model.fit(x, t, verbose=0),
        lambda: model.evaluate(x, t),
        lambda: model.train_step(x, t, SGD()),
        lambda: model.loss(x, t),
    ):
        with pytest.raises(ValueError, match=r"class labels in \[0, 3\)"):
            call()


def test_labels_of_the_wrong_shape_or_count():
    x, _ = data(4)
    model = small_model()
    with pytest.raises(ValueError, match="one-hot targets of shape"):
        model.fit(x, np.eye(4, dtype=np.float32), verbose=0)
    with pytest.raises(ValueError, match="4 samples and t has 3"):
        model.fit(x, np.array([0, 1, 2]), verbose=0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.fit(x, np.full((4, 3), np.nan, np.float32), verbose=0)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, bool, object, complex, "U3"])
def test_non_float_inputs_are_type_errors_everywhere(dtype):
    x = np.zeros((4, 4), dtype=dtype)
    t = np.array([0, 1, 2, 0])
    model = small_model()
    calls = {
        "fit": lambda: model.fit(x, t, verbose=0),
        "evaluate": lambda: model.evaluate(x, t),
        "predict": lambda: model.predict(x),
        "loss": lambda: model.loss(x, t),
        "train_step": lambda: model.train_step(x, t, SGD()),
        "forward": lambda: model.forward(x),
    }
    for call in calls.values():
        with pytest.raises(TypeError, match="expected float input"):
            call()


@pytest.mark.parametrize("dtype", [object, complex, "U3"])
def test_non_numeric_targets_are_type_errors(dtype):
    x, _ = data(4)
    with pytest.raises(TypeError, match="integer class labels or float targets"):
        small_model().fit(x, np.zeros(4, dtype=dtype), verbose=0)


def test_object_arrays_of_floats_are_not_silently_converted():
    x = np.empty((2, 4), dtype=object)
    x[...] = 0.5
    with pytest.raises(TypeError, match="dtype object"):
        small_model().predict(x)


# ================================================================ layouts and untouched inputs


def full_model(backend, seed=0):
    layers = [
        fnn.Conv2D(2, 3, 3, pad=1),
        fnn.ReLU(),
        fnn.MaxPool2D(2),
        fnn.Conv2D(3, 4, 2, stride=2),
        fnn.Sigmoid(),
        fnn.AvgPool2D(1),
        fnn.Flatten(),
        fnn.Dense(4, 5),
        fnn.Tanh(),
        fnn.Dropout(0.2),
        fnn.LeakyReLU(0.1),
        fnn.Dense(5, 3),
    ]
    return fnn.Sequential(layers, backend=backend, seed=seed)


def _fingerprint(a: np.ndarray):
    return (
        hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(),
        a.dtype.str,
        a.shape,
        a.strides,
        a.flags.writeable,
        a.flags.c_contiguous,
        a.flags.f_contiguous,
    )


def _odd(a: np.ndarray, kind: str) -> np.ndarray:
    if kind == "strided":
        wide = np.zeros((a.shape[0] * 2,) + a.shape[1:], a.dtype)
        wide[::2] = a
        return wide[::2]
    if kind == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "big-endian":
        return a.astype(a.dtype.newbyteorder(">"))
    if kind == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    if kind == "float64":
        return a.astype(np.float64) if a.dtype.kind == "f" else a.astype(np.int32)
    raise ValueError(kind)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["strided", "reversed", "fortran", "big-endian", "readonly", "float64"])
def test_odd_layouts_give_the_plain_results_and_are_never_modified(backend, kind):
    rng = np.random.default_rng(1)
    x = rng.random((24, 2, 6, 6), dtype=np.float32)
    t = rng.integers(0, 3, 24)
    xv, tv = rng.random((10, 2, 6, 6), dtype=np.float32), rng.integers(0, 3, 10)
    odd = [_odd(a, kind) for a in (x, t, xv, tv)]
    before = [_fingerprint(a) for a in odd]

    def run(x, t, xv, tv):
        model = full_model(backend)
        history = model.fit(
            x,
            t,
            epochs=2,
            batch_size=8,
            optimizer=Adam(0.01),
            verbose=0,
            seed=2,
            validation_data=(xv, tv),
            augment=lambda b, r: b,
        )
        return (model.flat_params.copy(), history["val_loss"], model.predict(xv), model.evaluate(xv, tv))

    plain = run(x.copy(), t.copy(), xv.copy(), tv.copy())
    got = run(*odd)
    np.testing.assert_array_equal(got[0], plain[0])
    assert got[1] == plain[1]
    np.testing.assert_array_equal(got[2], plain[2])
    assert got[3] == plain[3]
    assert [_fingerprint(a) for a in odd] == before, "fit/predict/evaluate modified a caller's array"


@pytest.mark.parametrize("backend", BACKENDS)
def test_augment_and_train_step_never_modify_the_callers_arrays(backend):
    x, t = data(32)
    saved = _fingerprint(x), _fingerprint(t)

    def augment_in_place(batch, rng):
        batch += 1.0  # a careless augment: must only ever see a copy
        return batch

    model = small_model(backend)
    model.fit(x, t, epochs=1, batch_size=8, augment=augment_in_place, verbose=0)
    model.train_step(x, t, SGD())
    model.evaluate(x, t)
    assert (_fingerprint(x), _fingerprint(t)) == saved
