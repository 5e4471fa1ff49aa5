"""BatchNorm: batch normalisation (Ioffe & Szegedy), per feature or per channel."""

from __future__ import annotations

import numbers

import numpy as np

from ..distributed import Communicator
from .base import Layer
from .sync_norm import synced_batchnorm, synced_batchnorm_backward


class BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per feature or per channel.

    x (N, D): statistics per feature over the batch; x (N, C, H, W): per channel over
    N, H and W. In training the batch's mean and (biased) variance are used and the
    running statistics move towards them,
    ``running = momentum * running + (1 - momentum) * batch`` (Deep Learning from
    Scratch's convention: ``momentum`` is the weight of the past); at inference the
    running statistics are used. ``gamma`` (starts at 1) and ``beta`` (starts at 0)
    are trainable and live in the model's flat buffer; ``running_mean`` and
    ``running_var`` are :attr:`buffers`, saved with the model.

    ``sync=True`` (SyncBatchNorm): in a data-parallel run (``fit(..., comm=comm)``) the
    statistics are those of the global batch, over every rank
    (:mod:`fastnn.layers.sync_norm`); by default each rank uses its own shard's. Alone,
    a synchronised BatchNorm computes what a plain one does (in float64, unfused).

    Frozen (``trainable = False``, or inside a frozen block), the layer trains in its
    inference form: it normalises with the running statistics and keeps them, and its
    backward is that form's, dx = dy * gamma / sqrt(running_var + eps) per channel
    (``ops.batchnorm_inference_backward``), with no gamma or beta gradient (grads stay 0).
    """

    buffers_change_in_training = True

    def __init__(self, num_features: int, momentum: float = 0.9, eps: float = 1e-5, sync: bool = False):
        super().__init__()
        if (
            not isinstance(num_features, (int, np.integer))
            or isinstance(num_features, bool)
            or num_features < 1
        ):
            raise ValueError(f"BatchNorm: num_features must be a positive integer, got {num_features!r}")
        for name, value, ok in (
            ("momentum", momentum, lambda v: 0 <= v <= 1),
            ("eps", eps, lambda v: v >= 0),
        ):
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not np.isfinite(value)
                or not ok(value)
            ):
                bounds = "in [0, 1]" if name == "momentum" else ">= 0"
                raise ValueError(f"BatchNorm: {name} must be a number {bounds}, got {value!r}")
        self.num_features = int(num_features)
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.buffers = {
            "running_mean": np.zeros(self.num_features, self.dtype),
            "running_var": np.ones(self.num_features, self.dtype),
        }
        self._cache = None
        if not isinstance(sync, (bool, np.bool_)):
            raise TypeError(f"BatchNorm: sync must be True or False, got {type(sync).__name__} {sync!r}")
        self.sync = bool(sync)
        #: The communicator a data-parallel fit gives a synchronised BatchNorm (None: alone).
        self.comm = None

    def get_config(self):
        config = {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}
        return {**config, "sync": True} if self.sync else config

    def describe(self):
        return f"BatchNorm({self.num_features})"

    def build(self, ops, dtype):
        super().build(ops, dtype)
        for name, array in self.buffers.items():
            if array.dtype != self.dtype:
                self.buffers[name] = array.astype(self.dtype)
        return self

    def param_shapes(self):
        return {"gamma": (self.num_features,), "beta": (self.num_features,)}

    def init_params(self, rng):
        return {
            "gamma": np.ones(self.num_features, self.dtype),
            "beta": np.zeros(self.num_features, self.dtype),
        }

    @property
    def running_mean(self) -> np.ndarray:
        """The running mean of each feature or channel, used at inference (a view into ``buffers``)."""
        return self.buffers["running_mean"]

    @property
    def running_var(self) -> np.ndarray:
        """The running variance of each feature or channel, used at inference (a view into ``buffers``)."""
        return self.buffers["running_var"]

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in (1, 3) or shape[0] != self.num_features:
            raise ValueError(
                f"{self.describe()}: expected inputs of shape ({self.num_features},) "
                f"or ({self.num_features}, H, W), got {shape}"
            )
        return shape

    def check_input(self, x):
        """x must be (N, num_features) or (N, num_features, H, W) of the layer's dtype."""
        super().check_input(x)
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self.describe()}: expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, H, W), got {x.shape}"
            )

    def forward(self, x, train=True):
        """y like x: batch statistics in training, the running ones at inference and while frozen."""
        self.check_input(x)
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not train or self.frozen:
            self._cache = (x, None, None) if train else None  # no batch statistics: the inference form
            return self.ops.batchnorm_inference(x, gamma, beta, self.running_mean, self.running_var, self.eps)
        if self.sync:
            return self._forward_synced(x, gamma, beta)
        y, mean, var = self.ops.batchnorm(x, gamma, beta, self.eps)
        self.update_running_stats(mean, var)
        self._cache = (x, mean, var)
        return y

    def _forward_synced(self, x, gamma, beta):
        comm = self.comm if self.comm is not None else Communicator()
        y, mean, var, inv_std = synced_batchnorm(x, gamma, beta, self.eps, comm)
        self.update_running_stats(mean, var)
        self._cache = (x, mean, inv_std, comm)
        return y

    def update_running_stats(self, mean, var) -> None:
        """Move the running statistics towards a training batch's ``mean`` and ``var``
        (in place): ``running = momentum * running + (1 - momentum) * batch``. Fused
        groups that run this layer's op call it too, so both paths update alike."""
        keep = self.dtype.type(self.momentum)
        for running, batch in ((self.running_mean, mean), (self.running_var, var)):
            running *= keep
            running += (1 - keep) * batch

    def backward(self, dy):
        """dx like dy; fills grads["gamma"] and grads["beta"] (zeroes them after a frozen pass)."""
        cache = self._require_forward("_cache")
        if len(cache) == 4:  # synchronised
            x, mean, inv_std, comm = cache
            dx, dgamma, dbeta = synced_batchnorm_backward(dy, x, self.params["gamma"], mean, inv_std, comm)
        else:
            x, mean, var = cache
            if mean is None:  # the forward ran in the inference form (frozen)
                if dy.shape != x.shape:
                    raise ValueError(f"{self.describe()}: expected dy of shape {x.shape}, got {dy.shape}")
                self.zero_grads()
                return self.ops.batchnorm_inference_backward(
                    dy, self.params["gamma"], self.running_var, self.eps
                )
            dx, dgamma, dbeta = self.ops.batchnorm_backward(dy, x, self.params["gamma"], mean, var, self.eps)
        self.grads["gamma"][...] = dgamma
        self.grads["beta"][...] = dbeta
        return dx
