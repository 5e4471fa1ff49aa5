"""One playground: its settings, points, network and optimizer, trained an epoch at a time.

A :class:`Session` holds the state the page shows and changes. Every public method takes
the session's lock, so the training thread (:class:`fastnn.playground.runner.Runner`) and
the web handlers can call it at any time. The pictures (the 100x100 output heatmap over
[-6, 6]² and every neuron's thumbnail) come from fastnn's own layers, run on the grid
with the session's backend.

The network for F features and hidden sizes [h1, ..., hL]::

    Dense(F, h1), act, [Dropout(p)], ..., Dense(hL, K)

with K = 1 and ``SigmoidCrossEntropy`` for two classes, K classes and
``SoftmaxCrossEntropy`` for more, K = 1 and ``MeanSquaredError`` for regression.
Regularisation is the optimizer's: L2 is ``weight_decay``, L1 is ``l1`` (both apply to
every parameter, biases included).
"""

from __future__ import annotations

import base64
import copy
import io
import threading
import time

import numpy as np

from .. import losses, metrics, optim
from ..errors import NonFiniteError
from ..layers import Dense, Dropout, Identity, ReLU, Sigmoid, Tanh
from ..model import Sequential
from . import datasets
from .features import FEATURES, featurize
from .settings import DATA_KEYS, DEFAULTS, NETWORK_KEYS, OPTIMIZER_KEYS, SettingsError, validate

#: The heatmap grid: GRID x GRID points over [-RADIUS, RADIUS]², row 0 at x2 = +RADIUS (the top).
GRID = 100
#: Thumbnails keep every THUMB_STEP-th grid point in each direction (50x50).
THUMB_STEP = 2
#: Most points a session keeps (generated or added by hand).
MAX_POINTS = 5000
MAX_CLASSES = 6

ACTIVATION_LAYERS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "linear": Identity}
OPTIMIZER_CLASSES = {
    "sgd": optim.SGD,
    "momentum": optim.Momentum,
    "adagrad": optim.AdaGrad,
    "rmsprop": optim.RMSProp,
    "adam": optim.Adam,
}


