"""asv benchmarks: every network of the model zoo (``fastnn.bench.zoo``), fastnn alone.

``time_call`` is one timed call of the workload, as ``fastnn bench --zoo`` times it: a
training step (forward, backward, Adam) on the entry's batch, or ``predict`` on its
array. PyTorch is not timed here: asv tracks fastnn across commits, and ``fastnn bench
--zoo`` gives the ratios against PyTorch. Commits older than the zoo skip it.
"""

import numpy as np

import fastnn as fnn

try:
    from fastnn.bench import zoo
except ImportError:  # a commit before the zoo
    zoo = None

#: The zoo's names when this file was written, so that asv can list the parameters at
#: commits where fastnn.bench.zoo is missing or differs.
NAMES = (
    "mlp",
    "simple_convnet",
    "deep_convnet",
    "lenet5_classic",
    "nielsen_784_30_10",
    "nielsen_conv",
    "strided_5x5_3x3",
    "stride3_7x7_leaky",
    "vgg_cifar",
    "vgg_cifar_bn",
    "pointwise_1x1",
    "stem_7x7_bn",
    "mlp_bn_dropout",
    "wide_tanh_mlp",
    "online_convnet",
    "online_mlp",
    "predict_simple_convnet",
    "predict_deep_convnet",
    "predict_lenet5_classic",
    "predict_vgg_cifar_bn",
    "predict_mlp",
    "resnet20",
    "inception_mnist",
    "predict_resnet20",
)


class Zoo:
    params = (list(NAMES),)
    param_names = ["network"]
    timeout = 600

    def setup(self, network):
        if zoo is None or network not in zoo.ZOO:
            raise NotImplementedError(f"no zoo network {network!r} at this commit")
        entry = zoo.ZOO[network]
        rng = np.random.default_rng(0)
        self.x = rng.random((entry.batch, *entry.input_shape), dtype=np.float32)
        self.t = rng.integers(0, zoo.CLASSES, entry.batch)
        self.model = entry.build(seed=0)
        self.optimizer = fnn.optim.Adam(1e-3)
        self.predict = entry.kind == "predict"
        self.time_call(network)

    def time_call(self, network):
        if self.predict:
            self.model.predict(self.x)
        else:
            self.model.train_step(self.x, self.t, self.optimizer)
