"""The NumPy reference for the optimizer steps, PyTorch's update formulas.

Plain, readable NumPy: this is the oracle every Numba kernel is tested against.
"""

from __future__ import annotations

import numpy as np

from .op_checks import check_step


class NumpyOptimOps:
    """Reference optimizer steps: SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW."""

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
        check_step("sgd_step", params, grads)
        g = self._regularised(params, grads, weight_decay, l1)
        params -= params.dtype.type(lr) * g

    def momentum_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * v  (PyTorch SGD with momentum, dampening 0)."""
        check_step("momentum_step", params, grads, velocity=velocity)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        velocity *= dtype(momentum)
        velocity += g
        _flush(velocity)
        params -= dtype(lr) * velocity

    def nesterov_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * (g + momentum * v)  (PyTorch nesterov=True)."""
        check_step("nesterov_step", params, grads, velocity=velocity)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        velocity *= dtype(momentum)
        velocity += g
        _flush(velocity)
        params -= dtype(lr) * (g + dtype(momentum) * velocity)

    def adagrad_step(self, params, grads, sum_sq, lr, eps, weight_decay=0.0, l1=0.0):
        """s <- s + g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        check_step("adagrad_step", params, grads, sum_sq=sum_sq)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        sum_sq += g * g
        params -= dtype(lr) * g / (np.sqrt(sum_sq) + dtype(eps))

    def rmsprop_step(self, params, grads, square_avg, lr, decay, eps, weight_decay=0.0, l1=0.0):
        """s <- decay * s + (1 - decay) * g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        check_step("rmsprop_step", params, grads, square_avg=square_avg)
        dtype = params.dtype.type
        g = self._regularised(params, grads, weight_decay, l1)
        square_avg *= dtype(decay)
        square_avg += dtype(1 - decay) * g * g
        _flush(square_avg)
        params -= dtype(lr) * g / (np.sqrt(square_avg) + dtype(eps))

    def adam_step(self, params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0, l1=0.0):
        """Adam at step t = ``step`` (1-based), as PyTorch computes it.

        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;
        p <- p - (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
        """
        check_step("adam_step", params, grads, m=m, v=v)
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

    def adamw_step(self, params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay=0.01, l1=0.0):
        """AdamW (Loshchilov & Hutter) at step t = ``step`` (1-based), as torch.optim.AdamW computes it.

        Decoupled weight decay first, then Adam on the gradient without it:
        p <- p * (1 - lr * weight_decay);  g = grads + l1 * sign(p);
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;
        p <- p - (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
        """
        check_step("adamw_step", params, grads, m=m, v=v)
        if step < 1:
            raise ValueError(f"adamw_step: step counts from 1, got {step}")
        dtype = params.dtype.type
        step_size, bias_correction2_sqrt = adam_bias_corrections(step, lr, beta1, beta2)
        g = self._regularised(params, grads, 0.0, l1)
        params *= dtype(1 - lr * weight_decay)
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
    return lr / (1 - beta1**step), (1 - beta2**step) ** 0.5


__all__ = ["NumpyOptimOps", "adam_bias_corrections"]
