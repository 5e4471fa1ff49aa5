"""Sequential: a stack of layers over one flat parameter buffer and one gradient buffer."""

from __future__ import annotations

import copy

import numpy as np

from . import _precompile, fusion, training
from ._checks import check_batch_size
from .backends import get_ops
from .errors import NonFiniteError
from .layers import LAYERS
from .layers.base import Layer
from .losses import LOSSES, Loss, SoftmaxCrossEntropy, get_loss
from .optim import clip_grad_norm
from .serialization import register_model_class, save_model

DTYPES = ("float32", "float64")


@register_model_class
class Sequential:
    """Layers applied in order, trained against ``loss``.

    The model owns ``flat_params`` and ``flat_grads``, two 1-D arrays of ``dtype``;
    every layer's ``params``/``grads`` entries are views into them, in layer order,
    so an optimizer updates the whole model with one fused kernel call.

    >>> model = Sequential([Dense(784, 100), ReLU(), Dense(100, 10)], seed=0)
    >>> loss = model.loss(x, t); model.backward(); Adam().step(model)
    """

    def __init__(
        self, layers, loss=None, backend: str = "numba", dtype: str = "float32", seed: int | None = None
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
        self.backend = backend
        self.ops = get_ops(backend)
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.loss_fn: Loss = get_loss(loss if loss is not None else SoftmaxCrossEntropy())
        self.loss_fn.build(self.ops)
        self._build(np.random.default_rng(seed))

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
            initial = layer.init_params(rng)
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
        return int(self.flat_params.size)

    def get_config(self) -> dict:
        return {
            "layers": [
                {"class": type(layer).__name__, "config": layer.get_config()} for layer in self.layers
            ],
            "loss": {"class": type(self.loss_fn).__name__, "config": self.loss_fn.get_config()},
            "backend": self.backend if isinstance(self.backend, str) else self.ops.name,
            "dtype": str(self.dtype),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """A freshly built model from :meth:`get_config` output (layers from their registry)."""
        layers = [LAYERS[spec["class"]](**spec["config"]) for spec in config["layers"]]
        loss = LOSSES[config["loss"]["class"]](**config["loss"]["config"])
        return cls(
            layers,
            loss=loss,
            backend=config.get("backend", "numba"),
            dtype=config.get("dtype", "float32"),
            seed=config.get("seed"),
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
        return f"layers[{index}] {self.layers[index].describe()}"

    def summary(self) -> str:
        """A table of layers and parameter counts."""
        lines = [f"Sequential ({self.ops.name} backend, {self.dtype})"]
        for i, layer in enumerate(self.layers):
            count = sum(p.size for p in layer.params.values())
            lines.append(f"  {i:>2}  {layer.describe():<40} {count:>10,d} params")
        lines.append(f"  total {self.num_params:,d} parameters")
        return "\n".join(lines)

    def __repr__(self):
        inner = ", ".join(layer.describe() for layer in self.layers)
        return f"Sequential([{inner}], loss={self.loss_fn!r}, backend={self.ops.name!r})"

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

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

    def backward(self, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate the last loss: fills every layer's grads, returns d loss / d x.

        ``input_grad=False`` returns None and lets a first Dense or Conv2D layer (after
        nothing but Flatten) skip its input gradient (a training step never needs it).
        """
        dy = self.loss_fn.backward()
        units = self._ran if self._ran is not None else self._plan()
        stop = None if input_grad else fusion.first_weighted_unit(units)
        for i in reversed(range(len(units))):
            if i == stop:
                units[i].backward(dy, input_grad=False)
                return None
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

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """The network's outputs for x, computed in batches (inference mode)."""
        x = self.prepare_input(x, "Sequential.predict")
        batch_size = check_batch_size("Sequential.predict", batch_size)
        outputs = [self._forward(x[i : i + batch_size], train=False) for i in range(0, len(x), batch_size)]
        if not outputs:
            raise ValueError("Sequential.predict: x is empty")
        return np.concatenate(outputs)

    def evaluate(self, x, t, batch_size: int = 256) -> dict:
        """{"loss": mean loss, "accuracy": fraction correct} over (x, t), in batches."""
        x = self.prepare_input(x, "Sequential.evaluate")
        t = self.prepare_targets(t, "Sequential.evaluate")
        if len(t) != len(x) or len(x) == 0:
            raise ValueError(
                f"Sequential.evaluate: x has {len(x)} samples and t has {len(t)}; "
                "expected the same, non-zero count"
            )
        batch_size = check_batch_size("Sequential.evaluate", batch_size)
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            xb, tb = x[i : i + batch_size], t[i : i + batch_size]
            y = self._forward(xb, train=False)
            total_loss += self.loss_fn.forward(y, tb) * len(xb)
            correct += self.loss_fn.count_correct(y, tb)
        return {"loss": total_loss / len(x), "accuracy": correct / len(x)}

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
