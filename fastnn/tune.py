"""Random hyperparameter search, the books' procedure (Deep Learning from Scratch 6.5), and the
learning-rate range test :func:`lr_find` (from :mod:`fastnn.lr_finder`).

1. Hold out a validation split of the *training* data (the test set is never used:
   it is not even an argument).
2. Sample every hyperparameter from its range, log-uniformly for rates and decays.
3. Train briefly (a few epochs), score on the validation split.
4. Return the trials sorted best first, to narrow the ranges and search again.

    space = {"lr": fnn.tune.LogUniform(1e-4, 1e-1), "weight_decay": fnn.tune.LogUniform(1e-8, 1e-3)}
    trials = fnn.tune.random_search(lambda p: fnn.models.mlp(seed=0), space, x_train, t_train,
                                     trials=20, epochs=2, validation_split=0.2)
    print(trials[0].params, trials[0].score)

``build(params)`` returns a model, or a pair ``(model, optimizer)``. When it returns
only a model, the optimizer is ``optimizer`` (a name, default "adam") built with the
sampled values whose names it takes (``lr``, ``weight_decay``, ``l1``, ``momentum``, ...).
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .distributed import as_communicator
from .lr_finder import LRFindResult, lr_find
from .optim import OPTIMIZERS, Optimizer, get_optimizer

__all__ = [
    "LogUniform",
    "Uniform",
    "IntUniform",
    "Choice",
    "Trial",
    "sample",
    "random_search",
    "parse_range",
    "format_trials",
    "lr_find",
    "LRFindResult",
]


class Distribution:
    """A range to sample one hyperparameter from."""

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError


def _bounds(where: str, low, high, positive=False):
    for name, value in (("low", low), ("high", high)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
    if positive and low <= 0:
        raise ValueError(f"{where}: a log-uniform range needs low > 0, got {low!r}")
    if low > high:
        raise ValueError(f"{where}: needs low <= high, got ({low!r}, {high!r})")
    return float(low), float(high)


@dataclass(frozen=True)
class LogUniform(Distribution):
    """10 ** uniform(log10 low, log10 high): every decade between low and high equally likely."""

    low: float
    high: float

    def __post_init__(self):
        _bounds("LogUniform", self.low, self.high, positive=True)

    def sample(self, rng):
        """A value whose log10 is uniform between log10(low) and log10(high)."""
        return float(10 ** rng.uniform(math.log10(self.low), math.log10(self.high)))


@dataclass(frozen=True)
class Uniform(Distribution):
    """uniform(low, high)."""

    low: float
    high: float

    def __post_init__(self):
        _bounds("Uniform", self.low, self.high)

    def sample(self, rng):
        """A value uniform between low and high."""
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class IntUniform(Distribution):
    """An integer uniform in [low, high] (both included)."""

    low: int
    high: int

    def __post_init__(self):
        _bounds("IntUniform", self.low, self.high)

    def sample(self, rng):
        """An integer uniform from low to high, both included."""
        return int(rng.integers(int(self.low), int(self.high) + 1))


@dataclass(frozen=True)
class Choice(Distribution):
    """One of ``options``, each equally likely."""

    options: tuple

    def __post_init__(self):
        if len(self.options) == 0:
            raise ValueError("Choice: needs at least one option")

    def sample(self, rng):
        """One of the options, each equally likely."""
        return self.options[int(rng.integers(len(self.options)))]


def sample(space: dict, rng) -> dict:
    """One draw from ``space``: distributions are sampled, other values pass through."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return {
        name: spec.sample(rng) if isinstance(spec, Distribution) else spec for name, spec in space.items()
    }


@dataclass
class Trial:
    """One configuration: its sampled ``params`` and its validation results."""

    params: dict
    score: float  # the monitored validation metric after the last epoch
    val_loss: float
    val_accuracy: float
    history: dict = field(repr=False)
    seconds: float = 0.0
    index: int = 0  # position in sampling order

    def __str__(self):
        values = "  ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"val_accuracy {self.val_accuracy:.4f}  val_loss {self.val_loss:.4f}  {values}"


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else repr(value)


