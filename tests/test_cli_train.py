"""``fastnn train``: --verbose and --quiet, Ctrl-C with --save, --log, and --resume's errors."""

from __future__ import annotations

import csv
import os
import signal
import time

import numpy as np
import pytest

import fastnn as fnn
from fastnn.cli import main

FAST = ["train", "--backend", "numpy", "--batch-size", "100"]  # digits: 15 steps an epoch


def epoch_lines(text):
    return [line for line in text.splitlines() if line.startswith("epoch ")]


def test_verbose_2_prints_a_line_per_epoch_and_quiet_prints_none(capsys):
    assert main(FAST + ["--epochs", "2", "--verbose", "2"]) == 0
    err = capsys.readouterr().err
    assert [line.split("  ")[0] for line in epoch_lines(err)] == ["epoch 1/2", "epoch 2/2"]
    assert "\r" not in err
    assert main(FAST + ["--epochs", "2"]) == 0  # --verbose 1, but stderr is not a terminal here
    err = capsys.readouterr().err
    assert len(epoch_lines(err)) == 2 and "\r" not in err
    for silent in (["--quiet"], ["--verbose", "0"]):
        assert main(FAST + ["--epochs", "2", *silent]) == 0
        captured = capsys.readouterr()
        assert epoch_lines(captured.err) == [] and "test accuracy" in captured.out


def test_quiet_with_another_verbose_is_refused(capsys):
    assert main(FAST + ["--quiet", "--verbose", "2"]) == 2
    assert (
        "--quiet means --verbose 0; give one of them, not --quiet with --verbose 2" in capsys.readouterr().err
    )


@pytest.fixture
def interrupt_at(monkeypatch):
    """Ctrl-C (SIGINT to this process) during step ``step`` of the run; returns the weights
    after every finished step."""
    weights = []

    def arm(step):
        real = fnn.Sequential.train_step

        def train_step(self, *args, **kwargs):
            loss = real(self, *args, **kwargs)
            weights.append(self.flat_params.copy())
            if len(weights) == step:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # let the handler run
            return loss

        monkeypatch.setattr(fnn.Sequential, "train_step", train_step)
        return weights

    return arm


def test_ctrl_c_with_save_writes_the_last_weights_and_says_so(tmp_path, capsys, interrupt_at):
    weights = interrupt_at(20)  # epoch 2, step 5 of 15
    path = tmp_path / "model.npz"
    assert main(FAST + ["--epochs", "3", "--quiet", "--save", str(path)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted at epoch 2/3, step 5/15: saved the model's last weights to {path}" in err
    assert "to be able to resume, train with --checkpoint DIR" in err
    assert "no checkpoint was written" not in err
    assert "fit: interrupted at" not in err and "checkpoint=DIR to fit" not in err
    assert len(weights) == 20
    np.testing.assert_array_equal(fnn.load(path).flat_params, weights[-1])
    assert not [p for p in tmp_path.iterdir() if p != path]  # written atomically: no temp file left


def test_ctrl_c_with_save_and_checkpoint_does_both(tmp_path, capsys, interrupt_at):
    weights = interrupt_at(7)
    path, ckpt = tmp_path / "model.npz", tmp_path / "ckpt"
    argv = FAST + ["--epochs", "2", "--quiet", "--save", str(path), "--checkpoint", str(ckpt)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"interrupted at epoch 1/2, step 7/15: saved the model's last weights to {path}" in err
    assert f"resume with: fastnn train --resume {ckpt}" in err
    np.testing.assert_array_equal(fnn.load(path).flat_params, weights[-1])


def test_ctrl_c_without_save_says_the_weights_were_not_kept(tmp_path, capsys, interrupt_at):
    interrupt_at(3)
    assert main(FAST + ["--epochs", "2", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted at epoch 1/2, step 3/15: the weights were not saved (pass --save PATH" in err


def test_log_writes_a_csv_row_per_epoch_and_a_resume_continues_it(tmp_path, capsys):
    log, ckpt = tmp_path / "log.csv", tmp_path / "ckpt"
    argv = FAST + ["--epochs", "1", "--quiet", "--lr", "0.005", "--log", str(log), "--checkpoint", str(ckpt)]
    assert main(argv) == 0
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--verbose", "2"]) == 0
    err = capsys.readouterr().err
    assert [line.split("  ")[0] for line in epoch_lines(err)] == ["epoch 2/3", "epoch 3/3"]
    assert log.read_text().splitlines()[0] == "epoch,loss,accuracy,lr,time"
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["lr"]) for r in rows] == [0.005] * 3
    losses = [float(r["loss"]) for r in rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    shown = [float(line.split("  ")[1].split()[1]) for line in epoch_lines(err)]  # "loss 0.1234"
    assert shown == pytest.approx(losses[1:], abs=1e-4)


def test_resume_names_the_default_a_run_used(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(FAST + ["--epochs", "1", "--quiet", "--checkpoint", str(ckpt)]) == 0
    assert main(["train", "--resume", str(ckpt), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--lr cannot change when resuming (the run used the default, 0.001 for adam, now 0.5)" in err
    assert "None" not in err and "--verbose" in err
    assert main(["train", "--resume", str(ckpt), "--patience", "2"]) == 2
    assert "(the run used the default, no --patience, now 2)" in capsys.readouterr().err


def test_adamw_keeps_its_own_weight_decay_unless_one_is_given(capsys):
    assert main(["train", "--optimizer", "adamw", "--epochs", "1", "--quiet"]) == 0
    assert "AdamW(lr=0.001, weight_decay=0.01," in capsys.readouterr().out
    assert main(["train", "--optimizer", "adamw", "--weight-decay", "0", "--epochs", "1", "--quiet"]) == 0
    assert "AdamW(lr=0.001, weight_decay=0.0," in capsys.readouterr().out
    assert main(["train", "--optimizer", "adam", "--epochs", "1", "--quiet"]) == 0
    assert "weight_decay=0.0," in capsys.readouterr().out
