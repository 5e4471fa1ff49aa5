"""Dropout: inverted dropout, identity at inference."""

from __future__ import annotations

import numbers

import numpy as np

from .base import Layer


class Dropout(Layer):
    """In training y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p); at inference y = x.

    Scaling at training time keeps E[y] = x, so nothing changes at inference. Each
    training pass draws one 64-bit key from the layer's own generator (seeded from the
    model's seed) and ``ops.dropout`` hashes it with each element's index into the mask
    (:mod:`fastnn.kernels.dropout`): the same mask on either backend and any thread count.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng()
        self._mask = None

    def get_config(self):
        return {"p": self.p}

    def init_params(self, rng):
        self.rng = np.random.default_rng(rng.integers(2**63))
        return {}

    def forward(self, x, train=True):
        self.check_input(x)
        if not train or self.p == 0:
            self._mask = None
            return x
        key = int(self.rng.integers(2**64, dtype=np.uint64))  # one draw per call
        y, self._mask = self.ops.dropout(x, self.p, key)
        return y

    def backward(self, dy):
        if self._mask is None:
            return dy
        return dy * self._mask
