"""CSVLogger and JSONLinesLogger: the history written to a file as training goes.

Both write the same rows:

* one row per epoch into ``path``: ``epoch`` (counted from 1, as the progress line),
  then every metric of the history (``loss``, ``accuracy``, ``val_loss``,
  ``val_accuracy`` with validation data), ``lr`` (the epoch's learning rate) and
  ``time`` (its wall time in seconds);
* with ``per_batch=True``, also one row per batch into a second file beside it, named
  with ``.batches`` before the suffix (``log.csv`` -> ``log.batches.csv``): ``epoch``,
  ``batch`` (counted from 1 within the epoch), ``step`` (optimizer steps of the run so
  far) and ``loss`` (the batch's loss).

A CSV file starts with a header line; a JSON-lines file holds one JSON object per line.
Floats are written exactly (``repr``), so reading a file back gives the history's values.
Every row is flushed as it is written, so a crash keeps the rows before it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .base import Callback

__all__ = ["CSVLogger", "JSONLinesLogger", "BATCH_COLUMNS", "epoch_columns", "epoch_rows", "csv_text"]

#: The columns of a per-batch row.
BATCH_COLUMNS = ("epoch", "batch", "step", "loss")

_METRIC_ORDER = ("loss", "accuracy", "val_loss", "val_accuracy")
_LAST = ("lr", "time")


def epoch_columns(history) -> list:
    """``epoch``, the history's metrics (training, then validation, then any others by
    name), ``lr`` and ``time``: the columns of a per-epoch row."""
    metrics = [key for key in _METRIC_ORDER if key in history]
    others = sorted(key for key in history if key not in _METRIC_ORDER and key not in _LAST)
    return ["epoch", *metrics, *others, *(key for key in _LAST if key in history)]


def epoch_rows(history, start: int = 0) -> list:
    """The history's epochs from ``start`` (0-based) as rows: dicts in column order."""
    columns = epoch_columns(history)[1:]
    return [
        {"epoch": epoch + 1, **{key: _plain(history[key][epoch]) for key in columns}}
        for epoch in range(start, len(history["loss"]))
    ]


def csv_text(rows, columns=None) -> str:
    """CSV text with a header line (``columns``, default the first row's keys) and ``rows``."""
    buffer = io.StringIO()
    columns = list(columns if columns is not None else (rows[0] if rows else ["epoch"]))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(key, "") for key in columns])
    return buffer.getvalue()


def _plain(value):
    """A Python int or float (numpy scalars too), so csv and json write them exactly."""
    if isinstance(value, bool) or value is None:
        return value
    if hasattr(value, "item"):
        value = value.item()
    return value


def _check_path(owner: str, path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{owner}: path must be a file path (str or Path), got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"{owner}: path {str(path)!r} is a folder; give a file name such as {str(path / 'log')!r}"
        )
    return path


