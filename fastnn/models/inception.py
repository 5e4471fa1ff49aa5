"""A small GoogLeNet (Szegedy et al. 2015) built from ``Concat`` blocks, for MNIST- and CIFAR-size images."""

from __future__ import annotations

from ..layers import BatchNorm, Concat, Conv2D, Dense, GlobalAvgPool2D, MaxPool2D, ReLU
from ..model import Sequential
from ._build import image_shape, positive_int, sequential

#: The Inception blocks of each stage: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection),
#: GoogLeNet's table 1 columns; a block's output has 1x1 + 3x3 + 5x5 + pool projection channels.
STAGES = (
    ((16, 16, 32, 8, 16, 16), (32, 32, 48, 8, 24, 16)),
    ((48, 24, 64, 8, 16, 16),),
)
STEM_WIDTH = 32


def conv_unit(in_channels: int, out_channels: int, kernel_size: int, batchnorm: bool) -> list:
    """Conv kxk (pad k // 2, size kept) -> [BatchNorm] -> ReLU."""
    conv = Conv2D(in_channels, out_channels, kernel_size, pad=kernel_size // 2)
    return [conv] + ([BatchNorm(out_channels)] if batchnorm else []) + [ReLU()]


def inception_block(in_channels: int, widths, batchnorm: bool = True) -> Concat:
    """GoogLeNet's Inception module: four branches on the same input, joined on the channels.

    widths = (c1, r3, c3, r5, c5, pp):
    [1x1 (c1)], [1x1 (r3), 3x3 (c3)], [1x1 (r5), 5x5 (c5)], [MaxPool 3x3 stride 1 pad 1, 1x1 (pp)],
    each conv followed by [BatchNorm and] ReLU. (C, H, W) -> (c1 + c3 + c5 + pp, H, W).
    """
    c1, r3, c3, r5, c5, pp = widths
    return Concat(
        [
            conv_unit(in_channels, c1, 1, batchnorm),
            conv_unit(in_channels, r3, 1, batchnorm) + conv_unit(r3, c3, 3, batchnorm),
            conv_unit(in_channels, r5, 1, batchnorm) + conv_unit(r5, c5, 5, batchnorm),
            [MaxPool2D(3, stride=1, pad=1)] + conv_unit(in_channels, pp, 1, batchnorm),
        ]
    )


def inception(
    in_channels: int = 3,
    num_classes: int = 10,
    seed: int | None = None,
    backend: str = "numba",
    dtype: str = "float32",
    input_size: int = 32,
    batchnorm: bool = True,
    stages=STAGES,
    stem_width: int = STEM_WIDTH,
) -> Sequential:
    """A small GoogLeNet: a conv stem, two stages of Inception blocks, global pooling.

    ===========================================  =============  =============
    layers                                       32x32 input    28x28 input
    ===========================================  =============  =============
    Conv 3x3 pad 1 (in->32), BN, ReLU            (32, 32, 32)   (32, 28, 28)
    MaxPool 3x3 stride 2 pad 1                   (32, 16, 16)   (32, 14, 14)
    Inception (16, 16->32, 8->16, pool->16)      (80, 16, 16)   (80, 14, 14)
    Inception (32, 32->48, 8->24, pool->16)      (120, 16, 16)  (120, 14, 14)
    MaxPool 3x3 stride 2 pad 1                   (120, 8, 8)    (120, 7, 7)
    Inception (48, 24->64, 8->16, pool->16)      (144, 8, 8)    (144, 7, 7)
    GlobalAvgPool2D, Dense(144->num_classes)     (num_classes,)
    ===========================================  =============  =============

    Each Inception block is :func:`inception_block`; ``stages`` lists each stage's blocks'
    widths (default :data:`STAGES`, the table's), each stage after a max pooling, and
    ``stem_width`` is the stem's channels (32). With ``batchnorm`` (the default, as in
    Inception v2) every conv is followed by BatchNorm.
    Any image size works (global pooling); ``input_size`` sets the model's ``input_shape``.
    He initialisation; 66,962 parameters for 1x28x28 input and 10 classes.
    """
    where = "inception"
    shape = image_shape(where, in_channels, input_size)
    num_classes = positive_int(where, "num_classes", num_classes)
    stem_width = positive_int(where, "stem_width", stem_width)
    layers = conv_unit(shape[0], stem_width, 3, batchnorm)
    channels = stem_width
    for blocks in stages:
        layers.append(MaxPool2D(3, stride=2, pad=1))
        for widths in blocks:
            if len(widths) != 6:
                raise ValueError(
                    f"inception: each block's widths are (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool "
                    f"projection), 6 numbers; got {widths!r}"
                )
            layers.append(inception_block(channels, widths, batchnorm))
            channels = widths[0] + widths[2] + widths[4] + widths[5]
    layers += [GlobalAvgPool2D(), Dense(channels, num_classes)]
    return sequential(layers, seed, backend, dtype, shape)
