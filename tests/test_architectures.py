"""The classic architectures of fastnn.models: ResNet, VGG, AlexNet, a small GoogLeNet, LeNet-5.

Shapes on 28x28 and 32x32 with 1 and 3 channels, parameter counts against formulas written
here from the papers' descriptions (and PyTorch's count of the translated network), the
float64 gradient of tiny ResNet and Inception networks against central differences, the two
backends, files, ``fastnn train --model``, and (slow) the accuracy targets of issue 19.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest

import fastnn as fnn
from fastnn import models
from fastnn.cli import main
from fastnn.cli._common import build_model
from fastnn.gradcheck import numerical_gradient
from fastnn.layers.blocks import Block

ARCHITECTURES = {
    "resnet": models.resnet,
    "vgg": models.vgg,
    "alexnet": models.alexnet,
    "inception": models.inception,
}


def conv(c_in, c_out, k):
    return c_out * c_in * k * k + c_out  # fastnn's Conv2D always has a bias


def bn(c):
    return 2 * c


def dense(n_in, n_out):
    return n_in * n_out + n_out


def resnet_params(depth, width, c_in, classes):
    """He et al. section 4.2: stem, 3 stages of n blocks (2 conv+BN each), option-B projections."""
    n = (depth - 2) // 6
    total = conv(c_in, width, 3) + bn(width)
    channels = width
    for stage in range(3):
        out = width * 2**stage
        for _ in range(n):
            total += conv(channels, out, 3) + bn(out) + conv(out, out, 3) + bn(out)
            if channels != out:
                total += conv(channels, out, 1) + bn(out)
            channels = out
    return total + dense(channels, classes)


def vgg_params(c_in, size, classes):
    """32-32-pool-64-64-pool-128-128-pool, Dense 256, Dense classes."""
    widths = [c_in, 32, 32, 64, 64, 128, 128]
    features = sum(conv(a, b, 3) for a, b in zip(widths, widths[1:]))
    side = size // 8
    return features + dense(128 * side * side, 256) + dense(256, classes)


def alexnet_params(c_in, size, classes):
    widths = [64, 192, 256, 256, 192]
    features = conv(c_in, 64, 5) + sum(conv(a, b, 3) for a, b in zip(widths, widths[1:]))
    side = size
    for _ in range(4):  # the 5x5 stride-2 conv and three 3x3 s2 p1 pools: H -> ceil(H / 2)
        side = (side + 1) // 2
    return features + dense(192 * side * side, 512) + dense(512, 512) + dense(512, classes)


def inception_params(c_in, classes):
    """Stem conv+BN, then per block the six convs of GoogLeNet's table columns, each with BN."""

    def unit(a, b, k):
        return conv(a, b, k) + bn(b)

    total = unit(c_in, 32, 3)
    channels = 32
    for c1, r3, c3, r5, c5, pp in [
        (16, 16, 32, 8, 16, 16),
        (32, 32, 48, 8, 24, 16),
        (48, 24, 64, 8, 16, 16),
    ]:
        total += unit(channels, c1, 1) + unit(channels, r3, 1) + unit(r3, c3, 3)
        total += unit(channels, r5, 1) + unit(r5, c5, 5) + unit(channels, pp, 1)
        channels = c1 + c3 + c5 + pp
    return total + dense(channels, classes)


def expected_params(name, c_in, size, classes=10):
    return {
        "resnet": lambda: resnet_params(20, 16, c_in, classes),
        "vgg": lambda: vgg_params(c_in, size, classes),
        "alexnet": lambda: alexnet_params(c_in, size, classes),
        "inception": lambda: inception_params(c_in, classes),
    }[name]()


def leaves(layers):
    for layer in layers:
        if isinstance(layer, Block):
            for part in layer.parts().values():
                yield from leaves(part)
        else:
            yield layer


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("c_in,size", [(1, 28), (3, 28), (1, 32), (3, 32)])
def test_shapes_and_parameter_counts_on_28_and_32(name, c_in, size):
    model = ARCHITECTURES[name](in_channels=c_in, input_size=size, num_classes=7, seed=0, backend="numpy")
    assert model.input_shape == (c_in, size, size)
    assert model.output_shape((c_in, size, size)) == (7,)
    assert model.num_params == expected_params(name, c_in, size, classes=7)
    if (c_in, size) in ((1, 28), (3, 32)):  # a forward pass on both sizes (each costs a second)
        x = np.random.default_rng(0).random((1, c_in, size, size), dtype=np.float32)
        y = model.predict(x)
        assert y.shape == (1, 7) and np.isfinite(y).all()


