"""fastnn: fast deep learning on the CPU, Numba kernels checked against a NumPy reference.

import fastnn as fnn
(x, t), (x_test, t_test) = fnn.datasets.load_mnist()
model = fnn.models.mlp(seed=0)
model.fit(x, t, epochs=3, batch_size=100, optimizer=fnn.optim.Adam(1e-3))
print(model.evaluate(x_test, t_test))
"""

__version__ = "0.1.0"

from . import (
    _kernel_cache,  # noqa: F401  (the one-line notice when kernels compile)
    _malloc,  # noqa: F401  (glibc keeps freed arrays for the next step)
    augment,
    callbacks,
    checkpoint,
    classic,
    dashboard,
    datasets,
    distributed,
    export,
    layers,
    losses,
    metrics,
    models,
    optim,
    plots,
    preprocessing,
    schedules,
    tune,
)
from ._config import get_num_threads, set_num_threads
from .backends import get_ops
from .compare import compare
from .ensembles import Ensemble, ensemble
from .errors import ModelFileError, NonFiniteError
from .gradcheck import gradcheck
from .kernel_warmup import warmup
from .layers import (
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    LeakyReLU,
    LPPool2D,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from .losses import BinaryCrossEntropy, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .serialization import load_model as load
from .verification import verify

__all__ = [
    "__version__",
    "get_ops",
    "compare",
    "ensemble",
    "Ensemble",
    "gradcheck",
    "warmup",
    "verify",
    "set_num_threads",
    "get_num_threads",
    "Sequential",
    "load",
    "callbacks",
    "checkpoint",
    "dashboard",
    "datasets",
    "distributed",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "optim",
    "augment",
    "classic",
    "plots",
    "preprocessing",
    "schedules",
    "tune",
    "NonFiniteError",
    "ModelFileError",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "LPPool2D",
    "Residual",
    "Concat",
    "Dropout",
    "BatchNorm",
    "Flatten",
    "Identity",
    "Step",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "SoftmaxCrossEntropy",
    "SigmoidCrossEntropy",
    "BinaryCrossEntropy",
    "MeanSquaredError",
]
