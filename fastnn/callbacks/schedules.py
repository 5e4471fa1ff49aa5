"""Learning-rate schedules, as callbacks for ``fit(..., callbacks=[...])``.

Epoch-based schedules set ``optimizer.lr`` before each epoch from the rate the
optimizer had when training began (``lr0``); ``history["lr"]`` records the rate of
every epoch.

    model.fit(x, t, epochs=30, optimizer=fnn.optim.SGD(0.1),
              callbacks=[fnn.schedules.StepDecay(step_size=10, gamma=0.1)])

===============================  ===================================================
``StepDecay(step_size, gamma)``  lr0 * gamma ** (epoch // step_size)
``ExponentialDecay(gamma)``      lr0 * gamma ** epoch
``CosineDecay(epochs, min_lr)``  min_lr + (lr0 - min_lr) * (1 + cos(pi * epoch / epochs)) / 2
``LambdaSchedule(fn)``           fn(epoch, lr0)
``ReduceLROnPlateau(...)``       Nielsen: halve after ``patience`` epochs without
                                 improvement; stop at 1/128 of lr0
===============================  ===================================================
"""

from __future__ import annotations

import math
import numbers

from .base import Callback
from .monitor import check_monitor, check_monitor_type

__all__ = ["Schedule", "StepDecay", "ExponentialDecay", "CosineDecay", "LambdaSchedule", "ReduceLROnPlateau"]


def _positive(where: str, name: str, value, integer=False, upper=None):
    kinds = (int,) if integer else (numbers.Real,)
    ok = (
        isinstance(value, kinds)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
        and (upper is None or value <= upper)
    )
    if not ok:
        what = "a positive integer" if integer else "a positive number"
        if upper is not None:
            what += f" <= {upper}"
        raise ValueError(f"{where}: {name} must be {what}, got {value!r}")
    return int(value) if integer else float(value)


class Schedule(Callback):
    """Base class: ``lr(epoch, lr0)`` gives the rate of epoch ``epoch`` (0-based)."""

    def __init__(self):
        self.lr0: float | None = None

    def lr(self, epoch: int, lr0: float) -> float:
        """The learning rate for ``epoch`` (0-based), given the initial rate ``lr0``."""
        raise NotImplementedError

    def on_train_begin(self, model, optimizer):
        self.lr0 = optimizer.lr

    def on_epoch_begin(self, epoch, model, optimizer):
        if self.lr0 is None:
            self.lr0 = optimizer.lr
        optimizer.lr = float(self.lr(epoch, self.lr0))

    def state_dict(self) -> dict:
        """JSON state for fit's checkpoints: the starting rate."""
        return {"lr0": self.lr0}

    def load_state_dict(self, state: dict) -> None:
        """Restore the initial learning rate from ``state_dict()``."""
        self.lr0 = None if state["lr0"] is None else float(state["lr0"])

    def rates(self, epochs: int, lr0: float) -> list[float]:
        """The rates of the first ``epochs`` epochs for a start of ``lr0``."""
        return [float(self.lr(epoch, lr0)) for epoch in range(epochs)]

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "lr0")
        return f"{type(self).__name__}({args})"


