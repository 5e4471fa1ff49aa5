"""EarlyStopping: stop when a metric stops improving, and go back to the best epoch's weights."""

from __future__ import annotations

import numbers

import numpy as np

from .._checks import check_count
from .base import Callback
from .monitor import check_monitor, check_monitor_type

__all__ = ["EarlyStopping"]


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without an improvement of ``monitor`` larger than ``min_delta``.

    Args:
        patience: epochs without improvement before training stops.
        monitor: a metric of ``fit``'s history; default "val_loss" when fit has
            validation data, else "loss". Larger is better for accuracies ("accuracy"
            in the name), smaller for everything else.
        min_delta: the smallest change that counts as an improvement.
        restore_best_weights: when training ends (and was neither stopped by a NaN nor
            interrupted), put back the parameters and layer buffers of the best epoch.

    ``fit(patience=..., monitor=..., min_delta=..., restore_best_weights=...)`` builds one.
    It records the best epoch in ``history.best_epoch``. Its state (the best value, the
    epochs waited and the best weights) goes into checkpoints.
    """

    def __init__(
        self,
        patience: int,
        monitor: str | None = None,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ):
        self.patience = check_count("EarlyStopping", "patience", patience, 1)
        if not isinstance(min_delta, numbers.Real) or isinstance(min_delta, bool) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        if monitor is not None:
            check_monitor_type("EarlyStopping", monitor)
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self._reset(monitor or "loss")

    def _reset(self, monitor: str) -> None:
        self.watched = monitor
        self.maximise = "accuracy" in monitor
        self.best = -np.inf if self.maximise else np.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def _monitor(self, loop) -> str:
        return self.monitor or ("val_loss" if loop.validation is not None else "loss")

    def check(self, loop):
        """``monitor`` must be a metric the loop records (see :func:`~.monitor.check_monitor`)."""
        check_monitor("EarlyStopping", self._monitor(loop), loop)

    def on_train_begin(self, model, optimizer):
        self._reset(self._monitor(self.loop))

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.maximise:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        if self.loop.stop_training:  # another callback already ends training here
            return None
        if self.improved(metrics[self.watched]):
            self.best, self.best_epoch, self.wait = metrics[self.watched], epoch, 0
            self._take_best_weights(model)
        else:
            self.wait += 1
        self.loop.history.best_epoch = self.best_epoch
        if self.wait < self.patience:
            return None
        self.stop_reason = (
            f"early stopping: {self.watched} did not improve for {self.patience} epochs "
            f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
        )
        return True

    def on_train_end(self, model, optimizer):
        loop = self.loop
        if (
            self.restore_best_weights
            and self.best_weights is not None
            and loop.error is None
            and not loop.interrupted
        ):
            np.copyto(model.flat_params, self.best_weights["params"])
            for index, layer in enumerate(model.layers):
                for name, array in layer.buffers.items():
                    key = f"buffers/{index}/{name}"
                    if key in self.best_weights:
                        np.copyto(array, self.best_weights[key])

    def _take_best_weights(self, model) -> None:
        self.best_weights = {"params": model.flat_params.copy()}
        for index, layer in enumerate(model.layers):
            for name, array in layer.buffers.items():
                self.best_weights[f"buffers/{index}/{name}"] = array.copy()

    def state_dict(self) -> dict:
        """The monitored metric, best value and epoch, epochs waited, and the best weights
        (arrays, by name; None before the first epoch)."""
        return {
            "monitor": self.watched,
            "best": float(self.best),
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the best value, its epoch, the wait and the best weights from ``state_dict()``."""
        self.best, self.best_epoch, self.wait = float(state["best"]), state["best_epoch"], int(state["wait"])
        self.best_weights = state.get("best_weights")
