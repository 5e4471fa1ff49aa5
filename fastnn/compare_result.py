"""What :func:`fastnn.compare` returns: one row per layer (and per fused group), as a table
for people and as a dict for programs.

A row (:class:`UnitDiff`) is one unit of a training step, a layer or a run of layers that
executes as one (a fused group; later a block with its sublayers), judged by
:func:`fastnn.oracle.judge` on the same inputs on both backends:

- ``forward``: the unit's output (a fused group's is its last layer's output);
- ``input_grad``: the gradient with respect to its input (dx);
- ``weight_grads``: each weight gradient (W, b, gamma, beta), by name;
- ``buffers``: each buffer after the step (BatchNorm's running statistics);
- ``times``: the median seconds of its forward and backward on each backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .oracle import FACTOR, Judgement

__all__ = ["Comparison", "UnitDiff", "judgement_dict"]

#: The marker of the first row whose difference goes beyond the bound.
FIRST_FAILURE_MARK = ">>"


def _number(value: float):
    """A float for JSON: finite values as they are, inf and nan as the strings "inf", "nan"."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def judgement_dict(judgement: Judgement) -> dict:
    """A :class:`~fastnn.oracle.Judgement` as JSON data: error, bound, reference_error, ratio, ok."""
    return {
        "error": _number(judgement.error),
        "bound": _number(judgement.bound),
        "reference_error": _number(judgement.reference_error),
        "ratio": _number(judgement.ratio),
        "ok": bool(judgement.ok),
    }


@dataclass
class UnitDiff:
    """One layer or fused group of a training step on both backends.

    ``index`` is its first layer's index in ``model.layers`` (``stop`` one past its last;
    the loss row has ``index = len(model.layers)`` and ``kind = "loss"``); ``fused_into``
    names the fused group a layer runs in when the model trains (None: it runs alone).
    ``times`` is ``{"numba": {"forward": s, "backward": s}, "numpy": {...}}`` (medians,
    seconds; empty when timing was off).
    """

    index: int
    stop: int
    name: str
    kind: str
    forward: Judgement
    input_grad: Judgement | None = None
    weight_grads: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    fused_into: str | None = None
    times: dict = field(default_factory=dict)

    def judgements(self) -> dict:
        """Every judgement of the row by label ("forward", "dx", "W", ...)."""
        found = {"forward": self.forward}
        if self.input_grad is not None:
            found["dx"] = self.input_grad
        found.update(self.weight_grads)
        found.update({f"buffer {name}": j for name, j in self.buffers.items()})
        return found

    @property
    def ok(self) -> bool:
        """Whether every difference of the row is within its bound."""
        return all(j.ok for j in self.judgements().values())

    @property
    def failures(self) -> list[str]:
        """The labels of the judgements beyond their bounds."""
        return [label for label, j in self.judgements().items() if not j.ok]

    @property
    def worst_weight_grad(self) -> tuple[str, Judgement] | None:
        """The weight gradient closest to (or furthest beyond) its bound, with its name."""
        if not self.weight_grads:
            return None
        return max(self.weight_grads.items(), key=lambda item: item[1].ratio)

    def seconds(self, backend: str) -> float | None:
        """Forward plus backward seconds on ``backend`` ("numba" or "numpy"), None untimed."""
        parts = self.times.get(backend)
        return None if not parts else parts["forward"] + parts["backward"]

    @property
    def speedup(self) -> float | None:
        """numpy seconds / numba seconds for forward plus backward (None when untimed)."""
        numba, numpy = self.seconds("numba"), self.seconds("numpy")
        if numba is None or numpy is None or numba <= 0:
            return None
        return numpy / numba

    @property
    def label(self) -> str:
        """How the row is named in messages: "layers[3] Dense(100->100)", "loss ..."."""
        if self.kind == "loss":
            return f"the loss {self.name}"
        where = (
            f"layers[{self.index}]" if self.stop == self.index + 1 else f"layers[{self.index}:{self.stop}]"
        )
        return f"{where} {self.name}"

    def to_dict(self) -> dict:
        """This row as plain JSON data (numbers, strings and None)."""
        speedup = self.speedup
        return {
            "index": self.index,
            "stop": self.stop,
            "name": self.name,
            "kind": self.kind,
            "fused_into": self.fused_into,
            "ok": self.ok,
            "forward": judgement_dict(self.forward),
            "input_grad": None if self.input_grad is None else judgement_dict(self.input_grad),
            "weight_grads": {name: judgement_dict(j) for name, j in self.weight_grads.items()},
            "buffers": {name: judgement_dict(j) for name, j in self.buffers.items()},
            "times": {
                backend: {phase: _number(s) for phase, s in parts.items()}
                for backend, parts in self.times.items()
            },
            "speedup": None if speedup is None else _number(speedup),
        }


