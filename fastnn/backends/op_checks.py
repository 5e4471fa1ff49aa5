"""Validation the two backends share for the affine, activation, loss, optimizer and
batch-norm ops (conv and pooling: :mod:`~fastnn.backends.conv_shapes`,
:mod:`~fastnn.backends.pool_shapes`).

Each check raises with the op's name first (``where``), so both backends fail with the
same message for the same bad call.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_binary_targets, check_same_dtype, check_shape, check_targets


def affine_shapes(where: str, x, W, b=None):
    if x.ndim != 2:
        raise ValueError(f"{where}: expected x of shape (N, D), got {x.shape}")
    if W.ndim != 2 or W.shape[0] != x.shape[1]:
        raise ValueError(
            f"{where}: expected W of shape ({x.shape[1]}, M) for x of shape {x.shape}, got {W.shape}"
        )
    if b is not None:
        check_shape(where, "b", b, (W.shape[1],))


def check_activation_grad(where: str, dy, ref):
    check_same_dtype(where, dy=dy, x=ref)
    if dy.shape != ref.shape:
        raise ValueError(f"{where}: expected dy of shape {ref.shape}, got {dy.shape}")


def check_add_relu(where: str, a, b, out):
    """a and b of one shape and dtype; ``out`` (if given) a writeable C-contiguous array of
    that shape and dtype, native-endian."""
    check_same_dtype(where, a=a, b=b)
    if a.shape != b.shape:
        raise ValueError(f"{where}: expected b of a's shape {a.shape}, got {b.shape}")
    if out is None:
        return
    if not isinstance(out, np.ndarray) or out.shape != a.shape or out.dtype != a.dtype.newbyteorder("="):
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"{where}: expected out of dtype {a.dtype} and shape {a.shape}, got {got}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"{where}: out must be a writeable C-contiguous array")


def check_residual(where: str, residual, y):
    """A residual added to an op's output y: an array of y's shape and dtype; returns it."""
    if not isinstance(residual, np.ndarray) or residual.dtype.newbyteorder("=") != y.dtype:
        got = residual.dtype if isinstance(residual, np.ndarray) else type(residual).__name__
        raise TypeError(f"{where}: expected residual of the output's dtype {y.dtype}, got {got}")
    if residual.shape != y.shape:
        raise ValueError(f"{where}: expected residual of the output's shape {y.shape}, got {residual.shape}")
    return residual


def check_logits_and_targets(where: str, logits, t):
    """Check logits (N, C) with C >= 1 and matching targets; return (N, C)."""
    check_same_dtype(where, logits=logits)
    if logits.ndim != 2:
        raise ValueError(f"{where}: expected logits of shape (N, C), got {logits.shape}")
    n, classes = logits.shape
    if classes == 0:
        raise ValueError(f"{where}: expected logits with at least one class, got shape {logits.shape}")
    check_targets(where, t, n, classes)
    return n, classes


def check_logits_and_binary_targets(where: str, logits, t, name: str = "logits"):
    """Check ``name`` (logits or probs) (N, C) with C >= 1 and 0/1 targets (N, C), or (N,) when
    C == 1; return (N, C)."""
    check_same_dtype(where, **{name: logits})
    if logits.ndim != 2:
        raise ValueError(f"{where}: expected {name} of shape (N, C), got {logits.shape}")
    n, outputs = logits.shape
    if outputs == 0:
        raise ValueError(f"{where}: expected {name} with at least one output, got shape {logits.shape}")
    check_binary_targets(where, t, n, outputs)
    return n, outputs


def check_step(where: str, params, grads, **state):
    check_same_dtype(where, params=params, grads=grads, **state)
    for name, array in dict(grads=grads, **state).items():
        if array.shape != params.shape:
            raise ValueError(f"{where}: expected {name} of shape {params.shape}, got {array.shape}")


def check_batchnorm(where: str, x, gamma, **named):
    """Validate x (N, C) or (N, C, H, W) and the (C,) vectors; return (C, the reduce axes)."""
    check_same_dtype(where, x=x, gamma=gamma, **named)
    if x.ndim not in (2, 4):
        raise ValueError(f"{where}: expected x of shape (N, D) or (N, C, H, W), got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{where}: expected a non-empty batch, got x of shape {x.shape}")
    channels = x.shape[1]
    check_shape(where, "gamma", gamma, (channels,))
    for name, array in named.items():
        if name != "dy":
            check_shape(where, name, array, (channels,))
    if "dy" in named and named["dy"].shape != x.shape:
        raise ValueError(f"{where}: expected dy of shape {x.shape}, got {named['dy'].shape}")
    return channels, (0,) if x.ndim == 2 else (0, 2, 3)


def check_out(where: str, out, x) -> None:
    """``out=``, an array the op writes its result into: None, or a writeable array of x's
    shape and dtype."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{where}: expected out to be a numpy array or None, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(
            f"{where}: expected out of shape {x.shape} and dtype {x.dtype} (x's), "
            f"got shape {out.shape} and dtype {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError(f"{where}: out is read-only")


