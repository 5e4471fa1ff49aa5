"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3; fastai's lr_find).

Train for ``num_steps`` mini-batches while the learning rate grows exponentially from
``start_lr`` to ``end_lr``::

    lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1)),   i = 0 .. num_steps-1

and record each batch's loss (measured before its step, as ``train_step`` returns it).
The loss is smoothed with a bias-corrected exponential moving average::

    avg_i = smooth * avg_(i-1) + (1 - smooth) * loss_i,   avg_(-1) = 0
    smoothed_i = avg_i / (1 - smooth ** (i + 1))

and the sweep stops early once ``smoothed_i > diverge_factor * min(smoothed_0..i-1)``
(the loss diverged) or a loss or gradient is not finite.

The suggestion is fastai's "steep": the rate where the smoothed loss falls fastest
against log10(lr), i.e. the minimum of ``d smoothed / d log10(lr)`` (forward
differences), looked for after the first tenth of the sweep and before the minimum of
the smoothed loss. ``lr_min / 10`` (fastai's "minimum": a tenth of the rate at the
lowest smoothed loss) is returned too, as ``result.lr_min_div10``.

The model is restored afterwards, bit for bit: its flat parameters and gradients, every
layer buffer (batch-norm statistics) and every layer's random generator (Dropout). An
optimizer passed in is not touched: the sweep runs a fresh one of its class and settings.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ._checks import check_batch_size
from .errors import NonFiniteError
from .optim import Optimizer, get_optimizer

__all__ = ["LRFindResult", "lr_find", "suggest_steepest"]


@dataclass(frozen=True)
class LRFindResult:
    """What :func:`lr_find` measured; every array has one entry per step taken.

    Attributes:
        lrs: (S,) the learning rate of each step.
        losses: (S,) the raw batch loss of each step, before its update.
        smoothed: (S,) the bias-corrected exponential moving average of ``losses``.
        suggestion: the rate at the steepest descent of ``smoothed`` (see the module doc).
        lr_min_div10: a tenth of the rate at the lowest smoothed loss.
        stop_reason: why the sweep ended ("completed", or the divergence that stopped it).
        num_steps: the steps asked for (``len(lrs)`` is smaller when the sweep stopped early).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    lr_min_div10: float
    stop_reason: str
    num_steps: int

    @property
    def stopped_early(self) -> bool:
        """Whether the range test stopped before ``num_steps`` (the loss diverged)."""
        return len(self.lrs) < self.num_steps


def _positive(name: str, value) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ValueError(f"lr_find: {name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_arguments(start_lr, end_lr, num_steps, smooth, diverge_factor) -> tuple:
    start_lr, end_lr = _positive("start_lr", start_lr), _positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"lr_find: end_lr must be larger than start_lr, got {start_lr} and {end_lr}")
    if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or num_steps < 2:
        raise ValueError(f"lr_find: num_steps must be an integer >= 2, got {num_steps!r}")
    if not isinstance(smooth, numbers.Real) or not 0 <= smooth < 1:
        raise ValueError(f"lr_find: smooth must be in [0, 1) (0 turns smoothing off), got {smooth!r}")
    if _positive("diverge_factor", diverge_factor) <= 1:
        raise ValueError(f"lr_find: diverge_factor must be > 1, got {diverge_factor!r}")
    return start_lr, end_lr, int(num_steps), float(smooth), float(diverge_factor)


def _fresh_optimizer(optimizer, lr: float) -> Optimizer:
    """A new optimizer of ``optimizer``'s class and settings (or by name), with no state."""
    if isinstance(optimizer, Optimizer):
        return type(optimizer)(**{**optimizer.get_config(), "lr": lr})
    if not isinstance(optimizer, str):
        raise TypeError(f"lr_find: optimizer must be a name or an Optimizer, got {type(optimizer).__name__}")
    return get_optimizer(optimizer, lr=lr)


class _ModelState:
    """A copy of everything a training step changes in a model, to put back bit for bit."""

    def __init__(self, model):
        self.model = model
        self.params = model.flat_params.copy()
        self.grads = model.flat_grads.copy()
        self.buffers = [(array, array.copy()) for layer in model.layers for array in layer.buffers.values()]
        self.generators = [
            (value, copy.deepcopy(value.bit_generator.state))
            for layer in model.layers
            for value in vars(layer).values()
            if isinstance(value, np.random.Generator)
        ]

    def restore(self) -> None:
        self.model.flat_params[...] = self.params
        self.model.flat_grads[...] = self.grads
        for array, saved in self.buffers:
            array[...] = saved
        for generator, state in self.generators:
            generator.bit_generator.state = state


