"""Convolution kernels: direct loops and im2col + BLAS GEMM, forward and backward.

Layout NCHW throughout; every array passed in is C-contiguous and native-endian,
every output is passed in (see :mod:`fastnn.backends.numba_conv`, which also
picks the algorithm). Generic over float32/float64: constants come from
:func:`~fastnn.kernels._scalars.typed` or from the arrays themselves.

The package holds one module per algorithm:

=========================  ==============================================================
:mod:`.padding`            padding and copies: the per-image pad/copy/widen helpers of the
                           direct kernels
:mod:`.direct`             direct forward at stride 1 (:func:`direct_conv_s1`): register
                           tiles, weight packing, tap offsets
:mod:`.direct_backward`    direct backward at stride 1 (:func:`direct_backward_s1`): its
                           work items, the backward-weights tiles, the ordered sums
:mod:`.channel_tiles`      direct forward and backward at any stride, channels along the
                           vector lanes (also stride-1 forward on narrow planes)
:mod:`.polyphase`          a strided convolution as a stride-1 one: the polyphase split of
                           its input (:func:`~.polyphase.phase_split`) and its adjoint
:mod:`.im2col`             im2col/col2im, and :func:`im2col_forward`/:func:`im2col_backward`
:mod:`.gather`             index tables: the strided copies of :mod:`.polyphase` and
                           :mod:`.im2col` as one flat loop per plane
:mod:`.modes`              what the stride-1 backward reads as dy: the ``DY_*`` names
:mod:`.pointwise`          1x1 convolutions at stride 1 without padding as one BLAS
                           product per image (``impl="auto"`` on few channels or narrow rows)
=========================  ==============================================================

Two algorithms:

* **direct** (every stride-1 layer). Stride 1 uses the *wide-row* trick: an
  output plane is computed on the padded input's row width ``Win``, so output
  pixel (i, j) sits at flat index ``i*Win + j`` and kernel tap (c, kh, kw) reads
  the input plane at the constant offset ``c*Hin*Win + kh*Win + kw`` from it. A
  whole plane is then one contiguous run, and the kernels are *register-blocked*
  with the explicit SIMD vectors of :mod:`fastnn.kernels._simd`: the forward tile
  (:func:`~.direct._tile_8x2`) holds eight output channels by two vectors of pixels in 16
  vector registers over all C*KH*KW taps (two loads and eight broadcasts feed 16
  fused multiply-adds), and the backward-weights tile (:func:`~.direct_backward._dw_tile_4x4`)
  holds four output channels by four taps over every pixel of a chunk of images. Rows of
  at least one vector are tiled row by row (the last vector of a row overlapping
  the one before) and the tiles store straight into the output; narrower rows are
  tiled along the whole wide run and the junk columns ``j >= OW`` are dropped when
  the tile is copied out.
  Stride-1 kernels pad inside the kernel, per image, into a buffer of the thread's
  own (no padding pass over the batch, no padded copy): the forward pass
  (:func:`direct_conv_s1`) is one parallel region over images, and the whole
  backward pass (:func:`direct_backward_s1`) is one parallel region whose items are
  backward-data of one image (the full correlation of dy with the flipped weights
  through the forward tiles, or for few input channels the transposed scatter of
  widened dy into a padded dx plane) interleaved with backward-weights of a fixed
  group of images, whose partials are added in group order afterwards. Other
  strides run on the channel tiles of :mod:`.channel_tiles`, and so do stride-1
  forward passes on planes narrower than a vector: output channels along the lanes,
  10 pixels a tile (12 on AVX2), the backward-weights tile with its sums swapped; backward, that
  tile at the strides for dW, and with input channels along the lanes for dx.
* **im2col**: parallel over chunks of images, each small enough for its column
  matrix to stay in one core's L2 cache. A thread takes a whole chunk: transposed
  im2col colT (C*KH*KW, rows), one GEMM out (F, rows) = W_mat @ colT through BLAS,
  which the caller keeps single-threaded meanwhile (threadpoolctl), then bias and a
  contiguous copy to NCHW. So there is one parallel region per call and BLAS's own
  threads never spin against Numba's. Backward recomputes the chunk's columns,
  dW_group += dy_T @ colT.T, dcolT = W_mat.T @ dy_T, and col2im scatters dcolT back
  into the chunk's (n, c) planes (owned by that thread); dW sums a fixed number of
  group partials in order.

Every reduction runs in a fixed order, so results do not depend on the thread count.
"""

from .._scalars import typed
from .channel_tiles import (
    channel_tiled_data,
    channel_tiled_forward,
    channel_tiled_forward_rectified,
    channel_tiled_weights,
    pack_tap_rows,
    pack_weight_rows,
)
from .direct import direct_conv_s1, direct_conv_s1_rectified
from .direct_backward import backward_items, direct_backward_s1
from .im2col import (
    col2im,
    im2col,
    im2col_backward,
    im2col_backward_data,
    im2col_forward,
    im2col_forward_rectified,
)
from .modes import DY_AS_GIVEN, DY_RELU_MASKED, DY_RELU_POOL_ROUTED
from .pointwise import pointwise_backward, pointwise_forward, pointwise_forward_rectified

__all__ = [
    "DY_AS_GIVEN",
    "DY_RELU_MASKED",
    "DY_RELU_POOL_ROUTED",
    "backward_items",
    "channel_tiled_data",
    "channel_tiled_forward",
    "channel_tiled_forward_rectified",
    "channel_tiled_weights",
    "col2im",
    "direct_backward_s1",
    "direct_conv_s1",
    "direct_conv_s1_rectified",
    "im2col",
    "im2col_backward",
    "im2col_backward_data",
    "im2col_forward",
    "im2col_forward_rectified",
    "pack_tap_rows",
    "pack_weight_rows",
    "pointwise_backward",
    "pointwise_forward",
    "pointwise_forward_rectified",
    "typed",
]
