"""Callbacks: hooks that ``fit`` calls around epochs (learning-rate schedules and the like).

    class Halve(Callback):
        def on_epoch_end(self, epoch, metrics, model, optimizer):
            optimizer.lr /= 2

A callback's ``on_epoch_end`` may return True to stop training after that epoch;
``stop_reason`` then says why in the history.
"""

from __future__ import annotations


class Callback:
    """Base class: every hook does nothing."""

    stop_reason: str | None = None

    def on_train_begin(self, model, optimizer) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, model, optimizer) -> None:
        """Before epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, metrics: dict, model, optimizer) -> bool | None:
        """After epoch ``epoch`` with its metrics ("loss", "accuracy", "val_loss", ...)."""
        return None

    def on_train_end(self, model, optimizer) -> None:
        """After the last epoch, however training ended."""
