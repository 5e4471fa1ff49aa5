"""The NumPy reference for the loss ops: softmax and sigmoid cross-entropy, mean squared error.

Plain, readable NumPy: this is the oracle every Numba kernel is tested against.
Every loss is the batch mean and is returned as a Python float; gradients have the
dtype they were given. Inputs are never modified. Shapes: N batch, C classes.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_same_dtype, check_targets
from .op_checks import check_logits_and_binary_targets, check_logits_and_targets


class NumpyLossOps:
    """Reference losses and their gradients with respect to the network's output."""

    def softmax_cross_entropy(self, logits, t):
        """Mean cross-entropy of softmax(logits) against targets; returns (loss, probs).

        logits (N, C); t class indices (N,) or one-hot/soft targets (N, C).
        loss = -(1/N) sum_n sum_c t_nc log p_nc with log p = z - max z - log sum exp(z - max z),
        which stays finite for any finite logits. ``loss`` is a Python float.
        """
        n, classes = check_logits_and_targets("softmax_cross_entropy", logits, t)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_sum
        if t.ndim == 1:
            picked = log_probs[np.arange(n), t]
        else:
            picked = (t.astype(logits.dtype) * log_probs).sum(axis=1)
        loss = -picked.sum() / max(n, 1)
        return float(loss), np.exp(log_probs)

    def softmax_cross_entropy_backward(self, probs, t):
        """d loss / d logits = (probs - onehot(t)) / N.  probs (N, C) -> (N, C)."""
        check_same_dtype("softmax_cross_entropy_backward", probs=probs)
        n, classes = probs.shape
        check_targets("softmax_cross_entropy_backward", t, n, classes)
        grad = probs.copy()
        if t.ndim == 1:
            grad[np.arange(n), t] -= 1
        else:
            grad -= t.astype(probs.dtype)
        return grad / probs.dtype.type(max(n, 1))

    def sigmoid_cross_entropy(self, logits, t):
        """Cross-entropy of sigmoid(logits) against 0/1 targets, summed over the outputs and
        averaged over the batch (Nielsen's C); returns (loss, probs).

        logits (N, C); t 0/1 targets (N, C), or (N,) when C == 1, of any numeric dtype.
        loss = (1/N) sum_n sum_c [max(z, 0) - z t + log(1 + exp(-|z|))] = -(1/N) sum t log p
        + (1 - t) log(1 - p) with p = sigmoid(z), finite for any finite logits; C times
        PyTorch's BCEWithLogitsLoss(). ``loss`` is a Python float; probs = sigmoid(logits).
        """
        n, outputs = check_logits_and_binary_targets("sigmoid_cross_entropy", logits, t)
        t = t.reshape(n, outputs).astype(logits.dtype, copy=False)
        e = np.exp(-np.abs(logits))
        losses = np.maximum(logits, 0) - logits * t + np.log1p(e)
        one = logits.dtype.type(1)
        probs = np.where(logits >= 0, one / (one + e), e / (one + e))
        return float(losses.sum() / max(n, 1)), probs

    def sigmoid_cross_entropy_backward(self, probs, t):
        """d loss / d logits = (probs - t) / N.  probs (N, C), t as in the forward -> (N, C)."""
        n, outputs = check_logits_and_binary_targets("sigmoid_cross_entropy_backward", probs, t, "probs")
        return (probs - t.reshape(n, outputs).astype(probs.dtype)) / probs.dtype.type(max(n, 1))

    def mse(self, y, t):
        """loss = (1/N) sum_n 0.5 * sum_j (y_nj - t_nj)**2.  y, t (N, ...) -> float."""
        check_same_dtype("mse", y=y, t=t)
        if y.shape != t.shape:
            raise ValueError(f"mse: expected t of shape {y.shape}, got {t.shape}")
        n = y.shape[0] if y.ndim else 1
        diff = y - t
        return float(0.5 * (diff * diff).sum() / max(n, 1))

    def mse_backward(self, y, t):
        """d loss / d y = (y - t) / N."""
        check_same_dtype("mse_backward", y=y, t=t)
        if y.shape != t.shape:
            raise ValueError(f"mse_backward: expected t of shape {y.shape}, got {t.shape}")
        n = y.shape[0] if y.ndim else 1
        return (y - t) / y.dtype.type(max(n, 1))


__all__ = ["NumpyLossOps"]
