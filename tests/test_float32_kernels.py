"""float32 stays float32: no kernel does double-precision arithmetic on float32 data.

In Numba one float literal (``0.5 * d * d``, ``s = 0.0``) silently promotes a
float32 kernel to float64 and roughly halves its speed, without changing any
result a value test could see. So we read the LLVM IR of every ParallelKernel's
float32 builds (serial and parallel; the parallel IR includes the gufunc that
runs the ``prange`` body) and look for double arithmetic.

Numba keeps no IR for code it loaded from its on-disk cache, so for those builds
we compile an uncached twin: same Python function, same flags
(``dispatcher.targetoptions``), same signatures.
"""

from __future__ import annotations

import re
import warnings

import numba
import numpy as np
import pytest

from fastnn._config import PARALLEL_THRESHOLD, ParallelKernel, jit
from fastnn.backends import get_ops
from fastnn.kernels import activations, affine, losses, optim
from fastnn.kernels._scalars import typed

KERNEL_MODULES = (activations, affine, losses, optim)
KERNELS = {
    f"{module.__name__.rsplit('.', 1)[-1]}.{name}": kernel
    for module in KERNEL_MODULES
    for name, kernel in sorted(vars(module).items())
    if isinstance(kernel, ParallelKernel)
}

# One alternative per way double precision shows up in optimised IR.
DOUBLE_MATH = re.compile(
    r"\bf(?:add|sub|mul|div|rem|neg)\b[^\n]*\bdouble\b"  # arithmetic on double or <N x double>
    r"|\bfpext\b"  # float widened to double
    r"|@llvm\.\w+\.(?:v\d+)?f64\b"  # double intrinsics: exp, log, sqrt, fma, ...
    r"|@\w+\(double\b"  # libm calls on a double: @exp(double ...
    r"|\bcall\b[^\n]*\bdouble @(?!PyFloat_AsDouble\b)"  # calls returning double, except the
)  # wrapper unboxing a Python float


def double_math(ir: str) -> list[str]:
    """The lines of LLVM IR that do double-precision arithmetic."""
    return [line.strip() for line in ir.splitlines() if DOUBLE_MATH.search(line)]


def is_float32_signature(sig) -> bool:
    return "float32" in str(sig) and "float64" not in str(sig)


def llvm_ir(dispatcher, sig) -> str:
    """The IR of ``dispatcher``'s build for ``sig``, recompiled uncached if it came from the cache."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ir = dispatcher.inspect_llvm(sig)
    if not any("cached" in str(w.message) for w in caught):
        return ir
    twin = numba.jit(**dispatcher.targetoptions)(dispatcher.py_func)
    twin.compile(sig)
    return twin.inspect_llvm(sig)


# ------------------------------------------------------- the detector works


@jit(cache=False)
def _promoted(x, y):
    """The classic slip: float64 literals in a float32 kernel."""
    s = 0.0
    for i in range(x.size):
        y[i] = 0.5 * x[i] * x[i]
        s += x[i]
    y[0] = s


@jit(cache=False)
def _typed(x, y):
    """The same kernel written the project's way."""
    half = typed(x, 0.5)
    s = typed(x, 0.0)
    for i in range(x.size):
        y[i] = half * x[i] * x[i]
        s += x[i]
    y[0] = s


def _ir_of(kernel, dtype=np.float32):
    x = np.linspace(-1, 1, 17).astype(dtype)
    kernel(x, np.empty_like(x))
    return "\n".join(kernel.inspect_llvm(sig) for sig in kernel.signatures)


def test_detector_flags_float64_literals():
    # Note: a bare ``0.5 * x[i]`` is not enough to test it: LLVM proves that
    # fptrunc(0.5 * fpext(x)) == 0.5f * x and narrows it back to float itself.
    found = double_math(_ir_of(_promoted))
    assert any("fmul" in line for line in found), found
    assert any("fadd" in line for line in found), found
    assert any("fpext" in line for line in found), found


def test_detector_passes_typed_constants():
    assert double_math(_ir_of(_typed)) == []


def test_detector_sees_float64_kernels():
    assert double_math(_ir_of(_typed, np.float64))


# ------------------------------------------------------ every real kernel


