"""What the stride-1 backward kernels read as the gradient of the convolution's output.

``conv2d_backward`` can fuse the backward pass of a ReLU after the convolution, or of
a ReLU and a 2x2 max pooling after it, into its reads of dy; the ``mode`` argument of
:func:`~fastnn.kernels.conv.direct_backward.direct_backward_s1` (and of the helpers it
calls) says which. Numba compiles module-level integers as constants, so comparing
``mode`` against these names costs what a literal does.
"""

#: dy is the gradient of the convolution's output, used as given.
DY_AS_GIVEN = 0

#: dy is the gradient of relu(conv): it counts only where the ReLU's output (relu_out) is > 0.
DY_RELU_MASKED = 1

#: dy is the gradient of maxpool(relu(conv)): each value is routed back to its window's
#: winner (argmax) where the pooled output is > 0 (the ReLU's mask, read where the
#: pooling read it).
DY_RELU_POOL_ROUTED = 2

__all__ = ["DY_AS_GIVEN", "DY_RELU_MASKED", "DY_RELU_POOL_ROUTED"]
