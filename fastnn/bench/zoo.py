"""The model zoo behind ``fastnn bench --zoo``: networks a user builds, beyond the book's.

Each :class:`ZooEntry` names a network, builds it as a fastnn ``Sequential`` (any backend,
seeded), and says what is timed: a training step (forward, softmax cross-entropy,
backward, Adam) on a batch of ``batch`` samples, or ``predict`` on ``batch`` samples
against a ``torch.no_grad()`` forward. :mod:`fastnn.bench.torch_models` translates any of
them into the equal ``torch.nn.Sequential``.

Together the entries span convolutions of stride 1, 2 and 3 and kernels 1x1 to 7x7, 1 to 3
input channels and 16 to 256 channels, inputs of 28x28, 32x32 and 64x64, ReLU, sigmoid,
tanh and leaky ReLU, max and average pooling, BatchNorm after a convolution and after a
Dense layer, Dropout, batches of 1 to 512, and blocks: ResNet-20's residual blocks and a
small GoogLeNet's Inception (Concat) blocks.

FLOPs (:func:`step_flops`) are counted analytically over the weighted layers only:
a convolution's forward pass is ``2 * N*F*C*KH*KW*OH*OW`` FLOPs (one multiply-add = 2), a
Dense layer's ``2 * N*IN*OUT``, counting those inside blocks (each part of a
``Residual`` or ``Concat`` sees the block's input); a training step costs three times the forward FLOPs of
each weighted layer (forward, input gradient, weight gradient), except the first weighted
layer, which computes no input gradient (two times); ``predict`` costs the forward FLOPs.
Activations, pooling, BatchNorm, the loss and Adam are left out (memory-bound, a few % of
the total on the convolutional networks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import models
from ..layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from ..layers.base import layer_from_spec, layer_spec
from ..layers.blocks import Block
from ..losses import SoftmaxCrossEntropy
from ..model import Sequential

CLASSES = 10


@dataclass(frozen=True)
class ZooEntry:
    """One zoo workload: ``build(seed, backend)`` returns the fastnn network."""

    name: str
    layers: Callable[[], list] = field(repr=False)
    input_shape: tuple  # (C, H, W) or (D,)
    batch: int
    kind: str  # "train" or "predict"
    description: str

    def build(self, seed: int = 0, backend: str = "numba") -> Sequential:
        return Sequential(self.layers(), loss=SoftmaxCrossEntropy(), backend=backend, seed=seed)


def _fresh_layers(build):
    """Fresh layers of the network ``build()`` returns (rebuilt from its config: a model keeps
    the weights of layers that already hold some, and the entry's seed must decide them)."""
    return lambda: [layer_from_spec(layer_spec(layer)) for layer in build().layers]


def _book(name):
    """Fresh layers of the book network ``name`` of fastnn.models."""
    return _fresh_layers(models.MODELS[name])


def _nielsen_784_30_10():
    """Nielsen's Neural Networks and Deep Learning, chapter 1: 784-30-10 sigmoid."""
    return [Flatten(), Dense(784, 30), Sigmoid(), Dense(30, CLASSES)]


def _nielsen_conv():
    """Nielsen's chapter 6 convolutional net: 20 5x5 maps, 2x2 max pooling, 100 sigmoid units."""
    return [
        Conv2D(1, 20, 5),
        Sigmoid(),
        MaxPool2D(2),
        Flatten(),
        Dense(20 * 12 * 12, 100),
        Sigmoid(),
        Dense(100, CLASSES),
    ]


def _strided():
    """Two stride-2 convolutions (5x5, 3x3) and a Dense layer: 28 -> 14 -> 7."""
    return [
        Conv2D(1, 32, 5, stride=2, pad=2),
        ReLU(),
        Conv2D(32, 64, 3, stride=2, pad=1),
        ReLU(),
        Flatten(),
        Dense(64 * 7 * 7, CLASSES),
    ]


def _stride3_7x7():
    """A 7x7 stride-3 stem on 3x64x64 with leaky ReLU: 64 -> 22 -> 11 -> 5."""
    return [
        Conv2D(3, 32, 7, stride=3, pad=3),
        LeakyReLU(0.1),
        MaxPool2D(2),
        Conv2D(32, 64, 3, pad=1),
        LeakyReLU(0.1),
        AvgPool2D(2),
        Flatten(),
        Dense(64 * 5 * 5, CLASSES),
    ]


def _vgg(batchnorm: bool):
    """VGG-style 3x3 stack on 3x32x32: 32-32-pool-64-64-pool-128-pool, Dense 128, Dropout."""

    def block(c_in, c_out):
        return [Conv2D(c_in, c_out, 3, pad=1)] + ([BatchNorm(c_out)] if batchnorm else []) + [ReLU()]

    return lambda: [
        *block(3, 32),
        *block(32, 32),
        MaxPool2D(2),
        *block(32, 64),
        *block(64, 64),
        MaxPool2D(2),
        *block(64, 128),
        MaxPool2D(2),
        Flatten(),
        Dense(128 * 4 * 4, 128),
        ReLU(),
        Dropout(0.5),
        Dense(128, CLASSES),
    ]


def _pointwise():
    """1x1 convolutions (a bottleneck, 64 -> 256 -> 64 channels) on 3x32x32."""
    return [
        Conv2D(3, 64, 3, pad=1),
        ReLU(),
        MaxPool2D(2),
        Conv2D(64, 256, 1),
        ReLU(),
        Conv2D(256, 64, 1),
        ReLU(),
        AvgPool2D(2),
        Flatten(),
        Dense(64 * 8 * 8, CLASSES),
    ]


def _stem_7x7_bn():
    """A ResNet-like 7x7 stride-2 stem with BatchNorm on 3x64x64, then a strided 3x3."""
    return [
        Conv2D(3, 64, 7, stride=2, pad=3),
        BatchNorm(64),
        ReLU(),
        MaxPool2D(3, stride=2, pad=1),
        Conv2D(64, 128, 3, stride=2, pad=1),
        BatchNorm(128),
        ReLU(),
        AvgPool2D(2),
        Flatten(),
        Dense(128 * 4 * 4, CLASSES),
    ]


def _mlp_bn_dropout():
    """Dense -> BatchNorm -> ReLU -> Dropout twice, at batch 256."""
    return [
        Flatten(),
        Dense(784, 256),
        BatchNorm(256),
        ReLU(),
        Dropout(0.2),
        Dense(256, 128),
        BatchNorm(128),
        ReLU(),
        Dropout(0.2),
        Dense(128, CLASSES),
    ]


def _wide_tanh_mlp():
    """784-512-256-10 with tanh and leaky ReLU, at batch 512."""
    return [Flatten(), Dense(784, 512), Tanh(), Dense(512, 256), LeakyReLU(), Dense(256, CLASSES)]


def _online_convnet():
    """A small convnet trained one sample at a time (online learning)."""
    return [
        Conv2D(1, 16, 3, pad=1),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(16 * 14 * 14, CLASSES),
    ]


MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)