def _optimizer_for(name: str, params: dict) -> Optimizer:
    cls = OPTIMIZERS[str(name).lower()] if not isinstance(name, Optimizer) else None
    if cls is None:
        raise TypeError("random_search: pass the optimizer by name so each trial gets a fresh one")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return get_optimizer(name, **{k: v for k, v in params.items() if k in accepted})


def _split(x, t, validation_split: float, rng) -> tuple:
    """A shuffled hold-out of the training data: ((x_train, t_train), (x_val, t_val))."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"random_search: validation_split must be in (0, 1), got {validation_split}")
    n = len(x)
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"random_search: validation_split={validation_split} leaves {n_val} of "
            f"{n} samples for validation; need at least one in each part"
        )
    order = rng.permutation(n)
    train, val = order[:-n_val], order[-n_val:]
    return (x[train], t[train]), (x[val], t[val])


def random_search(
    build,
    space: dict,
    x,
    t,
    trials: int = 10,
    epochs: int = 1,
    validation_split: float = 0.2,
    batch_size: int = 100,
    optimizer="adam",
    monitor: str = "val_accuracy",
    seed: int | None = 0,
    verbose: int = 1,
    file=None,
    comm=None,
    **fit_kwargs,
) -> list[Trial]:
    """Random search over ``space``, scored on a validation split of (x, t); best first.

    Args:
        build: ``build(params) -> model`` or ``-> (model, optimizer)``, a fresh model per call.
        space: {name: LogUniform(...) | Uniform(...) | IntUniform(...) | Choice(...) | value}.
        x, t: the training data only. ``validation_split`` of it (shuffled with ``seed``,
            the same samples for every trial) is held out and scores the trials.
        trials, epochs, batch_size: how many configurations, trained how long.
        optimizer: the optimizer's name, built per trial from the sampled values.
        monitor: "val_accuracy" (higher is better) or "val_loss" (lower is better).
        seed: seeds the split, the sampling and the training (reproducible search).
        comm: the communicator of an MPI job (``fastnn.distributed.init()``): the trials are
            spread over the ranks (trial i on rank i % K, each trained by one rank alone)
            and every rank returns them all, as a serial search with the same seed does
            (trials trained on another rank carry only the per-epoch ``history`` metrics).
            Only rank 0 prints.
        fit_kwargs: passed to ``fit`` (e.g. ``augment``, ``callbacks``).

    Returns:
        A list of :class:`Trial`, best first; a trial whose training diverged (NaN loss)
        scores worst.
    """
    if not isinstance(trials, (int, np.integer)) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"random_search: trials must be a positive integer, got {trials!r}")
    if monitor not in ("val_accuracy", "val_loss"):
        raise ValueError(f"random_search: monitor must be 'val_accuracy' or 'val_loss', got {monitor!r}")
    if not callable(build):
        raise TypeError("random_search: build must be a function params -> model")
    for key in ("validation_data", "validation_split"):
        if key in fit_kwargs:
            raise TypeError(f"random_search: {key} is chosen by random_search itself")
    x = np.asarray(x)
    t = np.asarray(t)
    if len(x) != len(t):
        raise ValueError(f"random_search: x has {len(x)} samples but t has {len(t)}")
    out = file if file is not None else sys.stderr
    comm = as_communicator(comm, "random_search")
    rng = np.random.default_rng(seed)
    (x_train, t_train), validation = _split(x, t, validation_split, rng)
    results = []
    for index in range(trials):
        params = sample(space, rng)
        fit_seed = int(rng.integers(2**31))  # drawn on every rank: the draws stay in step
        if index % comm.size != comm.rank:
            results.append(Trial(params, 0.0, 0.0, 0.0, {}, 0.0, index))
            continue
        built = build(dict(params))
        model, opt = built if isinstance(built, tuple) else (built, _optimizer_for(optimizer, params))
        started = time.perf_counter()
        history = model.fit(
            x_train,
            t_train,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=opt,
            validation_data=validation,
            verbose=0,
            seed=fit_seed,
            **fit_kwargs,
        )
        if history.epochs and "val_loss" in history:
            val_loss, val_accuracy = history["val_loss"][-1], history["val_accuracy"][-1]
        else:  # diverged in its first epoch
            val_loss, val_accuracy = float("inf"), 0.0
        diverged = (history.stop_reason or "").startswith("training stopped at epoch")
        if diverged or not math.isfinite(val_loss):
            val_loss, val_accuracy = float("inf"), 0.0
        score = val_accuracy if monitor == "val_accuracy" else val_loss
        trial = Trial(
            params,
            float(score),
            float(val_loss),
            float(val_accuracy),
            dict(history),
            time.perf_counter() - started,
            index,
        )
        results.append(trial)
        if verbose and comm.size == 1:
            print(f"trial {index + 1}/{trials}  {trial}  ({trial.seconds:.1f}s)", file=out, flush=True)
    if comm.size > 1:
        _gather_trials(results, comm, epochs)
        if verbose and comm.is_root:
            for trial in results:
                rank = trial.index % comm.size
                line = f"trial {trial.index + 1}/{trials}  {trial}  ({trial.seconds:.1f}s on rank {rank})"
                print(line, file=out, flush=True)
    if monitor == "val_accuracy":
        results.sort(key=lambda r: (-r.val_accuracy, r.val_loss))
    else:
        results.sort(key=lambda r: (r.val_loss, -r.val_accuracy))
    return results


#: The per-epoch metrics a trial run on another rank brings back.
_GATHERED = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time")


def _gather_trials(results: list, comm, epochs: int) -> None:
    """Fill in, on every rank, the scores and per-epoch metrics of the trials other ranks
    trained: one allreduce of a float64 table, a row per trial (score, val_loss,
    val_accuracy, seconds, epochs run, then each of :data:`_GATHERED` per epoch), zero
    where a rank did not train the trial."""
    head = 5
    table = np.zeros((len(results), head + epochs * len(_GATHERED)))
    mine = [trial.index % comm.size == comm.rank for trial in results]
    for row, trial, own in zip(table, results, mine):
        if own:
            ran = len(trial.history.get("loss", []))
            row[:head] = trial.score, trial.val_loss, trial.val_accuracy, trial.seconds, ran
            for k, name in enumerate(_GATHERED):
                values = trial.history.get(name, [])[:epochs]
                row[head + k * epochs : head + k * epochs + len(values)] = values
    comm.allreduce_(table)
    for row, trial, own in zip(table, results, mine):
        if not own:
            trial.score, trial.val_loss, trial.val_accuracy, trial.seconds = (float(v) for v in row[:4])
            ran = int(row[4])
            trial.history = {
                name: [float(v) for v in row[head + k * epochs : head + k * epochs + ran]]
                for k, name in enumerate(_GATHERED)
            }


def parse_range(text: str, log: bool = True):
    """A range from text: "LOW:HIGH" -> LogUniform(LOW, HIGH) (or Uniform with ``log=False``); "V" -> V."""
    parts = str(text).split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected LOW:HIGH or a number, got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) != 2:
        raise ValueError(f"expected LOW:HIGH or a number, got {text!r}")
    return (LogUniform if log else Uniform)(*values)


def format_trials(trials: list, top: int | None = None) -> str:
    """A table of trials, best first, as ``fastnn tune`` prints it."""
    shown = trials[:top] if top else trials
    names = list(shown[0].params) if shown else []
    header = f"{'rank':>4}  {'val_acc':>7}  {'val_loss':>8}  " + "  ".join(f"{n:>12}" for n in names)
    lines = [header]
    for rank, trial in enumerate(shown, start=1):
        values = "  ".join(f"{_fmt(trial.params[n]):>12}" for n in names)
        lines.append(f"{rank:>4}  {trial.val_accuracy:>7.4f}  {trial.val_loss:>8.4f}  {values}")
    return "\n".join(lines)
