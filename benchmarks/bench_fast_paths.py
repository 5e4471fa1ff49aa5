"""The measurements behind the fast paths' design notes, each a ratio in one run.

    python benchmarks/bench_fast_paths.py [--repeat 31]

Each pair takes turns in blocks (``fastnn.bench.harness.interleaved``, as in
``fastnn bench``) and is reported as medians in microseconds with the ratio B / A:

* Adam over 90k float32 parameters with normal state, against the same step when a
  quarter of its state is subnormal (set before every call): why the optimizers
  flush decaying state to zero (fastnn.kernels.optim);
* the serial against the parallel build of that Adam kernel, at 2,000 and 90k
  parameters: why optimizer steps count as OPTIM_WORK_PER_PARAM operations per parameter;
* 2x2 max pooling on (100, 16, 28, 28): the two-pass kernel for even planes against
  the general 2x2 kernel;
* 3x3 max pooling with padding 1 on the two general kernels ``maxpool2d`` chose between
  (it now takes the kernels of the next two items): the whole-plane kernel (the
  nine taps unrolled in one pass over stacks of planes, every stride-1 window) against
  the row kernel (a vertical then a horizontal pass per output row, only the windows
  needed) at stride 1 (the
  Inception branch's) on (100, 80, 14, 14) and (100, 120, 7, 7), and at stride 2 on
  (100, 32, 28, 28) (Inception's) and (16, 64, 32, 32) (the zoo's 7x7 stem);
* 3x3 max pooling at stride 2 with padding 1, the whole-plane kernel against the kernel
  ``maxpool2d`` now takes there (``maxpool_forward_3x3_s2``: vertical then horizontal
  steps in whole vectors, only the windows needed) on Inception's (100, 32, 28, 28) and
  (100, 120, 14, 14) and the 7x7 stem's (16, 64, 32, 32);
* 3x3 max pooling at stride 1 with padding 1 (GoogLeNet's pooling branch), the whole-plane
  kernel against the kernel ``maxpool2d`` now takes there (``maxpool_forward_3x3_same``:
  the taps over each unpadded plane, its edge columns masked, stored straight into the
  output planes) on Inception's four shapes;
* 2x2 stride-2 average pooling, forward and backward, on LeNet-5's (100, 6, 28, 28): the
  2x2 kernels against the general ones;
* Dense(4320->100) forward at batch 100: fastnn's affine against NumPy's ``x @ W``;
* the same layer's affine kernels with their GEMMs split two ways (fastnn.kernels.affine):
  the forward by depth against by batch rows, the backward with dx split by columns
  against by batch rows;
* deep_convnet's first convolution (1->16 3x3 pad 1, batch 100) against filling an
  array of its output's size: how close that layer is to its write-bandwidth bound;
* ResNet-20's stage-1 convolution at inference (16->16 3x3 pad 1 on (256, 16, 32, 32),
  ``predict``'s chunk) with its block's residual sum and ReLU: in the convolution's pass
  (``conv2d(..., relu=True, residual=r)``) against the convolution then ``add_relu``;
* the direct backward pass's transposition of dy into pixel-major rows
  (``direct_backward._grad_rows``, a ReLU mask fused) for one image of the zoo's 1x1
  64->256 layer (256 channels by 16x16 pixels) and of ResNet-20's stage 2 (32 by 16x16):
  blocks transposed in registers against the same rows written element by element (the
  loop it replaced, kept here as the baseline);
* BatchNorm's backward through a fused ReLU on Inception's (100, 32, 14, 14) and ResNet-20's
  (64, 16, 32, 32): the batch norm kernel writing each row of dy * f' into dx just before
  it sums the row (``ops.batchnorm_backward(..., activation="relu")``) against the ReLU's
  backward kernel over the whole array first (what the op did before);
* BatchNorm's forward in training with a residual block's sum and ReLU on ResNet-20's three
  stages' outputs ((64, 16, 32, 32), (64, 32, 16, 16), (64, 64, 8, 8)): in the batch norm
  kernel's pass (``ops.batchnorm(..., activation="relu", residual=r)``) against the batch
  norm op then ``add_relu`` (what a training step ran before);
* max pooling's backward on Inception's (100, 120, 14, 14) at stride 2: the op, whose kernel
  counts argmax's indices outside the plane, against the op after ``argmax.min()`` and
  ``argmax.max()`` (the check the op made before);
* the blocks' whole-array ops on Inception's second block: ``concat_channels`` of its four
  branches (32, 48, 24, 16 channels, (100, *, 14, 14)) against ``np.concatenate``,
  ``channel_slice`` of its 48 channels against ``np.ascontiguousarray`` of the slice, and
  ``add`` of two (100, 80, 14, 14) gradients in place against NumPy's ``+=``.
"""

