"""VGG (Simonyan & Zisserman 2015) for CIFAR-size images: stacks of 3x3 convolutions and 2x2 max pooling."""

from __future__ import annotations

from ..layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from ..model import Sequential
from ._build import image_shape, positive_int, sequential, shape_through


def vgg(
    widths=(32, 64, 128),
    convs_per_stage: int = 2,
    hidden: int = 256,
    batchnorm: bool = False,
    dropout: float = 0.5,
    in_channels: int = 3,
    num_classes: int = 10,
    seed: int | None = None,
    backend: str = "numba",
    dtype: str = "float32",
    input_size: int = 32,
) -> Sequential:
    """A VGG small enough to train on a laptop CPU in minutes an epoch.

    One stage per entry of ``widths``: ``convs_per_stage`` times Conv 3x3 pad 1
    (-> BatchNorm with ``batchnorm``) -> ReLU, then MaxPool 2x2; then the classifier
    Flatten -> Dense(F->hidden) -> ReLU -> Dropout(dropout) -> Dense(hidden->num_classes),
    with F = widths[-1] * (input_size // 2**stages)**2.

    Defaults (32-32-pool-64-64-pool-128-128-pool, Dense 256), per stage:
    32x32 input: (32, 16, 16) -> (64, 8, 8) -> (128, 4, 4), F = 2048, 814,122 parameters;
    28x28 input: (32, 14, 14) -> (64, 7, 7) -> (128, 3, 3), F = 1152.
    Images need at least 2**stages pixels a side (8 by default). He initialisation.
    """
    where = "vgg"
    shape = image_shape(where, in_channels, input_size)
    num_classes = positive_int(where, "num_classes", num_classes)
    hidden = positive_int(where, "hidden", hidden)
    repeats = positive_int(where, "convs_per_stage", convs_per_stage)
    widths = [positive_int(where, "widths[i]", w) for w in widths]
    if not widths:
        raise ValueError("vgg: widths must name at least one stage, e.g. (32, 64, 128); got ()")
    features, channels = [], shape[0]
    for width in widths:
        for _ in range(repeats):
            features.append(Conv2D(channels, width, 3, pad=1))
            features += [BatchNorm(width)] if batchnorm else []
            features.append(ReLU())
            channels = width
        features.append(MaxPool2D(2, stride=2))
    out = shape_through(where, features, shape, 2 ** len(widths))
    flat = out[0] * out[1] * out[2]
    classifier = [Flatten(), Dense(flat, hidden), ReLU(), Dropout(dropout), Dense(hidden, num_classes)]
    return sequential(features + classifier, seed, backend, dtype, shape)
