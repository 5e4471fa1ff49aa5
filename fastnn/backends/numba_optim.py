"""Numba-backed optimizer steps: validate like the reference, then one fused kernel.

Each method keeps the signature and formula of
:class:`~fastnn.backends.numpy_optim.NumpyOptimOps` and updates the flat buffers in
place with one kernel of :mod:`fastnn.kernels.optim`. Adam's (and AdamW's) bias corrections are the
reference's own :func:`~fastnn.backends.numpy_optim.adam_bias_corrections`, so both
backends compute the same float64 scalars.
"""

from __future__ import annotations

from ..kernels import optim as optim_kernels
from ..kernels import tuning
from ._arrays import flat as _flat
from .numpy_optim import adam_bias_corrections
from .op_checks import check_step


def _check_flat_buffers(where, params, grads, state):
    check_step(where, params, grads, **state)
    for name, array in dict(params=params, **state).items():
        if not (array.flags.c_contiguous and array.flags.writeable and array.dtype.isnative):
            raise ValueError(
                f"{where}: {name} must be a writeable, C-contiguous, native-endian buffer "
                "(the step updates it in place)"
            )


def _work(params) -> int:
    """The work figure that picks an optimizer kernel's serial or parallel build:
    tuning.OPTIM_WORK_PER_PARAM operations per parameter."""
    return params.size * tuning.OPTIM_WORK_PER_PARAM


class NumbaOptimOps:
    """Optimizer steps on fused Numba kernels; see NumpyOptimOps for the formulas."""

    def sgd_step(self, params, grads, lr, weight_decay=0.0, l1=0.0):
        """p <- p - lr * g."""
        _check_flat_buffers("sgd_step", params, grads, {})
        d = params.dtype.type
        optim_kernels.sgd(_work(params), params.reshape(-1), _flat(grads), d(lr), d(weight_decay), d(l1))

    def momentum_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * v  (PyTorch SGD with momentum, dampening 0)."""
        _check_flat_buffers("momentum_step", params, grads, dict(velocity=velocity))
        d = params.dtype.type
        optim_kernels.momentum(
            _work(params),
            params.reshape(-1),
            _flat(grads),
            velocity.reshape(-1),
            d(lr),
            d(momentum),
            d(weight_decay),
            d(l1),
        )

    def nesterov_step(self, params, grads, velocity, lr, momentum, weight_decay=0.0, l1=0.0):
        """v <- momentum * v + g;  p <- p - lr * (g + momentum * v)  (PyTorch nesterov=True)."""
        _check_flat_buffers("nesterov_step", params, grads, dict(velocity=velocity))
        d = params.dtype.type
        optim_kernels.nesterov(
            _work(params),
            params.reshape(-1),
            _flat(grads),
            velocity.reshape(-1),
            d(lr),
            d(momentum),
            d(weight_decay),
            d(l1),
        )

    def adagrad_step(self, params, grads, sum_sq, lr, eps, weight_decay=0.0, l1=0.0):
        """s <- s + g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        _check_flat_buffers("adagrad_step", params, grads, dict(sum_sq=sum_sq))
        d = params.dtype.type
        optim_kernels.adagrad(
            _work(params),
            params.reshape(-1),
            _flat(grads),
            sum_sq.reshape(-1),
            d(lr),
            d(eps),
            d(weight_decay),
            d(l1),
        )

    def rmsprop_step(self, params, grads, square_avg, lr, decay, eps, weight_decay=0.0, l1=0.0):
        """s <- decay * s + (1 - decay) * g**2;  p <- p - lr * g / (sqrt(s) + eps)."""
        _check_flat_buffers("rmsprop_step", params, grads, dict(square_avg=square_avg))
        d = params.dtype.type
        optim_kernels.rmsprop(
            _work(params),
            params.reshape(-1),
            _flat(grads),
            square_avg.reshape(-1),
            d(lr),
            d(decay),
            d(eps),
            d(weight_decay),
            d(l1),
        )

    def adam_step(self, params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0, l1=0.0):
        """Adam at step t = ``step`` (1-based), as PyTorch computes it.

        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;
        p <- p - (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
        """
        self._adam_family(
            "adam_step",
            optim_kernels.adam,
            params,
            grads,
            m,
            v,
            step,
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            l1,
        )

    def adamw_step(self, params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay=0.01, l1=0.0):
        """AdamW (Loshchilov & Hutter) at step t = ``step`` (1-based), as torch.optim.AdamW computes it.

        Decoupled weight decay first, then Adam on the gradient without it:
        p <- p * (1 - lr * weight_decay);  g = grads + l1 * sign(p);
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;
        p <- p - (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps).
        """
        self._adam_family(
            "adamw_step",
            optim_kernels.adamw,
            params,
            grads,
            m,
            v,
            step,
            lr,
            beta1,
            beta2,
            eps,
            1 - lr * weight_decay,
            l1,
        )

    @staticmethod
    def _adam_family(name, kernel, params, grads, m, v, step, lr, beta1, beta2, eps, decay, l1):
        """Check the buffers and call ``kernel`` (adam or adamw) with the step's bias
        corrections; ``decay`` is Adam's L2 coefficient or AdamW's factor 1 - lr * weight_decay."""
        _check_flat_buffers(name, params, grads, dict(m=m, v=v))
        if step < 1:
            raise ValueError(f"{name}: step counts from 1, got {step}")
        d = params.dtype.type
        step_size, bias_correction2_sqrt = adam_bias_corrections(step, lr, beta1, beta2)
        kernel(
            _work(params),
            params.reshape(-1),
            _flat(grads),
            m.reshape(-1),
            v.reshape(-1),
            d(step_size),
            d(beta1),
            d(beta2),
            d(eps),
            d(bias_correction2_sqrt),
            d(decay),
            d(l1),
        )


__all__ = ["NumbaOptimOps"]
