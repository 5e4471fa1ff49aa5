"""Conv2D: 2-D convolution (cross-correlation, as in every deep-learning library)."""

from __future__ import annotations

import numpy as np

from ..backends.conv_shapes import check_impl, kernel_pair, output_size, pad_pair, stride_pair
from ..initializers import check_init, normal_weights
from .base import Layer, image_sample_shape


def _positive(where: str, name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _as_config(pair_value: tuple[int, int]):
    return pair_value[0] if pair_value[0] == pair_value[1] else list(pair_value)


class Conv2D(Layer):
    """y[n, f] = sum_c x_pad[n, c] (*) W[f, c] + b[f], with stride and zero padding.

    x (N, C, H, W) -> y (N, F, OH, OW), OH = (H + 2*pad - KH) // stride + 1.
    W (F, C, KH, KW) is initialised with fan_in = C*KH*KW; b (F,) starts at 0.
    ``impl`` picks the algorithm: "direct", "im2col" or "auto" (by shape).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, pad=0, init="he", impl="auto"
    ):
        super().__init__()
        where = "Conv2D"
        self.in_channels = _positive(where, "in_channels", in_channels)
        self.out_channels = _positive(where, "out_channels", out_channels)
        self.kernel_size = kernel_pair(where, "kernel_size", kernel_size)
        self.stride = stride_pair(where, stride)
        self.pad = pad_pair(where, pad)
        check_init(where, init)
        self.init = init
        self.impl = check_impl(where, impl)
        self._x = None

    def get_config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": _as_config(self.kernel_size),
            "stride": _as_config(self.stride),
            "pad": _as_config(self.pad),
            "init": self.init,
            "impl": self.impl,
        }

    def describe(self):
        kh, kw = self.kernel_size
        extra = ""
        if self.stride != (1, 1):
            extra += f", stride {_as_config(self.stride)}"
        if self.pad != (0, 0):
            extra += f", pad {_as_config(self.pad)}"
        return f"Conv2D({self.in_channels}->{self.out_channels}, {kh}x{kw}{extra})"

    def param_shapes(self):
        return {"W": (self.out_channels, self.in_channels, *self.kernel_size), "b": (self.out_channels,)}

    def init_params(self, rng):
        shape = self.param_shapes()["W"]
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        return {
            "W": normal_weights(shape, self.init, fan_in, rng, self.dtype),
            "b": np.zeros(self.out_channels, dtype=self.dtype),
        }

    def output_shape(self, input_shape):
        c, h, w = image_sample_shape(self.describe(), input_shape)
        if c != self.in_channels:
            raise ValueError(f"{self.describe()}: expected {self.in_channels} input channels, got {c}")
        oh = output_size(self.describe(), h, self.kernel_size[0], self.stride[0], self.pad[0], "height")
        ow = output_size(self.describe(), w, self.kernel_size[1], self.stride[1], self.pad[1], "width")
        return (self.out_channels, oh, ow)

    def check_input(self, x):
        """x must be (N, in_channels, H, W) of the layer's dtype, with H and W large enough."""
        super().check_input(x)
        if x.ndim != 4:
            raise ValueError(
                f"{self.describe()}: expected input with 4 dimensions (N, C, H, W), got shape {x.shape}"
            )
        self.output_shape(x.shape[1:])

    def forward(self, x, train=True):
        """y = conv(x): (N, C, H, W) -> (N, F, OH, OW)."""
        self.check_input(x)
        self._x = x if train else None  # inference keeps nothing
        return self.ops.conv2d(
            x, self.params["W"], self.params["b"], stride=self.stride, pad=self.pad, impl=self.impl
        )

    def backward(self, dy, input_grad=True):
        """dx (None without ``input_grad``); fills grads["W"] and grads["b"] in place, or,
        when :attr:`frozen`, zeroes them without computing them."""
        x = self._require_forward("_x")
        return conv_backward(self, dy, x, input_grad)


def conv_backward(conv: Conv2D, dy, x, input_grad, **fused):
    """One ``ops.conv2d_backward`` of ``conv`` on its input x, into its grads, with the
    fused arguments ``fused`` (``pool=``, ``activation=``, ``act_out=``); a frozen layer's
    weight gradient is skipped and its grads zeroed. Returns dx (None without
    ``input_grad``). Conv2D and the fused groups that hold a Conv2D call it."""
    frozen = conv.frozen
    dx, _, _ = conv.ops.conv2d_backward(
        dy,
        x,
        conv.params["W"],
        stride=conv.stride,
        pad=conv.pad,
        impl=conv.impl,
        input_grad=input_grad,
        out=(conv.grads["W"], conv.grads["b"]),
        weight_grad=not frozen,
        **fused,
    )
    if frozen:
        conv.zero_grads()
    return dx
