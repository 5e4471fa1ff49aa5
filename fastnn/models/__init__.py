"""Ready-to-train networks, each returned as a ``Sequential`` that knows its ``input_shape``.

========================  ====================================================  ===========
module                    networks                                              blocks
========================  ====================================================  ===========
``book.py``               the books': ``mlp``, ``simple_convnet``,              none
                          ``deep_convnet``, ``lenet5`` (``classic=True``:
                          tanh and average pooling, as published)
``resnet.py``             ``resnet(depth=20, width=16)``: He et al.'s CIFAR     Residual
                          ResNet
``vgg.py``                ``vgg()``: 3x3 stacks and 2x2 max pooling             none
``alexnet.py``            ``alexnet()``: strided 5x5 stem, overlapping pooling  none
``inception.py``          ``inception()``: a small GoogLeNet                    Concat
========================  ====================================================  ===========

The book networks take MNIST's (N, 1, 28, 28) images (``mlp`` any input with
``in_features`` values); ``resnet``, ``vgg``, ``alexnet`` and ``inception`` take
``in_channels`` and ``input_size`` (3 and 32 by default, CIFAR-10's) and work on 28x28
and 32x32 images alike. All are trained with softmax cross-entropy, take ``seed``,
``backend`` and ``dtype``, and use He initialisation.

:data:`MODELS` names the networks of ``fastnn train --model``, ``fastnn warmup`` and the
benchmarks. Called with no arguments but ``seed``, ``backend`` and ``dtype``, every entry
builds the network for MNIST's (1, 28, 28); the CLI passes ``in_channels`` and
``input_size`` from the dataset to the entries that take them.
"""

from __future__ import annotations

from functools import partial

from ._build import MNIST_SHAPE
from .alexnet import alexnet
from .book import deep_convnet, lenet5, mlp, simple_convnet
from .inception import inception
from .resnet import resnet
from .vgg import vgg


def _for_mnist(builder, **fixed):
    """``builder`` with ``fixed`` arguments, building for (1, 28, 28) unless told otherwise."""
    return partial(builder, **fixed, in_channels=MNIST_SHAPE[0], input_size=MNIST_SHAPE[1])


MODELS = {
    "mlp": mlp,
    "simple_convnet": simple_convnet,
    "deep_convnet": deep_convnet,
    "lenet5": lenet5,
    "lenet5_classic": partial(lenet5, classic=True),
    "resnet20": _for_mnist(resnet, depth=20),
    "vgg": _for_mnist(vgg),
    "alexnet": _for_mnist(alexnet),
    "inception": _for_mnist(inception),
}

__all__ = [
    "MODELS",
    "MNIST_SHAPE",
    "mlp",
    "simple_convnet",
    "deep_convnet",
    "lenet5",
    "resnet",
    "vgg",
    "alexnet",
    "inception",
]
