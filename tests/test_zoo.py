"""The model zoo of ``fastnn bench --zoo``: every network trains, the zoo spans the space it
claims, its FLOP count follows the documented formula, and each PyTorch twin computes what
the fastnn network computes (so the benchmark compares equal work)."""

import copy

import numpy as np
import pytest

from fastnn.bench import peak, torch_models, zoo, zoo_bench
from fastnn.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from fastnn.optim import Adam

needs_torch = pytest.mark.skipif(not torch_models.available(), reason="PyTorch is not installed")


def small_batch(entry, n=4, seed=0):
    rng = np.random.default_rng(seed)
    n = min(n, entry.batch)
    return rng.random((n, *entry.input_shape), dtype=np.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("name", [e.name for e in zoo.ENTRIES if e.kind == "train"])
def test_every_zoo_network_takes_a_finite_training_step(name):
    entry = zoo.get(name)
    model = entry.build(seed=0)
    assert model.output_shape(entry.input_shape) == (zoo.CLASSES,)
    x, t = small_batch(entry)
    before = model.flat_params.copy()
    loss = model.train_step(x, t, Adam(1e-3))
    assert np.isfinite(loss)
    assert not np.array_equal(before, model.flat_params)


def _layers(entry):
    return entry.build(backend="numpy").layers


def _shapes(entry):
    """(layer, input shape) for each layer of the entry's network."""
    model = entry.build(backend="numpy")
    shape, found = tuple(entry.input_shape), []
    for layer in model.layers:
        found.append((layer, shape))
        shape = layer.output_shape(shape)
    return found


def test_the_zoo_spans_the_space_the_issue_names():
    train = [e for e in zoo.ENTRIES if e.kind == "train"]
    assert len(zoo.ENTRIES) >= 15 and len(train) >= 15
    assert {e.kind for e in zoo.ENTRIES} == {"train", "predict"}
    convs = [(layer, shape) for e in zoo.ENTRIES for layer, shape in _shapes(e) if isinstance(layer, Conv2D)]
    assert {layer.stride[0] for layer, _ in convs} >= {1, 2, 3}
    assert {layer.kernel_size[0] for layer, _ in convs} >= {1, 3, 5, 7}
    first_inputs = {e.input_shape[0] for e in zoo.ENTRIES if isinstance(_layers(e)[0], Conv2D)}
    assert first_inputs == {1, 3}
    widths = {layer.out_channels for layer, _ in convs}
    assert min(widths) <= 16 and max(widths) >= 256
    assert {e.input_shape[1:] for e in zoo.ENTRIES if len(e.input_shape) == 3} >= {
        (28, 28),
        (32, 32),
        (64, 64),
    }
    kinds = {type(layer) for e in zoo.ENTRIES for layer in _layers(e)}
    assert kinds >= {ReLU, Sigmoid, Tanh, LeakyReLU, MaxPool2D, AvgPool2D, BatchNorm, Dropout}
    after = set()
    for e in zoo.ENTRIES:
        layers = _layers(e)
        after |= {type(layers[i - 1]) for i, layer in enumerate(layers) if isinstance(layer, BatchNorm)}
    assert after == {Conv2D, Dense}
    batches = {e.batch for e in train}
    assert min(batches) == 1 and max(batches) == 512
    assert max(e.batch for e in zoo.ENTRIES if e.kind == "predict") >= 1000


def test_the_zoo_holds_the_classic_networks():
    for name in ("mlp", "simple_convnet", "deep_convnet"):
        assert zoo.get(name).batch == 100
    lenet = _layers(zoo.get("lenet5_classic"))
    assert {type(layer) for layer in lenet} >= {Tanh, AvgPool2D} and ReLU not in map(type, lenet)
    nielsen = zoo.get("nielsen_784_30_10")
    dense = [layer for layer in _layers(nielsen) if isinstance(layer, Dense)]
    assert nielsen.batch == 10 and [(d.in_features, d.out_features) for d in dense] == [(784, 30), (30, 10)]
    assert Sigmoid in map(type, _layers(nielsen))
    strided = [layer for layer in _layers(zoo.get("strided_5x5_3x3")) if isinstance(layer, Conv2D)]
    assert [(c.kernel_size[0], c.stride[0]) for c in strided] == [(5, 2), (3, 2)]
    vgg, vgg_bn = zoo.get("vgg_cifar"), zoo.get("vgg_cifar_bn")
    assert vgg.input_shape == vgg_bn.input_shape == (3, 32, 32) and vgg.batch == vgg_bn.batch == 64
    assert BatchNorm not in map(type, _layers(vgg)) and BatchNorm in map(type, _layers(vgg_bn))
    assert 1 in {
        layer.kernel_size[0] for layer in _layers(zoo.get("pointwise_1x1")) if isinstance(layer, Conv2D)
    }
    assert zoo.get("online_convnet").batch == 1


def test_unknown_zoo_name_is_refused():
    with pytest.raises(ValueError, match="no zoo network"):
        zoo.get("resnet9000")


def test_flops_follow_the_documented_formula():
    # nielsen 784-30-10 at batch 10: forward 2*10*(784*30 + 30*10); the first layer
    # computes no input gradient (2x), the second does (3x)
    entry = zoo.get("nielsen_784_30_10")
    assert zoo.step_flops(entry) == 2 * 10 * 784 * 30 * 2 + 2 * 10 * 30 * 10 * 3
    assert zoo.conv_share(entry) == 0.0
    # simple_convnet's conv: 30 maps of 24x24 from a 5x5 window over 1 channel
    macs = zoo.forward_macs(zoo.get("simple_convnet").build(), (1, 28, 28))
    assert macs[0] == ("conv", 30 * 1 * 25 * 24 * 24)
    predict = zoo.get("predict_simple_convnet")
    assert zoo.step_flops(predict) == 2 * 1000 * sum(m for _, m in macs)


def test_targets_follow_the_issue():
    assert zoo_bench.target("predict", 1.0, 0.9) == 0.4
    assert zoo_bench.target("train", 0.5, 0.9) == 0.5
    assert zoo_bench.target("train", 0.95, 0.6) == 0.5
    assert zoo_bench.target("train", 0.95, 0.75) == 0.7


@pytest.mark.parametrize("kind, share", [("predict", 1.0), ("train", 0.5), ("train", 0.95)])
def test_the_needed_fraction_is_the_least_at_which_a_row_meets_its_target(kind, share):
    for torch_fraction in np.linspace(0.05, 0.9, 35):
        need = zoo_bench.needed_fraction(kind, share, torch_fraction)
        assert torch_fraction / need <= zoo_bench.target(kind, share, need) + 1e-12
        less = need * 0.999
        assert torch_fraction / less > zoo_bench.target(kind, share, less)


def test_the_needed_fraction_of_a_convolution_heavy_step_takes_the_cheaper_bound():
    # PyTorch at 47 % of the peak: 0.5 needs 94 %, the 0.7 bound 70 % (its floor)
    assert zoo_bench.needed_fraction("train", 0.99, 0.47) == pytest.approx(0.70)
    assert zoo_bench.needed_fraction("train", 0.99, 0.55) == pytest.approx(0.55 / 0.7)
    assert zoo_bench.needed_fraction("train", 0.99, 0.2) == pytest.approx(0.4)
    assert zoo_bench.needed_fraction("train", 0.0, 0.55) == pytest.approx(1.1)
    assert zoo_bench.needed_fraction("predict", 1.0, 0.6) == pytest.approx(1.5)
    assert zoo_bench.needed_fraction("train", 1.0, None) is None


def test_the_table_shows_what_each_row_needs():
    row = {
        "network": "wide",
        "kind": "train",
        "batch": 8,
        "fastnn_ms": 2.0,
        "torch_ms": 2.0,
        "ratio": 1.0,
        "gflops": 60.0,
        "fraction_of_peak": 0.6,
        "conv_share": 0.0,
    }
    zoo_bench._set_targets(row)
    assert row["missed"] and row["needed_fraction_of_peak"] == pytest.approx(1.2)
    results = {"peak": _fake_peak(), "rows": [row], "summary": zoo_bench.summarize([row])}
    lines = zoo_bench.format_zoo({"zoo": results}).splitlines()
    header = next(line for line in lines if line.startswith("network"))
    (line,) = [line for line in lines if line.startswith("wide")]
    assert header.split()[-1] == "needs" and line.split()[-2:] == ["120%", "*"]


def test_summary_is_the_geometric_mean_with_worst_and_best():
    rows = [
        {"network": "a", "ratio": 0.25, "missed": False},
        {"network": "b", "ratio": 1.0, "missed": True},
        {"network": "c", "ratio": None},
    ]
    summary = zoo_bench.summarize(rows)
    assert summary["geomean"] == pytest.approx(0.5)
    assert summary["worst"]["network"] == "b" and summary["best"]["network"] == "a"
    assert summary["missed"] == 1 and summary["rows"] == 2


def test_zoo_run_without_torch_reports_gflops(monkeypatch):
    monkeypatch.setattr(peak, "measure", lambda threads=None, iters=0, repeats=0: 100.0)
    monkeypatch.setattr(peak, "report", lambda repeats=0: _fake_peak())
    results = zoo_bench.run(["nielsen_784_30_10"], repeats=2, warmup=1, with_torch=False)
    (row,) = results["rows"]
    assert row["ratio"] is None and row["fastnn_ms"] > 0
    assert row["gflops"] == pytest.approx(row["gflop"] / (row["fastnn_ms"] / 1e3))
    assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / 100.0)
    text = zoo_bench.format_zoo({"zoo": results})
    assert "nielsen_784_30_10" in text and "GFLOP/s" in text
    assert "\n\nratio = fastnn ms / torch ms" in text  # the footnote is set apart from the table


