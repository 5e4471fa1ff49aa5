"""Loss kernels: fused softmax cross-entropy, sigmoid cross-entropy and mean squared error.

Per-row (or per-block) partial losses are written to an array and summed by the
caller in a fixed order, so a loss does not depend on the thread count.
"""

import numpy as np
from numba import prange

from .._config import FASTMATH_IN_ORDER, parallel_kernel
from ._blocks import block_count
from ._scalars import typed
from .activations import softmax_row
from .tuning import BLOCK, SUM_BLOCK


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def softmax_cross_entropy_indices(logits, t, probs, row_losses):
    """Softmax of logits (N, C) into probs and -log p[n, t[n]] into row_losses (N,).

    log p = z - max z - log(sum exp(z - max z)): finite for any finite logits. Its sums run
    in column order in every build, as :func:`~fastnn.kernels.activations.softmax_forward`'s.
    """
    for i in prange(logits.shape[0]):
        row_max, total = softmax_row(logits, i, probs)
        row_losses[i] = np.log(total) - (logits[i, t[i]] - row_max)


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def softmax_cross_entropy_dense(logits, t, probs, row_losses):
    """As the index version, with one-hot or soft targets t (N, C): -sum_c t_c log p_c."""
    for i in prange(logits.shape[0]):
        row_max, total = softmax_row(logits, i, probs)
        shift = row_max + np.log(total)
        loss = typed(logits, 0.0)
        for j in range(logits.shape[1]):
            loss -= t[i, j] * (logits[i, j] - shift)
        row_losses[i] = loss


@parallel_kernel
def softmax_cross_entropy_backward_indices(probs, t, scale, grad):
    """grad = (probs - onehot(t)) * scale, with scale = 1 / N."""
    n, c = probs.shape
    for i in prange(n):
        for j in range(c):
            grad[i, j] = probs[i, j] * scale
        grad[i, t[i]] -= scale


@parallel_kernel
def softmax_cross_entropy_backward_dense(probs, t, scale, grad):
    """grad = (probs - t) * scale, with scale = 1 / N."""
    n, c = probs.shape
    for i in prange(n):
        for j in range(c):
            grad[i, j] = (probs[i, j] - t[i, j]) * scale


@parallel_kernel
def sigmoid_cross_entropy(logits, t, probs, row_losses):
    """sigmoid(logits) (N, C) into probs and sum_c [max(z, 0) - z t + log(1 + exp(-|z|))] into
    row_losses (N,), for 0/1 targets t (N, C) of the logits' dtype.

    exp(-|z|) lies in (0, 1], so nothing overflows: finite for any finite logits.
    """
    one = typed(logits, 1.0)
    zero = typed(logits, 0.0)
    for i in prange(logits.shape[0]):
        loss = zero
        for j in range(logits.shape[1]):
            z = logits[i, j]
            e = np.exp(-abs(z))
            loss += max(z, zero) - z * t[i, j] + np.log1p(e)
            probs[i, j] = one / (one + e) if z >= zero else e / (one + e)
        row_losses[i] = loss


@parallel_kernel
def squared_error_blocks(y, t, block_sums):
    """block_sums[k] = sum of (y - t)**2 over flat block k of SUM_BLOCK elements."""
    size = y.size
    for block in prange(block_sums.size):
        start = block * SUM_BLOCK
        stop = min(start + SUM_BLOCK, size)
        total = typed(y, 0.0)
        for i in range(start, stop):
            d = y[i] - t[i]
            total += d * d
        block_sums[block] = total


@parallel_kernel
def mse_backward(y, t, scale, dy):
    """dy = (y - t) * scale, flat, with scale = 1 / N."""
    for block in prange(block_count(y.size)):
        for k in range(block * BLOCK, min(y.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dy[i] = (y[i] - t[i]) * scale
