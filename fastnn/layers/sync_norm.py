"""Batch normalisation with statistics over every rank of a data-parallel run (SyncBatchNorm).

Rank r holds n_r of the global batch's samples, its share ``s_r = n_r / n``, and
backpropagates s_r times the mean loss over its shard: its part of the mean loss over the
global batch, so dy on rank r is that global loss's gradient for its samples, and the step
sums the ranks' gradients. With M values per channel over all ranks:

    mean = sum_all(x) / M,  var = sum_all(x**2) / M - mean**2 (biased),
    xhat = (x - mean) / sqrt(var + eps),  y = gamma * xhat + beta;

backward:

    dbeta = sum dy,  dgamma = sum dy * xhat (this rank's terms; the step sums them),
    dx = gamma / sqrt(var + eps) / M * (M * dy - sum_all(dy) - xhat * sum_all(dy * xhat)).

M is this rank's values per channel divided by its share s_r (``batch_share``).

Each pass makes one allreduce of a float64 array of about 2C values. ``comm`` is a
:class:`fastnn.distributed.Communicator` (``allreduce_``, ``batch_share``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["synced_batchnorm", "synced_batchnorm_backward"]


def _axes(x: np.ndarray) -> tuple:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v if ndim == 2 else v[None, :, None, None]


def synced_batchnorm(x, gamma, beta, eps: float, comm):
    """Training-mode batch norm over all ranks: returns (y like x, mean (C,), var (C,), inv_std (C,))."""
    axes = _axes(x)
    wide = x.astype(np.float64)
    channels = x.shape[1]
    sums = np.concatenate([wide.sum(axis=axes), (wide * wide).sum(axis=axes), [x.size // channels]])
    comm.allreduce_(sums)
    count = sums[-1]
    mean = sums[:channels] / count
    var = np.maximum(sums[channels : 2 * channels] / count - mean * mean, 0.0)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (wide - _channel(mean, x.ndim)) * _channel(inv_std, x.ndim)
    y = _channel(gamma.astype(np.float64), x.ndim) * xhat + _channel(beta.astype(np.float64), x.ndim)
    dtype = x.dtype
    return y.astype(dtype), mean.astype(dtype), var.astype(dtype), inv_std


def synced_batchnorm_backward(dy, x, gamma, mean, inv_std, comm):
    """(dx like x, dgamma (C,), dbeta (C,)) of :func:`synced_batchnorm` for this rank's part dy
    of the global loss's gradient."""
    axes = _axes(x)
    share = comm.batch_share
    wide_dy = dy.astype(np.float64)
    xhat = (x.astype(np.float64) - _channel(mean.astype(np.float64), x.ndim)) * _channel(inv_std, x.ndim)
    dbeta = wide_dy.sum(axis=axes)
    dgamma = (wide_dy * xhat).sum(axis=axes)
    sums = np.stack([dbeta, dgamma])
    comm.allreduce_(sums)
    local = x.size // x.shape[1]
    count = round(local / share)  # M: every rank's values per channel
    scale = _channel(gamma.astype(np.float64) * inv_std, x.ndim) / count
    dx = scale * (count * wide_dy - _channel(sums[0], x.ndim) - xhat * _channel(sums[1], x.ndim))
    return dx.astype(x.dtype), dgamma.astype(x.dtype), dbeta.astype(x.dtype)