def _fake_peak():
    return {
        "measured_gflops": 100.0,
        "one_thread_gflops": 50.0,
        "threads": 2,
        "theoretical": peak.theoretical(2),
        "sgemm_gflops": 80.0,
    }


def test_peak_kernel_counts_two_flops_per_fma():
    rate = peak.measure(threads=1, iters=20_000, repeats=2)
    assert rate > 0.1
    theory = peak.theoretical(cores=2)
    assert theory["lanes"] in (4, 8, 16)
    if theory["ghz"]:
        assert theory["gflops"] == pytest.approx(2 * theory["ghz"] * 2 * theory["lanes"] * 2)


def test_peak_kernel_multiplies_at_the_full_vector_width():
    """LLVM tunes AVX-512 CPUs to 256-bit vectors: the chains must still use 512-bit FMAs,
    or the measured peak is half the machine's (and every fraction of it twice too high)."""
    peak.measure(threads=1, iters=10, repeats=1)
    asm = "\n".join(peak._kernel(peak.CHAINS * peak.simd_lanes()).inspect_asm().values())
    register = {16: "zmm", 8: "ymm", 4: "xmm"}[peak.simd_lanes()]
    fmas = [line for line in asm.splitlines() if "vfmadd" in line]
    assert fmas, "no fused multiply-add in the chains kernel"
    assert all(register in line for line in fmas), fmas[:4]


