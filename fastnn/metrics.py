"""Metrics of a network's predictions against the targets, as scikit-learn defines them.

Classification metrics take ``(predictions, targets)``. Predictions are class indices
(N,) of an integer dtype, or scores (N, C) (logits or probabilities), whose
``argmax(axis=1)`` is the predicted class. Targets are class indices (N,) (or (N, 1)),
or one-hot rows (N, C). The classes are ``0 .. num_classes - 1``; ``num_classes``
defaults to C of the scores or one-hot targets, else to the largest label + 1.

    fnn.metrics.accuracy(model.predict(x), t)
    fnn.metrics.f1_score(model.predict_classes(x), t, average="macro")
    fnn.metrics.confusion_matrix(pred, t)       # rows: true class, columns: predicted

Per-class precision, recall and F1 divide by zero for a class never predicted or never
present; that class scores 0, with no warning (scikit-learn's ``zero_division=0``).

Regression metrics take outputs and targets of one shape (or the same number of values
per sample): :func:`mean_squared_error` is the plain mean of the squared differences,
unlike :class:`fastnn.losses.MeanSquaredError`, whose value is half the sum of squares
per sample, averaged over the batch.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "AVERAGES",
    "NAMED_METRICS",
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "count_correct",
    "f1_score",
    "mean_absolute_error",
    "mean_squared_error",
    "precision",
    "r2_score",
    "recall",
    "report_from_confusion_matrix",
    "top_k_accuracy",
]

AVERAGES = (None, "macro", "micro", "weighted")


def count_correct(y: np.ndarray, t: np.ndarray) -> int:
    """Correct predictions in a batch.

    With several outputs per sample the prediction is ``y.argmax(axis=1)``, compared
    with class indices t (N,) or the argmax of one-hot t (N, C); with one output it is
    ``y > 0.5``, compared with t rounded to 0 or 1.
    """
    if y.ndim == 2 and y.shape[1] > 1:
        predicted = y.argmax(axis=1)
        truth = t if t.ndim == 1 else t.argmax(axis=1)
    else:
        predicted = (y.reshape(len(y), -1)[:, 0] > 0.5).astype(np.int64)
        truth = np.rint(t.reshape(len(t), -1)[:, 0]).astype(np.int64)
    return int(np.count_nonzero(predicted == truth))


# -- reading predictions and targets ------------------------------------------------


def _predicted_classes(where: str, predictions) -> tuple[np.ndarray, int | None]:
    """(class indices (N,) int64, C of the scores or None) from indices (N,) or scores (N, C)."""
    p = np.asarray(predictions)
    if p.ndim == 2 and p.shape[1] > 1 and p.dtype.kind in "fiu":
        return p.argmax(axis=1), p.shape[1]
    if p.ndim == 1 and p.dtype.kind in "iub":
        return p.astype(np.int64), None
    if p.ndim == 2 and p.shape[1] == 1:
        hint = (
            "one column of scores does not say where the classes split (probabilities at 0.5, "
            "logits at 0): pass class indices, e.g. model.predict_classes(x)"
        )
    elif p.ndim == 1:
        hint = f"class indices must be integers, not {p.dtype}: pass model.predict_classes(x) or scores"
    else:
        hint = "pass model.predict(x) or model.predict_classes(x)"
    raise ValueError(
        f"{where}: expected predictions as class indices (N,) or scores (N, C), "
        f"got shape {p.shape} and dtype {p.dtype}; {hint}"
    )


def _true_classes(where: str, targets, n: int) -> tuple[np.ndarray, int | None]:
    """(class indices (N,) int64, C of one-hot targets or None) from indices or one-hot rows."""
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dtype.kind not in "fiub" or t.ndim not in (1, 2):
        raise ValueError(
            f"{where}: expected targets as class indices (N,) or one-hot rows (N, C), "
            f"got shape {t.shape} and dtype {t.dtype}"
        )
    if len(t) != n:
        raise ValueError(f"{where}: the predictions hold {n} samples but the targets {len(t)}; give the same")
    if t.ndim == 2:
        return t.argmax(axis=1), t.shape[1]
    if t.dtype.kind == "f":
        if not np.all(t == np.rint(t)):
            raise ValueError(f"{where}: class-index targets must be whole numbers, got {t.dtype} fractions")
        t = np.rint(t)
    return t.astype(np.int64), None


def _labels(where: str, predictions, targets, num_classes: int | None = None):
    """(predicted, true, K): class indices (N,) each and the number of classes K."""
    predicted, score_width = _predicted_classes(where, predictions)
    truth, onehot_width = _true_classes(where, targets, len(predicted))
    if num_classes is None:
        widths = [w for w in (score_width, onehot_width) if w is not None]
        largest = max(int(predicted.max(initial=-1)), int(truth.max(initial=-1)))
        num_classes = max(widths) if widths else max(largest + 1, 1)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"{where}: num_classes must be a positive integer, got {num_classes!r}")
    for name, labels in (("predicted", predicted), ("true", truth)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{where}: expected {name} classes in [0, {num_classes}), "
                f"got labels in [{labels.min()}, {labels.max()}]; give num_classes to cover them"
            )
    return predicted, truth, int(num_classes)


# -- classification --------------------------------------------------------------------


def accuracy(predictions, targets, num_classes: int | None = None) -> float:
    """The fraction of samples whose predicted class is the true one: mean(pred == t).

    ``num_classes``, when given, also checks that every label lies in [0, num_classes).
    """
    predicted, truth, _ = _labels("accuracy", predictions, targets, num_classes)
    if predicted.size == 0:
        raise ValueError("accuracy: no samples (the predictions are empty)")
    return float(np.mean(predicted == truth))


def top_k_accuracy(scores, targets, k: int = 5) -> float:
    """The fraction of samples whose true class is among the ``k`` highest of its scores (N, C).

    With k >= C every sample counts as correct.
    """
    s = np.asarray(scores)
    if s.ndim != 2 or s.dtype.kind not in "fiu":
        raise ValueError(
            f"top_k_accuracy: expected scores of shape (N, C), got shape {s.shape} and dtype {s.dtype} "
            "(class indices hold no ranking: pass model.predict(x))"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"top_k_accuracy: k must be a positive integer, got {k!r}")
    _, truth, _ = _labels("top_k_accuracy", s, targets)
    if len(truth) == 0:
        raise ValueError("top_k_accuracy: no samples (the scores are empty)")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == truth[:, None], axis=1)))


def confusion_matrix(predictions, targets, num_classes: int | None = None) -> np.ndarray:
    """Counts (K, K) int64: entry [i, j] is the number of samples of true class i predicted as j.

    Rows are true classes and columns predicted ones, as in scikit-learn.
    """
    return _confusion("confusion_matrix", predictions, targets, num_classes)


def _confusion(where: str, predictions, targets, num_classes) -> np.ndarray:
    predicted, truth, k = _labels(where, predictions, targets, num_classes)
    return np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k).astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _scores(where: str, predictions, targets, average, num_classes, which: str):
    """precision, recall or F1 (``which``) per class (K,), or averaged as ``average`` says."""
    if average not in AVERAGES:
        raise ValueError(f"{where}: average must be one of {AVERAGES}, got {average!r}")
    cm = _confusion(where, predictions, targets, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)  # tp + fp, per class
    support = cm.sum(axis=1).astype(np.float64)  # tp + fn, per class
    if average == "micro":
        tp, predicted, support = tp.sum(), predicted.sum(), support.sum()
    if which == "precision":
        value = _ratio(tp, predicted)
    elif which == "recall":
        value = _ratio(tp, support)
    else:
        value = _ratio(2 * tp, predicted + support)
    if average is None or average == "micro":
        return value if average is None else float(value)
    if average == "macro":
        return float(value.mean())
    return float(_ratio(np.sum(value * support), np.sum(support)))


def precision(predictions, targets, average: str | None = None, num_classes: int | None = None):
    """tp / (tp + fp) per class (K,) float64, or one float averaged over the classes.

    ``average``: None (per class), "macro" (the plain mean over the K classes),
    "micro" (from the summed counts; equal to the accuracy) or "weighted" (the mean
    weighted by each class's support, its count of true samples).
    """
    return _scores("precision", predictions, targets, average, num_classes, "precision")


def recall(predictions, targets, average: str | None = None, num_classes: int | None = None):
    """tp / (tp + fn) per class (K,) float64, or averaged as in :func:`precision`."""
    return _scores("recall", predictions, targets, average, num_classes, "recall")


def f1_score(predictions, targets, average: str | None = None, num_classes: int | None = None):
    """2 tp / (2 tp + fp + fn) per class (K,) float64 (the harmonic mean of precision and
    recall), or averaged as in :func:`precision` (macro: the mean of the per-class F1)."""
    return _scores("f1_score", predictions, targets, average, num_classes, "f1")


def classification_report(predictions, targets, class_names=None, num_classes: int | None = None) -> str:
    """A text table: precision, recall, F1 and support per class, then accuracy and the
    macro and weighted averages (the layout of scikit-learn's report)."""
    cm = _confusion("classification_report", predictions, targets, num_classes)
    return report_from_confusion_matrix(cm, class_names)


def report_from_confusion_matrix(cm, class_names=None) -> str:
    """:func:`classification_report` from a confusion matrix (K, K) (rows true, columns predicted)."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.dtype.kind not in "iu":
        raise ValueError(
            "classification_report: expected integer counts of shape (K, K), "
            f"got shape {cm.shape}, dtype {cm.dtype}"
        )
    k = len(cm)
    names = [str(i) for i in range(k)] if class_names is None else [str(name) for name in class_names]
    if len(names) != k:
        raise ValueError(f"classification_report: expected {k} class names, got {len(names)}")
    tp, predicted, support = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    rows = np.stack([_ratio(tp, predicted), _ratio(tp, support), _ratio(2 * tp, predicted + support)], 1)
    total = int(support.sum())
    width = max(12, *(len(name) for name in names))
    lines = [f"{'':>{width}}  precision     recall   f1-score    support", ""]
    for name, (p, r, f), s in zip(names, rows, support):
        lines.append(f"{name:>{width}}  {p:9.4f}  {r:9.4f}  {f:9.4f}  {int(s):9d}")
    lines.append("")
    lines.append(f"{'accuracy':>{width}}  {'':9}  {'':9}  {_ratio(tp.sum(), total):9.4f}  {total:9d}")
    weights = support / total if total else np.zeros(k)
    lines.append(f"{'macro avg':>{width}}  " + "  ".join(f"{v:9.4f}" for v in rows.mean(0)) + f"  {total:9d}")
    lines.append(
        f"{'weighted avg':>{width}}  " + "  ".join(f"{v:9.4f}" for v in weights @ rows) + f"  {total:9d}"
    )
    return "\n".join(lines)


# -- regression ----------------------------------------------------------------------


def _regression_pair(where: str, outputs, targets) -> tuple[np.ndarray, np.ndarray]:
    """(y, t) as float64 arrays (N, D) of one shape."""
    y = np.asarray(outputs)
    t = np.asarray(targets)
    for name, a in (("outputs", y), ("targets", t)):
        if a.dtype.kind not in "fiub" or a.ndim == 0:
            raise ValueError(
                f"{where}: expected numeric {name} with a batch axis, got shape {a.shape}, dtype {a.dtype}"
            )
    if len(y) != len(t) or y.size != t.size:
        raise ValueError(
            f"{where}: outputs of shape {y.shape} and targets of shape {t.shape} do not match; "
            "expected the same number of samples and of values per sample"
        )
    if len(y) == 0:
        raise ValueError(f"{where}: no samples (the outputs are empty)")
    return y.reshape(len(y), -1).astype(np.float64), t.reshape(len(t), -1).astype(np.float64)


def mean_squared_error(outputs, targets) -> float:
    """mean((y - t)**2) over every value (scikit-learn's; the loss is 0.5 * sum per sample)."""
    y, t = _regression_pair("mean_squared_error", outputs, targets)
    return float(np.mean((y - t) ** 2))


def mean_absolute_error(outputs, targets) -> float:
    """mean(|y - t|) over every value."""
    y, t = _regression_pair("mean_absolute_error", outputs, targets)
    return float(np.mean(np.abs(y - t)))


def r2_score(outputs, targets) -> float:
    """The coefficient of determination 1 - sum((t - y)**2) / sum((t - mean(t))**2), per output
    column and then averaged over the columns, as scikit-learn's default.

    A constant target column scores 1 when predicted exactly, else 0 (scikit-learn's
    ``force_finite``).
    """
    y, t = _regression_pair("r2_score", outputs, targets)
    residual = np.sum((t - y) ** 2, axis=0)
    total = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    per_column = np.where(total > 0, 1 - _ratio(residual, total), np.where(residual == 0, 1.0, 0.0))
    return float(per_column.mean())


#: The names ``Sequential.evaluate(metrics=[...])`` knows: name -> (function, what it reads).
#: "classes" metrics get the predicted class indices, "scores" ones the network's outputs,
#: "outputs" ones (regression) the outputs and targets of the same shape.
NAMED_METRICS = {
    "accuracy": (accuracy, "classes"),
    "top_k_accuracy": (top_k_accuracy, "scores"),
    "precision": (precision, "classes"),
    "recall": (recall, "classes"),
    "f1": (f1_score, "classes"),
    "confusion_matrix": (confusion_matrix, "classes"),
    "mse": (mean_squared_error, "outputs"),
    "mae": (mean_absolute_error, "outputs"),
    "r2": (r2_score, "outputs"),
}
