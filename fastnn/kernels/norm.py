"""Batch-normalisation kernels, forward (training and inference) and backward.

Every kernel sees its input as x (N, C, S): C channels (or features) of S values
per sample (S = H*W for images, 1 for (N, D) inputs). It runs in parallel over
blocks of ``block`` consecutive channels; a thread owns its channels' sums and
outputs, so nothing is shared and no atomics are needed. Each channel's sums are
taken in one fixed order (rows of S values added into a per-channel total, n
ascending), and the caller picks ``block`` from the shape alone, so the results do
not depend on the thread count.
"""

import numpy as np
from numba import prange

from .._config import jit, parallel_kernel
from ._scalars import typed


@parallel_kernel
def batchnorm_forward(x, gamma, beta, eps, block, y, mean, var, inv_std):
    """Batch statistics and y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel.

    mean[c] = mean of x[:, c, :]; var[c] = mean of (x[:, c, :] - mean[c])**2 (biased,
    two passes for accuracy); inv_std[c] = 1 / sqrt(var[c] + eps).
    """
    N, C, S = x.shape
    zero = typed(x, 0.0)
    one = typed(x, 1.0)
    inv_count = one / typed(x, N * S)
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        for c in range(c0, c1):
            mean[c] = zero
            var[c] = zero
        if S == 1:  # (N, D): the inner loops run over contiguous features
            for n in range(N):
                for c in range(c0, c1):
                    mean[c] += x[n, c, 0]
            for c in range(c0, c1):
                mean[c] *= inv_count
            for n in range(N):
                for c in range(c0, c1):
                    d = x[n, c, 0] - mean[c]
                    var[c] += d * d
        else:
            for n in range(N):
                for c in range(c0, c1):
                    part = zero
                    for s in range(S):
                        part += x[n, c, s]
                    mean[c] += part
            for c in range(c0, c1):
                mean[c] *= inv_count
            for n in range(N):
                for c in range(c0, c1):
                    m = mean[c]
                    part = zero
                    for s in range(S):
                        d = x[n, c, s] - m
                        part += d * d
                    var[c] += part
        for c in range(c0, c1):
            var[c] *= inv_count
            inv_std[c] = one / np.sqrt(var[c] + eps)
        _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, y)


@jit(inline="always")
def _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, y):
    """y = (x - mean) * inv_std * gamma + beta for channels c0..c1, folded to x * k + d."""
    N, C, S = x.shape
    if S == 1:
        for n in range(N):
            for c in range(c0, c1):
                k = gamma[c] * inv_std[c]
                y[n, c, 0] = x[n, c, 0] * k + (beta[c] - mean[c] * k)
    else:
        for n in range(N):
            for c in range(c0, c1):
                k = gamma[c] * inv_std[c]
                d = beta[c] - mean[c] * k
                for s in range(S):
                    y[n, c, s] = x[n, c, s] * k + d


@parallel_kernel
def channel_affine(x, scale, shift, block, y):
    """y[n, c, s] = x[n, c, s] * scale[c] + shift[c] (batch norm at inference)."""
    N, C, S = x.shape
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        if S == 1:
            for n in range(N):
                for c in range(c0, c1):
                    y[n, c, 0] = x[n, c, 0] * scale[c] + shift[c]
        else:
            for n in range(N):
                for c in range(c0, c1):
                    k = scale[c]
                    d = shift[c]
                    for s in range(S):
                        y[n, c, s] = x[n, c, s] * k + d


@parallel_kernel
def batchnorm_backward(dy, x, gamma, mean, var, eps, block, dx, dgamma, dbeta):
    """Gradients of batch norm in training mode, per channel over M = N*S values.

    dbeta = sum dy;  dgamma = sum dy * xhat;
    dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma),
    with xhat = (x - mean) * inv_std and inv_std = 1 / sqrt(var + eps).
    """
    N, C, S = x.shape
    zero = typed(x, 0.0)
    one = typed(x, 1.0)
    inv_count = one / typed(x, N * S)
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        for c in range(c0, c1):
            dbeta[c] = zero
            dgamma[c] = zero
        if S == 1:  # (N, D): the inner loops run over contiguous features
            for n in range(N):
                for c in range(c0, c1):
                    g = dy[n, c, 0]
                    dbeta[c] += g
                    dgamma[c] += g * (x[n, c, 0] - mean[c])
        else:
            for n in range(N):
                for c in range(c0, c1):
                    m = mean[c]
                    sum_dy = zero
                    sum_dy_xc = zero
                    for s in range(S):
                        g = dy[n, c, s]
                        sum_dy += g
                        sum_dy_xc += g * (x[n, c, s] - m)
                    dbeta[c] += sum_dy
                    dgamma[c] += sum_dy_xc
        for c in range(c0, c1):
            dgamma[c] *= one / np.sqrt(var[c] + eps)
        if S == 1:
            for n in range(N):
                for c in range(c0, c1):
                    inv_std = one / np.sqrt(var[c] + eps)
                    k_dy = gamma[c] * inv_std
                    dx[n, c, 0] = k_dy * (
                        dy[n, c, 0]
                        - dbeta[c] * inv_count
                        - inv_std * dgamma[c] * inv_count * (x[n, c, 0] - mean[c])
                    )
        else:
            for n in range(N):
                for c in range(c0, c1):
                    inv_std = one / np.sqrt(var[c] + eps)
                    k_dy = gamma[c] * inv_std
                    k_const = k_dy * dbeta[c] * inv_count
                    k_x = k_dy * inv_std * dgamma[c] * inv_count
                    m = mean[c]
                    for s in range(S):
                        dx[n, c, s] = k_dy * dy[n, c, s] - k_const - k_x * (x[n, c, s] - m)
