"""The fastnn command line."""

import shlex
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fnn
from fastnn.cli import main

from fit_recipe import latest_step


def test_info_prints_versions_threads_and_cache(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for field in ("fastnn", "numba", "numpy", "kernel threads", "threading layer", "kernel cache"):
        assert field in out
    from fastnn import _malloc

    assert ("fastnn's (FASTNN_MALLOC)" if _malloc.APPLIED else "glibc's own") in out


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


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adamw"])
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
    monkeypatch.setitem(fnn.datasets.MIRRORS, "mnist", [f"file://{tmp_path}/nowhere/"])
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
    assert set(commands) == {
        "train",
        "tune",
        "lr-find",
        "bench",
        "info",
        "warmup",
        "export",
        "evaluate",
        "predict",
        "summary",
        "compare",
        "verify",
        "playground",
    }
    for name in commands:
        assert f"``fastnn {name}``" in cli.__doc__, name


def command_parsers():
    import fastnn.cli as cli

    parser = cli.build_parser()
    return parser, parser.subparsers


def test_top_level_help_lists_every_command_on_one_line_without_rst(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and "====" not in out and ":data:" not in out
    lines = out.splitlines()
    start = lines.index("  COMMAND") + 1
    rows = lines[start : lines.index("", start)]  # a help that wraps would add a row
    # argparse puts the help of a name longer than 8 characters ("playground") on the next
    # line, indented to the help column: that is one row, not a wrapped help.
    rows = [
        f"{row} {rows[i + 1].strip()}" if len(row.split()) == 1 and i + 1 < len(rows) else row
        for i, row in enumerate(rows)
        if not (i and len(rows[i - 1].split()) == 1)
    ]
    assert [row.split()[0] for row in rows] == list(command_parsers()[1])
    assert all(len(row.split()) > 2 for row in rows), rows


def test_every_option_of_every_command_shows_its_default():
    from fastnn.cli._common import help_with_default

    _, commands = command_parsers()
    for name, parser in commands.items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0:
                continue  # positionals and flags (off by default)
            assert "default" in (help_with_default(action) or ""), (name, action.option_strings)


def test_train_help_shows_the_defaults_of_model_and_batch_size(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    models = "alexnet,deep_convnet,inception,lenet5,lenet5_classic,mlp,resnet20,simple_convnet,vgg"
    assert f"--model {{{models}}} (default: mlp)" in out
    assert "--batch-size BATCH_SIZE (default: 100)" in out
    assert (
        "--save PATH write the trained model (.npz); on Ctrl-C, the weights of the last step (default: none)"
        in out
    )


@pytest.mark.parametrize("command", ["train", "tune"])
def test_a_data_dir_that_does_not_exist_is_refused_before_any_download(
    command, tmp_path, monkeypatch, capsys
):
    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(fnn.datasets._download.urllib.request, "urlopen", no_network)
    missing = tmp_path / "typo"
    with pytest.raises(SystemExit) as info:
        main([command, "--dataset", "mnist", "--data-dir", str(missing)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --data-dir: folder '{missing}' does not exist; pass the folder" in err
    assert "$FASTNN_DATA" in err


def test_save_into_a_missing_folder_fails_before_training(tmp_path, monkeypatch, capsys):
    import fastnn.cli._common as common

    def no_training(args):
        raise AssertionError("the data was loaded: the check came too late")

    monkeypatch.setattr(common, "load_data", no_training)
    target = tmp_path / "nowhere" / "m.npz"
    with pytest.raises(SystemExit) as info:
        main(["train", "--quiet", "--save", str(target)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --save: cannot write {target}: the folder {target.parent} does not exist" in err
    with pytest.raises(SystemExit):
        main(["train", "--quiet", "--save", str(tmp_path)])
    assert f"cannot write {tmp_path}: it is a folder" in capsys.readouterr().err


def test_bench_json_into_a_missing_folder_fails_before_timing(tmp_path, capsys):
    target = tmp_path / "nowhere" / "bench.json"
    with pytest.raises(SystemExit) as info:
        main(["bench", "--json", str(target)])
    assert info.value.code == 2
    assert f"argument --json: cannot write {target}: the folder" in capsys.readouterr().err


def run_tune(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    [best] = [line for line in out.splitlines() if line.startswith("best: ")]
    return out, shlex.split(best[len("best: ") :])


def test_tune_prints_a_train_command_that_runs_as_printed(capsys):
    tune = ["tune", "--trials", "2", "--epochs", "1", "--quiet", "--batch-size", "50", "--seed", "3"]
    out, command = run_tune(tune + ["--backend", "numpy", "--l1", "1e-6:1e-4"], capsys)
    assert command[:2] == ["fastnn", "train"]
    parser, _ = command_parsers()
    args = parser.parse_args(command[1:])
    best_row = out.splitlines()[out.splitlines().index(next(r for r in out.splitlines() if "rank" in r)) + 1]
    _, _, _, lr, weight_decay, l1 = best_row.split()
    assert f"{args.lr:.3g}" == lr and f"{args.weight_decay:.3g}" == weight_decay and f"{args.l1:.3g}" == l1
    assert (args.model, args.dataset, args.optimizer) == ("mlp", "digits", "adam")
    assert (args.batch_size, args.seed, args.backend) == (50, 3, "numpy")
    assert main(command[1:] + ["--epochs", "1", "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_tune_best_line_keeps_data_dir_and_quotes_it(tmp_path, monkeypatch, capsys):
    import fastnn.cli.tune as tune_command
    from fastnn.tune import Trial

    data_dir = tmp_path / "my data's folder"
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 28, 28), dtype=np.float32)
    monkeypatch.setattr(tune_command, "load_data", lambda args: ((x, np.arange(20) % 10), (None, None)))
    found = Trial({"lr": 0.0123456789, "weight_decay": 2.5e-5, "l1": 0.0}, 0.9, 0.3, 0.9, {})
    monkeypatch.setattr(fnn.tune, "random_search", lambda *args, **kwargs: [found])
    _, command = run_tune(
        ["tune", "--dataset", "mnist", "--data-dir", str(data_dir), "--threads", "1", "--quiet"], capsys
    )
    args = command_parsers()[0].parse_args(command[1:])
    assert args.data_dir == str(data_dir) and args.dataset == "mnist"
    assert (args.lr, args.weight_decay, args.l1) == (0.0123456789, 2.5e-5, 0.0)
    assert "--l1" not in command and args.threads == 1
