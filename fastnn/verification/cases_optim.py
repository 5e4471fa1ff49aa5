"""Cases for the fused optimizer steps: SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW.

Each step updates a flat parameter buffer and its state in place; the case's results
are the buffers after one step from the same drawn state, judged one by one. Steps run
with and without weight decay and L1, and Adam's at a random step count (its bias
corrections).
"""

from __future__ import annotations

from .case import Case, OpCases
from .draws import normal, positive


def _flat_size(rng, large) -> int:
    return int(rng.integers(40_000, 100_000)) | 1 if large else int(rng.integers(1, 300))


def _regularisation(rng, regularised: bool) -> dict:
    if not regularised:
        return {}
    return {"weight_decay": float(rng.uniform(1e-4, 1e-2)), "l1": float(rng.uniform(1e-5, 1e-3))}


def _step(op: str, state: tuple[tuple[str, str], ...], hyper):
    """``op(params, grads, *state, *hyper(rng), **regularisation)``; ``state`` gives each
    state buffer's name and kind ("signed": drawn normal; "positive": squared-gradient sums)."""

    def build(rng, large, regularised=False):
        size = _flat_size(rng, large)
        params, grads = normal(rng, size), normal(rng, size)
        buffers = tuple(normal(rng, size) if kind == "signed" else positive(rng, size) for _, kind in state)
        args = (params, grads, *buffers, *hyper(rng))
        names = ("params",) + tuple(name for name, _ in state)
        return Case(
            op, args, _regularisation(rng, regularised), outputs=names, in_place=tuple(range(len(names)))
        )

    return OpCases(build, ({"regularised": False}, {"regularised": True}))


def _lr(rng):
    return float(rng.uniform(1e-3, 0.1))


def _adam_hyper(rng):
    return int(rng.integers(1, 20)), _lr(rng), 0.9, 0.999, 1e-7


SPECS = {
    "sgd_step": _step("sgd_step", (), lambda rng: (_lr(rng),)),
    "momentum_step": _step("momentum_step", (("velocity", "signed"),), lambda rng: (_lr(rng), 0.9)),
    "nesterov_step": _step("nesterov_step", (("velocity", "signed"),), lambda rng: (_lr(rng), 0.9)),
    "adagrad_step": _step("adagrad_step", (("sum_sq", "positive"),), lambda rng: (_lr(rng), 1e-7)),
    "rmsprop_step": _step("rmsprop_step", (("square_avg", "positive"),), lambda rng: (_lr(rng), 0.99, 1e-7)),
    "adam_step": _step("adam_step", (("m", "signed"), ("v", "positive")), _adam_hyper),
    "adamw_step": _step("adamw_step", (("m", "signed"), ("v", "positive")), _adam_hyper),
}

__all__ = ["SPECS"]