def test_resnet20_is_the_papers_size():
    # He et al. table 6: ResNet-20 has 0.27M parameters (identity shortcuts with zero
    # padding; the two projections and the conv biases here add about 1 %)
    model = models.resnet(depth=20, seed=0, backend="numpy")
    assert model.num_params == pytest.approx(0.27e6, rel=0.02)
    for depth in (8, 32, 56):
        assert models.resnet(depth=depth, backend="numpy").num_params == resnet_params(depth, 16, 3, 10)


@pytest.mark.parametrize("depth", [20, 32])
def test_resnet_has_depth_weighted_layers_on_its_main_path(depth):
    model = models.resnet(depth=depth, backend="numpy")
    blocks = [layer for layer in model.layers if isinstance(layer, fnn.Residual)]
    assert len(blocks) == 3 * (depth - 2) // 6
    main_path = [layer for layer in model.layers if isinstance(layer, (fnn.Conv2D, fnn.Dense))]
    main_path += [layer for block in blocks for layer in block.body if isinstance(layer, fnn.Conv2D)]
    assert len(main_path) == depth
    projections = [block for block in blocks if block.shortcut]
    assert len(projections) == 2
    for block in projections:
        conv1x1 = block.shortcut[0]
        assert conv1x1.kernel_size == (1, 1) and conv1x1.stride == (2, 2)
        assert block.body[0].stride == (2, 2) and isinstance(block.shortcut[1], fnn.BatchNorm)
    for i, layer in enumerate(model.layers):
        if isinstance(layer, fnn.Residual):
            assert isinstance(model.layers[i + 1], fnn.ReLU)  # y = relu(body(x) + shortcut(x))
    assert isinstance(model.layers[-2], fnn.GlobalAvgPool2D)


@pytest.mark.parametrize("depth", [21, 7, 2, 20.0])
def test_resnet_refuses_a_depth_that_is_not_6n_plus_2(depth):
    valid = r"resnet: depth must be 6n \+ 2 .*20, 32, 44, 56, 110"
    with pytest.raises(ValueError, match=rf"{valid}, \.\.\.\), got {depth!r}"):
        models.resnet(depth=depth)


def test_builders_refuse_bad_arguments_by_name():
    with pytest.raises(ValueError, match="vgg: input_size 4 is too small .* at least 8x8"):
        models.vgg(input_size=4)
    with pytest.raises(ValueError, match="inception: in_channels must be a positive integer, got 0"):
        models.inception(in_channels=0)
    with pytest.raises(ValueError, match="resnet: width must be a positive integer, got -1"):
        models.resnet(width=-1)
    with pytest.raises(ValueError, match="alexnet: num_classes must be a positive integer"):
        models.alexnet(num_classes=0)
    with pytest.raises(ValueError, match=r"inception: each block's widths are .* 6 numbers; got \(1, 2\)"):
        models.inception(stages=(((1, 2),),))


def test_inception_blocks_have_googlenets_four_branches():
    model = models.inception(in_channels=1, input_size=28, backend="numpy")
    blocks = [layer for layer in model.layers if isinstance(layer, fnn.Concat)]
    assert len(blocks) == 3
    for block in blocks:
        kinds = [
            [
                (type(layer).__name__, getattr(layer, "kernel_size", getattr(layer, "size", None))[0])
                for layer in branch
                if isinstance(layer, (fnn.Conv2D, fnn.MaxPool2D))
            ]
            for branch in block.branches
        ]
        assert kinds == [
            [("Conv2D", 1)],
            [("Conv2D", 1), ("Conv2D", 3)],
            [("Conv2D", 1), ("Conv2D", 5)],
            [("MaxPool2D", 3), ("Conv2D", 1)],
        ]
        assert block.branches[3][0].stride == (1, 1) and block.branches[3][0].pad == (1, 1)


def test_vgg_and_alexnet_follow_their_papers_patterns():
    vgg = models.vgg(batchnorm=True, backend="numpy")
    convs = [layer for layer in vgg.layers if isinstance(layer, fnn.Conv2D)]
    assert {c.kernel_size for c in convs} == {(3, 3)} and len(convs) == 6
    assert sum(isinstance(layer, fnn.BatchNorm) for layer in vgg.layers) == 6
    pools = [layer for layer in vgg.layers if isinstance(layer, fnn.MaxPool2D)]
    assert [(p.size, p.stride) for p in pools] == [((2, 2), (2, 2))] * 3
    alex = models.alexnet(backend="numpy")
    first = alex.layers[0]
    assert first.kernel_size == (5, 5) and first.stride == (2, 2)
    pools = [layer for layer in alex.layers if isinstance(layer, fnn.MaxPool2D)]
    assert pools and all(p.size == (3, 3) and p.stride == (2, 2) for p in pools)  # overlapping
    assert sum(isinstance(layer, fnn.Dropout) for layer in alex.layers) == 2


