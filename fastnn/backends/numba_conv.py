"""Numba-backed convolution ops: validate like the reference, allocate, call kernels.

Each method keeps the signature, defaults and formulas of
:class:`~fastnn.backends.numpy_conv.NumpyConvOps` and validates through the same
helpers (:mod:`fastnn.backends.conv_shapes`), so both backends reject a bad call
with the same message. Inputs are made C-contiguous and native-endian (a copy
only when needed) and are never modified.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from .._blas import single_threaded_blas
from .._checks import check_grad_outputs, check_same_dtype
from ..kernels import conv as conv_kernels
from ..kernels import pool as pool_kernels
from ..kernels import tuning
from ..kernels._simd import VECTOR_BYTES
from ..kernels.activations import ACT_IDENTITY, ACT_RELU, ACTIVATION_CODES, for_code
from ..kernels.conv import polyphase
from ..kernels.conv.channel_tiles import channel_block
from ..kernels.conv.direct import HALF_TILES
from ..kernels.conv.modes import DY_AS_GIVEN, DY_RELU_MASKED, DY_RELU_POOL_ROUTED
from ..kernels.conv.row_correlate import rows_pay
from ._arrays import contiguous as _c
from .conv_shapes import (
    check_dy,
    check_impl,
    check_pool_grad,
    check_x_shape,
    checked_images,
    conv_geometry,
    geometry,
    kernel_pair,
    native,
)
from .fused_activation import fused_activation, fused_activation_grad
from .op_checks import check_residual
from .scratch import scratch as _scratch


def _slots() -> int:
    """Scratch rows for the parallel kernels: one per thread they may run on."""
    return max(1, numba.get_num_threads())


def _single_threaded_blas():
    """A context in which BLAS runs on one thread: the im2col kernels call it per chunk
    from every Numba thread, where a multithreaded BLAS would oversubscribe the cores."""
    return single_threaded_blas()


def _chunk(g, itemsize: int) -> int:
    """Images per im2col chunk: as many as fit tuning.CHUNK_BYTES of columns, at least one."""
    per_image = g.OH * g.OW * g.C * g.KH * g.KW * itemsize
    return max(1, min(g.N, tuning.CHUNK_BYTES // max(per_image, 1)))


def _choose(g, F: int, forward: bool = False, input_grad: bool = True, dtype=np.float32) -> str:
    """The "auto" rule: direct at stride 1. At other strides, with block = two vectors of
    ``dtype`` (32 float32 channels):

    * forward: direct (the channel tiles, :mod:`fastnn.kernels.conv.channel_tiles`) when
      F >= block and the kernel is larger than 1x1 or C fills a vector (a 1x1 kernel on
      fewer channels leaves the tiles little to sum); otherwise, with wide = OW >=
      ``tuning.STRIDED_POLYPHASE_MIN_WIDTH``, polyphase for a 1x1 kernel or a wide output,
      else im2col;
    * weight gradients: direct when F >= block; otherwise polyphase when
      C <= ``tuning.STRIDED_POLYPHASE_WEIGHTS_CHANNELS``, or when the output is wide, the
      kernel larger than the stride and C <= ``tuning.STRIDED_POLYPHASE_WIDE_WEIGHTS_CHANNELS``,
      else im2col. Alone (``input_grad=False``) that is the answer;
    * input gradient: direct when C >= block (the tiles' lanes hold input channels), else
      im2col. A full backward pass whose two parts differ is "W+X" (dW and db by W, dx by X;
      "split" is "polyphase+im2col"): see :meth:`NumbaConvOps.conv2d_backward`.
    """
    if g.SH == 1 and g.SW == 1:
        return "direct"
    block = channel_block(dtype)
    wide = g.OW >= tuning.STRIDED_POLYPHASE_MIN_WIDTH
    if forward:
        if F >= block and (g.KH * g.KW > 1 or g.C >= block // 2):
            return "direct"
        return "polyphase" if wide or g.KH * g.KW == 1 else "im2col"
    overlapping = g.KH > g.SH or g.KW > g.SW
    narrow_input = g.C <= tuning.STRIDED_POLYPHASE_WIDE_WEIGHTS_CHANNELS
    if F >= block:
        weights = "direct"
    elif g.C <= tuning.STRIDED_POLYPHASE_WEIGHTS_CHANNELS or (wide and overlapping and narrow_input):
        weights = "polyphase"
    else:
        weights = "im2col"
    if not input_grad:
        return weights
    data = "direct" if g.C >= block else "im2col"
    if weights == data:
        return weights
    return "split" if (weights, data) == ("polyphase", "im2col") else f"{weights}+{data}"


def _parts(impl: str) -> tuple[str, str] | None:
    """(weights impl, data impl) of a backward impl that runs its two parts apart ("split"
    or "W+X"), else None."""
    if impl == "split":
        return "polyphase", "im2col"
    if "+" in impl:
        weights, data = impl.split("+")
        return weights, data
    return None


def _channel_tiles_pay(g, F: int, dtype) -> bool:
    """Whether a stride-1 "direct" forward runs on the channel tiles rather than the
    pixel tiles of :func:`~fastnn.kernels.conv.direct.direct_conv_s1`: when the output
    rows are narrower than a vector (the pixel tiles then compute junk columns), F fills
    a block of two vectors, and the kernel is larger than 1x1 (whose rows have no junk
    columns: ``python benchmarks/bench_conv_impl.py --narrow``)."""
    block = channel_block(dtype)
    return g.OW < block // 2 and F >= block and g.KH * g.KW > 1


#: dtype -> the backward-data item (rows or not) last given to ``direct_backward_s1`` for a
#: pass that ran it.
_LAST_DATA_ITEM: dict = {}


def _data_item_rows(g, dtype, input_grad: bool) -> bool:
    """Which backward-data item ``direct_backward_s1`` gets (rows: True): a pass that runs
    one (dx wanted, more channels than ``tuning.SCATTER_MAX_CHANNELS``, where dx scatters
    instead) takes the rows one vector wide (:mod:`fastnn.kernels.conv.row_correlate`) as
    ``row_correlate.rows_pay`` says. A pass that runs neither (a first layer, or one whose
    dx scatters) gets the one given last: every item compiles when first passed, so a
    network compiles only the items it runs (LeNet-5's first layer would otherwise compile
    the tiles' item for nothing)."""
    key = np.dtype(dtype)
    if input_grad and g.C > tuning.SCATTER_MAX_CHANNELS:
        lanes = VECTOR_BYTES // key.itemsize
        _LAST_DATA_ITEM[key] = rows_pay(
            g.C, g.KH, g.KW, g.W, lanes, HALF_TILES, tuning.ROW_CORRELATE_CHANNELS
        )
    return _LAST_DATA_ITEM.get(key, False)


def _pointwise_pays(g, F: int, dtype, forward: bool = True) -> bool:
    """Whether "auto" runs a 1x1 convolution at stride 1 without padding as one BLAS product
    per image (:mod:`fastnn.kernels.conv.pointwise`) instead of the direct kernels: backward
    always; forward with fewer output channels than a block of two vectors (32 float32) or
    output rows narrower than a vector, where the pixel tiles are mostly idle or junk
    (``python benchmarks/bench_conv_impl.py --pointwise`` times the two on 16 layers)."""
    if not (g.KH == 1 and g.KW == 1 and g.SH == 1 and g.SW == 1 and g.PH == 0 and g.PW == 0):
        return False
    block = channel_block(dtype)
    return not forward or F < block or g.OW < block // 2


def _resolve(impl: str, g, F: int, forward: bool = False, input_grad: bool = True, dtype=np.float32) -> str:
    """``impl`` with "auto" decided; "polyphase" (or a backward in two parts, :func:`_parts`)
    at stride 1 is "direct", and on an empty problem "im2col"."""
    if impl == "auto":
        impl = _choose(g, F, forward, input_grad, dtype)
    if (impl == "polyphase" or _parts(impl)) and (
        (g.SH == 1 and g.SW == 1) or g.N * F * g.OH * g.OW * g.C == 0
    ):
        return "direct" if g.SH == 1 and g.SW == 1 else "im2col"
    return impl


def _phases(x, W, g):
    """(P, W'): the strided convolution of x with W as a valid stride-1 one of P with W'
    (:mod:`fastnn.kernels.conv.polyphase`); P is a scratch array."""
    F, C, KH, KW = W.shape
    QH, QW, KHq, KWq = polyphase.phase_counts(KH, KW, g.SH, g.SW)
    P = _scratch("phases", (g.N, QH * QW * C, g.OH + KHq - 1, g.OW + KWq - 1), x.dtype)
    polyphase.phase_split(P.size, x, g.SH, g.SW, g.PH, g.PW, QW, P)
    return P, polyphase.phase_weights(W, g.SH, g.SW)


_UNUSED = {np.dtype(t): np.empty((0, 0, 0, 0), dtype=t) for t in (np.float32, np.float64, np.int64)}


#: The ``taps`` argument of direct_conv_s1 that sums over every tap.
_ALL_TAPS = np.empty(0, dtype=np.int64)


@functools.lru_cache(maxsize=256)
def _real_taps(C: int, KH: int, KW: int, SH: int, SW: int) -> tuple[np.ndarray, int]:
    """(taps, count): the ``taps`` argument of the direct kernels for a polyphase split's W'
    (:func:`~fastnn.kernels.conv.polyphase.phase_taps`; :data:`_ALL_TAPS` when W' has no zero
    taps, as for 3x3 stride 3 or 1x1) and how many taps that is. Cached per geometry; the
    arrays are shared, so never written."""
    taps = polyphase.phase_taps(C, KH, KW, SH, SW)
    QH, QW, KHq, KWq = polyphase.phase_counts(KH, KW, SH, SW)
    return (taps if taps.size < QH * QW * C * KHq * KWq else _ALL_TAPS), taps.size


def _direct_s1(work, x, W, b, TP, LP, code, alpha, residual, y, taps) -> None:
    """y = f(conv2d(x, W, b) at stride 1 with the padding TP, LP (+ residual)) through
    :func:`~fastnn.kernels.conv.direct.direct_conv_s1`, over the taps ``taps`` of W (empty:
    all); the ReLU in the register tiles when there is no residual, other activations after."""
    in_tiles = code == ACT_RELU and residual is None
    for_code(conv_kernels.direct_conv_s1, conv_kernels.direct_conv_s1_rectified, code)(
        work,
        x,
        W,
        b,
        TP,
        LP,
        in_tiles,
        ACT_IDENTITY if in_tiles else code,
        x.dtype.type(alpha),
        _unused(x.dtype) if residual is None else residual,
        False,
        y,
        _unused(x.dtype),
        _unused(np.int64),
        taps,
    )


def _unused(dtype) -> np.ndarray:
    """An empty 4-D placeholder of ``dtype`` for a kernel argument the call does not use."""
    return _UNUSED[np.dtype(dtype)]


def _gradient_arrays(x, W, g, input_grad: bool, weight_grad: bool, out):
    """(dx, dW, db, empty): the arrays a backward pass writes. dx has x's shape, or is an
    empty placeholder without ``input_grad`` (never touched); dW and db are ``out`` when given
    with ``weight_grad``, else new arrays (without ``weight_grad``, ones the kernels never
    touch). ``empty``: the problem has no multiply-adds, and all three are zeroed."""
    F = W.shape[0]
    dx = np.empty(x.shape if input_grad else (0, 0, 0, 0), dtype=x.dtype)
    if out is None or not weight_grad:
        dW, db = np.empty(W.shape, dtype=x.dtype), np.empty(F, dtype=x.dtype)
    else:
        dW, db = out
    empty = g.N * F * g.OH * g.OW == 0 or x.size == 0
    if empty:
        dx[...] = 0
        dW[...] = 0
        db[...] = 0
    return dx, dW, db, empty


def _asked_for(dx, dW, db, input_grad: bool, weight_grad: bool):
    """conv2d_backward's (dx, dW, db), with None for a part not asked for."""
    return (dx if input_grad else None), *((dW, db) if weight_grad else (None, None))


class NumbaConvOps:
    """Conv ops on Numba kernels; see NumpyConvOps for the formulas."""

    def im2col(self, x, kh, kw, stride=1, pad=0):
        """Unfold every KH x KW window of x into a row.

        x (N, C, H, W) -> col (N*OH*OW, C*KH*KW); rows ordered (n, oh, ow), columns
        (c, kh, kw): col[(n*OH + oh)*OW + ow, (c*KH + i)*KW + j] = xpad[n, c, oh*SH + i, ow*SW + j]
        with xpad zero-padded by PH rows and PW columns on each side.
        """
        x = checked_images("im2col", x)
        g = geometry("im2col", x.shape, kernel_pair("im2col", "kernel size", (kh, kw)), stride, pad)
        col = np.empty((g.N * g.OH * g.OW, g.C * g.KH * g.KW), dtype=x.dtype)
        conv_kernels.im2col(col.size, _c(x), g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, col)
        return col

    def col2im(self, col, x_shape, kh, kw, stride=1, pad=0):
        """The adjoint of im2col: scatter-add every row of col back into its window.

        col (N*OH*OW, C*KH*KW) -> x (N, C, H, W): x[n, c, h, w] is the sum of every col
        entry that im2col would have read from x[n, c, h, w] (padding entries are dropped).
        """
        col = native(col)
        check_same_dtype("col2im", col=col)
        x_shape = check_x_shape("col2im", x_shape)
        g = geometry("col2im", x_shape, kernel_pair("col2im", "kernel size", (kh, kw)), stride, pad)
        expected = (g.N * g.OH * g.OW, g.C * g.KH * g.KW)
        if col.shape != expected:
            raise ValueError(
                f"col2im: expected col of shape {expected} for x_shape {x_shape}, got {col.shape}"
            )
        dx = np.empty(x_shape, dtype=col.dtype)
        conv_kernels.col2im(col.size, _c(col), g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, dx)
        return dx

    def conv2d(
        self, x, W, b, stride=1, pad=0, impl="auto", relu=False, activation=None, alpha=0.0, residual=None
    ):
        """Cross-correlation: y[n, f, oh, ow] = b[f] + sum_{c, i, j} W[f, c, i, j] * xpad[n, c, oh*SH + i,
        ow*SW + j].

        x (N, C, H, W), W (F, C, KH, KW), b (F,) -> y (N, F, OH, OW), xpad zero-padded.
        ``impl`` ("direct", "im2col" or "auto") picks the algorithm; every choice
        gives the same result. The reference always computes im2col(x) @ W_mat.T + b.
        ``activation`` ("relu", "sigmoid", "tanh" or "leaky_relu" with slope ``alpha``;
        ``relu=True`` is "relu") returns f(y), fused into the kernel: ReLU in the direct
        kernel's register tiles, the others on each image's output while it is in cache,
        and in im2col's bias pass; the activation op's own scalar code, so the numbers
        are the op's. ``residual`` (an array of y's shape and dtype): returns f(y + residual)
        instead, a residual block's sum (``add_relu(y, residual)`` for ReLU) taken in the
        direct kernel's pass over each image's output while it is in cache, else after the
        convolution; the numbers are those of the convolution, then the sum, then f.

        Numba backend, ``impl="auto"``: a 1x1 convolution at stride 1 without padding runs
        as one BLAS product per image (:mod:`fastnn.kernels.conv.pointwise`) forward when F
        is below a block of two vectors or the output rows are narrower than a vector, and
        backward always (``_pointwise_pays``); otherwise "direct" at stride 1; at other strides, forward
        "direct" when F fills a block of two vectors (32 float32 channels) and the kernel
        is larger than 1x1, else "polyphase" for output rows of 12 pixels or more and for
        1x1 kernels, "im2col" otherwise; the weight gradients "polyphase" up to 3 input
        channels, or up to 32 for wide output rows when the kernel is larger than the
        stride, else "im2col"; a full backward pass with polyphase weight gradients takes dx
        from im2col (``_choose``; the thresholds are ``fastnn.kernels.tuning`` knobs).
        "polyphase" runs a strided convolution as the stride-1 direct kernel on the input's
        polyphase split (:mod:`fastnn.kernels.conv.polyphase`). ``python
        benchmarks/bench_conv_impl.py --strided --extra`` times the three on 23 strided
        layers; the ratios it gave are in docs/performance.md ("Strided convolutions").
        The direct forward has two kinds of register tile. The pixel tiles
        (:func:`~fastnn.kernels.conv.direct.direct_conv_s1`, stride 1) keep eight channels
        by two vectors of pixels over all C*KH*KW taps; the channel tiles
        (:func:`~fastnn.kernels.conv.channel_tiles.channel_tiled_forward`) keep two vectors
        of channels by 12 pixels, read at any stride, and serve every stride above 1 and
        the stride-1 layers whose output rows are narrower than a vector, where the pixel
        tiles compute junk columns (``_channel_tiles_pay``). The backward-weights tile
        (two vectors of channels by 12 taps, or four channels by four taps when F is
        smaller) runs over a chunk of images. ``python benchmarks/bench_conv_impl.py
        --extra`` measures direct against im2col on the book networks' layers and a few
        others (its "best" column compares forward plus backward). The strided backward
        of ``impl="direct"`` runs plain loops (:mod:`fastnn.kernels.conv.strided`).
        """
        check_impl("conv2d", impl)
        activation, alpha = fused_activation("conv2d", relu, activation, alpha)
        code = ACTIVATION_CODES[activation or "identity"]
        x, W, b = native(x, W, b)
        g = conv_geometry("conv2d", x, W, stride, pad, b=b)
        F = W.shape[0]
        x, W, b = _c(x), _c(W), _c(b)
        y = np.empty((g.N, F, g.OH, g.OW), dtype=x.dtype)
        if residual is not None:
            residual = _c(native(check_residual("conv2d", residual, y)))
        if y.size == 0:
            return y
        work = y.size * g.C * g.KH * g.KW
        if impl == "auto" and _pointwise_pays(g, F, x.dtype):
            with _single_threaded_blas():
                for_code(conv_kernels.pointwise_forward, conv_kernels.pointwise_forward_rectified, code)(
                    work,
                    x,
                    W.reshape(F, g.C),
                    b,
                    code,
                    x.dtype.type(alpha),
                    _unused(x.dtype) if residual is None else residual,
                    y,
                )
            return y
        impl = _resolve(impl, g, F, forward=True, dtype=x.dtype)
        strided = g.SH != 1 or g.SW != 1
        if impl == "direct" and (strided or _channel_tiles_pay(g, F, x.dtype)):
            for_code(conv_kernels.channel_tiled_forward, conv_kernels.channel_tiled_forward_rectified, code)(
                work,
                x,
                conv_kernels.pack_weight_rows(W),
                b,
                g.KH,
                g.KW,
                g.SH,
                g.SW,
                g.PH,
                g.PW,
                code,
                x.dtype.type(alpha),
                _unused(x.dtype) if residual is None else residual,
                y,
            )
            return y
        if impl == "polyphase":
            P, Wq = _phases(x, W, g)
            taps, count = _real_taps(g.C, g.KH, g.KW, g.SH, g.SW)
            _direct_s1(y.size * count, P, Wq, b, 0, 0, code, alpha, residual, y, taps)
            return y
        if impl == "direct" and g.SH == 1 and g.SW == 1:
            _direct_s1(work, x, W, b, g.PH, g.PW, code, alpha, residual, y, _ALL_TAPS)
            return y
        if residual is not None:  # the convolution alone, then the sum and f in one pass
            return self._with_residual(self.conv2d(x, W, b, stride, pad, impl), residual, activation, alpha)
        K = g.C * g.KH * g.KW
        chunk = _chunk(g, x.itemsize)
        rows = chunk * g.OH * g.OW
        slots = _slots()
        with _single_threaded_blas():
            for_code(conv_kernels.im2col_forward, conv_kernels.im2col_forward_rectified, code)(
                work,
                x,
                W.reshape(F, K),
                b,
                g.KH,
                g.KW,
                g.SH,
                g.SW,
                g.PH,
                g.PW,
                code,
                x.dtype.type(alpha),
                chunk,
                _scratch("col", (slots, rows * K), x.dtype),
                _scratch("out", (slots, rows * F), x.dtype),
                y,
            )
        return y

    def conv2d_relu_maxpool2x2(self, x, W, b, stride=1, pad=0, impl="auto"):
        """2x2 stride-2 max pooling of relu(conv2d(x)): returns (pooled, argmax).

        The arrays of ``maxpool2d(conv2d(x, W, b, stride, pad, impl, relu=True), 2)``; at
        stride 1 with the direct kernels' pixel tiles (which conv2d uses unless its channel
        tiles pay, ``_channel_tiles_pay``) and an even output size, each image is pooled
        inside the convolution kernel while its output is in cache, and the full
        convolution output is never stored. ``conv2d_backward(..., pool=(argmax, pooled))``
        takes the gradient back.
        """
        check_impl("conv2d_relu_maxpool2x2", impl)
        x, W, b = native(x, W, b)
        g = conv_geometry("conv2d_relu_maxpool2x2", x, W, stride, pad, b=b)
        if impl == "auto":
            impl = _choose(g, W.shape[0], forward=True, dtype=x.dtype)
        fused = (
            impl == "direct"
            and not _channel_tiles_pay(g, W.shape[0], x.dtype)  # conv2d's arithmetic, then the pool
            and g.SH == 1
            and g.SW == 1
            and g.OH % 2 == 0
            and g.OW % 2 == 0
            and g.N * g.OH * g.OW > 0
            and W.shape[0] > 0
        )
        if not fused:
            return self.maxpool2d(self.conv2d(x, W, b, stride, pad, impl, relu=True), 2)
        x, W, b = _c(x), _c(W), _c(b)
        F = W.shape[0]
        pooled = np.empty((g.N, F, g.OH // 2, g.OW // 2), dtype=x.dtype)
        argmax = np.empty(pooled.shape, dtype=np.int64)
        work = g.N * F * g.OH * g.OW * g.C * g.KH * g.KW
        conv_kernels.direct_conv_s1_rectified(
            work,
            x,
            W,
            b,
            g.PH,
            g.PW,
            True,
            ACT_IDENTITY,
            x.dtype.type(0),
            _unused(x.dtype),
            True,
            _unused(x.dtype),
            pooled,
            argmax,
            _ALL_TAPS,
        )
        return pooled, argmax

    def conv2d_backward(
        self,
        dy,
        x,
        W,
        stride=1,
        pad=0,
        impl="auto",
        relu_out=None,
        input_grad=True,
        pool=None,
        out=None,
        activation=None,
        act_out=None,
        alpha=0.0,
        weight_grad=True,
    ):
        """Gradients of conv2d: returns (dx, dW, db).

        With dy_mat = dy as (N*OH*OW, F) and col = im2col(x):
        db = sum_{n, oh, ow} dy;  dW = (dy_mat.T @ col) as (F, C, KH, KW);
        dx = col2im(dy_mat @ W_mat), W_mat = W as (F, C*KH*KW).
        ``relu_out``: the output of ``conv2d(..., relu=True)``; dy is then the gradient
        of that output and is first taken only where relu_out > 0 (fused into the
        kernel's reads). ``pool=(argmax, pooled)``: dy is the gradient of a max pooling
        of relu(conv2d(x)) with that argmax and output (``conv2d_relu_maxpool2x2`` or
        ``maxpool2d`` of ``conv2d(..., relu=True)``); it is routed back through the
        pooling and the ReLU (taken where pooled > 0) inside the kernel's reads, as
        ``maxpool2d_backward`` then the ReLU mask would. ``input_grad=False`` skips dx
        and returns None in its place; ``weight_grad=False`` (a frozen layer) skips dW and db,
        returns None for both and leaves ``out`` alone. ``out=(dW, db)``: C-contiguous arrays the kernels
        write dW and db into (and return), e.g. a layer's gradient buffers.
        """
        check_impl("conv2d_backward", impl)
        return self._backward(
            dy,
            x,
            W,
            stride,
            pad,
            impl,
            relu_out,
            input_grad,
            pool,
            out,
            activation,
            act_out,
            alpha,
            weight_grad,
        )

    def _backward(
        self,
        dy,
        x,
        W,
        stride,
        pad,
        impl,
        relu_out,
        input_grad,
        pool,
        out,
        activation,
        act_out,
        alpha,
        weight_grad,
        taps=_ALL_TAPS,
    ):
        """conv2d_backward after its impl check; ``taps`` (int64, direct stride 1 only): the
        taps of dW to compute, 0 at the others (a polyphase split's real ones; empty: all)."""
        dy, x, W = native(dy, x, W)
        F = W.shape[0]
        g = conv_geometry("conv2d_backward", x, W, stride, pad, dy=dy)
        out = check_grad_outputs("conv2d_backward", out, W.shape, (F,), x.dtype)
        if impl == "auto" and taps is _ALL_TAPS and _pointwise_pays(g, F, x.dtype, forward=False):
            return self._pointwise_backward(
                dy, x, W, g, relu_out, input_grad, pool, out, activation, act_out, alpha, weight_grad
            )
        impl = _resolve(impl, g, F, input_grad=input_grad, dtype=x.dtype)
        parts = _parts(impl)
        if parts is not None and not weight_grad:  # dx alone: its part only
            impl, parts = parts[1], None
        if parts is not None:  # chosen only with input_grad
            return self._split_backward(dy, x, W, g, relu_out, pool, out, activation, act_out, alpha, *parts)
        if impl == "polyphase":
            return self._polyphase_backward(
                dy, x, W, g, relu_out, input_grad, pool, out, activation, act_out, alpha, weight_grad
            )
        fused = impl == "direct" and g.SH == 1 and g.SW == 1
        dy, mode, relu_out, argmax, pooled = self._output_grad(
            dy, g, F, relu_out, pool, activation, act_out, alpha, fused, fused_relu=impl == "direct"
        )
        x, W = _c(x), _c(W)
        if mode == DY_RELU_POOL_ROUTED:
            argmax, pooled = _c(argmax), _c(pooled)
            relu_out = np.empty((g.N, F, 0, 0), dtype=dy.dtype)
        else:
            relu_out = dy if mode == DY_AS_GIVEN else _c(relu_out)
            argmax = np.empty((g.N, F, 0, 0), dtype=np.int64)
            pooled = np.empty((g.N, F, 0, 0), dtype=dy.dtype)
        dtype = x.dtype
        if not (input_grad or weight_grad):
            return None, None, None
        dx, dW, db, empty = _gradient_arrays(x, W, g, input_grad, weight_grad, out)
        if empty:
            return _asked_for(dx, dW, db, input_grad, weight_grad)
        work = g.N * F * g.OH * g.OW * g.C * g.KH * g.KW
        if impl == "direct":
            if g.SH == 1 and g.SW == 1:
                # one parallel region; x and dy are padded per image inside it
                Wt = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
                conv_kernels.direct_backward_s1(
                    work,
                    x,
                    dy,
                    W,
                    Wt,
                    g.PH,
                    g.PW,
                    g.C <= tuning.SCATTER_MAX_CHANNELS,
                    relu_out,
                    mode,
                    argmax,
                    pooled,
                    bool(input_grad),
                    bool(weight_grad),
                    dx,
                    dW,
                    db,
                    *conv_kernels.backward_items(dtype, rows=_data_item_rows(g, dtype, input_grad)),
                    taps,
                )
            else:  # the channel tiles, a fused ReLU's mask read with dy (a pooling taken back above)
                geometry = (g.KH, g.KW, g.SH, g.SW, g.PH, g.PW)
                if weight_grad:
                    conv_kernels.channel_tiled_weights(work, x, dy, relu_out, mode, *geometry, dW, db)
                if input_grad:
                    W_taps = conv_kernels.pack_tap_rows(W)
                    conv_kernels.channel_tiled_data(work, dy, relu_out, mode, W_taps, *geometry, dx)
        else:
            K = g.C * g.KH * g.KW
            chunk = _chunk(g, dtype.itemsize)
            rows = chunk * g.OH * g.OW
            slots = _slots()
            groups = min(-(-g.N // chunk), tuning.CHUNK_GROUPS)
            # without weight_grad, the build without the weight-gradient code (same dx)
            kernel = conv_kernels.im2col_backward if weight_grad else conv_kernels.im2col_backward_data
            with _single_threaded_blas():
                kernel(
                    work,
                    x,
                    dy,
                    W.reshape(F, K),
                    g.KH,
                    g.KW,
                    g.SH,
                    g.SW,
                    g.PH,
                    g.PW,
                    chunk,
                    bool(weight_grad),
                    bool(input_grad),
                    _scratch("col", (slots, rows * K), dtype),
                    _scratch("out", (slots, rows * F), dtype),
                    _scratch("dcol", (slots, rows * K), dtype),
                    _scratch("dw", (slots, F * K), dtype),
                    np.empty((groups, F * K + F), dtype=dtype),
                    dx,
                    dW.reshape(F, K),
                    db,
                )
        return _asked_for(dx, dW, db, input_grad, weight_grad)

    def _pointwise_backward(
        self, dy, x, W, g, relu_out, input_grad, pool, out, activation, act_out, alpha, weight_grad
    ):
        """conv2d_backward of a 1x1 stride-1 convolution without padding as BLAS products per
        image (:func:`~fastnn.kernels.conv.pointwise.pointwise_backward`); a pooling and an
        activation other than ReLU are taken back first, a ReLU's mask in the kernel."""
        F = W.shape[0]
        dy, mode, relu_out, _, _ = self._output_grad(
            dy, g, F, relu_out, pool, activation, act_out, alpha, False, fused_relu=True
        )
        dtype = x.dtype
        if not (input_grad or weight_grad):
            return None, None, None
        x, W = _c(x), _c(W)
        relu_out = _unused(dtype) if mode == DY_AS_GIVEN else _c(relu_out)
        dx, dW, db, empty = _gradient_arrays(x, W, g, input_grad, weight_grad, out)
        if empty:
            return _asked_for(dx, dW, db, input_grad, weight_grad)
        groups = min(g.N, tuning.CHUNK_GROUPS)
        with _single_threaded_blas():
            conv_kernels.pointwise_backward(
                dy.size * g.C,
                x,
                dy,
                relu_out,
                W.reshape(F, g.C),
                bool(input_grad),
                bool(weight_grad),
                _scratch("pointwise_g", (_slots(), F * g.OH * g.OW if mode != DY_AS_GIVEN else 0), dtype),
                np.empty((groups, F * g.C + F), dtype=dtype),
                dx,
                dW.reshape(F, g.C),
                db,
            )
        return _asked_for(dx, dW, db, input_grad, weight_grad)

    def _output_grad(self, dy, g, F, relu_out, pool, activation, act_out, alpha, fused, fused_relu=None):
        """(dy, mode, relu_out, argmax, pooled) for the backward kernels: dy checked against
        the convolution's output (N, F, OH, OW), or against the max pooling ``pool`` of its
        ReLU, and an activation other than ReLU taken back here; ``mode`` one of
        :mod:`fastnn.kernels.conv.modes`. Unless ``fused`` (the direct stride-1 kernels read
        the pooling and the ReLU mask themselves), the pooling and the ReLU are taken back
        here too, leaving the gradient of the convolution's output (DY_AS_GIVEN);
        ``fused_relu`` (default: ``fused``) decides for the ReLU alone (the channel tiles
        read its mask, not a pooling). dy is C-contiguous; argmax and pooled are None
        without ``pool``."""
        conv_shape = (g.N, F, g.OH, g.OW)
        argmax = pooled = None
        if pool is not None:
            argmax, pooled = check_pool_grad(
                "conv2d_backward", dy, pool, conv_shape, relu_out, activation, act_out
            )
            mode = DY_RELU_POOL_ROUTED
        else:
            check_dy("conv2d_backward", dy, conv_shape)
            activation, act_out, alpha = fused_activation_grad(
                "conv2d_backward", dy, relu_out, activation, act_out, alpha
            )
            if activation not in (None, "relu"):
                dy, activation = self._activation_grad(dy, act_out, activation, alpha), None
            relu_out = None if activation is None else native(act_out)
            mode = DY_AS_GIVEN if relu_out is None else DY_RELU_MASKED
        dy = _c(dy)
        if mode == DY_RELU_POOL_ROUTED and not fused:
            routed = np.empty(conv_shape, dtype=dy.dtype)
            masked = self.relu_backward(dy, pooled)  # the ReLU's mask, at the winners
            pool_kernels.maxpool_backward(routed.size, masked, _c(argmax), routed)
            dy, mode = routed, DY_AS_GIVEN
        if mode == DY_RELU_MASKED and not (fused if fused_relu is None else fused_relu):
            dy, mode = self.relu_backward(dy, relu_out), DY_AS_GIVEN
        return dy, mode, relu_out, argmax, pooled

    def _split_backward(
        self, dy, x, W, g, relu_out, pool, out, activation, act_out, alpha, weights="polyphase", data="im2col"
    ):
        """conv2d_backward of a strided convolution, all three gradients, with dW and db
        through the impl ``weights`` and dx through ``data``. The gradient is taken back
        through a fused pooling or activation once, before the two."""
        dy = self._output_grad(dy, g, W.shape[0], relu_out, pool, activation, act_out, alpha, False)[0]
        stride, pad = (g.SH, g.SW), (g.PH, g.PW)
        _, dW, db = self._backward(
            dy, x, W, stride, pad, weights, None, False, None, out, None, None, 0.0, True
        )
        dx, _, _ = self._backward(dy, x, W, stride, pad, data, None, True, None, None, None, None, 0.0, False)
        return dx, dW, db

    def _polyphase_backward(
        self, dy, x, W, g, relu_out, input_grad, pool, out, activation, act_out, alpha, weight_grad
    ):
        """conv2d_backward of a strided convolution through its stride-1 form (P, W'):
        dW' over W''s real taps alone, dW gathered from it, dx from dP
        (:mod:`fastnn.kernels.conv.polyphase`)."""
        P, Wq = _phases(_c(x), W, g)
        dP, dWq, db = self._backward(
            dy,
            P,
            Wq,
            1,
            0,
            "direct",
            relu_out,
            input_grad,
            pool,
            None,
            activation,
            act_out,
            alpha,
            weight_grad,
            _real_taps(g.C, g.KH, g.KW, g.SH, g.SW)[0],
        )
        dx = None
        if input_grad:
            dx = np.empty(x.shape, dtype=x.dtype)
            QW = polyphase.phase_counts(*W.shape[2:], g.SH, g.SW)[1]
            polyphase.phase_merge(dx.size, _c(dP), g.SH, g.SW, g.PH, g.PW, QW, dx)
        if not weight_grad:
            return dx, None, None
        dW, db_out = out if out is not None else (np.empty(W.shape, dtype=x.dtype), db)
        polyphase.phase_weight_grad(dWq, W.shape[2], W.shape[3], g.SH, g.SW, dW)
        if db_out is not db:
            db_out[...] = db
        return dx, dW, db_out


__all__ = ["NumbaConvOps"]
