"""Which ops ``fastnn verify`` checks and how many cases each gets.

:data:`CASES` maps every public op of the numba backend to its case generator;
``tests/test_verify.py`` fails when the backend has an op that is neither there nor in
:data:`NOT_OPS` with a reason.
"""

from __future__ import annotations

from ..backends import NumbaOps
from . import cases_activations, cases_arrays, cases_conv, cases_dense, cases_losses, cases_optim, cases_pool
from .case import OpCases

#: op name -> its cases, by family.
CASES: dict[str, OpCases] = {
    **cases_dense.SPECS,
    **cases_activations.SPECS,
    **cases_arrays.SPECS,
    **cases_losses.SPECS,
    **cases_conv.SPECS,
    **cases_pool.SPECS,
    **cases_optim.SPECS,
}

#: Public callables of the numba backend that are not ops, and why verify skips them.
#: Empty: every public method is an op.
NOT_OPS: dict[str, str] = {}

#: Cases per op: ``--quick`` runs every variant of the op once in each dtype (at least
#: QUICK_MIN cases); ``--full`` runs FULL_ROUNDS times as many (at least FULL_MIN), so
#: every variant meets both dtypes and both sizes several times.
QUICK_MIN = 6
FULL_ROUNDS = 10
FULL_MIN = 40


def backend_ops() -> list[str]:
    """The numba backend's public methods, as ``tests/test_ops_consistency.py`` lists them."""
    return sorted(
        name for name in dir(NumbaOps) if not name.startswith("_") and callable(getattr(NumbaOps, name))
    )


def case_count(op: str, quick: bool) -> int:
    """How many cases ``op`` gets in a quick or a full run."""
    quick_cases = max(QUICK_MIN, 2 * len(CASES[op].variants))
    return quick_cases if quick else max(FULL_MIN, FULL_ROUNDS * quick_cases)


def check_op_names(names) -> list[str]:
    """``names`` (None: every op, by family; a string: names separated by commas) as a list,
    each a known op; raises naming the unknown ones."""
    if names is None:
        return list(CASES)
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",")]
    names = list(names)
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise ValueError(
            f"verify: unknown op {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"pass names of numba ops from: {', '.join(sorted(CASES))}"
        )
    return names


__all__ = [
    "CASES",
    "FULL_MIN",
    "FULL_ROUNDS",
    "NOT_OPS",
    "QUICK_MIN",
    "backend_ops",
    "case_count",
    "check_op_names",
]