from __future__ import annotations

import argparse

import numba
import numpy as np

from fastnn.backends import get_ops
from fastnn.backends.numba_norm import _block
from fastnn.backends.numba_pool import same_3x3_group, thread_rows, wide_stack
from fastnn.bench.harness import interleaved
from fastnn.kernels import activations as act_kernels
from fastnn.kernels import affine as affine_kernels
from fastnn.kernels import norm as norm_kernels
from fastnn.kernels import optim as optim_kernels
from fastnn.kernels import pool as pool_kernels
from fastnn.kernels import pool_3x3_s2, tuning
from fastnn.kernels.activations import ACT_IDENTITY, ACT_RELU
from fastnn.kernels.conv.direct_backward import _grad_rows
from fastnn.kernels.conv.modes import DY_RELU_MASKED


@numba.njit  # not cached: a cache entry written when the script runs as __main__ breaks its import elsewhere
def _rows_by_element(dy, mask, F, P, Fp, dst, sums, db):
    """_grad_rows's DY_RELU_MASKED rows and db one element at a time: the baseline."""
    zero = dst.dtype.type(0)
    for f in range(F):
        for p in range(P):
            v = dy[f * P + p]
            if not mask[f * P + p] > zero:
                v = zero
            dst[p * Fp + f] = v
    for p in range(P):
        for f in range(F, Fp):
            dst[p * Fp + f] = zero
    for f in range(Fp):
        sums[f] = zero
    for p in range(P):
        for f in range(Fp):
            sums[f] += dst[p * Fp + f]
    for f in range(F):
        db[f] += sums[f]


def interleaved_us(a, b, repeat: int) -> tuple[float, float]:
    """Median microseconds of a() and b(), taking turns in blocks (fastnn bench's harness:
    a pause and an untimed call after each switch, so one's thread pool spinning down is
    not charged to the other)."""
    medians = interleaved({"a": a, "b": b}, repeat, warmup=2)
    return 1e6 * medians["a"], 1e6 * medians["b"]


def _adam(size: int, rng):
    f = np.float32
    params = rng.random(size).astype(f)
    grads = ((rng.random(size) - 0.5) * 1e-2).astype(f)
    m = ((rng.random(size) - 0.5) * 1e-3).astype(f)
    v = (rng.random(size) * 1e-6).astype(f)
    scalars = (f(1e-3), f(0.9), f(0.999), f(1e-8), f(0.5), f(0.0), f(0.0))
    return params, grads, m, v, scalars


def _wide_3x3_pad_1(xs, stride: int, ys, ats):
    """A call of the whole-plane max pooling kernel (parallel build) on xs, 3x3 windows at
    ``stride`` with padding 1, into ys and ats, with its work rows and stack size as
    maxpool2d makes them."""
    N, C, H, W = xs.shape
    slots = max(1, numba.get_num_threads())
    stack = wide_stack(N * C, H, W, 1, 1)
    plane_size, wide = pool_kernels.wide_scratch(H, W, 3, 3, 1, 1, stack)
    plane = np.empty((slots, plane_size), np.float32)
    best, tap = np.empty((slots, wide), np.float32), np.empty((slots, wide), np.int32)
    return lambda: pool_kernels.maxpool_forward_wide.parallel(
        xs, 3, 3, stride, stride, 1, 1, stack, plane, best, tap, ys, ats
    )


