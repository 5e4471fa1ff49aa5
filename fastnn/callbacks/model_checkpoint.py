"""ModelCheckpoint: the whole training state in a folder, written atomically, and exact resume."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np

from .. import _config
from .._checks import check_count
from .._config import get_num_threads
from ..checkpoint import list_checkpoints, load_latest, remove_stale_temporaries, save_checkpoint
from ..errors import ModelFileError
from .base import Callback, callback_names
from .early_stopping import EarlyStopping
from .nonfinite import NonFiniteGuard
from .progress import ProgressLogger

__all__ = ["ModelCheckpoint"]

#: The keys of fit's settings a resumed run must share with the checkpoint.
_SETTINGS = ("n_samples", "batch_size", "shuffle", "data")


def data_fingerprint(x: np.ndarray, t: np.ndarray) -> str:
    """CRC-32 of the training data's dtypes, shapes and bytes: a resumed run must see the same data."""
    crc = 0
    for array in (x, t):
        array = np.ascontiguousarray(array)
        crc = zlib.crc32(f"{array.dtype.str}{array.shape}".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(np.uint8), crc)
    return f"crc32:{crc:08x}"


def _matched(callbacks, states, types):
    """(callback, its saved state) pairs: each callback takes the next saved state of its
    class, in order, so a callback the checkpointed run had and this one lacks (a logger
    given on rank 0 alone, say) shifts nothing. Checkpoints without ``types`` (written
    before fastnn kept them) pair by position."""
    if types is None:
        return list(zip(callbacks, states))
    pairs, start = [], 0
    for callback, name in zip(callbacks, callback_names(callbacks)):
        for i in range(start, len(types)):
            if types[i] == name:
                pairs.append((callback, states[i]))
                start = i + 1
                break
    return pairs