def check_eps(where: str, eps) -> float:
    if (
        isinstance(eps, bool)
        or not isinstance(eps, (int, float, np.floating, np.integer))
        or not np.isfinite(eps)
        or eps < 0
    ):
        raise ValueError(f"{where}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


#: The activations a batch norm op can apply after normalising (``activation=``).
BATCHNORM_ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh", "leaky_relu")


def check_bn_activation(where: str, activation, alpha, dy=None, act_out=None):
    """Validate a batch norm op's ``activation`` (None or a name of BATCHNORM_ACTIVATIONS),
    ``alpha`` (leaky ReLU's slope, a finite number >= 0) and, for a backward op (``dy``
    given), ``act_out``: f's output, needed for any activation but the identity, shaped
    and typed like dy. Returns the activation's name ("identity" for None)."""
    name = "identity" if activation is None else activation
    if not isinstance(name, str) or name not in BATCHNORM_ACTIVATIONS:
        raise ValueError(
            f"{where}: activation must be None or one of {BATCHNORM_ACTIVATIONS}, got {activation!r}"
        )
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float, np.floating, np.integer))
        or not np.isfinite(alpha)
        or alpha < 0
    ):
        raise ValueError(f"{where}: alpha must be a finite number >= 0, got {alpha!r}")
    if dy is not None:
        if name == "identity":
            if act_out is not None:
                raise ValueError(
                    f"{where}: act_out is only read with an activation, got activation={activation!r}"
                )
        else:
            if act_out is None:
                raise ValueError(f"{where}: activation={name!r} needs act_out, the activation's output")
            check_same_dtype(where, dy=dy, act_out=act_out)
            if act_out.shape != dy.shape:
                raise ValueError(f"{where}: expected act_out of shape {dy.shape}, got {act_out.shape}")
    return name


def check_concat_channels(where: str, arrays) -> np.dtype:
    """At least one float array of 2+ dimensions, all of one dtype and agreeing on every
    axis but 1; returns the dtype."""
    if not arrays:
        raise ValueError(f"{where}: expected at least one array, got none")
    dtype = check_same_dtype(where, **{f"arrays[{i}]": a for i, a in enumerate(arrays)})
    first = arrays[0]
    for i, a in enumerate(arrays):
        agree = a.ndim == first.ndim and a.shape[0] == first.shape[0] and a.shape[2:] == first.shape[2:]
        if a.ndim < 2 or not agree:
            raise ValueError(
                f"{where}: arrays[{i}] has shape {a.shape} but arrays[0] has {first.shape}; expected "
                "arrays of 2 or more dimensions that agree on every axis but 1 (the channels)"
            )
    return dtype


def check_channel_range(where: str, x, start, stop) -> None:
    """x a float array of 2+ dimensions and 0 <= start <= stop <= x.shape[1] integers."""
    check_same_dtype(where, x=x)
    if x.ndim < 2:
        raise ValueError(f"{where}: expected x with 2 or more dimensions (N, C, ...), got shape {x.shape}")
    ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, stop))
    if not ok or not 0 <= start <= stop <= x.shape[1]:
        raise ValueError(
            f"{where}: expected integers 0 <= start <= stop <= {x.shape[1]} (x's channels), "
            f"got start={start!r}, stop={stop!r}"
        )


__all__ = [
    "BATCHNORM_ACTIVATIONS",
    "affine_shapes",
    "check_activation_grad",
    "check_bn_activation",
    "check_batchnorm",
    "check_eps",
    "check_logits_and_targets",
    "check_step",
]
