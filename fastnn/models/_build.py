"""What the network builders share: the Sequential they return, and checks of their arguments."""

from __future__ import annotations

import numpy as np

from ..losses import SoftmaxCrossEntropy
from ..model import Sequential

#: The per-sample shape of MNIST images, (C, H, W).
MNIST_SHAPE = (1, 28, 28)


def sequential(layers, seed, backend, dtype, input_shape=MNIST_SHAPE) -> Sequential:
    """``layers`` as a Sequential trained with softmax cross-entropy, built for ``input_shape``."""
    return Sequential(
        layers, loss=SoftmaxCrossEntropy(), backend=backend, dtype=dtype, seed=seed, input_shape=input_shape
    )


def positive_int(where: str, name: str, value) -> int:
    """``value`` as an int, or a ValueError naming ``where`` and ``name`` unless it is a positive integer."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def image_shape(where: str, in_channels, input_size) -> tuple[int, int, int]:
    """(in_channels, input_size, input_size): one square image, checked."""
    channels = positive_int(where, "in_channels", in_channels)
    size = positive_int(where, "input_size", input_size)
    return (channels, size, size)


def shape_through(where: str, layers, input_shape, smallest: int) -> tuple:
    """The shape ``layers`` give one sample of ``input_shape``; a ValueError naming the
    builder ``where`` when the images are too small for them (``smallest``: the least size)."""
    shape = tuple(input_shape)
    try:
        for layer in layers:
            shape = tuple(layer.output_shape(shape))
    except ValueError as error:
        raise ValueError(
            f"{where}: input_size {input_shape[1]} is too small for its pooling stages; "
            f"use images of at least {smallest}x{smallest} (upsample or pad them) ({error})"
        ) from None
    return shape
