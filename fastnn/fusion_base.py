"""The base class of fused groups, shared by the fusion planner's rule modules.

:mod:`fastnn.fusion` (the planner, and the Conv2D/Dense + ReLU groups) and
:mod:`fastnn.fusion_norm` (the BatchNorm groups) both subclass :class:`FusedGroup`;
it lives here so that neither has to import the other's module to get it.
"""

from __future__ import annotations

from .layers.base import Layer

__all__ = ["FusedGroup"]


class FusedGroup:
    """Consecutive layers that run as one unit (``layers``, in model order).

    Subclasses implement ``forward(x, train=True) -> y`` (y is the last layer's
    output) and ``backward(dy, input_grad=True) -> dx`` (filling the layers' grads).
    """

    def __init__(self, *layers: Layer):
        self.layers = tuple(layers)
        self._x = None

    def describe(self) -> str:
        return " + ".join(layer.describe() for layer in self.layers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def _keep(self, train: bool, **arrays) -> None:
        """Keep what backward reads (``arrays``, by attribute name) after a training
        forward; inference keeps nothing, so a predict's arrays are freed as it goes."""
        for name, array in arrays.items():
            setattr(self, name, array if train else None)

    #: the layers' check: backward before forward(train=True) is a RuntimeError naming the group
    _require_forward = Layer._require_forward
