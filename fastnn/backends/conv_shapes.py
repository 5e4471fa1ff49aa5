"""Validation and shape arithmetic shared by the conv ops of both backends.

The pair, geometry and dy/x_shape helpers here also serve the pooling checks
(:mod:`~fastnn.backends.pool_shapes`) and the layers' argument checks.

Every check raises with the op's name first (``where``), so both backends fail
with the same message for the same bad call.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._checks import check_ndim, check_same_dtype

IMPLS = ("direct", "im2col", "polyphase", "auto")


def native(*arrays):
    """Each array in native byte order (a copy only for a byte-swapped one); others as given.

    ``_checks.check_float`` accepts only native float32/float64 dtypes, so a
    big-endian array is converted here, before validation, by both backends.
    """
    out = tuple(
        a.astype(a.dtype.newbyteorder("=")) if isinstance(a, np.ndarray) and not a.dtype.isnative else a
        for a in arrays
    )
    return out if len(out) != 1 else out[0]


def pair(where: str, name: str, value) -> tuple[int, int]:
    """An int or an (h, w) pair of ints as a pair of Python ints."""
    if type(value) is int:  # the common cases, without the ABC checks below
        return value, value
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return value  # a layer's own (h, w), as it stores them
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list, np.ndarray))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{where}: expected {name} to be an int or an (h, w) pair of ints, got {value!r}")


def stride_pair(where: str, stride) -> tuple[int, int]:
    sh, sw = pair(where, "stride", stride)
    if sh < 1 or sw < 1:
        raise ValueError(f"{where}: stride must be >= 1, got {stride!r}")
    return sh, sw


def pad_pair(where: str, pad) -> tuple[int, int]:
    ph, pw = pair(where, "pad", pad)
    if ph < 0 or pw < 0:
        raise ValueError(f"{where}: pad must be >= 0, got {pad!r}")
    return ph, pw


def kernel_pair(where: str, name: str, value) -> tuple[int, int]:
    kh, kw = pair(where, name, value)
    if kh < 1 or kw < 1:
        raise ValueError(f"{where}: {name} must be >= 1, got {value!r}")
    return kh, kw


def check_impl(where: str, impl) -> str:
    if impl not in IMPLS:
        raise ValueError(f"{where}: impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    return impl


def output_size(where: str, size: int, kernel: int, stride: int, pad: int, axis: str) -> int:
    """(size + 2*pad - kernel) // stride + 1, after checking the kernel fits the padded input."""
    if kernel > size + 2 * pad:
        raise ValueError(
            f"{where}: kernel {axis} {kernel} is larger than the padded input {axis} "
            f"{size} + 2*{pad} = {size + 2 * pad}"
        )
    return (size + 2 * pad - kernel) // stride + 1


class Geometry(NamedTuple):
    """Everything a conv/pool kernel needs to know about the shapes."""

    N: int
    C: int
    H: int
    W: int
    KH: int
    KW: int
    SH: int
    SW: int
    PH: int
    PW: int
    OH: int
    OW: int


def geometry(where: str, x_shape, kernel, stride, pad) -> Geometry:
    n, c, h, w = map(int, x_shape)
    kh, kw = kernel
    sh, sw = stride_pair(where, stride)
    ph, pw = pad_pair(where, pad)
    oh = output_size(where, h, kh, sh, ph, "height")
    ow = output_size(where, w, kw, sw, pw, "width")
    return Geometry(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)


def check_x4(where: str, name: str, x: np.ndarray) -> None:
    check_ndim(where, name, x, 4, "(N, C, H, W)")


def checked_images(where: str, x) -> np.ndarray:
    """x made native-endian, checked to be float32/float64 with 4 dimensions (N, C, H, W)."""
    x = native(x)
    check_same_dtype(where, x=x)
    check_x4(where, "x", x)
    return x


def check_x_shape(where: str, x_shape) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(s) for s in x_shape)
    except TypeError:
        raise TypeError(f"{where}: expected x_shape to be a tuple (N, C, H, W), got {x_shape!r}") from None
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"{where}: expected x_shape (N, C, H, W) of 4 sizes, got {x_shape!r}")
    return shape


def conv_geometry(where: str, x, W, stride, pad, b=None, **more) -> Geometry:
    """Check x (N, C, H, W), W (F, C, KH, KW), b (F,) and dtypes; return the geometry."""
    arrays = dict(x=x, W=W)
    if b is not None:
        arrays["b"] = b
    arrays.update(more)
    check_same_dtype(where, **arrays)
    check_x4(where, "x", x)
    check_ndim(where, "W", W, 4, "(F, C, KH, KW)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"{where}: x has {x.shape[1]} channels but W expects {W.shape[1]} "
            f"(W has shape {W.shape}, x has shape {x.shape})"
        )
    if b is not None and b.shape != (W.shape[0],):
        raise ValueError(f"{where}: expected b of shape ({W.shape[0]},), got {b.shape}")
    return geometry(where, x.shape, (W.shape[2], W.shape[3]), stride, pad)


def check_dy(where: str, dy, expected: tuple) -> None:
    if dy.shape != tuple(expected):
        raise ValueError(f"{where}: expected dy of shape {tuple(expected)}, got {dy.shape}")


def check_relu_out(where: str, relu_out, dy):
    """relu_out (a fused ReLU's output) as a native array of dy's shape and dtype."""
    relu_out = native(relu_out)
    if not isinstance(relu_out, np.ndarray) or relu_out.shape != dy.shape:
        raise ValueError(
            f"{where}: expected relu_out of shape {dy.shape} (dy's), "
            f"got {getattr(relu_out, 'shape', type(relu_out).__name__)}"
        )
    if relu_out.dtype != dy.dtype:
        raise TypeError(f"{where}: expected relu_out of dtype {dy.dtype} (dy's), got {relu_out.dtype}")
    return relu_out


def check_pool_grad(where: str, dy, pool, conv_shape: tuple, relu_out=None, activation=None, act_out=None):
    """(argmax, pooled) of a 2-D max pooling of relu(conv), whose output's gradient is dy:
    native arrays of dy's shape (argmax int64, pooled of dy's dtype), dy's batch and
    channels those of the conv output ``conv_shape``. ``pool=`` names the ReLU itself:
    ``relu_out``, ``activation`` and ``act_out`` must be None."""
    if relu_out is not None:
        raise ValueError(f"{where}: give relu_out= or pool=, not both (pool= implies the ReLU)")
    if activation is not None or act_out is not None:
        raise ValueError(f"{where}: pool= implies the ReLU; activation= and act_out= go without it")
    if not isinstance(pool, tuple) or len(pool) != 2:
        raise TypeError(f"{where}: pool must be a pair (argmax, pooled output), got {type(pool).__name__}")
    argmax, pooled = native(*pool)
    for name, a in (("argmax", argmax), ("pooled output", pooled)):
        if not isinstance(a, np.ndarray) or a.shape != dy.shape:
            raise ValueError(
                f"{where}: expected pool {name} of shape {dy.shape} (dy's), "
                f"got {getattr(a, 'shape', type(a).__name__)}"
            )
    if argmax.dtype != np.int64:
        raise TypeError(f"{where}: expected pool argmax of dtype int64, got {argmax.dtype}")
    if pooled.dtype != dy.dtype:
        raise TypeError(f"{where}: expected pool output of dtype {dy.dtype} (dy's), got {pooled.dtype}")
    if tuple(conv_shape[:2]) != dy.shape[:2]:
        raise ValueError(
            f"{where}: the conv output {tuple(conv_shape)} and the pooled dy "
            f"{dy.shape} differ in batch or channels"
        )
    return argmax, pooled
