"""ONNX export: every exported network runs in onnxruntime and gives what predict gives."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import fastnn as fnn
from fastnn import models
from fastnn.cli import main
from fastnn.export import EXPORTERS
from fastnn.layers import LAYERS, Layer
from fastnn.losses import LOSSES
from fastnn.preprocessing import PCA, ZCA, MinMaxScale, Standardize

ATOL = RTOL = 1e-5


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def run_onnx(ort, path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x.astype(np.float32)})[0]


def train_a_few_steps(model, x, classes, steps=3, seed=0):
    """Move the weights away from their initial values (Adam on a small batch, as
    tests/test_fusion.py trains the book networks, so the two share compiled kernels)."""
    t = np.random.default_rng(seed).integers(0, classes, len(x))
    optimizer = fnn.optim.Adam(lr=0.01)
    for _ in range(steps):
        model.train_step(x, t, optimizer)


def test_every_fastnn_layer_has_an_exporter():
    public = {cls for name, cls in LAYERS.items() if cls.__module__.startswith("fastnn.") and name[0] != "_"}
    assert public <= set(EXPORTERS), sorted(cls.__name__ for cls in public - set(EXPORTERS))
    assert {PCA, ZCA, MinMaxScale, Standardize, fnn.BatchNorm, fnn.Dropout} <= public


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_each_book_network_runs_in_onnxruntime_as_predict(name, ort, tmp_path):
    model = models.MODELS[name](seed=1)
    rng = np.random.default_rng(2)
    initial = model.flat_params.copy()
    train_a_few_steps(model, rng.random((3, 1, 28, 28), dtype=np.float32), 10)
    assert not np.allclose(model.flat_params, initial)
    path = tmp_path / f"{name}.onnx"
    model.to_onnx(path, input_shape=(1, 28, 28))
    for batch in (5, 2):  # the batch axis is dynamic
        x = rng.random((batch, 1, 28, 28), dtype=np.float32)
        np.testing.assert_allclose(run_onnx(ort, path, x), model.predict(x), rtol=RTOL, atol=ATOL)


def move_off_the_initial_values(model, rng):
    """Random weights and BatchNorm statistics (a trained model's, without compiling training)."""
    model.flat_params[...] += rng.normal(0.0, 0.2, model.flat_params.shape).astype(model.dtype)
    for layer in model.layers:
        for name, array in layer.buffers.items():  # a block's hold its BatchNorms' ("body.1.running_var")
            if name.endswith("running_mean"):
                array[...] = rng.normal(0.0, 0.5, array.shape)
            elif name.endswith("running_var"):
                array[...] = rng.uniform(0.2, 3.0, array.shape)


def every_layer_models(rng):
    """Three small networks that hold every layer kind between them, preprocessing fitted."""
    x_images = rng.normal(2.0, 3.0, (200, 2, 9, 8)).astype(np.float32)
    images = fnn.Sequential(
        [
            MinMaxScale(per="feature").fit(x_images),
            Standardize(per="channel").fit(x_images),
            ZCA(eps=0.1).fit(x_images),
            fnn.Conv2D(2, 4, (3, 2), stride=(2, 1), pad=(1, 0)),  # (4, 5, 7)
            fnn.BatchNorm(4),
            fnn.LeakyReLU(0.2),
            fnn.MaxPool2D(3, stride=2, pad=1),  # (4, 3, 4)
            fnn.AvgPool2D(2, stride=1, pad=1),  # (4, 4, 5), padding counted as zeros
            fnn.LPPool2D(3, stride=1, pad=1, p=3),  # (4, 4, 5)
            fnn.Tanh(),
            fnn.Flatten(),
            fnn.Dense(80, 16),
            fnn.BatchNorm(16),
            fnn.Sigmoid(),
            fnn.Dropout(0.3),
            fnn.Dense(16, 6),
            fnn.Identity(),
            fnn.Softmax(),
        ],
        seed=3,
    )
    x_flat = rng.normal(0.0, 2.0, (200, 20)).astype(np.float32)
    flat = fnn.Sequential(
        [
            PCA(n_components=12, whiten=True).fit(x_flat),
            fnn.Dense(12, 8),
            fnn.Step(),
            fnn.Dense(8, 8),
            fnn.ReLU(),
            fnn.Dense(8, 3),
        ],
        seed=4,
    )
    pooled = fnn.Sequential(
        [fnn.Conv2D(2, 5, 3, pad=1), fnn.ReLU(), fnn.GlobalAvgPool2D(), fnn.Dense(5, 3)], seed=5
    )
    blocks = fnn.Sequential(
        [
            fnn.Conv2D(2, 4, 3, pad=1),
            fnn.Residual([fnn.Conv2D(4, 4, 3, pad=1), fnn.BatchNorm(4), fnn.ReLU()]),
            fnn.Residual(
                [fnn.Conv2D(4, 6, 3, stride=2, pad=1), fnn.ReLU()],
                shortcut=[fnn.Conv2D(4, 6, 1, stride=2), fnn.BatchNorm(6)],
            ),
            fnn.Concat([[fnn.Conv2D(6, 2, 1)], [fnn.Conv2D(6, 3, 3, pad=1), fnn.Tanh()]]),
            fnn.GlobalAvgPool2D(),
            fnn.Concat([[fnn.Dense(5, 3)], [fnn.Dense(5, 2)]]),
        ],
        seed=6,
    )
    return (images, x_images), (flat, x_flat), (pooled, x_images[:, :, :7, :5]), (blocks, x_images)


def test_a_network_of_every_layer_kind_runs_in_onnxruntime_as_predict(ort, tmp_path):
    rng = np.random.default_rng(5)
    networks = every_layer_models(rng)
    kinds = {type(layer) for model, _ in networks for layer in model.layers}
    assert kinds == set(EXPORTERS)
    for i, (model, x) in enumerate(networks):
        move_off_the_initial_values(model, rng)
        path = tmp_path / f"every_{i}.onnx"
        model.to_onnx(path)
        for batch in (7, 3):
            xb = x[-batch:]
            np.testing.assert_allclose(run_onnx(ort, path, xb), model.predict(xb), rtol=RTOL, atol=ATOL)
    bn = networks[0][0].layers[4]
    assert not np.allclose(bn.running_mean, 0) and not np.allclose(bn.running_var, 1)


def test_input_shape_is_inferred_with_named_dimensions_where_the_layers_leave_them_open(ort, tmp_path):
    import onnx

    model = fnn.Sequential(
        [fnn.BatchNorm(3), fnn.Conv2D(3, 2, 3, pad=1), fnn.ReLU(), fnn.MaxPool2D(2)], seed=0
    )
    model.to_onnx(tmp_path / "conv.onnx")
    graph = onnx.load(tmp_path / "conv.onnx").graph
    assert [
        (i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in graph.input
    ] == [("input", ["N", 3, "H", "W"])]
    assert graph.output[0].name == "output"
    for shape in ((1, 3, 8, 8), (2, 3, 12, 6)):  # any image size the layers take
        x = np.random.default_rng(7).random(shape, dtype=np.float32)
        np.testing.assert_allclose(
            run_onnx(ort, tmp_path / "conv.onnx", x), model.predict(x), rtol=RTOL, atol=ATOL
        )


def test_a_fixed_batch_size_and_the_names_of_inputs_outputs_and_nodes(ort, tmp_path):
    import onnx

    model = models.lenet5(seed=0)
    model.to_onnx(tmp_path / "lenet.onnx", batch_size=4, input_shape=(1, 28, 28))
    proto = onnx.load(tmp_path / "lenet.onnx")
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.output]
    assert dims == [[4, 10]]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [node.name for node in proto.graph.node[:3]] == [
        "layers.0.Conv2D",
        "layers.1.ReLU",
        "layers.2.MaxPool2D",
    ]
    assert proto.opset_import[0].version == 17
    session = ort.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="Expected: 4"):
        session.run(None, {"input": np.zeros((3, 1, 28, 28), np.float32)})


