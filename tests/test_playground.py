"""fastnn playground: the toy data, the settings' checks, the training session, and the web
protocol with plain HTTP requests (urllib) against a server on a free port."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.playground import Playground, Session
from fastnn.playground.app import parse_csv
from fastnn.playground.datasets import DATASETS, RADIUS, generate, multigauss_label, split
from fastnn.playground.features import FEATURES, featurize
from fastnn.playground.session import GRID, grid_points
from fastnn.playground.settings import DEFAULTS, SettingsError, validate
from fastnn.web import HTTPError

ROOT = Path(__file__).resolve().parent.parent


def unquantize(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.uint8) / 127.5 - 1


# ---- data sets and features ----------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_is_seeded_in_the_square_and_labelled(name):
    x, y = generate(name, 300, noise=0.2, seed=3, classes=4)
    again, labels_again = generate(name, 300, noise=0.2, seed=3, classes=4)
    other, _ = generate(name, 300, noise=0.2, seed=4, classes=4)
    assert x.shape == (300, 2) and x.dtype == np.float32 and len(y) == 300
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, labels_again)
    assert not np.array_equal(x, other)
    assert np.abs(x).max() <= 2 * RADIUS  # gauss and blobs tails may leave the square, not by far
    if name in ("plane", "multigauss"):
        assert y.dtype == np.float32 and np.abs(y).max() <= 1
    else:
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(4 if name == "blobs" else 2))


def test_the_noiseless_sets_follow_their_rules():
    x, y = generate("circle", 400, noise=0.0, seed=0)
    np.testing.assert_array_equal(y, (np.hypot(x[:, 0], x[:, 1]) < 2.5).astype(np.int64))
    x, y = generate("xor", 400, noise=0.0, seed=0)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(np.int64))
    x, y = generate("plane", 400, noise=0.0, seed=0)
    np.testing.assert_allclose(y, np.clip((x[:, 0] + x[:, 1]) / 10, -1, 1), atol=1e-6)
    x, y = generate("multigauss", 400, noise=0.0, seed=0)
    np.testing.assert_allclose(y, multigauss_label(x), atol=1e-5)
    assert multigauss_label(np.array([[-4.0, 2.5], [0.0, 2.5]])).tolist() == [1.0, -1.0]


def test_split_keeps_the_ratio_and_a_point_on_each_side():
    x, y = generate("gauss", 500, seed=0)
    (a, b), (c, d) = split(x, y, 0.3)
    assert len(a) == 150 and len(c) == 350
    (a, _), (c, _) = split(x[:2], y[:2], 0.9)
    assert len(a) == 1 and len(c) == 1


def test_features_are_the_playgrounds_seven():
    points = np.array([[0.5, -2.0], [3.0, 1.0]], np.float32)
    got = featurize(points, list(FEATURES))
    a, b = points.T
    expected = np.stack([a, b, a * a, b * b, a * b, np.sin(a), np.sin(b)], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert featurize(points, ["x2sq", "x1"]).tolist() == [[4.0, 0.5], [1.0, 3.0]]


# ---- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"layers": [1_000_000]}, "layers", "each an integer from 1 to 8"),
        ({"layers": [2] * 7}, "layers", "0 to 6 layer sizes"),
        ({"lr": -0.1}, "lr", "from 1e-05 to 10"),
        ({"lr": float("nan")}, "lr", "from 1e-05 to 10"),
        ({"batch_size": 0}, "batch_size", "from 1 to 30"),
        ({"batch_size": 2.5}, "batch_size", "from 1 to 30"),
        ({"activation": "gelu"}, "activation", "relu, tanh, sigmoid, linear"),
        ({"noise": True}, "noise", "from 0 to 50"),
        ({"features": []}, "features", "non-empty"),
        ({"features": ["x1", "x1"]}, "features", "distinct"),
        ({"dataset": "moons"}, "dataset", "circle"),
        ({"neurons": 3}, "neurons", "unknown setting"),
    ],
)
def test_validate_names_the_field_and_its_range(changes, field, words):
    with pytest.raises(SettingsError) as error:
        validate(changes)
    assert error.value.field == field
    assert f"'{field}'" in str(error.value) and words in str(error.value)


def test_validate_accepts_the_edges_and_a_list_body_is_refused():
    checked = validate({"lr": 10, "layers": [], "batch_size": 30.0})
    assert checked == {"lr": 10.0, "layers": [], "batch_size": 30}
    assert validate({"layers": [8] * 6})["layers"] == [8] * 6
    with pytest.raises(SettingsError, match="JSON object"):
        validate([1, 2])


# ---- the session -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A circle session trained to a low test loss (shared: the tests below only read it)."""
    session = Session({"layers": [6, 4], "optimizer": "adam", "lr": 0.03, "num_samples": 300})
    for _ in range(40):
        session.train_epoch()
    return session


