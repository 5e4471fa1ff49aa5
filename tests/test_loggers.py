"""CSVLogger, JSONLinesLogger and History.to_csv: files read back against the history."""

from __future__ import annotations

import csv
import io
import json

import pytest

import fastnn as fnn
from fastnn.callbacks import Callback, CSVLogger, JSONLinesLogger

from fit_recipe import STEPS_PER_EPOCH, Crash, crash_at, small_model, train
from fit_recipe import clusters as blobs


class BatchLosses(Callback):
    """Records every batch's (epoch, batch, step, loss) as the loop reports them."""

    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, batch, logs, model, optimizer):
        self.rows.append((self.loop.epoch + 1, batch + 1, self.loop.global_step, logs["loss"]))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def fit_logged(logger, epochs=3, **kwargs):
    x, t = blobs(60)
    losses = BatchLosses()
    history = small_model().fit(
        x, t, epochs=epochs, batch_size=10, verbose=0, callbacks=[logger, losses], **kwargs
    )
    return history, losses.rows


def check_epoch_rows(rows, history):
    """Rows (strings from CSV or numbers from JSON) equal the history exactly."""
    keys = ["loss", "accuracy", *(k for k in ("val_loss", "val_accuracy") if k in history), "lr", "time"]
    assert len(rows) == history.epochs
    for epoch, row in enumerate(rows):
        assert list(row) == ["epoch", *keys]
        assert int(row["epoch"]) == epoch + 1
        for key in keys:
            assert float(row[key]) == history[key][epoch], (key, epoch)


def test_csv_logger_writes_a_header_and_a_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    history, _ = fit_logged(CSVLogger(path), validation_split=0.25)
    assert path.read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,time"
    check_epoch_rows(read_csv(path), history)
    assert not (tmp_path / "log.batches.csv").exists()


def test_per_batch_rows_go_to_a_file_beside_it(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path, per_batch=True)
    history, seen = fit_logged(logger, epochs=2)
    assert logger.batch_path == tmp_path / "log.batches.csv"
    rows = read_csv(logger.batch_path)
    assert list(rows[0]) == ["epoch", "batch", "step", "loss"]
    assert [(int(r["epoch"]), int(r["batch"]), int(r["step"]), float(r["loss"])) for r in rows] == seen
    assert len(seen) == 2 * 6 and seen[-1][:3] == (2, 6, 12)
    check_epoch_rows(read_csv(path), history)


def test_json_lines_logger_writes_the_same_rows(tmp_path):
    path = tmp_path / "log.jsonl"
    logger = JSONLinesLogger(path, per_batch=True)
    history, seen = fit_logged(logger, validation_split=0.25)
    check_epoch_rows(read_jsonl(path), history)
    rows = read_jsonl(tmp_path / "log.batches.jsonl")
    assert [(r["epoch"], r["batch"], r["step"], r["loss"]) for r in rows] == seen


def test_rows_are_flushed_as_they_are_written(tmp_path):
    path = tmp_path / "log.csv"
    lines_seen = []

    class ReadBack(Callback):  # runs after the logger: its row must already be on disk
        def on_train_batch_end(self, batch, logs, model, optimizer):
            lines_seen.append(len((tmp_path / "log.batches.csv").read_text().splitlines()))

        def on_epoch_end(self, epoch, metrics, model, optimizer):
            lines_seen.append(len(path.read_text().splitlines()))

    x, t = blobs(20)
    small_model().fit(
        x, t, epochs=2, batch_size=10, verbose=0, callbacks=[CSVLogger(path, per_batch=True), ReadBack()]
    )
    # batch file: header + 1, 2 rows; epoch file: header + 1 row; then batch rows 3, 4; epoch row 2
    assert lines_seen == [2, 3, 2, 4, 5, 3]


