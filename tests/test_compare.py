"""fnn.compare and fastnn compare: one training step on numba against the NumPy reference,
judged per layer by the accuracy oracle (fastnn.oracle)."""

import json

import numpy as np
import pytest

import fastnn as fnn
from fastnn.cli import main
from fastnn.compare_result import FIRST_FAILURE_MARK
from fastnn.oracle import normwise_error


def small_mlp(dtype="float32"):
    """Flatten, Dense(64->32), ReLU, Dense(32->16), ReLU, Dense(16->10), for 1x8x8 inputs."""
    return fnn.models.mlp(in_features=64, hidden=(32, 16), seed=0, dtype=dtype, input_shape=(1, 8, 8))


def batch(n=8, shape=(1, 8, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, 10, n)


def two_convs():
    """Conv2D(1->4, 3x3), ReLU, Conv2D(4->6, 3x3), ReLU, Flatten, Dense(96->10), for 1x8x8 inputs."""
    layers = [
        fnn.Conv2D(1, 4, 3),
        fnn.ReLU(),
        fnn.Conv2D(4, 6, 3),
        fnn.ReLU(),
        fnn.Flatten(),
        fnn.Dense(96, 10),
    ]
    return fnn.Sequential(layers, seed=0, input_shape=(1, 8, 8))


def norm_and_dropout():
    """Both BatchNorm groups (Conv2D and Dense) and two Dropout layers, for 1x8x8 inputs. No
    seed: a copy rebuilt from the config draws other masks unless it takes the generators' states."""
    layers = [
        fnn.Conv2D(1, 4, 3, pad=1),
        fnn.BatchNorm(4),
        fnn.ReLU(),
        fnn.MaxPool2D(2),
        fnn.Flatten(),
        fnn.Dense(64, 16),
        fnn.BatchNorm(16),
        fnn.Tanh(),
        fnn.Dropout(0.5),
        fnn.Dense(16, 10),
        fnn.Dropout(0.3),
    ]
    model = fnn.Sequential(layers, seed=None, input_shape=(1, 8, 8))
    rng = np.random.default_rng(1)
    for layer in model.layers:  # generators and running statistics away from their start
        if isinstance(layer, fnn.Dropout):
            layer.rng.random(int(rng.integers(1, 100)))
        for array in layer.buffers.values():
            array[...] = rng.uniform(0.5, 1.5, array.shape)
    return model


def assert_every_row_passes(result):
    assert result.first_failure is None and result.ok
    for row in (*result.layers, *result.fused):
        assert row.ok, (row.label, row.failures)
        assert row.input_grad is not None
        assert all(np.isfinite(j.error) and j.error <= j.bound for j in row.judgements().values())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_clean_mlp_passes_every_layer_and_its_numbers_are_the_formulas(dtype):
    model = small_mlp(dtype)
    x, t = batch()
    result = fnn.compare(model, x, t, repeats=1)
    assert_every_row_passes(result)
    assert [row.name for row in result.layers] == [layer.describe() for layer in model.layers] + [
        "SoftmaxCrossEntropy()"
    ]
    assert [row.kind for row in result.layers][-1] == "loss"
    assert [(g.index, g.stop) for g in result.fused] == [(1, 3), (3, 5)]  # Dense + ReLU twice
    assert result.layers[1].fused_into == "DenseActivation 1-2" and result.layers[5].fused_into is None
    # The float32 reference's own error, from the formula in float64 on the same input and weights:
    dense = model.layers[1]
    x2 = x.reshape(len(x), -1)
    W, b = dense.params["W"], dense.params["b"]
    exact = x2.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    own = normwise_error(x2.astype(np.float32) @ W.astype(np.float32) + b.astype(np.float32), exact)
    assert result.layers[1].forward.reference_error == pytest.approx(own, rel=0.5, abs=1e-9)
    assert result.layers[1].forward.bound == pytest.approx(
        8
        * max(result.layers[1].forward.reference_error, 8 * np.finfo(np.float32).eps)
        * (np.finfo(np.float64).eps / np.finfo(np.float32).eps if dtype == "float64" else 1.0)
    )
    assert set(result.layers[1].weight_grads) == {"W", "b"}
    assert set(result.fused[0].weight_grads) == {"0:W", "0:b"}  # the group's layer 0, its Dense


def test_a_model_that_fuses_nothing_has_no_fused_rows():
    model = small_mlp()
    model.fuse_layers = False
    result = fnn.compare(model, *batch(), repeats=0)
    assert result.ok and result.fused == []
    assert all(row.fused_into is None for row in result.layers)


def test_simple_convnet_passes_every_layer_and_every_fused_group():
    model = fnn.models.simple_convnet(seed=0)
    x, t = batch(4, (1, 28, 28))
    result = fnn.compare(model, x, t, repeats=0)
    assert_every_row_passes(result)
    assert [g.name.split(":")[0] for g in result.fused] == ["ConvReLUMaxPool", "DenseActivation"]
    assert [row.fused_into for row in result.layers[:3]] == ["ConvReLUMaxPool 0-2"] * 3
    assert result.layers[0].times == {}  # repeats=0 times nothing


def test_dropout_masks_and_batchnorm_statistics_match_on_both_sides():
    model = norm_and_dropout()
    x, t = batch(8)
    result = fnn.compare(model, x, t, repeats=1)
    assert_every_row_passes(result)
    assert [result.layers[i].name for i in (8, 10)] == ["Dropout(p=0.5)", "Dropout(p=0.3)"]
    for dropout in (result.layers[8], result.layers[10]):  # one mask on all sides: rounding only
        for judgement in (dropout.forward, dropout.input_grad):
            assert judgement.error < 1e-6 and judgement.reference_error < 1e-6
    assert set(result.layers[1].buffers) == {"running_mean", "running_var"}
    for row in (result.layers[1], result.layers[6], *result.fused):  # the same statistics on all sides
        assert max(j.error for j in row.buffers.values()) < 1e-6
    assert [g.name.split(":")[0] for g in result.fused] == ["ConvBatchNorm", "DenseBatchNorm"]
    assert set(result.fused[0].buffers) == {"1:running_mean", "1:running_var"}


def test_the_model_is_left_exactly_as_it_was():
    model = norm_and_dropout()
    x, t = batch(8)
    model.loss(x, t)  # some gradients and running statistics in it already
    model.backward()

    def snapshot():
        generators = [layer.rng.bit_generator.state for layer in model.layers if hasattr(layer, "rng")]
        buffers = [a.copy() for layer in model.layers for a in layer.buffers.values()]
        return model.flat_params.copy(), model.flat_grads.copy(), buffers, generators

    before = snapshot()
    fnn.compare(model, x, t, repeats=1)
    after = snapshot()
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert all(np.array_equal(a, b) for a, b in zip(before[2], after[2]))
    assert before[3] == after[3] and len(before[3]) == 2


def perturb_affine_of(monkeypatch, width):
    """Make the numba backend's affine 1e-4 too large (relatively) for W of ``width`` outputs."""
    ops = fnn.get_ops("numba")
    real = ops.affine

    def affine(x, W, b, *args, **kwargs):
        y = real(x, W, b, *args, **kwargs)
        return y * y.dtype.type(1 + 1e-4) if W.shape[1] == width else y

    monkeypatch.setattr(ops, "affine", affine)


def test_an_injected_forward_error_is_pinned_on_its_layer(monkeypatch):
    perturb_affine_of(monkeypatch, 16)  # the second Dense, Dense(32->16)
    result = fnn.compare(small_mlp(), *batch(), repeats=0)
    first = result.first_failure
    assert (first.index, first.name, first.failures) == (3, "Dense(32->16)", ["forward"])
    assert all(row.ok for row in result.layers[:3])
    assert all(row.ok for row in result.layers[4:])  # after it, both sides get its output
    assert [g.ok for g in result.fused] == [True, False]
    table = result.table()
    assert any(line.startswith(FIRST_FAILURE_MARK) and "Dense(32->16)" in line for line in table.splitlines())
    assert (
        f"{FIRST_FAILURE_MARK} first difference beyond the bound: layers[3] Dense(32->16): forward error"
        in table
    )
    assert result.to_dict()["first_failure"] == {
        "index": 3,
        "name": "Dense(32->16)",
        "kind": "layer",
        "failed": ["forward"],
    }


def test_an_injected_weight_gradient_error_is_pinned_on_its_layer(monkeypatch):
    ops = fnn.get_ops("numba")
    real = ops.conv2d_backward

    def conv2d_backward(dy, x, W, *args, **kwargs):
        dx, dW, db = real(dy, x, W, *args, **kwargs)
        if W.shape[0] == 6:  # the second convolution
            dW *= dW.dtype.type(1 + 1e-4)
        return dx, dW, db

    monkeypatch.setattr(ops, "conv2d_backward", conv2d_backward)
    result = fnn.compare(two_convs(), *batch(), repeats=0)
    first = result.first_failure
    assert (first.index, first.failures) == (2, ["W"])
    assert result.layers[0].ok and result.layers[1].ok
    assert result.layers[2].forward.ok and result.layers[2].input_grad.ok
    assert not result.fused[1].ok and result.fused[0].ok


def test_to_dict_is_json_data_with_the_numbers():
    result = fnn.compare(small_mlp(), *batch(), repeats=2)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["ok"] is True and data["first_failure"] is None and data["batch_size"] == 8
    row = result["layers"][1]
    assert row["forward"]["error"] == result.layers[1].forward.error
    assert row["weight_grads"]["W"]["bound"] == result.layers[1].weight_grads["W"].bound
    assert set(row["times"]) == {"numba", "numpy"} and row["times"]["numba"]["forward"] > 0
    assert row["speedup"] == pytest.approx(result.layers[1].speedup)
    assert len(data["layers"]) == 7 and len(data["fused"]) == 2


def test_bad_arguments_are_named():
    model = small_mlp()
    x, t = batch()
    with pytest.raises(TypeError, match=r"fnn.compare: expected a model such as fnn.Sequential, got str"):
        fnn.compare("model.npz", x, t)
    with pytest.raises(ValueError, match=r"fnn.compare: x has 8 samples but t has 7"):
        fnn.compare(model, x, t[:7])
    with pytest.raises(ValueError, match=r"fnn.compare: expected inputs of shape \(N, 1, 8, 8\), got"):
        fnn.compare(model, x[:, :, :4], t)
    with pytest.raises(ValueError, match=r"fnn.compare: repeats must be a whole number >= 0"):
        fnn.compare(model, x, t, repeats=-1)


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "mlp.npz"
    small_mlp().save(path)
    return path


def test_the_command_prints_the_table_writes_json_and_exits_0(saved_mlp, tmp_path, capsys):
    out = tmp_path / "compare.json"
    argv = ["compare", str(saved_mlp), "--batch-size", "16", "--repeats", "1", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert (
        "on 16 samples of the digits training set" in text and "every difference is within its bound" in text
    )
    assert "Dense(64->32)" in text and "numba ms" in text
    assert json.loads(out.read_text())["ok"] is True


def test_the_command_exits_1_and_marks_the_first_layer_beyond_its_bound(saved_mlp, monkeypatch, capsys):
    perturb_affine_of(monkeypatch, 32)  # the first Dense
    assert main(["compare", str(saved_mlp), "--batch-size", "16", "--repeats", "0"]) == 1
    text = capsys.readouterr().out
    assert f"{FIRST_FAILURE_MARK} first difference beyond the bound: layers[1] Dense(64->32)" in text


def test_the_command_names_a_missing_model_and_a_dataset_it_does_not_fit(saved_mlp, tmp_path, capsys):
    assert main(["compare", str(tmp_path / "gone.npz")]) == 2
    assert f"{tmp_path / 'gone.npz'}: no such file" in capsys.readouterr().err
    model = fnn.models.simple_convnet(seed=0)
    model.save(tmp_path / "convnet.npz")
    assert main(["compare", str(tmp_path / "convnet.npz"), "--repeats", "0"]) == 2
    err = capsys.readouterr().err
    assert "expects inputs of shape (N, 1, 28, 28); the digits training set holds" in err
    assert "--dataset mnist, fashion-mnist" in err
