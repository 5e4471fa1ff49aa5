"""Training plots as PNG files, with matplotlib (``pip install 'fastnn[viz]'``).

    fnn.plots.plot_history(history, "history.png")          # loss and accuracy per epoch
    fnn.plots.plot_filters(model, "filters.png")            # the first conv layer's filters
    fnn.plots.plot_misclassified(model, x_test, t_test, "misclassified.png")
    fnn.plots.plot_confusion_matrix(fnn.metrics.confusion_matrix(pred, t), "confusion.png")
    fnn.plots.save_training_plots(model, history, x_test, t_test, "plots/")   # all four
    fnn.plots.plot_lr_find(fnn.tune.lr_find(model, x, t), "lr_find.png")   # the range test

Figures are drawn on matplotlib's Agg canvas directly, never through pyplot, so no
window opens and no global backend is switched. Each function returns the path written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .metrics import confusion_matrix

__all__ = [
    "plot_confusion_matrix",
    "plot_history",
    "plot_filters",
    "plot_misclassified",
    "save_training_plots",
    "plot_lr_find",
]


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("fastnn.plots needs matplotlib: pip install 'fastnn[viz]'") from error
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def plot_history(history, path) -> Path:
    """Loss (left) and accuracy (right) per epoch, train and validation."""
    epochs = len(history["loss"])
    if epochs == 0:
        raise ValueError("plot_history: the history has no finished epoch")
    x = np.arange(1, epochs + 1)
    figure = _figure(10, 4)
    for position, metric in ((1, "loss"), (2, "accuracy")):
        axes = figure.add_subplot(1, 2, position)
        axes.plot(x, history[metric], "o-", label=f"train {metric}")
        if history.get(f"val_{metric}"):
            axes.plot(x, history[f"val_{metric}"], "s-", label=f"validation {metric}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(metric)
        axes.grid(True, alpha=0.3)
        axes.legend()
        if epochs <= 20:
            axes.set_xticks(x)
    figure.tight_layout()
    return _save(figure, path)


def _first_conv_weights(source) -> np.ndarray:
    if isinstance(source, np.ndarray):
        W = source
    else:
        from .layers import Conv2D

        layers = getattr(source, "layers", [source])
        conv = next((layer for layer in layers if isinstance(layer, Conv2D)), None)
        if conv is None:
            raise ValueError("plot_filters: the model has no Conv2D layer")
        W = conv.params["W"]
    if W.ndim != 4:
        raise ValueError(f"plot_filters: expected filters of shape (F, C, KH, KW), got {W.shape}")
    return np.asarray(W, dtype=np.float64)


def plot_filters(source, path, columns: int | None = None) -> Path:
    """The filters of the first Conv2D layer of a model (or a layer, or W (F, C, KH, KW)).

    One cell per filter, grey scale from its minimum (black) to its maximum (white);
    three-channel filters are shown in colour, others by their first channel.
    """
    W = _first_conv_weights(source)
    count = W.shape[0]
    columns = columns or min(count, max(1, math.ceil(math.sqrt(count * 1.5))))
    rows = math.ceil(count / columns)
    figure = _figure(columns * 0.9 + 0.4, rows * 0.9 + 0.6)
    figure.suptitle(f"first-layer filters ({count} x {W.shape[1]} x {W.shape[2]} x {W.shape[3]})")
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1)
        w = W[index]
        if w.shape[0] == 3:
            image = np.transpose(w, (1, 2, 0))
            span = image.max() - image.min()
            axes.imshow((image - image.min()) / (span if span > 0 else 1), interpolation="nearest")
        else:
            axes.imshow(w[0], cmap="gray", interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    return _save(figure, path)


def _image(sample: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A displayable image and colour map for one sample."""
    if sample.ndim == 3 and sample.shape[0] == 3:
        image = np.transpose(sample, (1, 2, 0))
        return (image - image.min()) / max(image.max() - image.min(), 1e-12), None
    if sample.ndim == 3:
        return sample[0], "gray"
    if sample.ndim == 2:
        return sample, "gray"
    side = int(round(math.sqrt(sample.size)))
    if side * side == sample.size:
        return sample.reshape(side, side), "gray"
    return sample.reshape(1, -1), "gray"


