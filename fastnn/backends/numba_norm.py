"""Numba-backed batch normalisation: validate like the reference, allocate, call kernels.

Same signatures, formulas and errors as
:class:`~fastnn.backends.numpy_norm.NumpyNormOps`; the kernels are in
:mod:`fastnn.kernels.norm`.
"""

from __future__ import annotations

import numpy as np

from ..kernels import activations as act_kernels
from ..kernels import norm as norm_kernels
from ..kernels import tuning
from ..kernels.activations import ACT_IDENTITY, ACTIVATION_CODES, for_code
from ._arrays import channel_window
from ._arrays import contiguous as _c
from .op_checks import check_batchnorm, check_bn_activation, check_eps, check_out, check_residual


def _planes(x: np.ndarray) -> np.ndarray:
    """x (N, C) or (N, C, H, W) as a contiguous (N, C, S) array."""
    x = _c(x)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _block(channels: int, per_channel: int) -> int:
    """Channels per work item: about tuning.BLOCK_VALUES values, and at least 4 items when C allows."""
    block = max(1, -(-tuning.BLOCK_VALUES // max(per_channel, 1)))
    return int(min(block, max(1, -(-channels // 4))))


#: The activations' backward kernels, which the fused backward on (N, D) rows runs into dx
#: first (the standalone ops' own numbers, and there faster than the batch norm kernel's
#: own per-row loop). On (N, C, H, W) the batch norm kernel writes each row of g into dx
#: itself, just before it sums that row, the same numbers with one pass fewer over memory
#: (``python benchmarks/bench_fast_paths.py`` times the two ways).
_GRADIENT_KERNELS = {
    "relu": act_kernels.relu_backward,
    "leaky_relu": act_kernels.leaky_relu_backward,
    "sigmoid": act_kernels.sigmoid_backward,
    "tanh": act_kernels.tanh_backward,
}


#: The ``r`` argument of batchnorm_forward without a residual: an empty (N, C, S) array.
_UNUSED = {np.dtype(t): np.empty((0, 0, 0), dtype=t) for t in (np.float32, np.float64)}


def _activate(ops, activation: str, y: np.ndarray, alpha) -> np.ndarray:
    """f(y) by the activation op of that name (identity: y itself)."""
    if activation == "identity":
        return y
    return getattr(ops, activation)(y, *_alpha(activation, y.dtype, alpha))


def _alpha(activation, dtype, alpha):
    """The activation kernel's extra argument: leaky ReLU's slope, in the array's dtype."""
    return (dtype.type(alpha),) if activation == "leaky_relu" else ()


class NumbaNormOps:
    """Batch normalisation on Numba kernels; see NumpyNormOps for the formulas."""

    def batchnorm(self, x, gamma, beta, eps=1e-5, activation=None, alpha=0.0, out=None, residual=None):
        """Training-mode batch norm; returns (y, mean, var).

        mean_c = mean of x over (N[, H, W]);  var_c = mean of (x - mean_c)**2 (biased);
        y = gamma_c * (x - mean_c) / sqrt(var_c + eps) + beta_c.
        x (N, C) or (N, C, H, W); gamma, beta (C,) -> y like x, mean (C,), var (C,).
        ``activation`` ("relu", "sigmoid", "tanh", "leaky_relu" with slope ``alpha``, or
        None / "identity"): y is f(bn(x)), f applied in the same pass, with the
        activation op's formula. ``residual`` (x's shape and dtype): y is f(bn(x) +
        residual), the numbers of ``add`` and then the activation op (on (N, C, H, W) in
        the same pass: a residual block's sum and its ReLU). ``out``: an array of x's shape
        and dtype to write y into, returned as y; the kernel writes a channel slice of a
        C-contiguous (N, C', H, W) array (a ``Concat`` block's output) where it lies,
        anything else gets a copy.
        """
        channels, _ = check_batchnorm("batchnorm", x, gamma, beta=beta)
        eps = check_eps("batchnorm", eps)
        activation = check_bn_activation("batchnorm", activation, alpha)
        check_out("batchnorm", out, x)
        if residual is not None:
            check_residual("batchnorm", residual, x)
        x3 = _planes(x)
        dtype = x3.dtype
        images = x3.shape[2] > 1
        if residual is not None and not images:  # (N, D): the sum and f after the kernel
            y, mean, var = self.batchnorm(x, gamma, beta, eps)
            y = _activate(self, activation, self.add(y, residual, out=y), alpha)
            if out is not None:
                out[...] = y
                return out, mean, var
            return y, mean, var
        window = channel_window(out) if out is not None and images else None
        y, yc = window if window is not None else (np.empty_like(x3), 0)
        mean = np.empty(channels, dtype)
        var = np.empty(channels, dtype)
        inv_std = np.empty(channels, dtype)
        code = ACTIVATION_CODES[activation]
        settings = (
            _c(gamma),
            _c(beta),
            dtype.type(eps),
            _block(channels, x3.shape[2]),
            code,
            dtype.type(alpha),
        )
        if images:  # the sigmoid's and tanh's exp and tanh in a kernel of their own
            kernel = for_code(norm_kernels.batchnorm_forward_smooth, norm_kernels.batchnorm_forward, code)
            r = _UNUSED[dtype] if residual is None else _planes(residual)
            kernel(x3.size, x3, *settings, r, y, yc, mean, var, inv_std)
        else:  # (N, D): the per-feature kernel
            norm_kernels.batchnorm_forward_features(x3.size, x3, *settings, y, mean, var, inv_std)
        if window is not None:
            return out, mean, var
        if out is not None:
            out[...] = y.reshape(x.shape)
            return out, mean, var
        return y.reshape(x.shape), mean, var

    def batchnorm_backward(self, dy, x, gamma, mean, var, eps=1e-5, activation=None, act_out=None, alpha=0.0):
        """Gradients of training-mode batch norm; returns (dx, dgamma, dbeta).

        With xhat = (x - mean) / sqrt(var + eps) and M values per channel:
        dbeta = sum dy;  dgamma = sum dy * xhat;
        dx = gamma / sqrt(var + eps) / M * (M * dy - dbeta - xhat * dgamma).
        ``mean`` and ``var`` are the ones :meth:`batchnorm` returned for this x.
        ``activation`` (with ``act_out``, the y of ``batchnorm(..., activation=...)``, and
        ``alpha``): dy is the gradient of f(bn(x)), and g = dy * f' (the activation's backward
        op's numbers, from f's output) replaces dy above. g is kept in dx (no array of its
        own): the batch norm kernel writes each row of it just before summing that row, or
        on (N, D) rows the activation's backward kernel writes all of it first. dy and
        act_out may be channel slices of C-contiguous (N, C', H, W) arrays (a ``Concat``
        block's gradient and output): with an activation the kernel reads them where they lie.
        """
        channels, _ = check_batchnorm("batchnorm_backward", x, gamma, dy=dy, mean=mean, var=var)
        eps = check_eps("batchnorm_backward", eps)
        activation = check_bn_activation("batchnorm_backward", activation, alpha, dy=dy, act_out=act_out)
        x3 = _planes(x)
        dtype = x3.dtype
        dx = np.empty_like(x3)
        dgamma = np.empty(channels, dtype)
        dbeta = np.empty(channels, dtype)
        code = ACTIVATION_CODES[activation]
        features = x3.shape[2] == 1  # (N, D): the per-feature kernel
        windows = (None, None)
        if code != ACT_IDENTITY and not features:  # the kernel reads dy and act_out where they lie
            windows = channel_window(dy), channel_window(act_out)
        if None not in windows:
            (dy3, dc), (act3, ac) = windows
        else:
            dy3, dc = _planes(dy), 0
            act3, ac = (dy3 if act_out is None else _planes(act_out)), 0
        if code != ACT_IDENTITY and features:  # g = dy * f' into dx first
            _GRADIENT_KERNELS[activation](
                x3.size, dy3.reshape(-1), act3.reshape(-1), *_alpha(activation, dtype, alpha), dx.reshape(-1)
            )
            code = norm_kernels.GRADIENT_IN_DX
        statistics = (_c(gamma), _c(mean), _c(var), dtype.type(eps), _block(channels, x3.shape[2]))
        if features:
            norm_kernels.batchnorm_backward_features(
                x3.size, dy3, x3, *statistics, code, dtype.type(alpha), act3, dx, dgamma, dbeta
            )
        else:
            norm_kernels.batchnorm_backward(
                x3.size, dy3, dc, x3, *statistics, code, dtype.type(alpha), act3, ac, dx, dgamma, dbeta
            )
        return dx.reshape(x.shape), dgamma, dbeta

    def batchnorm_inference(self, x, gamma, beta, running_mean, running_var, eps=1e-5):
        """Inference-mode batch norm with fixed statistics.

        y = gamma_c * (x - running_mean_c) / sqrt(running_var_c + eps) + beta_c.
        """
        channels, _ = check_batchnorm(
            "batchnorm_inference", x, gamma, beta=beta, running_mean=running_mean, running_var=running_var
        )
        eps = check_eps("batchnorm_inference", eps)
        x3 = _planes(x)
        dtype = x3.dtype
        # (C,) coefficients, folded once: y = x * scale + shift
        scale = (gamma / np.sqrt(running_var + dtype.type(eps))).astype(dtype, copy=False)
        shift = (beta - running_mean * scale).astype(dtype, copy=False)
        y = np.empty_like(x3)
        norm_kernels.channel_affine(x3.size, x3, _c(scale), _c(shift), _block(channels, x3.shape[2]), y)
        return y.reshape(x.shape)

    def batchnorm_inference_backward(self, dy, gamma, running_var, eps=1e-5):
        """Gradient of :meth:`batchnorm_inference` with respect to x (a frozen BatchNorm's backward).

        The statistics are constants, so only the per-channel scale remains:
        dx = dy * gamma_c / sqrt(running_var_c + eps).
        dy (N, C) or (N, C, H, W); gamma, running_var (C,) -> dx like dy.
        """
        channels, _ = check_batchnorm("batchnorm_inference_backward", dy, gamma, running_var=running_var)
        eps = check_eps("batchnorm_inference_backward", eps)
        dy3 = _planes(dy)
        dtype = dy3.dtype
        scale = (gamma / np.sqrt(running_var + dtype.type(eps))).astype(dtype, copy=False)  # (C,), once
        dx = np.empty_like(dy3)
        norm_kernels.channel_scale(dy3.size, dy3, _c(scale), _block(channels, dy3.shape[2]), dx)
        return dx.reshape(dy.shape)