#: LeCun et al. 1998 on 28x28 (padded to 32x32 by pad 2): tanh and average pooling.
_lenet5_classic = _book("lenet5_classic")
#: He et al.'s ResNet-20 for CIFAR-10 (fastnn.models.resnet).
_resnet20 = _fresh_layers(lambda: models.resnet(depth=20, in_channels=CIFAR[0], input_size=CIFAR[1]))
#: The small GoogLeNet of fastnn.models.inception, on MNIST.
_inception_mnist = _fresh_layers(lambda: models.inception(in_channels=MNIST[0], input_size=MNIST[1]))

ENTRIES = [
    ZooEntry("mlp", _book("mlp"), MNIST, 100, "train", "book MLP 784-100-100-10, ReLU"),
    ZooEntry("simple_convnet", _book("simple_convnet"), MNIST, 100, "train", "book SimpleConvNet"),
    ZooEntry("deep_convnet", _book("deep_convnet"), MNIST, 100, "train", "book DeepConvNet"),
    ZooEntry("lenet5_classic", _lenet5_classic, MNIST, 100, "train", "LeNet-5: tanh, average pooling"),
    ZooEntry("nielsen_784_30_10", _nielsen_784_30_10, MNIST, 10, "train", "784-30-10 sigmoid, batch 10"),
    ZooEntry("nielsen_conv", _nielsen_conv, MNIST, 10, "train", "conv 5x5 + sigmoid, batch 10"),
    ZooEntry("strided_5x5_3x3", _strided, MNIST, 100, "train", "two stride-2 convs + Dense"),
    ZooEntry("stride3_7x7_leaky", _stride3_7x7, (3, 64, 64), 32, "train", "7x7 stride 3, leaky, avg pool"),
    ZooEntry("vgg_cifar", _vgg(False), CIFAR, 64, "train", "VGG 3x3 stack, 3x32x32"),
    ZooEntry("vgg_cifar_bn", _vgg(True), CIFAR, 64, "train", "the same, BatchNorm after convs"),
    ZooEntry("pointwise_1x1", _pointwise, CIFAR, 32, "train", "1x1 convs 64-256-64"),
    ZooEntry("stem_7x7_bn", _stem_7x7_bn, (3, 64, 64), 16, "train", "7x7 s2 stem + BN, 3x3 s2"),
    ZooEntry("mlp_bn_dropout", _mlp_bn_dropout, MNIST, 256, "train", "Dense+BN+ReLU+Dropout x2"),
    ZooEntry("wide_tanh_mlp", _wide_tanh_mlp, MNIST, 512, "train", "784-512-256-10 tanh/leaky, b512"),
    ZooEntry("online_convnet", _online_convnet, MNIST, 1, "train", "small convnet, batch 1"),
    ZooEntry("online_mlp", _book("mlp"), MNIST, 1, "train", "book MLP, batch 1"),
    ZooEntry("predict_simple_convnet", _book("simple_convnet"), MNIST, 1000, "predict", "predict 1000"),
    ZooEntry("predict_deep_convnet", _book("deep_convnet"), MNIST, 1000, "predict", "predict 1000"),
    ZooEntry("predict_lenet5_classic", _lenet5_classic, MNIST, 2000, "predict", "predict 2000"),
    ZooEntry("predict_vgg_cifar_bn", _vgg(True), CIFAR, 500, "predict", "predict 500, BN folded"),
    ZooEntry("predict_mlp", _book("mlp"), MNIST, 10000, "predict", "predict 10000"),
    ZooEntry("resnet20", _resnet20, CIFAR, 64, "train", "ResNet-20 (residual blocks), 3x32x32"),
    ZooEntry("inception_mnist", _inception_mnist, MNIST, 100, "train", "small GoogLeNet (Concat blocks)"),
    ZooEntry("predict_resnet20", _resnet20, CIFAR, 500, "predict", "predict 500, BN folded"),
]

