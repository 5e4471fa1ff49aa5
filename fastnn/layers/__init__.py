"""Layers: forward/backward call the model's ops only."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .base import LAYERS, Layer
from .dense import Dense
from .reshape import Flatten

__all__ = ["Layer", "LAYERS", "Dense", "Flatten", "Identity", "Step", "ReLU", "LeakyReLU",
           "Sigmoid", "Tanh", "Softmax"]
