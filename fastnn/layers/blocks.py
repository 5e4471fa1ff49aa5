"""Blocks: layers made of lists of layers, for networks that are not a plain stack.

==========================================  ==============================================
block                                       forward / backward
==========================================  ==============================================
``Residual(body, shortcut=None)``           y = body(x) + shortcut(x) (shortcut [] is x);
                                            dx = body'(dy) + shortcut'(dy) (identity: + dy)
``Concat(branches)``                        y = concat([b(x) for b in branches], axis=1);
                                            dy split along axis 1, dx = sum of branches'
==========================================  ==============================================

Axis 1 is the channels of an (N, C, H, W) batch and the features of an (N, D) one. A
block looks like one layer to everything that walks a model's layers: ``params`` and
``grads`` hold its sublayers' views into the model's flat buffers under prefixed names
("body.0.W", "shortcut.1.gamma", "branches.2.0.b"), and ``buffers`` holds their buffers
(BatchNorm's running statistics) the same way, the same arrays. Sublayers may be blocks.

Inside a model, :func:`fastnn.fusion.plan` plans each list of sublayers on its own
(conv + BatchNorm + ReLU in a body still run as one kernel) through :meth:`Block.plan_with`;
standalone, every sublayer runs on its own.
"""

from __future__ import annotations

import numpy as np

from .base import LAYERS, Layer, layer_from_spec, layer_spec


def _as_layers(where: str, items) -> list:
    """``items`` (Layer objects or {"class": name, "config": {...}} dicts) as a list of layers."""
    if isinstance(items, (Layer, dict, str)) or not hasattr(items, "__iter__"):
        raise TypeError(f"{where}: expected a list of layers, got {type(items).__name__}")
    layers = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("class") in LAYERS:
            item = layer_from_spec(item)
        if isinstance(item, dict):
            raise TypeError(
                f"{where}[{i}]: unknown layer class {item.get('class')!r}; expected one of "
                f"{sorted(LAYERS)} (a layer class must be imported, so it registers, before loading)"
            )
        if not isinstance(item, Layer):
            raise TypeError(
                f"{where}[{i}]: expected a Layer (or a {{'class': ..., 'config': ...}} dict), "
                f"got {item!r:.80}; pass layer objects such as fnn.Conv2D(8, 8, 3)"
            )
        layers.append(item)
    return layers


def leaves(layers, trainable: bool = True):
    """(layer, trainable) for every layer in ``layers`` that is not a block, blocks opened,
    in the order their parameters sit in a model's flat buffer. ``trainable`` is True
    when the layer and every block around it are (``layer.trainable``): what an
    optimizer updates and what the backward pass computes weight gradients for."""
    for layer in layers:
        if isinstance(layer, Block):
            for part in layer.parts().values():
                yield from leaves(part, trainable and layer.trainable)
        else:
            yield layer, trainable and layer.trainable


def _configs(layers) -> list:
    return [layer_spec(layer) for layer in layers]


def _run(units, x, train):
    for unit in units:
        x = unit.forward(x, train=train)
    return x


def _writes_into(units, train) -> bool:
    """Whether the last of ``units`` can write its output into a given array (a fused
    Conv2D + BatchNorm group's training pass: ``writes_into``, then ``forward_into``)."""
    last = units[-1] if units else None
    return last is not None and hasattr(last, "writes_into") and last.writes_into(train)


def _run_backward(units, dy, stop=None):
    """dy through ``units`` backwards; the unit at index ``stop`` skips its input gradient
    (``backward(dy, input_grad=False)``), which ends the pass with None."""
    for i in reversed(range(len(units))):
        if i == stop:
            units[i].backward(dy, input_grad=False)
            return None
        dy = units[i].backward(dy)
    return dy


def writable_alone(array, *others) -> bool:
    """Whether ``array`` may be written into in place: writeable, C-contiguous and sharing no
    memory with ``others`` (a body that is a reshape hands back a view of its input)."""
    return (
        array.flags.writeable
        and array.flags.c_contiguous
        and not any(np.may_share_memory(array, other) for other in others)
    )