ZOO = {entry.name: entry for entry in ENTRIES}


def get(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise ValueError(f"no zoo network {name!r}; known: {', '.join(ZOO)}") from None


def forward_macs(model: Sequential, input_shape) -> list[tuple[str, int]]:
    """(kind, multiply-adds per sample) of each weighted layer, kind "conv" or "dense", in
    order, those inside blocks included (a block's parts in order, each on the block's input)."""
    macs = []
    _count_macs(model.layers, tuple(input_shape), macs)
    return macs


def _count_macs(layers, shape, macs) -> tuple:
    """Append the (kind, multiply-adds) of ``layers`` run on one sample of ``shape`` to
    ``macs``; the output shape."""
    for layer in layers:
        out = layer.output_shape(shape)
        if isinstance(layer, Block):
            for part in layer.parts().values():
                _count_macs(part, shape, macs)
        elif isinstance(layer, Conv2D):
            kh, kw = layer.kernel_size
            macs.append(("conv", layer.out_channels * layer.in_channels * kh * kw * out[1] * out[2]))
        elif isinstance(layer, Dense):
            macs.append(("dense", layer.in_features * layer.out_features))
        shape = out
    return shape


def step_flops(entry: ZooEntry, model: Sequential | None = None) -> int:
    """FLOPs of one timed call of ``entry`` (see the module docstring for the formula)."""
    model = model if model is not None else entry.build()
    forward = [2 * entry.batch * m for _, m in forward_macs(model, entry.input_shape)]
    if entry.kind == "predict":
        return sum(forward)
    return sum(f * (2 if i == 0 else 3) for i, f in enumerate(forward))


def conv_share(entry: ZooEntry, model: Sequential | None = None) -> float:
    """The share of the forward multiply-adds spent in convolutions (0 for an MLP)."""
    model = model if model is not None else entry.build()
    macs = forward_macs(model, entry.input_shape)
    total = sum(m for _, m in macs)
    return sum(m for kind, m in macs if kind == "conv") / total if total else 0.0
