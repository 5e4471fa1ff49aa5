"""Optimizers: Numba against NumPy step by step, both against the textbook formulas.

(a) PyTorch's pattern: two copies of an optimizer run side by side for 7 steps on
    the two backends, with the same fresh gradients, comparing the parameters and
    every state entry after each step.
(b) scikit-learn's pattern: a few steps recomputed from the formula written out
    here in plain float64 NumPy, an oracle independent of the code under test.
(c) the books' defaults (PyTorch's for AdamW); (d) torch.optim itself when torch is installed;
(e) the error contract; (f) float32 stays float32.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fastnn import optim
from fastnn._config import PARALLEL_THRESHOLD, ParallelKernel
from fastnn.backends import get_ops
from fastnn.kernels import optim as optim_kernels

NUMPY = get_ops("numpy")
NUMBA = get_ops("numba")
DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 100_003]
assert 100_003 >= PARALLEL_THRESHOLD > 7

# Hyperparameters away from the defaults, so that swapped arguments show.
HYPER = {
    "SGD": dict(lr=0.1),
    "Momentum": dict(lr=0.05, momentum=0.8),
    "Nesterov": dict(lr=0.05, momentum=0.7),
    "AdaGrad": dict(lr=0.1, eps=1e-6),
    "RMSProp": dict(lr=0.02, decay=0.9, eps=1e-6),
    "Adam": dict(lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6),
    "AdamW": dict(lr=0.01, beta1=0.85, beta2=0.97, eps=1e-6),
}
STATE_NAMES = {
    "SGD": (),
    "Momentum": ("velocity",),
    "Nesterov": ("velocity",),
    "AdaGrad": ("sum_sq",),
    "RMSProp": ("square_avg",),
    "Adam": ("m", "v"),
    "AdamW": ("m", "v"),
}
REGULARISATION = {"plain": dict(weight_decay=0.0, l1=0.0), "wd+l1": dict(weight_decay=0.1, l1=0.02)}


def make(name, **overrides):
    return getattr(optim, name)(**{**HYPER[name], **overrides})


def tolerance(dtype) -> dict:
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-10, atol=1e-12)


def start(rng, size, dtype):
    """Parameters with a few exact zeros (where sign(p) = 0 for l1)."""
    p = rng.standard_normal(size)
    p[:: max(1, size // 5)] = 0.0
    return p.astype(dtype)


def fresh_grads(rng, params, weight_decay=0.0, l1=0.0):
    """Random grads whose regularised value g + wd*p + l1*sign(p) keeps away from 0.

    Near 0, the first steps of AdaGrad, RMSProp and Adam, g / (c*|g| + eps), turn
    one rounding error in g into a large difference in the step: bad conditioning,
    not a bug, and not what these tests are about.
    """
    g = rng.standard_normal(params.shape)
    effective = g + weight_decay * params + l1 * np.sign(params)
    g[np.abs(effective) < 0.05] += 0.1
    return g.astype(params.dtype)


# -------------------------------------------------- (a) side by side, 7 steps


@pytest.mark.parametrize("reg", sorted(REGULARISATION))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(HYPER))
def test_numba_and_numpy_agree_for_7_steps(name, dtype, size, reg):
    rng = np.random.default_rng(size)
    fast, ref = make(name, **REGULARISATION[reg]), make(name, **REGULARISATION[reg])
    p_fast = start(rng, size, dtype)
    p_ref = p_fast.copy()
    for step in range(1, 8):
        grads = fresh_grads(rng, p_ref, **REGULARISATION[reg])
        kept = grads.copy()
        fast.apply(NUMBA, p_fast, grads)
        ref.apply(NUMPY, p_ref, grads)
        np.testing.assert_array_equal(grads, kept)
        assert fast.iterations == ref.iterations == step
        assert sorted(fast.state) == sorted(ref.state) == sorted(STATE_NAMES[name])
        np.testing.assert_allclose(p_fast, p_ref, **tolerance(dtype), err_msg=f"params, step {step}")
        for key in STATE_NAMES[name]:
            assert fast.state[key].dtype == dtype
            np.testing.assert_allclose(
                fast.state[key], ref.state[key], **tolerance(dtype), err_msg=f"state {key!r}, step {step}"
            )
    assert p_fast.dtype == p_ref.dtype == dtype


def kernel_cases(rng, size, dtype):
    """optim kernel -> (params, grads, state buffers, scalars) for a direct call."""
    d = dtype
    p = start(rng, size, dtype)
    g = fresh_grads(rng, p, 0.1, 0.02)
    s1, s2 = np.abs(rng.standard_normal(size)).astype(dtype), np.abs(rng.standard_normal(size)).astype(dtype)
    reg = (d(0.1), d(0.02))
    return {
        optim_kernels.sgd: (p, g, [], (d(0.1), *reg)),
        optim_kernels.momentum: (p, g, [s1], (d(0.1), d(0.9), *reg)),
        optim_kernels.nesterov: (p, g, [s1], (d(0.1), d(0.9), *reg)),
        optim_kernels.adagrad: (p, g, [s1], (d(0.1), d(1e-7), *reg)),
        optim_kernels.rmsprop: (p, g, [s1], (d(0.1), d(0.9), d(1e-7), *reg)),
        optim_kernels.adam: (p, g, [s1, s2], (d(0.05), d(0.9), d(0.99), d(1e-7), d(0.3), *reg)),
        optim_kernels.adamw: (p, g, [s1, s2], (d(0.05), d(0.9), d(0.99), d(1e-7), d(0.3), d(0.999), d(0.02))),
    }


def test_every_optim_kernel_has_a_case():
    listed = set(kernel_cases(np.random.default_rng(0), 3, np.float64))
    for name, kernel in vars(optim_kernels).items():
        if isinstance(kernel, ParallelKernel):
            assert kernel in listed, name


@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_and_parallel_builds_agree(dtype):
    for kernel, (p, g, state, scalars) in kernel_cases(np.random.default_rng(1), 1001, dtype).items():
        serial = [a.copy() for a in (p, *state)]
        parallel = [a.copy() for a in (p, *state)]
        kernel.serial(serial[0], g.copy(), *serial[1:], *scalars)
        kernel.parallel(parallel[0], g.copy(), *parallel[1:], *scalars)
        for s, q in zip(serial, parallel):
            np.testing.assert_allclose(q, s, **tolerance(dtype), err_msg=kernel.__name__)
        assert not np.array_equal(serial[0], p), f"{kernel.__name__} did not update params"


# ------------------------------------------------- (b) the textbook formulas


def textbook_step(name, hp, p, grad, state, t):
    """One step of PyTorch's formula in float64; returns the new params, updates ``state``."""
    lr = hp["lr"]
    if name == "AdamW":  # decoupled: the decay shrinks p and stays out of the moments
        g = grad + hp.get("l1", 0.0) * np.sign(p)
        p = p - lr * hp.get("weight_decay", 0.01) * p
        b1, b2 = hp["beta1"], hp["beta2"]
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g**2
        m_hat, v_hat = state["m"] / (1 - b1**t), state["v"] / (1 - b2**t)
        return p - lr * m_hat / (np.sqrt(v_hat) + hp["eps"])
    g = grad + hp.get("weight_decay", 0.0) * p + hp.get("l1", 0.0) * np.sign(p)
    if name == "SGD":
        return p - lr * g
    if name == "Momentum":
        state["velocity"] = hp["momentum"] * state["velocity"] + g
        return p - lr * state["velocity"]
    if name == "Nesterov":
        state["velocity"] = hp["momentum"] * state["velocity"] + g
        return p - lr * (g + hp["momentum"] * state["velocity"])
    if name == "AdaGrad":
        state["sum_sq"] = state["sum_sq"] + g**2
        return p - lr * g / (np.sqrt(state["sum_sq"]) + hp["eps"])
    if name == "RMSProp":
        a = hp["decay"]
        state["square_avg"] = a * state["square_avg"] + (1 - a) * g**2
        return p - lr * g / (np.sqrt(state["square_avg"]) + hp["eps"])
    if name == "Adam":
        b1, b2 = hp["beta1"], hp["beta2"]
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g**2
        denom = np.sqrt(state["v"]) / np.sqrt(1 - b2**t) + hp["eps"]
        return p - lr / (1 - b1**t) * state["m"] / denom
    raise AssertionError(name)