def _shape_through(layers, shape) -> tuple:
    for layer in layers:
        shape = tuple(layer.output_shape(shape))
    return shape


class Block(Layer):
    """A layer made of named lists of sublayers (:meth:`parts`); subclasses combine them."""

    def __init__(self):
        super().__init__()
        self._units = None  # {part name: units} from plan_with; None: every sublayer on its own
        self._stops = {}  # {part name: index of the unit that may skip its input gradient}
        self._ran = None  # the units of the last training forward

    def parts(self) -> dict[str, list]:
        """{prefix: list of sublayers}, e.g. {"body": [...], "shortcut": [...]}; in buffer order."""
        raise NotImplementedError

    def _sublayers(self):
        """(name prefix "body.0.", sublayer) for every direct sublayer, in buffer order."""
        for part, layers in self.parts().items():
            for i, layer in enumerate(layers):
                yield f"{part}.{i}.", layer

    def _mark_parts_frozen(self) -> None:
        """Tell each direct sublayer whether this block computes as frozen
        (``frozen_by_block``, :attr:`Layer.frozen`); a nested block passes it on in its own
        training forward. Runs in every training forward, in a model or standalone."""
        for _, layer in self._sublayers():
            layer.frozen_by_block = self.frozen

    def _collect_buffers(self) -> None:
        self.buffers = {
            prefix + k: v for prefix, layer in self._sublayers() for k, v in layer.buffers.items()
        }
        self.buffers_change_in_training = any(
            layer.buffers_change_in_training for _, layer in self._sublayers()
        )

    def build(self, ops, dtype):
        super().build(ops, dtype)
        for _, layer in self._sublayers():
            layer.build(self.ops, self.dtype)
        self._collect_buffers()  # a build may replace a sublayer's buffers (another dtype)
        self._collect_generators()
        self._units = None
        return self

    def param_shapes(self):
        return {prefix + k: v for prefix, layer in self._sublayers() for k, v in layer.param_shapes().items()}

    def init_params(self, rng):
        values = {
            prefix + k: v for prefix, layer in self._sublayers() for k, v in layer.init_params(rng).items()
        }
        self._collect_generators()  # init_params may give a sublayer a new generator (Dropout)
        return values

    def _collect_generators(self) -> None:
        """Each sublayer's numpy Generators (Dropout's ``rng``) as attributes of the block
        named like "body.1.rng", the same objects: checkpoints save and restore a layer's
        generators by attribute name, and gradcheck replays them."""
        for name in [k for k, v in vars(self).items() if isinstance(v, np.random.Generator)]:
            delattr(self, name)
        for prefix, layer in self._sublayers():
            for name, value in vars(layer).items():
                if isinstance(value, np.random.Generator):
                    setattr(self, prefix + name, value)

    def bind(self, params, grads):
        super().bind(params, grads)
        for prefix, layer in self._sublayers():
            names = layer.param_shapes()
            layer.bind({k: params[prefix + k] for k in names}, {k: grads[prefix + k] for k in names})

    def plan_with(self, planner, first_weighted_unit=None) -> None:
        """Run each part as the units ``planner(layers)`` returns (the model's fusion plan);
        ``first_weighted_unit(units)``: the index of the unit of a part whose input gradient
        ``backward(dy, input_grad=False)`` may skip (None: none)."""
        self._units = {part: list(planner(layers)) for part, layers in self.parts().items()}
        find = first_weighted_unit or (lambda units: None)
        self._stops = {part: find(units) for part, units in self._units.items()}

    def _part_units(self) -> dict[str, list]:
        return self._units if self._units is not None else self.parts()

    def get_config(self):
        return {part: _configs(layers) for part, layers in self.parts().items()}


del LAYERS["Block"]  # an abstract base: nothing to rebuild from a file


