"""AlexNet (Krizhevsky et al. 2012) scaled to 28x28 and 32x32 images."""

from __future__ import annotations

from ..layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from ..model import Sequential
from ._build import image_shape, positive_int, sequential, shape_through


def _overlapping_pool():
    """AlexNet's overlapping pooling: 3x3 windows at stride 2 (here padded by 1, so small
    maps keep a pixel: H -> ceil(H / 2))."""
    return MaxPool2D(3, stride=2, pad=1)


def alexnet(
    in_channels: int = 3,
    num_classes: int = 10,
    seed: int | None = None,
    backend: str = "numba",
    dtype: str = "float32",
    input_size: int = 32,
    dropout: float = 0.5,
) -> Sequential:
    """AlexNet's design at CIFAR/MNIST scale: a large strided first kernel, overlapping
    pooling, three 3x3 convolutions, and a two-layer Dense classifier with dropout.

    ==============================================  ============  ============
    layers                                          32x32 input   28x28 input
    ==============================================  ============  ============
    Conv 5x5 stride 2 pad 2 (in->64), ReLU           (64, 16, 16)  (64, 14, 14)
    MaxPool 3x3 stride 2 pad 1                       (64, 8, 8)    (64, 7, 7)
    Conv 3x3 pad 1 (64->192), ReLU                   (192, 8, 8)   (192, 7, 7)
    MaxPool 3x3 stride 2 pad 1                       (192, 4, 4)   (192, 4, 4)
    Conv 3x3 (192->256), ReLU, Conv 3x3 (256->256),  (192, 4, 4)   (192, 4, 4)
    ReLU, Conv 3x3 (256->192), ReLU (pad 1)
    MaxPool 3x3 stride 2 pad 1                       (192, 2, 2)   (192, 2, 2)
    Flatten, Dropout, Dense(768->512), ReLU,         (num_classes,)
    Dropout, Dense(512->512), ReLU, Dense(512->num_classes)
    ==============================================  ============  ============

    The widths are AlexNet's (96, 256, 384, 384, 256) scaled by about 2/3, the classifier's
    4096 units cut to 512; local response normalisation is left out (later work found it
    does not help). He initialisation; 2,252,426 parameters for 3x32x32 input.
    """
    where = "alexnet"
    shape = image_shape(where, in_channels, input_size)
    num_classes = positive_int(where, "num_classes", num_classes)
    features = [
        Conv2D(shape[0], 64, 5, stride=2, pad=2),
        ReLU(),
        _overlapping_pool(),
        Conv2D(64, 192, 3, pad=1),
        ReLU(),
        _overlapping_pool(),
        Conv2D(192, 256, 3, pad=1),
        ReLU(),
        Conv2D(256, 256, 3, pad=1),
        ReLU(),
        Conv2D(256, 192, 3, pad=1),
        ReLU(),
        _overlapping_pool(),
    ]
    out = shape_through(where, features, shape, 1)
    flat = out[0] * out[1] * out[2]
    classifier = [
        Flatten(),
        Dropout(dropout),
        Dense(flat, 512),
        ReLU(),
        Dropout(dropout),
        Dense(512, 512),
        ReLU(),
        Dense(512, num_classes),
    ]
    return sequential(features + classifier, seed, backend, dtype, shape)