def test_lenet5_classic_is_tanh_and_average_pooling_and_the_default_is_unchanged():
    classic = models.lenet5(classic=True, backend="numpy")
    kinds = {type(layer) for layer in classic.layers}
    assert {fnn.Tanh, fnn.AvgPool2D} <= kinds and not {fnn.ReLU, fnn.MaxPool2D} & kinds
    default = models.lenet5(backend="numpy")
    assert [layer.describe() for layer in default.layers] == [
        "Conv2D(1->6, 5x5, pad 2)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Conv2D(6->16, 5x5)",
        "ReLU()",
        "MaxPool2D(2x2)",
        "Flatten()",
        "Dense(400->120)",
        "ReLU()",
        "Dense(120->84)",
        "ReLU()",
        "Dense(84->10)",
    ]
    assert classic.num_params == default.num_params == 61_706


def test_every_models_entry_builds_for_mnist_by_default():
    for name, builder in models.MODELS.items():
        model = builder(seed=0, backend="numpy")
        assert model.output_shape((1, 28, 28)) == (10,), name
    assert models.MODELS["resnet20"](in_channels=3, input_size=32).input_shape == (3, 32, 32)


@pytest.mark.parametrize("torch_name", sorted(ARCHITECTURES))
def test_pytorch_counts_the_same_parameters(torch_name):
    torch = pytest.importorskip("torch")
    from fastnn.bench.torch_models import translate

    model = ARCHITECTURES[torch_name](seed=0)
    twin = translate(model)
    assert sum(p.numel() for p in twin.parameters()) == model.num_params
    x = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        expected = twin.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)


def tiny_resnet(backend="numpy", dtype="float64"):
    return models.resnet(depth=8, width=4, in_channels=1, input_size=12, num_classes=3, seed=0,
                         backend=backend, dtype=dtype)  # fmt: skip


def tiny_inception(backend="numpy", dtype="float64"):
    """A stem of 4 channels, max pooling, one Inception block of 2-4 channels a branch."""
    return models.inception(in_channels=1, input_size=12, num_classes=3, seed=0, backend=backend, dtype=dtype,
                            stages=(((4, 2, 4, 2, 4, 4),),), stem_width=4)  # fmt: skip


TINY = {"resnet": tiny_resnet, "inception": tiny_inception}


def tiny_data(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 12, 12)), rng.integers(0, 3, n)


@pytest.mark.parametrize("name", sorted(TINY))
def test_float64_gradients_match_central_differences(name):
    """Two random entries of every parameter array, and five of the input, against central
    differences (a full gradcheck of every entry would take minutes). A conv bias before
    BatchNorm has a true gradient of 0: both sides must then be 0 up to rounding."""
    model = TINY[name]()
    x, t = tiny_data(n=2)
    x = model.prepare_input(x)
    buffers = [(a, a.copy()) for layer in model.layers for a in layer.buffers.values()]

    def loss():
        return model.loss(x, t, train=True)

    loss()
    model.flat_grads[...] = 0
    dx = model.backward().copy()
    grads = model.flat_grads.copy()
    rng = np.random.default_rng(1)
    offset, checked = 0, 0
    for layer in model.layers:
        for array in layer.params.values():
            flat = array.reshape(-1)  # a view into the flat buffer
            for i in rng.choice(flat.size, size=min(2, flat.size), replace=False):
                numeric = numerical_gradient(loss, flat[i : i + 1], 1e-6)[0]
                analytic = grads[offset + i]
                assert abs(analytic - numeric) <= 1e-5 * (abs(analytic) + abs(numeric)) + 1e-8, (
                    layer.describe(),
                    analytic,
                    numeric,
                )
                checked += 1
            offset += flat.size
    assert offset == model.num_params and checked >= 50
    flat_x = x.reshape(-1)
    for i in rng.choice(flat_x.size, size=5, replace=False):
        numeric = numerical_gradient(loss, flat_x[i : i + 1], 1e-6)[0]
        assert abs(dx.reshape(-1)[i] - numeric) <= 1e-5 * (abs(numeric) + abs(dx.reshape(-1)[i])) + 1e-9
    for array, saved in buffers:
        array[...] = saved


