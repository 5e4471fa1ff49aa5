"""Cases for the blocks' whole-array ops: ``add``, ``concat_channels`` and ``channel_slice``.

Small cases are images or rows of a few values; large ones are Inception-sized images
(tens of thousands of values per sample), so the kernels split rows into pieces.
"""

from __future__ import annotations

from .case import Case, OpCases
from .draws import elementwise_shape, normal


def _sample_shape(rng, large: bool) -> tuple[int, ...]:
    """(N, C, H, W) or (N, D): the shape of a block's input or output, without C or D."""
    if large:
        return int(rng.integers(2, 6)), int(rng.integers(60, 120)), int(rng.integers(60, 120))
    if rng.random() < 0.25:
        return (int(rng.integers(1, 6)),)
    return int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 7))


def _with_channels(shape, channels: int) -> tuple[int, ...]:
    return (shape[0], channels, *shape[1:])


def _add(rng, large):
    a = normal(rng, elementwise_shape(rng, large))
    return Case("add", (a, normal(rng, a.shape)))


def _concat_channels(rng, large):
    shape = _sample_shape(rng, large)
    widths = rng.integers(1, 9, size=int(rng.integers(1, 5)))
    return Case("concat_channels", tuple(normal(rng, _with_channels(shape, int(c))) for c in widths))


def _channel_slice(rng, large):
    x = normal(rng, _with_channels(_sample_shape(rng, large), int(rng.integers(1, 12))))
    start = int(rng.integers(0, x.shape[1]))
    return Case("channel_slice", (x, start, int(rng.integers(start, x.shape[1] + 1))))


SPECS = {
    "add": OpCases(_add),
    "concat_channels": OpCases(_concat_channels),
    "channel_slice": OpCases(_channel_slice),
}

__all__ = ["SPECS"]
