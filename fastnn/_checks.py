"""Input validation shared by ops, layers and the model.

Every error names the function or layer (``where``), what was expected and what
was given, so a user can fix the call without reading fastnn's source.
"""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_F32, _F64 = FLOAT_DTYPES


def check_float(where: str, name: str, x) -> np.ndarray:
    """Return ``x`` as an ndarray after checking it has a float32/float64 dtype."""
    if isinstance(x, np.ndarray) and (x.dtype is _F32 or x.dtype is _F64):
        return x  # the common case, without building a dtype
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: expected {name} to be a numpy array, got {type(x).__name__}")
    if x.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{where}: expected {name} with dtype float32 or float64, got dtype {x.dtype}")
    return x


def check_same_dtype(where: str, **arrays: np.ndarray) -> np.dtype:
    """Check that all named arrays are float and share one dtype; return it."""
    first = next(iter(arrays.values()), None)
    common = getattr(first, "dtype", None)
    if (common is _F32 or common is _F64) and all(
        isinstance(a, np.ndarray) and a.dtype is common for a in arrays.values()
    ):
        return common  # the common case: one native float dtype
    dtype = None
    for name, array in arrays.items():
        check_float(where, name, array)
        native = array.dtype.newbyteorder("=")
        if dtype is None:
            dtype, first = native, name
        elif native != dtype:
            raise TypeError(
                f"{where}: {name} has dtype {array.dtype} but {first} has dtype {dtype}; "
                "all float arguments must share one dtype"
            )
    return dtype


def check_ndim(where: str, name: str, x: np.ndarray, ndim: int, layout: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{where}: expected {name} with {ndim} dimensions {layout}, got shape {x.shape}")


def check_shape(where: str, name: str, x: np.ndarray, expected: tuple) -> None:
    """Check ``x.shape`` against ``expected``; ``None`` entries match any size."""
    ok = x.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, x.shape))
    if not ok:
        shown = "(" + ", ".join("N" if e is None else str(e) for e in expected)
        shown += ",)" if len(expected) == 1 else ")"
        raise ValueError(f"{where}: expected {name} of shape {shown}, got {x.shape}")


def check_grad_outputs(where: str, out, dW_shape: tuple, db_shape: tuple, dtype):
    """``out`` = (dW, db) for a backward op to write its weight gradients into: None, or
    two writeable C-contiguous arrays of the gradients' shapes and ``dtype``."""
    if out is None:
        return None
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"{where}: out must be a pair (dW, db) of arrays, got {type(out).__name__}")
    for name, a, shape in (("dW", out[0], tuple(dW_shape)), ("db", out[1], tuple(db_shape))):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{where}: out {name} must be a numpy array, got {type(a).__name__}")
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(
                f"{where}: expected out {name} of shape {shape} and dtype {dtype}, "
                f"got shape {a.shape} and dtype {a.dtype}"
            )
        if not (a.flags.c_contiguous and a.flags.writeable and a.dtype.isnative):
            raise ValueError(f"{where}: out {name} must be a writeable, C-contiguous, native-endian array")
    return out


def check_finite(where: str, name: str, x: np.ndarray) -> None:
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        kind = "NaN" if np.isnan(x).any() else "Inf"
        raise ValueError(f"{where}: {name} contains {bad} non-finite value(s) ({kind})")


def check_targets(where: str, t: np.ndarray, n: int, classes: int) -> None:
    """Check class-index targets (N,) in [0, classes) or one-hot/soft targets (N, classes)."""
    if not isinstance(t, np.ndarray):
        raise TypeError(f"{where}: expected targets as a numpy array, got {type(t).__name__}")
    if t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer):
            raise TypeError(f"{where}: class-index targets must have an integer dtype, got {t.dtype}")
        if t.shape[0] != n:
            raise ValueError(f"{where}: expected {n} targets for a batch of {n}, got {t.shape[0]}")
        if t.size and (t.min() < 0 or t.max() >= classes):
            raise ValueError(
                f"{where}: expected class labels in [0, {classes}), got labels in [{t.min()}, {t.max()}]"
            )
    elif t.ndim == 2:
        if t.dtype.kind in "iub" and t.shape == (n, 1):
            raise ValueError(
                f"{where}: class labels must be 1-D, shape ({n},), got {t.dtype} labels of shape "
                f"{t.shape}; pass t.ravel()"
            )
        if t.dtype.newbyteorder("=") not in FLOAT_DTYPES:
            raise TypeError(
                f"{where}: one-hot targets (N, {classes}) must be float32 or float64, got {t.dtype}; "
                f"pass class labels of shape ({n},) or t.astype(np.float32)"
            )
        if t.shape != (n, classes):
            raise ValueError(f"{where}: expected one-hot targets of shape ({n}, {classes}), got {t.shape}")
    else:
        raise ValueError(
            f"{where}: expected targets of shape (N,) (class indices) or (N, {classes}) "
            f"(one-hot), got {t.shape}"
        )


def check_binary_targets(where: str, t, n: int, outputs: int) -> None:
    """Check 0/1 targets for ``outputs`` sigmoid outputs: (N, outputs), or (N,) when outputs == 1;
    any integer, bool or float dtype, every value 0 or 1."""
    if not isinstance(t, np.ndarray):
        raise TypeError(f"{where}: expected targets as a numpy array, got {type(t).__name__}")
    shapes = f"({n}, {outputs})" + (f" or ({n},)" if outputs == 1 else "")
    if t.shape != (n, outputs) and not (outputs == 1 and t.shape == (n,)):
        hint = (
            "; these look like class labels: use SoftmaxCrossEntropy, or one 0/1 column per output"
            if t.shape == (n,)
            else ""
        )
        raise ValueError(f"{where}: expected 0/1 targets of shape {shapes}, got {t.shape}{hint}")
    if t.dtype.kind not in "iubf":
        raise TypeError(f"{where}: expected 0/1 targets of an integer, bool or float dtype, got {t.dtype}")
    if t.dtype.kind != "b" and t.size and not np.all((t == 0) | (t == 1)):
        bad = t[(t != 0) & (t != 1)].reshape(-1)
        raise ValueError(
            f"{where}: expected targets of 0 or 1 (one per output), got {bad.size} other value(s), "
            f"e.g. {bad[0].item()!r}; for class labels use SoftmaxCrossEntropy"
        )


def check_count(where: str, name: str, value, minimum: int) -> int:
    """An integer >= ``minimum`` (0 or 1) as a Python int; bools are refused."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        kind = "non-negative" if minimum == 0 else "positive"
        raise ValueError(f"{where}: {name} must be a {kind} integer, got {value!r}")
    return int(value)


def check_batch_size(where: str, batch_size) -> int:
    """A positive integer batch size as a Python int."""
    return check_count(where, "batch_size", batch_size, 1)