def plot_misclassified(
    model, x, t, path, max_images: int = 36, labels=None, batch_size: int | None = None
) -> Path:
    """A grid of the first ``max_images`` misclassified samples, titled "pred P / true T".

    ``labels`` (a sequence of class names) replaces the class indices in the titles.
    """
    t = np.asarray(t)
    truth = t if t.ndim == 1 else t.argmax(axis=1)
    predicted = model.predict(x, batch_size=batch_size).argmax(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    shown = wrong[:max_images]
    columns = max(1, min(len(shown), 6))
    rows = max(1, math.ceil(len(shown) / columns))
    figure = _figure(columns * 1.6 + 0.4, rows * 1.8 + 0.6)
    figure.suptitle(
        f"misclassified: {len(wrong)} of {len(truth)} "
        f"({len(wrong) / max(len(truth), 1):.2%}); first {len(shown)} shown"
    )
    name = (lambda k: str(labels[k])) if labels is not None else str
    for position, index in enumerate(shown):
        axes = figure.add_subplot(rows, columns, position + 1)
        image, cmap = _image(np.asarray(x[index], dtype=np.float64))
        axes.imshow(image, cmap=cmap, interpolation="nearest")
        axes.set_title(
            f"pred {name(predicted[index])} / true {name(truth[index])}", fontsize=8, color="tab:red"
        )
        axes.set_xticks([])
        axes.set_yticks([])
    if len(shown) == 0:
        axes = figure.add_subplot(1, 1, 1)
        axes.text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
        axes.set_axis_off()
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    return _save(figure, path)


def plot_confusion_matrix(cm, path, class_names=None, max_annotated: int = 30) -> Path:
    """The confusion matrix (K, K) as a heat map: rows are true classes, columns predicted
    ones (as :func:`fastnn.metrics.confusion_matrix` counts them), each cell shaded by its
    share of its row (the recall of that true class) and labelled with its count when
    K <= ``max_annotated``."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0 or cm.dtype.kind not in "iuf":
        raise ValueError(f"plot_confusion_matrix: expected counts of shape (K, K), got shape {cm.shape}")
    k = cm.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(name) for name in class_names]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: expected {k} class names, got {len(names)}")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows != 0)
    side = max(4.0, 0.45 * k + 2.0)
    figure = _figure(side + 1.0, side)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    total = cm.sum()
    correct = np.trace(cm)
    axes.set_title(
        f"confusion matrix: {correct:,.0f} of {total:,.0f} correct ({correct / max(total, 1):.2%})"
    )
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_xticks(range(k))
    axes.set_yticks(range(k))
    axes.set_xticklabels(names, rotation=45 if max(map(len, names)) > 2 else 0)
    axes.set_yticklabels(names)
    if k <= max_annotated:
        for i in range(k):
            for j in range(k):
                colour = "white" if share[i, j] > 0.5 else "black"
                axes.text(j, i, f"{cm[i, j]:g}", ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def save_training_plots(model, history, x_test, t_test, directory) -> list[Path]:
    """Write history.png, filters.png (when the model has a Conv2D layer),
    misclassified.png and confusion.png (the test set's confusion matrix) into
    ``directory``; returns the paths written."""
    from .layers import Conv2D

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [plot_history(history, directory / "history.png")]
    if any(isinstance(layer, Conv2D) for layer in model.layers):
        paths.append(plot_filters(model, directory / "filters.png"))
    paths.append(plot_misclassified(model, x_test, t_test, directory / "misclassified.png"))
    outputs = model.predict(x_test)
    width = outputs.shape[1] if outputs.ndim == 2 and outputs.shape[1] > 1 else 2
    cm = confusion_matrix(model.loss_fn.classes(outputs), t_test, num_classes=width)
    paths.append(plot_confusion_matrix(cm, directory / "confusion.png"))
    return paths


def plot_lr_find(result, path) -> Path:
    """The learning-rate range test: loss against the rate on a log axis, the suggestion marked.

    ``result`` is what :func:`fastnn.tune.lr_find` returns: its raw ``losses`` are drawn
    faintly, its ``smoothed`` losses as the curve, and ``suggestion`` as a dashed line
    and a dot on the curve.
    """
    lrs, smoothed = np.asarray(result.lrs), np.asarray(result.smoothed)
    if lrs.size == 0:
        raise ValueError("plot_lr_find: the result has no step to draw")
    figure = _figure(7, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(lrs, result.losses, color="tab:blue", alpha=0.25, label="batch loss")
    axes.plot(lrs, smoothed, color="tab:blue", label="smoothed loss")
    at = int(np.argmin(np.abs(np.log(lrs) - math.log(result.suggestion))))
    axes.axvline(result.suggestion, color="tab:red", linestyle="--")
    axes.plot([lrs[at]], [smoothed[at]], "o", color="tab:red", label=f"suggestion {result.suggestion:.2g}")
    axes.set_xscale("log")
    # from the lowest batch loss to a little above the start: the divergence would flatten the rest
    low = float(min(np.min(result.losses), smoothed.min()))
    high = float(min(smoothed.max(), smoothed[0] + 2 * (smoothed[0] - low)))
    margin = 0.05 * (high - low) + 1e-12
    axes.set_ylim(low - margin, high + margin)
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_title("learning-rate range test")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return _save(figure, path)
