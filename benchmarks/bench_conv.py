"""asv benchmarks: conv2d and pooling kernels over a sweep of shapes, both impls, both backends."""

import numpy as np

import fastnn as fnn

from .common import BATCH, random_batch

# (C, H, W, F, K, stride, pad): the book networks' layers and a few others
SHAPES = [
    (1, 28, 28, 30, 5, 1, 0),  # simple_convnet
    (1, 28, 28, 16, 3, 1, 1),  # deep_convnet conv1
    (16, 28, 28, 16, 3, 1, 1),  # deep_convnet conv2
    (16, 14, 14, 32, 3, 1, 1),  # deep_convnet conv3
    (32, 14, 14, 32, 3, 1, 2),  # deep_convnet conv4
    (64, 8, 8, 64, 3, 1, 1),  # deep_convnet conv6
    (6, 14, 14, 16, 5, 1, 0),  # lenet5 conv2
    (16, 28, 28, 16, 3, 2, 1),  # strided
]


def _label(shape):
    c, h, w, f, k, s, p = shape
    return f"{c}->{f} {k}x{k} s{s} p{p} @{h}x{w}"


class Conv2D:
    params = ([_label(s) for s in SHAPES], ["direct", "im2col", "auto"])
    param_names = ["layer", "impl"]
    timeout = 300

    def setup(self, layer, impl):
        c, h, w, f, k, self.stride, self.pad = SHAPES[[_label(s) for s in SHAPES].index(layer)]
        self.ops = fnn.get_ops("numba")
        self.x = random_batch((BATCH, c, h, w))
        self.W = random_batch((f, c, k, k), seed=1)
        self.b = random_batch((f,), seed=2)
        y = self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad, impl)
        self.dy = random_batch(y.shape, seed=3)
        self.ops.conv2d_backward(self.dy, self.x, self.W, self.stride, self.pad, impl)
        self.flops = 2 * y.size * c * k * k

    def time_forward(self, layer, impl):
        self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad, impl)

    def time_backward(self, layer, impl):
        self.ops.conv2d_backward(self.dy, self.x, self.W, self.stride, self.pad, impl)


class Conv2DReLU:
    """conv2d with the ReLU fused (what Sequential runs for Conv2D + ReLU), against the two
    ops apart, on deep_convnet's layers."""

    params = ([_label(s) for s in SHAPES[1:6]], ["fused", "apart"])
    param_names = ["layer", "mode"]
    timeout = 300

    def setup(self, layer, mode):
        c, h, w, f, k, self.stride, self.pad = SHAPES[[_label(s) for s in SHAPES].index(layer)]
        self.ops = fnn.get_ops("numba")
        self.x = random_batch((BATCH, c, h, w))
        self.W = random_batch((f, c, k, k), seed=1)
        self.b = random_batch((f,), seed=2)
        self.y = self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad, relu=True)
        self.dy = random_batch(self.y.shape, seed=3)
        self.time_forward(layer, mode)
        self.time_backward(layer, mode)

    def time_forward(self, layer, mode):
        if mode == "fused":
            self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad, relu=True)
        else:
            self.ops.relu(self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad))

    def time_backward(self, layer, mode):
        if mode == "fused":
            self.ops.conv2d_backward(self.dy, self.x, self.W, self.stride, self.pad, relu_out=self.y)
        else:
            self.ops.conv2d_backward(
                self.ops.relu_backward(self.dy, self.y), self.x, self.W, self.stride, self.pad
            )


class ConvReference:
    """The NumPy reference on two of the shapes, for the speed-up ratio."""

    params = ([_label(SHAPES[0]), _label(SHAPES[2])], ["numpy", "numba"])
    param_names = ["layer", "backend"]

    def setup(self, layer, backend):
        c, h, w, f, k, self.stride, self.pad = SHAPES[[_label(s) for s in SHAPES].index(layer)]
        self.ops = fnn.get_ops(backend)
        self.x = random_batch((BATCH, c, h, w))
        self.W = random_batch((f, c, k, k), seed=1)
        self.b = random_batch((f,), seed=2)
        self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad)

    def time_forward(self, layer, backend):
        self.ops.conv2d(self.x, self.W, self.b, self.stride, self.pad)


class Pool:
    params = (["numba", "numpy"], ["max", "avg"], [(2, 2, 0), (3, 2, 1)])
    param_names = ["backend", "kind", "size,stride,pad"]

    def setup(self, backend, kind, geometry):
        self.size, self.stride, self.pad = geometry
        self.ops = fnn.get_ops(backend)
        self.x = random_batch((BATCH, 16, 28, 28))
        if kind == "max":
            y, self.argmax = self.ops.maxpool2d(self.x, self.size, self.stride, self.pad)
        else:
            y = self.ops.avgpool2d(self.x, self.size, self.stride, self.pad)
        self.dy = np.ones_like(y)

    def time_forward(self, backend, kind, geometry):
        if kind == "max":
            self.ops.maxpool2d(self.x, self.size, self.stride, self.pad)
        else:
            self.ops.avgpool2d(self.x, self.size, self.stride, self.pad)

    def time_backward(self, backend, kind, geometry):
        if kind == "max":
            self.ops.maxpool2d_backward(self.dy, self.argmax, self.x.shape, self.size, self.stride, self.pad)
        else:
            self.ops.avgpool2d_backward(self.dy, self.x.shape, self.size, self.stride, self.pad)
