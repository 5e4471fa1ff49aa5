"""Direct vs im2col convolution on the book networks' layer shapes.

    python benchmarks/bench_conv_impl.py [--batch 100] [--repeat 7] [--dtype float32]

Times conv2d forward and conv2d_backward of the numba backend for impl="direct"
and impl="im2col" (median of ``--repeat`` runs after a warm-up call that also
compiles), prints one row per layer and the impl that ``impl="auto"`` picks.
The rule behind "auto" (fastnn.backends.numba_conv._choose: direct at stride 1,
im2col for strides) is read off this table; the "auto" column shows the
forward/backward choice. Strided convolutions always take im2col, whose kernels
handle any stride at full speed. The runs are sequential: on a shared machine,
compare impls only from runs taken while it is quiet.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fastnn.backends import get_ops, numba_conv

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
    ("1->8 3x3 at 8x8", 1, 8, 8, 8, 3, 1),
]


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
    parser.add_argument("--extra", action="store_true", help="also time the EXTRA shapes")
    args = parser.parse_args(argv)

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