def _batches(n: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of mini-batches, one shuffled pass after another, without end."""
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def suggest_steepest(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """The rate where ``smoothed`` falls fastest against log10(lr), before its minimum.

    ``slope_i = (smoothed_(i+1) - smoothed_i) / (log10 lr_(i+1) - log10 lr_i)``; the
    search skips the first tenth of the sweep (where the bias-corrected average still
    settles) and ends at the minimum of ``smoothed``. Returns ``lrs[argmin slope]``
    (``lrs[0]`` if the loss never fell).
    """
    lowest = int(np.argmin(smoothed))
    skip = min(len(lrs) // 10, max(lowest - 1, 0))
    if lowest - skip < 1:
        return float(lrs[0])
    window = slice(skip, lowest + 1)
    slopes = np.diff(smoothed[window]) / np.diff(np.log10(lrs[window]))
    return float(lrs[skip + int(np.argmin(slopes))])


def lr_find(
    model,
    x,
    t,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 64,
    optimizer="adam",
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    seed: int | None = 0,
) -> LRFindResult:
    """Smith's learning-rate range test on ``model`` with (x, t); the model is restored after.

    Args:
        model: a Sequential (any model with ``train_step``, ``flat_params``, ``layers``).
        x, t: training samples (N, ...) and targets; mini-batches of ``batch_size`` are
            drawn from shuffled passes over them (``seed`` seeds the shuffling).
        start_lr, end_lr, num_steps: the exponential sweep (see the module doc).
        optimizer: a name ("adam", "sgd", ...) or an Optimizer whose class and settings
            are used (a fresh copy: the one passed is not changed).
        smooth: the moving-average factor of the smoothed loss (0 turns it off).
        diverge_factor: stop when the smoothed loss exceeds this times its best so far.

    Returns:
        An :class:`LRFindResult` with the rates, raw and smoothed losses and the suggestion.
    """
    start_lr, end_lr, num_steps, smooth, diverge_factor = _check_arguments(
        start_lr, end_lr, num_steps, smooth, diverge_factor
    )
    batch_size = check_batch_size("lr_find", batch_size)
    x = model.prepare_input(x, "lr_find")
    t = model.prepare_targets(t, "lr_find")
    if len(x) != len(t):
        raise ValueError(f"lr_find: x has {len(x)} samples but t has {len(t)}; expected the same count")
    if len(x) < batch_size:
        raise ValueError(
            f"lr_find: batch_size {batch_size} is larger than the {len(x)} samples; pass a smaller batch_size"
        )
    opt = _fresh_optimizer(optimizer, start_lr)
    batches = _batches(len(x), batch_size, np.random.default_rng(seed))
    lrs, losses, smoothed = [], [], []
    average, best, stop_reason = 0.0, math.inf, "completed"
    state = _ModelState(model)
    try:
        for step in range(num_steps):
            opt.lr = start_lr * (end_lr / start_lr) ** (step / (num_steps - 1))
            index = next(batches)
            try:
                loss = float(model.train_step(x[index], t[index], opt))
            except NonFiniteError as error:
                stop_reason = f"stopped at step {step + 1} (lr {opt.lr:.3g}): {error}"
                break
            average = smooth * average + (1 - smooth) * loss
            value = average / (1 - smooth ** (step + 1))
            lrs.append(opt.lr)
            losses.append(loss)
            smoothed.append(value)
            if value > diverge_factor * best:
                stop_reason = (
                    f"stopped at step {step + 1} (lr {opt.lr:.3g}): the smoothed loss {value:.4g} "
                    f"passed {diverge_factor:g} x its best {best:.4g}"
                )
                break
            best = min(best, value)
    finally:
        state.restore()
    if not lrs:
        raise NonFiniteError(
            f"lr_find: the first step at lr {start_lr:g} failed ({stop_reason}); lower start_lr"
        )
    lrs_array, smoothed_array = np.array(lrs), np.array(smoothed)
    return LRFindResult(
        lrs=lrs_array,
        losses=np.array(losses),
        smoothed=smoothed_array,
        suggestion=suggest_steepest(lrs_array, smoothed_array),
        lr_min_div10=float(lrs_array[int(np.argmin(smoothed_array))]) / 10,
        stop_reason=stop_reason,
        num_steps=num_steps,
    )
