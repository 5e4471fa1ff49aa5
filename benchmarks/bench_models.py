"""asv benchmarks: full training steps (forward, backward, Adam) of the book networks.

``time_step`` is steady state; ``time_first_step`` in a fresh model measures what a
new process pays after the kernel cache is warm (compilation is in bench_compile.py).
"""

import fastnn as fnn

from .common import BATCH, random_batch, random_labels


class TrainStep:
    params = (["mlp", "simple_convnet", "deep_convnet", "lenet5"], ["numba", "numpy"])
    param_names = ["network", "backend"]
    timeout = 600

    def setup(self, network, backend):
        if backend == "numpy" and network == "deep_convnet":
            self.number = 1
        self.model = fnn.models.MODELS[network](seed=0, backend=backend)
        self.optimizer = fnn.optim.Adam(1e-3)
        self.x = random_batch((BATCH, 1, 28, 28))
        self.t = random_labels(BATCH)
        self.model.train_step(self.x, self.t, self.optimizer)

    def time_step(self, network, backend):
        self.model.train_step(self.x, self.t, self.optimizer)


class Predict:
    params = (["mlp", "simple_convnet", "deep_convnet"],)
    param_names = ["network"]

    def setup(self, network):
        self.model = fnn.models.MODELS[network](seed=0)
        self.x = random_batch((1000, 1, 28, 28))
        self.model.predict(self.x[:10])

    def time_predict_1000(self, network):
        self.model.predict(self.x)


class Threads:
    """deep_convnet's step on 1 and 2 threads."""

    params = ([1, 2],)
    param_names = ["threads"]

    def setup(self, threads):
        fnn.set_num_threads(min(threads, fnn.get_num_threads() if threads == 1 else 2))
        self.model = fnn.models.deep_convnet(seed=0)
        self.optimizer = fnn.optim.Adam()
        self.x = random_batch((BATCH, 1, 28, 28))
        self.t = random_labels(BATCH)
        self.model.train_step(self.x, self.t, self.optimizer)

    def time_deep_convnet_step(self, threads):
        self.model.train_step(self.x, self.t, self.optimizer)
