"""Sequential: a stack of layers over one flat parameter buffer and one gradient buffer."""

from __future__ import annotations

import copy

import numpy as np

from . import _precompile, fusion, training
from ._checks import check_batch_size
from .backends import get_ops
from .errors import NonFiniteError
from .layers.base import Layer, layer_from_spec, layer_spec
from .layers.blocks import leaves
from .losses import LOSSES, Loss, SoftmaxCrossEntropy, get_loss
from .metrics import NAMED_METRICS
from .model_summary import format_shape, summary_text
from .optim import clip_grad_norm
from .serialization import register_model_class, save_model

DTYPES = ("float32", "float64")

#: ``predict`` and ``evaluate`` without a ``batch_size`` take chunks of at least this many
#: samples ...
INFERENCE_BATCH = 256
#: ... and of more while the chunk's largest layer output (or its input) stays within
#: this many bytes (:meth:`Sequential.inference_batch_size`) ...
INFERENCE_CHUNK_BYTES = 4 << 20
#: ... or this many for a network whose every layer gives a vector per sample (Dense layers
#: and their activations): bigger chunks are bigger GEMMs (``benchmarks/predict_chunks.py``).
INFERENCE_VECTOR_CHUNK_BYTES = 32 << 20


@register_model_class
class Sequential:
    """Layers applied in order, trained against ``loss``.

    The model owns ``flat_params`` and ``flat_grads``, two 1-D arrays of ``dtype``;
    every layer's ``params``/``grads`` entries are views into them, in layer order,
    so an optimizer updates the whole model with one fused kernel call.

    ``input_shape`` is the shape of one sample, without the batch axis (``(1, 28, 28)``
    for MNIST images); when it is not given, the first :meth:`train_step` (or
    :meth:`fit`) records it from the data. Every entry point checks its input against
    it (or, while it is unknown, against the layers) before computing anything.

    >>> model = Sequential([Dense(784, 100), ReLU(), Dense(100, 10)], seed=0)
    >>> loss = model.loss(x, t); model.backward(); Adam().step(model)
    """

    def __init__(
        self,
        layers,
        loss=None,
        backend: str = "numba",
        dtype: str = "float32",
        seed: int | None = None,
        input_shape=None,
    ):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] is a {type(layer).__name__}, not a Layer")
        if str(np.dtype(dtype)) not in DTYPES:
            raise TypeError(f"Sequential: dtype must be one of {DTYPES}, got {dtype!r}")
        self.layers = layers
        #: Run neighbouring layers as one kernel where :mod:`fastnn.fusion` has a rule
        #: (bit-identical results); False runs every layer on its own.
        self.fuse_layers = True
        self._units = None  # (key, units) of the last plan
        self._ran = None  # the units of the last training forward pass
        self._last_output = None
        self._spans = None  # (key, trainable_spans()) of the last layers' trainable flags
        self.backend = backend
        self.ops = get_ops(backend)
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.loss_fn: Loss = get_loss(loss if loss is not None else SoftmaxCrossEntropy())
        self.loss_fn.build(self.ops)
        self._build(np.random.default_rng(seed))
        self._input_shape = None
        self.input_shape = input_shape

    # -- construction ----------------------------------------------------------

    def _build(self, rng: np.random.Generator) -> None:
        shapes = []
        for layer in self.layers:
            layer.build(self.ops, self.dtype)
            shapes.append(layer.param_shapes())
        total = sum(int(np.prod(s)) for layer_shapes in shapes for s in layer_shapes.values())
        self.flat_params = np.zeros(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer, layer_shapes in zip(self.layers, shapes):
            kept = _values_it_holds(layer, layer_shapes)
            initial = kept if kept is not None else layer.init_params(rng)
            params, grads = {}, {}
            for name, shape in layer_shapes.items():
                size = int(np.prod(shape))
                params[name] = self.flat_params[offset : offset + size].reshape(shape)
                grads[name] = self.flat_grads[offset : offset + size].reshape(shape)
                params[name][...] = initial[name]
                offset += size
            layer.bind(params, grads)

    @property
    def num_params(self) -> int:
        """The number of parameters, trainable or frozen (the flat buffer's size)."""
        return int(self.flat_params.size)

    def trainable_spans(self) -> list[tuple[int, int]]:
        """The parts of the flat buffers an optimizer updates, as [start, stop) index
        pairs, neighbours merged: ``[(0, num_params)]`` unless a layer is frozen
        (``layer.trainable = False``)."""
        walk = list(leaves(self.layers))
        key = tuple((id(layer), trainable) for layer, trainable in walk)
        if self._spans is None or self._spans[0] != key:
            spans, offset = [], 0
            for layer, trainable in walk:
                size = sum(int(p.size) for p in layer.params.values())
                if trainable and size:
                    if spans and spans[-1][1] == offset:
                        spans[-1] = (spans[-1][0], offset + size)
                    else:
                        spans.append((offset, offset + size))
                offset += size
            self._spans = (key, spans)
        return self._spans[1]

    def _mark_frozen(self) -> None:
        """No block holds the model's own layers (one may have, in the model they were
        taken from); the blocks among them tell their sublayers in their training forward."""
        for layer in self.layers:
            layer.frozen_by_block = False

    def get_config(self) -> dict:
        """The model's architecture as JSON data: layers, loss, backend, dtype (what ``save`` writes)."""
        return {
            "layers": [layer_spec(layer) for layer in self.layers],
            "loss": {"class": type(self.loss_fn).__name__, "config": self.loss_fn.get_config()},
            "backend": self.backend if isinstance(self.backend, str) else self.ops.name,
            "dtype": str(self.dtype),
            "seed": self.seed,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
        }

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """A freshly built model from :meth:`get_config` output (layers from their registry)."""
        layers = [layer_from_spec(spec) for spec in config["layers"]]
        loss = LOSSES[config["loss"]["class"]](**config["loss"]["config"])
        return cls(
            layers,
            loss=loss,
            backend=config.get("backend", "numba"),
            dtype=config.get("dtype", "float32"),
            seed=config.get("seed"),
            input_shape=config.get("input_shape"),
        )

    def output_shape(self, input_shape) -> tuple:
        """The output shape for one sample of ``input_shape`` (no batch axis).

        Raises a ValueError naming the first layer that cannot take what it is given.
        """
        shape = tuple(int(s) for s in input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def layer_name(self, index: int) -> str:
        """``layers[i] <description>``, the name messages use for layer ``index``."""
        return f"layers[{index}] {self.layers[index].describe()}"

    def summary(self, batch_size: int = 1, input_shape=None) -> str:
        """A Keras-like table, returned as a string (``print(model.summary())``).

        One row per layer: its description, output shape (batch axis N) and parameter
        count; then the total parameters, their memory at the model's dtype, and the
        activation memory of a training step at ``batch_size`` (the output of every
        layer). ``input_shape`` (one sample's) defaults to :attr:`input_shape`; without
        either, shapes show "?".
        """
        batch_size = check_batch_size("Sequential.summary", batch_size)
        if input_shape is not None:
            input_shape = self._sample_shape_argument(input_shape, "Sequential.summary")
        return summary_text(self, batch_size, input_shape)

    def __repr__(self):
        inner = ", ".join(layer.describe() for layer in self.layers)
        return f"Sequential([{inner}], loss={self.loss_fn!r}, backend={self.ops.name!r})"

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    # -- the input shape -------------------------------------------------------

    @property
    def input_shape(self) -> tuple | None:
        """The shape of one input sample, without the batch axis (None while unknown)."""
        return self._input_shape

    @input_shape.setter
    def input_shape(self, shape) -> None:
        #: Sample shapes the model was checked to take: shape -> the layers' ids then.
        self._fitting_shapes: dict[tuple, tuple] = {}
        #: inference_batch_size's answers: sample shape -> (the layers' ids then, batch).
        self._inference_batches: dict[tuple, tuple] = {}
        self._input_shape = None
        if shape is not None:
            shape = self._sample_shape_argument(shape, "Sequential(input_shape=...)")
            self._check_sample_shape(shape, "Sequential(input_shape=...)")
            self._input_shape = shape

    @staticmethod
    def _sample_shape_argument(shape, where: str = "Sequential") -> tuple:
        try:
            sample = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            sample = None
        if sample is None or any(s < 1 for s in sample):
            raise ValueError(
                f"{where}: input_shape must be the shape of one sample without the batch axis, "
                f"a tuple of positive integers such as (1, 28, 28); got {shape!r}"
            )
        return sample

    def _check_sample_shape(self, sample: tuple, where: str) -> None:
        """Raise a ValueError at once unless the model takes samples of shape ``sample``:
        the shape must equal :attr:`input_shape` when known, and every layer must take
        what the one before gives it. A shape found to fit is remembered, so the check
        costs a dict look-up per call until the layers change."""
        layer_ids = tuple(map(id, self.layers))
        if self._fitting_shapes.get(sample) == layer_ids:
            return
        expected = self.input_shape
        if expected is not None and sample != expected:
            if int(np.prod(sample)) == int(np.prod(expected)):
                todo = f"reshape them: x.reshape({', '.join(map(str, (-1, *expected)))})"
            else:
                todo = f"resize them to that shape, or build a model for {_describe_sample(sample)}"
            raise ValueError(
                f"{where}: expected inputs of shape {format_shape(expected)}, got {format_shape(sample)} "
                f"(the model was built for {_describe_sample(expected)}); {todo}"
            )
        shape = sample
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.output_shape(shape))
            except (ValueError, TypeError) as error:
                reason = str(error)
                if not reason.startswith(layer.describe()):
                    reason = f"{layer.describe()}: cannot take samples of shape {shape} ({reason})"
                if len(shape) > 1 and _takes(layer, (int(np.prod(shape)),)):
                    reason += " (add Flatten() before it)"
                raise ValueError(
                    f"{where}: inputs of shape {format_shape(sample)} do not fit the model at "
                    f"layers[{i}]: {reason}"
                ) from None
        self._fitting_shapes[sample] = layer_ids

    # -- computation -----------------------------------------------------------

    def prepare_input(self, x, where: str = "Sequential") -> np.ndarray:
        """x as an array of the model's dtype; TypeError for non-float, ValueError for NaN/Inf."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype.kind != "f":
            raise TypeError(
                f"{where}: expected float input (float32 or float64), got dtype {x.dtype}; "
                "convert images with x.astype(np.float32) / 255"
            )
        if x.ndim == 0:
            raise ValueError(f"{where}: expected input with a batch axis, got a scalar")
        self._check_sample_shape(x.shape[1:], where)
        x = x.astype(self.dtype, copy=False)
        if not self.ops.all_finite(x):
            bad = np.size(x) - np.count_nonzero(np.isfinite(x))
            raise ValueError(f"{where}: input contains {bad} NaN or Inf value(s)")
        return x

    def prepare_targets(self, t, where: str = "Sequential") -> np.ndarray:
        """t as an array: integer class indices become int64; floats keep the model's dtype."""
        if not isinstance(t, np.ndarray):
            t = np.asarray(t)
        if t.dtype.kind in "iu":
            return t.astype(np.int64, copy=False)
        if t.dtype.kind == "b":
            return t.astype(self.dtype)
        if t.dtype.kind == "f":
            t = t.astype(self.dtype, copy=False)
            if not np.isfinite(t).all():
                raise ValueError(f"{where}: targets contain NaN or Inf")
            return t
        raise TypeError(f"{where}: expected integer class labels or float targets, got dtype {t.dtype}")

    def _plan(self) -> list:
        """The units a pass runs: layers, and :mod:`fastnn.fusion` groups of neighbours
        that run as one kernel (none when ``fuse_layers`` is False). Rebuilt when the
        layers or ``fuse_layers`` change."""
        key = (self.fuse_layers, tuple(map(id, self.layers)))
        if self._units is None or self._units[0] != key:
            self._units = (key, fusion.plan(self.layers, fuse=self.fuse_layers))
        return self._units[1]

    def _forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        units = self._plan()
        if train:
            self._mark_frozen()
        for unit in units:
            x = unit.forward(x, train=train)
        self._ran = units if train else None
        return x

    def forward(self, x, train: bool = False) -> np.ndarray:
        """The network's output for a batch x (no loss)."""
        return self._forward(self.prepare_input(x, "Sequential.forward"), train)

    def loss(self, x, t, train: bool = True) -> float:
        """Run the forward pass and return the mean loss over the batch."""
        x = self.prepare_input(x, "Sequential.loss")
        t = self.prepare_targets(t, "Sequential.loss")
        if len(t) != len(x):
            raise ValueError(f"Sequential.loss: x has {len(x)} samples but t has {len(t)}")
        self._last_output = self._forward(x, train)
        return self.loss_fn.forward(self._last_output, t)

    @property
    def last_output(self) -> np.ndarray | None:
        """The network's output (before the loss) from the last :meth:`loss` or
        :meth:`train_step`, e.g. to count a training batch's correct predictions."""
        return self._last_output

    def backward(self, input_grad: bool = True, loss_scale: float = 1.0) -> np.ndarray | None:
        """Backpropagate the last loss: fills every layer's grads (a frozen layer's are not
        computed: they are zeros), returns d loss / d x.

        ``input_grad=False`` returns None and lets a first Dense or Conv2D layer (after
        nothing but Flatten) skip its input gradient (a training step never needs it).
        ``loss_scale``: backpropagate ``loss_scale * loss`` instead, by scaling the loss's
        gradient (N, outputs) before the layers see it, so every gradient comes out scaled
        (a data-parallel rank passes its share n_rank / n_global of the global batch).
        """
        dy = self.loss_fn.backward()
        if loss_scale != 1.0:
            dy = dy * dy.dtype.type(loss_scale)
        units = self._ran if self._ran is not None else self._plan()
        stop = None if input_grad else fusion.first_weighted_unit(units)
        for i in reversed(range(len(units))):
            if i == stop:
                units[i].backward(dy, input_grad=False)
                dy = None
                break
            dy = units[i].backward(dy)
        return dy if input_grad else None

    def first_nonfinite_layer(self, x) -> str | None:
        """The first layer whose output is NaN/Inf for input x (None if all are finite)."""
        x = self.prepare_input(x)
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, train=False)
            if not np.isfinite(x).all():
                return self.layer_name(i)
        return None

    def first_nonfinite_gradient(self) -> str | None:
        """The first layer (in backward order) with a NaN/Inf gradient, or None."""
        for i in reversed(range(len(self.layers))):
            for name, grad in self.layers[i].grads.items():
                if not np.isfinite(grad).all():
                    return f"{self.layer_name(i)} grads['{name}']"
        return None

    def train_step(self, x, t, optimizer, clip_norm: float | None = None) -> float:
        """One optimizer step on a batch; returns the loss before the step.

        Raises NonFiniteError (leaving the weights untouched) when the loss or a
        gradient is NaN or Inf, naming the first layer where it appeared.
        ``clip_norm``: first scale the flat gradient to at most this global L2 norm
        (:func:`fastnn.optim.clip_grad_norm`).
        """
        sample = np.shape(x)[1:]
        self._check_sample_shape(sample, "Sequential.train_step")
        if self.input_shape is None:
            self.input_shape = sample
        if not self._compiled_ahead:
            self._compile_ahead(x, t, optimizer)
        loss = self.loss(x, t, train=True)
        if not np.isfinite(loss):
            where = self.first_nonfinite_layer(x) or f"the loss {self.loss_fn!r}"
            raise NonFiniteError(f"loss is {loss}: first non-finite value in {where}")
        self.backward(input_grad=False)
        if not self.ops.all_finite(self.flat_grads):
            where = self.first_nonfinite_gradient()
            raise NonFiniteError(f"gradient is not finite: first in {where}")
        if clip_norm is not None:
            clip_grad_norm(self.flat_grads, clip_norm)
        optimizer.step(self)
        return loss

    #: Whether the first train_step has looked for kernels to compile (once per model).
    _compiled_ahead = False

    def _compile_ahead(self, x, t, optimizer) -> None:
        """Before the first training step, on a kernel cache that has not seen fastnn yet:
        compile the kernels this step will call now, in parallel processes
        (:mod:`fastnn._precompile`), found by a run of the step's Python on copies of the
        model and optimizer with the kernels recorded, not run. Nothing changes the model
        or the results; otherwise this costs one look at the cache."""
        self._compiled_ahead = True
        if getattr(self.ops, "name", None) != "numba":
            return

        def step_on_copies():
            model, opt = copy.deepcopy((self, optimizer))
            model.loss(x, t, train=True)
            model.backward(input_grad=False)
            model.ops.all_finite(model.flat_grads)
            opt.step(model)

        _precompile.before_first_call(step_on_copies)

    # -- training and inference ------------------------------------------------

    def fit(self, x, t, epochs: int = 1, batch_size: int = 32, optimizer=None, **kwargs):
        """Train with mini-batches; returns a History. See :func:`fastnn.training.fit`."""
        return training.fit(self, x, t, epochs=epochs, batch_size=batch_size, optimizer=optimizer, **kwargs)

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        """The network's raw outputs for x (N, ...), computed in batches (inference mode).

        These are the last layer's outputs before the loss: logits (N, C) for a model
        trained with SoftmaxCrossEntropy, not probabilities. :meth:`predict_proba` gives
        the probabilities and :meth:`predict_classes` the class indices. ``batch_size``:
        samples per chunk; None takes :meth:`inference_batch_size`.
        """
        return self._predict(x, batch_size, "Sequential.predict")

    def inference_batch_size(self, sample_shape) -> int:
        """Samples per chunk of :meth:`predict` and :meth:`evaluate` without a ``batch_size``.

        max(INFERENCE_BATCH, INFERENCE_CHUNK_BYTES // (largest * itemsize)), with
        ``largest`` the most values one sample has at any layer's output or at the input:
        256 for networks whose activations are large (a conv net on MNIST, whose chunk's
        outputs outgrow the cache), more for small ones, whose chunks of 256 spend more of
        their time in the Python between the kernels. A network whose every layer outputs
        a vector per sample (an MLP) takes INFERENCE_VECTOR_CHUNK_BYTES instead: its time
        is GEMMs, which run faster on more rows (10,699 samples for an MLP on MNIST).
        """
        shape = tuple(int(s) for s in sample_shape)
        largest = int(np.prod(shape))
        vectors = True
        for layer in self.layers:
            shape = layer.output_shape(shape)
            largest = max(largest, int(np.prod(shape)))
            vectors = vectors and len(shape) == 1
        itemsize = np.dtype(self.dtype).itemsize
        budget = INFERENCE_VECTOR_CHUNK_BYTES if vectors else INFERENCE_CHUNK_BYTES
        return max(INFERENCE_BATCH, budget // max(1, largest * itemsize))

    def _inference_batch(self, where: str, batch_size, x) -> int:
        """``batch_size`` checked, or for None :meth:`inference_batch_size`, remembered per
        sample shape until the layers change (a walk over them costs as much as a small
        predict)."""
        if batch_size is not None:
            return check_batch_size(where, batch_size)
        sample, layer_ids = x.shape[1:], tuple(map(id, self.layers))
        known = self._inference_batches.get(sample)
        if known is None or known[0] != layer_ids:
            known = self._inference_batches[sample] = (layer_ids, self.inference_batch_size(sample))
        return known[1]

    def _predict(self, x, batch_size, where: str) -> np.ndarray:
        x = self.prepare_input(x, where)
        batch_size = self._inference_batch(where, batch_size, x)
        outputs = [self._forward(x[i : i + batch_size], train=False) for i in range(0, len(x), batch_size)]
        if not outputs:
            raise ValueError(f"{where}: x is empty; expected at least one sample")
        return np.concatenate(outputs)

    def predict_proba(self, x, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, C) for x: the loss's reading of the outputs,
        ``loss_fn.probabilities(predict(x))`` (softmax for SoftmaxCrossEntropy, rows sum
        to 1). A TypeError for a loss that has none, such as MeanSquaredError."""
        self.loss_fn.probabilities(np.zeros((1, 2), self.dtype))  # a loss without them fails before the work
        return self.loss_fn.probabilities(self._predict(x, batch_size, "Sequential.predict_proba"))

    def predict_classes(self, x, batch_size: int | None = None) -> np.ndarray:
        """Predicted class indices (N,) int64: ``loss_fn.classes(predict(x))`` (the argmax of
        the outputs for SoftmaxCrossEntropy)."""
        return self.loss_fn.classes(self._predict(x, batch_size, "Sequential.predict_classes"))

    def evaluate(self, x, t, batch_size: int | None = None, metrics=None) -> dict:
        """{"loss": mean loss, "accuracy": fraction correct} over (x, t), in batches
        (``batch_size`` as :meth:`predict` takes it).

        ``metrics``: more entries, each computed over the whole set: names from
        :data:`fastnn.metrics.NAMED_METRICS` ("accuracy", "top_k_accuracy", "precision",
        "recall", "f1" (per class), "confusion_matrix", "mse", "mae", "r2"), or callables
        ``f(outputs, t)`` given the network's outputs (as :meth:`predict` returns them),
        entered under their ``__name__``.
        """
        metrics = self._metric_functions(metrics)
        x = self.prepare_input(x, "Sequential.evaluate")
        t = self.prepare_targets(t, "Sequential.evaluate")
        if len(t) != len(x) or len(x) == 0:
            raise ValueError(
                f"Sequential.evaluate: x has {len(x)} samples and t has {len(t)}; "
                "expected the same, non-zero count"
            )
        batch_size = self._inference_batch("Sequential.evaluate", batch_size, x)
        total_loss, correct, outputs = 0.0, 0, []
        for i in range(0, len(x), batch_size):
            xb, tb = x[i : i + batch_size], t[i : i + batch_size]
            y = self._forward(xb, train=False)
            total_loss += self.loss_fn.forward(y, tb) * len(xb)
            correct += self.loss_fn.count_correct(y, tb)
            if metrics:
                outputs.append(y.copy())
        result = {"loss": total_loss / len(x), "accuracy": correct / len(x)}
        if metrics:
            result.update(self._metric_values(metrics, np.concatenate(outputs), t))
        return result

    def _metric_values(self, metrics: dict, y: np.ndarray, t: np.ndarray) -> dict:
        """evaluate's extra metrics from the outputs y of the whole set. "classes" metrics get
        the loss's class predictions; "outputs" ones (regression) get y against t, with class
        indices one-hot encoded to y's width as MeanSquaredError does; "raw" ones get (y, t)."""
        width = y.shape[1] if y.ndim == 2 and y.shape[1] > 1 else None
        classes = None
        values = {}
        for name, (function, reads) in metrics.items():
            if reads == "classes":
                classes = self.loss_fn.classes(y) if classes is None else classes
                values[name] = function(classes, t, num_classes=width or 2)
            elif reads == "outputs" and width and t.ndim == 1 and t.dtype.kind in "iu":
                values[name] = function(y, np.eye(width, dtype=y.dtype)[t])
            else:
                values[name] = function(y, t)
        return values

    @staticmethod
    def _metric_functions(metrics) -> dict:
        """{name: (function, what it reads)} for evaluate's ``metrics``, checked before any work."""
        if metrics is None:
            return {}
        if isinstance(metrics, str) or callable(metrics):
            metrics = [metrics]
        chosen = {}
        for metric in metrics:
            if callable(metric):
                chosen[getattr(metric, "__name__", repr(metric))] = (metric, "raw")
            elif metric in NAMED_METRICS:
                chosen[metric] = NAMED_METRICS[metric]
            else:
                raise ValueError(
                    f"Sequential.evaluate: unknown metric {metric!r}; expected one of "
                    f"{sorted(NAMED_METRICS)} or a function f(outputs, t)"
                )
        return chosen

    # -- persistence ------------------------------------------------------------

    def save(self, path) -> None:
        """Write architecture and weights to one .npz file, atomically (:mod:`fastnn.serialization`)."""
        save_model(self, path)

    def to_onnx(self, path, opset: int = 17, batch_size=None, input_shape=None, probabilities=False) -> None:
        """Write the model to ``path`` as an ONNX file (input "input", output "output": what
        predict returns), atomically; needs ``pip install 'fastnn[onnx]'``.
        See :func:`fastnn.export.to_onnx`."""
        from .export import to_onnx

        to_onnx(self, path, opset, batch_size, input_shape=input_shape, probabilities=probabilities)


def _describe_sample(shape: tuple) -> str:
    """Words for a sample shape: "1x28x28 images" for (1, 28, 28), "784 features per sample" for (784,)."""
    if len(shape) == 1:
        return f"{shape[0]} features per sample"
    kind = "images" if len(shape) == 3 else "samples"
    return f"{'x'.join(map(str, shape))} {kind}"


def _takes(layer, sample_shape: tuple) -> bool:
    """Whether ``layer`` accepts samples of ``sample_shape``."""
    try:
        layer.output_shape(sample_shape)
    except (ValueError, TypeError):
        return False
    return True


def _values_it_holds(layer, shapes: dict) -> dict | None:
    """Copies of the parameters ``layer`` already holds, when it holds all of ``shapes``
    (a layer taken from a trained model, or one ``initialize()``d): a new model keeps them,
    as Keras does, so ``Sequential(old.layers[:-1] + [Dense(100, 5)])`` keeps the trained
    body. None for a fresh layer, which the model initialises."""
    if not shapes or set(layer.params) != set(shapes):
        return None
    if any(tuple(layer.params[name].shape) != tuple(shape) for name, shape in shapes.items()):
        return None
    return {name: np.array(value, copy=True) for name, value in layer.params.items()}
