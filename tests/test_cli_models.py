"""The commands on saved models: fastnn summary, predict and evaluate, and their errors."""

import numpy as np
import pytest

import fastnn as fnn
from fastnn.cli import main


@pytest.fixture(scope="module")
def digits():
    return fnn.datasets.load_digits(seed=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits):
    """A small MLP trained for two epochs on digits (its input shape (1, 8, 8) recorded), saved."""
    (x, t), _ = digits
    model = fnn.models.mlp(in_features=64, hidden=(16,), seed=0)
    model.fit(x, t, epochs=2, batch_size=32, verbose=0, seed=0)
    path = tmp_path_factory.mktemp("models") / "digits.npz"
    model.save(path)
    return model, path


def fails(capsys, argv) -> str:
    """The stderr of a command that must exit with status 2."""
    assert main([str(a) for a in argv]) == 2
    return capsys.readouterr().err


def test_summary_prints_the_models_summary(saved, capsys):
    model, path = saved
    assert main(["summary", str(path), "--batch-size", "32"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == model.summary(batch_size=32)
    assert "input: (N, 1, 8, 8)" in out and "Dense(64->16)" in out and "at batch 32" in out


def test_summary_of_a_file_without_an_input_shape_takes_one(tmp_path, capsys):
    model = fnn.models.mlp(in_features=64, hidden=(16,), seed=0)  # never trained: shape unknown
    model.save(tmp_path / "m.npz")
    assert main(["summary", str(tmp_path / "m.npz")]) == 0
    assert "input: unknown" in capsys.readouterr().out
    assert main(["summary", str(tmp_path / "m.npz"), "--input-shape", "1,8,8"]) == 0
    assert capsys.readouterr().out.strip() == model.summary(input_shape=(1, 8, 8))
    with pytest.raises(SystemExit):
        main(["summary", str(tmp_path / "m.npz"), "--input-shape", "1,x"])
    assert "expected positive integers separated by commas" in capsys.readouterr().err


def test_summary_names_a_missing_file_and_a_file_of_the_wrong_kind(tmp_path, capsys):
    err = fails(capsys, ["summary", tmp_path / "gone.npz"])
    assert f"{tmp_path / 'gone.npz'}: no such file; expected a model written by model.save(PATH)" in err
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    err = fails(capsys, ["summary", tmp_path / "x.npy"])
    assert f"fastnn summary: error: {tmp_path / 'x.npy'}: not a" in err and "model.save(PATH)" in err


def test_predict_prints_or_writes_classes_and_probabilities(saved, digits, tmp_path, capsys):
    model, path = saved
    x = digits[1][0][:7]
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(path), str(tmp_path / "x.npy")]) == 0
    printed = [int(line) for line in capsys.readouterr().out.split()]
    assert printed == model.predict(x).argmax(axis=1).tolist()
    assert main(["predict", str(path), str(tmp_path / "x.npy"), "--out", str(tmp_path / "c.npy")]) == 0
    assert "wrote the classes of 7 samples" in capsys.readouterr().out
    classes = np.load(tmp_path / "c.npy")
    assert classes.dtype == np.int64 and classes.tolist() == printed
    np.savez(tmp_path / "one.npz", images=x)
    argv = ["predict", str(path), str(tmp_path / "one.npz"), "--proba", "--out", str(tmp_path / "p.npy")]
    assert main(argv + ["--batch-size", "3"]) == 0
    probs = np.load(tmp_path / "p.npy")
    logits = model.predict(x).astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, softmax / softmax.sum(axis=1, keepdims=True), rtol=1e-5)


def test_predict_names_the_files_and_what_was_expected(saved, digits, tmp_path, capsys):
    model, path = saved
    x = digits[1][0][:4]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "flat.npy", x.reshape(4, 64))
    np.save(tmp_path / "u8.npy", (x * 255).astype(np.uint8))
    np.savez(tmp_path / "two.npz", x=x, t=np.arange(4))
    (tmp_path / "text.npy").write_text("hello")
    good = tmp_path / "x.npy"
    err = fails(capsys, ["predict", tmp_path / "missing.npz", good])
    assert "missing.npz: no such file; expected a model written by model.save(PATH)" in err
    err = fails(capsys, ["predict", good, good])  # an array file, not a model
    assert f"{good}: not a" in err and "expected a model written by model.save(PATH)" in err
    err = fails(capsys, ["predict", path, tmp_path / "flat.npy"])
    assert f"{path} expects inputs of shape (N, 1, 8, 8); {tmp_path / 'flat.npy'} holds (4, 64)" in err
    assert "x.reshape(-1, 1, 8, 8)" in err
    err = fails(capsys, ["predict", path, tmp_path / "u8.npy"])
    assert (
        "expects float32 or float64 inputs;" in err and "u8.npy holds uint8 values" in err and "/ 255" in err
    )
    err = fails(capsys, ["predict", path, tmp_path / "two.npz"])
    assert "two.npz: holds 2 arrays (x, t); expected one" in err
    err = fails(capsys, ["predict", path, tmp_path / "text.npy"])
    assert "text.npy: is not a NumPy array file" in err and "pickle" not in err
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    err = fails(capsys, ["predict", path, tmp_path / "objects.npy"])
    assert "objects.npy: holds an array of Python objects" in err and "pickle" not in err
    err = fails(capsys, ["predict", path, tmp_path / "nothing.npy"])
    assert "nothing.npy: no such file" in err
    err = fails(capsys, ["predict", path, good, "--out", tmp_path / "no" / "p.npy"])
    assert f"--out {tmp_path / 'no' / 'p.npy'}: the folder {tmp_path / 'no'} does not exist" in err


def test_evaluate_prints_loss_accuracy_per_class_metrics_and_the_confusion_matrix(saved, digits, capsys):
    model, path = saved
    x_test, t_test = digits[1]
    assert main(["evaluate", str(path), "--metrics", "top_k_accuracy", "--batch-size", "50"]) == 0
    out = capsys.readouterr().out
    expected = model.evaluate(x_test, t_test)
    assert f"loss {expected['loss']:.4f}  accuracy {expected['accuracy']:.4f}" in out
    top5 = fnn.metrics.top_k_accuracy(model.predict(x_test), t_test)
    assert f"top_k_accuracy {top5:.4f}" in out
    lines = out.splitlines()
    start = lines.index("confusion matrix (rows: true class, columns: predicted class)") + 2
    cm = np.array([[int(v) for v in line.split()[1:]] for line in lines[start : start + 10]])
    assert np.array_equal(cm, fnn.metrics.confusion_matrix(model.predict(x_test), t_test))
    recall_of_0 = cm[0, 0] / cm[0].sum()
    row_0 = next(line.split() for line in lines if line.split()[:1] == ["0"] and len(line.split()) == 5)
    assert float(row_0[2]) == pytest.approx(recall_of_0, abs=1e-4) and int(row_0[4]) == cm[0].sum()


def test_evaluate_on_a_data_set_the_model_does_not_take(tmp_path, capsys):
    path = tmp_path / "lenet.npz"
    fnn.models.lenet5(seed=0).save(path)
    err = fails(capsys, ["evaluate", path, "--dataset", "digits"])
    assert f"{path} expects inputs of shape (N, 1, 28, 28); the digits test set holds (359, 1, 8, 8)" in err
    assert "--dataset mnist, fashion-mnist" in err
    err = fails(capsys, ["evaluate", tmp_path / "none.npz"])
    assert "none.npz: no such file" in err