@pytest.mark.parametrize("name", sorted(TINY))
def test_numba_and_numpy_agree_on_one_forward_and_backward(name):
    x, t = tiny_data(n=4, seed=2)
    results = []
    for backend in ("numpy", "numba"):
        model = TINY[name](backend)
        loss = model.loss(x, t, train=True)
        dx = model.backward()
        results.append((loss, dx, model.flat_grads.copy(), model.predict(x)))
    (loss_a, dx_a, g_a, y_a), (loss_b, dx_b, g_b, y_b) = results
    assert abs(loss_a - loss_b) < 1e-12
    np.testing.assert_allclose(dx_b, dx_a, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(g_b, g_a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(y_b, y_a, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("name", sorted(TINY))
def test_save_and_load_round_trip(name, tmp_path):
    model = TINY[name]("numba", "float32")
    x, t = tiny_data(n=6, seed=3)
    x = x.astype(np.float32)
    optimizer = fnn.optim.Adam(1e-2)
    for _ in range(2):
        model.train_step(x, t, optimizer)  # moves the weights and BatchNorm's running statistics
    path = tmp_path / f"{name}.npz"
    model.save(path)
    loaded = fnn.load(path)
    assert loaded.input_shape == model.input_shape == (1, 12, 12)
    assert [layer.describe() for layer in loaded.layers] == [layer.describe() for layer in model.layers]
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def cli_args(model, dataset="digits"):
    return argparse.Namespace(model=model, dataset=dataset, seed=0, backend="numpy")


@pytest.mark.parametrize("name", ["resnet20", "vgg", "alexnet", "inception"])
def test_build_model_follows_the_datas_shape(name):
    for shape in [(1, 28, 28), (3, 32, 32), (1, 8, 8)]:
        model = build_model(cli_args(name, "any"), np.zeros((2, *shape), np.float32))
        assert model.input_shape == shape and model.output_shape(shape) == (10,)


def test_build_model_names_a_dataset_the_network_cannot_take():
    with pytest.raises(ValueError, match=r"resnet20 takes square images \(C, H, H\); flat has samples of"):
        build_model(cli_args("resnet20", "flat"), np.zeros((2, 64), np.float32))
    with pytest.raises(ValueError, match=r"lenet5_classic does not fit digits images of shape \(1, 8, 8\)"):
        build_model(cli_args("lenet5_classic"), np.zeros((2, 1, 8, 8), np.float32))


def test_fastnn_train_offers_the_architectures_and_trains_resnet20_on_8x8_digits(capsys, tmp_path):
    # one step on a tenth of the 8x8 digits (the rest is the validation split), to stay fast
    path = tmp_path / "resnet20.npz"
    argv = ["train", "--model", "resnet20", "--dataset", "digits", "--epochs", "1", "--quiet"]
    assert main(argv + ["--validation-split", "0.9", "--batch-size", "200", "--save", str(path)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    model = fnn.load(path)
    assert model.input_shape == (1, 8, 8)
    assert sum(isinstance(layer, fnn.Residual) for layer in model.layers) == 9
    with pytest.raises(SystemExit):
        main(["train", "--model", "no_such_net"])
    err = capsys.readouterr().err
    for name in ("resnet20", "vgg", "alexnet", "inception", "lenet5_classic"):
        assert name in err


# The accuracy targets of issue 19: half an hour or more each on a 2-core machine, too long
# for CI's slow run, so they carry their own marker: python -m pytest -m long.


INCEPTION_EPOCHS = 6


@pytest.mark.long
def test_inception_reaches_99_2_percent_on_mnist():
    """Recipe: inception(in_channels=1, input_size=28), Adam 1e-3 cosine-decayed to 0 over 6
    epochs at batch 100, no augmentation.

    Measured: 99.29 % (seed 0). The epochs alone on the 2-core machine took about 2 minutes
    each (116 s and 125 s for the last two); 4 epochs of the same recipe had given 99.17 %."""
    (x, t), (x_test, t_test) = fnn.datasets.load_mnist("mnist")
    model = models.inception(in_channels=1, input_size=28, seed=0)
    model.fit(
        x,
        t,
        epochs=INCEPTION_EPOCHS,
        batch_size=100,
        optimizer=fnn.optim.Adam(1e-3),
        callbacks=[fnn.schedules.CosineDecay(INCEPTION_EPOCHS)],
        verbose=2,
    )
    accuracy = model.evaluate(x_test, t_test)["accuracy"]
    print(f"inception on MNIST: {accuracy:.4f}")
    assert accuracy >= 0.992, accuracy


@pytest.mark.long
def test_resnet20_reaches_93_percent_on_fashion_mnist():
    """The recipe of :mod:`benchmarks.resnet_recipe`: resnet(depth=20, in_channels=1,
    input_size=28); SGD with momentum 0.9 and weight decay 5e-4, lr 0.1 cosine-decayed over
    30 epochs at batch 128; random 28x28 crops of the 2-pixel-padded images and horizontal
    flips.

    Measured with seed 0 on the 2-core development machine: 94.30 % in 4,584 s (76 minutes;
    about 125 s an epoch when nothing else ran, up to 366 s while the machine was shared)."""
    from benchmarks.resnet_recipe import train_fastnn

    data = fnn.datasets.load_mnist("fashion-mnist")
    started = time.perf_counter()
    accuracy = train_fastnn(data)
    print(f"resnet20 on Fashion-MNIST: {accuracy:.4f} in {time.perf_counter() - started:.0f} s")
    assert accuracy >= 0.930, accuracy
