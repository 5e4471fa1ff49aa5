"""What a dashboard frame holds, computed from the model and its held-out data.

Every function here reads the model through its public attributes (``layers``,
``params``, ``grads``, ``input_shape``, ``evaluate``, ``loss_fn``) and returns JSON data:
numbers, lists and strings, images as base64 text of uint8 pixels. None of them keeps a
reference to an array the training step writes to, so a frame can be sent from another
thread while training goes on.
"""

from __future__ import annotations

import base64
import math

import numpy as np

from ..layers import Conv2D, Dense
from ..metrics import confusion_matrix

__all__ = [
    "Series",
    "held_out_report",
    "image_shape",
    "layer_norms",
    "leaf_layers",
    "first_layer_images",
    "pack_images",
]


class Series:
    """Points (x, y1, y2, ...) kept to fewer than ``max_points`` (even): when full,
    neighbours are averaged in pairs and later points arrive averaged over twice as many
    appends (the last point may be an average of fewer, still being filled).

    Appending costs a few additions, so a step can record its loss every time.
    """

    def __init__(self, columns: tuple, max_points: int = 1000):
        if max_points < 2 or max_points % 2:
            raise ValueError(f"Series: max_points must be an even number >= 2, got {max_points}")
        self.columns = tuple(columns)
        self.max_points = max_points
        self.points: list[list] = []
        self.stride = 1  # raw points averaged into one kept point
        self._sum = [0.0] * len(self.columns)
        self._count = 0

    def append(self, *values) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"Series: expected {len(self.columns)} values {self.columns}, got {len(values)}")
        for i, value in enumerate(values):
            self._sum[i] += value
        self._count += 1
        if self._count == self.stride:
            self.points.append([s / self._count for s in self._sum])
            self._sum = [0.0] * len(self.columns)
            self._count = 0
            if len(self.points) == self.max_points:
                self.points = [
                    [(a + b) / 2 for a, b in zip(first, second)]
                    for first, second in zip(self.points[0::2], self.points[1::2])
                ]
                self.stride *= 2

    def to_dict(self) -> dict:
        """{column: [values]}, the kept points and the ones still being averaged."""
        points = list(self.points)
        if self._count:
            points.append([s / self._count for s in self._sum])
        return {name: [_finite(point[i]) for point in points] for i, name in enumerate(self.columns)}


def _finite(value: float) -> float | None:
    """JSON has no NaN or Inf: they travel as null (a gap in a chart)."""
    value = float(value)
    return value if math.isfinite(value) else None


# -- layers --------------------------------------------------------------------


def leaf_layers(layers, prefix: str = "") -> list[tuple[str, object]]:
    """(name, layer) of every layer holding parameters, blocks opened, in buffer order;
    the name is its index path and description, e.g. ``"0 Conv2D(1->30, 5x5)"`` or
    ``"3.body.1 Dense(64->64)"``."""
    found = []
    for index, layer in enumerate(layers):
        path = f"{prefix}{index}"
        parts = getattr(layer, "parts", None)
        if callable(parts):
            for part, sublayers in parts().items():
                found += leaf_layers(sublayers, f"{path}.{part}.")
        elif layer.params:
            found.append((f"{path} {layer.describe()}", layer))
    return found


def layer_norms(layers) -> list[dict]:
    """Per layer with parameters: ``{"name", "weight_norm", "grad_norm"}``, the L2 norms of
    all its parameters (W and b together) and of their gradients from the last step,
    ``sqrt(sum over its tensors of ||p||^2)``, computed in float64."""
    norms = []
    for name, layer in leaf_layers(layers):
        weights = sum(_squared_norm(p) for p in layer.params.values())
        grads = sum(_squared_norm(g) for g in layer.grads.values())
        norms.append(
            {"name": name, "weight_norm": _finite(math.sqrt(weights)), "grad_norm": _finite(math.sqrt(grads))}
        )
    return norms


def _squared_norm(array: np.ndarray) -> float:
    # not a BLAS dot: called between two steps, BLAS's threads would wait on the kernels' ones
    return float(np.square(array, dtype=np.float64).sum())


# -- images --------------------------------------------------------------------


def image_shape(sample_shape) -> tuple[int, int, int] | None:
    """(height, width, channels) when samples of ``sample_shape`` are images: (1, H, W)
    or (3, H, W), (H, W), or D features where D is a square (a flattened greyscale image);
    else None."""
    if sample_shape is None:
        return None
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape[1], shape[2], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side > 1 and side * side == shape[0]:
            return side, side, 1
    return None


