"""MaxPool2D, AvgPool2D, LPPool2D and GlobalAvgPool2D over each channel's H x W plane."""

from __future__ import annotations

from ..backends.conv_shapes import kernel_pair, output_size, pad_pair, stride_pair
from ..backends.pool_shapes import check_norm_order
from .base import Layer, image_sample_shape
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
        return {"size": _as_config(self.size), "stride": _as_config(self.stride), "pad": _as_config(self.pad)}

    def describe(self):
        text = f"{type(self).__name__}({self.size[0]}x{self.size[1]}"
        if self.stride != self.size:
            text += f", stride {_as_config(self.stride)}"
        if self.pad != (0, 0):
            text += f", pad {_as_config(self.pad)}"
        return text + ")"

    def output_shape(self, input_shape):
        c, h, w = image_sample_shape(self.describe(), input_shape)
        return (
            c,
            output_size(self.describe(), h, self.size[0], self.stride[0], self.pad[0], "height"),
            output_size(self.describe(), w, self.size[1], self.stride[1], self.pad[1], "width"),
        )

    def check_input(self, x):
        """x must be (N, C, H, W) of the layer's dtype, with H and W large enough for a window."""
        super().check_input(x)
        if x.ndim != 4:
            raise ValueError(
                f"{self.describe()}: expected input with 4 dimensions (N, C, H, W), got shape {x.shape}"
            )
        self.output_shape(x.shape[1:])


class MaxPool2D(_Pool2D):
    """y = max over each size window (stride defaults to size; padding is -inf)."""

    def forward(self, x, train=True):
        self.check_input(x)
        self._shape = x.shape if train else None
        y, argmax = self.ops.maxpool2d(x, self.size, stride=self.stride, pad=self.pad)
        self._argmax = argmax if train else None  # inference keeps nothing
        return y

    def backward(self, dy):
        shape = self._require_forward("_shape")
        return self.ops.maxpool2d_backward(
            dy, self._argmax, shape, self.size, stride=self.stride, pad=self.pad
        )


class AvgPool2D(_Pool2D):
    """y = mean over each size window (padding counts as zeros)."""

    def forward(self, x, train=True):
        self.check_input(x)
        self._shape = x.shape if train else None
        return self.ops.avgpool2d(x, self.size, stride=self.stride, pad=self.pad)

    def backward(self, dy):
        shape = self._require_forward("_shape")
        return self.ops.avgpool2d_backward(dy, shape, self.size, stride=self.stride, pad=self.pad)


class LPPool2D(_Pool2D):
    """y = (sum over each size window of |x|^p)^(1/p): the window's p-norm (padding counts as zeros).

    p = 2 is the L2 pooling of Nielsen's "Neural Networks and Deep Learning" (chapter 6):
    the square root of the sum of the squares in the window. p must be a finite number
    >= 1 and is keyword-only, so ``LPPool2D(2, 2)`` means size 2, stride 2 as for the
    other pooling layers (PyTorch's ``nn.LPPool2d(norm_type, kernel_size)`` puts p
    first). The gradient is dy * sign(x) * (|x| / y)^(p-1), dy * x / y for p = 2; an
    all-zero window passes none (see ``ops.lppool2d_backward``).
    """

    def __init__(self, size, stride=None, pad=0, *, p=2):
        super().__init__(size, stride=stride, pad=pad)
        self.p = check_norm_order(type(self).__name__, p)
        self._x = None
        self._y = None

    def get_config(self):
        return {**super().get_config(), "p": self.p}

    def describe(self):
        return super().describe().replace("(", f"(p={self.p:g}, ", 1)

    def forward(self, x, train=True):
        self.check_input(x)
        y = self.ops.lppool2d(x, self.size, stride=self.stride, pad=self.pad, p=self.p)
        self._x, self._y = (x, y) if train else (None, None)
        return y

    def backward(self, dy):
        x = self._require_forward("_x")
        return self.ops.lppool2d_backward(
            dy, x, self._y, self.size, stride=self.stride, pad=self.pad, p=self.p
        )


class GlobalAvgPool2D(Layer):
    """y[n, c] = mean over h, w of x[n, c, h, w]: (N, C, H, W) -> (N, C).

    Average pooling with one window the size of the plane (``ops.avgpool2d`` with
    size (H, W)), then the unit axes dropped; backward spreads dy[n, c] / (H W) over
    the plane. The plane's size is read from each input, so one layer takes any H x W.
    """

    def __init__(self):
        super().__init__()
        self._shape = None

    def output_shape(self, input_shape):
        c, _, _ = image_sample_shape(self.describe(), input_shape)
        return (c,)

    def check_input(self, x):
        """x must be (N, C, H, W) of the layer's dtype."""
        super().check_input(x)
        if x.ndim != 4:
            raise ValueError(
                f"{self.describe()}: expected input with 4 dimensions (N, C, H, W), got shape {x.shape}"
            )

    def forward(self, x, train=True):
        self.check_input(x)
        self._shape = x.shape if train else None
        n, c, h, w = x.shape
        return self.ops.avgpool2d(x, (h, w)).reshape(n, c)

    def backward(self, dy):
        shape = self._require_forward("_shape")
        n, c, h, w = shape
        if dy.shape != (n, c):
            raise ValueError(f"{self.describe()}: expected dy of shape {(n, c)}, got {dy.shape}")
        return self.ops.avgpool2d_backward(dy.reshape(n, c, 1, 1), shape, (h, w))
