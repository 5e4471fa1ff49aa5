"""The fastnn command line."""

import subprocess
import sys

import pytest

import fastnn as fnn
from fastnn.cli import main

from fit_recipe import latest_step


def test_info_prints_versions_threads_and_cache(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for field in ("fastnn", "numba", "numpy", "kernel threads", "threading layer", "kernel cache"):
        assert field in out


def test_train_default_is_offline_digits_and_reports_accuracy(tmp_path, capsys):
    path = tmp_path / "digits.npz"
    assert main(["train", "--epochs", "15", "--quiet", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mlp on digits" in out
    accuracy = float(out.split("test accuracy")[1].split()[0])
    assert accuracy >= 0.93
    model = fnn.load(path)
    (_, _), (x_test, t_test) = fnn.datasets.load_digits(seed=0)
    assert model.evaluate(x_test, t_test)["accuracy"] == pytest.approx(accuracy, abs=1e-4)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop"])
def test_train_accepts_every_optimizer(optimizer, capsys):
    assert (
        main(
            [
                "train",
                "--epochs",
                "2",
                "--quiet",
                "--optimizer",
                optimizer,
                "--backend",
                "numpy",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert "test accuracy" in capsys.readouterr().out


def test_train_missing_data_dir_is_a_clean_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setattr(fnn.datasets, "MIRRORS", {"mnist": [f"file://{tmp_path}/nowhere/"]})
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"]) == 2
    assert "FASTNN_DATA" in capsys.readouterr().err


def test_bad_arguments_exit_nonzero():
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "0"])
    with pytest.raises(SystemExit):
        main(["train", "--threads", "-1"])


def test_console_script_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "fastnn", "info"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "threading layer" in result.stdout


def test_train_on_real_mnist_from_data_dir(mnist_dir, capsys):
    assert (
        main(["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--epochs", "1", "--quiet"]) == 0
    )
    out = capsys.readouterr().out
    assert "60000 train / 10000 test" in out
    assert float(out.split("test accuracy")[1].split()[0]) > 0.94


def test_cli_checkpoint_and_resume_arguments(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    args = ["train", "--epochs", "1", "--quiet", "--backend", "numpy", "--checkpoint", str(ckpt)]
    assert main(args) == 0
    assert (ckpt / "fastnn-train.json").exists() and latest_step(ckpt) == 15
    assert main(args) == 2
    assert "fastnn train --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(ckpt), "--lr", "0.5"]) == 2
    assert "--lr cannot change" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "fastnn-train.json" in capsys.readouterr().err
    assert main(["train", "--checkpoint-every", "3"]) == 2
    assert "--checkpoint-every needs --checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--quiet"]) == 0
    assert latest_step(ckpt) == 30


def test_the_module_docstring_names_every_command():
    import fastnn.cli as cli

    commands = cli.build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == {"train", "tune", "bench", "info", "warmup", "evaluate", "predict", "summary"}
    for name in commands:
        assert f"``fastnn {name}``" in cli.__doc__, name
