"""``fnn.compare(model, x, t)``: one training step of a model on the numba backend and on
the NumPy reference, from the same weights, judged layer by layer.

Three copies of the model are built from its config, flat parameters, buffers (BatchNorm's
running statistics) and random generators (Dropout's): the *kernel* copy (backend numba,
the model's dtype), the float32 reference (backend numpy) and the float64 reference. The
model itself is never run, so its weights, gradients, buffers and generators are left as
they were.

The kernel copy runs the step's forward pass, the loss and the backward pass, keeping each
unit's input ``x_i`` and output gradient ``dy_i``. Each unit of the references then runs on
those same values (rounded to float32 for the float32 reference): ``forward(x_i)`` and
``backward(dy_i)``, its layers first put in the state the kernel's had (the same generator
state, so Dropout draws the same mask; the same buffers; in training BatchNorm normalises
with the batch's statistics on both sides). Every result is judged by
:func:`fastnn.oracle.judge` (kernel, float32 reference, float64 reference), so each row
measures that unit alone: a layer after a wrong one gets the wrong one's output on both
sides and still passes, and the first row beyond its bound is the culprit.

This is done twice when the model fuses layers (``model.fuse_layers`` and a rule of
:mod:`fastnn.fusion` matches): once with every layer on its own (one row per layer) and
once with the groups the model trains with (one row per group, against the reference's
same group). A unit is anything with ``forward(x, train)`` / ``backward(dy)`` over a run
of layers, so a block with sublayers can be reported the same way.

Times are the median of ``repeats`` calls of each unit's forward and backward on the same
inputs, after the judged call (which compiles and warms up the kernels).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from . import fusion
from .compare_result import Comparison, UnitDiff
from .oracle import judge

__all__ = ["Comparison", "UnitDiff", "compare"]

WHERE = "fnn.compare"


def compare(model, x, t, repeats: int = 5) -> Comparison:
    """One training step of ``model`` on (x, t) on both backends, per layer and per fused group.

    Args:
        model: a :class:`~fastnn.Sequential` (any backend and dtype); it is not changed.
        x: a batch of inputs (N, ...) the model takes.
        t: its targets (class indices (N,) or one-hot / regression targets).
        repeats: timed calls per unit and backend (median reported); 0 times nothing.

    Returns:
        a :class:`~fastnn.compare_result.Comparison`: ``print(result)`` shows the table,
        ``result.to_dict()`` the numbers, ``result.first_failure`` the first row whose
        difference goes beyond the oracle's bound (None when every row is within it).
    """
    _check_model(model)
    if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool) or repeats < 0:
        raise ValueError(f"{WHERE}: repeats must be a whole number >= 0 (0: no timing), got {repeats!r}")
    kernel = _copy(model, "numba", str(model.dtype))
    references = (_copy(model, "numpy", "float32"), _copy(model, "numpy", "float64"))
    x = kernel.prepare_input(x, WHERE)
    t = kernel.prepare_targets(t, WHERE)
    if len(t) != len(x):
        raise ValueError(
            f"{WHERE}: x has {len(x)} samples but t has {len(t)}; expected one target per sample"
        )
    fused_into = _fused_into(fusion.plan(kernel.layers, fuse=bool(getattr(model, "fuse_layers", True))))
    layer_rows = _compare_run(kernel, references, x, t, fuse=False, repeats=repeats)
    for row in layer_rows:
        row.fused_into = fused_into.get(row.index) if row.kind == "layer" else None
    fused_rows = []
    if fused_into:
        fused_rows = _compare_run(kernel, references, x, t, fuse=True, repeats=repeats)
        fused_rows = [row for row in fused_rows if row.kind == "fused group"]
    return Comparison(
        layers=layer_rows,
        fused=fused_rows,
        model=f"{type(model).__name__} of {len(model.layers)} layers",
        batch_size=len(x),
        dtype=str(kernel.dtype),
    )


def _fused_into(units) -> dict:
    """{layer index: "ConvReLUMaxPool 0-2"} for every layer that runs in a fused group of ``units``."""
    names, start = {}, 0
    for unit in units:
        stop = start + len(_unit_layers(unit))
        if isinstance(unit, fusion.FusedGroup):
            names.update(dict.fromkeys(range(start, stop), f"{type(unit).__name__} {start}-{stop - 1}"))
        start = stop
    return names


def _check_model(model) -> None:
    needed = ("layers", "get_config", "from_config", "flat_params", "loss_fn", "dtype")
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise TypeError(
            f"{WHERE}: expected a model such as fnn.Sequential, got {type(model).__name__} "
            f"(it has no {', '.join(missing)}); build one with fnn.Sequential([...]) or fnn.load(path)"
        )


# ---------------------------------------------------------------- copies and their state


def _copy(model, backend: str, dtype: str):
    """A model of the same config on ``backend`` in ``dtype``, holding ``model``'s parameters,
    buffers and generator states (cast to ``dtype``)."""
    config = {**model.get_config(), "backend": backend, "dtype": dtype}
    copy = type(model).from_config(config)
    copy.flat_params[...] = model.flat_params
    for mine, theirs in zip(copy.layers, model.layers):
        _set_layer_state(mine, _layer_state(theirs))
    return copy


def _generators(layer) -> dict:
    """The numpy generators a layer holds, by attribute (Dropout's ``rng``)."""
    return {name: value for name, value in vars(layer).items() if isinstance(value, np.random.Generator)}


def _layer_state(layer) -> tuple[dict, dict]:
    """(generator states, buffer copies) of a layer: what must match for the same step."""
    generators = {name: g.bit_generator.state for name, g in _generators(layer).items()}
    return generators, {name: array.copy() for name, array in layer.buffers.items()}


def _set_layer_state(layer, state: tuple[dict, dict]) -> None:
    generators, buffers = state
    for name, generator_state in generators.items():
        getattr(layer, name).bit_generator.state = generator_state
    for name, array in buffers.items():
        layer.buffers[name][...] = array


def _unit_layers(unit) -> tuple:
    return tuple(unit.layers) if isinstance(unit, fusion.FusedGroup) else (unit,)


# ---------------------------------------------------------------- one run, judged unit by unit


def _compare_run(kernel, references, x, t, fuse: bool, repeats: int) -> list[UnitDiff]:
    """The rows of one run: every unit of ``fusion.plan(..., fuse=fuse)``, then the loss."""
    units = fusion.plan(kernel.layers, fuse=fuse)
    reference_units = [fusion.plan(ref.layers, fuse=fuse) for ref in references]
    trace = _kernel_step(kernel, units, x, t)
    timed = _timed_reference(kernel, references)
    timed_units = reference_units[references.index(timed)]
    rows, start = [], 0
    for i, unit in enumerate(units):
        stop = start + len(_unit_layers(unit))
        got = {key: values[i] for key, values in trace.items() if key != "loss"}
        expected = [
            _reference_unit(ref_units[i], got, ref.dtype)
            for ref, ref_units in zip(references, reference_units)
        ]
        row = _judged_row(unit, start, stop, got, expected)
        if repeats:
            row.times = {
                "numba": _unit_times(unit, got["input"], got["output_grad"], repeats),
                "numpy": _unit_times(
                    timed_units[i],
                    got["input"].astype(timed.dtype),
                    got["output_grad"].astype(timed.dtype),
                    repeats,
                ),
            }
        rows.append(row)
        start = stop
    rows.append(_loss_row(kernel, references, trace["loss"], t, start, repeats))
    return rows


def _kernel_step(kernel, units, x, t) -> dict:
    """Run a training step's forward, loss and backward on the kernel copy, unit by unit,
    keeping copies of what each unit got and gave: "input", "state" (its layers' state
    before the forward), "output", "buffers" (after the forward), "output_grad",
    "input_grad", "weight_grads"; and "loss" (output, value, gradient)."""
    trace = {
        key: []
        for key in ("input", "state", "output", "buffers", "output_grad", "input_grad", "weight_grads")
    }
    h = x
    for unit in units:
        layers = _unit_layers(unit)
        trace["input"].append(h.copy())
        trace["state"].append([_layer_state(layer) for layer in layers])
        h = unit.forward(h, train=True)
        trace["output"].append(h.copy())
        trace["buffers"].append(_named(layers, lambda layer: layer.buffers))
    value = kernel.loss_fn.forward(h, t)
    dy = kernel.loss_fn.backward()
    trace["loss"] = (h.copy(), np.asarray(value, dtype=kernel.dtype), dy.copy())
    for unit in reversed(units):
        trace["output_grad"].insert(0, dy.copy())
        dy = unit.backward(dy)
        trace["input_grad"].insert(0, dy.copy())
        trace["weight_grads"].insert(0, _named(_unit_layers(unit), lambda layer: layer.grads))
    return trace


def _named(layers, arrays_of) -> dict:
    """Copies of each layer's arrays (``arrays_of(layer)``), named "W" for a single layer and
    "i:W" (i the layer's place in the unit) for a group's."""
    named = {}
    for place, layer in enumerate(layers):
        for name, array in arrays_of(layer).items():
            named[name if len(layers) == 1 else f"{place}:{name}"] = np.array(array)
    return named


def _reference_unit(unit, got: dict, dtype) -> dict:
    """The reference ``unit`` run on the kernel's input and output gradient (cast to
    ``dtype``), its layers put in the kernel's state first; what it gave, as the kernel's."""
    layers = _unit_layers(unit)
    for layer, state in zip(layers, got["state"]):
        _set_layer_state(layer, state)
    output = unit.forward(got["input"].astype(dtype), train=True)
    buffers = _named(layers, lambda layer: layer.buffers)
    input_grad = unit.backward(got["output_grad"].astype(dtype))
    return {
        "output": output,
        "buffers": buffers,
        "input_grad": input_grad,
        "weight_grads": _named(layers, lambda layer: layer.grads),
    }


def _judged_row(unit, start: int, stop: int, got: dict, expected: list) -> UnitDiff:
    ref32, ref64 = expected
    fused = isinstance(unit, fusion.FusedGroup)
    return UnitDiff(
        index=start,
        stop=stop,
        name=f"{type(unit).__name__}: {unit.describe()}" if fused else unit.describe(),
        kind="fused group" if fused else "layer",
        forward=judge(got["output"], ref32["output"], ref64["output"]),
        input_grad=judge(got["input_grad"], ref32["input_grad"], ref64["input_grad"]),
        weight_grads={
            name: judge(value, ref32["weight_grads"][name], ref64["weight_grads"][name])
            for name, value in got["weight_grads"].items()
        },
        buffers={
            name: judge(value, ref32["buffers"][name], ref64["buffers"][name])
            for name, value in got["buffers"].items()
        },
    )


def _loss_row(kernel, references, loss_trace, t, index: int, repeats: int) -> UnitDiff:
    """The loss on the network's output from the kernel copy: its value (forward) and its
    gradient with respect to that output (dx)."""
    output, value, grad = loss_trace
    results = []
    for ref in references:
        targets = ref.prepare_targets(t, WHERE)
        ref_value = ref.loss_fn.forward(output.astype(ref.dtype), targets)
        results.append((np.asarray(ref_value, dtype=ref.dtype), ref.loss_fn.backward()))
    (value32, grad32), (value64, grad64) = results
    row = UnitDiff(
        index=index,
        stop=index + 1,
        name=repr(kernel.loss_fn),
        kind="loss",
        forward=judge(value, value32, value64),
        input_grad=judge(grad, grad32, grad64),
    )
    if repeats:
        ref = _timed_reference(kernel, references)
        row.times = {
            "numba": _loss_times(kernel.loss_fn, output, t, repeats),
            "numpy": _loss_times(
                ref.loss_fn, output.astype(ref.dtype), ref.prepare_targets(t, WHERE), repeats
            ),
        }
    return row


# ---------------------------------------------------------------- times


def _timed_reference(kernel, references):
    """The reference timed against the kernel: the one of the kernel's dtype."""
    return references[1] if kernel.dtype == np.float64 else references[0]


def _median_seconds(call, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def _unit_times(unit, x, dy, repeats: int) -> dict:
    """Median seconds of ``unit.forward(x)`` and then of ``unit.backward(dy)``."""
    forward = _median_seconds(lambda: unit.forward(x, train=True), repeats)
    backward = _median_seconds(lambda: unit.backward(dy), repeats)
    return {"forward": forward, "backward": backward}


def _loss_times(loss_fn, y, t, repeats: int) -> dict:
    forward = _median_seconds(lambda: loss_fn.forward(y, t), repeats)
    backward = _median_seconds(loss_fn.backward, repeats)
    return {"forward": forward, "backward": backward}
