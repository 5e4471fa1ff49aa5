"""The NumPy reference for convolution and pooling ops (filled in by the conv issue)."""


class NumpyConvOps:
    """Reference conv/pool ops: conv2d, im2col, col2im, max/avg pooling."""
