"""Sequential: a stack of layers over one flat parameter buffer and one gradient buffer."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .backends import get_ops
from .errors import NonFiniteError
from .layers.activations import ReLU
from .layers.base import Layer
from .layers.conv import Conv2D
from .layers.dense import Dense
from .layers.pool import MaxPool2D
from .layers.reshape import Flatten
from .losses import Loss, SoftmaxCrossEntropy, get_loss

DTYPES = ("float32", "float64")


class Step(NamedTuple):
    """One step of :meth:`Sequential._plan`: ``layer`` runs forward when ``forward`` (with
    a fused ReLU when ``relu``) and backward when ``backward``. ``pool``: the MaxPool2D
    after a fused Conv2D + ReLU, whose backward pass runs in the convolution's (its own
    step has ``backward`` False) and, when it is 2x2 (``forward`` True here), whose forward
    pass too (its own step has ``forward`` False)."""

    layer: Layer
    relu: bool
    pool: Layer | None
    backward: bool
    forward: bool = True


def _first_weighted_layer(plan) -> int | None:
    """The index in ``plan`` of a first Dense/Conv2D preceded by nothing but Flatten
    (the layer whose input gradient nobody needs), else None."""
    for i, step in enumerate(plan):
        layer = step.layer
        if isinstance(layer, (Conv2D, Dense)):
            return i
        if not isinstance(layer, Flatten):
            return None
    return None


class Sequential:
    """Layers applied in order, trained against ``loss``.

    The model owns ``flat_params`` and ``flat_grads``, two 1-D arrays of ``dtype``;
    every layer's ``params``/``grads`` entries are views into them, in layer order,
    so an optimizer updates the whole model with one fused kernel call.

    >>> model = Sequential([Dense(784, 100), ReLU(), Dense(100, 10)], seed=0)
    >>> loss = model.loss(x, t); model.backward(); Adam().step(model)
    """

    def __init__(self, layers, loss=None, backend: str = "numba", dtype: str = "float32",
                 seed: int | None = None):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] is a {type(layer).__name__}, not a Layer")
        if str(np.dtype(dtype)) not in DTYPES:
            raise TypeError(f"Sequential: dtype must be one of {DTYPES}, got {dtype!r}")
        self.layers = layers
        self.fuse_layers = True
        self._ran = None
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
                params[name] = self.flat_params[offset:offset + size].reshape(shape)
                grads[name] = self.flat_grads[offset:offset + size].reshape(shape)
                params[name][...] = initial[name]
                offset += size
            layer.bind(params, grads)

    @property
    def num_params(self) -> int:
        return int(self.flat_params.size)

    def get_config(self) -> dict:
        return {
            "layers": [{"class": type(l).__name__, "config": l.get_config()} for l in self.layers],
            "loss": {"class": type(self.loss_fn).__name__, "config": self.loss_fn.get_config()},
            "backend": self.backend if isinstance(self.backend, str) else self.ops.name,
            "dtype": str(self.dtype),
            "seed": self.seed,
        }

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

    def _plan(self) -> list[Step]:
        """The layers as run, as :class:`Step` s. A Conv2D or Dense directly followed by a
        ReLU runs as one step with the ReLU fused into its kernels (``relu``; the ReLU
        layer is skipped); when a MaxPool2D follows a fused Conv2D + ReLU, its backward
        pass is fused into the convolution's (``pool``; the pooling's own step has
        ``backward`` False), and a 2x2 one also pools in the convolution's forward kernel
        (its own step has ``forward`` False). Both give the same numbers as running the
        layers apart; set ``fuse_layers = False`` for that."""
        plan = []
        layers = self.layers
        i = 0
        while i < len(layers):
            layer = layers[i]
            relu = (self.fuse_layers and isinstance(layer, (Conv2D, Dense))
                    and i + 1 < len(layers) and type(layers[i + 1]) is ReLU)
            pool = (layers[i + 2] if relu and isinstance(layer, Conv2D) and i + 2 < len(layers)
                    and type(layers[i + 2]) is MaxPool2D else None)
            pooled_in_kernel = pool is not None and pool.is_2x2
            plan.append(Step(layer, relu, pool, True, True))
            i += 2 if relu else 1
            if pool is not None:
                plan.append(Step(pool, False, None, False, not pooled_in_kernel))
                i += 1
        return plan

    def _forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        plan = self._plan()
        for i, step in enumerate(plan):
            if not step.forward:
                continue                  # a 2x2 pooling the convolution before it ran
            if step.relu and step.pool is not None and not plan[i + 1].forward:
                x = step.layer.forward(x, train=train, relu=True, pool=step.pool)
            elif step.relu:
                x = step.layer.forward(x, train=train, relu=True)
            else:
                x = step.layer.forward(x, train=train)
        self._ran = plan if train else None
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

    def backward(self, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate the last loss: fills every layer's grads, returns d loss / d x.

        ``input_grad=False`` returns None and lets a first Dense or Conv2D layer (after
        nothing but Flatten) skip its input gradient (a training step never needs it).
        """
        dy = self.loss_fn.backward()
        plan = self._ran if self._ran is not None else self._plan()
        stop = None if input_grad else _first_weighted_layer(plan)
        for i in reversed(range(len(plan))):
            step = plan[i]
            if not step.backward:
                continue                  # a pooling whose backward the step before runs
            extra = {} if step.pool is None else {"pool": step.pool}
            if i == stop:
                step.layer.backward(dy, input_grad=False, **extra)
                return None
            dy = step.layer.backward(dy, **extra)
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
        loss = self.loss(x, t, train=True)
        if not np.isfinite(loss):
            where = self.first_nonfinite_layer(x) or f"the loss {self.loss_fn!r}"
            raise NonFiniteError(f"loss is {loss}: first non-finite value in {where}")
        self.backward(input_grad=False)
        if not self.ops.all_finite(self.flat_grads):
            where = self.first_nonfinite_gradient()
            raise NonFiniteError(f"gradient is not finite: first in {where}")
        if clip_norm is not None:
            from .optim import clip_grad_norm

            clip_grad_norm(self.flat_grads, clip_norm)
        optimizer.step(self)
        return loss

    # -- training and inference ------------------------------------------------

    def fit(self, x, t, epochs: int = 1, batch_size: int = 32, optimizer=None, **kwargs):
        """Train with mini-batches; returns a History. See :func:`fastnn.training.fit`."""
        from .training import fit

        return fit(self, x, t, epochs=epochs, batch_size=batch_size, optimizer=optimizer, **kwargs)

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """The network's outputs for x, computed in batches (inference mode)."""
        x = self.prepare_input(x, "Sequential.predict")
        batch_size = _check_batch_size("Sequential.predict", batch_size)
        outputs = [self._forward(x[i:i + batch_size], train=False)
                   for i in range(0, len(x), batch_size)]
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
                "expected the same, non-zero count")
        batch_size = _check_batch_size("Sequential.evaluate", batch_size)
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            xb, tb = x[i:i + batch_size], t[i:i + batch_size]
            y = self._forward(xb, train=False)
            total_loss += self.loss_fn.forward(y, tb) * len(xb)
            correct += count_correct(y, tb)
        return {"loss": total_loss / len(x), "accuracy": correct / len(x)}

    # -- persistence ------------------------------------------------------------

    def save(self, path) -> None:
        """Write architecture and weights to one .npz file, atomically."""
        from .serialization import save_model

        save_model(self, path)


def count_correct(y: np.ndarray, t: np.ndarray) -> int:
    """Correct predictions in a batch: argmax for several outputs, y > 0.5 for one."""
    if y.ndim == 2 and y.shape[1] > 1:
        predicted = y.argmax(axis=1)
        truth = t if t.ndim == 1 else t.argmax(axis=1)
    else:
        predicted = (y.reshape(len(y), -1)[:, 0] > 0.5).astype(np.int64)
        truth = np.rint(t.reshape(len(t), -1)[:, 0]).astype(np.int64)
    return int(np.count_nonzero(predicted == truth))


def _check_batch_size(where: str, batch_size) -> int:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