class Residual(Block):
    """y = body(x) + shortcut(x): a residual connection (He et al., ResNet).

    ``body`` and ``shortcut`` are lists of layers (or their config dicts) run in order
    on the same input x; ``shortcut=None`` (or []) is the identity, y = body(x) + x. The
    two outputs must have the same shape: a body that changes the channels or the size
    needs a projection shortcut such as ``[Conv2D(c_in, c_out, 1, stride=2), BatchNorm(c_out)]``.
    Backward: dx = body'(dy) + shortcut'(dy), with shortcut'(dy) = dy for the identity.
    """

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = _as_layers("Residual: body", body)
        self.shortcut = [] if shortcut is None else _as_layers("Residual: shortcut", shortcut)
        if not self.body:
            raise ValueError("Residual: body must hold at least one layer, got []")
        self._collect_buffers()

    def parts(self):
        return {"body": self.body, "shortcut": self.shortcut}

    def describe(self):
        shortcut = f"{len(self.shortcut)} layers" if self.shortcut else "identity"
        return f"Residual(body {len(self.body)} layers, shortcut {shortcut})"

    def output_shape(self, input_shape):
        body = _shape_through(self.body, input_shape)
        shortcut = _shape_through(self.shortcut, input_shape)
        if body != shortcut:
            what = "shortcut" if self.shortcut else "the identity shortcut (its input)"
            raise ValueError(
                f"{self.describe()}: body gives {body} but {what} gives {shortcut}; the two are "
                "added, so make them equal (a projection shortcut such as a 1x1 Conv2D with the "
                "body's stride and output channels)"
            )
        return body

    def forward(self, x, train=True):
        body, shortcut = self.forward_parts(x, train)
        return self.ops.add(body, shortcut)  # a new array: units may keep their outputs

    def forward_parts(self, x, train=True) -> tuple[np.ndarray, np.ndarray]:
        """(body(x), shortcut(x)), not yet added (shortcut(x) is x itself for the identity);
        ``backward`` then takes the gradient of their sum. For a fused group that adds them
        together with the activation after the block (:class:`fastnn.fusion.ResidualReLU`)."""
        self.check_input(x)
        if train:
            self._mark_parts_frozen()
        units = self._part_units()
        body = _run(units["body"], x, train)
        shortcut = _run(units["shortcut"], x, train)
        self._ran = units if train else None
        return body, shortcut

    def last_body_unit(self):
        """The unit that runs last in the body: a layer or, in a model, a fused group."""
        return self._part_units()["body"][-1]

    def parts_before_last(self, x, train=True) -> tuple[np.ndarray, np.ndarray, object]:
        """(h, shortcut(x), last) of a pass that stops short of the body's last unit
        ``last``, h being its input: the caller runs ``last`` on h with the sum fused into
        it (:class:`fastnn.fusion.ResidualReLU`), and in training ``backward`` then takes
        the gradient of that sum as after :meth:`forward_parts`. ``last`` then runs after
        the shortcut, not before it as in :meth:`forward_parts`: use this only when
        ``last`` draws no random numbers (a Dropout's masks would change)."""
        self.check_input(x)
        if train:
            self._mark_parts_frozen()
        units = self._part_units()
        h = _run(units["body"][:-1], x, train)
        shortcut = _run(units["shortcut"], x, train)
        self._ran = units if train else None
        return h, shortcut, units["body"][-1]

    def backward(self, dy, input_grad=True):
        units = self._require_forward("_ran")
        if not input_grad:
            for part in ("body", "shortcut"):
                _run_backward(units[part], dy, self._stops.get(part))
            return None
        body = _run_backward(units["body"], dy)
        shortcut = _run_backward(units["shortcut"], dy)
        if writable_alone(body, dy, shortcut):  # into the body's fresh input gradient: no third array
            return self.ops.add(body, shortcut, out=body)
        return self.ops.add(body, shortcut)


