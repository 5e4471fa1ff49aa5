"""asv benchmarks: fused optimizer steps over one flat buffer."""

import numpy as np

import fastnn as fnn

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]


class FusedStep:
    params = (["numba", "numpy"], OPTIMIZERS, [100_000, 1_000_000])
    param_names = ["backend", "optimizer", "parameters"]

    def setup(self, backend, optimizer, size):
        self.ops = fnn.get_ops(backend)
        rng = np.random.default_rng(0)
        self.params = rng.standard_normal(size).astype(np.float32)
        self.grads = rng.standard_normal(size).astype(np.float32)
        self.optimizer = fnn.optim.get_optimizer(optimizer, weight_decay=1e-4)
        self.optimizer.apply(self.ops, self.params, self.grads)

    def time_step(self, backend, optimizer, size):
        self.optimizer.apply(self.ops, self.params, self.grads)
