"""The activation a conv or affine op fuses: its arguments, checked alike on both backends,
and the ops that apply it by name.

``conv2d`` and ``affine`` take ``activation=`` (one of :data:`FUSED_ACTIVATIONS`, with
``alpha`` for leaky ReLU; ``relu=True`` is short for "relu"); their backward ops take
the activation's output as ``act_out=`` (``relu_out=y`` is short for ReLU's).
"""

from __future__ import annotations

import numpy as np

#: Activations a conv or affine op can fuse: ``activation=`` takes one of these names.
FUSED_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")


def fused_activation(where: str, relu: bool, activation, alpha) -> tuple[str | None, float]:
    """(name or None, alpha) of the activation an op fuses: ``relu=True`` is short for
    ``activation="relu"``; ``alpha`` (leaky ReLU's slope) must be a number >= 0."""
    if activation is not None and activation not in FUSED_ACTIVATIONS:
        raise ValueError(
            f"{where}: activation must be None or one of {FUSED_ACTIVATIONS}, got {activation!r}"
        )
    if relu:
        if activation not in (None, "relu"):
            raise ValueError(f"{where}: relu=True and activation={activation!r} ask for two activations")
        activation = "relu"
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not alpha >= 0:
        raise ValueError(f"{where}: alpha must be a number >= 0, got {alpha!r}")
    return activation, float(alpha)


def fused_activation_grad(where: str, dy, relu_out, activation, act_out, alpha, shape=None):
    """(name or None, its output, alpha) of the activation a backward op takes dy through:
    ``relu_out=y`` is short for ``activation="relu", act_out=y``; ``act_out`` must be an
    array of dy's dtype and of dy's shape, or of ``shape`` when given (the input of a
    pooling whose backward takes dy)."""
    if relu_out is not None:
        if act_out is not None or activation not in (None, "relu"):
            raise ValueError(f"{where}: give relu_out or activation with act_out, not both")
        activation, act_out = "relu", relu_out
    activation, alpha = fused_activation(where, False, activation, alpha)
    if (activation is None) != (act_out is None):
        raise ValueError(f"{where}: activation and act_out go together, got activation={activation!r}")
    if act_out is not None:
        name = "relu_out" if relu_out is not None else "act_out"
        want, whose = (dy.shape, "dy's") if shape is None else (tuple(shape), "x_shape")
        if not isinstance(act_out, np.ndarray) or act_out.shape != want:
            raise ValueError(
                f"{where}: expected {name} of shape {want} ({whose}), "
                f"got {getattr(act_out, 'shape', type(act_out).__name__)}"
            )
        if act_out.dtype != dy.dtype:
            raise TypeError(f"{where}: expected {name} of dtype {dy.dtype} (dy's), got {act_out.dtype}")
    return activation, act_out, alpha


class ActivationByName:
    """Mixin of an ops class: apply a fused activation through the backend's own ops, for
    the paths whose kernels do not fuse it (the reference's, and a few of the kernels')."""

    def _activate(self, y, activation, alpha):
        """f(y) for ``activation`` (None: y itself)."""
        if activation is None:
            return y
        if activation == "leaky_relu":
            return self.leaky_relu(y, alpha)
        return getattr(self, activation)(y)

    def _with_residual(self, y, residual, activation, alpha):
        """f(y + residual), written into y (an op's own fresh output): ReLU as ``add_relu``'s
        one pass, the others as the sum then the activation's op."""
        if activation == "relu":
            return self.add_relu(y, residual, out=y)
        np.add(y, residual, out=y)
        return self._activate(y, activation, alpha)

    def _activation_grad(self, dy, act_out, activation, alpha):
        """dy * f'(.) from the activation's output act_out (None: dy itself). ReLU's and
        leaky ReLU's ops read x's sign, which is act_out's (act_out > 0 exactly when x > 0)."""
        if activation is None:
            return dy
        if activation == "leaky_relu":
            return self.leaky_relu_backward(dy, act_out, alpha)
        return getattr(self, activation + "_backward")(dy, act_out)