def test_a_newer_opset_runs_and_an_older_one_is_refused(ort, tmp_path):
    import onnx

    model = fnn.Sequential([fnn.Dense(5, 3), fnn.BatchNorm(3), fnn.Step()], seed=0)
    model.to_onnx(tmp_path / "new.onnx", opset=19)
    assert onnx.load(tmp_path / "new.onnx").opset_import[0].version == 19
    x = np.random.default_rng(8).normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_array_equal(run_onnx(ort, tmp_path / "new.onnx", x), model.predict(x))
    with pytest.raises(ValueError, match=r"to_onnx: opset must be an integer from 17 to \d+ .*got 16"):
        model.to_onnx(tmp_path / "old.onnx", opset=16)


def test_a_float64_model_is_exported_in_float32(ort, tmp_path):
    import onnx

    model = models.mlp(in_features=20, hidden=(30,), classes=4, seed=0, dtype="float64")
    model.to_onnx(tmp_path / "f64.onnx", input_shape=(20,))
    proto = onnx.load(tmp_path / "f64.onnx")
    assert {init.data_type for init in proto.graph.initializer} == {onnx.TensorProto.FLOAT}
    x = np.random.default_rng(9).random((6, 20))
    y = run_onnx(ort, tmp_path / "f64.onnx", x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, model.predict(x), rtol=1e-5, atol=1e-5)


