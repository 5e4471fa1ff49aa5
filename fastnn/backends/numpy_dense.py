"""The NumPy reference for dense ops: affine, activations, losses, optimizer steps.

Plain, readable NumPy: this is the oracle every Numba kernel is tested against.
Every op returns the dtype it was given (float32 or float64) and never modifies
its inputs, except the optimizer steps, which update ``params`` and their state
in place, as the fused kernels do.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_grad_outputs, check_same_dtype, check_shape, check_targets


def _affine_shapes(where: str, x, W, b=None):
    if x.ndim != 2:
        raise ValueError(f"{where}: expected x of shape (N, D), got {x.shape}")
    if W.ndim != 2 or W.shape[0] != x.shape[1]:
        raise ValueError(
            f"{where}: expected W of shape ({x.shape[1]}, M) for x of shape {x.shape}, "
            f"got {W.shape}"
        )
    if b is not None:
        check_shape(where, "b", b, (W.shape[1],))


def _native_copy(x):
    """A C-contiguous, native-endian copy of x (what every op returns)."""
    return np.array(x, dtype=x.dtype.newbyteorder("="), order="C", copy=True)


def _check_activation_grad(where: str, dy, ref):
    check_same_dtype(where, dy=dy, x=ref)
    if dy.shape != ref.shape:
        raise ValueError(f"{where}: expected dy of shape {ref.shape}, got {dy.shape}")


def _check_logits_and_targets(where: str, logits, t):
    """Check logits (N, C) with C >= 1 and matching targets; return (N, C)."""
    check_same_dtype(where, logits=logits)
    if logits.ndim != 2:
        raise ValueError(f"{where}: expected logits of shape (N, C), got {logits.shape}")
    n, classes = logits.shape
    if classes == 0:
        raise ValueError(f"{where}: expected logits with at least one class, got shape {logits.shape}")
    check_targets(where, t, n, classes)
    return n, classes


def _check_step(where: str, params, grads, **state):
    check_same_dtype(where, params=params, grads=grads, **state)
    for name, array in dict(grads=grads, **state).items():
        if array.shape != params.shape:
            raise ValueError(f"{where}: expected {name} of shape {params.shape}, got {array.shape}")


class NumpyDenseOps:
    """Reference dense ops. Shapes: N batch, D inputs, M outputs, C classes."""

    # ---------------------------------------------------------------- affine

    def affine(self, x, W, b, relu=False):
        """y = x @ W + b.  x (N, D), W (D, M), b (M,) -> y (N, M).

        ``relu=True`` returns max(y, 0).
        """
        check_same_dtype("affine", x=x, W=W, b=b)
        _affine_shapes("affine", x, W, b)
        y = x @ W + b
        return self.relu(y) if relu else y

    def affine_backward(self, dy, x, W, input_grad=True, relu_out=None, out=None):
        """dx = dy @ W.T, dW = x.T @ dy, db = sum_n dy.  dy (N, M) -> (N, D), (D, M), (M,).

        ``input_grad=False`` skips dx and returns None in its place. ``relu_out``: the
        output of ``affine(..., relu=True)``; dy where relu_out > 0 (else 0) is used.
        ``out=(dW, db)``: C-contiguous arrays to write dW and db into (and return),
        e.g. a layer's gradient buffers, instead of new ones.
        """
        check_same_dtype("affine_backward", dy=dy, x=x, W=W)
        _affine_shapes("affine_backward", x, W)
        check_shape("affine_backward", "dy", dy, (x.shape[0], W.shape[1]))
        out = check_grad_outputs("affine_backward", out, W.shape, (W.shape[1],), dy.dtype)
        if relu_out is not None:
            check_same_dtype("affine_backward", dy=dy, relu_out=relu_out)
            check_shape("affine_backward", "relu_out", relu_out, dy.shape)
            dy = self.relu_backward(dy, relu_out)
        dx, dW, db = (dy @ W.T if input_grad else None), x.T @ dy, dy.sum(axis=0)
        if out is not None:
            out[0][...] = dW
            out[1][...] = db
            dW, db = out
        return dx, dW, db

    def all_finite(self, x) -> bool:
        """True when the float array x holds no NaN or Inf."""
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
        check_same_dtype("step", x=x)
        return (x > 0).astype(x.dtype)

    def step_backward(self, dy, x):
        """dx = 0: the step function is flat wherever it is differentiable."""
        _check_activation_grad("step_backward", dy, x)
        return np.zeros(dy.shape, dtype=dy.dtype.newbyteorder("="))

    def sigmoid(self, x):
        """y = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
        check_same_dtype("sigmoid", x=x)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)

    def sigmoid_backward(self, dy, y):
        """dx = dy * y * (1 - y), with y = sigmoid(x)."""
        _check_activation_grad("sigmoid_backward", dy, y)
        return dy * y * (1 - y)

    def tanh(self, x):
        """y = tanh(x)."""
        check_same_dtype("tanh", x=x)
        return np.tanh(x)

    def tanh_backward(self, dy, y):
        """dx = dy * (1 - y**2), with y = tanh(x)."""
        _check_activation_grad("tanh_backward", dy, y)
        return dy * (1 - y * y)

    def relu(self, x):
        """y = max(x, 0)."""
        check_same_dtype("relu", x=x)
        return np.maximum(x, 0)

    def relu_backward(self, dy, x):
        """dx = dy where x > 0, else 0."""
        _check_activation_grad("relu_backward", dy, x)
        return np.where(x > 0, dy, 0).astype(dy.dtype)

    def leaky_relu(self, x, alpha=0.01):
        """y = x if x > 0 else alpha * x."""
        check_same_dtype("leaky_relu", x=x)
        return np.where(x > 0, x, x * x.dtype.type(alpha))

    def leaky_relu_backward(self, dy, x, alpha=0.01):
        """dx = dy if x > 0 else alpha * dy."""
        _check_activation_grad("leaky_relu_backward", dy, x)
        return np.where(x > 0, dy, dy * dy.dtype.type(alpha))

    def softmax(self, x):
        """y_ij = exp(x_ij - max_j x_ij) / sum_k exp(x_ik - max_j x_ij), over the last axis."""
        check_same_dtype("softmax", x=x)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def softmax_backward(self, dy, y):
        """dx_ij = y_ij * (dy_ij - sum_k dy_ik * y_ik), with y = softmax(x)."""
        _check_activation_grad("softmax_backward", dy, y)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    # ---------------------------------------------------------------- losses

    def softmax_cross_entropy(self, logits, t):
        """Mean cross-entropy of softmax(logits) against targets; returns (loss, probs).

        logits (N, C); t class indices (N,) or one-hot/soft targets (N, C).
        loss = -(1/N) sum_n sum_c t_nc log p_nc with log p = z - max z - log sum exp(z - max z),
        which stays finite for any finite logits. ``loss`` is a Python float.
        """
        n, classes = _check_logits_and_targets("softmax_cross_entropy", logits, t)
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

    # ------------------------------------------------------ optimizer steps
    # Each updates ``params`` (a flat buffer) and its state in place, with
    # PyTorch's formulas. The gradient used is g = grads + weight_decay * p
    # + l1 * sign(p); ``grads`` itself is left unchanged.

    @staticmethod
    def _regularised(params, grads, weight_decay, l1):
        dtype = params.dtype.type
        g = grads.copy()
        if weight_decay:
            g += dtype(weight_decay) * params
        if l1:
            g += dtype(l1) * np.sign(params)
        return g

    def sgd_step(self, params, grads, lr, weight_decay=0.0, l1=0.0):
        """p <- p - lr * g."""
        _check_step("sgd_step", params, grads)
        g = self._regularised(params, grads, weight_decay, l1)
        params -= params.dtype.type(lr) * g

    def momentum_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * v  (PyTorch SGD with momentum, dampening 0)."""
        _check_step("momentum_step", params, grads, velocity=velocity)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        velocity *= dtype(momentum)
        velocity += g
        _flush(velocity)
        params -= dtype(lr) * velocity

    def nesterov_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * (g + momentum * v)  (PyTorch nesterov=True)."""
        _check_step("nesterov_step", params, grads, velocity=velocity)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        velocity *= dtype(momentum)
        velocity += g
        _flush(velocity)
        params -= dtype(lr) * (g + dtype(momentum) * velocity)

    def adagrad_step(self, params, grads, sum_sq, lr, eps, weight_decay=0.0, l1=0.0):
        """s <- s + g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        _check_step("adagrad_step", params, grads, sum_sq=sum_sq)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        sum_sq += g * g
        params -= dtype(lr) * g / (np.sqrt(sum_sq) + dtype(eps))

    def rmsprop_step(self, params, grads, square_avg, lr, decay, eps, weight_decay=0.0, l1=0.0):
        """s <- decay * s + (1 - decay) * g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        _check_step("rmsprop_step", params, grads, square_avg=square_avg)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        square_avg *= dtype(decay)
        square_avg += dtype(1 - decay) * g * g
        _flush(square_avg)
        params -= dtype(lr) * g / (np.sqrt(square_avg) + dtype(eps))

    def adam_step(self, params, grads, m, v, step, lr, beta1, beta2, eps,
                  weight_decay=0.0, l1=0.0):
        """Adam at step t = ``step`` (1-based), as PyTorch computes it.

        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;
        p <- p - (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
        """
        _check_step("adam_step", params, grads, m=m, v=v)
        if step < 1:
            raise ValueError(f"adam_step: step counts from 1, got {step}")
        dtype = params.dtype.type
        step_size, bias_correction2_sqrt = adam_bias_corrections(step, lr, beta1, beta2)
        g = self._regularised(params, grads, weight_decay, l1)
        m *= dtype(beta1)
        m += dtype(1 - beta1) * g
        v *= dtype(beta2)
        v += dtype(1 - beta2) * g * g
        _flush(m)
        _flush(v)
        denom = np.sqrt(v) / dtype(bias_correction2_sqrt) + dtype(eps)
        params -= dtype(step_size) * m / denom


def _flush(state):
    """Set the subnormal entries of optimizer state to zero, in place (as the kernels do:
    see :mod:`fastnn.kernels.optim`)."""
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


def adam_bias_corrections(step: int, lr: float, beta1: float, beta2: float):
    """(lr / (1 - beta1**step), sqrt(1 - beta2**step)), in float64 as PyTorch computes them."""
    return lr / (1 - beta1 ** step), (1 - beta2 ** step) ** 0.5