def test_training_the_circle_brings_the_test_loss_down(trained):
    first = Session({"layers": [6, 4], "optimizer": "adam", "lr": 0.03, "num_samples": 300}).losses()
    stats = trained.losses()
    assert stats["test_loss"] < 0.1 < first["test_loss"]
    assert stats["test_accuracy"] > 0.97
    confusion = np.array(stats["confusion"])
    assert confusion.shape == (2, 2) and confusion.sum() == trained.status()["num_test"]
    assert trained.epoch == 40 and len(trained.history) == 40
    assert trained.rates["numba"] > 0


def test_the_heatmap_and_thumbnails_are_the_networks_own_outputs(trained):
    """Checked against an oracle written here in NumPy from the weights."""
    frame = trained.frame()
    W = [layer.params for layer in trained.model.layers if isinstance(layer, fnn.Dense)]
    x = grid_points().astype(np.float64)
    h1 = np.tanh(x @ W[0]["W"] + W[0]["b"])
    h2 = np.tanh(h1 @ W[1]["W"] + W[1]["b"])
    p = 1 / (1 + np.exp(-(h2 @ W[2]["W"] + W[2]["b"])[:, 0]))
    np.testing.assert_allclose(unquantize(frame["heatmap"]), 2 * p - 1, atol=0.01)
    thumb = unquantize(frame["thumbs"]["hidden:1:2"]).reshape(50, 50)
    np.testing.assert_allclose(thumb, h2[:, 2].reshape(GRID, GRID)[::2, ::2], atol=0.01)
    assert set(frame["thumbs"]) >= {f"input:{name}" for name in FEATURES} | {"output"}
    assert len(frame["weights"]) == 3 and np.array(frame["weights"][0]["W"]).shape == (2, 6)
    json.dumps(frame, allow_nan=False)