@pytest.mark.parametrize("reg", sorted(REGULARISATION))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
@pytest.mark.parametrize("name", sorted(HYPER))
def test_three_steps_match_the_textbook(name, ops, dtype, reg):
    hp = {**HYPER[name], **REGULARISATION[reg]}
    rng = np.random.default_rng(2)
    opt = make(name, **REGULARISATION[reg])
    params = start(rng, 11, dtype)
    expected = params.astype(np.float64)
    state = {key: np.zeros(11) for key in STATE_NAMES[name]}
    for t in (1, 2, 3):  # Adam's bias corrections differ at every t
        grads = fresh_grads(rng, params, **REGULARISATION[reg])
        opt.apply(ops, params, grads)
        expected = textbook_step(name, hp, expected, grads.astype(np.float64), state, t)
        np.testing.assert_allclose(params, expected, **tolerance(dtype), err_msg=f"step {t}")
        for key, value in state.items():
            np.testing.assert_allclose(opt.state[key], value, **tolerance(dtype), err_msg=key)


@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_decays_weights_even_without_gradient(ops, dtype):
    """With g = 0, Adam's part of the step is 0 and only the decoupled decay acts:
    after k steps p = p0 * (1 - lr*wd)**k (Adam with weight_decay would move p by ~lr)."""
    params = np.array([1.0, -2.0, 0.5, 0.0], dtype)
    opt = optim.AdamW(lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.apply(ops, params, np.zeros_like(params))
    np.testing.assert_allclose(params, np.array([1.0, -2.0, 0.5, 0.0]) * 0.95**3, **tolerance(dtype))
    assert not opt.state["m"].any() and not opt.state["v"].any()


@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
def test_adam_first_step_is_lr_times_sign(ops):
    """With bias correction, Adam's first step is lr * sign(g) whatever the scale of g."""
    params = np.zeros(6)
    grads = np.array([3.0, -1e-3, 50.0, -2.0, 1e-2, -7.0])
    optim.Adam(lr=0.01, eps=1e-12).apply(ops, params, grads)
    np.testing.assert_allclose(params, -0.01 * np.sign(grads), rtol=1e-8)


# --------------------------------------------------------- (c) the defaults

DEFAULTS = {
    "SGD": dict(lr=0.01),
    "Momentum": dict(lr=0.01, momentum=0.9),
    "Nesterov": dict(lr=0.01, momentum=0.9),
    "AdaGrad": dict(lr=0.01, eps=1e-7),
    "RMSProp": dict(lr=0.01, decay=0.99, eps=1e-7),
    "Adam": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7),
    # torch.optim.AdamW's defaults, weight decay included
    "AdamW": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01),
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_defaults_are_the_books(name):
    cls = getattr(optim, name)
    opt = cls()
    for key, value in {"weight_decay": 0.0, "l1": 0.0, **DEFAULTS[name]}.items():
        assert getattr(opt, key) == value, key
        assert inspect.signature(cls).parameters[key].default == value, key
    assert opt.iterations == 0 and opt.state == {}


