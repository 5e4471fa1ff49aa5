"""Numba-backed dense ops: validate like the reference, allocate, call a kernel.

Each method keeps the reference's signature and docstring contract (see
:class:`~fastnn.backends.numpy_dense.NumpyDenseOps`); the consistency test
checks that nothing here drifts from it.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_grad_outputs, check_same_dtype, check_shape, check_targets
from .._config import PARALLEL_THRESHOLD
from ..kernels import activations as act
from ..kernels import affine as aff
from ..kernels.finite import count_nonfinite
from ..kernels import losses as loss_kernels
from ..kernels import optim as optim_kernels
from .numpy_dense import (
    _affine_shapes,
    _check_activation_grad,
    _check_logits_and_targets,
    _check_step,
    _native_copy,
    adam_bias_corrections,
)
from .scratch import scratch


def _c(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, native-endian view or copy (kernels index raw memory)."""
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return np.ascontiguousarray(x)


def _flat(x: np.ndarray) -> np.ndarray:
    return _c(x).reshape(-1)


def _rows(x: np.ndarray) -> np.ndarray:
    """x (..., C) as a contiguous (rows, C) array."""
    x = _c(x)
    return x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x


def _elementwise(kernel, where: str, x, *scalars):
    check_same_dtype(where, x=x)
    xf = _flat(x)
    y = np.empty_like(xf)
    kernel(xf.size, xf, *scalars, y)
    return y.reshape(x.shape)


def _elementwise_backward(kernel, where: str, dy, ref, *scalars):
    _check_activation_grad(where, dy, ref)
    dyf, reff = _flat(dy), _flat(ref)
    dx = np.empty_like(dyf)
    kernel(dyf.size, dyf, reff, *scalars, dx)
    return dx.reshape(dy.shape)


def _check_flat_buffers(where, params, grads, state):
    _check_step(where, params, grads, **state)
    for name, array in dict(params=params, **state).items():
        if not (array.flags.c_contiguous and array.flags.writeable and array.dtype.isnative):
            raise ValueError(
                f"{where}: {name} must be a writeable, C-contiguous, native-endian buffer "
                "(the step updates it in place)"
            )


#: The optimizer kernels count as this many operations per parameter for the serial or
#: parallel choice: their serial builds do not vectorise (LLVM cannot rule out aliasing
#: between the four buffers; the parallel builds' outlined loops can), so the parallel
#: build wins from about 1000 parameters (Adam, 2 threads, serial / parallel: 1.3-1.8x
#: at 2000 parameters, 7.8-9.5x at 90k; ``python benchmarks/bench_fast_paths.py``).
OPTIM_WORK_PER_PARAM = 32

#: Multiply-adds below which a GEMM runs as one BLAS call on one thread: splitting it
#: over the cores costs a parallel region (tens of microseconds).
GEMM_PARALLEL_MIN = 1_000_000


def _gemm_work(x, W) -> int:
    """The ParallelKernel work figure for an affine kernel: its parallel build only when
    x @ W has at least GEMM_PARALLEL_MIN multiply-adds."""
    macs = x.shape[0] * x.shape[1] * W.shape[1]
    return PARALLEL_THRESHOLD if macs >= GEMM_PARALLEL_MIN else 0


