"""The NumPy reference for the affine (fully connected) ops.

Plain, readable NumPy: this is the oracle every Numba kernel is tested against.
Every op returns the dtype it was given (float32 or float64) and never modifies
its inputs. Shapes: N batch, D inputs, M outputs.
"""

from __future__ import annotations

from .._checks import check_grad_outputs, check_same_dtype, check_shape
from .fused_activation import fused_activation, fused_activation_grad
from .op_checks import affine_shapes


class NumpyAffineOps:
    """Reference affine ops: y = x @ W + b and its gradients."""

    def affine(self, x, W, b, relu=False, activation=None, alpha=0.0):
        """y = f(x @ W + b).  x (N, D), W (D, M), b (M,) -> y (N, M).

        f is the identity, or ``activation`` ("relu", "sigmoid", "tanh" or "leaky_relu"
        with slope ``alpha``) as its op computes it; ``relu=True`` is ``activation="relu"``.
        """
        check_same_dtype("affine", x=x, W=W, b=b)
        affine_shapes("affine", x, W, b)
        activation, alpha = fused_activation("affine", relu, activation, alpha)
        return self._activate(x @ W + b, activation, alpha)

    def affine_backward(
        self,
        dy,
        x,
        W,
        input_grad=True,
        relu_out=None,
        out=None,
        activation=None,
        act_out=None,
        alpha=0.0,
        weight_grad=True,
    ):
        """dx = g @ W.T, dW = x.T @ g, db = sum_n g.  dy (N, M) -> (N, D), (D, M), (M,).

        g = dy, or with ``activation`` and its output ``act_out`` (from ``affine(...,
        activation=...)``) the gradient through it, g = dy * f'(.) as the activation's
        backward op computes it from its output; ``relu_out=y`` is short for
        ``activation="relu", act_out=y``.
        ``input_grad=False`` skips dx and returns None in its place; ``weight_grad=False``
        (a frozen layer) skips dW and db, returns None for both and leaves ``out`` alone.
        ``out=(dW, db)``: C-contiguous arrays to write dW and db into (and return),
        e.g. a layer's gradient buffers, instead of new ones.
        """
        check_same_dtype("affine_backward", dy=dy, x=x, W=W)
        affine_shapes("affine_backward", x, W)
        check_shape("affine_backward", "dy", dy, (x.shape[0], W.shape[1]))
        out = check_grad_outputs("affine_backward", out, W.shape, (W.shape[1],), dy.dtype)
        activation, act_out, alpha = fused_activation_grad(
            "affine_backward", dy, relu_out, activation, act_out, alpha
        )
        dy = self._activation_grad(dy, act_out, activation, alpha)
        dx = dy @ W.T if input_grad else None
        if not weight_grad:
            return dx, None, None
        dW, db = x.T @ dy, dy.sum(axis=0)
        if out is not None:
            out[0][...] = dW
            out[1][...] = db
            dW, db = out
        return dx, dW, db


__all__ = ["NumpyAffineOps"]
