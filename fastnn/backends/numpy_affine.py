"""The NumPy reference for the affine (fully connected) ops.

Plain, readable NumPy: this is the oracle every Numba kernel is tested against.
Every op returns the dtype it was given (float32 or float64) and never modifies
its inputs. Shapes: N batch, D inputs, M outputs.
"""

from __future__ import annotations

from .._checks import check_grad_outputs, check_same_dtype, check_shape
from .op_checks import affine_shapes


class NumpyAffineOps:
    """Reference affine ops: y = x @ W + b and its gradients."""

    def affine(self, x, W, b, relu=False):
        """y = x @ W + b.  x (N, D), W (D, M), b (M,) -> y (N, M).

        ``relu=True`` returns max(y, 0).
        """
        check_same_dtype("affine", x=x, W=W, b=b)
        affine_shapes("affine", x, W, b)
        y = x @ W + b
        return self.relu(y) if relu else y

    def affine_backward(self, dy, x, W, input_grad=True, relu_out=None, out=None):
        """dx = dy @ W.T, dW = x.T @ dy, db = sum_n dy.  dy (N, M) -> (N, D), (D, M), (M,).

        ``input_grad=False`` skips dx and returns None in its place. ``relu_out``: the
        output of ``affine(..., relu=True)``; dy where relu_out > 0 (else 0) is used.
        ``out=(dW, db)``: C-contiguous arrays to write dW and db into (and return),
        e.g. a layer's gradient buffers, instead of new ones.
        """
        check_same_dtype("affine_backward", dy=dy, x=x, W=W)
        affine_shapes("affine_backward", x, W)
        check_shape("affine_backward", "dy", dy, (x.shape[0], W.shape[1]))
        out = check_grad_outputs("affine_backward", out, W.shape, (W.shape[1],), dy.dtype)
        if relu_out is not None:
            check_same_dtype("affine_backward", dy=dy, relu_out=relu_out)
            check_shape("affine_backward", "relu_out", relu_out, dy.shape)
            dy = self.relu_backward(dy, relu_out)
        dx, dW, db = (dy @ W.T if input_grad else None), x.T @ dy, dy.sum(axis=0)
        if out is not None:
            out[0][...] = dW
            out[1][...] = db
            dW, db = out
        return dx, dW, db


__all__ = ["NumpyAffineOps"]
