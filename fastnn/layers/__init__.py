"""Layers: forward/backward call the model's ops only."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .base import LAYERS, Layer
from .blocks import Concat, Residual, leaves
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .norm import BatchNorm
from .pool import AvgPool2D, GlobalAvgPool2D, LPPool2D, MaxPool2D
from .reshape import Flatten

__all__ = [
    "Layer",
    "LAYERS",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "LPPool2D",
    "Dropout",
    "BatchNorm",
    "Flatten",
    "Identity",
    "Step",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Residual",
    "Concat",
    "leaves",
]
