"""Numba-backed affine ops: validate like the reference, allocate, call the kernels.

Each method keeps the signature and contract of
:class:`~fastnn.backends.numpy_affine.NumpyAffineOps`; the consistency test checks that
nothing here drifts from it. The kernels are in :mod:`fastnn.kernels.affine`.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .._blas import single_threaded_blas
from .._checks import check_grad_outputs, check_same_dtype, check_shape
from .._config import PARALLEL_THRESHOLD
from ..kernels import affine as aff
from ..kernels import tuning
from ..kernels.activations import ACT_IDENTITY, ACTIVATION_CODES, for_code
from ._arrays import contiguous as _c
from .fused_activation import fused_activation, fused_activation_grad
from .op_checks import affine_shapes
from .scratch import scratch


def _blas_in_one_thread(work: int):
    """For a parallel build (``work`` > 0), the BLAS that the kernels call from their
    threads on one thread of its own, whatever an outside limit (threadpoolctl) set it to:
    two BLAS threads under each Numba thread made the dropout net's training step 12 times
    slower. The serial build calls BLAS from one thread, which may then use its own."""
    return single_threaded_blas() if work else contextlib.nullcontext()


def _gemm_work(x, W) -> int:
    """The ParallelKernel work figure for an affine kernel: its parallel build only when
    x @ W has at least tuning.GEMM_PARALLEL_MIN multiply-adds."""
    macs = x.shape[0] * x.shape[1] * W.shape[1]
    return PARALLEL_THRESHOLD if macs >= tuning.GEMM_PARALLEL_MIN else 0


class NumbaAffineOps:
    """Affine ops on Numba kernels; see NumpyAffineOps for the formulas."""

    def affine(self, x, W, b, relu=False, activation=None, alpha=0.0):
        """y = f(x @ W + b).  x (N, D), W (D, M), b (M,) -> y (N, M).

        f is the identity or ``activation`` (``relu=True``: "relu"), fused into the bias
        pass: the activation op's own scalar code, so the numbers are the op's.
        """
        check_same_dtype("affine", x=x, W=W, b=b)
        affine_shapes("affine", x, W, b)
        activation, alpha = fused_activation("affine", relu, activation, alpha)
        x, W, b = _c(x), _c(W), _c(b)
        n, d = x.shape
        m = W.shape[1]
        y = np.empty((n, m), dtype=x.dtype)
        work = _gemm_work(x, W)
        # by depth (see fastnn.kernels.affine) when D is the longest side of a parallel GEMM
        parts = tuning.GEMM_PARTS - 1 if work and d >= max(n, m) else 0
        partial = scratch("affine_partial", (parts, n if parts else 0, m if parts else 0), x.dtype)
        code = ACTIVATION_CODES[activation or "identity"]
        with _blas_in_one_thread(work):
            forward = for_code(aff.affine_forward, aff.affine_forward_rectified, code)
            forward(work, x, W, b, code, x.dtype.type(alpha), partial, y)
        return y

    def affine_backward(
        self,
        dy,
        x,
        W,
        input_grad=True,
        relu_out=None,
        out=None,
        activation=None,
        act_out=None,
        alpha=0.0,
        weight_grad=True,
    ):
        """dx = g @ W.T, dW = x.T @ g, db = sum_n g.  dy (N, M) -> (N, D), (D, M), (M,).

        ``input_grad=False`` skips dx and returns None in its place; ``weight_grad=False``
        (a frozen layer) skips dW and db, returns None for both and leaves ``out`` alone. g = dy, or the
        gradient through ``activation`` from its output ``act_out`` (``relu_out=y``:
        ReLU), formed inside the kernel.
        ``out=(dW, db)``: C-contiguous arrays the kernel writes dW and db into (and
        returns), e.g. a layer's gradient buffers: no new arrays and no copy.
        """
        check_same_dtype("affine_backward", dy=dy, x=x, W=W)
        affine_shapes("affine_backward", x, W)
        check_shape("affine_backward", "dy", dy, (x.shape[0], W.shape[1]))
        out = check_grad_outputs("affine_backward", out, W.shape, (W.shape[1],), dy.dtype)
        activation, act_out, alpha = fused_activation_grad(
            "affine_backward", dy, relu_out, activation, act_out, alpha
        )
        code = ACTIVATION_CODES[activation or "identity"]
        masked = code != ACT_IDENTITY
        dy, x, W = _c(dy), _c(x), _c(W)
        act_out = _c(act_out) if masked else dy
        if not (input_grad or weight_grad):
            return None, None, None
        dx = np.empty(x.shape if input_grad else (0, 0), dtype=x.dtype)
        if not weight_grad:
            dW, db = np.empty((0, 0), dtype=x.dtype), np.empty(0, dtype=x.dtype)
        elif out is None:
            dW, db = np.empty(W.shape, dtype=x.dtype), np.empty(W.shape[1], dtype=x.dtype)
        else:
            dW, db = out
        g = scratch("affine_g", dy.shape if masked else (0, 0), x.dtype)
        # dx by columns (see fastnn.kernels.affine) when D is at least the batch
        work = _gemm_work(x, W)
        with _blas_in_one_thread(work):
            aff.affine_backward(
                work,
                dy,
                x,
                W,
                act_out,
                code,
                x.dtype.type(alpha),
                bool(input_grad),
                bool(weight_grad),
                x.shape[1] >= x.shape[0],
                g,
                dx,
                dW,
                db,
            )
        if not weight_grad:
            return (dx if input_grad else None), None, None
        return (dx if input_grad else None), dW, db


__all__ = ["NumbaAffineOps"]
