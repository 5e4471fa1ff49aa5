"""Numba-backed loss ops: validate like the reference, allocate, call a kernel.

Each method keeps the signature and contract of
:class:`~fastnn.backends.numpy_losses.NumpyLossOps`. The kernels
(:mod:`fastnn.kernels.losses`) write per-row or per-block partial losses, summed here
in a fixed order, so a loss does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_same_dtype, check_targets
from ..kernels import losses as loss_kernels
from ..kernels import tuning
from ._arrays import contiguous as _c
from ._arrays import flat as _flat
from .op_checks import check_logits_and_binary_targets, check_logits_and_targets


class NumbaLossOps:
    """Losses on Numba kernels; see NumpyLossOps for the formulas."""

    def softmax_cross_entropy(self, logits, t):
        """Mean cross-entropy of softmax(logits) against targets; returns (loss, probs).

        logits (N, C); t class indices (N,) or one-hot/soft targets (N, C).
        loss = -(1/N) sum_n sum_c t_nc log p_nc with log p = z - max z - log sum exp(z - max z),
        which stays finite for any finite logits. ``loss`` is a Python float.
        """
        n, classes = check_logits_and_targets("softmax_cross_entropy", logits, t)
        logits = _c(logits)
        probs = np.empty_like(logits)
        row_losses = np.empty(n, dtype=logits.dtype)
        if t.ndim == 1:
            loss_kernels.softmax_cross_entropy_indices(
                logits.size, logits, _c(t.astype(np.int64, copy=False)), probs, row_losses
            )
        else:
            loss_kernels.softmax_cross_entropy_dense(
                logits.size, logits, _c(t.astype(logits.dtype, copy=False)), probs, row_losses
            )
        return float(row_losses.sum() / max(n, 1)), probs

    def softmax_cross_entropy_backward(self, probs, t):
        """d loss / d logits = (probs - onehot(t)) / N.  probs (N, C) -> (N, C)."""
        check_same_dtype("softmax_cross_entropy_backward", probs=probs)
        n, classes = probs.shape
        check_targets("softmax_cross_entropy_backward", t, n, classes)
        probs = _c(probs)
        grad = np.empty_like(probs)
        scale = probs.dtype.type(1.0 / max(n, 1))
        if t.ndim == 1:
            loss_kernels.softmax_cross_entropy_backward_indices(
                probs.size, probs, _c(t.astype(np.int64, copy=False)), scale, grad
            )
        else:
            loss_kernels.softmax_cross_entropy_backward_dense(
                probs.size, probs, _c(t.astype(probs.dtype, copy=False)), scale, grad
            )
        return grad

    def sigmoid_cross_entropy(self, logits, t):
        """Cross-entropy of sigmoid(logits) against 0/1 targets, summed over the outputs and
        averaged over the batch (Nielsen's C); returns (loss, probs).

        logits (N, C); t 0/1 targets (N, C), or (N,) when C == 1, of any numeric dtype.
        loss = (1/N) sum_n sum_c [max(z, 0) - z t + log(1 + exp(-|z|))] = -(1/N) sum t log p
        + (1 - t) log(1 - p) with p = sigmoid(z), finite for any finite logits; C times
        PyTorch's BCEWithLogitsLoss(). ``loss`` is a Python float; probs = sigmoid(logits).
        """
        n, outputs = check_logits_and_binary_targets("sigmoid_cross_entropy", logits, t)
        logits = _c(logits)
        t = _c(t.reshape(n, outputs).astype(logits.dtype, copy=False))
        probs = np.empty_like(logits)
        row_losses = np.empty(n, dtype=logits.dtype)
        loss_kernels.sigmoid_cross_entropy(logits.size, logits, t, probs, row_losses)
        return float(row_losses.sum() / max(n, 1)), probs

    def sigmoid_cross_entropy_backward(self, probs, t):
        """d loss / d logits = (probs - t) / N.  probs (N, C), t as in the forward -> (N, C)."""
        n, outputs = check_logits_and_binary_targets("sigmoid_cross_entropy_backward", probs, t, "probs")
        probs = _c(probs)
        grad = np.empty_like(probs)
        # the gradient has the softmax cross-entropy's form with dense targets: (p - t) / N
        loss_kernels.softmax_cross_entropy_backward_dense(
            probs.size,
            probs,
            _c(t.reshape(n, outputs).astype(probs.dtype, copy=False)),
            probs.dtype.type(1.0 / max(n, 1)),
            grad,
        )
        return grad

    def mse(self, y, t):
        """loss = (1/N) sum_n 0.5 * sum_j (y_nj - t_nj)**2.  y, t (N, ...) -> float."""
        check_same_dtype("mse", y=y, t=t)
        if y.shape != t.shape:
            raise ValueError(f"mse: expected t of shape {y.shape}, got {t.shape}")
        n = y.shape[0] if y.ndim else 1
        yf, tf = _flat(y), _flat(t)
        blocks = np.empty(max(1, -(-yf.size // tuning.SUM_BLOCK)), dtype=yf.dtype)
        loss_kernels.squared_error_blocks(yf.size, yf, tf, blocks)
        return float(0.5 * blocks.sum() / max(n, 1))

    def mse_backward(self, y, t):
        """d loss / d y = (y - t) / N."""
        check_same_dtype("mse_backward", y=y, t=t)
        if y.shape != t.shape:
            raise ValueError(f"mse_backward: expected t of shape {y.shape}, got {t.shape}")
        n = y.shape[0] if y.ndim else 1
        yf, tf = _flat(y), _flat(t)
        dy = np.empty_like(yf)
        loss_kernels.mse_backward(yf.size, yf, tf, y.dtype.type(1.0 / max(n, 1)), dy)
        return dy.reshape(y.shape)


__all__ = ["NumbaLossOps"]