def test_append_adds_rows_without_a_second_header_and_refuses_another_shape(tmp_path):
    path = tmp_path / "log.csv"
    first, _ = fit_logged(CSVLogger(path), epochs=2)
    second, _ = fit_logged(CSVLogger(path, append=True), epochs=1)
    lines = path.read_text().splitlines()
    assert lines.count(lines[0]) == 1 and len(lines) == 1 + 3
    assert [float(r["loss"]) for r in read_csv(path)] == first["loss"] + second["loss"]
    with pytest.raises(
        ValueError, match=r"CSVLogger: cannot append to .*log.csv.*its header is 'epoch,loss,"
    ):
        fit_logged(CSVLogger(path, append=True), epochs=1, validation_split=0.25)
    fit_logged(CSVLogger(path), epochs=1)  # append=False starts the file afresh
    assert len(path.read_text().splitlines()) == 2


def test_a_resumed_run_continues_the_files_without_repeating_rows(tmp_path):
    reference = tmp_path / "reference.csv"
    _, full = train(more=[CSVLogger(reference, per_batch=True)])
    path, ckpt = tmp_path / "log.csv", tmp_path / "ckpt"
    with pytest.raises(Crash):  # before step 30; the newest checkpoint is step 20, in epoch 2
        train(checkpoint=ckpt, every=10, hook=crash_at(30), more=[CSVLogger(path, per_batch=True)])
    assert len(read_csv(tmp_path / "log.batches.csv")) == 29  # flushed up to the crash
    _, history = train(checkpoint=ckpt, every=10, resume=True, more=[CSVLogger(path, per_batch=True)])
    rows = read_csv(path)
    assert [int(r["epoch"]) for r in rows] == list(range(1, history.epochs + 1))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):  # bit-exact resume; time differs
        assert [float(r[key]) for r in rows] == full[key] == history[key]
    batches, expected = read_csv(tmp_path / "log.batches.csv"), read_csv(tmp_path / "reference.batches.csv")
    assert [int(r["step"]) for r in batches] == list(range(1, len(expected) + 1))
    assert len(expected) == history.epochs * STEPS_PER_EPOCH and batches == expected
    assert path.read_text().count("epoch,") == 1


def test_a_resumed_run_logging_elsewhere_does_not_cut_that_file(tmp_path):
    ckpt, other = tmp_path / "ckpt", tmp_path / "other.csv"
    with pytest.raises(Crash):
        train(checkpoint=ckpt, every=10, hook=crash_at(30), more=[CSVLogger(tmp_path / "log.csv")])
    _, before = train(more=[CSVLogger(other)])  # a longer file than the checkpoint's log
    kept = other.read_text()
    _, history = train(checkpoint=ckpt, every=10, resume=True, more=[CSVLogger(other, append=True)])
    text = other.read_text()
    assert text.startswith(kept) and len(read_csv(other)) == before.epochs + history.epochs - 1


def test_history_to_csv_returns_the_loggers_text_and_writes_it_atomically(tmp_path):
    path = tmp_path / "log.csv"
    history, _ = fit_logged(CSVLogger(path), validation_split=0.25)
    text = history.to_csv()
    assert text == path.read_text()
    check_epoch_rows(list(csv.DictReader(io.StringIO(text))), history)
    out = tmp_path / "history.csv"
    assert history.to_csv(out) == text and out.read_text() == text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    assert history.to_dict() == {k: list(v) for k, v in history.items()}
    assert json.loads(json.dumps(history.to_dict())) == history.to_dict()


def test_bad_logger_arguments_are_refused_before_the_first_step(tmp_path):
    with pytest.raises(TypeError, match="CSVLogger: path must be a file path"):
        CSVLogger(3)
    with pytest.raises(ValueError, match="JSONLinesLogger: path .* is a folder"):
        JSONLinesLogger(tmp_path)
    with pytest.raises(TypeError, match="CSVLogger: per_batch must be True or False, got 'yes'"):
        CSVLogger(tmp_path / "log.csv", per_batch="yes")
    model = small_model()
    model.train_step = None  # a step would fail with a TypeError
    x, t = blobs(20)
    with pytest.raises(ValueError, match=r"CSVLogger: the folder of .*missing.* does not exist; create"):
        model.fit(x, t, verbose=0, callbacks=[CSVLogger(tmp_path / "missing" / "log.csv")])
    assert fnn.callbacks.CSVLogger is CSVLogger
