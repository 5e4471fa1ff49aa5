"""One verifier case: a drawn call of an op, callable on either backend in either dtype.

A case keeps its float inputs in float64 holding float32 values
(:func:`~fastnn.verification.draws.rounded`), so :meth:`Case.call` can hand the same
numbers to the float32 and the float64 runs; integer arrays (class labels, argmax) and
plain values (strides, pads, hyperparameters) pass unchanged. Every call gets fresh
copies, so the optimizer steps, which update their buffers in place, start from the
same state each time.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: The dtypes a case runs in, alternating by case index.
DTYPES = (np.float32, np.float64)
#: Every third case is large (see :func:`case_plan`).
LARGE_EVERY = 3


@dataclass(frozen=True)
class Case:
    """``getattr(ops, op)(*args, **kwargs)`` with its results named ``outputs``.

    ``in_place``: positions in ``args`` of the arrays an optimizer step updates; they are
    its results (the op returns None). ``argmax_values``: for an op whose integer output
    indexes computed values (the fused conv + ReLU + max pooling), those values in float64,
    (N, C, H, W); its argmax is then judged by the values it picks, since a near-tie may
    legitimately resolve either way in float32.
    """

    op: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    outputs: tuple[str, ...] = ("y",)
    in_place: tuple[int, ...] = ()
    argmax_values: np.ndarray | None = None

    def inputs(self, dtype) -> tuple[tuple, dict]:
        """Fresh (args, kwargs) for one call, the float arrays in ``dtype``."""
        args = tuple(_cast(a, dtype) for a in self.args)
        return args, {name: _cast(value, dtype) for name, value in self.kwargs.items()}

    def call(self, ops, dtype) -> tuple:
        """Run the op on ``ops`` with the float inputs in ``dtype`` (:meth:`run` on fresh
        :meth:`inputs`)."""
        return self.run(ops, self.inputs(dtype), dtype)

    def run(self, ops, inputs: tuple[tuple, dict], dtype) -> tuple:
        """Run the op on ``ops`` with ``inputs`` from :meth:`inputs` in ``dtype`` (used up: a
        step updates them); returns its results as a tuple of arrays, a skipped result as
        None, a Python float (a loss) as a 0-d array of ``dtype``, the precision it was
        computed in (exact: a float32 sum converts to a Python float and back unchanged)."""
        args, kwargs = inputs
        result = getattr(ops, self.op)(*args, **kwargs)
        if self.in_place:
            return tuple(args[i] for i in self.in_place)
        results = result if isinstance(result, tuple) else (result,)
        return tuple(_as_array(r, dtype) for r in results)

    def describe(self) -> str:
        """The inputs' shapes and the plain arguments, as one line."""
        parts = [_describe(a) for a in self.args]
        parts += [f"{name}={_describe(value)}" for name, value in self.kwargs.items()]
        return f"{self.op}({', '.join(parts)})"


def _as_array(result, dtype):
    if result is None:
        return None
    if isinstance(result, float):
        return np.asarray(result, dtype=dtype)
    return np.asarray(result)


def _cast(value, dtype):
    if isinstance(value, np.ndarray):
        return value.astype(dtype) if value.dtype.kind == "f" else value.copy()
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    return value


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        kind = "" if value.dtype.kind == "f" else f" {value.dtype}"
        return f"<{'x'.join(map(str, value.shape)) or 'scalar'}{kind}>"
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    return repr(value)


@dataclass(frozen=True)
class OpCases:
    """How an op's cases are drawn: ``build(rng, large, variant) -> Case`` for each of
    ``variants`` (keyword sets naming its fused and special paths)."""

    build: Callable[..., Case]
    variants: tuple[dict, ...] = ({},)


def case_seed(seed: int, op: str, index: int) -> np.random.SeedSequence:
    """The seed of case ``index`` of ``op``: the run's seed, the op's name and the index, so
    one case is reproduced alone (``--case``) by the same three values."""
    return np.random.SeedSequence([seed, zlib.crc32(op.encode()), index])


def case_plan(spec: OpCases, index: int) -> tuple[dict, type, bool]:
    """(variant, dtype, large) of case ``index``: the dtype alternates, each variant comes
    twice in a row (once per dtype), every LARGE_EVERY-th case is large; the first
    ``2 * len(variants)`` cases run every variant in both dtypes."""
    variant = spec.variants[(index // 2) % len(spec.variants)]
    return variant, DTYPES[index % 2], index % LARGE_EVERY == LARGE_EVERY - 1


def draw_case(op: str, spec: OpCases, seed: int, index: int) -> tuple[Case, type]:
    """Case ``index`` of ``op`` under ``seed`` and the dtype it runs in."""
    variant, dtype, large = case_plan(spec, index)
    rng = np.random.default_rng(case_seed(seed, op, index))
    return spec.build(rng, large, **variant), dtype


__all__ = ["Case", "DTYPES", "OpCases", "case_plan", "case_seed", "draw_case"]
