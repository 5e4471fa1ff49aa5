"""The book networks in PyTorch, for side-by-side timing (torch is optional).

Same layers, shapes and initialisation scheme as :mod:`fastnn.models`, float32,
trained with ``torch.optim.Adam`` in eager mode.
"""

from __future__ import annotations


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def available() -> bool:
    return _torch() is not None


def build(name: str):
    """``torch.nn.Sequential`` equal in architecture to ``fastnn.models.<name>()``."""
    torch = _torch()
    nn = torch.nn

    def conv(c_in, c_out, pad=1):
        return [nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU()]

    if name == "mlp":
        layers = [
            nn.Flatten(),
            nn.Linear(784, 100),
            nn.ReLU(),
            nn.Linear(100, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        ]
    elif name == "simple_convnet":
        layers = [
            nn.Conv2d(1, 30, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(4320, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        ]
    elif name == "deep_convnet":
        layers = [
            *conv(1, 16),
            *conv(16, 16),
            nn.MaxPool2d(2, 2),
            *conv(16, 32),
            *conv(32, 32, pad=2),
            nn.MaxPool2d(2, 2),
            *conv(32, 64),
            *conv(64, 64),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(1024, 50),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(50, 10),
            nn.Dropout(0.5),
        ]
    elif name == "lenet5":
        layers = [
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        ]
    else:
        raise ValueError(f"no PyTorch twin for {name!r}")
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


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


def _serve(connection, kind: str, args: tuple) -> None:
    """Child process: build the PyTorch contender, then time calls on request."""
    import time

    step = TorchStep(*args) if kind == "step" else fused_adam(*args)
    connection.send("ready")
    while True:
        count = connection.recv()
        if count is None:
            break
        step()  # untimed, as the parent does after a switch
        times = []
        for _ in range(count):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        connection.send(times)


class InChildProcess:
    """A PyTorch contender living in its own process, timed there.

    PyTorch ships its own OpenMP runtime, Numba uses the system's: in one process the two
    thread pools take turns spinning on the same cores, and whichever runs just after the
    other is slowed several-fold. Kept in a separate process, PyTorch's threads sleep while
    fastnn runs and the other way round, and the turns still alternate in time, so drift
    hits both alike.
    ``block(k)`` runs k timed steps in the child, back to back, and returns their seconds.
    """

    measures_itself = True

    def __init__(self, kind: str, *args):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, kind, args), daemon=True)
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

    def close(self) -> None:
        if self.process.is_alive():
            self.connection.send(None)
            self.process.join(timeout=10)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
