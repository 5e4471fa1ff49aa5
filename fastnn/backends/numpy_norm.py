"""The NumPy reference for batch normalisation.

x is (N, D) (per feature) or (N, C, H, W) (per channel, over N, H and W).
Statistics are the batch mean and the biased batch variance, as in Deep Learning
from Scratch and PyTorch's normalisation step. Every op returns the dtype it was
given and never modifies its inputs.
"""

from __future__ import annotations

import numpy as np

from .numpy_activations import NumpyActivationOps
from .op_checks import check_batchnorm, check_bn_activation, check_eps, check_out, check_residual


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector shaped to broadcast against x: (1, C) or (1, C, 1, 1)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _activation_args(activation: str, alpha) -> tuple:
    return (alpha,) if activation == "leaky_relu" else ()


def _activate(ops, activation: str, y: np.ndarray, alpha) -> np.ndarray:
    """f(y) by the reference activation op of that name (identity: y itself)."""
    if activation == "identity":
        return y
    return getattr(NumpyActivationOps, activation)(ops, y, *_activation_args(activation, alpha))


def _activation_grad(ops, activation: str, dy: np.ndarray, act_out: np.ndarray, alpha) -> np.ndarray:
    """dy * f' by the reference activation's backward op, from f's output ``act_out``
    (ReLU and leaky ReLU (alpha >= 0) are positive exactly where their input is)."""
    if activation == "identity":
        return dy
    backward = getattr(NumpyActivationOps, activation + "_backward")
    return backward(ops, dy, act_out, *_activation_args(activation, alpha))


class NumpyNormOps:
    """Reference batch normalisation; C is D for (N, D) input."""

    def batchnorm(self, x, gamma, beta, eps=1e-5, activation=None, alpha=0.0, out=None, residual=None):
        """Training-mode batch norm; returns (y, mean, var).

        mean_c = mean of x over (N[, H, W]);  var_c = mean of (x - mean_c)**2 (biased);
        y = gamma_c * (x - mean_c) / sqrt(var_c + eps) + beta_c.
        x (N, C) or (N, C, H, W); gamma, beta (C,) -> y like x, mean (C,), var (C,).
        ``activation`` ("relu", "sigmoid", "tanh", "leaky_relu" with slope ``alpha``, or
        None / "identity"): y is f(bn(x)), f applied in the same pass, with the
        activation op's formula. ``residual`` (x's shape and dtype): y is f(bn(x) +
        residual), a residual block's sum and the activation after it. ``out``: an array
        of x's shape and dtype to write y into (any layout, e.g. a channel slice of a
        larger array), returned as y.
        """
        _, axes = check_batchnorm("batchnorm", x, gamma, beta=beta)
        eps = check_eps("batchnorm", eps)
        activation = check_bn_activation("batchnorm", activation, alpha)
        check_out("batchnorm", out, x)
        if residual is not None:
            check_residual("batchnorm", residual, x)
        mean = x.mean(axis=axes)
        centred = x - _channel(mean, x.ndim)
        var = (centred * centred).mean(axis=axes)
        inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
        xhat = centred * _channel(inv_std, x.ndim)
        y = (_channel(gamma, x.ndim) * xhat + _channel(beta, x.ndim)).astype(x.dtype, copy=False)
        if residual is not None:
            y = y + residual
        y = _activate(self, activation, y, alpha)
        if out is not None:
            out[...] = y
            y = out
        return y, mean, var

    def batchnorm_backward(self, dy, x, gamma, mean, var, eps=1e-5, activation=None, act_out=None, alpha=0.0):
        """Gradients of training-mode batch norm; returns (dx, dgamma, dbeta).

        With xhat = (x - mean) / sqrt(var + eps) and M values per channel:
        dbeta = sum dy;  dgamma = sum dy * xhat;
        dx = gamma / sqrt(var + eps) / M * (M * dy - dbeta - xhat * dgamma).
        ``mean`` and ``var`` are the ones :meth:`batchnorm` returned for this x.
        ``activation`` (with ``act_out``, the y of ``batchnorm(..., activation=...)``, and
        ``alpha``): dy is the gradient of f(bn(x)), and dy * f' (the activation's backward
        op, from f's output) replaces dy above.
        """
        _, axes = check_batchnorm("batchnorm_backward", x, gamma, dy=dy, mean=mean, var=var)
        eps = check_eps("batchnorm_backward", eps)
        activation = check_bn_activation("batchnorm_backward", activation, alpha, dy=dy, act_out=act_out)
        dy = _activation_grad(self, activation, dy, act_out, alpha)
        count = x.size // x.shape[1]
        inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
        xhat = (x - _channel(mean, x.ndim)) * _channel(inv_std, x.ndim)
        dbeta = dy.sum(axis=axes)
        dgamma = (dy * xhat).sum(axis=axes)
        scale = _channel(gamma * inv_std, x.ndim) / x.dtype.type(count)
        dx = scale * (x.dtype.type(count) * dy - _channel(dbeta, x.ndim) - xhat * _channel(dgamma, x.ndim))
        return dx.astype(x.dtype, copy=False), dgamma, dbeta

    def batchnorm_inference(self, x, gamma, beta, running_mean, running_var, eps=1e-5):
        """Inference-mode batch norm with fixed statistics.

        y = gamma_c * (x - running_mean_c) / sqrt(running_var_c + eps) + beta_c.
        """
        check_batchnorm(
            "batchnorm_inference", x, gamma, beta=beta, running_mean=running_mean, running_var=running_var
        )
        eps = check_eps("batchnorm_inference", eps)
        inv_std = 1 / np.sqrt(running_var + x.dtype.type(eps))
        y = _channel(gamma * inv_std, x.ndim) * (x - _channel(running_mean, x.ndim)) + _channel(beta, x.ndim)
        return y.astype(x.dtype, copy=False)

    def batchnorm_inference_backward(self, dy, gamma, running_var, eps=1e-5):
        """Gradient of :meth:`batchnorm_inference` with respect to x (a frozen BatchNorm's backward).

        The statistics are constants, so only the per-channel scale remains:
        dx = dy * gamma_c / sqrt(running_var_c + eps).
        dy (N, C) or (N, C, H, W); gamma, running_var (C,) -> dx like dy.
        """
        check_batchnorm("batchnorm_inference_backward", dy, gamma, running_var=running_var)
        eps = check_eps("batchnorm_inference_backward", eps)
        scale = gamma / np.sqrt(running_var + dy.dtype.type(eps))
        return (dy * _channel(scale, dy.ndim)).astype(dy.dtype, copy=False)