class Concat(Block):
    """y = concatenate([branch(x) for branch in branches], axis=1): an Inception-style block.

    Each branch is a list of layers (or config dicts) run on the same input x; their
    outputs must agree on every axis but axis 1 (channels of (N, C, H, W), features of
    (N, D)), which is the sum of theirs. Backward splits dy along axis 1 by each
    branch's width; dx = the sum of the branches' input gradients.

    Inside a model, when every branch of an image network ends with a fused Conv2D +
    BatchNorm group (Inception's), a training pass allocates y first and each branch's
    batch norm kernel writes its channels of y directly; backward hands each branch its
    channels of dy as a view, which the batch norm kernel reads where it lies: no copies
    either way, the same numbers.
    """

    def __init__(self, branches):
        super().__init__()
        if isinstance(branches, (Layer, dict, str)) or not hasattr(branches, "__iter__"):
            raise TypeError(
                f"Concat: branches must be a list of lists of layers, got {type(branches).__name__}"
            )
        self.branches = [_as_layers(f"Concat: branches[{i}]", b) for i, b in enumerate(branches)]
        if not self.branches or not all(self.branches):
            sizes = [len(b) for b in self.branches]
            raise ValueError(
                "Concat: expected at least one branch, each with at least one layer; "
                f"got branch sizes {sizes}"
            )
        self._widths = None
        self._layout = None  # (input shape, output shape, branch widths) of the last direct pass
        self._direct = False  # whether the last training pass wrote the branches into y directly
        self._collect_buffers()

    def parts(self):
        return {f"branches.{i}": branch for i, branch in enumerate(self.branches)}

    def get_config(self):
        return {"branches": [_configs(branch) for branch in self.branches]}

    def describe(self):
        sizes = ", ".join(str(len(b)) for b in self.branches)
        return f"Concat({len(self.branches)} branches: {sizes} layers)"

    def output_shape(self, input_shape):
        shapes = [_shape_through(branch, input_shape) for branch in self.branches]
        first = shapes[0]
        for i, shape in enumerate(shapes[1:], start=1):
            if len(shape) != len(first) or shape[1:] != first[1:]:
                raise ValueError(
                    f"{self.describe()}: branches[0] gives {first} but branches[{i}] gives {shape}; "
                    "they must agree on every axis but the first of a sample (channels or features), "
                    "so give the branches the same strides and padding"
                )
        return (sum(shape[0] for shape in shapes), *first[1:])

    def forward(self, x, train=True):
        self.check_input(x)
        if train:
            self._mark_parts_frozen()
        units = self._part_units()
        self._ran = units if train else None
        self._direct = train and x.ndim == 4 and all(_writes_into(branch, train) for branch in units.values())
        if self._direct:
            return self._forward_into(units, x)
        outputs = [_run(branch, x, train) for branch in units.values()]
        self._widths = [y.shape[1] for y in outputs] if train else None
        return self.ops.concat_channels(*outputs)

    def _forward_into(self, units, x):
        """A training pass whose branches' last groups write their channels of y in place."""
        sample = tuple(x.shape[1:])
        if self._layout is None or self._layout[0] != sample:
            widths = [_shape_through(branch, sample)[0] for branch in self.branches]
            self._layout = (sample, self.output_shape(sample), widths)
        _, shape, self._widths = self._layout
        y = np.empty((x.shape[0], *shape), dtype=x.dtype)
        start = 0
        for branch, width in zip(units.values(), self._widths):
            h = _run(branch[:-1], x, True)
            branch[-1].forward_into(h, y[:, start : start + width])
            start += width
        return y

    def backward(self, dy, input_grad=True):
        units = self._require_forward("_ran")
        dx, start = None, 0
        for (part, branch), width in zip(units.items(), self._widths):
            if self._direct:  # the fused group's kernel reads its channels where they lie
                piece = dy[:, start : start + width]
            else:
                piece = self.ops.channel_slice(dy, start, start + width)
            start += width
            grad = _run_backward(branch, piece, None if input_grad else self._stops.get(part))
            if not input_grad:
                continue
            if dx is None:
                dx, owned = grad, writable_alone(grad, dy)
            elif owned and not np.may_share_memory(dx, grad):
                self.ops.add(dx, grad, out=dx)  # into the first branch's fresh input gradient
            else:
                dx, owned = self.ops.add(dx, grad), True
        return dx
