"""The layer protocol (Deep Learning from Scratch style) and the layer registry.

A layer has ``forward(x, train=True) -> y`` and ``backward(dy) -> dx``, and
``params`` / ``grads`` dicts of named arrays. Inside a model those arrays are
views into the model's one flat parameter buffer and one gradient buffer, so
``backward`` writes gradients in place and one fused kernel updates everything.

The two methods mean the same in every layer: ``forward`` computes this layer's
output from its input and keeps what ``backward`` needs; ``backward`` takes the
gradient of the loss with respect to that output, fills ``grads`` and returns the
gradient with respect to the input. A layer never reads another layer's state:
running neighbouring layers as one kernel is :mod:`fastnn.fusion`'s job.
"""

from __future__ import annotations

import numpy as np

from ..backends import get_ops

LAYERS: dict[str, type] = {}


class Layer:
    """Base class. Subclasses set ``param_shapes`` and implement forward/backward.

    Lifecycle: construct with hyperparameters, then ``build(ops, dtype)`` (the model
    does this) picks the backend and dtype; ``init_params(rng)`` returns initial
    values, which the model copies into the flat buffer before binding the views.
    """

    #: Whether training changes :attr:`buffers` (BatchNorm's running statistics do; a
    #: fitted preprocessing layer's do not). fit snapshots only buffers that change.
    buffers_change_in_training = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYERS[cls.__name__] = cls

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        #: Non-trainable arrays saved with the model (e.g. BatchNorm's running statistics).
        self.buffers: dict[str, np.ndarray] = {}
        #: False freezes the layer: optimizers leave its parameters alone (no update, no
        #: weight decay), backward computes no weight gradient (grads stay zero) and a
        #: BatchNorm normalises with its running statistics. Saved with the model.
        self.trainable = True
        #: True while a block around this layer is frozen (a block's flag covers its
        #: layers); the model sets it before each training pass.
        self.frozen_by_block = False
        self.ops = get_ops("numba")
        self.dtype = np.dtype(np.float32)

    # -- configuration -------------------------------------------------------

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {}

    def param_shapes(self) -> dict[str, tuple]:
        """Shapes of the trainable arrays, by name, in buffer order."""
        return {}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Initial values for every entry of :meth:`param_shapes`."""
        return {}

    def build(self, ops, dtype) -> "Layer":
        """Choose the backend ops and dtype this layer computes with."""
        self.ops = get_ops(ops) if isinstance(ops, str) else ops
        self.dtype = np.dtype(dtype)
        return self

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Use the given arrays (views into the model's buffers) as params and grads."""
        self.params, self.grads = params, grads

    def initialize(self, rng=None, ops="numba", dtype="float32") -> "Layer":
        """Standalone use, outside a model: build, then own freshly initialised arrays."""
        self.build(ops, dtype)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        values = self.init_params(rng)
        self.bind(
            {k: v.astype(self.dtype) for k, v in values.items()},
            {k: np.zeros_like(v, dtype=self.dtype) for k, v in values.items()},
        )
        return self

    @property
    def frozen(self) -> bool:
        """Whether this layer computes as frozen: ``trainable`` is False, or a block around
        it is frozen (:attr:`frozen_by_block`)."""
        return not self.trainable or self.frozen_by_block

    def zero_grads(self) -> None:
        """Set every entry of :attr:`grads` to 0 in place (a frozen layer's backward does,
        instead of computing them)."""
        for grad in self.grads.values():
            grad[...] = 0

    # -- computation ---------------------------------------------------------

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """The layer's output for a batch ``x``; ``train`` selects training behaviour
        (Dropout's masks, BatchNorm's batch statistics)."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """d loss / d x from d loss / d y (dy shaped like the last forward's output);
        fills :attr:`grads`. Layers with weights (Dense, Conv2D) also take
        ``input_grad=False``, which skips dx and returns None."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple) -> tuple:
        """The output shape (without the batch axis) for an input of ``input_shape``."""
        return tuple(input_shape)

    # -- presentation ----------------------------------------------------------

    def describe(self) -> str:
        """A short name for messages and summaries, e.g. ``Dense(784->100)``."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __repr__(self) -> str:
        return self.describe()

    def check_input(self, x: np.ndarray) -> None:
        """Raise TypeError/ValueError naming this layer unless ``forward`` can take ``x``.

        The base checks the array type and dtype; layers with shape rules extend it.
        """
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.describe()}: expected a numpy array, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{self.describe()}: expected input of dtype {self.dtype}, got {x.dtype}")

    def _require_forward(self, attribute: str):
        value = getattr(self, attribute, None)
        if value is None:
            raise RuntimeError(f"{self.describe()}: backward() called before forward(train=True)")
        return value


def image_sample_shape(where: str, sample_shape) -> tuple:
    """``sample_shape`` as (C, H, W), the sample of an (N, C, H, W) batch; a ValueError
    naming ``where`` for any other number of axes."""
    sample = tuple(sample_shape)
    if len(sample) != 3:
        shown = ", ".join(map(str, ("N", *sample)))
        raise ValueError(f"{where}: expected input with 4 dimensions (N, C, H, W), got shape ({shown})")
    return sample


def layer_spec(layer: Layer) -> dict:
    """A layer as saved in a model's config: its class and config, and ``trainable`` when
    frozen (:func:`layer_from_spec` reads it back)."""
    spec = {"class": type(layer).__name__, "config": layer.get_config()}
    if not layer.trainable:
        spec["trainable"] = False
    return spec


def layer_from_spec(spec: dict) -> Layer:
    """The layer a :func:`layer_spec` dict describes, built from the LAYERS registry."""
    layer = LAYERS[spec["class"]](**spec.get("config", {}))
    layer.trainable = bool(spec.get("trainable", True))
    return layer
