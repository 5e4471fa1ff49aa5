"""Fused optimizer steps over one flat parameter buffer (PyTorch's formulas).

Each kernel updates ``params`` and its state in place in a single pass. The
gradient used is g = grads + weight_decay * p + l1 * sign(p). Scalars arrive
already cast to the buffer's dtype.

State that decays (momentum, RMSProp's and Adam's averages) is flushed to zero once
it falls below the dtype's smallest normal number (:func:`flush`): a parameter whose
gradient stays zero (an MNIST border pixel's weights) otherwise decays into subnormal
numbers within a thousand steps, and arithmetic on them is slow on x86: an Adam step
over 90k parameters with a quarter of its state subnormal runs several times slower
than with normal state (``python benchmarks/bench_fast_paths.py`` prints the ratio).
What is dropped is below 1.2e-38 (float32), far under any update it could make.
"""

import numpy as np
from numba import prange

from .._config import jit, parallel_kernel
from ._blocks import block_count
from ._scalars import typed
from .tuning import BLOCK


@jit(inline="always")
def regularised(p, g, weight_decay, l1):
    """g + weight_decay * p + l1 * sign(p) (sign(0) = 0)."""
    g = g + weight_decay * p
    if p > 0:
        g += l1
    elif p < 0:
        g -= l1
    return g


@jit(inline="always")
def flush(v, tiny):
    """v, or 0 when |v| < tiny (a subnormal number); NaN stays NaN."""
    return v - v if abs(v) < tiny else v


@jit(inline="always")
def smallest_normal(params):
    """The smallest positive normal number of params' dtype, as that dtype."""
    return typed(params, np.finfo(params.dtype).tiny)


@parallel_kernel
def sgd(params, grads, lr, weight_decay, l1):
    """p <- p - lr * g."""
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            params[i] = p - lr * regularised(p, grads[i], weight_decay, l1)


@parallel_kernel
def momentum(params, grads, velocity, lr, mu, weight_decay, l1):
    """v <- mu v + g;  p <- p - lr v."""
    tiny = smallest_normal(params)
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            v = flush(mu * velocity[i] + regularised(p, grads[i], weight_decay, l1), tiny)
            velocity[i] = v
            params[i] = p - lr * v


@parallel_kernel
def nesterov(params, grads, velocity, lr, mu, weight_decay, l1):
    """v <- mu v + g;  p <- p - lr (g + mu v)."""
    tiny = smallest_normal(params)
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            g = regularised(p, grads[i], weight_decay, l1)
            v = flush(mu * velocity[i] + g, tiny)
            velocity[i] = v
            params[i] = p - lr * (g + mu * v)


@parallel_kernel
def adagrad(params, grads, sum_sq, lr, eps, weight_decay, l1):
    """s <- s + g**2;  p <- p - lr g / (sqrt(s) + eps)."""
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            g = regularised(p, grads[i], weight_decay, l1)
            s = sum_sq[i] + g * g
            sum_sq[i] = s
            params[i] = p - lr * g / (np.sqrt(s) + eps)


# strict arithmetic, as adam: with fast-math, LLVM fused the multiply-adds of the average
# differently in the serial and the parallel build, whose steps then differed in the last
# bit (test_the_serial_and_parallel_builds_agree_bit_for_bit)
@parallel_kernel(fastmath=False)
def rmsprop(params, grads, square_avg, lr, decay, eps, weight_decay, l1):
    """s <- decay s + (1 - decay) g**2;  p <- p - lr g / (sqrt(s) + eps)."""
    one = typed(params, 1.0)
    tiny = smallest_normal(params)
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            g = regularised(p, grads[i], weight_decay, l1)
            s = flush(decay * square_avg[i] + (one - decay) * g * g, tiny)
            square_avg[i] = s
            params[i] = p - lr * g / (np.sqrt(s) + eps)


# strict arithmetic: with fast-math, the build of this kernel compiled in a process and the
# one loaded from the kernel cache gave steps that differed in the last bit, so a fresh
# process and a warm one trained different weights (tests/test_determinism.py); strict
# arithmetic costs the step some speed (no script times the two builds side by side)
@parallel_kernel(fastmath=False)
def adam(params, grads, m, v, step_size, beta1, beta2, eps, bias_correction2_sqrt, weight_decay, l1):
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g**2;  p <- p - step_size m / (sqrt(v)/bc2 + eps).

    step_size = lr / (1 - b1**t) and bc2 = sqrt(1 - b2**t) come precomputed.
    """
    one = typed(params, 1.0)
    tiny = smallest_normal(params)
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            g = regularised(p, grads[i], weight_decay, l1)
            mi = flush(beta1 * m[i] + (one - beta1) * g, tiny)
            vi = flush(beta2 * v[i] + (one - beta2) * g * g, tiny)
            m[i] = mi
            v[i] = vi
            params[i] = p - step_size * mi / (np.sqrt(vi) / bias_correction2_sqrt + eps)


# strict arithmetic, as adam: the cached and the freshly compiled build must give the same bits
@parallel_kernel(fastmath=False)
def adamw(params, grads, m, v, step_size, beta1, beta2, eps, bias_correction2_sqrt, decay_factor, l1):
    """p <- decay_factor p (decoupled weight decay, decay_factor = 1 - lr wd); then Adam's step
    p <- p - step_size m / (sqrt(v)/bc2 + eps) with g = grads + l1 sign(p) (no weight decay in g).

    step_size = lr / (1 - b1**t), bc2 = sqrt(1 - b2**t) and decay_factor come precomputed.
    """
    one = typed(params, 1.0)
    tiny = smallest_normal(params)
    zero = typed(params, 0.0)
    for block in prange(block_count(params.size)):
        for k in range(block * BLOCK, min(params.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            p = params[i]
            g = regularised(p, grads[i], zero, l1)
            mi = flush(beta1 * m[i] + (one - beta1) * g, tiny)
            vi = flush(beta2 * v[i] + (one - beta2) * g * g, tiny)
            m[i] = mi
            v[i] = vi
            params[i] = p * decay_factor - step_size * mi / (np.sqrt(vi) / bias_correction2_sqrt + eps)