class ModelCheckpoint(Callback):
    """Write checkpoints of the whole training state into ``directory``; resume from them.

    A checkpoint (:mod:`fastnn.checkpoint`) holds the model, the optimizer, the loop's
    counters and shuffling generator, the epoch's sample order, the history, early
    stopping's state and best weights, and the state of every other callback that has
    ``state_dict()``. One is written every ``every`` optimizer steps (mid-epoch too), or
    at the end of every epoch when ``every`` is None, and when training ends, stops or
    is interrupted; the newest ``keep`` files are kept.

    Args:
        directory: the checkpoint folder (created if needed). Without ``resume`` it must
            hold no checkpoint yet.
        every: optimizer steps between checkpoints, or None for every epoch.
        keep: how many of the newest checkpoints to keep.
        resume: continue from the newest checkpoint in ``directory`` (start afresh if
            there is none). Pass the same data, batch_size, shuffle, validation and
            callbacks; ``epochs`` may be larger than before. With the same thread count
            the final weights equal an uninterrupted run's bit for bit.

    ``fit(checkpoint=..., checkpoint_every=..., keep=..., resume=...)`` builds one.
    """

    def __init__(self, directory, every: int | None = None, keep: int = 3, resume: bool = False):
        self.directory = Path(directory)
        self.every = None if every is None else check_count("ModelCheckpoint", "every", every, 1)
        self.keep = check_count("ModelCheckpoint", "keep", keep, 1)
        self.resume = bool(resume)
        self._latest = None
        self._looked = False

    def latest(self):
        """The checkpoint to resume from (None without ``resume`` or when the folder has none).

        Checks the folder first and removes temp files a killed writer left behind; a
        damaged newest file is set aside (see :func:`fastnn.checkpoint.load_latest`).
        """
        if not self._looked:
            if self.directory.exists() and not self.directory.is_dir():
                raise ValueError(
                    f"ModelCheckpoint: checkpoint={str(self.directory)!r} is a file, not a folder"
                )
            remove_stale_temporaries(self.directory)
            existing = list_checkpoints(self.directory)
            if self.resume:
                self._latest = load_latest(self.directory)
            elif existing:
                raise ValueError(
                    f"ModelCheckpoint: {self.directory} already holds checkpoints "
                    f"({existing[-1].name}); pass resume=True to "
                    "continue that run, or give an empty folder"
                )
            self._looked = True
        return self._latest

    def on_train_begin(self, model, optimizer):
        loop = self.loop
        saved = self.latest()
        self._looked = False  # a later fit with this callback looks again
        self.settings = {
            "n_samples": loop.n_samples,
            "batch_size": loop.batch_size,
            "shuffle": loop.shuffle,
            "data": data_fingerprint(loop.x, loop.t),
        }
        loop.resume_hint = f"resume with fit(..., checkpoint={str(self.directory)!r}, resume=True)"
        if saved is None:
            return
        self._restore(saved, model, optimizer)
        if loop.verbose:
            where = (
                f"epoch {loop.epoch + 1}, step {loop.batch}/{loop.steps}"
                if loop.epoch < loop.epochs
                else f"the end of epoch {loop.epoch}"
            )
            print(f"fit: resuming from {saved.path} at {where}", file=loop.out, flush=True)
        loop.history.checkpoint = str(saved.path)

    def on_train_batch_end(self, batch, logs, model, optimizer):
        loop = self.loop
        if loop.batch < loop.steps and (
            loop.interrupt_requested or (self.every and loop.global_step % self.every == 0)
        ):
            self.write(model, optimizer)

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        loop = self.loop
        if (
            self.every is None
            or loop.global_step % self.every == 0
            or loop.stop_training
            or loop.epoch == loop.epochs
            or loop.interrupt_requested
        ):
            self.write(model, optimizer)

    # -------------------------------------------------------------- the file

    def _parts(self):
        """(early stopping, the other stateful callbacks in order): the checkpoint's slots."""
        built_in = (ProgressLogger, NonFiniteGuard, EarlyStopping, ModelCheckpoint)
        callbacks = self.loop.callbacks
        stopper = next((c for c in callbacks if isinstance(c, EarlyStopping)), None)
        return stopper, [c for c in callbacks if not isinstance(c, built_in)]

    def write(self, model, optimizer) -> Path | None:
        """Write one checkpoint of the training state now; returns its path (None on the
        ranks of a data-parallel run other than rank 0, which alone writes)."""
        loop = self.loop
        parallel = getattr(loop, "parallel", None)
        if parallel is not None and not parallel.comm.is_root:
            return None
        stopper, others = self._parts()
        extra = {"order": loop.order} if loop.order is not None else {}
        stopping = None
        if stopper is not None:
            stopping = stopper.state_dict()
            for name, array in (stopping.pop("best_weights") or {}).items():
                extra[f"best/{name}"] = array
        state = {
            "fit": self.settings,
            "loop": loop.state_dict(),
            "history": loop.history.state_dict(),
            "early_stopping": stopping,
            "callbacks": [c.state_dict() if hasattr(c, "state_dict") else None for c in others],
            "callback_types": callback_names(others),
            "backend": model.ops.name,
            "threads": get_num_threads(),
        }
        path = save_checkpoint(
            self.directory, model, optimizer, state=state, extra=extra, step=loop.global_step, keep=self.keep
        )
        loop.history.checkpoint = str(path)
        return path

    def _restore(self, saved, model, optimizer) -> None:
        """Put the training state of checkpoint ``saved`` back, after checking it fits this run."""
        loop = self.loop
        state = saved.state
        stopper, others = self._parts()
        try:
            previous = state["fit"]
            for key in _SETTINGS:
                if previous[key] != self.settings[key]:
                    what = "training data" if key in ("n_samples", "data") else key
                    raise ValueError(
                        f"ModelCheckpoint: cannot resume from {saved.path}: it was made with "
                        f"different {what} "
                        f"({previous[key]!r}, now {self.settings[key]!r}); resume with the same x, t, "
                        "batch_size, shuffle and validation split"
                    )
            saved.restore(model, optimizer)
            loop.load_state_dict(state["loop"], saved.extra.get("order"))
            loop.history.load_state_dict(state["history"])
            best = {k[len("best/") :]: v for k, v in saved.extra.items() if k.startswith("best/")}
            if stopper is not None:
                if state["early_stopping"] is not None:
                    stopper.load_state_dict(state["early_stopping"])
                stopper.best_weights = best or None
            for callback, callback_state in _matched(others, state["callbacks"], state.get("callback_types")):
                if callback_state is not None and hasattr(callback, "load_state_dict"):
                    callback.load_state_dict(callback_state)
        except (KeyError, TypeError) as error:
            raise ModelFileError(
                f"{saved.path}: corrupt training state ({type(error).__name__}: {error})"
            ) from None
        threads = state.get("threads")
        if (
            isinstance(threads, int)
            and threads != get_num_threads()
            and model.ops.name == "numba"
            and _config.FASTMATH
            and _config.PARALLEL
        ):
            warnings.warn(
                f"ModelCheckpoint: resuming with {get_num_threads()} kernel threads, but {saved.path} "
                f"was written "
                f"with {threads}: with fast-math on, the weights may differ from an uninterrupted "
                f"run in the last bits (call fastnn.set_num_threads({threads}) for an exact resume)",
                RuntimeWarning,
                stacklevel=5,
            )
        if loop.batch and (loop.order is None or len(loop.order) != self.settings["n_samples"]):
            raise ModelFileError(f"{saved.path}: the epoch's sample order is missing or malformed")
