"""MaxPool2D and AvgPool2D over each channel's H x W plane."""

from __future__ import annotations

from ..backends.conv_shapes import kernel_pair, output_size, pad_pair, stride_pair
from .base import Layer
from .conv import _as_config


class _Pool2D(Layer):
    def __init__(self, size, stride=None, pad=0):
        super().__init__()
        where = type(self).__name__
        self.size = kernel_pair(where, "size", size)
        self.stride = self.size if stride is None else stride_pair(where, stride)
        self.pad = pad_pair(where, pad)
        self._shape = None

    def get_config(self):
        return {"size": _as_config(self.size), "stride": _as_config(self.stride),
                "pad": _as_config(self.pad)}

    def describe(self):
        text = f"{type(self).__name__}({self.size[0]}x{self.size[1]}"
        if self.stride != self.size:
            text += f", stride {_as_config(self.stride)}"
        if self.pad != (0, 0):
            text += f", pad {_as_config(self.pad)}"
        return text + ")"

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, output_size(self.describe(), h, self.size[0], self.stride[0], self.pad[0], "height"),
                output_size(self.describe(), w, self.size[1], self.stride[1], self.pad[1], "width"))

    def _check_pool_input(self, x):
        self._check_input(x)
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected input with 4 dimensions (N, C, H, W), "
                             f"got shape {x.shape}")
        self.output_shape(x.shape[1:])
        self._shape = x.shape


class MaxPool2D(_Pool2D):
    """y = max over each size window (stride defaults to size; padding is -inf)."""

    def forward(self, x, train=True):
        self._check_pool_input(x)
        y, self._argmax = self.ops.maxpool2d(x, self.size, stride=self.stride, pad=self.pad)
        self._y = y      # with _argmax, what a fused Conv2D + ReLU before it reads in backward
        return y

    @property
    def is_2x2(self) -> bool:
        """2x2 windows, stride 2, no padding (what a Conv2D + ReLU can pool in its kernel)."""
        return self.size == (2, 2) and self.stride == (2, 2) and self.pad == (0, 0)

    def adopt_forward(self, x_shape, y, argmax):
        """Take the result of a forward pass the layer before ran for this one (a Conv2D
        pooling its own output): the state backward needs, as forward would leave it."""
        self._shape = tuple(x_shape)
        self._y, self._argmax = y, argmax

    def backward(self, dy):
        shape = self._require_forward("_shape")
        return self.ops.maxpool2d_backward(dy, self._argmax, shape, self.size,
                                           stride=self.stride, pad=self.pad)


class AvgPool2D(_Pool2D):
    """y = mean over each size window (padding counts as zeros)."""

    def forward(self, x, train=True):
        self._check_pool_input(x)
        return self.ops.avgpool2d(x, self.size, stride=self.stride, pad=self.pad)

    def backward(self, dy):
        shape = self._require_forward("_shape")
        return self.ops.avgpool2d_backward(dy, shape, self.size, stride=self.stride, pad=self.pad)
