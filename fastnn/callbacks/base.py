"""The callback protocol: hooks that ``fit`` calls around training, epochs and batches."""

from __future__ import annotations

__all__ = ["Callback", "CallbackList", "callback_names"]


class Callback:
    """Base class: every hook does nothing.

    ``fit`` calls, in this order::

        on_train_begin(model, optimizer)
          on_epoch_begin(epoch, model, optimizer)            # epoch counts from 0
            on_train_batch_begin(batch, model, optimizer)    # batch counts from 0 in the epoch
            on_train_batch_end(batch, logs, model, optimizer)   # logs = {"loss": ...}
          on_epoch_end(epoch, metrics, model, optimizer)    # "loss", "accuracy", "val_loss", ...
        on_train_end(model, optimizer)                       # however training ended

    Before any of them, ``check(loop)`` lets the callback refuse a run it cannot serve (a
    metric fit does not record, a missing validation set): raise a ValueError that names
    the callback, so the mistake shows before the first step instead of after an epoch.

    ``on_train_batch_end`` and ``on_epoch_end`` may return True to stop training after
    that batch or epoch; ``stop_reason`` then says why in the history. A callback with
    ``state_dict()`` and ``load_state_dict(state)`` (JSON data) has its state saved in
    checkpoints and restored on resume.

    During ``fit``, :attr:`loop` is the :class:`fastnn.training.TrainingLoop`: where
    training stands (``epoch``, ``batch``, ``global_step``, ``steps``, ``history``, ...).

    In a data-parallel fit (``fit(..., comm=comm)`` on K > 1 ranks) every rank runs the
    same callbacks on the same reduced metrics, so they decide alike, except those whose
    class sets ``root_only = True``: callbacks that only report (the file loggers, the
    dashboard) run on rank 0 alone, and their hooks and ``check`` are skipped elsewhere.
    Example::

        class StopAtAccuracy(Callback):
            def __init__(self, target):
                self.target = target

            def on_epoch_end(self, epoch, metrics, model, optimizer):
                if metrics["accuracy"] >= self.target:
                    self.stop_reason = f"reached {self.target:.0%} training accuracy"
                    return True
    """

    stop_reason: str | None = None
    loop = None
    #: Run only on rank 0 of a data-parallel fit: set it on a callback that writes files or
    #: prints and changes nothing in training (see :class:`CallbackList`).
    root_only: bool = False

    def set_loop(self, loop) -> None:
        """Called by ``fit`` before ``on_train_begin`` with the loop that runs this callback."""
        self.loop = loop

    def check(self, loop) -> None:
        """Called by ``fit`` before ``on_train_begin`` and before any step: raise an error
        naming the callback if it cannot work with this ``loop`` (``loop.metric_names``,
        ``loop.validation``, ``loop.epochs``, ...)."""

    def on_train_begin(self, model, optimizer) -> None:
        """Before the first epoch (and before a resumed run continues)."""

    def on_epoch_begin(self, epoch: int, model, optimizer) -> None:
        """Before epoch ``epoch`` (0-based); not called for an epoch resumed in its middle."""

    def on_train_batch_begin(self, batch: int, model, optimizer) -> None:
        """Before the optimizer step on batch ``batch`` (0-based within the epoch)."""

    def on_train_batch_end(self, batch: int, logs: dict, model, optimizer) -> bool | None:
        """After the optimizer step on batch ``batch``; ``logs["loss"]`` is its loss."""
        return None

    def on_epoch_end(self, epoch: int, metrics: dict, model, optimizer) -> bool | None:
        """After epoch ``epoch`` with its metrics ("loss", "accuracy", "val_loss", ...)."""
        return None

    def on_train_end(self, model, optimizer) -> None:
        """After the last epoch, however training ended."""


_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_epoch_end",
    "on_train_end",
)


class CallbackList:
    """The callbacks of one ``fit``, called in order; a stop one of them asks for goes to the loop.

    Each hook calls only the callbacks that override it, so a batch costs nothing for
    callbacks that only look at epochs. On a rank other than 0 of a data-parallel loop
    (``loop.parallel``), the ``root_only`` callbacks are left out of the hooks and of
    ``check`` (they stay in :attr:`callbacks`, so checkpoints list the same ones).
    """

    def __init__(self, callbacks, loop):
        self.callbacks = list(callbacks)
        self.loop = loop
        for callback in self.callbacks:
            callback.set_loop(loop)
        parallel = getattr(loop, "parallel", None)
        elsewhere = parallel is not None and not parallel.comm.is_root
        self.running = [c for c in self.callbacks if not (elsewhere and c.root_only)]
        self._hooked = {
            name: [
                callback
                for callback in self.running
                if getattr(type(callback), name) is not getattr(Callback, name)
            ]
            for name in _HOOKS
        }

    def check(self) -> None:
        """Every running callback's ``check(loop)``, in run order: the errors come before any step."""
        for callback in self.running:
            callback.check(self.loop)

    def _stop_if(self, callback, requested) -> None:
        if requested and not self.loop.stop_training:
            self.loop.stop(callback.stop_reason or f"stopped by {type(callback).__name__}")

    def on_train_begin(self, model, optimizer) -> None:
        """Call every callback's ``on_train_begin``."""
        for callback in self._hooked["on_train_begin"]:
            callback.on_train_begin(model, optimizer)

    def on_epoch_begin(self, epoch, model, optimizer) -> None:
        """Call every callback's ``on_epoch_begin``."""
        for callback in self._hooked["on_epoch_begin"]:
            callback.on_epoch_begin(epoch, model, optimizer)

    def on_train_batch_begin(self, batch, model, optimizer) -> None:
        """Call every callback's ``on_train_batch_begin``."""
        for callback in self._hooked["on_train_batch_begin"]:
            callback.on_train_batch_begin(batch, model, optimizer)

    def on_train_batch_end(self, batch, logs, model, optimizer) -> None:
        """Call every callback's ``on_train_batch_end``; one returning True stops training."""
        for callback in self._hooked["on_train_batch_end"]:
            self._stop_if(callback, callback.on_train_batch_end(batch, logs, model, optimizer))

    def on_epoch_end(self, epoch, metrics, model, optimizer) -> None:
        """Call every callback's ``on_epoch_end``; one returning True stops training."""
        for callback in self._hooked["on_epoch_end"]:
            self._stop_if(callback, callback.on_epoch_end(epoch, metrics, model, optimizer))

    def on_train_end(self, model, optimizer) -> None:
        """Call every callback's ``on_train_end``."""
        for callback in self._hooked["on_train_end"]:
            callback.on_train_end(model, optimizer)


def callback_names(callbacks) -> list[str]:
    """The classes of ``callbacks`` as "module.QualName" strings, in order: what the ranks of
    a data-parallel fit compare, and what a checkpoint keeps beside each callback's state."""
    return [f"{type(c).__module__}.{type(c).__qualname__}" for c in callbacks]
