"""ResNet for CIFAR-size images (He et al. 2016, section 4.2), built from ``Residual`` blocks."""

from __future__ import annotations

from ..layers import BatchNorm, Conv2D, Dense, GlobalAvgPool2D, ReLU, Residual
from ..model import Sequential
from ._build import image_shape, positive_int, sequential

#: Depths of the paper's CIFAR table: 6n + 2 with n blocks per stage.
PAPER_DEPTHS = (20, 32, 44, 56, 110)


def blocks_per_stage(depth) -> int:
    """n = (depth - 2) / 6; a ValueError naming resnet unless depth = 6n + 2, n >= 1."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"resnet: depth must be 6n + 2 for n >= 1 blocks per stage (8, 14, "
            f"{', '.join(map(str, PAPER_DEPTHS))}, ...), got {depth!r}"
        )
    return (depth - 2) // 6


def basic_block(in_channels: int, out_channels: int, stride: int) -> list:
    """[Residual(body, shortcut), ReLU]: y = relu(body(x) + shortcut(x)).

    body = Conv 3x3 (stride) -> BatchNorm -> ReLU -> Conv 3x3 -> BatchNorm;
    shortcut = the identity when the shape is kept, else the projection
    Conv 1x1 (stride) -> BatchNorm (the paper's option B).
    (C, H, W) -> (out_channels, ceil(H / stride), ceil(W / stride)).
    """
    body = [
        Conv2D(in_channels, out_channels, 3, stride=stride, pad=1),
        BatchNorm(out_channels),
        ReLU(),
        Conv2D(out_channels, out_channels, 3, pad=1),
        BatchNorm(out_channels),
    ]
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = [Conv2D(in_channels, out_channels, 1, stride=stride), BatchNorm(out_channels)]
    return [Residual(body, shortcut=shortcut), ReLU()]


def resnet(
    depth: int = 20,
    width: int = 16,
    in_channels: int = 3,
    num_classes: int = 10,
    seed: int | None = None,
    backend: str = "numba",
    dtype: str = "float32",
    input_size: int = 32,
) -> Sequential:
    """He et al.'s CIFAR ResNet: ``depth`` = 6n + 2 weighted layers (20, 32, 44, 56, 110).

    Layers (n = (depth - 2) / 6 basic blocks per stage, see :func:`basic_block`):

    ====================================  ==================  ==================
    layers                                32x32 input         28x28 input
    ====================================  ==================  ==================
    Conv 3x3 (in_channels->width), BN,    (width, 32, 32)     (width, 28, 28)
    ReLU
    stage 1: n blocks at width            (width, 32, 32)     (width, 28, 28)
    stage 2: n blocks at 2 width, the     (2 width, 16, 16)   (2 width, 14, 14)
    first with stride 2 and a 1x1 stride
    2 Conv + BN projection shortcut
    stage 3: n blocks at 4 width, as 2    (4 width, 8, 8)     (4 width, 7, 7)
    GlobalAvgPool2D                       (4 width,)          (4 width,)
    Dense(4 width->num_classes)           (num_classes,)      (num_classes,)
    ====================================  ==================  ==================

    Any image size works (a stride-2 stage maps H to ceil(H / 2), global pooling takes
    the rest); ``input_size`` sets the model's ``input_shape``, (in_channels, input_size,
    input_size). He initialisation; the convolutions keep their bias (fastnn's Conv2D
    always has one; before a BatchNorm it has no effect on the output and a zero gradient).
    ResNet-20 (width 16, 3 input channels, 10 classes) has 273,258 parameters (0.27M in
    the paper's table).
    """
    n = blocks_per_stage(depth)
    width = positive_int("resnet", "width", width)
    num_classes = positive_int("resnet", "num_classes", num_classes)
    shape = image_shape("resnet", in_channels, input_size)
    layers = [Conv2D(shape[0], width, 3, pad=1), BatchNorm(width), ReLU()]
    channels = width
    for stage in range(3):
        out = width * 2**stage
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            layers += basic_block(channels, out, stride)
            channels = out
    layers += [GlobalAvgPool2D(), Dense(channels, num_classes)]
    return sequential(layers, seed, backend, dtype, shape)