@dataclass
class Comparison:
    """The result of :func:`fastnn.compare`: ``layers`` (one :class:`UnitDiff` per layer in
    order, then the loss), ``fused`` (one per fused group the model trains with; empty when
    it fuses none), and what was run (``batch_size``, ``dtype``, ``model``).

    ``str(result)`` (or :meth:`table`) is the table; :meth:`to_dict` and ``result["layers"]``
    give the numbers as JSON data; :attr:`first_failure` is the first row beyond its bound.
    """

    layers: list
    fused: list
    model: str
    batch_size: int
    dtype: str

    @property
    def first_failure(self) -> UnitDiff | None:
        """The first row beyond its bound: the layers (and loss) in order first, then the fused
        groups (a group can fail only where its layers, run apart, pass); None if all pass."""
        for row in (*self.layers, *self.fused):
            if not row.ok:
                return row
        return None

    @property
    def ok(self) -> bool:
        """True when every layer's differences pass the oracle (no ``first_failure``)."""
        return self.first_failure is None

    def to_dict(self) -> dict:
        """The whole result as JSON data (``json.dumps`` takes it; inf and nan as strings)."""
        first = self.first_failure
        return {
            "model": self.model,
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "factor": FACTOR,
            "ok": self.ok,
            "first_failure": None
            if first is None
            else {"index": first.index, "name": first.name, "kind": first.kind, "failed": first.failures},
            "layers": [row.to_dict() for row in self.layers],
            "fused": [row.to_dict() for row in self.fused],
        }

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __str__(self) -> str:
        return self.table()

    def table(self) -> str:
        """The table for people: one row per layer (then the loss), then one per fused group,
        each difference as error / bound; the first row beyond its bound is marked
        :data:`FIRST_FAILURE_MARK` and named in a line below."""
        first = self.first_failure
        lines = [
            f"fnn.compare: one training step of {self.model}, batch {self.batch_size}, {self.dtype}: "
            "numba against the NumPy reference",
            f"difference = normwise error against the float64 reference / bound = {FACTOR:g} x the "
            "float32 reference's own error (fastnn.oracle)",
            "",
        ]
        lines += _rows_text(self.layers, first, fused_column=True)
        if self.fused:
            lines += ["", "fused groups, as the model trains (forward: the group's last layer's output)", ""]
            lines += _rows_text(self.fused, first, fused_column=False)
        lines.append("")
        if first is None:
            lines.append("every difference is within its bound")
        else:
            worst = first.judgements()[first.failures[0]]
            lines.append(
                f"{FIRST_FAILURE_MARK} first difference beyond the bound: {first.label}: "
                f"{first.failures[0]} error {worst.error:.2e} > bound {worst.bound:.2e} "
                f"({', '.join(first.failures)} beyond)"
            )
        return "\n".join(lines)


def _cell(judgement: Judgement | None, label: str = "") -> str:
    if judgement is None:
        return "-"
    flag = " !" if not judgement.ok else ""
    return f"{label}{judgement.error:.1e}/{judgement.bound:.1e}{flag}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def _rows_text(rows, first, fused_column: bool) -> list[str]:
    header = ["", "#", "layer", "forward", "dx", "weight grads", "numba ms", "numpy ms", "speed-up"]
    if fused_column:
        header.insert(3, "fused into")
    table = [header]
    for row in rows:
        worst = row.worst_weight_grad
        index = "loss" if row.kind == "loss" else str(row.index)
        if row.stop > row.index + 1:
            index = f"{row.index}-{row.stop - 1}"
        speedup = row.speedup
        cells = [
            FIRST_FAILURE_MARK if row is first else "",
            index,
            row.name,
            _cell(row.forward),
            _cell(row.input_grad),
            "-" if worst is None else _cell(worst[1], f"{worst[0]} "),
            _ms(row.seconds("numba")),
            _ms(row.seconds("numpy")),
            "-" if speedup is None else f"{speedup:.1f}x",
        ]
        if fused_column:
            cells.insert(3, row.fused_into or "-")
        table.append(cells)
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    numeric = {len(header) - 3, len(header) - 2, len(header) - 1}
    return [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))
        ).rstrip()
        for cells in table
    ]