class NumbaDenseOps:
    """Dense ops on Numba kernels; see NumpyDenseOps for the formulas."""

    # ---------------------------------------------------------------- affine

    def affine(self, x, W, b, relu=False):
        """y = x @ W + b.  x (N, D), W (D, M), b (M,) -> y (N, M).

        ``relu=True`` returns max(y, 0), fused into the bias pass.
        """
        check_same_dtype("affine", x=x, W=W, b=b)
        _affine_shapes("affine", x, W, b)
        x, W, b = _c(x), _c(W), _c(b)
        n, d = x.shape
        m = W.shape[1]
        y = np.empty((n, m), dtype=x.dtype)
        work = _gemm_work(x, W)
        # by depth (see fastnn.kernels.affine) when D is the longest side of a parallel GEMM
        parts = aff.GEMM_PARTS - 1 if work and d >= max(n, m) else 0
        partial = scratch("affine_partial", (parts, n if parts else 0, m if parts else 0), x.dtype)
        aff.affine_forward(work, x, W, b, bool(relu), partial, y)
        return y

    def affine_backward(self, dy, x, W, input_grad=True, relu_out=None, out=None):
        """dx = dy @ W.T, dW = x.T @ dy, db = sum_n dy.  dy (N, M) -> (N, D), (D, M), (M,).

        ``input_grad=False`` skips dx and returns None in its place. ``relu_out``: the
        output of ``affine(..., relu=True)``; dy is then the gradient of that output
        and is taken only where relu_out > 0 (fused into the kernel).
        ``out=(dW, db)``: C-contiguous arrays the kernel writes dW and db into (and
        returns), e.g. a layer's gradient buffers: no new arrays and no copy.
        """
        check_same_dtype("affine_backward", dy=dy, x=x, W=W)
        _affine_shapes("affine_backward", x, W)
        check_shape("affine_backward", "dy", dy, (x.shape[0], W.shape[1]))
        out = check_grad_outputs("affine_backward", out, W.shape, (W.shape[1],), dy.dtype)
        masked = relu_out is not None
        if masked:
            check_same_dtype("affine_backward", dy=dy, relu_out=relu_out)
            check_shape("affine_backward", "relu_out", relu_out, dy.shape)
        dy, x, W = _c(dy), _c(x), _c(W)
        relu_out = _c(relu_out) if masked else dy
        dx = np.empty(x.shape if input_grad else (0, 0), dtype=x.dtype)
        if out is None:
            dW, db = np.empty(W.shape, dtype=x.dtype), np.empty(W.shape[1], dtype=x.dtype)
        else:
            dW, db = out
        g = scratch("affine_g", dy.shape if masked else (0, 0), x.dtype)
        # dx by columns (see fastnn.kernels.affine) when D is at least the batch
        aff.affine_backward(_gemm_work(x, W), dy, x, W, relu_out, masked, bool(input_grad),
                            x.shape[1] >= x.shape[0], g, dx, dW, db)
        return (dx if input_grad else None), dW, db

    def all_finite(self, x) -> bool:
        """True when the float array x holds no NaN or Inf: one fused pass
        (:func:`~fastnn.kernels.finite.count_nonfinite`) for contiguous native arrays,
        without the boolean array ``np.isfinite(x).all()`` builds first."""
        if x.flags.c_contiguous and x.dtype.isnative and x.dtype in (np.float32, np.float64):
            flat = x.reshape(-1)
            return bool(count_nonfinite(flat.size, flat) == 0)
        return bool(np.isfinite(x).all())

    # ----------------------------------------------------------- activations

    def identity(self, x):
        """y = x (a copy)."""
        check_same_dtype("identity", x=x)
        return _native_copy(x)

    def identity_backward(self, dy, x):
        """dx = dy."""
        _check_activation_grad("identity_backward", dy, x)
        return _native_copy(dy)

    def step(self, x):
        """y = 1 if x > 0 else 0 (the perceptron's step function)."""
        return _elementwise(act.step_forward, "step", x)

    def step_backward(self, dy, x):
        """dx = 0: the step function is flat wherever it is differentiable."""
        _check_activation_grad("step_backward", dy, x)
        return np.zeros(dy.shape, dtype=dy.dtype.newbyteorder("="))

    def sigmoid(self, x):
        """y = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
        return _elementwise(act.sigmoid_forward, "sigmoid", x)

    def sigmoid_backward(self, dy, y):
        """dx = dy * y * (1 - y), with y = sigmoid(x)."""
        return _elementwise_backward(act.sigmoid_backward, "sigmoid_backward", dy, y)

    def tanh(self, x):
        """y = tanh(x)."""
        return _elementwise(act.tanh_forward, "tanh", x)

    def tanh_backward(self, dy, y):
        """dx = dy * (1 - y**2), with y = tanh(x)."""
        return _elementwise_backward(act.tanh_backward, "tanh_backward", dy, y)

    def relu(self, x):
        """y = max(x, 0)."""
        return _elementwise(act.relu_forward, "relu", x)

    def relu_backward(self, dy, x):
        """dx = dy where x > 0, else 0."""
        return _elementwise_backward(act.relu_backward, "relu_backward", dy, x)

    def leaky_relu(self, x, alpha=0.01):
        """y = x if x > 0 else alpha * x."""
        check_same_dtype("leaky_relu", x=x)
        return _elementwise(act.leaky_relu_forward, "leaky_relu", x, x.dtype.type(alpha))

    def leaky_relu_backward(self, dy, x, alpha=0.01):
        """dx = dy if x > 0 else alpha * dy."""
        check_same_dtype("leaky_relu_backward", x=x)
        return _elementwise_backward(
            act.leaky_relu_backward, "leaky_relu_backward", dy, x, x.dtype.type(alpha)
        )

    def softmax(self, x):
        """y_ij = exp(x_ij - max_j x_ij) / sum_k exp(x_ik - max_j x_ij), over the last axis."""
        check_same_dtype("softmax", x=x)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"softmax: expected x with a non-empty last axis, got {x.shape}")
        rows = _rows(x)
        y = np.empty_like(rows)
        act.softmax_forward(rows.size, rows, y)
        return y.reshape(x.shape)

    def softmax_backward(self, dy, y):
        """dx_ij = y_ij * (dy_ij - sum_k dy_ik * y_ik), with y = softmax(x)."""
        _check_activation_grad("softmax_backward", dy, y)
        dy_rows, y_rows = _rows(dy), _rows(y)
        dx = np.empty_like(y_rows)
        act.softmax_backward(y_rows.size, dy_rows, y_rows, dx)
        return dx.reshape(y.shape)

    # ---------------------------------------------------------------- losses

    def softmax_cross_entropy(self, logits, t):
        """Mean cross-entropy of softmax(logits) against targets; returns (loss, probs).

        logits (N, C); t class indices (N,) or one-hot/soft targets (N, C).
        loss = -(1/N) sum_n sum_c t_nc log p_nc with log p = z - max z - log sum exp(z - max z),
        which stays finite for any finite logits. ``loss`` is a Python float.
        """
        n, classes = _check_logits_and_targets("softmax_cross_entropy", logits, t)
        logits = _c(logits)
        probs = np.empty_like(logits)
        row_losses = np.empty(n, dtype=logits.dtype)
        if t.ndim == 1:
            loss_kernels.softmax_cross_entropy_indices(
                logits.size, logits, _c(t.astype(np.int64, copy=False)), probs, row_losses)
        else:
            loss_kernels.softmax_cross_entropy_dense(
                logits.size, logits, _c(t.astype(logits.dtype, copy=False)), probs, row_losses)
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
                probs.size, probs, _c(t.astype(np.int64, copy=False)), scale, grad)
        else:
            loss_kernels.softmax_cross_entropy_backward_dense(
                probs.size, probs, _c(t.astype(probs.dtype, copy=False)), scale, grad)
        return grad

    def mse(self, y, t):
        """loss = (1/N) sum_n 0.5 * sum_j (y_nj - t_nj)**2.  y, t (N, ...) -> float."""
        check_same_dtype("mse", y=y, t=t)
        if y.shape != t.shape:
            raise ValueError(f"mse: expected t of shape {y.shape}, got {t.shape}")
        n = y.shape[0] if y.ndim else 1
        yf, tf = _flat(y), _flat(t)
        blocks = np.empty(max(1, -(-yf.size // loss_kernels.SUM_BLOCK)), dtype=yf.dtype)
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

    # ------------------------------------------------------ optimizer steps

    def sgd_step(self, params, grads, lr, weight_decay=0.0, l1=0.0):
        """p <- p - lr * g."""
        _check_flat_buffers("sgd_step", params, grads, {})
        d = params.dtype.type
        optim_kernels.sgd(params.size * OPTIM_WORK_PER_PARAM, params.reshape(-1), _flat(grads), d(lr),
                          d(weight_decay), d(l1))

    def momentum_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * v  (PyTorch SGD with momentum, dampening 0)."""
        _check_flat_buffers("momentum_step", params, grads, dict(velocity=velocity))
        d = params.dtype.type
        optim_kernels.momentum(params.size * OPTIM_WORK_PER_PARAM, params.reshape(-1), _flat(grads),
                               velocity.reshape(-1), d(lr), d(momentum), d(weight_decay), d(l1))

    def nesterov_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * (g + momentum * v)  (PyTorch nesterov=True)."""
        _check_flat_buffers("nesterov_step", params, grads, dict(velocity=velocity))
        d = params.dtype.type
        optim_kernels.nesterov(params.size * OPTIM_WORK_PER_PARAM, params.reshape(-1), _flat(grads),
                               velocity.reshape(-1), d(lr), d(momentum), d(weight_decay), d(l1))

    def adagrad_step(self, params, grads, sum_sq, lr, eps, weight_decay=0.0, l1=0.0):
        """s <- s + g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        _check_flat_buffers("adagrad_step", params, grads, dict(sum_sq=sum_sq))
        d = params.dtype.type
        optim_kernels.adagrad(params.size * OPTIM_WORK_PER_PARAM, params.reshape(-1), _flat(grads), sum_sq.reshape(-1),
                              d(lr), d(eps), d(weight_decay), d(l1))

    def rmsprop_step(self, params, grads, square_avg, lr, decay, eps, weight_decay=0.0, l1=0.0):
        """s <- decay * s + (1 - decay) * g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        _check_flat_buffers("rmsprop_step", params, grads, dict(square_avg=square_avg))
        d = params.dtype.type
        optim_kernels.rmsprop(params.size * OPTIM_WORK_PER_PARAM, params.reshape(-1), _flat(grads),
                              square_avg.reshape(-1), d(lr), d(decay), d(eps),
                              d(weight_decay), d(l1))

    def adam_step(self, params, grads, m, v, step, lr, beta1, beta2, eps,
                  weight_decay=0.0, l1=0.0):
        """Adam at step t = ``step`` (1-based), as PyTorch computes it.

        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;
        p <- p - (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
        """
        _check_flat_buffers("adam_step", params, grads, dict(m=m, v=v))
        if step < 1:
            raise ValueError(f"adam_step: step counts from 1, got {step}")
        d = params.dtype.type
        step_size, bias_correction2_sqrt = adam_bias_corrections(step, lr, beta1, beta2)
        optim_kernels.adam(params.size * OPTIM_WORK_PER_PARAM, params.reshape(-1), _flat(grads), m.reshape(-1),
                           v.reshape(-1), d(step_size), d(beta1), d(beta2), d(eps),
                           d(bias_correction2_sqrt), d(weight_decay), d(l1))
