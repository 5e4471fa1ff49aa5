"""fastnn networks in PyTorch, for side-by-side timing (torch is optional).

:func:`translate` builds the ``torch.nn.Sequential`` equal to any fastnn ``Sequential``
(same layers, shapes and initial weights), float32, trained with ``torch.optim.Adam`` in
eager mode (:class:`TorchStep`) or run under ``torch.no_grad()`` (:class:`TorchPredict`).
"""

from __future__ import annotations

import contextlib
import os


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def available() -> bool:
    return _torch() is not None


def translate(model):
    """The ``torch.nn.Sequential`` computing what the fastnn ``model`` computes, with its weights.

    Reads each layer's configuration (Conv2D kernel, stride and padding; pooling size,
    stride and padding; LeakyReLU's alpha; BatchNorm's eps and momentum, where fastnn's
    momentum is the weight of the past and PyTorch's is ``1 -`` that; average pooling counts
    the padding, as PyTorch's ``count_include_pad=True``) and copies the current parameters
    and BatchNorm statistics. Blocks become small modules defined here: ``Residual`` one
    holding ``body`` and ``shortcut`` (two ``nn.Sequential``, an empty one the identity)
    and returning their sum, ``Concat`` one holding ``branches`` and joining their outputs
    with ``torch.cat(dim=1)``, ``GlobalAvgPool2D`` the mean over H and W, ``LPPool2D``
    lp_pool2d of the zero-padded |x|.
    float32; in training mode (``.eval()`` for inference).
    The one difference left: PyTorch's running variance averages the unbiased batch
    variance, fastnn's the biased one (as Deep Learning from Scratch does); the work is the
    same. A BatchNorm before any Conv2D, Dense or Flatten is taken as per feature.
    """
    torch = _torch()
    nn = torch.nn
    from ..layers import (
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
        Tanh,
    )

    class TorchResidual(nn.Module):
        """y = body(x) + shortcut(x)."""

        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    class TorchConcat(nn.Module):
        """y = cat([branch(x) for branch in branches], dim=1)."""

        def __init__(self, branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([branch(x) for branch in self.branches], dim=1)

    class TorchGlobalAvgPool2d(nn.Module):
        """(N, C, H, W) -> (N, C): the mean over H and W."""

        def forward(self, x):
            return x.mean(dim=(2, 3))

    class TorchLPPool2d(nn.Module):
        """fastnn's LPPool2D: lp_pool2d of |x| zero-padded (PyTorch's has no padding, and
        its odd p keeps signs)."""

        def __init__(self, p, size, stride, pad):
            super().__init__()
            self.p, self.size, self.stride, self.pad = p, size, stride, pad

        def forward(self, x):
            x = nn.functional.pad(x.abs(), (self.pad[1], self.pad[1], self.pad[0], self.pad[0]))
            return nn.functional.lp_pool2d(x, self.p, self.size, self.stride)

    def tensor(array, transpose=False):
        array = array.T if transpose else array
        return torch.from_numpy(array.astype("float32", order="C", copy=True))

    def sequential(layers, spatial):
        """(nn.Sequential of ``layers``, whether its output is (N, C, H, W)); ``spatial``:
        whether its input is (None until a layer says)."""
        modules = []
        for layer in layers:
            module, spatial = one(layer, spatial)
            modules.append(module)
        return nn.Sequential(*modules), spatial

    def one(layer, spatial):
        """(the PyTorch module of ``layer``, whether its output is (N, C, H, W))."""
        if isinstance(layer, Residual):
            body, out = sequential(layer.body, spatial)
            shortcut, _ = sequential(layer.shortcut, spatial)
            return TorchResidual(body, shortcut), out
        if isinstance(layer, Concat):
            branches = [sequential(branch, spatial) for branch in layer.branches]
            return TorchConcat([module for module, _ in branches]), branches[0][1]
        if isinstance(layer, GlobalAvgPool2D):
            return TorchGlobalAvgPool2d(), False
        if isinstance(layer, Conv2D):
            module = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                stride=layer.stride,
                padding=layer.pad,
            )
            with torch.no_grad():
                module.weight.copy_(tensor(layer.params["W"]))
                module.bias.copy_(tensor(layer.params["b"]))
            return module, True
        if isinstance(layer, Dense):
            module = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                module.weight.copy_(tensor(layer.params["W"], transpose=True))
                module.bias.copy_(tensor(layer.params["b"]))
            return module, False
        if isinstance(layer, BatchNorm):
            kind = nn.BatchNorm2d if spatial else nn.BatchNorm1d
            module = kind(layer.num_features, eps=layer.eps, momentum=1.0 - layer.momentum)
            with torch.no_grad():
                module.weight.copy_(tensor(layer.params["gamma"]))
                module.bias.copy_(tensor(layer.params["beta"]))
                module.running_mean.copy_(tensor(layer.running_mean))
                module.running_var.copy_(tensor(layer.running_var))
            return module, spatial
        if isinstance(layer, Flatten):
            return nn.Flatten(), False
        plain = [
            (MaxPool2D, lambda: nn.MaxPool2d(layer.size, stride=layer.stride, padding=layer.pad)),
            (AvgPool2D, lambda: nn.AvgPool2d(layer.size, layer.stride, layer.pad, count_include_pad=True)),
            (LPPool2D, lambda: TorchLPPool2d(layer.p, layer.size, layer.stride, layer.pad)),
            (LeakyReLU, lambda: nn.LeakyReLU(layer.alpha)),
            (ReLU, nn.ReLU),
            (Sigmoid, nn.Sigmoid),
            (Tanh, nn.Tanh),
            (Dropout, lambda: nn.Dropout(layer.p)),
            (Identity, nn.Identity),
        ]
        for kind, make in plain:
            if isinstance(layer, kind):
                return make(), spatial
        raise ValueError(
            f"translate: no PyTorch twin for the layer {layer.describe()}; supported: Conv2D, Dense, "
            "BatchNorm, pooling, Flatten, activations, Dropout, Residual, Concat, GlobalAvgPool2D"
        )

    return sequential(model.layers, None)[0]


