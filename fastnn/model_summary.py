"""The text of ``Sequential.summary()``: a Keras-like table of layers, shapes and parameters.

One row per layer: its index, ``describe()``, its output shape with the batch axis shown
as N, and its parameter count. A block (a layer with sublayers in ``.body`` /
``.shortcut`` or ``.branches``) is followed by its sublayers, indented. Then the totals:
parameters (trainable and frozen), their memory at the model's dtype, and the memory of
the activations at a batch size.
"""

from __future__ import annotations

import numpy as np

from .layers.blocks import Block, leaves


def format_shape(sample_shape, batch="N") -> str:
    """``(N, 1, 28, 28)`` for sample shape (1, 28, 28); ``(N, ?)`` when it is None."""
    inner = ["?"] if sample_shape is None else [str(s) for s in sample_shape]
    return "(" + ", ".join([str(batch), *inner]) + ")"


def human_bytes(count: float) -> str:
    """A byte count in B, KiB, MiB or GiB: 1536 -> "1.50 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.2f} {unit}"
        count /= 1024
    return ""  # unreachable


def sublayer_groups(layer) -> list[list]:
    """The lists of sublayers a block applies to its input (each list in order): its
    ``body`` and ``shortcut``, or its ``branches``; [] for a plain layer."""
    return [list(part) for part in layer.parts().values() if part] if isinstance(layer, Block) else []


def _own_params(layer) -> int:
    return int(sum(np.size(p) for p in layer.params.values()))


def _rows(layers, shape, depth: int, prefix: str, rows: list) -> tuple[tuple | None, int]:
    """Append a row [label, description, output shape, params, is_leaf] per layer (and
    sublayer) of ``layers`` run from per-sample ``shape``; return (output shape, params).

    A shape is None once unknown; a block's params count its sublayers'."""
    total = 0
    for i, layer in enumerate(layers):
        label = f"{prefix}{i}"
        try:
            out = None if shape is None else tuple(layer.output_shape(shape))
        except (ValueError, TypeError):
            out = None
        groups = sublayer_groups(layer)
        own = 0 if groups else _own_params(layer)  # a block's params are its sublayers' views
        row = [label, "  " * depth + layer.describe(), out, own, not groups]
        rows.append(row)
        for g, group in enumerate(groups):
            row[3] += _rows(group, shape, depth + 1, f"{label}.{g}.", rows)[1]
        total += row[3]
        shape = out
    return shape, total


def summary_text(model, batch_size: int = 1, input_shape=None) -> str:
    """The summary table of ``model`` (see the module docstring) for per-sample ``input_shape``
    (the model's own when None; shapes show "?" when neither is known)."""
    shape = tuple(input_shape) if input_shape is not None else getattr(model, "input_shape", None)
    rows: list = []
    _rows(model.layers, shape, 0, "", rows)
    header = ["#", "layer", "output shape", "params"]
    table = [[r[0], r[1], "?" if r[2] is None else format_shape(r[2]), f"{r[3]:,d}"] for r in rows]
    widths = [max(len(c) for c in column) for column in zip(header, *table)]

    def line(cells):
        padded = [c.rjust(w) if k in (0, 3) else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    frozen = sum(_own_params(layer) for layer, trainable in leaves(model.layers) if not trainable)
    buffers = sum(int(np.size(b)) for layer, _ in leaves(model.layers) for b in layer.buffers.values())
    itemsize = model.dtype.itemsize
    text = [
        f"Sequential ({model.ops.name} backend, {model.dtype}, loss {type(model.loss_fn).__name__})",
        f"input: {'unknown (give input_shape=)' if shape is None else format_shape(shape)}",
        rule,
        line(header),
        rule,
        *(line(cells) for cells in table),
        rule,
        f"total params: {model.num_params:,d} (trainable {model.num_params - frozen:,d}, frozen {frozen:,d})",
        f"parameter memory: {human_bytes(model.num_params * itemsize)} ({model.dtype})"
        + (f", plus {human_bytes(buffers * itemsize)} of buffers (running statistics)" if buffers else ""),
    ]
    leaf_shapes = [r[2] for r in rows if r[4]]
    if shape is not None and all(s is not None for s in leaf_shapes):
        values = sum(int(np.prod(s)) for s in leaf_shapes) * batch_size
        text.append(
            f"activation memory at batch {batch_size}: {human_bytes(values * itemsize)} "
            "(the output of every layer, kept by a training step for backward)"
        )
    else:
        text.append(
            f"activation memory at batch {batch_size}: ? (the input shape is unknown or does not fit)"
        )
    return "\n".join(text)
