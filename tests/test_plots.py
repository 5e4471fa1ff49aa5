"""Plots: PNG files for the history, the first-layer filters and misclassified samples."""

import numpy as np
import pytest

import fastnn as fnn

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from fastnn import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    assert path.read_bytes()[:8] == PNG, path
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


@pytest.fixture(scope="module")
def trained():
    (x, t), (x_test, t_test) = fnn.datasets.load_digits(seed=0)
    model = fnn.Sequential(
        [fnn.Conv2D(1, 6, 3, pad=1), fnn.ReLU(), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(6 * 4 * 4, 10)],
        seed=0,
    )
    history = model.fit(x, t, epochs=3, batch_size=50, verbose=0, validation_split=0.1)
    return model, history, x_test, t_test


def test_history_plot(tmp_path, trained):
    _, history, _, _ = trained
    image = read_png(plots.plot_history(history, tmp_path / "h.png"))
    assert image.shape[1] > image.shape[0]  # two panels side by side
    no_validation = {"loss": [1.0, 0.5], "accuracy": [0.3, 0.6]}
    read_png(plots.plot_history(no_validation, tmp_path / "sub" / "h2.png"))
    with pytest.raises(ValueError, match="no finished epoch"):
        plots.plot_history({"loss": [], "accuracy": []}, tmp_path / "empty.png")


def test_filter_plot(tmp_path, trained):
    model = trained[0]
    read_png(plots.plot_filters(model, tmp_path / "f.png"))
    read_png(plots.plot_filters(np.random.default_rng(0).standard_normal((8, 3, 5, 5)), tmp_path / "rgb.png"))
    with pytest.raises(ValueError, match="no Conv2D"):
        plots.plot_filters(fnn.models.mlp(), tmp_path / "none.png")


def test_misclassified_plot(tmp_path, trained):
    model, _, x_test, t_test = trained
    read_png(plots.plot_misclassified(model, x_test, t_test, tmp_path / "m.png", max_images=12))
    # nothing wrong: the labels the model predicts
    predicted = model.predict(x_test[:5]).argmax(axis=1)
    read_png(plots.plot_misclassified(model, x_test[:5], predicted, tmp_path / "ok.png"))


def test_confusion_matrix_plot(tmp_path, trained):
    model, _, x_test, t_test = trained
    cm = fnn.metrics.confusion_matrix(model.predict(x_test), t_test)
    image = read_png(plots.plot_confusion_matrix(cm, tmp_path / "cm.png"))
    side = 0.45 * 10 + 2.0  # inches, at 100 dpi, plus one inch for the colour bar
    assert image.shape[:2] == (round(side * 100), round((side + 1) * 100))
    names = [f"class {i}" for i in range(10)]
    other = read_png(plots.plot_confusion_matrix(cm[::-1], tmp_path / "flipped.png", class_names=names))
    assert other.shape == image.shape and not np.array_equal(other, image)  # the counts are drawn
    with pytest.raises(
        ValueError, match=r"plot_confusion_matrix: expected counts of shape \(K, K\), got shape \(2, 3\)"
    ):
        plots.plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="plot_confusion_matrix: expected 10 class names, got 2"):
        plots.plot_confusion_matrix(cm, tmp_path / "bad.png", class_names=["a", "b"])


def test_save_training_plots(tmp_path, trained):
    model, history, x_test, t_test = trained
    paths = plots.save_training_plots(model, history, x_test, t_test, tmp_path / "out")
    assert [p.name for p in paths] == ["history.png", "filters.png", "misclassified.png", "confusion.png"]
    for path in paths:
        read_png(path)


def test_cli_train_plot(tmp_path, capsys):
    from fastnn.cli import main

    assert (
        main(
            [
                "train",
                "--epochs",
                "2",
                "--quiet",
                "--validation-split",
                "0.1",
                "--plot",
                str(tmp_path / "plots"),
            ]
        )
        == 0
    )
    assert "plots:" in capsys.readouterr().out
    for name in ("history.png", "misclassified.png", "confusion.png"):  # an MLP has no conv filters
        read_png(tmp_path / "plots" / name)
    assert not (tmp_path / "plots" / "filters.png").exists()
