"""asv benchmarks: dense ops and the MLP training step, numba against the numpy reference.

Run ``asv run --python=same --quick`` from the repository root.
"""

import fastnn as fnn

from .common import BATCH, random_batch, random_labels

BACKENDS = ["numba", "numpy"]


class Affine:
    params = (BACKENDS, [(100, 784, 100), (100, 100, 10), (1000, 512, 512)])
    param_names = ["backend", "N,D,M"]

    def setup(self, backend, shape):
        n, d, m = shape
        self.ops = fnn.get_ops(backend)
        self.x = random_batch((n, d))
        self.W = random_batch((d, m), seed=1)
        self.b = random_batch((m,), seed=2)
        self.dy = random_batch((n, m), seed=3)
        self.ops.affine_backward(self.dy, self.x, self.W)  # compile outside the timing

    def time_forward(self, backend, shape):
        self.ops.affine(self.x, self.W, self.b)

    def time_backward(self, backend, shape):
        self.ops.affine_backward(self.dy, self.x, self.W)


class Activations:
    params = (BACKENDS, ["relu", "sigmoid", "tanh", "softmax"], [10_000, 1_000_000])
    param_names = ["backend", "op", "size"]

    def setup(self, backend, op, size):
        self.forward = getattr(fnn.get_ops(backend), op)
        self.x = random_batch((size // 100, 100))
        self.forward(self.x)

    def time_forward(self, backend, op, size):
        self.forward(self.x)


class SoftmaxCrossEntropy:
    params = (BACKENDS,)
    param_names = ["backend"]

    def setup(self, backend):
        self.ops = fnn.get_ops(backend)
        self.logits = random_batch((BATCH, 10))
        self.t = random_labels(BATCH)
        self.ops.softmax_cross_entropy(self.logits, self.t)

    def time_forward_backward(self, backend):
        _, probs = self.ops.softmax_cross_entropy(self.logits, self.t)
        self.ops.softmax_cross_entropy_backward(probs, self.t)


class MLPTrainStep:
    """A full step (forward, backward, Adam) of the 784-100-100-10 MLP at batch 100."""

    params = (BACKENDS,)
    param_names = ["backend"]

    def setup(self, backend):
        self.model = fnn.models.mlp(seed=0, backend=backend)
        self.optimizer = fnn.optim.Adam()
        self.x = random_batch((BATCH, 1, 28, 28))
        self.t = random_labels(BATCH)
        self.model.train_step(self.x, self.t, self.optimizer)

    def time_train_step(self, backend):
        self.model.train_step(self.x, self.t, self.optimizer)