def pack_images(images: np.ndarray) -> str:
    """Images (K, H, W, channels), each scaled on its own from its minimum (0) to its
    maximum (255), as base64 text of the uint8 pixels in that order."""
    images = np.asarray(images, dtype=np.float64)
    if images.size == 0:
        return ""
    axes = tuple(range(1, images.ndim))
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    scaled = (images - low) / np.where(span > 0, span, 1.0)
    pixels = np.rint(np.nan_to_num(scaled) * 255).astype(np.uint8)
    return base64.b64encode(pixels.tobytes()).decode("ascii")


def _to_hwc(samples: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Samples (K, ...) as images (K, H, W, C); three channels stay in colour, others show
    their first channel."""
    height, width, channels = shape
    samples = samples.reshape(len(samples), -1)
    if channels == 3:
        return samples.reshape(len(samples), 3, height, width).transpose(0, 2, 3, 1)
    return samples[:, : height * width].reshape(len(samples), height, width, 1)


def first_layer_images(layers, input_shape, max_images: int = 32) -> dict | None:
    """The first layer with parameters drawn as images, or None when it cannot be drawn.

    A Conv2D's filters W (F, C, KH, KW) are F images of KH x KW (in colour when C = 3,
    else their first channel); a Dense layer's weights W (D, M), when the input is an
    image of D pixels (:func:`image_shape`), are M images, column j reshaped to the input.
    At most ``max_images`` are drawn. Returns ``{"layer", "kind", "count", "shown",
    "height", "width", "channels", "data"}`` (``data``: :func:`pack_images`).
    """
    leaves = leaf_layers(layers)
    if not leaves:
        return None
    name, layer = leaves[0]
    W = layer.params.get("W")
    if isinstance(layer, Conv2D) and W is not None and W.ndim == 4:
        count, channels, height, width = W.shape
        shown = np.asarray(W[:max_images], dtype=np.float64)
        channels = 3 if channels == 3 else 1
        images = _to_hwc(shown, (height, width, channels)) if channels == 3 else shown[:, 0, :, :, None]
        kind = "conv"
    elif isinstance(layer, Dense) and W is not None and W.ndim == 2:
        shape = image_shape(input_shape)
        if shape is None or shape[0] * shape[1] * shape[2] != W.shape[0]:
            return None
        count = W.shape[1]
        height, width, channels = shape
        images = _to_hwc(np.asarray(W[:, :max_images], dtype=np.float64).T, shape)
        kind = "dense"
    else:
        return None
    return {
        "layer": name,
        "kind": kind,
        "count": int(count),
        "shown": int(len(images)),
        "height": int(height),
        "width": int(width),
        "channels": int(channels),
        "data": pack_images(images),
    }


# -- the held-out samples ------------------------------------------------------------


def _outputs(y, t):
    """evaluate's extra metric that hands back the outputs themselves."""
    return y


def held_out_report(model, x: np.ndarray, t: np.ndarray, max_images: int = 24) -> dict:
    """Loss, accuracy, confusion matrix and misclassified samples of ``model`` on (x, t).

    One pass of ``model.evaluate`` (inference mode) gives the loss, the accuracy and the
    outputs; the predicted classes are ``model.loss_fn.classes(outputs)``. The confusion
    matrix is :func:`fastnn.metrics.confusion_matrix` of them (rows true, columns
    predicted), None for targets that are not classes. The first ``max_images``
    misclassified samples come as images when the inputs are images.
    """
    result = model.evaluate(x, t, metrics=[_outputs])
    report = {
        "loss": _finite(result["loss"]),
        "accuracy": _finite(result["accuracy"]),
        "samples": int(len(x)),
    }
    outputs = result["_outputs"]
    predicted = np.asarray(model.loss_fn.classes(outputs))
    if predicted.ndim != 1:  # several labels per sample: no single class to confuse
        report.update(confusion=None, misclassified=None)
        return report
    t = np.asarray(t)
    truth = t if t.ndim == 1 else (t.argmax(axis=1) if t.shape[1] > 1 else t[:, 0])
    truth = np.rint(truth).astype(np.int64)
    predicted = predicted.astype(np.int64)
    classes = outputs.shape[1] if outputs.ndim == 2 and outputs.shape[1] > 1 else 2
    report["confusion"] = confusion_matrix(predicted, truth, num_classes=classes).tolist()
    wrong = np.flatnonzero(predicted != truth)
    shown = wrong[:max_images]
    shape = image_shape(x.shape[1:])
    misclassified = {
        "count": int(len(wrong)),
        "index": shown.tolist(),
        "true": truth[shown].tolist(),
        "predicted": predicted[shown].tolist(),
        "height": None,
        "width": None,
        "channels": None,
        "data": None,
    }
    if shape is not None and len(shown):
        misclassified.update(
            height=shape[0],
            width=shape[1],
            channels=shape[2],
            data=pack_images(_to_hwc(np.asarray(x[shown], dtype=np.float64), shape)),
        )
    report["misclassified"] = misclassified
    return report
