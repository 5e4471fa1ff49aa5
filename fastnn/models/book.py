"""The books' networks: Deep Learning from Scratch's MLP, SimpleConvNet and DeepConvNet, and LeNet-5.

All take images (N, 1, 28, 28) as they come from ``load_mnist`` and know it (their
``input_shape``); ``mlp`` takes any input with ``in_features`` values per sample, its
``input_shape`` when given, else the shape its first training step sees. All are
trained with softmax cross-entropy, and accept ``seed``, ``backend`` and ``dtype``.
"""

from __future__ import annotations

from ..layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Tanh
from ..model import Sequential
from ._build import MNIST_SHAPE, sequential


def _sequential(layers, seed, backend, dtype, input_shape=MNIST_SHAPE):
    return sequential(layers, seed, backend, dtype, input_shape)


def mlp(
    in_features: int = 784,
    hidden=(100, 100),
    classes: int = 10,
    init="he",
    seed: int | None = None,
    backend: str = "numba",
    dtype: str = "float32",
    input_shape=None,
) -> Sequential:
    """Flatten -> Dense(784->100) -> ReLU -> Dense(100->100) -> ReLU -> Dense(100->10).

    ``input_shape``: one sample's shape, ``in_features`` values in all (e.g. (1, 28, 28)
    or (784,)); None leaves it to the first training step.
    """
    layers = [Flatten()]
    width = in_features
    for units in hidden:
        layers += [Dense(width, units, init=init), ReLU()]
        width = units
    layers.append(Dense(width, classes, init=init))
    return _sequential(layers, seed, backend, dtype, input_shape)


def simple_convnet(
    seed: int | None = None, backend: str = "numba", dtype: str = "float32", impl: str = "auto"
) -> Sequential:
    """Deep Learning from Scratch's SimpleConvNet, He initialised.

    Conv(1->30, 5x5, pad 0) -> ReLU -> MaxPool 2x2 s2 -> Flatten -> Dense(4320->100)
    -> ReLU -> Dense(100->10).  28x28 -> 24x24 -> 12x12 (30*12*12 = 4320).
    """
    return _sequential(
        [
            Conv2D(1, 30, 5, stride=1, pad=0, impl=impl),
            ReLU(),
            MaxPool2D(2, stride=2),
            Flatten(),
            Dense(30 * 12 * 12, 100),
            ReLU(),
            Dense(100, 10),
        ],
        seed,
        backend,
        dtype,
    )


def deep_convnet(
    seed: int | None = None, backend: str = "numba", dtype: str = "float32", impl: str = "auto"
) -> Sequential:
    """Deep Learning from Scratch's DeepConvNet, He initialised.

    conv16 -> conv16 -> pool -> conv32 -> conv32 (pad 2) -> pool -> conv64 -> conv64 -> pool
    (all 3x3 stride 1, pad 1 unless noted, each followed by ReLU; pools 2x2 stride 2)
    -> Dense(1024->50) -> ReLU -> Dropout(0.5) -> Dense(50->10) -> Dropout(0.5).
    28x28 -> 14x14 -> 16x16 -> 8x8 -> 4x4 (64*4*4 = 1024).
    """

    def conv(c_in, c_out, pad=1):
        return [Conv2D(c_in, c_out, 3, stride=1, pad=pad, impl=impl), ReLU()]

    return _sequential(
        [
            *conv(1, 16),
            *conv(16, 16),
            MaxPool2D(2, stride=2),
            *conv(16, 32),
            *conv(32, 32, pad=2),
            MaxPool2D(2, stride=2),
            *conv(32, 64),
            *conv(64, 64),
            MaxPool2D(2, stride=2),
            Flatten(),
            Dense(64 * 4 * 4, 50),
            ReLU(),
            Dropout(0.5),
            Dense(50, 10),
            Dropout(0.5),
        ],
        seed,
        backend,
        dtype,
    )


def lenet5(
    seed: int | None = None,
    backend: str = "numba",
    dtype: str = "float32",
    impl: str = "auto",
    classic: bool = False,
) -> Sequential:
    """LeNet-5 for 28x28 input: with ReLU and max pooling, or as published (``classic=True``).

    Conv(1->6, 5x5, pad 2) -> act -> pool 2x2 -> Conv(6->16, 5x5) -> act -> pool 2x2
    -> Flatten -> Dense(400->120) -> act -> Dense(120->84) -> act -> Dense(84->10).
    28x28 -> 28x28 -> 14x14 -> 10x10 -> 5x5 (16*5*5 = 400); 61,706 parameters.
    act and pool: ReLU and MaxPool2D by default; with ``classic``, tanh and AvgPool2D, as in
    LeCun et al. 1998 (whose 32x32 input is MNIST's 28x28 padded by 2; its subsampling
    layers' trainable scale and the sparse C3 connections are left out, as in most copies).
    """

    def act():
        return Tanh() if classic else ReLU()

    def pool():
        return AvgPool2D(2, stride=2) if classic else MaxPool2D(2, stride=2)

    return _sequential(
        [
            Conv2D(1, 6, 5, pad=2, impl=impl),
            act(),
            pool(),
            Conv2D(6, 16, 5, impl=impl),
            act(),
            pool(),
            Flatten(),
            Dense(16 * 5 * 5, 120),
            act(),
            Dense(120, 84),
            act(),
            Dense(84, 10),
        ],
        seed,
        backend,
        dtype,
    )