def test_the_heatmap_separates_the_circle(trained):
    heat = unquantize(trained.frame()["heatmap"]).reshape(GRID, GRID)
    assert heat[GRID // 2, GRID // 2] > 0.5  # the centre is class 1 (blue, +1)
    assert heat[0, 0] < -0.5 and heat[-1, -1] < -0.5  # the corners are class 0


def test_switching_the_backend_keeps_the_weights_and_the_outputs(trained):
    session = Session({"layers": [3], "seed": 5})
    for _ in range(3):
        session.train_epoch()
    before = session.model.flat_params.copy()
    heat = unquantize(session.frame()["heatmap"])
    session.update({"backend": "numpy"})
    assert session.model.ops.name == "numpy" and session.epoch == 3
    np.testing.assert_array_equal(session.model.flat_params, before)
    np.testing.assert_allclose(unquantize(session.frame()["heatmap"]), heat, atol=2 / 255)
    session.train_epoch()
    assert set(session.rates) == {"numba", "numpy"} and session.epoch == 4


def test_changes_rebuild_only_what_they_touch():
    session = Session({"layers": [2]})
    session.train_epoch()
    weights = session.model.flat_params.copy()
    session.update({"lr": 0.3, "batch_size": 5})
    assert session.epoch == 1 and np.array_equal(session.model.flat_params, weights)
    assert session.optimizer.lr == 0.3
    session.update({"layers": [3, 3]})
    assert session.epoch == 0 and session.model.flat_params.size == 2 * 3 + 3 + 3 * 3 + 3 + 3 + 1
    labels = session.train[1].copy()
    session.update({"noise": 30})  # circle's noise moves where a point's label is read (as the original)
    assert not np.array_equal(session.train[1], labels) and session.epoch == 0
    session.update({"regularization": "l2", "reg_rate": 0.01, "optimizer": "momentum"})
    assert type(session.optimizer).__name__ == "Momentum" and session.optimizer.weight_decay == 0.01
    session.update({"regularization": "l1"})
    assert session.optimizer.l1 == 0.01 and session.optimizer.weight_decay == 0


def test_more_than_two_classes_train_with_softmax():
    session = Session({"dataset": "blobs", "classes": 4, "layers": [5], "optimizer": "adam", "lr": 0.03})
    assert type(session.model.loss_fn).__name__ == "SoftmaxCrossEntropy"
    assert session.model.layers[-1].out_features == 4
    for _ in range(10):
        session.train_epoch()
    frame = session.frame()
    assert np.array(frame["confusion"]).shape == (4, 4) and frame["test_accuracy"] > 0.9
    classes = np.frombuffer(base64.b64decode(frame["heatmap_class"]), np.uint8)
    assert set(np.unique(classes)) == {0, 1, 2, 3}


def test_regression_trains_with_mse_and_dropout_adds_layers():
    session = Session({"dataset": "plane", "layers": [4], "dropout": 0.2, "activation": "relu"})
    assert type(session.model.loss_fn).__name__ == "MeanSquaredError"
    assert [type(layer).__name__ for layer in session.model.layers] == ["Dense", "ReLU", "Dropout", "Dense"]
    before = session.losses()["test_loss"]
    for _ in range(5):
        session.train_epoch()
    assert session.losses()["test_loss"] < before and "confusion" not in session.losses()


def test_epoch_limit_and_stop_loss_stop_training():
    session = Session({"layers": [2], "max_epochs": 3})
    for _ in range(3):
        session.train_epoch()
    assert session.stopped == "epoch limit 3 reached"
    session = Session({"layers": [6], "optimizer": "adam", "lr": 0.1, "stop_loss": 5.0})
    session.train_epoch()
    assert session.stopped.startswith("test loss") and "stop loss 5" in session.stopped


def test_a_diverging_run_stops_with_a_message_and_finite_numbers():
    session = Session({"dataset": "plane", "activation": "linear", "layers": [8, 8, 8], "lr": 10})
    for _ in range(5):
        session.train_epoch()
        if session.stopped:
            break
    assert session.stopped and "diverged" in session.stopped
    json.dumps(session.frame(), allow_nan=False)


def test_weights_can_be_set_by_hand_within_the_network():
    session = Session({"layers": [2]})
    session.set_weight(0, 1, 0, 2.5)
    session.set_weight(1, None, 0, -0.75)
    assert session.model.layers[0].params["W"][1, 0] == 2.5
    assert session.model.layers[2].params["b"][0] == -0.75
    assert session.frame()["weights"][1]["b"] == [-0.75]
    for args, field in (((2, 0, 0, 1.0), "layer"), ((0, 5, 0, 1.0), "from"), ((0, 0, 2, 1.0), "to")):
        with pytest.raises(SettingsError) as error:
            session.set_weight(*args)
        assert error.value.field == field


def test_own_points_become_a_custom_data_set():
    session = Session({"layers": [2]})
    count = session.add_points([[1.0, 1.0, 2]])
    assert count == 501 and session.settings["dataset"] == "custom" and session.num_classes == 3
    assert session.model.layers[-1].out_features == 3
    session.add_points([[0.5, 0.5, 0.3], [-1, 2, -0.5]], replace=True)
    assert session.problem == "regression" and len(session.train[0]) + len(session.test[0]) == 2
    for bad, words in (
        ([[7.0, 0, 1]], "must lie in [-6, 6]"),
        ([[0, 0, 1.5]], "regression labels must lie in [-1, 1]"),
        ([[0, 0, 6]], "class labels must be integers from 0 to 5"),
        ([[0, 0]], "three numbers"),
        ([], "non-empty"),
        ([[0, "a", 1]], "three numbers"),
    ):
        with pytest.raises(SettingsError, match=re.escape(words)):
            session.add_points(bad, replace=True)


def test_parse_csv_skips_a_header_and_names_a_bad_line():
    assert parse_csv("x1,x2,label\n1,2,0\n\n-1;0.5;1\n") == [[1, 2, 0], [-1, 0.5, 1]]
    with pytest.raises(HTTPError, match="line 3"):
        parse_csv("x1,x2,label\n1,2,0\n1,2\n")
    with pytest.raises(HTTPError, match="line 2"):
        parse_csv("1,2,0\nfoo,1,2\n")


def test_export_npz_loads_with_fnn_load_and_predicts_the_same(tmp_path, trained):
    path = tmp_path / "playground.npz"
    path.write_bytes(trained.export_npz())
    model = fnn.load(path)
    x = featurize(trained.test[0], trained.settings["features"])
    np.testing.assert_allclose(model.predict(x), trained.model.predict(x), rtol=1e-6)
    assert np.mean(model.predict_classes(x) == trained.test[1]) > 0.97


def test_the_exported_script_rebuilds_and_trains_the_network(tmp_path, monkeypatch, capsys):
    session = Session({"layers": [6, 4], "optimizer": "adam", "lr": 0.03, "num_samples": 300})
    for _ in range(25):
        session.train_epoch()
    script = tmp_path / "playground.py"
    script.write_text(session.export_script())
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    accuracy = float(re.search(r"'accuracy': ([0-9.]+)", printed).group(1))
    assert accuracy > 0.9 and (tmp_path / "playground.npz").exists()
    assert "epochs=25" in script.read_text()


# ---- the web protocol ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    playground = Playground(port=0, settings={"layers": [4], "lr": 0.1}).start()
    yield playground
    playground.stop()


def call(server, method, path, body=None, raw=None, headers=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    url = server.url + path.lstrip("/")
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def error_of(answer) -> str:
    status, headers, body = answer
    assert 400 <= status < 500 and headers["Content-Type"] == "application/json"
    return json.loads(body)["error"]


def test_the_page_and_its_files_are_served_from_the_package(server):
    status, headers, body = call(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"playground.js" in body
    for name in ("playground.js", "playground.css"):
        assert call(server, "GET", name)[0] == 200
    for path in ("/../app.py", "/%2e%2e/session.py", "/static/../../__init__.py", "/nothing.js"):
        assert "no such file" in error_of(call(server, "GET", path))
    assert server.url.startswith("http://127.0.0.1:")


def test_state_spec_and_points_answer_json(server):
    status, _, body = call(server, "GET", "/api/state")
    state = json.loads(body)
    assert status == 200 and state["settings"]["layers"] == [4] and "heatmap" in state
    spec = json.loads(call(server, "GET", "/api/spec")[2])
    assert spec["lr"]["allowed"] == [1e-05, 10.0] and spec["layers"]["default"] == DEFAULTS["layers"]
    points = json.loads(call(server, "GET", "/api/points")[2])
    assert len(points["train"]["x"]) == state["num_train"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"layers": [1_000_000]}, "'layers': expected a list of 0 to 6 layer sizes, each an integer from 1"),
        ({"lr": -1}, "'lr': expected a number from 1e-05 to 10, got -1"),
        ({"batch_size": 0}, "'batch_size': expected an integer from 1 to 30, got 0"),
        ({"layers": [2] * 7}, "'layers'"),
        ({"activation": "swish"}, "'activation': expected one of relu, tanh, sigmoid, linear"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_out_of_range_settings_get_a_400_naming_the_field(server, body, words):
    assert words in error_of(call(server, "POST", "/api/config", body))
    assert json.loads(call(server, "GET", "/api/state")[2])["settings"]["layers"] == [4]


def huge_body_error(server, path: str) -> str:
    """Announce a 2 MB body and send none of it: the server answers 413 from the headers."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=20)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", "2000000")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        return json.loads(response.read())["error"]
    finally:
        connection.close()


def test_hostile_requests_get_4xx_and_the_server_stays_up(server):
    assert "not valid JSON" in error_of(call(server, "POST", "/api/config", raw=b'{"lr": '))
    assert "empty" in error_of(call(server, "POST", "/api/config", raw=b""))
    assert "at most" in huge_body_error(server, "/api/upload")
    assert "no such path" in error_of(call(server, "GET", "/api/nothing"))
    assert "answers POST" in error_of(call(server, "GET", "/api/config"))
    assert "'action'" in error_of(call(server, "POST", "/api/control", {"action": "explode"}))
    assert "'value'" in error_of(call(server, "POST", "/api/weight", {"layer": 0, "to": 0, "value": 1e9}))
    assert "'layer'" in error_of(call(server, "POST", "/api/weight", {"layer": "0", "to": 0, "value": 1}))
    assert "'to'" in error_of(call(server, "POST", "/api/weight", {"layer": 0, "to": 99, "value": 1}))
    assert "line 1" in error_of(call(server, "POST", "/api/upload", raw=b"1,2\n"))
    assert "'points'" in error_of(call(server, "POST", "/api/points", {"points": [[99, 0, 1]]}))
    assert call(server, "GET", "/api/state")[0] == 200


def test_config_play_pause_step_and_reset(server):
    status, _, body = call(server, "POST", "/api/config", {"lr": 0.3, "batch_size": 20})
    assert status == 200 and json.loads(body)["settings"]["lr"] == 0.3
    assert json.loads(call(server, "POST", "/api/control", {"action": "play"})[2])["playing"] is True
    deadline = time.time() + 20
    while json.loads(call(server, "GET", "/api/state")[2])["epoch"] < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert json.loads(call(server, "POST", "/api/control", {"action": "pause"})[2])["playing"] is False
    epoch = json.loads(call(server, "GET", "/api/state")[2])["epoch"]
    assert epoch >= 3
    assert json.loads(call(server, "POST", "/api/control", {"action": "step"})[2])["epoch"] == epoch + 1
    assert json.loads(call(server, "POST", "/api/control", {"action": "reset"})[2])["epoch"] == 0
    points = json.loads(call(server, "GET", "/api/points")[2])
    seed = json.loads(call(server, "GET", "/api/state")[2])["settings"]["seed"]
    assert call(server, "POST", "/api/control", {"action": "regenerate"})[0] == 200
    assert json.loads(call(server, "GET", "/api/state")[2])["settings"]["seed"] == seed + 1
    assert json.loads(call(server, "GET", "/api/points")[2])["train"] != points["train"]


def read_event(response, name: str, limit: int = 200) -> dict:
    event = None
    for _ in range(limit):
        line = response.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event == name:
            return json.loads(line[len("data: ") :])
    raise AssertionError(f"no {name!r} event in {limit} lines")


def test_several_tabs_watch_frames_and_one_leaving_costs_nothing(server):
    first = urllib.request.urlopen(server.url + "api/events", timeout=20)
    second = urllib.request.urlopen(server.url + "api/events", timeout=20)
    assert first.headers["Content-Type"] == "text/event-stream"
    assert set(read_event(first, "points")) >= {"train", "test", "problem"}
    read_event(second, "frame")
    first.close()  # a tab goes away mid-stream
    call(server, "POST", "/api/control", {"action": "step"})
    frame = read_event(second, "frame")
    assert {"heatmap", "thumbs", "weights", "epoch", "steps_per_second"} <= set(frame)
    second.close()
    assert call(server, "GET", "/api/state")[0] == 200


def test_weights_points_upload_and_exports_over_http(server, tmp_path):
    assert call(server, "POST", "/api/weight", {"layer": 1, "from": 2, "to": 0, "value": 1.25})[0] == 200
    assert json.loads(call(server, "GET", "/api/state")[2])["weights"][1]["W"][2] == [1.25]
    status, headers, body = call(server, "GET", "/api/export.npz")
    assert status == 200 and 'filename="playground.npz"' in headers["Content-Disposition"]
    (tmp_path / "m.npz").write_bytes(body)
    assert fnn.load(tmp_path / "m.npz").layers[2].params["W"][2, 0] == 1.25
    status, headers, body = call(server, "GET", "/api/export.py")
    assert status == 200 and b"fnn.Sequential" in body and "playground.py" in headers["Content-Disposition"]
    csv = b"x1,x2,label\n" + b"\n".join(b"%d,%d,%d" % (i % 5, -(i % 3), i % 3) for i in range(40))
    status, _, body = call(server, "POST", "/api/upload", raw=csv)
    answer = json.loads(body)
    assert status == 200 and answer["points"] == 40 and answer["settings"]["dataset"] == "custom"
    status, _, body = call(server, "POST", "/api/points", {"points": [[0.5, 0.5, 1]]})
    assert json.loads(body)["points"] == 41
    assert json.loads(call(server, "GET", "/api/state")[2])["classes"] == 3
    call(server, "POST", "/api/config", {"dataset": "circle"})


# ---- the command -----------------------------------------------------------------------------------


def test_fastnn_playground_serves_on_loopback_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fastnn", "playground", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url, timeout=20) as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out


def test_the_command_line_options():
    from fastnn.cli import build_parser

    args = build_parser().parse_args(["playground"])
    assert (args.host, args.port, args.no_browser) == ("127.0.0.1", 8000, False)
    args = build_parser().parse_args(["playground", "--host", "0.0.0.0", "--port", "0", "--no-browser"])
    assert (args.host, args.port, args.no_browser) == ("0.0.0.0", 0, True)


def test_runner_publishes_while_playing_and_stops_at_the_epoch_limit():
    events = []
    lock = threading.Lock()

    def publish(name, data):
        with lock:
            events.append((name, data))

    from fastnn.playground.runner import Runner

    session = Session({"layers": [2], "max_epochs": 4})
    runner = Runner(session, publish)
    try:
        runner.play()
        deadline = time.time() + 20
        while runner.playing and time.time() < deadline:
            time.sleep(0.02)
        assert not runner.playing and session.epoch == 4 and session.stopped == "epoch limit 4 reached"

        def frames():
            with lock:
                return [data for name, data in events if name == "frame"]

        # the runner clears "playing" under the session's lock and publishes the last frame
        # just after releasing it: wait for that frame rather than race it
        while frames()[-1]["epoch"] != 4 and time.time() < deadline:
            time.sleep(0.02)
        assert frames()[-1]["epoch"] == 4 and frames()[-1]["stopped"] == "epoch limit 4 reached"
        runner.play()  # play at the limit: no further epoch
        deadline = time.time() + 20
        while runner.playing and time.time() < deadline:
            time.sleep(0.02)
        assert session.epoch == 4 and session.stopped == "epoch limit 4 reached"
    finally:
        runner.close()