@pytest.fixture(scope="module")
def float32_kernels_run():
    """Run every dense op on float32 inputs, small (serial build) and large (parallel build)."""
    ops = get_ops("numba")
    rng = np.random.default_rng(0)
    for n, c in [(3, 5), (400, 100)]:
        assert (n * c >= PARALLEL_THRESHOLD) == (n > 3)
        x = rng.standard_normal((n, c)).astype(np.float32)
        dy = rng.standard_normal((n, c)).astype(np.float32)
        W = rng.standard_normal((c, c)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        ops.affine(x, W, b)
        ops.affine(x, W, b, activation="tanh")  # the full build (the one above is the rectified)
        ops.affine_backward(dy, x, W)
        for name in ("heaviside", "sigmoid", "tanh", "relu", "softmax"):
            y = getattr(ops, name)(x)
            if name != "heaviside":
                ref = x if name == "relu" else y
                getattr(ops, name + "_backward")(dy, ref)
        ops.leaky_relu_backward(dy, ops.leaky_relu(x, 0.1), 0.1)
        ops.add_relu(x, dy)
        labels = rng.integers(0, c, n)
        onehot = np.eye(c, dtype=np.float32)[labels]
        for t in (labels, onehot):
            _, probs = ops.softmax_cross_entropy(x, t)
            ops.softmax_cross_entropy_backward(probs, t)
        _, probs = ops.sigmoid_cross_entropy(x, onehot > 0)
        ops.sigmoid_cross_entropy_backward(probs, onehot)
        ops.mse(x, dy)
        ops.mse_backward(x, dy)
        flat, grads = x.reshape(-1).copy(), dy.reshape(-1)
        state = [np.zeros_like(flat) for _ in range(2)]
        ops.sgd_step(flat, grads, 0.1, 0.01, 0.01)
        ops.momentum_step(flat, grads, state[0], 0.1, 0.9, 0.01, 0.01)
        ops.nesterov_step(flat, grads, state[0], 0.1, 0.9, 0.01, 0.01)
        ops.adagrad_step(flat, grads, state[0], 0.1, 1e-7, 0.01, 0.01)
        ops.rmsprop_step(flat, grads, state[0], 0.1, 0.99, 1e-7, 0.01, 0.01)
        ops.adam_step(flat, grads, state[0], state[1], 1, 0.1, 0.9, 0.999, 1e-7, 0.01, 0.01)
        ops.adamw_step(flat, grads, state[0], state[1], 1, 0.1, 0.9, 0.999, 1e-8, 0.01, 0.01)


def test_every_kernel_is_listed():
    assert len(KERNELS) >= 25, sorted(KERNELS)


@pytest.mark.parametrize("build", ["serial", "parallel"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_float32_kernel_has_no_double_math(float32_kernels_run, name, build):
    dispatcher = getattr(KERNELS[name], build)
    signatures = [sig for sig in dispatcher.signatures if is_float32_signature(sig)]
    assert signatures, f"{name}.{build} was never run on float32 inputs by the ops"
    for sig in signatures:
        found = double_math(llvm_ir(dispatcher, sig))
        assert not found, f"{name}.{build}{sig} does double arithmetic:\n" + "\n".join(found[:10])


# ------------------------------------------------- elementwise loops vectorise

ELEMENTWISE = [
    "activations.relu_forward",
    "activations.relu_backward",
    "activations.add_relu_forward",
    "activations.sigmoid_backward",
    "activations.tanh_backward",
    "activations.leaky_relu_forward",
    "optim.sgd",
    "optim.momentum",
    "optim.nesterov",
    "optim.adagrad",
    "optim.rmsprop",
    "optim.adam",
    "optim.adamw",
    "losses.mse_backward",
]
VECTOR = re.compile(r"<(?:4|8|16) x float>")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_float32_kernels_are_vectorised(float32_kernels_run, name):
    """The blocked loops (fastnn/kernels/_blocks.py) must still compile to SIMD code: a
    signed index would bring negative-index checks that stop LLVM from vectorising."""
    dispatcher = KERNELS[name].parallel
    (sig,) = [sig for sig in dispatcher.signatures if is_float32_signature(sig)]
    assert VECTOR.search(llvm_ir(dispatcher, sig)), f"{name}: no <N x float> vector code"