class StepDecay(Schedule):
    """lr = lr0 * gamma ** (epoch // step_size): multiply by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        super().__init__()
        self.step_size = _positive("StepDecay", "step_size", step_size, integer=True)
        self.gamma = _positive("StepDecay", "gamma", gamma, upper=1.0)

    def lr(self, epoch, lr0):
        """lr0 * gamma ** (epoch // step_size)."""
        return lr0 * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    """lr = lr0 * gamma ** epoch."""

    def __init__(self, gamma: float = 0.95):
        super().__init__()
        self.gamma = _positive("ExponentialDecay", "gamma", gamma, upper=1.0)

    def lr(self, epoch, lr0):
        """lr0 * gamma ** epoch."""
        return lr0 * self.gamma**epoch


class CosineDecay(Schedule):
    """lr = min_lr + (lr0 - min_lr) * (1 + cos(pi * epoch / epochs)) / 2 (PyTorch's
    CosineAnnealingLR with T_max = ``epochs``); after ``epochs`` epochs it stays at min_lr."""

    def __init__(self, epochs: int, min_lr: float = 0.0):
        super().__init__()
        self.epochs = _positive("CosineDecay", "epochs", epochs, integer=True)
        if not isinstance(min_lr, numbers.Real) or isinstance(min_lr, bool) or not min_lr >= 0:
            raise ValueError(f"CosineDecay: min_lr must be a number >= 0, got {min_lr!r}")
        self.min_lr = float(min_lr)

    def lr(self, epoch, lr0):
        """min_lr + (lr0 - min_lr) * (1 + cos(pi * min(epoch, epochs) / epochs)) / 2."""
        progress = min(epoch, self.epochs) / self.epochs
        return self.min_lr + (lr0 - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


class LambdaSchedule(Schedule):
    """lr = fn(epoch, lr0) for any function ``fn``."""

    def __init__(self, fn):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"LambdaSchedule: fn must be callable, got {fn!r}")
        self.fn = fn

    def lr(self, epoch, lr0):
        """fn(epoch, lr0)."""
        return self.fn(epoch, lr0)


class ReduceLROnPlateau(Callback):
    """Nielsen's schedule: when ``monitor`` has not improved for ``patience`` epochs,
    multiply the rate by ``factor`` (halve it); stop training once the rate has fallen to
    ``min_fraction`` (1/128) of the starting rate.

    "Improved" means better than the best value so far by more than ``min_delta``
    (larger for accuracies, smaller for losses). After a reduction the count starts
    again. With the defaults, the 7th halving reaches lr0/128 and ends training
    (``history.stop_reason`` says so); ``stop=False`` keeps training at that rate.
    ``monitor`` defaults to "val_accuracy" (Nielsen's choice; needs validation data).
    """

    def __init__(
        self,
        patience: int = 10,
        factor: float = 0.5,
        monitor: str = "val_accuracy",
        min_fraction: float = 1 / 128,
        min_delta: float = 0.0,
        stop: bool = True,
    ):
        self.patience = _positive("ReduceLROnPlateau", "patience", patience, integer=True)
        self.factor = _positive("ReduceLROnPlateau", "factor", factor)
        if self.factor >= 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.min_fraction = _positive("ReduceLROnPlateau", "min_fraction", min_fraction, upper=1.0)
        if not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise ValueError(f"ReduceLROnPlateau: min_delta must be >= 0, got {min_delta!r}")
        self.min_delta = float(min_delta)
        check_monitor_type("ReduceLROnPlateau", monitor)
        self.monitor = monitor
        self.stop = bool(stop)
        self.maximise = "acc" in self.monitor
        self.lr0: float | None = None
        self.best: float | None = None
        self.wait = 0
        self.reductions: list[int] = []  # epochs (0-based) after which the rate was cut
        self.stop_reason = None

    def __repr__(self):
        return (
            f"ReduceLROnPlateau(patience={self.patience}, factor={self.factor}, "
            f"monitor={self.monitor!r}, min_fraction={self.min_fraction})"
        )

    def check(self, loop):
        """``monitor`` must be a metric the loop records (see :func:`~.monitor.check_monitor`)."""
        check_monitor("ReduceLROnPlateau", self.monitor, loop)

    def on_train_begin(self, model, optimizer):
        self.lr0 = optimizer.lr
        self.best, self.wait, self.reductions, self.stop_reason = None, 0, [], None

    def state_dict(self) -> dict:
        """JSON state for fit's checkpoints."""
        return {"lr0": self.lr0, "best": self.best, "wait": self.wait, "reductions": list(self.reductions)}

    def load_state_dict(self, state: dict) -> None:
        """Restore the initial rate, the best value, the wait and the reductions from ``state_dict()``."""
        self.lr0 = None if state["lr0"] is None else float(state["lr0"])
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.reductions = [int(e) for e in state["reductions"]]

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.maximise:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        if self.monitor not in metrics:
            raise ValueError(
                f"ReduceLROnPlateau: monitor {self.monitor!r} is not among the "
                f"metrics {sorted(metrics)}; pass validation data or another monitor"
            )
        if self.lr0 is None:
            self.lr0 = optimizer.lr
        value = float(metrics[self.monitor])
        if self._improved(value):
            self.best, self.wait = value, 0
            return None
        self.wait += 1
        if self.wait < self.patience:
            return None
        self.wait = 0
        optimizer.lr = optimizer.lr * self.factor
        self.reductions.append(epoch)
        floor = self.lr0 * self.min_fraction
        if self.stop and optimizer.lr <= floor * (1 + 1e-9):
            inverse = 1 / self.min_fraction
            fraction = (
                f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{self.min_fraction:.3g}"
            )
            self.stop_reason = (
                f"ReduceLROnPlateau: learning rate {optimizer.lr:.3g} reached {fraction} of its "
                f"start {self.lr0:.3g} ({len(self.reductions)} reductions as {self.monitor} "
                "stopped improving); training ends"
            )
            return True
        return None