def fastnn_model(name: str, seed: int = 0, backend: str = "numba"):
    """The fastnn network called ``name``: a zoo entry, or a book network of fastnn.models."""
    from ..models import MODELS
    from . import zoo

    if name in zoo.ZOO:
        return zoo.ZOO[name].build(seed=seed, backend=backend)
    if name in MODELS:
        return MODELS[name](seed=seed, backend=backend)
    raise ValueError(f"no network called {name!r}")


def build(name: str):
    """``torch.nn.Sequential`` equal to the fastnn network ``name`` (seed 0), its initial
    weights included: a book network (``fastnn.models``) or a zoo entry (``fastnn.bench.zoo``)."""
    return translate(fastnn_model(name, seed=0, backend="numpy"))


class TorchStep:
    """One eager training step (forward, cross-entropy, backward, Adam) on a fixed batch."""

    def __init__(self, name: str, x, t, threads: int, lr: float = 1e-3):
        torch = _torch()
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.model = build(name).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, eps=1e-7)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.from_numpy(x)
        self.t = torch.from_numpy(t)

    def __call__(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x), self.t)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


class TorchPredict:
    """``torch.no_grad()`` forward of the whole array x in eval mode (the twin of ``predict``)."""

    def __init__(self, name: str, x, threads: int):
        torch = _torch()
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = build(name).eval()
        self.x = torch.from_numpy(x)

    def __call__(self):
        with self.torch.no_grad():
            return self.model(self.x)


def fused_adam(size: int, threads: int):
    """A callable doing one ``torch.optim.Adam(fused=True)`` step over ``size`` float32 params."""
    torch = _torch()
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    param = torch.nn.Parameter(torch.randn(size, generator=generator))
    param.grad = torch.randn(size, generator=generator)
    try:
        optimizer = torch.optim.Adam([param], lr=1e-3, fused=True)
        optimizer.step()
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam([param], lr=1e-3, foreach=True)

    def step():
        with torch.no_grad():
            optimizer.step()

    return step


_CONTENDERS = {"step": TorchStep, "predict": TorchPredict, "adam": fused_adam}


def _serve(connection, kind: str, args: tuple) -> None:
    """Child process: build the PyTorch contender, then time calls on request."""
    import time

    step = _CONTENDERS[kind](*args)
    connection.send("ready")
    while True:
        count = connection.recv()
        if count is None:
            break
        if isinstance(count, tuple):  # ("load", kind, args): replace the contender
            step = None
            step = _CONTENDERS[count[1]](*count[2])
            connection.send("ready")
            continue
        step()  # untimed, as the parent does after a switch
        times = []
        for _ in range(count):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        connection.send(times)


@contextlib.contextmanager
def _environment(**settings):
    """os.environ with ``settings`` for the duration (a spawned child inherits them)."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class InChildProcess:
    """A PyTorch contender living in its own process, timed there.

    PyTorch ships its own OpenMP runtime, Numba uses the system's: in one process the two
    thread pools take turns spinning on the same cores, and whichever runs just after the
    other is slowed several-fold. Kept in a separate process, PyTorch's threads sleep while
    fastnn runs and the other way round, and the turns still alternate in time, so drift
    hits both alike. The child imports fastnn to build its contender, but starts with
    ``FASTNN_MALLOC=0``: PyTorch runs with glibc's own malloc settings, as it does without
    fastnn (:mod:`fastnn._malloc` would otherwise apply there too).
    ``block(k)`` runs k timed steps in the child, back to back, and returns their seconds;
    ``load(kind, *args)`` swaps in another contender.
    """

    measures_itself = True

    def __init__(self, kind: str, *args):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, kind, args), daemon=True)
        with _environment(FASTNN_MALLOC="0"):
            self.process.start()
        # wait until PyTorch is imported and the model built, so that start-up work
        # never overlaps the parent's timed calls
        if self.connection.recv() != "ready":
            raise RuntimeError("the PyTorch benchmark process failed to start")

    def __call__(self) -> float:
        """One untimed and one timed step in the child; the seconds of the timed one."""
        return self.block(1)[0]

    def block(self, count: int) -> list[float]:
        """One untimed step, then ``count`` timed steps back to back in the child (as a
        training loop runs them: PyTorch's threads stay awake between steps); their seconds."""
        self.connection.send(int(count))
        return self.connection.recv()

    def load(self, kind: str, *args) -> None:
        """Replace the contender in the child (kind "step", "predict" or "adam"), keeping the
        process: PyTorch is imported once for a whole series of networks."""
        self.connection.send(("load", kind, args))
        if self.connection.recv() != "ready":
            raise RuntimeError("the PyTorch benchmark process failed to build its contender")

    def close(self) -> None:
        if self.process.is_alive():
            self.connection.send(None)
            self.process.join(timeout=10)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