# ------------------------------------------------------- (d) torch.optim


def torch_optimizer(torch, name, param, weight_decay):
    hp = HYPER[name]
    if name == "SGD":
        return torch.optim.SGD([param], lr=hp["lr"], weight_decay=weight_decay)
    if name in ("Momentum", "Nesterov"):
        return torch.optim.SGD(
            [param],
            lr=hp["lr"],
            momentum=hp["momentum"],
            nesterov=name == "Nesterov",
            weight_decay=weight_decay,
        )
    if name == "AdaGrad":
        return torch.optim.Adagrad([param], lr=hp["lr"], eps=hp["eps"], weight_decay=weight_decay)
    if name == "RMSProp":
        return torch.optim.RMSprop(
            [param], lr=hp["lr"], alpha=hp["decay"], eps=hp["eps"], weight_decay=weight_decay
        )
    torch_class = torch.optim.AdamW if name == "AdamW" else torch.optim.Adam
    return torch_class(
        [param], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], weight_decay=weight_decay
    )


TORCH_STATE = {
    "velocity": "momentum_buffer",
    "sum_sq": "sum",
    "square_avg": "square_avg",
    "m": "exp_avg",
    "v": "exp_avg_sq",
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("name", sorted(HYPER))
def test_matches_torch_for_7_steps(name, weight_decay, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    params = start(rng, 101, dtype)
    param = torch.tensor(params.copy(), requires_grad=True)
    theirs = torch_optimizer(torch, name, param, weight_decay)
    ours = make(name, weight_decay=weight_decay)
    for step in range(1, 8):
        grads = fresh_grads(rng, params, weight_decay)
        ours.apply(NUMBA, params, grads)
        param.grad = torch.tensor(grads.copy())
        theirs.step()
        np.testing.assert_allclose(params, param.detach().numpy(), **tolerance(dtype), err_msg=f"step {step}")
        for key in STATE_NAMES[name]:
            np.testing.assert_allclose(
                ours.state[key],
                theirs.state[param][TORCH_STATE[key]].numpy(),
                **tolerance(dtype),
                err_msg=f"{key}, step {step}",
            )


# ---------------------------------------------------------- (e) errors

BAD_HYPER = [
    ("SGD", dict(lr=-0.1)),
    ("SGD", dict(lr=0.0)),
    ("SGD", dict(lr=float("nan"))),
    ("SGD", dict(lr=float("inf"))),
    ("SGD", dict(lr="0.1")),
    ("SGD", dict(lr=True)),
    ("SGD", dict(weight_decay=-1e-4)),
    ("SGD", dict(l1=-1e-4)),
    ("Momentum", dict(momentum=1.0)),
    ("Momentum", dict(momentum=-0.1)),
    ("Nesterov", dict(momentum=1.5)),
    ("Nesterov", dict(lr=-1.0)),
    ("AdaGrad", dict(eps=0.0)),
    ("AdaGrad", dict(eps=-1e-7)),
    ("RMSProp", dict(decay=1.0)),
    ("RMSProp", dict(decay=-0.5)),
    ("RMSProp", dict(eps=0.0)),
    ("Adam", dict(beta1=1.0)),
    ("Adam", dict(beta1=-0.1)),
    ("Adam", dict(beta2=1.0)),
    ("Adam", dict(beta2=2.0)),
    ("Adam", dict(eps=-1.0)),
    ("Adam", dict(lr=-0.001)),
    ("Adam", dict(weight_decay=float("nan"))),
    ("AdamW", dict(beta1=1.0)),
    ("AdamW", dict(beta2=-0.1)),
    ("AdamW", dict(eps=0.0)),
    ("AdamW", dict(lr=0.0)),
    ("AdamW", dict(weight_decay=-0.01)),
    ("AdamW", dict(l1=float("inf"))),
]


@pytest.mark.parametrize("name, kwargs", BAD_HYPER, ids=[f"{n}-{k}" for n, k in BAD_HYPER])
def test_bad_hyperparameters_raise(name, kwargs):
    (key,) = kwargs
    with pytest.raises(ValueError, match=rf"^{name}\b.*\b{key}\b"):
        getattr(optim, name)(**kwargs)


@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
@pytest.mark.parametrize("name", [n for n in sorted(HYPER) if STATE_NAMES[n]])
def test_state_of_another_shape_raises(ops, name):
    opt = make(name)
    opt.apply(ops, np.zeros(7), np.ones(7))
    with pytest.raises(ValueError, match=name):
        opt.apply(ops, np.zeros(8), np.ones(8))
    with pytest.raises(ValueError, match=name):
        opt.apply(ops, np.zeros(7, np.float32), np.ones(7, np.float32))
    fresh = make(name)
    fresh.state[STATE_NAMES[name][0]] = np.zeros(5)
    with pytest.raises(ValueError, match=name):
        fresh.apply(ops, np.zeros(7), np.ones(7))


@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
@pytest.mark.parametrize("name", sorted(HYPER))
def test_bad_grads_raise(ops, name):
    params = np.ones(7, np.float32)
    with pytest.raises(TypeError):
        make(name).apply(ops, params, np.ones(7, np.float64))
    with pytest.raises(TypeError):
        make(name).apply(ops, params, np.ones(7, np.int32))
    with pytest.raises(ValueError):
        make(name).apply(ops, params, np.ones(8, np.float32))
    np.testing.assert_array_equal(params, 1.0)


@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
def test_rejected_step_does_not_count(ops):
    opt = optim.Adam()
    with pytest.raises(TypeError):
        opt.apply(ops, np.ones(7, np.float32), np.ones(7, np.float64))
    assert opt.iterations == 0


@pytest.mark.parametrize("ops", [NUMPY, NUMBA], ids=repr)
@pytest.mark.parametrize("op", ["adam_step", "adamw_step"])
def test_adam_step_counts_from_one(ops, op):
    p = np.zeros(3)
    with pytest.raises(ValueError, match=rf"{op}: step counts from 1, got 0"):
        getattr(ops, op)(p, p.copy(), p.copy(), p.copy(), 0, 0.001, 0.9, 0.999, 1e-7)


# ------------------------------------------------ (f) float32 stays float32


@pytest.mark.parametrize("size", [7, 100_003])
@pytest.mark.parametrize("name", sorted(HYPER))
def test_float32_stays_float32(name, size):
    rng = np.random.default_rng(4)
    p32 = start(rng, size, np.float32)
    p64 = p32.astype(np.float64)
    opt32, opt64 = make(name, weight_decay=0.01), make(name, weight_decay=0.01)
    for _ in range(7):
        grads = fresh_grads(rng, p32, 0.01)
        opt32.apply(NUMBA, p32, grads)
        opt64.apply(NUMBA, p64, grads.astype(np.float64))
    assert p32.dtype == np.float32
    assert all(buffer.dtype == np.float32 for buffer in opt32.state.values())
    np.testing.assert_allclose(p32, p64, **tolerance(np.float32))
    for key in STATE_NAMES[name]:
        np.testing.assert_allclose(opt32.state[key], opt64.state[key], **tolerance(np.float32))


@pytest.mark.parametrize("ops", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["momentum", "nesterov", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decaying_state_is_flushed_to_zero_not_subnormal(ops, name, dtype):
    """A weight whose gradient stays zero lets momentum/averages decay geometrically; they
    become exactly 0 instead of subnormal numbers (which made each step ~17x slower)."""
    opt = {
        "momentum": lambda: optim.Momentum(lr=0.1, momentum=0.5),
        "nesterov": lambda: optim.Nesterov(lr=0.1, momentum=0.5),
        "rmsprop": lambda: optim.RMSProp(lr=0.1, decay=0.5),
        "adam": lambda: optim.Adam(lr=0.1, beta1=0.5, beta2=0.5),
        "adamw": lambda: optim.AdamW(lr=0.1, beta1=0.5, beta2=0.5),
    }[name]()
    params = np.ones(2, dtype)
    grads = np.array([1.0, 1.0], dtype)
    ops = get_ops(ops)
    opt.apply(ops, params, grads)
    grads[0] = 0.0  # the first weight stops learning
    tiny = np.finfo(dtype).tiny
    for step in range(200 if dtype == np.float32 else 1100):
        opt.apply(ops, params, grads)
        for state in opt.state.values():
            subnormal = (state != 0) & (np.abs(state) < tiny)
            assert not subnormal.any(), f"{name}: subnormal state {state} at step {step}"
    for state in opt.state.values():
        assert state[0] == 0, f"{name}: state {state[0]!r} did not reach zero"


# ------------------------------------------------ (g) AdamW in checkpoints


class Crash(Exception):
    pass


def adamw_run(checkpoint, crash_before=None, resume=False):
    """Two epochs of a small model with AdamW, a checkpoint every 4 steps; ``crash_before``
    raises before that step (counted from 1), as a killed run would stop."""
    import fastnn as fnn

    rng = np.random.default_rng(5)
    t = rng.integers(0, 3, 120)
    x = (rng.normal(0, 2, (3, 6))[t] + rng.normal(0, 1, (120, 6))).astype(np.float32)
    calls = [0]

    def augment(xb, rng):
        calls[0] += 1
        if calls[0] == crash_before:
            raise Crash("simulated crash")
        return xb

    model = fnn.Sequential([fnn.Dense(6, 8), fnn.ReLU(), fnn.Dense(8, 3)], seed=3)
    model.fit(
        x,
        t,
        epochs=2,
        batch_size=16,
        optimizer=optim.AdamW(lr=0.01, weight_decay=0.05, eps=1e-6),
        seed=1,
        verbose=0,
        augment=augment,
        **(dict(checkpoint=checkpoint, checkpoint_every=4, resume=resume) if checkpoint else {}),
    )
    return model


def test_adamw_resumes_bit_exactly_from_a_checkpoint(tmp_path):
    from fastnn.checkpoint import load_latest

    expected = adamw_run(None).flat_params.copy()
    with pytest.raises(Crash):
        adamw_run(tmp_path, crash_before=11)
    ckpt = load_latest(tmp_path)
    saved = ckpt.build_optimizer()
    assert type(saved) is optim.AdamW and saved.iterations == 8
    assert saved.get_config() == optim.AdamW(lr=0.01, weight_decay=0.05, eps=1e-6).get_config()
    assert sorted(saved.state) == ["m", "v"] and saved.state["m"].any()
    resumed = adamw_run(tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.flat_params, expected)


def test_get_optimizer_knows_adamw():
    opt = optim.get_optimizer("AdamW", lr=0.003)
    assert type(opt) is optim.AdamW and opt.lr == 0.003 and opt.weight_decay == 0.01
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamx'.*'adamw'"):
        optim.get_optimizer("adamx")
