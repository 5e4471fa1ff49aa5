"""Property tests over random shapes, strides, pads and dtypes (hypothesis).

1. Canaries: every kernel in ``fastnn/kernels`` is called directly, serial and parallel
   build, with each output a view into a larger buffer whose guard regions before and
   after hold a sentinel (12345). The guards must stay untouched (no write outside the
   output), outputs meant to be overwritten must have no sentinel left (no element
   skipped), inputs must be unchanged, and the outputs must equal the NumPy reference.
2. Every public op of the numba backend, on every input layout (C order, strided view,
   Fortran order, big-endian, read-only) gives C-contiguous outputs of the input's dtype,
   bit-identical to the op on plain copies, equal to the reference, and leaves its
   inputs untouched.
3. Builds (a slow test): every kernel's serial and parallel builds, compiled in one fresh
   process, give the same bits on the canary cases (``compare_builds``).

The per-op comparisons on grids live in the test files named after each op family
(test_affine_ops, test_activation_ops, test_loss_ops, test_conv_ops, test_pool_ops, ...);
these tests add what those do not: writes outside outputs, both builds of every kernel
called directly, layouts on every op.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import itertools
import pkgutil

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastnn.kernels
from fastnn._blas import single_threaded_blas
from fastnn._config import ParallelKernel
from fastnn.backends import get_ops
from fastnn.kernels import activations as act
from fastnn.kernels import affine as aff
from fastnn.kernels import conv as conv_k
from fastnn.kernels import losses as loss_k
from fastnn.kernels import optim as optim_k
from fastnn.kernels import pool as pool_k
from fastnn.kernels import pool_3x3_s2, tuning

REF = get_ops("numpy")
NB = get_ops("numba")
#: The activations the conv and affine kernels fuse (None: none).
FUSED = (None, "relu", "sigmoid", "tanh", "leaky_relu")
DTYPES = (np.float32, np.float64)
BUILDS = ("serial", "parallel")
SENTINEL = 12345
GUARD = 17  # odd, so a vectorised tail that overruns by a lane lands in it

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

COVERED: set = set()  # kernels some canary case calls (see test_every_kernel_has_a_canary_case)


class Guarded:
    """An output array that is a view into a buffer with SENTINEL guard regions around it.

    ``fill``: initial contents (in-place outputs such as parameters); without it the
    output starts as SENTINEL too, and every element must be written (``scratch``
    outputs, work buffers, are exempt from that).
    """

    def __init__(self, shape, dtype, fill=None, scratch=False):
        self.shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        self.size = int(np.prod(self.shape))
        self.buffer = np.full(self.size + 2 * GUARD, SENTINEL, dtype=dtype)
        self.view = self.buffer[GUARD : GUARD + self.size].reshape(self.shape)
        assert self.view.flags.c_contiguous
        self.must_write = fill is None and not scratch
        self.scratch = scratch
        if fill is not None:
            self.view[...] = fill

    def twin(self) -> Guarded:
        """A new Guarded of the same shape, dtype and kind, holding what this one holds now
        (the other build's output, for :func:`run_kernel`'s twin mode, made before the call)."""
        other = Guarded(self.shape, self.buffer.dtype, scratch=self.scratch)
        other.buffer[...] = self.buffer
        other.must_write = self.must_write
        return other

    def check(self, where: str) -> None:
        before, after = self.buffer[:GUARD], self.buffer[GUARD + self.size :]
        assert np.all(before == SENTINEL), f"{where}: wrote before its output {self.shape}"
        assert np.all(after == SENTINEL), f"{where}: wrote after its output {self.shape}"
        if self.must_write:
            assert not np.any(self.view == SENTINEL), f"{where}: left output elements unwritten"


#: The ``taps`` argument of the direct stride-1 kernels that runs over every tap.
ALL_TAPS = np.empty(0, np.int64)


#: In twin mode (while test_the_serial_and_parallel_builds_agree_bit_for_bit runs), the
#: kernels whose serial and parallel builds :func:`run_kernel` compared: {kernel: whether
#: every comparison gave the same bits}; None otherwise.
TWINNED: dict | None = None
#: In twin mode, {kernel name: SHA-256 of every compared output of both builds, in call
#: order}: two processes that ran the same cases must end with the same digests.
DIGESTS: dict | None = None


def run_kernel(kernel, build: str, *args):
    """Call one build of ``kernel`` with Guarded outputs; check guards and untouched inputs.

    Returns the outputs' views, in argument order. In twin mode (:data:`TWINNED` a dict),
    the other build also runs, on the same inputs and on twins of the Guarded arguments,
    and :data:`TWINNED` notes whether every output but the work buffers (``scratch``), and
    the return value, came out the same bits as this build's.
    """
    COVERED.add(kernel)
    inputs = [a for a in args if isinstance(a, np.ndarray)]
    before = [a.copy() for a in inputs]
    twins = [a.twin() if isinstance(a, Guarded) else a for a in args] if TWINNED is not None else None
    call = [a.view if isinstance(a, Guarded) else a for a in args]
    result = getattr(kernel, build)(*call)
    where = f"{kernel.__name__}.{build}"
    for a in args:
        if isinstance(a, Guarded):
            a.check(where)
    for saved, now in zip(before, inputs):
        np.testing.assert_array_equal(now, saved, err_msg=f"{where} modified an input")
    if twins is not None:
        other = "parallel" if build == "serial" else "serial"
        other_result = getattr(kernel, other)(*[a.view if isinstance(a, Guarded) else a for a in twins])
        same = type(other_result) is type(result) and repr(other_result) == repr(result)
        digest = DIGESTS.setdefault(kernel.__name__, hashlib.sha256())
        digest.update(f"{result!r} {other_result!r}".encode())
        for mine, theirs in zip(args, twins):
            if isinstance(mine, Guarded) and not mine.scratch:
                same = same and theirs.buffer.tobytes() == mine.buffer.tobytes()
                digest.update(mine.buffer.tobytes())
                digest.update(theirs.buffer.tobytes())
        TWINNED[kernel] = TWINNED.get(kernel, True) and same
    return [a.view for a in args if isinstance(a, Guarded)]


def close(actual, expected, dtype, where=""):
    rtol, atol = (2e-4, 2e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-11)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=where)


def rand(rng, shape, dtype):
    return rng.uniform(-1, 1, shape).astype(dtype)


# =================================================================== canaries: dense


@SETTINGS
@given(
    n=st.integers(1, 9),
    d=st.integers(1, 40),
    m=st.integers(1, 40),
    dtype=st.sampled_from(DTYPES),
    build=st.sampled_from(BUILDS),
    seed=st.integers(0, 2**31),
)
def test_dense_kernels_write_only_their_outputs(n, d, m, dtype, build, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rand(rng, (n, d), dtype), rand(rng, (d, m), dtype), rand(rng, m, dtype)
    dy = rand(rng, (n, m), dtype)
    alpha = dtype(0.1)
    for activation in FUSED:
        code = act.ACTIVATION_CODES[activation or "identity"]
        for parts in (0, tuning.GEMM_PARTS - 1):  # split by batch rows, by depth
            partial = Guarded((parts, n if parts else 0, m if parts else 0), dtype, scratch=True)
            _, y = run_kernel(
                aff.affine_forward, build, x, W, b, code, alpha, partial, Guarded((n, m), dtype)
            )
            want = REF.affine(x, W, b, activation=activation, alpha=0.1)
            close(y, want, dtype, f"affine_forward ({activation}, depth parts={parts})")
    for activation, input_grad, by_columns in itertools.product(FUSED, (False, True), (False, True)):
        masked = activation is not None
        act_out = REF.affine(x, W, b, activation=activation, alpha=0.1)
        outs = run_kernel(
            aff.affine_backward,
            build,
            dy,
            x,
            W,
            act_out if masked else dy,
            act.ACTIVATION_CODES[activation or "identity"],
            alpha,
            input_grad,
            True,
            by_columns,
            Guarded((n, m) if masked else (0, 0), dtype),
            Guarded((n, d) if input_grad else (0, 0), dtype),
            Guarded((d, m), dtype),
            Guarded(m, dtype),
        )
        want = REF.affine_backward(
            dy,
            x,
            W,
            input_grad=input_grad,
            activation=activation,
            act_out=act_out if masked else None,
            alpha=0.1,
        )
        where = f"affine_backward ({activation}, input_grad={input_grad}, dx by columns={by_columns})"
        if input_grad:
            close(outs[1], want[0], dtype, where + " dx")
        close(outs[2], want[1], dtype, where + " dW")
        close(outs[3], want[2], dtype, where + " db")
    for by_columns in (False, True):  # weight_grad=False (a frozen layer): dx only, dW and db unread
        (dx,) = run_kernel(
            aff.affine_backward,
            build,
            dy,
            x,
            W,
            dy,
            act.ACT_IDENTITY,
            alpha,
            True,
            False,
            by_columns,
            np.empty((0, 0), dtype),
            Guarded((n, d), dtype),
            np.empty((0, 0), dtype),
            np.empty(0, dtype),
        )
        close(
            dx, REF.affine_backward(dy, x, W)[0], dtype, f"affine_backward dx (no weight_grad, {by_columns})"
        )

    flat, dflat = x.reshape(-1).copy(), rand(rng, x.size, dtype)
    size = flat.size
    alpha = np.dtype(dtype).type(0.1)
    for kernel, ref in (
        (act.heaviside_forward, REF.heaviside),
        (act.sigmoid_forward, REF.sigmoid),
        (act.tanh_forward, REF.tanh),
        (act.relu_forward, REF.relu),
    ):
        (y,) = run_kernel(kernel, build, flat, Guarded(size, dtype))
        close(y, ref(flat), dtype, kernel.__name__)
    for kernel, ref, second in (
        (act.sigmoid_backward, REF.sigmoid_backward, REF.sigmoid(flat)),
        (act.tanh_backward, REF.tanh_backward, REF.tanh(flat)),
        (act.relu_backward, REF.relu_backward, flat),
    ):
        (dx,) = run_kernel(kernel, build, dflat, second, Guarded(size, dtype))
        close(dx, ref(dflat, second), dtype, kernel.__name__)
    (y,) = run_kernel(act.add_relu_forward, build, flat, dflat, Guarded(size, dtype))
    np.testing.assert_array_equal(y, REF.relu(flat + dflat))
    (y,) = run_kernel(act.leaky_relu_forward, build, flat, alpha, Guarded(size, dtype))
    close(y, REF.leaky_relu(flat, 0.1), dtype, "leaky_relu_forward")
    (dx,) = run_kernel(act.leaky_relu_backward, build, dflat, flat, alpha, Guarded(size, dtype))
    close(dx, REF.leaky_relu_backward(dflat, flat, 0.1), dtype, "leaky_relu_backward")
    (y,) = run_kernel(act.softmax_forward, build, x, Guarded(x.shape, dtype))
    close(y, REF.softmax(x), dtype, "softmax_forward")
    probs = REF.softmax(x)
    (dx,) = run_kernel(act.softmax_backward, build, rand(rng, x.shape, dtype), probs, Guarded(x.shape, dtype))

    t = rng.integers(0, d, n)
    onehot = np.eye(d, dtype=dtype)[t]
    for kernel, target in (
        (loss_k.softmax_cross_entropy_indices, t),
        (loss_k.softmax_cross_entropy_dense, onehot),
    ):
        p, rows = run_kernel(kernel, build, x, target, Guarded(x.shape, dtype), Guarded(n, dtype))
        close(p, probs, dtype, kernel.__name__)
        close(rows.sum() / n, REF.softmax_cross_entropy(x, t)[0], dtype, kernel.__name__)
    scale = np.dtype(dtype).type(1.0 / n)
    for kernel, target in (
        (loss_k.softmax_cross_entropy_backward_indices, t),
        (loss_k.softmax_cross_entropy_backward_dense, onehot),
    ):
        (g,) = run_kernel(kernel, build, probs, target, scale, Guarded(x.shape, dtype))
        close(g, REF.softmax_cross_entropy_backward(probs, t), dtype, kernel.__name__)
    binary = rng.integers(0, 2, x.shape).astype(dtype)
    p, rows = run_kernel(
        loss_k.sigmoid_cross_entropy, build, x, binary, Guarded(x.shape, dtype), Guarded(n, dtype)
    )
    loss_ref, probs_ref = REF.sigmoid_cross_entropy(x, binary)
    close(p, probs_ref, dtype, "sigmoid_cross_entropy")
    close(rows.sum() / n, loss_ref, dtype, "sigmoid_cross_entropy")
    blocks = -(-size // tuning.SUM_BLOCK)
    (sums,) = run_kernel(loss_k.squared_error_blocks, build, flat, dflat, Guarded(blocks, dtype))
    close(0.5 * sums.sum() / n, REF.mse(x, dflat.reshape(x.shape)), dtype, "squared_error_blocks")
    (g,) = run_kernel(loss_k.mse_backward, build, flat, dflat, scale, Guarded(size, dtype))
    close(g, REF.mse_backward(x, dflat.reshape(x.shape)).reshape(-1), dtype, "mse_backward")


@SETTINGS
@given(
    size=st.integers(1, 200),
    dtype=st.sampled_from(DTYPES),
    build=st.sampled_from(BUILDS),
    wd=st.sampled_from([0.0, 0.01]),
    l1=st.sampled_from([0.0, 0.001]),
    seed=st.integers(0, 2**31),
)
def test_optimizer_kernels_write_only_their_buffers(size, dtype, build, wd, l1, seed):
    rng = np.random.default_rng(seed)
    d = np.dtype(dtype).type
    p0, g = rand(rng, size, dtype), rand(rng, size, dtype)
    s0 = rng.uniform(0, 1, size).astype(dtype)
    cases = {
        "sgd": (optim_k.sgd, [], (d(0.1), d(wd), d(l1)), lambda p, st_: REF.sgd_step(p, g, 0.1, wd, l1)),
        "momentum": (
            optim_k.momentum,
            [s0],
            (d(0.1), d(0.9), d(wd), d(l1)),
            lambda p, st_: REF.momentum_step(p, g, st_[0], 0.1, 0.9, wd, l1),
        ),
        "nesterov": (
            optim_k.nesterov,
            [s0],
            (d(0.1), d(0.9), d(wd), d(l1)),
            lambda p, st_: REF.nesterov_step(p, g, st_[0], 0.1, 0.9, wd, l1),
        ),
        "adagrad": (
            optim_k.adagrad,
            [s0],
            (d(0.1), d(1e-7), d(wd), d(l1)),
            lambda p, st_: REF.adagrad_step(p, g, st_[0], 0.1, 1e-7, wd, l1),
        ),
        "rmsprop": (
            optim_k.rmsprop,
            [s0],
            (d(0.1), d(0.99), d(1e-7), d(wd), d(l1)),
            lambda p, st_: REF.rmsprop_step(p, g, st_[0], 0.1, 0.99, 1e-7, wd, l1),
        ),
    }
    for name, (kernel, state, scalars, ref) in cases.items():
        guarded = [Guarded(size, dtype, fill=p0)] + [Guarded(size, dtype, fill=s) for s in state]
        run_kernel(kernel, build, guarded[0], g, *guarded[1:], *scalars)
        p_ref, s_ref = p0.copy(), [s.copy() for s in state]
        ref(p_ref, s_ref)
        for got, want in zip(guarded, [p_ref] + s_ref):
            close(got.view, want, dtype, name)
    # Adam at step 3, with the bias corrections the backend precomputes
    from fastnn.backends.numpy_optim import adam_bias_corrections

    step_size, bc2 = adam_bias_corrections(3, 0.01, 0.9, 0.999)
    m0 = rand(rng, size, dtype)
    guarded = [Guarded(size, dtype, fill=a) for a in (p0, m0, s0)]
    run_kernel(
        optim_k.adam,
        build,
        guarded[0],
        g,
        guarded[1],
        guarded[2],
        d(step_size),
        d(0.9),
        d(0.999),
        d(1e-7),
        d(bc2),
        d(wd),
        d(l1),
    )
    want = [p0.copy(), m0.copy(), s0.copy()]
    REF.adam_step(want[0], g, want[1], want[2], 3, 0.01, 0.9, 0.999, 1e-7, wd, l1)
    for got, expected in zip(guarded, want):
        close(got.view, expected, dtype, "adam")
    # AdamW likewise, its decoupled decay factor 1 - lr * wd precomputed too
    guarded = [Guarded(size, dtype, fill=a) for a in (p0, m0, s0)]
    scalars = (step_size, 0.9, 0.999, 1e-8, bc2, 1 - 0.01 * wd, l1)
    run_kernel(optim_k.adamw, build, guarded[0], g, guarded[1], guarded[2], *map(d, scalars))
    want = [p0.copy(), m0.copy(), s0.copy()]
    REF.adamw_step(want[0], g, want[1], want[2], 3, 0.01, 0.9, 0.999, 1e-8, wd, l1)
    for got, expected in zip(guarded, want):
        close(got.view, expected, dtype, "adamw")


# =================================================================== canaries: conv and pool

geometry = dict(
    N=st.integers(1, 3),
    C=st.integers(1, 5),
    F=st.integers(1, 6),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    KH=st.integers(1, 4),
    KW=st.integers(1, 4),
    SH=st.integers(1, 3),
    SW=st.integers(1, 3),
    PH=st.integers(0, 2),
    PW=st.integers(0, 2),
    dtype=st.sampled_from(DTYPES),
    build=st.sampled_from(BUILDS),
    seed=st.integers(0, 2**31),
)


@SETTINGS
@given(chunk=st.integers(1, 3), **geometry)
def test_conv_kernels_write_only_their_outputs(
    N, C, F, H, W, KH, KW, SH, SW, PH, PW, chunk, dtype, build, seed
):
    assume(KH <= H + 2 * PH and KW <= W + 2 * PW)
    conv_canaries(N, C, F, H, W, KH, KW, SH, SW, PH, PW, chunk, dtype, build, seed)


def polyphase_canaries(x, xp, dy, Wt, SH, SW, PH, PW, OH, OW, dtype, build):
    """phase_split against its formula on the padded input, phase_merge as its adjoint:
    <split(x), g> = <x, merge(g)> for any g, and merge(split(x)) keeps every pixel a tap reads
    (P may hold a few more, which only zero taps of W' read)."""
    from fastnn.kernels.conv import polyphase

    N, C = x.shape[:2]
    F, _, KH, KW = Wt.shape
    QH, QW, KHq, KWq = polyphase.phase_counts(KH, KW, SH, SW)
    A, B = OH + KHq - 1, OW + KWq - 1
    (P,) = run_kernel(
        polyphase.phase_split, build, x, SH, SW, PH, PW, QW, Guarded((N, QH * QW * C, A, B), dtype)
    )
    want = np.zeros((N, QH, QW, C, A, B), dtype)
    for pi in range(QH):
        for qi in range(QW):
            phase = xp[:, :, pi::SH, qi::SW][:, :, :A, :B]
            want[:, pi, qi, :, : phase.shape[2], : phase.shape[3]] = phase
    np.testing.assert_array_equal(P, want.reshape(P.shape))
    g = rand(np.random.default_rng(1), P.shape, dtype)
    (dx,) = run_kernel(polyphase.phase_merge, build, g, SH, SW, PH, PW, QW, Guarded(x.shape, dtype))
    close(np.vdot(P, g), np.vdot(x, dx), dtype, "phase_merge is phase_split's adjoint")
    (back,) = run_kernel(polyphase.phase_merge, build, P.copy(), SH, SW, PH, PW, QW, Guarded(x.shape, dtype))
    rows = np.zeros(xp.shape[2], bool)  # the padded rows and columns some tap of some output reads
    cols = np.zeros(xp.shape[3], bool)
    rows[[SH * i + kh for i in range(OH) for kh in range(KH)]] = True
    cols[[SW * j + kw for j in range(OW) for kw in range(KW)]] = True
    read = np.broadcast_to(np.outer(rows, cols)[PH : PH + x.shape[2], PW : PW + x.shape[3]], x.shape)
    np.testing.assert_array_equal(back[read], x[read])
    Wq = polyphase.phase_weights(Wt, SH, SW)
    close(
        REF.conv2d(P, Wq, np.zeros(F, dtype)),
        REF.conv2d(x, Wt, np.zeros(F, dtype), (SH, SW), (PH, PW)),
        dtype,
    )
    dW = np.empty_like(Wt)
    polyphase.phase_weight_grad(Wq, KH, KW, SH, SW, dW)
    np.testing.assert_array_equal(dW, Wt)  # every tap of W is one entry of W'
    taps = polyphase.phase_taps(C, KH, KW, SH, SW)  # W' past its zero taps
    np.testing.assert_array_equal(taps, np.flatnonzero(polyphase.phase_weights(np.ones_like(Wt), SH, SW)[0]))
    b = rand(np.random.default_rng(2), F, dtype)
    none = np.empty((N, F, 0, 0), dtype)
    (y,) = run_kernel(
        conv_k.direct_conv_s1,
        build,
        P.copy(),
        Wq,
        b,
        0,
        0,
        False,
        act.ACT_IDENTITY,
        dtype(0),
        none,
        False,
        Guarded((N, F, OH, OW), dtype),
        none,
        np.empty((N, F, 0, 0), np.int64),
        taps,
    )
    close(y, REF.conv2d(x, Wt, b, (SH, SW), (PH, PW)), dtype, "direct_conv_s1 over the phase taps")
    flipped = np.ascontiguousarray(Wq[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dWq, db = run_kernel(
        conv_k.direct_backward_s1,
        build,
        P.copy(),
        dy,
        Wq,
        flipped,
        0,
        0,
        False,
        dy,
        0,
        np.empty((N, F, 0, 0), np.int64),
        none,
        False,
        True,
        np.full(P.shape, SENTINEL, dtype),
        Guarded(Wq.shape, dtype),
        Guarded(F, dtype),
        *conv_k.backward_items(dtype),
        taps,
    )
    real = np.zeros(Wq[0].size, bool)
    real[taps] = True
    assert np.all(dWq.reshape(F, -1)[:, ~real] == 0), "direct_backward_s1 wrote a tap not listed"
    _, dW_ref, db_ref = REF.conv2d_backward(dy, x, Wt, (SH, SW), (PH, PW))
    polyphase.phase_weight_grad(dWq, KH, KW, SH, SW, dW)
    close(dW, dW_ref, dtype, "direct_backward_s1 dW over the phase taps")
    close(db, db_ref, dtype, "direct_backward_s1 db over the phase taps")


def pointwise_canaries(N, C, F, H, W, dtype, build, seed):
    """The 1x1 stride-1 kernels (one BLAS product per image) against the reference, with
    and without an activation, a residual and a ReLU's mask, and with dx or dW skipped."""
    rng = np.random.default_rng(seed)
    x, Wt, b = rand(rng, (N, C, H, W), dtype), rand(rng, (F, C, 1, 1), dtype), rand(rng, F, dtype)
    dy, res = rand(rng, (N, F, H, W), dtype), rand(rng, (N, F, H, W), dtype)
    Wm = Wt.reshape(F, C)
    none = np.empty((0, 0, 0, 0), dtype)
    y_ref = REF.conv2d(x, Wt, b)
    cases = [
        (act.ACT_IDENTITY, none, y_ref),
        (act.ACT_RELU, none, np.maximum(y_ref, 0)),
        (act.ACT_TANH, none, np.tanh(y_ref)),
        (act.ACT_RELU, res, np.maximum(y_ref + res, 0)),
    ]
    for code, residual, expected in cases:
        (y,) = run_kernel(
            conv_k.pointwise_forward, build, x, Wm, b, code, dtype(0.1), residual, Guarded(y_ref.shape, dtype)
        )
        close(y, expected, dtype, f"pointwise_forward, activation code {code}, residual {residual.size > 0}")
    relu_out = np.maximum(y_ref, 0)
    groups = 1 + seed % N  # fixed groups of images, up to one each
    slots = max(1, numba.get_num_threads())
    for mask in (none, relu_out):
        dx_ref, dW_ref, db_ref = REF.conv2d_backward(dy, x, Wt, relu_out=mask if mask.size else None)

        def backward(input_grad, weight_grad, dx, dW, db, mask=mask):
            return run_kernel(
                conv_k.pointwise_backward,
                build,
                *(x, dy, mask, Wm, input_grad, weight_grad),
                Guarded((slots, F * H * W), dtype, scratch=True),
                Guarded((groups, F * C + F), dtype, scratch=True),
                *(dx, dW, db),
            )[2:]

        where = f"pointwise_backward, mask {mask.size > 0}"
        dx, dW, db = backward(True, True, Guarded(x.shape, dtype), Guarded((F, C), dtype), Guarded(F, dtype))
        close(dx, dx_ref, dtype, where + " dx")
        close(dW, dW_ref.reshape(F, C), dtype, where + " dW")
        close(db, db_ref, dtype, where + " db")
        kept = (Guarded((F, C), dtype, fill=7.0), Guarded(F, dtype, fill=7.0))
        dx, dW, db = backward(True, False, Guarded(x.shape, dtype), *kept)
        close(dx, dx_ref, dtype, where + " dx without dW")
        assert (dW == 7.0).all() and (db == 7.0).all(), where + ": wrote dW or db without weight_grad"
        dx, dW, db = backward(
            False, True, Guarded(x.shape, dtype, fill=7.0), Guarded((F, C), dtype), Guarded(F, dtype)
        )
        assert (dx == 7.0).all(), where + ": wrote dx without input_grad"
        close(dW, dW_ref.reshape(F, C), dtype, where + " dW alone")


def conv_canaries(N, C, F, H, W, KH, KW, SH, SW, PH, PW, chunk, dtype, build, seed):
    rng = np.random.default_rng(seed)
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    x, Wt, b = rand(rng, (N, C, H, W), dtype), rand(rng, (F, C, KH, KW), dtype), rand(rng, F, dtype)
    dy = rand(rng, (N, F, OH, OW), dtype)
    stride, pad = (SH, SW), (PH, PW)
    y_ref = REF.conv2d(x, Wt, b, stride, pad)
    dx_ref, dW_ref, db_ref = REF.conv2d_backward(dy, x, Wt, stride, pad)

    xp = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    polyphase_canaries(x, xp, dy, Wt, SH, SW, PH, PW, OH, OW, dtype, build)
    pointwise_canaries(N, C, F, H, W, dtype, build, seed)
    rows = conv_k.pack_weight_rows(Wt)
    none = np.empty((0, 0, 0, 0), dtype)
    res = rand(rng, (N, F, OH, OW), dtype)
    cases = [
        (act.ACT_IDENTITY, none, y_ref),
        (act.ACT_RELU, none, np.maximum(y_ref, 0)),
        (act.ACT_TANH, none, np.tanh(y_ref)),
        (act.ACT_RELU, res, np.maximum(y_ref + res, 0)),
    ]
    window = (KH, KW, SH, SW, PH, PW)
    for code, residual, expected in cases:
        out = Guarded((N, F, OH, OW), dtype)
        (y,) = run_kernel(
            conv_k.channel_tiled_forward, build, x, rows, b, *window, code, dtype(0.1), residual, out
        )
        close(
            y, expected, dtype, f"channel_tiled_forward, activation code {code}, residual {residual.size > 0}"
        )
    dW, db = run_kernel(
        conv_k.channel_tiled_weights,
        build,
        x,
        dy,
        dy,
        conv_k.DY_AS_GIVEN,
        *window,
        Guarded(Wt.shape, dtype),
        Guarded(F, dtype),
    )
    close(dW, dW_ref, dtype, "channel_tiled_weights")
    close(db, db_ref, dtype, "channel_tiled_weights db")
    (dx,) = run_kernel(
        conv_k.channel_tiled_data,
        build,
        dy,
        dy,
        conv_k.DY_AS_GIVEN,
        conv_k.pack_tap_rows(Wt),
        *window,
        Guarded(x.shape, dtype),
    )
    close(dx, dx_ref, dtype, "channel_tiled_data")

    if SH == 1 and SW == 1:
        flipped = np.ascontiguousarray(Wt[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        # stride 1, the padding fused into the kernels
        none_y = np.empty((N, F, 0, 0), dtype)
        none_a = np.empty((N, F, 0, 0), np.int64)
        cases = [(False, None), (False, "tanh"), (False, "leaky_relu"), (True, None)]
        cases = [(*case, False) for case in cases] + [(False, "relu", True), (False, "tanh", True)]
        y_relu = None
        for relu, activation, with_residual in cases:
            residual = rand(rng, (N, F, OH, OW), dtype) if with_residual else none_y
            (y,) = run_kernel(
                conv_k.direct_conv_s1,
                build,
                x,
                Wt,
                b,
                PH,
                PW,
                relu,
                act.ACTIVATION_CODES[activation or "identity"],
                dtype(0.1),
                residual,
                False,
                Guarded((N, F, OH, OW), dtype),
                none_y,
                none_a,
                ALL_TAPS,
            )
            summed = y_ref + residual if with_residual else y_ref
            want = REF._activate(summed, "relu" if relu else activation, 0.1)
            close(y, want, dtype, f"direct_conv_s1 (relu={relu}, {activation=}, {with_residual=})")
            y_relu = y if relu else y_relu
        if OH % 2 == 0 and OW % 2 == 0:
            pooled, argmax = run_kernel(
                conv_k.direct_conv_s1,
                build,
                x,
                Wt,
                b,
                PH,
                PW,
                True,
                act.ACT_IDENTITY,
                dtype(0),
                none_y,
                True,
                none_y,
                Guarded((N, F, OH // 2, OW // 2), dtype),
                Guarded((N, F, OH // 2, OW // 2), np.int64),
                ALL_TAPS,
            )
            want_pooled, want_argmax = REF.maxpool2d(y_relu, 2)  # the relu=True run above
            close(pooled, want_pooled, dtype, "direct_conv_s1 (relu, pool)")
            np.testing.assert_array_equal(argmax, want_argmax)
        (dx,) = run_kernel(
            conv_k.direct_conv_s1,
            build,
            dy,
            flipped,
            np.zeros(C, dtype),
            KH - 1 - PH,
            KW - 1 - PW,
            False,
            act.ACT_IDENTITY,
            dtype(0),
            np.empty((N, C, 0, 0), dtype),
            False,
            Guarded(x.shape, dtype),
            np.empty((N, C, 0, 0), dtype),
            np.empty((N, C, 0, 0), np.int64),
            ALL_TAPS,
        )
        close(dx, dx_ref, dtype, "direct_conv_s1 (backward data)")
        relu_out = REF.relu(y_ref)
        masked_refs = REF.conv2d_backward(dy, x, Wt, (SH, SW), (PH, PW), relu_out=relu_out)
        none_i = np.empty((N, F, 0, 0), np.int64)
        none_f = np.empty((N, F, 0, 0), dtype)
        size = min(2, OH, OW)
        pooled, argmax = REF.maxpool2d(relu_out, size, 1)  # overlapping windows
        dp = rand(rng, pooled.shape, dtype)
        pooled_refs = REF.conv2d_backward(dp, x, Wt, (SH, SW), (PH, PW), pool=(argmax, pooled))
        for scatter in (True, False):
            for mode in (0, 1, 2):
                grad = (dy, dy, dp)[mode]
                mask = (dy, relu_out, none_f)[mode]
                pool = ((none_i, none_f), (none_i, none_f), (argmax, pooled))[mode]
                dx, dW, db = run_kernel(
                    conv_k.direct_backward_s1,
                    build,
                    x,
                    grad,
                    Wt,
                    flipped,
                    PH,
                    PW,
                    scatter,
                    mask,
                    mode,
                    *pool,
                    True,
                    True,
                    Guarded(x.shape, dtype),
                    Guarded(Wt.shape, dtype),
                    Guarded(F, dtype),
                    *conv_k.backward_items(dtype),
                    ALL_TAPS,
                )
                want = ((dx_ref, dW_ref, db_ref), masked_refs, pooled_refs)[mode]
                where = f"direct_backward_s1 (scatter={scatter}, mode={mode})"
                close(dx, want[0], dtype, where + " dx")
                close(dW, want[1], dtype, where + " dW")
                close(db, want[2], dtype, where + " db")
        dx = np.full(x.shape, SENTINEL, dtype)
        dW, db = run_kernel(
            conv_k.direct_backward_s1,
            build,
            x,
            dy,
            Wt,
            flipped,
            PH,
            PW,
            False,
            dy,
            0,
            none_i,
            none_f,
            False,
            True,
            dx,
            Guarded(Wt.shape, dtype),
            Guarded(F, dtype),
            *conv_k.backward_items(dtype),
            ALL_TAPS,
        )
        assert np.all(dx == SENTINEL), "direct_backward_s1 wrote dx without input_grad"
        close(dW, dW_ref, dtype, "direct_backward_s1 dW (no input_grad)")
        close(db, db_ref, dtype, "direct_backward_s1 db (no input_grad)")
        dW, db = np.full(Wt.shape, SENTINEL, dtype), np.full(F, SENTINEL, dtype)
        (dx,) = run_kernel(
            conv_k.direct_backward_s1,
            build,
            x,
            dy,
            Wt,
            flipped,
            PH,
            PW,
            False,
            dy,
            0,
            none_i,
            none_f,
            True,
            False,
            Guarded(x.shape, dtype),
            dW,
            db,
            *conv_k.backward_items(dtype),
            ALL_TAPS,
        )
        assert np.all(dW == SENTINEL) and np.all(db == SENTINEL), (
            "direct_backward_s1 wrote dW without weight_grad"
        )
        close(dx, dx_ref, dtype, "direct_backward_s1 dx (no weight_grad)")

    K = C * KH * KW
    (col,) = run_kernel(
        conv_k.im2col, build, x, KH, KW, SH, SW, PH, PW, OH, OW, Guarded((N * OH * OW, K), dtype)
    )
    np.testing.assert_array_equal(col, REF.im2col(x, KH, KW, stride, pad))
    (back,) = run_kernel(
        conv_k.col2im, build, col.copy(), KH, KW, SH, SW, PH, PW, OH, OW, Guarded(x.shape, dtype)
    )
    close(back, REF.col2im(col, x.shape, KH, KW, stride, pad), dtype, "col2im")

    chunk = min(chunk, N)
    rows = chunk * OH * OW
    slots = max(1, numba.get_num_threads())
    Wm = Wt.reshape(F, K)
    with single_threaded_blas():
        (_, _, y) = run_kernel(
            conv_k.im2col_forward,
            build,
            x,
            Wm,
            b,
            KH,
            KW,
            SH,
            SW,
            PH,
            PW,
            act.ACT_SIGMOID,
            dtype(0),
            chunk,
            Guarded((slots, rows * K), dtype, scratch=True),
            Guarded((slots, rows * F), dtype, scratch=True),
            Guarded((N, F, OH, OW), dtype),
        )
        close(y, REF.sigmoid(y_ref), dtype, "im2col_forward (sigmoid)")
    groups = min(-(-N // chunk), 16)

    def scratch(size):
        return Guarded((slots, size), dtype, scratch=True)

    def backward(weight_grad, input_grad, col, dcol, dw, dw_groups, dx, dWm, db, kernel=None):
        """im2col_backward's (or ``kernel``'s) Guarded outputs; unguarded arrays must stay
        untouched."""
        with single_threaded_blas():
            return run_kernel(
                kernel or conv_k.im2col_backward,
                build,
                *(x, dy, Wm, KH, KW, SH, SW, PH, PW, chunk, weight_grad, input_grad),
                *(col, scratch(rows * F), dcol, dw, dw_groups, dx, dWm, db),
            )

    *_, dx, dWm, db = backward(
        True,
        True,
        *(scratch(rows * K), scratch(rows * K), scratch(F * K), Guarded((groups, F * K + F), dtype)),
        *(Guarded(x.shape, dtype), Guarded((F, K), dtype), Guarded(F, dtype)),
    )
    close(dx, dx_ref, dtype, "im2col_backward dx")
    close(dWm.reshape(Wt.shape), dW_ref, dtype, "im2col_backward dW")
    close(db, db_ref, dtype, "im2col_backward db")
    # without weight_grad: x is not unfolded, and dWm, db and their scratch stay untouched
    untouched = [
        np.full(shape, SENTINEL, dtype) for shape in ((slots, rows * K), (slots, F * K), (groups, F * K + F))
    ]
    dWm, db = np.full((F, K), SENTINEL, dtype), np.full(F, SENTINEL, dtype)
    *_, dx = backward(
        False, True, untouched[0], scratch(rows * K), *untouched[1:], Guarded(x.shape, dtype), dWm, db
    )
    close(dx, dx_ref, dtype, "im2col_backward dx (no weight_grad)")
    # the build without the weight-gradient code: the same dx, bit for bit, the rest untouched
    *_, dx_data = backward(
        False,
        True,
        untouched[0],
        scratch(rows * K),
        *untouched[1:],
        Guarded(x.shape, dtype),
        dWm,
        db,
        kernel=conv_k.im2col_backward_data,
    )
    np.testing.assert_array_equal(dx_data, dx, err_msg="im2col_backward_data dx")
    # without input_grad: dx and the dcol rows stay untouched
    untouched_dcol, untouched_dx = (
        np.full((slots, rows * K), SENTINEL, dtype),
        np.full(x.shape, SENTINEL, dtype),
    )
    *_, dWm, db = backward(
        True,
        False,
        *(scratch(rows * K), untouched_dcol, scratch(F * K), Guarded((groups, F * K + F), dtype)),
        *(untouched_dx, Guarded((F, K), dtype), Guarded(F, dtype)),
    )
    close(dWm.reshape(Wt.shape), dW_ref, dtype, "im2col_backward dW (no input_grad)")
    close(db, db_ref, dtype, "im2col_backward db (no input_grad)")


@SETTINGS
@given(**geometry)
def test_pool_kernels_write_only_their_outputs(N, C, F, H, W, KH, KW, SH, SW, PH, PW, dtype, build, seed):
    assume(PH < KH and PW < KW and KH <= H + 2 * PH and KW <= W + 2 * PW)
    pool_canaries(N, C, H, W, KH, KW, SH, SW, PH, PW, dtype, build, seed)


@SETTINGS
@given(**{**geometry, "KH": st.just(3), "KW": st.just(3), "SH": st.integers(1, 2), "SW": st.integers(1, 2)})
def test_pool_kernels_3x3_write_only_their_outputs(N, C, F, H, W, KH, KW, SH, SW, PH, PW, dtype, build, seed):
    """3x3 windows at strides 1 and 2, the case whose taps the whole-plane kernel unrolls."""
    test_pool_kernels_write_only_their_outputs.hypothesis.inner_test(
        N, C, F, H, W, KH, KW, SH, SW, PH, PW, dtype, build, seed
    )


def pool_canaries(N, C, H, W, KH, KW, SH, SW, PH, PW, dtype, build, seed):
    rng = np.random.default_rng(seed)
    size, stride, pad = (KH, KW), (SH, SW), (PH, PW)
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    x = rand(rng, (N, C, H, W), dtype)
    dy = rand(rng, (N, C, OH, OW), dtype)
    slots = max(1, numba.get_num_threads())

    def rows_kernel(values):
        """The row kernel on ``values``, its rows as the op makes them: (y, argmax)."""
        *_, y, argmax = run_kernel(
            pool_k.maxpool_forward_rows,
            build,
            *(values, KH, KW, SH, SW, PH, PW),
            Guarded((slots, W + 2 * PW), dtype, scratch=True),
            Guarded((slots, W + 2 * PW), np.int64, scratch=True),
            Guarded((N, C, OH, OW), dtype),
            Guarded((N, C, OH, OW), np.int64),
        )
        return y, argmax

    y, argmax = rows_kernel(x)
    y_ref, argmax_ref = REF.maxpool2d(x, size, stride, pad)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    fast_2x2 = getattr(pool_k, "maxpool_forward_2x2", None)  # the 2x2 stride-2 fast path
    if fast_2x2 is not None and H >= 2 and W >= 2:
        y2, argmax2 = run_kernel(
            fast_2x2,
            build,
            x,
            Guarded((N, C, H // 2, W // 2), dtype),
            Guarded((N, C, H // 2, W // 2), np.int64),
        )
        y2_ref, argmax2_ref = REF.maxpool2d(x, 2, 2, 0)
        np.testing.assert_array_equal(y2, y2_ref)
        np.testing.assert_array_equal(argmax2, argmax2_ref)
        # the two-pass kernel for even planes, on x cropped to even H and W, with ties and NaN
        xe = np.ascontiguousarray(x[:, :, : H // 2 * 2, : W // 2 * 2])
        xe = np.round(xe * 2) / 2  # ties
        xe.reshape(-1)[::7] = np.nan
        y3, argmax3 = run_kernel(
            pool_k.maxpool_forward_2x2_even,
            build,
            xe,
            Guarded((N, C, H // 2, W // 2), dtype),
            Guarded((N, C, H // 2, W // 2), np.int64),
        )
        y3_ref, argmax3_ref = REF.maxpool2d(xe, 2, 2, 0)
        np.testing.assert_array_equal(y3, y3_ref)
        np.testing.assert_array_equal(argmax3, argmax3_ref)
    # the whole-plane kernel, with ties, NaN and all--inf windows
    xs = np.round(x * 2) / 2
    xs.reshape(-1)[::11] = np.nan
    xs.reshape(-1)[3::5] = -np.inf
    G = 1 + seed % (N * C)  # planes per stack, up to all of them (a last stack may be short)
    plane, wide = pool_k.wide_scratch(H, W, KH, KW, PH, PW, G)
    *_, yw, argmaxw = run_kernel(
        pool_k.maxpool_forward_wide,
        build,
        *(xs, KH, KW, SH, SW, PH, PW, G),
        Guarded((slots, plane), dtype, scratch=True),
        Guarded((slots, wide), dtype, scratch=True),
        Guarded((slots, wide), np.int32, scratch=True),
        Guarded((N, C, OH, OW), dtype),
        Guarded((N, C, OH, OW), np.int64),
    )
    yw_ref, argmaxw_ref = REF.maxpool2d(xs, size, stride, pad)
    np.testing.assert_array_equal(yw, yw_ref)
    np.testing.assert_array_equal(argmaxw, argmaxw_ref)
    # the 3x3 stride-1 pad-1 kernel (GoogLeNet's pooling branch), on the same values
    same = pool_k.same_3x3_scratch(H, W)
    first, last = pool_k.edge_columns(H, W)
    *_, ys, argmaxs = run_kernel(
        pool_k.maxpool_forward_3x3_same,
        build,
        *(xs, G),
        Guarded((slots, same), dtype, scratch=True),
        first,
        last,
        Guarded((N, C, H, W), dtype),
        Guarded((N, C, H, W), np.int64),
    )
    ys_ref, argmaxs_ref = REF.maxpool2d(xs, 3, 1, 1)
    np.testing.assert_array_equal(ys, ys_ref)
    np.testing.assert_array_equal(argmaxs, argmaxs_ref)
    # the 3x3 stride-2 kernel (AlexNet's and GoogLeNet's pooling), on the same values
    P3, Q3 = min(PH, 2), min(PW, 2)
    if H + 2 * P3 >= 3 and W + 2 * Q3 >= 3:
        out3 = (N, C, (H + 2 * P3 - 3) // 2 + 1, (W + 2 * Q3 - 3) // 2 + 1)
        length = pool_3x3_s2.scratch_3x3_s2(W, Q3, out3[2], dtype)
        *_, y3, argmax3 = run_kernel(
            pool_3x3_s2.maxpool_forward_3x3_s2,
            build,
            *(xs, P3, Q3, G),
            Guarded((slots, length), dtype, scratch=True),
            Guarded((slots, length), np.int32, scratch=True),
            Guarded(out3, dtype),
            Guarded(out3, np.int64),
        )
        y3_ref, argmax3_ref = REF.maxpool2d(xs, 3, 2, (P3, Q3))
        np.testing.assert_array_equal(y3, y3_ref)
        np.testing.assert_array_equal(argmax3, argmax3_ref)
    # the row kernel, on the same ties, NaN and all--inf windows
    yr, argmaxr = rows_kernel(xs)
    np.testing.assert_array_equal(yr, yw_ref)
    np.testing.assert_array_equal(argmaxr, argmaxw_ref)
    (dx,) = run_kernel(pool_k.maxpool_backward, build, dy, argmax.copy(), Guarded(x.shape, dtype))
    close(dx, REF.maxpool2d_backward(dy, argmax_ref, x.shape, size, stride, pad), dtype, "maxpool_backward")
    # indices outside the plane are counted and skipped: nothing is written out of bounds
    wild = argmax.copy()
    picked = np.arange(0, wild.size, 3)
    wild.reshape(-1)[picked] = np.where(picked % 2 == 1, -1 - seed, H * W + seed)
    kept = np.ones(argmax.shape, bool)
    kept.reshape(-1)[picked] = False
    dx_wild = Guarded(x.shape, dtype)
    outside = getattr(pool_k.maxpool_backward, build)(dy, wild, dx_wild.view)
    dx_wild.check("maxpool_backward with indices outside the plane")
    assert outside == (~kept).sum()
    close(
        dx_wild.view,
        REF.maxpool2d_backward(dy * kept, argmax_ref, x.shape, size, stride, pad),
        dtype,
        "maxpool_backward skipping indices outside the plane",
    )
    (y,) = run_kernel(
        pool_k.avgpool_forward, build, x, KH, KW, SH, SW, PH, PW, Guarded((N, C, OH, OW), dtype)
    )
    close(y, REF.avgpool2d(x, size, stride, pad), dtype, "avgpool_forward")
    (dx,) = run_kernel(pool_k.avgpool_backward, build, dy, KH, KW, SH, SW, PH, PW, Guarded(x.shape, dtype))
    close(dx, REF.avgpool2d_backward(dy, x.shape, size, stride, pad), dtype, "avgpool_backward")
    if H >= 2 and W >= 2:  # the 2x2 stride-2 kernels: the general kernels' numbers
        out2 = (N, C, H // 2, W // 2)
        (y2,) = run_kernel(pool_k.avgpool_forward_2x2, build, x, Guarded(out2, dtype))
        (y2_general,) = run_kernel(pool_k.avgpool_forward, build, x, 2, 2, 2, 2, 0, 0, Guarded(out2, dtype))
        close(y2, REF.avgpool2d(x, 2, 2, 0), dtype, "avgpool_forward_2x2")
        np.testing.assert_array_equal(y2, y2_general)  # the same four terms in the same order
        dy2 = rand(rng, out2, dtype)
        (dx2,) = run_kernel(pool_k.avgpool_backward_2x2, build, dy2, Guarded(x.shape, dtype))
        (dx2_general,) = run_kernel(
            pool_k.avgpool_backward, build, dy2, 2, 2, 2, 2, 0, 0, Guarded(x.shape, dtype)
        )
        np.testing.assert_array_equal(dx2, dx2_general)
        y_act = np.tanh(x)
        (dx3,) = run_kernel(
            pool_k.avgpool_backward_2x2_activation,
            build,
            dy2,
            y_act,
            act.ACT_TANH,
            dtype(0),
            Guarded(x.shape, dtype),
        )
        np.testing.assert_array_equal(dx3, NB.tanh_backward(dx2, y_act))  # the two ops apart
    for p in (2.0, 3.0):
        (y,) = run_kernel(
            pool_k.lppool_forward, build, x, KH, KW, SH, SW, PH, PW, p, Guarded((N, C, OH, OW), dtype)
        )
        y_ref = REF.lppool2d(x, size, stride, pad, p)
        close(y, y_ref, dtype, "lppool_forward")
        (dx,) = run_kernel(
            pool_k.lppool_backward, build, dy, x, y_ref, KH, KW, SH, SW, PH, PW, p, Guarded(x.shape, dtype)
        )
        close(dx, REF.lppool2d_backward(dy, x, y_ref, size, stride, pad, p), dtype, "lppool_backward")


@SETTINGS
@given(
    N=st.integers(1, 4),
    C=st.integers(1, 6),
    H=st.integers(1, 7),
    W=st.integers(1, 7),
    block=st.integers(1, 4),
    dtype=st.sampled_from(DTYPES),
    build=st.sampled_from(BUILDS),
    seed=st.integers(0, 2**31),
)
def test_norm_and_augment_kernels_write_only_their_outputs(N, C, H, W, block, dtype, build, seed):
    norm_augment_canaries(N, C, H, W, block, dtype, build, seed)


def feature_norm_canaries(N, D, block, dtype, build, seed):
    """The (N, D) batch norm kernels, on x seen as (N, D, 1): identity and tanh forward;
    backward from dy, and from g = dy * f' already in dx (the op's way with an activation)."""
    from fastnn.kernels import norm as norm_k

    rng = np.random.default_rng(seed)
    d = np.dtype(dtype).type
    x, dy = rand(rng, (N, D), dtype), rand(rng, (N, D), dtype)
    gamma, beta = rand(rng, D, dtype) + d(2), rand(rng, D, dtype)
    x3 = x.reshape(N, D, 1)
    y_ref, mean_ref, var_ref = REF.batchnorm(x, gamma, beta, 1e-5)
    for code, activation, expected in ((0, None, y_ref), (3, "tanh", np.tanh(y_ref))):
        y, mean, var, _ = run_kernel(
            norm_k.batchnorm_forward_features,
            build,
            *(x3, gamma, beta, d(1e-5), block, code, d(0)),
            *(Guarded(x3.shape, dtype), Guarded(D, dtype), Guarded(D, dtype), Guarded(D, dtype)),
        )
        close(y.reshape(N, D), expected, dtype, f"batchnorm_forward_features {activation}")
        close(mean, mean_ref, dtype, "batchnorm_forward_features mean")
        close(var, var_ref, dtype, "batchnorm_forward_features var")
        act_out = None if activation is None else expected
        want = REF.batchnorm_backward(dy, x, gamma, mean_ref, var_ref, 1e-5, activation, act_out)
        if activation is None:
            dx_in = Guarded(x3.shape, dtype)
        else:  # g = dy * f' (tanh's, from its output) already in dx
            dx_in = Guarded(x3.shape, dtype, fill=(dy * (1 - expected * expected))[:, :, None])
        outs = run_kernel(
            norm_k.batchnorm_backward_features,
            build,
            *(dy.reshape(x3.shape), x3, gamma, mean_ref, var_ref, d(1e-5), block),
            *(0 if activation is None else norm_k.GRADIENT_IN_DX, d(0), dy.reshape(x3.shape)),
            *(dx_in, Guarded(D, dtype), Guarded(D, dtype)),
        )
        for got, w in zip(outs, want):
            close(got.reshape(w.shape), w, dtype, f"batchnorm_backward_features {activation}")


def norm_augment_canaries(N, C, H, W, block, dtype, build, seed):
    from fastnn.kernels import augment as augment_k
    from fastnn.kernels import norm as norm_k

    rng = np.random.default_rng(seed)
    d = np.dtype(dtype).type
    x = rand(rng, (N, C, H, W), dtype)
    x3 = x.reshape(N, C, H * W)
    gamma, beta, dy = rand(rng, C, dtype) + d(2), rand(rng, C, dtype), rand(rng, x.shape, dtype)
    no_residual = np.empty((0, 0, 0), dtype)
    y, mean, var, inv_std = run_kernel(
        norm_k.batchnorm_forward,
        build,
        x3,
        gamma,
        beta,
        d(1e-5),
        block,
        0,
        d(0),
        no_residual,
        Guarded(x3.shape, dtype),
        0,
        Guarded(C, dtype),
        Guarded(C, dtype),
        Guarded(C, dtype),
    )
    y_ref, mean_ref, var_ref = REF.batchnorm(x, gamma, beta, 1e-5)
    close(y.reshape(x.shape), y_ref, dtype, "batchnorm_forward")
    close(mean, mean_ref, dtype, "batchnorm_forward mean")
    close(var, var_ref, dtype, "batchnorm_forward var")
    outs = run_kernel(
        norm_k.batchnorm_backward,
        build,
        dy.reshape(x3.shape),
        0,
        x3,
        gamma,
        mean_ref,
        var_ref,
        d(1e-5),
        block,
        0,
        d(0),
        dy.reshape(x3.shape),
        0,
        Guarded(x3.shape, dtype),
        Guarded(C, dtype),
        Guarded(C, dtype),
    )
    for got, want in zip(outs, REF.batchnorm_backward(dy, x, gamma, mean_ref, var_ref, 1e-5)):
        close(got.reshape(want.shape), want, dtype, "batchnorm_backward")
    # ReLU, then tanh (the kernel for the sigmoid and tanh): f in the store
    (relu_y, *_) = run_kernel(
        norm_k.batchnorm_forward,
        build,
        *(x3, gamma, beta, d(1e-5), block, 1, d(0), no_residual),
        *(Guarded(x3.shape, dtype), 0, Guarded(C, dtype), Guarded(C, dtype), Guarded(C, dtype)),
    )
    close(relu_y.reshape(x.shape), np.maximum(y_ref, 0), dtype, "batchnorm_forward relu")
    # with a residual r: relu(bn(x) + r), a residual block's sum and ReLU in the store
    r = rand(rng, x3.shape, dtype)
    (sum_y, *_) = run_kernel(
        norm_k.batchnorm_forward,
        build,
        *(x3, gamma, beta, d(1e-5), block, 1, d(0), r),
        *(Guarded(x3.shape, dtype), 0, Guarded(C, dtype), Guarded(C, dtype), Guarded(C, dtype)),
    )
    want = REF.batchnorm(x, gamma, beta, 1e-5, activation="relu", residual=r.reshape(x.shape))[0]
    close(sum_y.reshape(x.shape), want, dtype, "batchnorm_forward relu(bn(x) + r)")
    # the same into channels 2 .. C + 1 of a larger array (a Concat block's output), and its
    # backward reading dy and the output there: the other channels are not touched
    fill = rand(rng, (N, C + 3, H * W), dtype)
    (wide_y, *_) = run_kernel(
        norm_k.batchnorm_forward,
        build,
        *(x3, gamma, beta, d(1e-5), block, 1, d(0), no_residual),
        *(Guarded(fill.shape, dtype, fill=fill), 2, Guarded(C, dtype), Guarded(C, dtype), Guarded(C, dtype)),
    )
    np.testing.assert_array_equal(wide_y[:, 2 : 2 + C], relu_y, err_msg="batchnorm_forward into channels 2..")
    np.testing.assert_array_equal(wide_y[:, :2], fill[:, :2], err_msg="batchnorm_forward wrote channels 0, 1")
    np.testing.assert_array_equal(wide_y[:, 2 + C :], fill[:, 2 + C :], err_msg="batchnorm_forward: past it")
    wide_dy = rand(rng, (N, C + 1, H * W), dtype)
    wide_dy[:, 1:] = dy.reshape(x3.shape)
    window_grads = run_kernel(
        norm_k.batchnorm_backward,
        build,
        *(wide_dy, 1, x3, gamma, mean_ref, var_ref, d(1e-5), block, 1, d(0), wide_y, 2),
        *(Guarded(x3.shape, dtype), Guarded(C, dtype), Guarded(C, dtype)),
    )
    own_grads = run_kernel(
        norm_k.batchnorm_backward,
        build,
        *(dy.reshape(x3.shape), 0, x3, gamma, mean_ref, var_ref, d(1e-5), block, 1, d(0), relu_y.copy(), 0),
        *(Guarded(x3.shape, dtype), Guarded(C, dtype), Guarded(C, dtype)),
    )
    for got, want in zip(window_grads, own_grads):
        np.testing.assert_array_equal(got, want, err_msg="batchnorm_backward reading channel slices")
    # with a fused activation (tanh): f in the store, dy * f' kept in dx until dx overwrites it
    (act_y, *_) = run_kernel(
        norm_k.batchnorm_forward_smooth,
        build,
        x3,
        gamma,
        beta,
        d(1e-5),
        block,
        3,
        d(0),
        no_residual,
        Guarded(x3.shape, dtype),
        0,
        Guarded(C, dtype),
        Guarded(C, dtype),
        Guarded(C, dtype),
    )
    close(act_y.reshape(x.shape), np.tanh(y_ref), dtype, "batchnorm_forward tanh")
    outs = run_kernel(
        norm_k.batchnorm_backward,
        build,
        dy.reshape(x3.shape),
        0,
        x3,
        gamma,
        mean_ref,
        var_ref,
        d(1e-5),
        block,
        3,
        d(0),
        act_y.copy(),
        0,
        Guarded(x3.shape, dtype),
        Guarded(C, dtype),
        Guarded(C, dtype),
    )
    want = REF.batchnorm_backward(dy, x, gamma, mean_ref, var_ref, 1e-5, "tanh", act_y.reshape(x.shape))
    for got, w in zip(outs, want):
        close(got.reshape(w.shape), w, dtype, "batchnorm_backward tanh")
    feature_norm_canaries(N * H * W, C, block, dtype, build, seed)
    (y,) = run_kernel(norm_k.channel_affine, build, x3, gamma, beta, block, Guarded(x3.shape, dtype))
    close(y, x3 * gamma[:, None] + beta[:, None], dtype, "channel_affine")
    (dx,) = run_kernel(norm_k.channel_scale, build, x3, gamma, block, Guarded(x3.shape, dtype))
    close(dx, x3 * gamma[:, None], dtype, "channel_scale")

    shifts_y, shifts_x = rng.integers(-H, H + 1, N), rng.integers(-W, W + 1, N)
    (out,) = run_kernel(augment_k.shift, build, x, shifts_y, shifts_x, Guarded(x.shape, dtype))
    for n in range(N):
        want = np.zeros_like(x[n])
        sy, sx = shifts_y[n], shifts_x[n]
        want[:, max(sy, 0) : H + min(sy, 0), max(sx, 0) : W + min(sx, 0)] = x[n][
            :, max(-sy, 0) : H + min(-sy, 0), max(-sx, 0) : W + min(-sx, 0)
        ]
        np.testing.assert_array_equal(out[n], want)
    flags = rng.integers(0, 2, N)
    (out,) = run_kernel(augment_k.flip_horizontal, build, x, flags, Guarded(x.shape, dtype))
    np.testing.assert_array_equal(out, np.where(flags[:, None, None, None] != 0, x[..., ::-1], x))
    identity = np.tile(np.array([[1, 0, 0], [0, 1, 0]], dtype), (N, 1, 1))
    (out,) = run_kernel(augment_k.warp_bilinear, build, x, identity, Guarded(x.shape, dtype))
    close(out, x, dtype, "warp_bilinear (identity)")
    A = (identity + rng.normal(0, 0.3, identity.shape)).astype(dtype)
    run_kernel(augment_k.warp_bilinear, build, x, A, Guarded(x.shape, dtype))


def all_kernels():
    """Every ParallelKernel defined in a module of fastnn.kernels (subpackages such as
    ``conv/`` included), by qualified name."""
    found = {}
    for info in pkgutil.walk_packages(fastnn.kernels.__path__, "fastnn.kernels."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, ParallelKernel) and value.py_func.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


CANARY_MODULES = {
    "affine",
    "activations",
    "arrays",
    "losses",
    "optim",
    "pool",
    "pool_3x3_s2",
    "conv",
    "norm",
    "augment",
}


@SETTINGS
@given(
    N=st.integers(1, 4),
    C=st.integers(1, 5),
    S=st.integers(1, 2000),  # rows of up to 10,000 values: pieces of BLOCK (4,096) and a rest
    dtype=st.sampled_from(DTYPES),
    build=st.sampled_from(BUILDS),
    seed=st.integers(0, 2**16),
)
def test_array_kernels_write_only_their_outputs(N, C, S, dtype, build, seed):
    arrays_canaries(N, C, S, dtype, build, seed)


def arrays_canaries(N, C, S, dtype, build, seed):
    """The blocks' sums and channel copies, rows of C*S values cut in pieces of BLOCK."""
    from fastnn.kernels import arrays as arrays_k

    rng = np.random.default_rng(seed)
    a, b = rand(rng, N * C * S, dtype), rand(rng, N * C * S, dtype)
    (y,) = run_kernel(arrays_k.add_forward, build, a, b, Guarded(a.size, dtype))
    np.testing.assert_array_equal(y, a + b)
    rows = a.reshape(N, C * S)
    start = int(rng.integers(0, C)) * S
    length = C * S - start
    (part,) = run_kernel(arrays_k.copy_runs, build, rows, start, Guarded((N, length), dtype), 0, length)
    np.testing.assert_array_equal(part, rows[:, start:])
    wide = Guarded((N, C * S + length), dtype, fill=0)
    (joined,) = run_kernel(arrays_k.copy_runs, build, part, 0, wide, C * S, length)
    np.testing.assert_array_equal(joined[:, C * S :], rows[:, start:])
    np.testing.assert_array_equal(joined[:, : C * S], 0)


#: Each fused forward kernel and its rectified variant (activations.rectified_variant).
RECTIFIED = [
    (aff.affine_forward, aff.affine_forward_rectified),
    (conv_k.direct_conv_s1, conv_k.direct_conv_s1_rectified),
    (conv_k.channel_tiled_forward, conv_k.channel_tiled_forward_rectified),
    (conv_k.pointwise_forward, conv_k.pointwise_forward_rectified),
    (conv_k.im2col_forward, conv_k.im2col_forward_rectified),
]


@SETTINGS
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 5),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    F=st.integers(1, 40),
    K=st.integers(1, 3),
    stride=st.integers(1, 2),
    dtype=st.sampled_from(DTYPES),
    build=st.sampled_from(BUILDS),
    seed=st.integers(0, 2**16),
)
def test_rectified_kernels_give_the_full_kernels_bits(N, C, H, W, F, K, stride, dtype, build, seed):
    assume(H >= K and W >= K)
    rectified_canaries(N, C, H, W, F, K, stride, dtype, build, seed)


def rectified_canaries(N, C, H, W, F, K, stride, dtype, build, seed):
    """The rectified variant of each fused forward kernel, for the identity, ReLU and leaky
    ReLU (with a residual where the kernel takes one): its outputs written in bounds, and
    bit for bit the full kernel's on the same arguments."""
    rng = np.random.default_rng(seed)
    x, Wt, b = rand(rng, (N, C, H, W), dtype), rand(rng, (F, C, K, K), dtype), rand(rng, F, dtype)
    pad = K // 2
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    none = np.empty((0, 0, 0, 0), dtype)
    residuals = (none, rand(rng, (N, F, OH, OW), dtype))
    slots = max(1, numba.get_num_threads())
    T = C * K * K

    def twins(pair, *args):
        """Both kernels of ``pair`` on ``args``; a callable argument makes a fresh Guarded output."""
        got = [run_kernel(kernel, build, *[a() if callable(a) else a for a in args]) for kernel in pair]
        for full, rectified in zip(*got):
            np.testing.assert_array_equal(rectified, full, err_msg=f"{pair[1].__name__}.{build}")

    def out(shape, kind=dtype, scratch=False):
        return lambda: Guarded(shape, kind, scratch=scratch)

    for code in (act.ACT_IDENTITY, act.ACT_RELU, act.ACT_LEAKY_RELU):
        alpha = dtype(0.1)
        xa, Wa = x.reshape(N, C * H * W), rand(rng, (C * H * W, F), dtype)
        twins(RECTIFIED[0], xa, Wa, b, code, alpha, np.empty((0, 0, 0), dtype), out((N, F)))
        for residual in residuals:
            if stride == 1:
                placeholder, no_argmax = np.empty((N, F, 0, 0), dtype), np.empty((N, F, 0, 0), np.int64)
                twins(
                    RECTIFIED[1],
                    *(x, Wt, b, pad, pad, False, code, alpha, residual, False),
                    *(out((N, F, OH, OW)), placeholder, no_argmax, ALL_TAPS),
                )
            window = (K, K, stride, stride, pad, pad)
            rows = conv_k.pack_weight_rows(Wt)
            twins(RECTIFIED[2], x, rows, b, *window, code, alpha, residual, out((N, F, OH, OW)))
            if K == 1 and stride == 1:
                twins(RECTIFIED[3], x, Wt.reshape(F, C), b, code, alpha, residual, out((N, F, H, W)))
        with single_threaded_blas():
            twins(
                RECTIFIED[4],
                *(x, Wt.reshape(F, T), b, K, K, stride, stride, pad, pad, code, alpha, N),
                out((slots, N * OH * OW * T), scratch=True),
                out((slots, N * OH * OW * F), scratch=True),
                out((N, F, OH, OW)),
            )


def test_every_kernel_has_a_canary_case():
    """Each canary test, run once on a fixed example, must between them call every kernel."""
    example = dict(dtype=np.float32, build="serial", seed=0)
    test_dense_kernels_write_only_their_outputs.hypothesis.inner_test(n=2, d=3, m=4, **example)
    test_optimizer_kernels_write_only_their_buffers.hypothesis.inner_test(size=5, wd=0.0, l1=0.0, **example)
    geometry = dict(N=2, C=2, H=5, W=4, KH=3, KW=2, SH=1, SW=1, PH=1, PW=1, **example)
    conv_canaries(F=3, chunk=1, **geometry)
    pool_canaries(**geometry)
    norm_augment_canaries(N=2, C=3, H=4, W=5, block=2, **example)
    arrays_canaries(N=2, C=3, S=5, **example)
    rectified_canaries(N=2, C=3, H=5, W=4, F=3, K=3, stride=1, **example)
    rectified_canaries(N=2, C=3, H=5, W=4, F=3, K=1, stride=1, **example)
    missing = canary_kernels_outside(COVERED)
    assert not missing, f"kernels without a canary case in {__name__}: {missing}"


def canary_kernels_outside(seen) -> list[str]:
    """The qualified names of the kernels of the canary modules that are not in ``seen``."""
    return sorted(
        name
        for name, kernel in all_kernels().items()
        if name.split(".")[2] in CANARY_MODULES and kernel not in seen
    )


def compare_builds(dtype) -> dict:
    """Run the canary cases in twin mode (:func:`run_kernel`: each kernel's other build on
    the same inputs) at sizes that split the parallel work into several parts (images,
    blocks of BLOCK values, GEMM parts, dW groups): {"missing": kernels not compared,
    "differ": kernels whose serial and parallel builds gave different bits, "digests":
    {kernel: SHA-256 of all its compared outputs}}."""
    global TWINNED, DIGESTS
    TWINNED = {}
    DIGESTS = {}
    try:
        example = dict(dtype=np.dtype(dtype).type, build="parallel", seed=3)
        test_dense_kernels_write_only_their_outputs.hypothesis.inner_test(n=37, d=29, m=41, **example)
        test_optimizer_kernels_write_only_their_buffers.hypothesis.inner_test(
            size=9000, wd=0.01, l1=0.001, **example
        )
        for geometry in (
            dict(N=5, C=3, H=9, W=11, KH=3, KW=3, SH=1, SW=1, PH=1, PW=1),
            dict(N=4, C=2, H=12, W=10, KH=5, KW=3, SH=2, SW=3, PH=2, PW=1),
        ):
            conv_canaries(F=35, chunk=2, **geometry, **example)
            pool_canaries(**geometry, **example)
        norm_augment_canaries(N=5, C=3, H=20, W=21, block=2, **example)
        arrays_canaries(N=3, C=2, S=1500, **example)
        rectified_canaries(N=4, C=3, H=18, W=17, F=35, K=3, stride=1, **example)
        rectified_canaries(N=4, C=3, H=9, W=8, F=35, K=1, stride=1, **example)
        rectified_canaries(N=4, C=3, H=9, W=8, F=35, K=3, stride=2, **example)
        missing = canary_kernels_outside(TWINNED)
        differ = sorted(kernel.__name__ for kernel, same in TWINNED.items() if not same)
        digests = {name: digest.hexdigest() for name, digest in sorted(DIGESTS.items())}
        return {"missing": missing, "differ": differ, "digests": digests}
    finally:
        TWINNED = DIGESTS = None


_COMPARE_BUILDS = (
    "import json, sys; sys.path.insert(0, sys.argv[1]); import test_kernel_properties as t; "
    "print(json.dumps({d: t.compare_builds(d) for d in ('float32', 'float64')}))"
)


@pytest.mark.slow
def test_the_serial_and_parallel_builds_agree_bit_for_bit(tmp_path):
    """Every kernel's serial build gives the parallel build's bits: splitting its work over
    the threads changes no sum's order (which the tiered compiling that performance.md
    weighs would rely on). And a build loaded from the kernel cache gives the bits of the
    build compiled in the process that filled it, so the first run after an install trains
    what every later run trains. ``compare_builds`` runs twice, both dtypes, in two fresh
    processes on one kernel cache: the first compiles every build (about 6 minutes here),
    the second loads them; each must find the two builds equal, and both must end with the
    same output digests."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    tests = os.path.dirname(os.path.abspath(__file__))
    runs = {}
    for run in ("compiled", "cached"):
        command = [sys.executable, "-c", _COMPARE_BUILDS, tests]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, f"{run}: {done.stderr[-3000:]}"
        runs[run] = json.loads(done.stdout.strip().splitlines()[-1])
        for dtype, result in runs[run].items():
            missing = result["missing"]
            assert not missing, f"{run}, {dtype}: kernels whose builds were not compared: {missing}"
            assert not result["differ"], (
                f"{run}, {dtype}: serial and parallel builds gave different bits: {result['differ']}"
            )
    for dtype in runs["compiled"]:
        compiled, cached = runs["compiled"][dtype]["digests"], runs["cached"][dtype]["digests"]
        assert compiled.keys() == cached.keys()
        moved = sorted(name for name in compiled if compiled[name] != cached[name])
        assert not moved, f"{dtype}: builds loaded from the cache gave other bits than compiled ones: {moved}"


# =================================================================== ops: layouts, dtype, contiguity


def _ops_cases(rng, dtype):
    """{op name: (args, indices of the args that are array inputs free to take any layout)}.

    Sizes are drawn from ``rng``: batch N, features D, outputs M (at least 3 classes),
    channels, image sides, kernel sides and the flat buffer size all vary.
    """
    r = lambda *shape: rand(rng, shape, dtype)  # noqa: E731
    i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    N, D, M, size = i(1, 7), i(1, 6), i(3, 6), i(1, 40)
    C, F, H, W, kh, kw = i(1, 3), i(1, 4), i(3, 8), i(3, 8), i(1, 3), i(1, 3)
    x, Wd, b, dy = r(N, D), r(D, M), r(M), r(N, M)
    img, Wc, bc = r(N, C, H, W), r(F, C, kh, kw), r(F)
    t = rng.integers(0, M, N)
    probs = REF.softmax(dy)
    params = lambda: r(size)  # noqa: E731
    state = lambda: rng.uniform(0, 1, size).astype(dtype)  # noqa: E731
    pooled, argmax = REF.maxpool2d(img, 2, 1, 1)
    col = REF.im2col(img, kh, kw, 1, 1)
    conv_out = REF.conv2d(img, Wc, bc, 1, 1)
    gamma, beta = r(C) + 1, r(C)
    var = rng.uniform(0.5, 1.5, C).astype(dtype)
    cases = {
        "affine": ((x, Wd, b), (0, 1, 2)),
        "affine_backward": ((dy, x, Wd), (0, 1, 2)),
        "softmax_cross_entropy": ((dy, t), (0, 1)),
        "softmax_cross_entropy_backward": ((probs, t), (0, 1)),
        "sigmoid_cross_entropy": ((dy, rng.integers(0, 2, dy.shape)), (0, 1)),
        "sigmoid_cross_entropy_backward": ((REF.sigmoid(dy), rng.random(dy.shape) < 0.5), (0, 1)),
        "mse": ((x, r(N, D)), (0, 1)),
        "mse_backward": ((x, r(N, D)), (0, 1)),
        "softmax": ((x,), (0,)),
        "softmax_backward": ((dy, probs), (0, 1)),
        "leaky_relu": ((x, 0.2), (0,)),
        "add_relu": ((x, r(N, D)), (0, 1)),
        "add": ((img, r(*img.shape)), (0, 1)),
        "concat_channels": ((img, r(N, F, H, W)), (0, 1)),
        "channel_slice": ((img, 0, C), (0,)),
        "leaky_relu_backward": ((x, r(N, D), 0.2), (0, 1)),
        "all_finite": ((x,), (0,)),
        "dropout": ((x, 0.3, int(rng.integers(2**64, dtype=np.uint64))), (0,)),
        "conv2d": ((img, Wc, bc, 1, 1), (0, 1, 2)),
        "conv2d_backward": ((r(*conv_out.shape), img, Wc, 1, 1), (0, 1, 2)),
        "conv2d_relu_maxpool2x2": ((img, Wc, bc, 1, 1), (0, 1, 2)),
        "im2col": ((img, kh, kw, 1, 1), (0,)),
        "col2im": ((col, img.shape, kh, kw, 1, 1), (0,)),
        "maxpool2d": ((img, 2, 1, 1), (0,)),
        "maxpool2d_backward": ((r(*argmax.shape), argmax, img.shape, 2, 1, 1), (0, 1)),
        "avgpool2d": ((img, 2, 1, 1), (0,)),
        "avgpool2d_backward": ((r(*pooled.shape), img.shape, 2, 1, 1), (0,)),
        "lppool2d": ((img, 2, 1, 1, 3.0), (0,)),
        "lppool2d_backward": ((r(*pooled.shape), img, REF.lppool2d(img, 2, 1, 1), 2, 1, 1), (0, 1, 2)),
        "batchnorm": ((img, gamma, beta), (0, 1, 2)),
        "batchnorm_backward": ((r(*img.shape), img, gamma, r(C), var), (0, 1, 2, 3, 4)),
        "batchnorm_inference": ((r(N, C), gamma, beta, r(C), var), (0, 1, 2, 3, 4)),
        "batchnorm_inference_backward": ((r(*img.shape), gamma, var), (0, 1, 2)),
        "sgd_step": ((params(), params(), 0.1, 0.01, 0.001), (1,)),
        "momentum_step": ((params(), params(), state(), 0.1, 0.9), (1,)),
        "nesterov_step": ((params(), params(), state(), 0.1, 0.9), (1,)),
        "adagrad_step": ((params(), params(), state(), 0.1, 1e-7), (1,)),
        "rmsprop_step": ((params(), params(), state(), 0.1, 0.99, 1e-7), (1,)),
        "adam_step": ((params(), params(), state(), state(), 2, 0.01, 0.9, 0.999, 1e-7), (1,)),
        "adamw_step": ((params(), params(), state(), state(), 2, 0.01, 0.9, 0.999, 1e-8, 0.1), (1,)),
    }
    for name in ("identity", "heaviside", "sigmoid", "tanh", "relu"):
        cases[name] = ((x,), (0,))
    for name in (
        "identity_backward",
        "heaviside_backward",
        "sigmoid_backward",
        "tanh_backward",
        "relu_backward",
    ):
        cases[name] = ((dy, r(N, M)), (0, 1))
    return cases


def public_ops():
    return sorted(
        name for name, value in inspect.getmembers(REF) if not name.startswith("_") and callable(value)
    )


def test_every_op_has_a_layout_case():
    missing = sorted(set(public_ops()) - set(_ops_cases(np.random.default_rng(0), np.float32)))
    assert not missing, f"ops without a layout case in {__name__}: {missing}"


def _layout(a: np.ndarray, kind: str) -> np.ndarray:
    """``a`` (unchanged values) as a strided view, Fortran order, big-endian or read-only array."""
    if kind == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],) if a.ndim else (), a.dtype)
        view = wide[..., ::2] if a.ndim else wide
        view[...] = a
        return view
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "big-endian":
        return a.astype(a.dtype.newbyteorder(">"))
    if kind == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    return a


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


def test_identity_and_heaviside_backward_give_native_c_contiguous_outputs():
    big = np.asfortranarray(np.ones((3, 4), dtype=">f4"))
    for out in (NB.identity(big), NB.identity_backward(big, big), NB.heaviside_backward(big, big)):
        assert out.dtype == np.float32 and out.dtype.isnative and out.flags.c_contiguous


LAYOUTS = ("strided", "fortran", "big-endian", "readonly")


@pytest.mark.parametrize("op", public_ops())
@settings(max_examples=4, deadline=None)
@given(dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31))
def test_ops_keep_dtype_and_contiguity_on_any_layout(op, dtype, seed):
    """Each array input in turn, in each odd layout: the numba op gives the same bits as
    on plain copies, C-contiguous native outputs of the input dtype, values close to the
    reference, and leaves the input untouched.

    Optimizer steps update params and state in place (those must be plain buffers);
    their gradient takes the odd layouts and the updated buffers must match bit for bit.
    """
    args, free = _ops_cases(np.random.default_rng(seed), dtype)[op]
    fresh = lambda: [a.copy() if isinstance(a, np.ndarray) else a for a in args]  # noqa: E731
    reference = _outputs(getattr(REF, op)(*fresh()))
    plain = fresh()
    expected = _outputs(getattr(NB, op)(*plain))
    if op.endswith("_step"):
        buffers = [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and k != 1]
        expected = tuple(plain[k] for k in buffers)
        ref_args = fresh()
        getattr(REF, op)(*ref_args)
        reference = tuple(ref_args[k] for k in buffers)
    for position in free:
        for layout in LAYOUTS:
            if layout == "big-endian" and args[position].dtype.kind == "i":
                continue
            where = f"{op}, argument {position} {layout}"
            odd = fresh()
            odd[position] = _layout(args[position], layout)
            odd_input = odd[position].copy()
            got = _outputs(getattr(NB, op)(*odd))
            np.testing.assert_array_equal(odd[position], odd_input, err_msg=f"{where}: input modified")
            if op.endswith("_step"):
                got = tuple(odd[k] for k in buffers)
            assert len(got) == len(expected) == len(reference)
            for g, e, r in zip(got, expected, reference):
                if not isinstance(e, np.ndarray):
                    assert g == e, where
                    continue
                assert g.dtype == e.dtype and g.dtype.isnative, f"{where}: dtype {g.dtype}"
                assert g.dtype == np.dtype(dtype) or g.dtype.kind == "i", f"{where}: dtype {g.dtype}"
                assert g.flags.c_contiguous, f"{where}: output is not C-contiguous"
                np.testing.assert_array_equal(g, e, err_msg=where)
                if g.dtype.kind == "f":
                    close(g, r, dtype, f"{where}, against the reference")
                else:
                    np.testing.assert_array_equal(g, r, err_msg=where)