def report(name: str, a_name: str, b_name: str, a_us: float, b_us: float) -> None:
    print(f"{name:44s} {a_name} {a_us:9.1f} us   {b_name} {b_us:9.1f} us   ratio {b_us / a_us:5.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    ops = get_ops("numba")

    params, grads, m, v, scalars = _adam(89_610, rng)
    quarter = params.size // 4
    subnormal = np.float32(1e-39)

    def normal_state():
        optim_kernels.adam.parallel(params, grads, m, v, *scalars)

    def subnormal_state():
        m[:quarter] = subnormal
        optim_kernels.adam.parallel(params, grads, m, v, *scalars)

    report(
        "Adam 90k params, state normal / 1/4 subnormal",
        "normal",
        "subnormal",
        *interleaved_us(normal_state, subnormal_state, args.repeat),
    )

    for size in (2_000, 89_610):
        p, g, m2, v2, s2 = _adam(size, rng)
        report(
            f"Adam {size} params, parallel / serial build",
            "parallel",
            "serial",
            *interleaved_us(
                lambda: optim_kernels.adam.parallel(p, g, m2, v2, *s2),
                lambda: optim_kernels.adam.serial(p, g, m2, v2, *s2),
                args.repeat,
            ),
        )

    x = rng.standard_normal((100, 16, 28, 28)).astype(np.float32)
    y = np.empty((100, 16, 14, 14), np.float32)
    at = np.empty(y.shape, np.int64)
    report(
        "maxpool 2x2 (100,16,28,28), even / general",
        "even",
        "general",
        *interleaved_us(
            lambda: pool_kernels.maxpool_forward_2x2_even.parallel(x, y, at),
            lambda: pool_kernels.maxpool_forward_2x2.parallel(x, y, at),
            args.repeat,
        ),
    )

    for shape, stride in (
        ((100, 80, 14, 14), 1),
        ((100, 120, 7, 7), 1),
        ((100, 32, 28, 28), 2),
        ((16, 64, 32, 32), 2),
    ):
        xs = rng.standard_normal(shape).astype(np.float32)
        out = (shape[2] - 1) // stride + 1, (shape[3] - 1) // stride + 1
        ys = np.empty(shape[:2] + out, np.float32)
        ats = np.empty(ys.shape, np.int64)
        slots = max(1, numba.get_num_threads())
        col = thread_rows("bench_rows", slots, shape[3] + 2, np.float32)
        col_at = thread_rows("bench_rows_at", slots, shape[3] + 2, np.int64)
        kernels = {
            "wide": _wide_3x3_pad_1(xs, stride, ys, ats),
            "rows": lambda: pool_kernels.maxpool_forward_rows.parallel(
                xs, 3, 3, stride, stride, 1, 1, col, col_at, ys, ats
            ),
        }
        report(  # the two general kernels; maxpool2d takes neither for 3x3 at stride 2 now
            f"maxpool 3x3 s{stride} pad 1 {shape}, wide / rows",
            "wide",
            "rows",
            *interleaved_us(kernels["wide"], kernels["rows"], args.repeat),
        )

    for shape in ((100, 32, 28, 28), (100, 80, 14, 14), (100, 120, 14, 14), (100, 120, 7, 7)):
        xs = rng.standard_normal(shape).astype(np.float32)
        ys = np.empty(shape, np.float32)
        ats = np.empty(shape, np.int64)
        slots = max(1, numba.get_num_threads())
        same = np.empty((slots, pool_kernels.same_3x3_scratch(shape[2], shape[3])), np.float32)
        first, last = pool_kernels.edge_columns(shape[2], shape[3])
        group = same_3x3_group(shape[2], shape[3])
        kernels = {
            "wide": _wide_3x3_pad_1(xs, 1, ys, ats),
            "same": lambda: pool_kernels.maxpool_forward_3x3_same.parallel(
                xs, group, same, first, last, ys, ats
            ),
        }
        report(  # maxpool2d takes the 3x3-same kernel for 3x3 windows at stride 1, pad 1
            f"maxpool 3x3 s1 pad 1 {shape}, wide / same",
            "wide",
            "same",
            *interleaved_us(kernels["wide"], kernels["same"], args.repeat),
        )

    for shape in ((100, 32, 28, 28), (100, 120, 14, 14), (16, 64, 32, 32)):
        xs = rng.standard_normal(shape).astype(np.float32)
        out = (shape[2] - 1) // 2 + 1, (shape[3] - 1) // 2 + 1
        ys = np.empty(shape[:2] + out, np.float32)
        ats = np.empty(ys.shape, np.int64)
        slots = max(1, numba.get_num_threads())
        length = pool_3x3_s2.scratch_3x3_s2(shape[3], 1, out[0], np.float32)
        m, am = np.empty((slots, length), np.float32), np.empty((slots, length), np.int32)
        group = same_3x3_group(shape[2], shape[3])
        kernels = {
            "wide": _wide_3x3_pad_1(xs, 2, ys, ats),
            "s2": lambda: pool_3x3_s2.maxpool_forward_3x3_s2.parallel(xs, 1, 1, group, m, am, ys, ats),
        }
        report(  # maxpool2d takes the 3x3 stride-2 kernel for 3x3 windows at stride 2
            f"maxpool 3x3 s2 pad 1 {shape}, wide / 3x3_s2",
            "wide",
            "3x3_s2",
            *interleaved_us(kernels["wide"], kernels["s2"], args.repeat),
        )

    xa = rng.standard_normal((100, 6, 28, 28)).astype(np.float32)  # LeNet-5's first pooling
    ya = np.empty((100, 6, 14, 14), np.float32)
    dxa = np.empty_like(xa)
    report(
        "avgpool 2x2 (100,6,28,28), 2x2 / general",
        "2x2",
        "general",
        *interleaved_us(
            lambda: pool_kernels.avgpool_forward_2x2.parallel(xa, ya),
            lambda: pool_kernels.avgpool_forward.parallel(xa, 2, 2, 2, 2, 0, 0, ya),
            args.repeat,
        ),
    )
    report(
        "avgpool 2x2 backward (100,6,28,28), 2x2 / general",
        "2x2",
        "general",
        *interleaved_us(
            lambda: pool_kernels.avgpool_backward_2x2.parallel(ya, dxa),
            lambda: pool_kernels.avgpool_backward.parallel(ya, 2, 2, 2, 2, 0, 0, dxa),
            args.repeat,
        ),
    )

    xd = rng.random((100, 4320), dtype=np.float32)
    Wd = rng.random((4320, 100), dtype=np.float32)
    bd = rng.random(100, dtype=np.float32)
    report(
        "Dense(4320->100) forward, fastnn / NumPy x@W",
        "fastnn",
        "numpy",
        *interleaved_us(lambda: ops.affine(xd, Wd, bd), lambda: xd @ Wd, args.repeat),
    )

    yd = np.empty((100, 100), np.float32)
    partial = np.empty((tuning.GEMM_PARTS - 1, 100, 100), np.float32)
    no_partial = np.empty((0, 0, 0), np.float32)

    def forward(split):
        affine_kernels.affine_forward.parallel(xd, Wd, bd, ACT_RELU, np.float32(0), split, yd)

    report(
        "Dense(4320->100) forward, by depth / by rows",
        "depth",
        "rows",
        *interleaved_us(
            lambda: forward(partial),
            lambda: forward(no_partial),
            args.repeat,
        ),
    )
    dyd = rng.standard_normal((100, 100)).astype(np.float32)
    dxd, dWd, dbd = np.empty_like(xd), np.empty_like(Wd), np.empty_like(bd)
    unmasked = np.empty((0, 0), np.float32)

    def backward(by_columns):
        affine_kernels.affine_backward.parallel(
            *(dyd, xd, Wd, dyd, ACT_IDENTITY, np.float32(0), True, True, by_columns),
            *(unmasked, dxd, dWd, dbd),
        )

    report(
        "Dense(4320->100) backward, dx by columns / rows",
        "columns",
        "rows",
        *interleaved_us(lambda: backward(True), lambda: backward(False), args.repeat),
    )

    xc = rng.random((100, 1, 28, 28), dtype=np.float32)
    Wc = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    bc = np.zeros(16, np.float32)
    out = np.empty((100, 16, 28, 28), np.float32)
    report(
        "conv 1->16 3x3 @28x28, fill 5 MB / conv",
        "fill",
        "conv",
        *interleaved_us(lambda: out.fill(0), lambda: ops.conv2d(xc, Wc, bc, 1, 1), args.repeat),
    )

    xr = rng.standard_normal((256, 16, 32, 32)).astype(np.float32)
    Wr = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)
    br = np.zeros(16, np.float32)

    def apart():
        z = ops.conv2d(xr, Wr, br, 1, 1)
        return ops.add_relu(z, xr, out=z)

    report(
        "conv 16->16 3x3 (256,16,32,32) + residual ReLU, fused / apart",
        "fused",
        "apart",
        *interleaved_us(lambda: ops.conv2d(xr, Wr, br, 1, 1, relu=True, residual=xr), apart, args.repeat),
    )

    for F in (256, 32):
        P = 256
        dyg = rng.standard_normal(F * P).astype(np.float32)
        maskg = rng.standard_normal(F * P).astype(np.float32)
        rows, sums = np.empty(P * F, np.float32), np.empty(F, np.float32)
        dbg = np.zeros(F, np.float32)
        none_i, none_f = np.empty(0, np.int64), np.empty(0, np.float32)
        report(
            f"dy to pixel-major rows, {F} ch x {P} px, blocks / elements",
            "blocks",
            "elements",
            *interleaved_us(
                lambda: _grad_rows(dyg, maskg, none_i, none_f, DY_RELU_MASKED, F, P, F, rows, sums, dbg),
                lambda: _rows_by_element(dyg, maskg, F, P, F, rows, sums, dbg),
                args.repeat,
            ),
        )

    for shape in ((100, 32, 14, 14), (64, 16, 32, 32)):
        xb = rng.standard_normal(shape).astype(np.float32)
        gamma, beta = np.ones(shape[1], np.float32), np.zeros(shape[1], np.float32)
        yb, mean, var = ops.batchnorm(xb, gamma, beta, 1e-5, activation="relu")[:3]
        dyb = rng.standard_normal(shape).astype(np.float32)

        def prepass(xb=xb, yb=yb, dyb=dyb, gamma=gamma, mean=mean, var=var):
            """The op's former body: the ReLU's kernel into dx, then the kernel reads g there."""
            x3, dy3, y3 = (a.reshape(a.shape[0], a.shape[1], -1) for a in (xb, dyb, yb))
            dx, dgamma, dbeta = np.empty_like(x3), np.empty_like(gamma), np.empty_like(gamma)
            act_kernels.relu_backward(x3.size, dy3.reshape(-1), y3.reshape(-1), dx.reshape(-1))
            norm_kernels.batchnorm_backward(
                *(x3.size, dy3, 0, x3, gamma, mean, var, np.float32(1e-5), _block(shape[1], x3.shape[2])),
                *(norm_kernels.GRADIENT_IN_DX, np.float32(0.0), y3, 0, dx, dgamma, dbeta),
            )
            return dx, dgamma, dbeta

        report(
            f"batchnorm backward through ReLU {shape}, in the kernel / ReLU pass first",
            "kernel",
            "pass first",
            *interleaved_us(
                lambda xb=xb, yb=yb, dyb=dyb, gamma=gamma, mean=mean, var=var: ops.batchnorm_backward(
                    dyb, xb, gamma, mean, var, 1e-5, activation="relu", act_out=yb
                ),
                prepass,
                args.repeat,
            ),
        )

    for shape in ((64, 16, 32, 32), (64, 32, 16, 16), (64, 64, 8, 8)):
        xn, rn = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
        gamma, beta = np.ones(shape[1], np.float32), np.zeros(shape[1], np.float32)

        def bn_then_add(xn=xn, rn=rn, gamma=gamma, beta=beta):
            y = ops.batchnorm(xn, gamma, beta, 1e-5)[0]
            return ops.add_relu(y, rn)  # a new array, as training keeps the block output

        report(
            f"batchnorm + residual ReLU {shape}, in the kernel / add_relu after",
            "kernel",
            "after",
            *interleaved_us(
                lambda xn=xn, rn=rn, gamma=gamma, beta=beta: ops.batchnorm(
                    xn, gamma, beta, 1e-5, activation="relu", residual=rn
                ),
                bn_then_add,
                args.repeat,
            ),
        )

    xm = rng.standard_normal((100, 120, 14, 14)).astype(np.float32)
    ym, argmax = ops.maxpool2d(xm, 3, 2, 1)
    dym = rng.standard_normal(ym.shape).astype(np.float32)

    def checked_first():
        argmax.min(), argmax.max()
        return ops.maxpool2d_backward(dym, argmax, xm.shape, 3, 2, 1)

    report(
        "maxpool backward 3x3 s2 (100,120,14,14), range in kernel / NumPy range first",
        "kernel",
        "numpy",
        *interleaved_us(
            lambda: ops.maxpool2d_backward(dym, argmax, xm.shape, 3, 2, 1), checked_first, args.repeat
        ),
    )
    branches = [rng.standard_normal((100, c, 14, 14)).astype(np.float32) for c in (32, 48, 24, 16)]
    joined = np.concatenate(branches, axis=1)
    report(
        "concat_channels 32+48+24+16 ch (100,*,14,14), kernel / np.concatenate",
        "kernel",
        "numpy",
        *interleaved_us(
            lambda: ops.concat_channels(*branches), lambda: np.concatenate(branches, axis=1), args.repeat
        ),
    )
    report(
        "channel_slice 48 of 120 ch (100,*,14,14), kernel / np.ascontiguousarray",
        "kernel",
        "numpy",
        *interleaved_us(
            lambda: ops.channel_slice(joined, 32, 80),
            lambda: np.ascontiguousarray(joined[:, 32:80]),
            args.repeat,
        ),
    )
    total, more = (rng.standard_normal((100, 80, 14, 14)).astype(np.float32) for _ in range(2))
    report(
        "add in place (100,80,14,14), kernel / numpy +=",
        "kernel",
        "numpy",
        *interleaved_us(
            lambda: ops.add(total, more, out=total), lambda: np.add(total, more, out=total), args.repeat
        ),
    )


if __name__ == "__main__":
    main()