def test_probabilities_appends_the_loss_softmax_or_sigmoid(ort, tmp_path):
    import onnx

    model = models.mlp(in_features=12, hidden=(8,), classes=5, seed=0)
    model.to_onnx(tmp_path / "proba.onnx", input_shape=(12,), probabilities=True)
    x = np.random.default_rng(10).normal(size=(6, 12)).astype(np.float32)
    scores = model.predict(x)
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run_onnx(ort, tmp_path / "proba.onnx", x), expected, rtol=RTOL, atol=1e-6)

    class RenamedCrossEntropy(fnn.SoftmaxCrossEntropy):
        pass

    try:
        renamed = fnn.Sequential([fnn.Dense(12, 5)], loss=RenamedCrossEntropy(), seed=0)
        renamed.to_onnx(tmp_path / "renamed.onnx", probabilities=True)
    finally:
        LOSSES.pop("RenamedCrossEntropy", None)
    assert [node.op_type for node in onnx.load(tmp_path / "renamed.onnx").graph.node] == ["Gemm", "Softmax"]
    multi_label = fnn.Sequential([fnn.Dense(12, 3)], loss=fnn.losses.SigmoidCrossEntropy(), seed=0)
    multi_label.to_onnx(tmp_path / "sigmoid.onnx", probabilities=True)
    expected = 1 / (1 + np.exp(-multi_label.predict(x).astype(np.float64)))
    np.testing.assert_allclose(run_onnx(ort, tmp_path / "sigmoid.onnx", x), expected, rtol=RTOL, atol=1e-6)
    regression = fnn.Sequential([fnn.Dense(3, 2)], loss=fnn.MeanSquaredError(), seed=0)
    with pytest.raises(ValueError, match="probabilities=True needs a classification loss .*MeanSquaredError"):
        regression.to_onnx(tmp_path / "mse.onnx", probabilities=True)


def test_a_layer_without_an_exporter_is_named_and_nothing_is_written(ort, tmp_path):
    class Doubler(Layer):
        def forward(self, x, train=True):
            return x * 2

    try:
        model = fnn.Sequential([fnn.Dense(4, 3), fnn.ReLU(), fnn.Dense(3, 3), Doubler()], seed=0)
        with pytest.raises(
            TypeError,
            match=r"to_onnx: cannot export layers\[3\] Doubler\(\): no ONNX exporter for Doubler; "
            r"known: AvgPool2D, BatchNorm, Concat, Conv2D, Dense, ",
        ):
            model.to_onnx(tmp_path / "doubler.onnx")
    finally:
        LAYERS.pop("Doubler", None)
    assert list(tmp_path.iterdir()) == []


def test_errors_name_what_to_do(ort, tmp_path, monkeypatch):
    with pytest.raises(
        ValueError, match=r"cannot tell the input shape from layers\[0\] Flatten\(\); pass input_shape="
    ):
        fnn.Sequential([fnn.Flatten(), fnn.Dense(784, 10)], seed=0).to_onnx(tmp_path / "mlp.onnx")
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(3, 32, 32\): Conv2D\(1->6"):
        models.lenet5(seed=0).to_onnx(tmp_path / "lenet.onnx", input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match=r"input_shape must be one sample's shape .*got \(0, 28\)"):
        models.lenet5(seed=0).to_onnx(tmp_path / "lenet.onnx", input_shape=(0, 28))
    unfitted = fnn.Sequential([Standardize(shape=(4,)), fnn.Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match=r"cannot export layers\[0\] Standardize.*not fitted; fit it"):
        unfitted.to_onnx(tmp_path / "unfitted.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[onnx\]'"):
        models.lenet5(seed=0).to_onnx(tmp_path / "lenet.onnx")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_round_trip(ort, tmp_path, capsys):
    model = models.simple_convnet(seed=11)
    x = np.random.default_rng(12).random((8, 1, 28, 28), dtype=np.float32)
    train_a_few_steps(model, x[:4], 10)
    model.save(tmp_path / "model.npz")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "model.npz"), str(out), "--input-shape", "1,28,28"]) == 0
    assert f"wrote {out}: input input (N, 1, 28, 28), output output (N, 10)" in capsys.readouterr().out
    np.testing.assert_allclose(
        run_onnx(ort, out, x), fnn.load(tmp_path / "model.npz").predict(x), rtol=RTOL, atol=ATOL
    )


def test_cli_export_errors_name_the_files(ort, tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    assert main(["export", str(missing), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"fastnn export: error: {missing}: no such file; expected a model saved by" in err
    not_a_model = tmp_path / "x.npy"
    np.save(not_a_model, np.zeros(3))
    assert main(["export", str(not_a_model), str(tmp_path / "m.onnx")]) == 2
    assert f"fastnn export: error: {not_a_model}: not a fastnn model file" in capsys.readouterr().err
    fnn.Sequential([fnn.Flatten(), fnn.Dense(4, 2)], seed=0).save(tmp_path / "flat.npz")
    with pytest.raises(SystemExit) as info:  # checked by argparse, before the model is read
        main(["export", str(tmp_path / "flat.npz"), str(tmp_path / "no" / "m.onnx")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"argument MODEL.onnx: cannot write {tmp_path / 'no' / 'm.onnx'}: the folder {tmp_path / 'no'}" in err
    )
    assert main(["export", str(tmp_path / "flat.npz"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    flat, onnx_path = tmp_path / "flat.npz", tmp_path / "m.onnx"
    assert f"cannot export {flat} to {onnx_path}: to_onnx: cannot tell the input shape" in err
    assert "(here: --input-shape, e.g. --input-shape 1,28,28)" in err