class _RowLogger(Callback):
    """Writes epoch rows (and batch rows) to files, flushed row by row; see the module."""

    suffix = ""
    root_only = True  # in a data-parallel fit, rank 0 alone writes the file

    def __init__(self, path, per_batch: bool = False, append: bool = False):
        owner = type(self).__name__
        self.path = _check_path(owner, path)
        for name, value in (("per_batch", per_batch), ("append", append)):
            if not isinstance(value, bool):
                raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
        self.per_batch, self.append = per_batch, append
        self.batch_path = (
            self.path.with_name(f"{self.path.stem}.batches{self.path.suffix}") if per_batch else None
        )
        self._files: dict = {}
        self._sizes = {"epochs": None, "batches": None}  # bytes written, for checkpoints
        self._restored = None

    # ------------------------------------------------------------ the file format

    def header(self, columns) -> bytes:
        """The bytes a new file starts with."""
        return b""

    def format_row(self, columns, row: dict) -> bytes:
        raise NotImplementedError

    def check_existing(self, path: Path, columns) -> None:
        """Refuse to append to ``path`` if it holds rows of another shape."""

    # ------------------------------------------------------------ the hooks

    def check(self, loop):
        folder = self.path.parent
        if not folder.is_dir():
            raise ValueError(
                f"{type(self).__name__}: the folder of {str(self.path)!r} does not exist; create "
                f"{str(folder)!r} first or give another path"
            )

    def on_train_begin(self, model, optimizer):
        self._close()
        self._sizes = {"epochs": None, "batches": None}
        self._restored = None

    def on_train_batch_end(self, batch, logs, model, optimizer):
        if self.per_batch:
            loop = self.loop
            row = {"epoch": loop.epoch + 1, "batch": batch + 1, "step": loop.global_step}
            self._write("batches", list(BATCH_COLUMNS), {**row, "loss": logs["loss"]})

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        history = self.loop.history
        self._write("epochs", epoch_columns(history), epoch_rows(history, history.epochs - 1)[0])

    def on_train_end(self, model, optimizer):
        self._close()

    def state_dict(self) -> dict:
        """The sizes of the files when the checkpoint was written: a resumed run cuts the
        files back to them (dropping rows written after the checkpoint) and appends."""
        restored = self._restored or {}
        sizes = {kind: size if size is not None else restored.get(kind) for kind, size in self._sizes.items()}
        return {"path": str(self.path), **sizes}

    def load_state_dict(self, state: dict) -> None:
        """Continue after the checkpoint's rows; a log at another path than the checkpointed
        run's is not cut back (it is appended to, or started, as ``append`` says)."""
        if state.get("path") == str(self.path):
            self._restored = {kind: state.get(kind) for kind in ("epochs", "batches")}

    # ------------------------------------------------------------ writing

    def _write(self, kind: str, columns, row: dict) -> None:
        handle = self._files.get(kind) or self._open(kind, columns)
        handle.write(self.format_row(columns, {key: _plain(value) for key, value in row.items()}))
        handle.flush()
        self._sizes[kind] = handle.tell()

    def _open(self, kind: str, columns):
        path = self.path if kind == "epochs" else self.batch_path
        size = None if self._restored is None else self._restored.get(kind)
        if self._restored is not None:  # resumed from a checkpoint: continue after its rows
            if size is not None and path.exists() and path.stat().st_size > size:
                os.truncate(path, size)
            fresh = size is None or not path.exists() or path.stat().st_size == 0
        elif self.append and path.exists() and path.stat().st_size > 0:
            self.check_existing(path, columns)
            fresh = False
        else:
            fresh = True
        handle = open(path, "wb" if fresh and size is None else "ab")
        if fresh:
            handle.write(self.header(columns))
        self._files[kind] = handle
        return handle

    def _close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}


class CSVLogger(_RowLogger):
    """Write the history to a CSV file, one row per epoch (and per batch), as training goes.

    Args:
        path: the CSV file. Its header is ``epoch,loss,accuracy,[val_loss,val_accuracy,]lr,time``.
        per_batch: also write ``epoch,batch,step,loss`` rows into ``<stem>.batches.csv``
            beside it.
        append: add to an existing file (its header must match; none is written again)
            instead of starting it afresh.

    A run resumed from a checkpoint (``fit(..., resume=True)``) continues the files where
    the checkpoint left them, without a second header or a repeated row. Rows are
    flushed as they are written. ``History.to_csv()`` gives the same per-epoch text.
    """

    def header(self, columns) -> bytes:
        return csv_text([], columns).encode("utf-8")

    def format_row(self, columns, row):
        """One epoch's row as a CSV line (bytes), values in the order of ``columns``."""
        return csv_text([row], columns).split("\n", 1)[1].encode("utf-8")

    def check_existing(self, path, columns):
        with open(path, encoding="utf-8", newline="") as handle:
            first = handle.readline().rstrip("\r\n")
        expected = ",".join(columns)
        if first != expected:
            raise ValueError(
                f"CSVLogger: cannot append to {str(path)!r}: its header is {first!r} but this run "
                f"writes {expected!r}; give another path, or append=False to start the file afresh"
            )


class JSONLinesLogger(_RowLogger):
    """Write the history to a JSON-lines file, one object per epoch (and per batch).

    Args:
        path: the file; each line is ``{"epoch": 1, "loss": ..., "accuracy": ..., "lr": ...,
            "time": ...}`` (with ``val_loss`` and ``val_accuracy`` given validation data).
        per_batch: also write ``{"epoch", "batch", "step", "loss"}`` lines into
            ``<stem>.batches<suffix>`` beside it.
        append: add to an existing file instead of starting it afresh.

    Resuming and flushing work as in :class:`CSVLogger`.
    """

    def format_row(self, columns, row):
        """One epoch's row as a JSON object on one line (bytes), keys in the order of ``columns``."""
        return (json.dumps({key: row[key] for key in columns}) + "\n").encode("utf-8")