@needs_torch
@pytest.mark.parametrize("name", [e.name for e in zoo.ENTRIES])
def test_torch_twin_computes_what_the_fastnn_network_computes(name):
    import torch

    entry = zoo.get(name)
    model = entry.build(seed=0)
    twin = torch_models.build(name).eval()
    x, _ = small_batch(entry, n=3)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x, train=False), expected, rtol=1e-4, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("name", [e.name for e in zoo.ENTRIES if e.kind == "train" and "bn" in e.name])
def test_torch_twin_batchnorm_trains_alike(name):
    """Training mode: batch statistics and the running averages (momentum translated)."""
    import torch

    entry = zoo.get(name)
    model = entry.build(seed=0)
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.p = 0.0
    twin = torch_models.translate(model).train()
    x, _ = small_batch(entry, n=4)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x, train=True), expected, rtol=1e-3, atol=1e-4)
    norms = [
        (model.layers[i], shape)
        for i, (_, shape) in enumerate(_shapes(entry))
        if isinstance(model.layers[i], BatchNorm)
    ]
    twins = [m for m in twin if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert len(norms) == len(twins) > 0
    for (layer, shape), module in zip(norms, twins):
        assert module.momentum == pytest.approx(1 - layer.momentum) and module.eps == layer.eps
        np.testing.assert_allclose(layer.running_mean, module.running_mean.numpy(), rtol=1e-4, atol=1e-6)
        # PyTorch keeps the unbiased variance (M - 1 in the denominator) in its running
        # average, fastnn the biased one (M): the same statistic, rescaled
        m = x.shape[0] * int(np.prod(shape[1:]))
        moved = (module.running_var.numpy() - layer.momentum) * (m - 1) / m + layer.momentum
        np.testing.assert_allclose(layer.running_var, moved, rtol=1e-4, atol=1e-6)


@needs_torch
def test_book_networks_still_have_twins():
    for name in ("mlp", "simple_convnet", "deep_convnet", "lenet5"):
        assert isinstance(torch_models.build(name), torch_models._torch().nn.Sequential)


def test_the_asv_suite_times_every_zoo_network():
    from conftest import load_benchmark_script

    module = load_benchmark_script("bench_zoo")
    assert module.NAMES == tuple(zoo.ZOO)
    bench = module.Zoo()
    bench.setup("online_mlp")
    bench.time_call("online_mlp")


def test_peak_rss_of_a_workload_is_measured_in_a_fresh_process():
    from fastnn.bench import memory

    mib = memory.measure("fastnn", "online_mlp")
    assert mib is not None and 0 <= mib < 500
    with pytest.raises(ValueError, match="side"):
        memory.measure_here("jax", "online_mlp")


def test_flops_count_the_layers_inside_blocks():
    # ResNet-20 on 3x32x32 (He et al.): a 3x3 stem, 6 3x3 convs at 16 channels on 32x32, 6 at
    # 32 on 16x16 and 6 at 64 on 8x8 (the first of stages 2 and 3 from half the channels),
    # two 1x1 stride-2 projections, and Dense(64->10): about 41M multiply-adds (the paper's 41M)
    macs = zoo.forward_macs(zoo.get("resnet20").build(backend="numpy"), (3, 32, 32))
    stage = [
        6 * 16 * 16 * 9 * 32 * 32,
        (16 * 32 + 5 * 32 * 32) * 9 * 16 * 16 + 16 * 32 * 16 * 16,
        (32 * 64 + 5 * 64 * 64) * 9 * 8 * 8 + 32 * 64 * 8 * 8,
    ]
    assert len(macs) == 1 + 18 + 2 + 1 and [kind for kind, _ in macs].count("dense") == 1
    assert sum(m for _, m in macs) == 3 * 16 * 9 * 32 * 32 + sum(stage) + 64 * 10
    assert sum(m for _, m in macs) == pytest.approx(41e6, rel=0.01)
    # an Inception block: each branch's convolutions on the block's input size (14x14 here)
    inception = zoo.forward_macs(zoo.get("inception_mnist").build(backend="numpy"), (1, 28, 28))
    first_block = inception[1:7]
    assert [m for _, m in first_block] == [
        32 * 16 * 14 * 14,
        32 * 16 * 14 * 14,
        16 * 32 * 9 * 14 * 14,
        32 * 8 * 14 * 14,
        8 * 16 * 25 * 14 * 14,
        32 * 16 * 14 * 14,
    ]
    assert zoo.step_flops(zoo.get("predict_resnet20")) == 2 * 500 * sum(m for _, m in macs)


def test_the_zoo_holds_the_block_networks():
    from fastnn.layers import Concat, GlobalAvgPool2D, Residual

    resnet, predict = zoo.get("resnet20"), zoo.get("predict_resnet20")
    assert (resnet.kind, resnet.input_shape, resnet.batch) == ("train", (3, 32, 32), 64)
    assert (predict.kind, predict.input_shape, predict.batch) == ("predict", (3, 32, 32), 500)
    assert sum(isinstance(layer, Residual) for layer in _layers(resnet)) == 9
    inception = zoo.get("inception_mnist")
    assert (inception.kind, inception.input_shape, inception.batch) == ("train", (1, 28, 28), 100)
    layers = _layers(inception)
    assert any(isinstance(layer, Concat) for layer in layers) and isinstance(layers[-2], GlobalAvgPool2D)
    a, b = resnet.build(seed=1, backend="numpy"), resnet.build(seed=2, backend="numpy")
    assert not np.array_equal(a.flat_params, b.flat_params)  # the entry's seed decides the weights


def block_network(dtype="float64"):
    """A Residual with an identity and one with a projection, a Concat, global pooling."""
    import fastnn as fnn

    return fnn.Sequential(
        [
            Conv2D(2, 4, 3, pad=1),
            BatchNorm(4),
            ReLU(),
            fnn.Residual([Conv2D(4, 4, 3, pad=1), BatchNorm(4), ReLU(), Conv2D(4, 4, 3, pad=1)]),
            fnn.Residual(
                [Conv2D(4, 6, 3, stride=2, pad=1), BatchNorm(6)],
                shortcut=[Conv2D(4, 6, 1, stride=2), BatchNorm(6)],
            ),
            ReLU(),
            fnn.Concat([[Conv2D(6, 2, 1), ReLU()], [MaxPool2D(3, stride=1, pad=1), Conv2D(6, 3, 3, pad=1)]]),
            fnn.GlobalAvgPool2D(),
            Dense(5, 3),
        ],
        backend="numpy",
        dtype=dtype,
        seed=0,
    )


@needs_torch
def test_translated_blocks_give_the_same_forward_and_adam_step():
    """In float64, so that the conv biases before BatchNorm (true gradient 0) get a gradient
    of rounding size on both sides, which Adam's first step (about lr * sign(g)) does not
    turn into a difference of lr."""
    import torch

    model = block_network()
    model.flat_params[...] = model.flat_params.astype(np.float32)  # what translate copies
    twin = torch_models.translate(model).double().train()
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((5, 2, 6, 6)), rng.integers(0, 3, 5)
    output = twin(torch.from_numpy(x))
    forward = copy.deepcopy(model).forward(x, train=True)  # a copy: training moves the running stats
    np.testing.assert_allclose(forward, output.detach().numpy(), rtol=1e-10, atol=1e-12)
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-2, eps=1e-7)
    loss = torch.nn.functional.cross_entropy(output, torch.from_numpy(t))
    loss.backward()
    optimizer.step()
    before = model.flat_params.copy()
    fastnn_loss = model.train_step(x, t, Adam(1e-2, eps=1e-7))
    assert fastnn_loss == pytest.approx(loss.item(), rel=1e-10)
    assert np.abs(model.flat_params - before).max() > 5e-3  # the step moved the weights
    stepped = torch_models.translate(model).state_dict()  # float32 copies of fastnn's weights
    for name, value in twin.state_dict().items():
        if name.endswith(("running_var", "num_batches_tracked")):  # unbiased in PyTorch
            continue
        np.testing.assert_allclose(stepped[name].numpy(), value.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
