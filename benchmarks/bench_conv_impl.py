"""Direct vs im2col convolution on the book networks' layer shapes; the algorithms on strided ones.

    python benchmarks/bench_conv_impl.py [--batch 100] [--repeat 7] [--dtype float32]
    python benchmarks/bench_conv_impl.py --strided [--extra]
    python benchmarks/bench_conv_impl.py --narrow
    python benchmarks/bench_conv_impl.py --pointwise
    python benchmarks/bench_conv_impl.py --rows

``--strided`` times impl="im2col", impl="polyphase" (the strided convolution as the
stride-1 direct kernel on the input's polyphase split) and impl="direct" (the channel
tiles, :mod:`fastnn.kernels.conv.channel_tiles`) on the strided layers of the zoo's
networks, each at its own batch: forward with a fused ReLU, backward through it, and
backward for the weights alone (``input_grad=False``, a first layer), each over
im2col's time; ``--extra`` adds 14 more strided layers (STRIDED_EXTRA). The next
columns time dx alone (``weight_grad=False``), im2col's and direct's, and a split full
backward pass (polyphase's weights alone plus im2col's dx alone) over im2col's full
pass, without the fused ReLU. "auto"'s strided rule is read off this table (see
``fastnn.backends.numba_conv._choose``), and the last two columns give its choice
forward and for a full backward pass ("W+X": dW by W, dx by X; "split":
polyphase+im2col).

``--narrow`` times the two direct forward kernels, pixel tiles and channel tiles, on
stride-1 layers whose output rows are narrower than a vector, and two whose rows are not
(NARROW), and names the one conv2d runs (``_channel_tiles_pay``).

``--rows`` times the stride-1 input gradient's two per-image kernels, the forward tiles
over the full correlation (``direct._conv_planes``) and the rows one vector wide
(:mod:`fastnn.kernels.conv.row_correlate`), on layers whose input rows are 9 to 16
columns wide (ROWS), one image after another on one thread, and names the one the
backward pass runs (``row_correlate.rows_pay``).

``--pointwise`` times the 1x1 kernels (one BLAS product per image,
:mod:`fastnn.kernels.conv.pointwise`) against the direct kernels on 1x1 stride-1 layers
(POINTWISE), forward and backward, and names the one "auto" runs (``_pointwise_pays``).

Times conv2d forward and conv2d_backward of the numba backend for impl="direct"
and impl="im2col" (median of ``--repeat`` runs after a warm-up call that also
compiles), prints one row per layer and the impl that ``impl="auto"`` picks.
The rule behind "auto" at stride 1 (fastnn.backends.numba_conv._choose: direct) is
read off this table; the "auto" column shows the forward/backward choice. The runs are
sequential: on a shared machine, compare impls only from runs taken while it is quiet.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from fastnn.backends import get_ops, numba_conv
from fastnn.kernels import conv as conv_kernels
from fastnn.kernels import tuning
from fastnn.kernels._simd import VECTOR_BYTES
from fastnn.kernels.activations import ACTIVATION_CODES
from fastnn.kernels.conv.direct import (
    HALF_TILES,
    OUT_BLOCK,
    RUN_ALIGN,
    _conv_planes,
    _pack_weights,
    _run,
    _tap_offsets,
)
from fastnn.kernels.conv.row_correlate import correlate_rows, rows_pay

# name, C, F, H, W, K, pad  (stride 1 everywhere)
LAYERS = [
    ("simple_convnet conv1", 1, 30, 28, 28, 5, 0),
    ("deep_convnet conv1", 1, 16, 28, 28, 3, 1),
    ("deep_convnet conv2", 16, 16, 28, 28, 3, 1),
    ("deep_convnet conv3", 16, 32, 14, 14, 3, 1),
    ("deep_convnet conv4", 32, 32, 14, 14, 3, 2),
    ("deep_convnet conv5 7x7", 32, 64, 7, 7, 3, 1),
    ("deep_convnet conv6 7x7", 64, 64, 7, 7, 3, 1),
    ("deep_convnet conv5 8x8", 32, 64, 8, 8, 3, 1),
    ("deep_convnet conv6 8x8", 64, 64, 8, 8, 3, 1),
]

# shapes outside the book networks that probe the rule's edges (--extra)
EXTRA = [
    ("cifar-like 3->32 5x5", 3, 32, 32, 32, 5, 2),
    ("wide 64->64 at 28x28", 64, 64, 28, 28, 3, 1),
    ("32->32 at 16x16", 32, 32, 16, 16, 3, 1),
    ("16->16 at 12x12", 16, 16, 12, 12, 3, 1),
    ("resnet20 stage 1 16->16", 16, 16, 32, 32, 3, 1),
    ("13->13 at 28x28", 13, 13, 28, 28, 3, 1),
    ("1->8 3x3 at 8x8", 1, 8, 8, 8, 3, 1),
]


# name, batch, C, F, H (= W), K, stride, pad
STRIDED = [
    ("resnet20 stage 2 entry", 64, 16, 32, 32, 3, 2, 1),
    ("resnet20 stage 3 entry", 64, 32, 64, 16, 3, 2, 1),
    ("resnet20 1x1 projection", 64, 16, 32, 32, 1, 2, 0),
    ("resnet20 predict entry", 500, 16, 32, 32, 3, 2, 1),
    ("5x5 s2 on MNIST", 100, 1, 32, 28, 5, 2, 2),
    ("3x3 s2 32->64 at 14x14", 100, 32, 64, 14, 3, 2, 1),
    ("7x7 s2 stem at 64x64", 32, 3, 64, 64, 7, 2, 3),
    ("3x3 s3 at 30x30", 64, 16, 32, 30, 3, 3, 0),
    ("alexnet 5x5 s2 stem", 64, 3, 64, 32, 5, 2, 2),
]

# strided shapes outside the zoo's first nine, spanning channels, output plane sizes and
# strides, that probe where the forward choice should change (--strided --extra)
STRIDED_EXTRA = [
    ("7x7 s3 stem 3->32 at 64x64", 32, 3, 32, 64, 7, 3, 3),
    ("stem_7x7_bn 64->128 s2", 16, 64, 128, 16, 3, 2, 1),
    ("3x3 s2 16->32 at 14x14", 100, 16, 32, 14, 3, 2, 1),
    ("3x3 s2 32->64 at 32x32", 64, 32, 64, 32, 3, 2, 1),
    ("3x3 s2 64->128 at 32x32", 32, 64, 128, 32, 3, 2, 1),
    ("3x3 s2 64->128 at 16x16", 64, 64, 128, 16, 3, 2, 1),
    ("3x3 s2 128->256 at 16x16", 32, 128, 256, 16, 3, 2, 1),
    ("1x1 s2 32->64 at 16x16", 64, 32, 64, 16, 1, 2, 0),
    ("1x1 s2 64->128 at 32x32", 32, 64, 128, 32, 1, 2, 0),
    ("5x5 s2 16->32 at 28x28", 100, 16, 32, 28, 5, 2, 2),
    ("3x3 s3 16->32 at 48x48", 64, 16, 32, 48, 3, 3, 0),
    ("3x3 s3 32->64 at 30x30", 64, 32, 64, 30, 3, 3, 0),
    ("3x3 s2 3->16 at 64x64", 32, 3, 16, 64, 3, 2, 1),
    ("3x3 s2 128->256 at 32x32", 16, 128, 256, 32, 3, 2, 1),
]


def strided_table(repeat: int, dtype, layers) -> None:
    """Print im2col's and polyphase's forward and backward times on strided ``layers``,
    and the forward algorithm "auto" picks for each."""
    ops = get_ops("numba")
    rng = np.random.default_rng(0)
    print(f"{dtype}, median of {repeat} runs, milliseconds; ratio = polyphase (or direct) / im2col")
    columns = ("i2c fwd", "pp fwd", "ratio", "dir fwd", "ratio")
    columns += (
        "i2c bwd",
        "pp bwd",
        "ratio",
        "dir bwd",
        "ratio",
        "i2c dW",
        "pp dW",
        "ratio",
        "dir dW",
        "ratio",
    )
    columns += ("i2c dx", "dir dx", "ratio", "split", "ratio", "auto fwd", "auto bwd")
    header = f"{'layer':26s} " + " ".join(f"{c:>8s}" for c in columns)
    print(header)
    print("-" * len(header))
    for name, N, C, F, H, K, stride, pad in layers:
        x = rng.standard_normal((N, C, H, H)).astype(dtype)
        Wt = (0.1 * rng.standard_normal((F, C, K, K))).astype(dtype)
        b = np.zeros(F, dtype)
        y = ops.conv2d(x, Wt, b, stride, pad, relu=True)
        dy = rng.standard_normal(y.shape).astype(dtype)
        times = {}
        for impl in ("im2col", "polyphase", "direct"):
            times[impl, "fwd"] = median_ms(lambda: ops.conv2d(x, Wt, b, stride, pad, impl, relu=True), repeat)
            times[impl, "bwd"] = median_ms(
                lambda: ops.conv2d_backward(dy, x, Wt, stride, pad, impl, relu_out=y), repeat
            )
            weights_only = dict(relu_out=y, input_grad=False)
            times[impl, "dW"] = median_ms(
                lambda: ops.conv2d_backward(dy, x, Wt, stride, pad, impl, **weights_only), repeat
            )
        # the split, and im2col's full pass it is measured against, without a fused ReLU
        full = median_ms(lambda: ops.conv2d_backward(dy, x, Wt, stride, pad, "im2col"), repeat)
        dx_alone = median_ms(
            lambda: ops.conv2d_backward(dy, x, Wt, stride, pad, "im2col", weight_grad=False), repeat
        )
        weights_alone = median_ms(
            lambda: ops.conv2d_backward(dy, x, Wt, stride, pad, "polyphase", input_grad=False), repeat
        )
        split = weights_alone + dx_alone
        direct_dx = median_ms(
            lambda: ops.conv2d_backward(dy, x, Wt, stride, pad, "direct", weight_grad=False), repeat
        )
        cells = []
        for part in ("fwd", "bwd", "dW"):
            old, new = times["im2col", part], times["polyphase", part]
            cells.append(f"{old:8.2f} {new:8.2f} {new / old:8.2f}")
            direct = times["direct", part]
            cells.append(f"{direct:8.2f} {direct / old:8.2f}")
        cells.append(f"{dx_alone:8.2f} {direct_dx:8.2f} {direct_dx / dx_alone:8.2f}")
        cells.append(f"{split:8.2f} {split / full:8.2f}")
        geo = numba_conv.conv_geometry("bench", x, Wt, stride, pad)
        cells.append(f"{numba_conv._choose(geo, F, forward=True):>8s} {numba_conv._choose(geo, F):>8s}")
        print(f"{name:26s} {' '.join(cells)}")


# stride-1 layers whose output rows are narrower than a vector (16 float32 pixels), then two wider:
# name, batch, C, F, H (= W), K, pad (--narrow)
NARROW = [
    ("deep_convnet conv3 at 14x14", 100, 16, 32, 14, 3, 1),
    ("deep_convnet conv5 at 7x7", 100, 32, 64, 7, 3, 1),
    ("deep_convnet conv6 at 7x7", 100, 64, 64, 7, 3, 1),
    ("resnet20 stage 3 at 8x8", 64, 64, 64, 8, 3, 1),
    ("32->64 at 12x12", 64, 32, 64, 12, 3, 1),
    ("inception 1x1 at 14x14", 100, 64, 32, 14, 1, 0),  # 1x1: no junk columns, left to the pixel tiles
    ("5x5 16->32 at 14x14", 100, 16, 32, 14, 5, 2),
    ("128->128 at 4x4", 64, 128, 128, 4, 3, 1),
    # rows of a vector and more, past the rule's edge: left to the pixel tiles
    ("resnet20 stage 2 at 16x16", 64, 32, 32, 16, 3, 1),
    ("32->64 at 28x28", 64, 32, 64, 28, 3, 1),
]


def narrow_table(repeat: int, dtype) -> None:
    """Print the two direct forward kernels' times on NARROW: the pixel tiles
    (``direct_conv_s1``, the stride-1 kernel for rows of at least a vector) and the
    channel tiles (``channel_tiled_forward``, which ``impl="direct"`` runs on these)."""
    rng = np.random.default_rng(0)
    print(f"{dtype}, forward with a fused ReLU, median of {repeat} runs, milliseconds")
    header = f"{'layer':28s} {'pixel':>8s} {'channel':>8s} {'ratio':>8s} {'op':>8s}"
    print(header)
    print("-" * len(header))
    for name, N, C, F, H, K, pad in NARROW:
        x = rng.standard_normal((N, C, H, H)).astype(dtype)
        Wt = (0.1 * rng.standard_normal((F, C, K, K))).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        OH = H + 2 * pad - K + 1
        y = np.empty((N, F, OH, OH), dtype)
        work = y.size * C * K * K
        code = ACTIVATION_CODES["relu"]
        none = np.empty((0, 0, 0, 0), dtype)

        def pixel():
            numba_conv._direct_s1(work, x, Wt, b, pad, pad, code, 0.0, None, y, numba_conv._ALL_TAPS)

        def channel():
            rows = conv_kernels.pack_weight_rows(Wt)
            conv_kernels.channel_tiled_forward(
                work, x, rows, b, K, K, 1, 1, pad, pad, code, dtype.type(0), none, y
            )

        times = [median_ms(pixel, repeat), median_ms(channel, repeat)]
        geo = numba_conv.conv_geometry("bench", x, Wt, 1, pad)
        op = "channel" if numba_conv._channel_tiles_pay(geo, F, dtype) else "pixel"
        print(f"{name:28s} {times[0]:8.2f} {times[1]:8.2f} {times[1] / times[0]:8.2f} {op:>8s}")


# stride-1 layers whose input rows are 9 to 16 columns wide: name, batch, C, F, H (= W), K, pad (--rows)
ROWS = [
    ("LeNet-5 6->16 5x5 at 14x14", 100, 6, 16, 14, 5, 0),
    ("inception 8->16 5x5 at 14x14", 100, 8, 16, 14, 5, 2),
    ("inception 8->24 5x5 at 14x14", 100, 8, 24, 14, 5, 2),
    ("deep_convnet conv3 16->32 at 14x14", 100, 16, 32, 14, 3, 1),
    ("inception 16->32 3x3 at 14x14", 100, 16, 32, 14, 3, 1),
    ("24->48 at 14x14", 100, 24, 48, 14, 3, 1),
    ("32->32 at 14x14", 100, 32, 32, 14, 3, 1),
    ("64->64 at 14x14", 100, 64, 64, 14, 3, 1),
    ("16->16 at 16x16", 64, 16, 16, 16, 3, 1),
    ("16->32 5x5 at 12x12", 100, 16, 32, 12, 5, 2),
    ("12->20 at 11x11", 100, 12, 20, 11, 3, 0),
    ("8->16 at 10x10", 100, 8, 16, 10, 3, 1),
]


@numba.njit(cache=False)
def _planes_per_image(dyn, Wf, offs, packed, zeros, acc, dx):
    for n in range(dx.shape[0]):
        _conv_planes(dyn[n], Wf, offs, packed, zeros, False, acc, dx[n])


@numba.njit(cache=False)
def _rows_per_image(dyn, Hf, Wf, KH, KW, TP, OH, packed, out, dx):
    for n in range(dx.shape[0]):
        correlate_rows(dyn[n, : dyn.shape[1] - RUN_ALIGN], Hf, Wf, KH, KW, TP, OH, packed, out, dx[n])


def rows_table(repeat: int, dtype) -> None:
    """Print the stride-1 input gradient's two per-image kernels' times on ROWS, taking
    turns: the forward tiles over the full correlation and the rows one vector wide."""
    rng = np.random.default_rng(0)
    L = VECTOR_BYTES // dtype.itemsize
    print(f"{dtype}, input gradient alone, one thread, median of {repeat} runs taking turns, milliseconds")
    header = f"{'layer':36s} {'tiles':>8s} {'rows':>8s} {'ratio':>8s} {'runs':>8s}"
    print(header)
    print("-" * len(header))
    for name, N, C, F, H, K, pad in ROWS:
        OH = H + 2 * pad - K + 1
        Hf, Wf = H + K - 1, H + K - 1
        dyn = np.zeros((N, F * Hf * Wf + RUN_ALIGN), dtype)
        planes = dyn[:, : F * Hf * Wf].reshape(N, F, Hf, Wf)
        top = K - 1 - pad
        planes[:, :, top : top + OH, top : top + OH] = rng.standard_normal((N, F, OH, OH))
        Wt = rng.standard_normal((C, F, K, K)).astype(dtype)
        packed, zeros = _pack_weights(Wt, np.zeros(C, dtype))
        offs = _tap_offsets(F, K, K, Hf, Wf)
        acc = np.empty(max(OUT_BLOCK * _run(H, H, Wf) if H < L else 0, 16 * L), dtype)
        dx = np.empty((N, C, H, H), dtype)

        def tiles():
            _planes_per_image(dyn, Wf, offs, packed, zeros, acc, dx)

        def rows():
            _rows_per_image(dyn, Hf, Wf, K, K, top, OH, packed, acc, dx)

        a, b = taking_turns(tiles, rows, repeat)
        pays = (
            rows_pay(C, K, K, H, L, HALF_TILES, tuning.ROW_CORRELATE_CHANNELS)
            and C > tuning.SCATTER_MAX_CHANNELS
        )
        print(f"{name:36s} {a:8.2f} {b:8.2f} {b / a:8.2f} {'rows' if pays else 'tiles':>8s}")


# 1x1 stride-1 layers without padding: name, batch, C, F, H (= W) (--pointwise)
POINTWISE = [
    ("inception 1x1 32->16 at 14x14", 100, 32, 16, 14),
    ("inception 1x1 32->8 at 14x14", 100, 32, 8, 14),
    ("inception 1x1 80->32 at 14x14", 100, 80, 32, 14),
    ("inception 1x1 80->8 at 14x14", 100, 80, 8, 14),
    ("inception 1x1 120->48 at 7x7", 100, 120, 48, 7),
    ("inception 1x1 120->8 at 7x7", 100, 120, 8, 7),
    ("1x1 32->16 at 28x28", 100, 32, 16, 28),
    ("1x1 16->16 at 32x32", 64, 16, 16, 32),
    ("1x1 256->64 at 8x8", 64, 256, 64, 8),
    ("1x1 64->256 at 8x8", 64, 64, 256, 8),
    ("pointwise_1x1 64->256 at 16x16", 32, 64, 256, 16),
    ("pointwise_1x1 256->64 at 16x16", 32, 256, 64, 16),
    ("1x1 64->64 at 32x32", 32, 64, 64, 32),
    ("1x1 16->64 at 32x32", 64, 16, 64, 32),
    ("1x1 128->128 at 16x16", 16, 128, 128, 16),
    ("1x1 16->64 at 28x28", 100, 16, 64, 28),
]


def pointwise_table(repeat: int, dtype) -> None:
    """Print the direct kernels' times (impl="direct") over the 1x1 kernels' (one BLAS product
    per image, :mod:`fastnn.kernels.conv.pointwise`) on POINTWISE, forward with a fused ReLU
    and backward through it, the two taking turns call by call; and the one "auto" runs
    (``_pointwise_pays``)."""
    rng = np.random.default_rng(0)
    ops = get_ops("numba")
    print(f"{dtype}, median of {repeat} runs each, taking turns; ratio = direct / 1x1 (above 1: 1x1 faster)")
    header = f"{'layer':32s} {'1x1 fwd':>8s} {'ratio':>6s} {'1x1 bwd':>8s} {'ratio':>6s} {'auto f/b':>11s}"
    print(header)
    print("-" * len(header))
    for name, N, C, F, H in POINTWISE:
        x = rng.standard_normal((N, C, H, H)).astype(dtype)
        Wt = (0.1 * rng.standard_normal((F, C, 1, 1))).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        y = ops.conv2d(x, Wt, b, relu=True)
        dy = rng.standard_normal(y.shape).astype(dtype)

        def forward(impl):
            return lambda: ops.conv2d(x, Wt, b, relu=True, impl=impl)

        def backward(impl):
            return lambda: ops.conv2d_backward(dy, x, Wt, relu_out=y, impl=impl)

        geo = numba_conv.conv_geometry("bench", x, Wt, 1, 0)
        cells, choice = [], []
        for make, is_forward in ((forward, True), (backward, False)):
            pays = numba_conv._pointwise_pays(geo, F, dtype, forward=is_forward)
            # "auto" runs the 1x1 kernels only where the rule says so: forced on elsewhere
            pointwise = make("auto") if pays else _pointwise_call(make)
            times = taking_turns(pointwise, make("direct"), repeat)
            cells += [f"{times[0]:8.2f}", f"{times[1] / times[0]:6.2f}"]
            choice.append("1x1" if pays else "direct")
        print(f"{name:32s} {' '.join(cells)} {'/'.join(choice):>11s}")


def _pointwise_call(make):
    """The 1x1 kernels on a layer "auto" leaves to the direct ones: the rule forced on."""

    def run():
        saved = numba_conv._pointwise_pays
        numba_conv._pointwise_pays = lambda g, F, dtype, forward=True: True
        try:
            make("auto")()
        finally:
            numba_conv._pointwise_pays = saved

    return run


def taking_turns(a, b, repeat: int) -> tuple[float, float]:
    """Median ms of ``a`` and of ``b``, called alternately ``repeat`` times each after a warm-up."""
    a(), b()
    times_a, times_b = [], []
    for _ in range(repeat):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times_a)), 1e3 * float(np.median(times_b))


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--extra", action="store_true", help="also time the EXTRA shapes (with --strided: STRIDED_EXTRA)"
    )
    parser.add_argument("--strided", action="store_true", help="polyphase vs im2col on strided layers")
    parser.add_argument(
        "--narrow", action="store_true", help="pixel vs channel tiles on stride-1 layers with narrow rows"
    )
    parser.add_argument(
        "--pointwise", action="store_true", help="1x1 kernels (BLAS per image) vs direct on 1x1 layers"
    )
    parser.add_argument(
        "--rows", action="store_true", help="stride-1 dx: forward tiles vs rows one vector wide"
    )
    args = parser.parse_args(argv)
    if args.rows:
        rows_table(args.repeat, np.dtype(args.dtype))
        return
    if args.pointwise:
        pointwise_table(args.repeat, np.dtype(args.dtype))
        return
    if args.narrow:
        narrow_table(args.repeat, np.dtype(args.dtype))
        return
    if args.strided:
        strided_table(args.repeat, np.dtype(args.dtype), STRIDED + (STRIDED_EXTRA if args.extra else []))
        return

    ops = get_ops("numba")
    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    header = (
        f"{'layer':24s} {'C->F':>7s} {'HxW':>6s} {'k/p':>4s} {'FKK':>4s} "
        f"{'dir fwd':>8s} {'dir bwd':>8s} {'i2c fwd':>8s} {'i2c bwd':>8s} "
        f"{'dir tot':>8s} {'i2c tot':>8s} {'best':>6s} {'auto':>6s}"
    )
    print(f"batch {args.batch}, {dtype}, median of {args.repeat} runs, milliseconds")
    print(header)
    print("-" * len(header))
    for name, C, F, H, W, K, pad in LAYERS + (EXTRA if args.extra else []):
        x = rng.standard_normal((args.batch, C, H, W)).astype(dtype)
        Wt = (0.1 * rng.standard_normal((F, C, K, K))).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        y = ops.conv2d(x, Wt, b, 1, pad)
        dy = rng.standard_normal(y.shape).astype(dtype)
        row = {}
        for impl in ("direct", "im2col"):
            row[impl, "fwd"] = median_ms(lambda: ops.conv2d(x, Wt, b, 1, pad, impl), args.repeat)
            row[impl, "bwd"] = median_ms(lambda: ops.conv2d_backward(dy, x, Wt, 1, pad, impl), args.repeat)
        direct = row["direct", "fwd"] + row["direct", "bwd"]
        im2col = row["im2col", "fwd"] + row["im2col", "bwd"]
        best = "direct" if direct < im2col else "im2col"
        geo = numba_conv.conv_geometry("bench", x, Wt, 1, pad)
        auto = "/".join(numba_conv._choose(geo, F, forward)[0] for forward in (True, False))
        print(
            f"{name:24s} {f'{C}->{F}':>7s} {f'{H}x{W}':>6s} {f'{K}/{pad}':>4s} {F * K * K:4d} "
            f"{row['direct', 'fwd']:8.2f} {row['direct', 'bwd']:8.2f} "
            f"{row['im2col', 'fwd']:8.2f} {row['im2col', 'bwd']:8.2f} "
            f"{direct:8.2f} {im2col:8.2f} {best:>6s} {auto:>6s}"
        )


if __name__ == "__main__":
    main()
