"""Optimizers: one fused kernel call updates a model's whole flat parameter buffer.

Update formulas are PyTorch's (equal hyperparameters give equal steps), defaults
are the books'. Every optimizer takes ``weight_decay`` (L2: added to the gradient
as ``weight_decay * p``, as PyTorch does) and ``l1`` (adds ``l1 * sign(p)``); AdamW's ``weight_decay`` is
decoupled instead (the parameters shrink by ``lr * weight_decay * p`` apart from Adam's step).

    opt = Adam(lr=1e-3)
    loss = model.loss(x, t); model.backward(); opt.step(model)
"""

from __future__ import annotations

import numbers

import numpy as np

OPTIMIZERS: dict[str, type] = {}


def _check_hyper(where: str, name: str, value, low=0.0, high=None, low_open=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
    if value < low or (low_open and value == low) or (high is not None and value >= high):
        bounds = f"({low}, " if low_open else f"[{low}, "
        bounds += f"{high})" if high is not None else "inf)"
        raise ValueError(f"{where}: {name} must be in {bounds}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class. ``state`` holds per-parameter arrays shaped like the flat buffer."""

    state_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        OPTIMIZERS[cls.__name__.lower()] = cls

    def __init__(self, lr: float, weight_decay: float = 0.0, l1: float = 0.0):
        where = type(self).__name__
        self.lr = _check_hyper(where, "lr", lr, low_open=True)
        self.weight_decay = _check_hyper(where, "weight_decay", weight_decay)
        self.l1 = _check_hyper(where, "l1", l1)
        self.iterations = 0
        self.state: dict[str, np.ndarray] = {}

    def get_config(self) -> dict:
        """The hyperparameters as JSON data (saved in checkpoints)."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "l1": self.l1}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def penalty(self, params: np.ndarray) -> float:
        """The regularisation term the steps descend: 0.5*weight_decay*||p||^2 + l1*||p||_1."""
        total = 0.0
        if self.weight_decay:
            total += 0.5 * self.weight_decay * float(np.dot(params, params))
        if self.l1:
            total += self.l1 * float(np.abs(params).sum())
        return total

    def _ensure_state(self, params: np.ndarray) -> None:
        for name in self.state_names:
            buffer = self.state.get(name)
            if buffer is None:
                self.state[name] = np.zeros_like(params)
            elif buffer.shape != params.shape or buffer.dtype != params.dtype:
                raise ValueError(
                    f"{type(self).__name__}: state '{name}' has shape {buffer.shape} and dtype "
                    f"{buffer.dtype} but the parameters have shape {params.shape} and dtype "
                    f"{params.dtype}; use a new optimizer for a different model"
                )

    def step(self, model) -> None:
        """Update ``model.flat_params`` from ``model.flat_grads`` in one fused kernel call,
        or one per run of trainable layers when some are frozen (``layer.trainable =
        False``): frozen parameters and their state are not touched."""
        spans = model.trainable_spans()
        if spans == [(0, model.flat_params.size)]:
            self.apply(model.ops, model.flat_params, model.flat_grads)
            return
        self._ensure_state(model.flat_params)
        self.iterations += 1
        whole = self.state
        try:
            for start, stop in spans:
                self.state = {name: array[start:stop] for name, array in whole.items()}
                self._update(model.ops, model.flat_params[start:stop], model.flat_grads[start:stop])
        except BaseException:
            self.iterations -= 1
            raise
        finally:
            self.state = whole

    def apply(self, ops, params: np.ndarray, grads: np.ndarray) -> None:
        """One step on explicit flat buffers with the given backend's ops."""
        self._ensure_state(params)
        self.iterations += 1
        try:
            self._update(ops, params, grads)
        except BaseException:
            self.iterations -= 1  # a refused step does not count (Adam's bias correction)
            raise

    def _update(self, ops, params, grads) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Hyperparameters, the step count and copies of the state arrays."""
        return {
            "config": self.get_config(),
            "iterations": self.iterations,
            "state": {k: v.copy() for k, v in self.state.items()},
        }

    def load_state_dict(self, saved: dict) -> None:
        """Restore the hyperparameters, the step count and the state arrays from ``state_dict()``."""
        for key, value in saved["config"].items():
            setattr(self, key, value)
        self.iterations = int(saved["iterations"])
        self.state = {k: np.array(v, copy=True) for k, v in saved["state"].items()}


class SGD(Optimizer):
    """p <- p - lr * g."""

    def __init__(self, lr: float = 0.01, weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)

    def _update(self, ops, params, grads):
        ops.sgd_step(params, grads, self.lr, self.weight_decay, self.l1)


class Momentum(Optimizer):
    """v <- momentum * v + g;  p <- p - lr * v  (PyTorch SGD, momentum, dampening 0)."""

    state_names = ("velocity",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)
        self.momentum = _check_hyper(type(self).__name__, "momentum", momentum, 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}

    def _update(self, ops, params, grads):
        ops.momentum_step(
            params, grads, self.state["velocity"], self.lr, self.momentum, self.weight_decay, self.l1
        )


class Nesterov(Momentum):
    """v <- momentum * v + g;  p <- p - lr * (g + momentum * v)  (PyTorch nesterov=True)."""

    def _update(self, ops, params, grads):
        ops.nesterov_step(
            params, grads, self.state["velocity"], self.lr, self.momentum, self.weight_decay, self.l1
        )


class AdaGrad(Optimizer):
    """s <- s + g**2;  p <- p - lr * g / (sqrt(s) + eps)."""

    state_names = ("sum_sq",)

    def __init__(self, lr: float = 0.01, eps: float = 1e-7, weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)
        self.eps = _check_hyper(type(self).__name__, "eps", eps, low_open=True)

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}

    def _update(self, ops, params, grads):
        ops.adagrad_step(params, grads, self.state["sum_sq"], self.lr, self.eps, self.weight_decay, self.l1)


class RMSProp(Optimizer):
    """s <- decay * s + (1 - decay) * g**2;  p <- p - lr * g / (sqrt(s) + eps)."""

    state_names = ("square_avg",)

    def __init__(
        self,
        lr: float = 0.01,
        decay: float = 0.99,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        l1: float = 0.0,
    ):
        super().__init__(lr, weight_decay, l1)
        self.decay = _check_hyper(type(self).__name__, "decay", decay, 0.0, 1.0)
        self.eps = _check_hyper(type(self).__name__, "eps", eps, low_open=True)

    def get_config(self):
        return {**super().get_config(), "decay": self.decay, "eps": self.eps}

    def _update(self, ops, params, grads):
        ops.rmsprop_step(
            params, grads, self.state["square_avg"], self.lr, self.decay, self.eps, self.weight_decay, self.l1
        )


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction; see ``ops.adam_step``."""

    state_names = ("m", "v")

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        l1: float = 0.0,
    ):
        super().__init__(lr, weight_decay, l1)
        where = type(self).__name__
        self.beta1 = _check_hyper(where, "beta1", beta1, 0.0, 1.0)
        self.beta2 = _check_hyper(where, "beta2", beta2, 0.0, 1.0)
        self.eps = _check_hyper(where, "eps", eps, low_open=True)

    def get_config(self):
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    #: The fused op one step calls: Adam's, or a variant's with the same arguments (AdamW).
    step_op = "adam_step"

    def _update(self, ops, params, grads):
        getattr(ops, self.step_op)(
            params,
            grads,
            self.state["m"],
            self.state["v"],
            self.iterations,
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.l1,
        )


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter), torch.optim.AdamW's formula and defaults; see ``ops.adamw_step``.

    p <- p * (1 - lr * weight_decay) (decoupled weight decay), then Adam's bias-corrected step
    on the gradient without the decay: p <- p - lr m_hat / (sqrt(v_hat) + eps). ``l1`` is added
    to the gradient (g + l1 * sign(p)) as in the other optimizers.
    """

    step_op = "adamw_step"

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        l1: float = 0.0,
    ):
        super().__init__(lr, beta1, beta2, eps, weight_decay, l1)


def clip_grad_norm(grads: np.ndarray, max_norm: float) -> float:
    """Scale ``grads`` in place so that its global L2 norm is at most ``max_norm``; return
    the norm before clipping (PyTorch's ``clip_grad_norm_``).

    norm = sqrt(sum_i g_i**2) (summed in float64, pairwise, so it does not depend on any
    thread count);  g <- g * min(1, max_norm / (norm + 1e-6)).
    Clip the model's flat gradient buffer after ``backward()`` and before ``step``.
    """
    max_norm = _check_hyper("clip_grad_norm", "max_norm", max_norm, low_open=True)
    norm = float(np.sqrt(np.add.reduce(np.square(grads.reshape(-1), dtype=np.float64))))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        np.multiply(grads, grads.dtype.type(coef), out=grads)
    return norm


def get_optimizer(spec, **kwargs) -> Optimizer:
    """An optimizer from an instance or a name ("sgd", "momentum", "nesterov", "adagrad",
    "rmsprop", "adam", "adamw"); ``kwargs`` are its hyperparameters."""
    if isinstance(spec, Optimizer):
        return spec
    name = str(spec).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec!r}; expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](**kwargs)