def grid_points(size: int = GRID, radius: float = datasets.RADIUS) -> np.ndarray:
    """(size*size, 2) float32 points, row-major with x1 left to right, x2 top (+radius) to bottom."""
    axis = np.linspace(-radius, radius, size, dtype=np.float32)
    x1, x2 = np.meshgrid(axis, axis[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


def quantize(values: np.ndarray) -> str:
    """Values in [-1, 1] (clipped; NaN as 0) as base64 of uint8 round((v + 1) * 127.5)."""
    scaled = np.rint((np.clip(np.nan_to_num(values), -1, 1) + 1) * 127.5).astype(np.uint8)
    return base64.b64encode(scaled.tobytes()).decode("ascii")


class Session:
    """The playground's state. ``settings`` is a dict of :data:`~.settings.DEFAULTS`' keys."""

    def __init__(self, settings: dict | None = None):
        self.lock = threading.RLock()
        self.settings = copy.deepcopy(DEFAULTS)
        self.settings.update(validate(settings or {}))
        self.custom = None  # (x, y) of the user's own points when dataset == "custom"
        self.rates = {}  # backend -> training steps per second, smoothed
        self._grid = grid_points()
        self._thumb_index = self._grid_subsample()
        grid = self._grid[self._thumb_index]
        self._feature_thumbs = {}  # every feature (the page shows the unused ones dimmed), scaled to [-1, 1]
        for name, feature in FEATURES.items():
            values = feature(grid[:, 0], grid[:, 1])
            self._feature_thumbs[f"input:{name}"] = quantize(values / max(float(np.abs(values).max()), 1e-6))
        self._new_data()

    # -- building ----------------------------------------------------------------------------

    @property
    def problem(self) -> str:
        """The problem: "classification" or "regression" (own points: by their labels)."""
        if self.settings["dataset"] == "custom":
            return "regression" if self.custom[1].dtype.kind == "f" else "classification"
        return datasets.problem_of(self.settings["dataset"])

    @property
    def num_classes(self) -> int:
        """Classes the network tells apart (0 for regression)."""
        if self.problem == "regression":
            return 0
        if self.settings["dataset"] == "custom":
            return max(2, int(self.custom[1].max()) + 1) if len(self.custom[1]) else 2
        return self.settings["classes"] if self.settings["dataset"] == "blobs" else 2

    def _new_data(self) -> None:
        s = self.settings
        if s["dataset"] == "custom":
            if self.custom is None:
                self.custom = (np.zeros((0, 2), np.float32), np.zeros(0, np.int64))
            x, y = self.custom
            order = np.random.default_rng(s["seed"]).permutation(len(x))
            x, y = x[order], y[order]
        else:
            x, y = datasets.generate(
                s["dataset"], s["num_samples"], s["noise"] / 100, seed=s["seed"], classes=s["classes"]
            )
        if len(x) >= 2:
            self.train, self.test = datasets.split(x, y, s["train_ratio"] / 100)
        else:
            self.train, self.test = (x, y), (x[:0], y[:0])
        self._new_network()

    def _new_network(self) -> None:
        s = self.settings
        out = self.num_classes if self.num_classes > 2 else 1
        sizes = [len(s["features"])] + list(s["layers"]) + [out]
        init = "he" if s["activation"] == "relu" else "xavier"
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(Dense(sizes[i], sizes[i + 1], init=init))
            if i < len(sizes) - 2:
                layers.append(ACTIVATION_LAYERS[s["activation"]]())
                if s["dropout"] > 0:
                    layers.append(Dropout(s["dropout"]))
        if self.problem == "regression":
            loss = losses.MeanSquaredError()
        elif out == 1:
            loss = losses.SigmoidCrossEntropy()
        else:
            loss = losses.SoftmaxCrossEntropy()
        self.model = Sequential(
            layers, loss=loss, backend=s["backend"], seed=s["seed"], input_shape=(sizes[0],)
        )
        self._new_optimizer()
        self.epoch = 0
        self.history = []  # (epoch, train loss, test loss)
        self.stopped = None  # why training stopped on its own (epoch limit, stop loss), or None
        self._shuffle = np.random.default_rng(s["seed"] + 1)
        self._inputs = {}
        self._stats = None  # the last losses(), until the network changes

    def _new_optimizer(self) -> None:
        s = self.settings
        decay = s["reg_rate"] if s["regularization"] == "l2" else 0.0
        l1 = s["reg_rate"] if s["regularization"] == "l1" else 0.0
        self.optimizer = OPTIMIZER_CLASSES[s["optimizer"]](lr=s["lr"], weight_decay=decay, l1=l1)

    def _grid_subsample(self) -> np.ndarray:
        rows = np.arange(0, GRID, THUMB_STEP)
        return (rows[:, None] * GRID + rows[None, :]).ravel()

    def _features(self, which: str) -> np.ndarray:
        """The featurized train / test / grid points, cached until the network changes."""
        if which not in self._inputs:
            points = {"train": self.train[0], "test": self.test[0], "grid": self._grid}[which]
            self._inputs[which] = featurize(points, self.settings["features"])
        return self._inputs[which]

    def _targets(self, labels: np.ndarray) -> np.ndarray:
        if self.problem == "regression":
            return labels.reshape(-1, 1).astype(np.float32)
        return labels

    # -- changes from the page ---------------------------------------------------------------

    def update(self, changes) -> dict:
        """Apply checked settings; rebuild only what they touch. Returns the settings."""
        checked = validate(changes)
        with self.lock:
            if checked.get("dataset") == "custom" and self.custom is None:
                self.custom = (np.zeros((0, 2), np.float32), np.zeros(0, np.int64))
            old = copy.deepcopy(self.settings)
            self.settings.update(checked)
            changed = {k for k in checked if checked[k] != old[k]}
            if changed & set(DATA_KEYS):
                self._new_data()
            elif changed & set(NETWORK_KEYS):
                self._new_network()
            else:
                if changed & set(OPTIMIZER_KEYS):
                    self._keep_state_in_new_optimizer(old)
                if "backend" in changed:
                    self._switch_backend(self.settings["backend"])
            if self.settings["max_epochs"] and self.epoch < self.settings["max_epochs"]:
                self.stopped = None
            return copy.deepcopy(self.settings)

    def _keep_state_in_new_optimizer(self, old: dict) -> None:
        previous = self.optimizer
        self._new_optimizer()
        if old["optimizer"] == self.settings["optimizer"]:  # same method, new rate: keep its state
            self.optimizer.iterations = previous.iterations
            self.optimizer.state = previous.state

    def _switch_backend(self, backend: str) -> None:
        """The same network, weights and optimizer state on the other backend's ops."""
        config = {**self.model.get_config(), "backend": backend}
        model = Sequential.from_config(config)
        model.flat_params[...] = self.model.flat_params
        for new, old in zip(model.layers, self.model.layers):
            if isinstance(old, Dropout):
                new.rng = old.rng
        self.model = model
        self._stats = None

    def regenerate(self) -> None:
        """New points from the next seed (the original's "regenerate" button)."""
        with self.lock:
            self.settings["seed"] = (self.settings["seed"] + 1) % 2**31
            self._new_data()

    def reset(self) -> None:
        """A freshly initialised network on the same points (epoch 0)."""
        with self.lock:
            self._new_network()

    def add_points(self, points, replace: bool = False) -> int:
        """Add (x1, x2, label) rows as the user's own data set (dataset becomes "custom").

        Labels are classes 0-5 when they are all integers, else regression targets in
        [-1, 1]. Returns the number of points the session now has.
        """
        x, y = _check_points(points)
        with self.lock:
            if self.settings["dataset"] != "custom" or self.custom is None or replace:
                base = (np.zeros((0, 2), np.float32), y[:0])
                if self.settings["dataset"] != "custom" and not replace:
                    base = (
                        np.concatenate([self.train[0], self.test[0]]),
                        np.concatenate([self.train[1], self.test[1]]),
                    )
            else:
                base = self.custom
            if base[1].dtype.kind != y.dtype.kind and len(base[1]):
                raise SettingsError("points", "labels must be all classes (0-5) or all regression targets")
            if len(base[0]) + len(x) > MAX_POINTS:
                raise SettingsError(
                    "points", f"at most {MAX_POINTS} points in all, got {len(base[0]) + len(x)}"
                )
            self.custom = (np.concatenate([base[0], x]), np.concatenate([base[1].astype(y.dtype), y]))
            self.settings["dataset"] = "custom"
            self._new_data()
            return len(self.custom[0])

    def set_weight(self, layer: int, source: int | None, target: int, value: float) -> None:
        """Set Dense layer ``layer``'s weight W[source, target] (or its bias b[target] when
        ``source`` is None) to ``value``. Layers count the Dense layers from 0."""
        with self.lock:
            dense = [lay for lay in self.model.layers if isinstance(lay, Dense)]
            if not 0 <= layer < len(dense):
                raise SettingsError("layer", f"expected an integer from 0 to {len(dense) - 1}, got {layer}")
            W, b = dense[layer].params["W"], dense[layer].params["b"]
            if not 0 <= target < W.shape[1]:
                raise SettingsError("to", f"expected an integer from 0 to {W.shape[1] - 1}, got {target}")
            if source is not None and not 0 <= source < W.shape[0]:
                raise SettingsError("from", f"expected an integer from 0 to {W.shape[0] - 1}, got {source}")
            if source is None:
                b[target] = value
            else:
                W[source, target] = value
            self._stats = None

    # -- training ----------------------------------------------------------------------------

    def train_epoch(self) -> dict:
        """One pass over the training points in shuffled mini-batches; returns the losses."""
        with self.lock:
            x, t = self._features("train"), self._targets(self.train[1])
            batch = self.settings["batch_size"]
            if len(x):
                order = self._shuffle.permutation(len(x))
                start = time.perf_counter()
                steps = 0
                try:
                    for i in range(0, len(x), batch):
                        idx = order[i : i + batch]
                        self.model.train_step(x[idx], t[idx], self.optimizer)
                        steps += 1
                except NonFiniteError as error:  # the weights are those before the bad step
                    self.stopped = f"training diverged ({error}); lower the learning rate and reset"
                    return self.losses()
                rate = steps / max(time.perf_counter() - start, 1e-9)
                backend = self.settings["backend"]
                previous = self.rates.get(backend)
                self.rates[backend] = rate if previous is None else 0.8 * previous + 0.2 * rate
            self.epoch += 1
            stats = self._stats = self.losses()
            self.history.append((self.epoch, stats["train_loss"], stats["test_loss"]))
            del self.history[:-2000]
            s = self.settings
            if s["max_epochs"] and self.epoch >= s["max_epochs"]:
                self.stopped = f"epoch limit {s['max_epochs']} reached"
            elif s["stop_loss"] and stats["test_loss"] is not None and stats["test_loss"] <= s["stop_loss"]:
                self.stopped = f"test loss {stats['test_loss']:.4f} <= stop loss {s['stop_loss']:g}"
            return stats

    def _loss(self, which: str):
        x, labels = self.train if which == "train" else self.test
        if not len(x):
            return None, None
        loss = float(self.model.loss(self._features(which), self._targets(labels), train=False))
        return loss, self.model.last_output

    def losses(self) -> dict:
        """Train and test loss (and accuracy and the test confusion matrix for classes)."""
        with self.lock:
            train_loss, train_out = self._loss("train")
            test_loss, test_out = self._loss("test")
            stats = {"train_loss": _finite(train_loss), "test_loss": _finite(test_loss)}
            if self.problem == "classification":
                k = self.num_classes
                for name, out, labels in (
                    ("train", train_out, self.train[1]),
                    ("test", test_out, self.test[1]),
                ):
                    if out is None:
                        stats[f"{name}_accuracy"] = None
                        continue
                    predicted = self.model.loss_fn.classes(out)
                    stats[f"{name}_accuracy"] = float(np.mean(predicted == labels))
                    if name == "test":
                        stats["confusion"] = metrics.confusion_matrix(
                            predicted, labels, num_classes=k
                        ).tolist()
            return stats

    # -- pictures ----------------------------------------------------------------------------

    def maps(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The output on the grid (GRID*GRID,) in [-1, 1] (binary: 2p - 1; regression: the output;
        K classes: (GRID*GRID, K) probabilities), and every hidden neuron's output on the grid,
        one (GRID*GRID, h) array per hidden layer, from the network's own layers (inference)."""
        with self.lock:
            x = self._features("grid")
            hidden = []
            dense_seen = 0
            n_dense = sum(isinstance(layer, Dense) for layer in self.model.layers)
            for layer in self.model.layers:
                x = layer.forward(x, train=False)
                if isinstance(layer, Dense):
                    dense_seen += 1
                elif dense_seen < n_dense and not isinstance(layer, Dropout):
                    hidden.append(x)
            if self.problem == "regression":
                output = x[:, 0]
            elif x.shape[1] == 1:
                output = 2 * self.model.loss_fn.probabilities(x)[:, 0] - 1
            else:
                output = self.model.loss_fn.probabilities(x)
            return output, hidden

    def frame(self) -> dict:
        """Everything the page draws after an epoch: a JSON-ready dict.

        ``heatmap`` is base64 of GRID*GRID bytes (:func:`quantize`); for K > 2 classes
        ``heatmap_class`` holds each pixel's class and ``heatmap`` its probability mapped
        to [-1, 1]. ``thumbs`` maps "input:NAME", "hidden:L:J" and "output" to 50x50
        quantized maps. ``weights`` lists each Dense layer's {"W", "b"}.
        """
        with self.lock:
            output, hidden = self.maps()
            thumbs = dict(self._feature_thumbs)
            for i, values in enumerate(hidden):
                for j in range(values.shape[1]):
                    thumbs[f"hidden:{i}:{j}"] = quantize(values[self._thumb_index, j])
            frame = {"epoch": self.epoch, "problem": self.problem, "classes": self.num_classes}
            if output.ndim == 2:
                frame["heatmap_class"] = base64.b64encode(
                    output.argmax(axis=1).astype(np.uint8).tobytes()
                ).decode()
                frame["heatmap"] = quantize(2 * output.max(axis=1) - 1)
                thumbs["output"] = quantize(2 * output.max(axis=1)[self._thumb_index] - 1)
            else:
                frame["heatmap"] = quantize(output)
                thumbs["output"] = quantize(output[self._thumb_index])
            frame["thumbs"] = thumbs
            frame["weights"] = [
                {"W": np.round(layer.params["W"], 4).tolist(), "b": np.round(layer.params["b"], 4).tolist()}
                for layer in self.model.layers
                if isinstance(layer, Dense)
            ]
            frame.update(self.status())
            return frame

    def status(self) -> dict:
        """The small part of a frame: epoch, losses, rates, settings."""
        with self.lock:
            if self._stats is None:
                self._stats = self.losses()
            return {
                "epoch": self.epoch,
                **self._stats,
                "steps_per_second": {k: round(v, 1) for k, v in self.rates.items()},
                "backend": self.settings["backend"],
                "stopped": self.stopped,
                "settings": copy.deepcopy(self.settings),
                "num_train": len(self.train[0]),
                "num_test": len(self.test[0]),
            }

    def points(self) -> dict:
        """The train and test points and labels, for the page to draw."""
        with self.lock:
            as_list = lambda a: np.round(a, 3).tolist()  # noqa: E731
            return {
                "problem": self.problem,
                "classes": self.num_classes,
                "train": {"x": as_list(self.train[0]), "y": as_list(self.train[1])},
                "test": {"x": as_list(self.test[0]), "y": as_list(self.test[1])},
            }

    # -- export ------------------------------------------------------------------------------

    def export_npz(self) -> bytes:
        """The trained network as a fastnn .npz file (``fnn.load`` reads it)."""
        import os
        import tempfile

        with self.lock:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "playground.npz")
                self.model.save(path)
                with open(path, "rb") as file:
                    return file.read()

    def export_script(self) -> str:
        """A short Python script that rebuilds these points and this network and trains it."""
        with self.lock:
            return _script(self)


def _finite(value):
    return value if value is None or np.isfinite(value) else None


def _check_points(points):
    if not isinstance(points, list) or not points:
        raise SettingsError("points", "expected a non-empty list of [x1, x2, label] rows")
    if len(points) > MAX_POINTS:
        raise SettingsError("points", f"at most {MAX_POINTS} points, got {len(points)}")
    try:
        array = np.array(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise SettingsError("points", f"expected rows of three numbers [x1, x2, label]: {error}") from None
    if array.ndim != 2 or array.shape[1] != 3:
        raise SettingsError(
            "points", f"expected rows of three numbers [x1, x2, label], got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise SettingsError("points", "every value must be a finite number")
    r = datasets.RADIUS
    outside = np.flatnonzero(np.abs(array[:, :2]).max(axis=1) > r)
    if len(outside):
        row = outside[0]
        raise SettingsError(
            "points", f"x1 and x2 must lie in [-{r:g}, {r:g}]; row {row + 1} is {points[row]}"
        )
    labels = array[:, 2]
    if np.all(labels == np.round(labels)):
        if labels.min() < 0 or labels.max() >= MAX_CLASSES:
            raise SettingsError("points", f"class labels must be integers from 0 to {MAX_CLASSES - 1}")
        return array[:, :2].astype(np.float32), labels.astype(np.int64)
    if np.abs(labels).max() > 1:
        raise SettingsError("points", "regression labels must lie in [-1, 1]")
    return array[:, :2].astype(np.float32), labels.astype(np.float32)


def _script(session: Session) -> str:
    s = session.settings
    lines = [
        '"""Rebuild and train the network of a fastnn playground session (written by fastnn playground)."""',
        "",
        "import numpy as np",
        "",
        "import fastnn as fnn",
        "from fastnn.playground.datasets import generate, split",
        "from fastnn.playground.features import featurize",
        "",
    ]
    if s["dataset"] == "custom":
        x = np.concatenate([session.train[0], session.test[0]])
        y = np.concatenate([session.train[1], session.test[1]])
        buffer = io.StringIO()
        np.savetxt(buffer, np.column_stack([x, y]), fmt="%.4f", delimiter=", ", newline="],\n    [")
        rows = buffer.getvalue().rsplit(",\n    [", 1)[0]
        dtype = "np.float32" if y.dtype.kind == "f" else "np.int64"
        lines += [
            f"points = np.array([\n    [{rows}\n])",
            f"x, y = points[:, :2].astype(np.float32), points[:, 2].astype({dtype})",
        ]
    else:
        lines.append(
            f"x, y = generate({s['dataset']!r}, num_samples={s['num_samples']}, noise={s['noise'] / 100}, "
            f"seed={s['seed']}, classes={s['classes']})"
        )
    lines += [
        f"(x_train, y_train), (x_test, y_test) = split(x, y, {s['train_ratio'] / 100})",
        f"features = {s['features']!r}",
        "x_train, x_test = featurize(x_train, features), featurize(x_test, features)",
    ]
    if session.problem == "regression":
        lines.append("y_train, y_test = y_train.reshape(-1, 1), y_test.reshape(-1, 1)")
    layers = []
    for layer in session.model.layers:
        if isinstance(layer, Dense):
            init = "he" if s["activation"] == "relu" else "xavier"
            layers.append(f"fnn.Dense({layer.in_features}, {layer.out_features}, init={init!r})")
        elif isinstance(layer, Dropout):
            layers.append(f"fnn.Dropout({layer.p})")
        else:
            layers.append(f"fnn.{type(layer).__name__}()")
    decay = s["reg_rate"] if s["regularization"] == "l2" else 0.0
    l1 = s["reg_rate"] if s["regularization"] == "l1" else 0.0
    name = type(session.optimizer).__name__
    lines += [
        "model = fnn.Sequential(",
        "    [" + ",\n     ".join(layers) + "],",
        f"    loss=fnn.{type(session.model.loss_fn).__name__}(),",
        f"    seed={s['seed']},",
        ")",
        f"optimizer = fnn.optim.{name}(lr={s['lr']}, weight_decay={decay}, l1={l1})",
        f"model.fit(x_train, y_train, epochs={max(session.epoch, 1)}, batch_size={s['batch_size']}, "
        f"optimizer=optimizer, seed={s['seed']}, verbose=0)",
        "print(model.evaluate(x_test, y_test))",
        'model.save("playground.npz")',
        "",
    ]
    return "\n".join(lines)
