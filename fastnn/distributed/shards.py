"""Shard arithmetic: which part of every global batch each rank takes.

Every rank draws the same seeded permutation and cuts the same global batches from it,
so every rank runs the same number of steps; rank r then takes the contiguous slice
``[bounds[r], bounds[r + 1])`` of each batch, where the first ``n % K`` ranks hold one
sample more (``np.array_split``). A short last batch may leave a rank with no sample:
it still takes part in the step, contributing a zero gradient.
"""

from __future__ import annotations

import numpy as np

__all__ = ["shard_bounds", "shard_of"]


def shard_bounds(n: int, size: int) -> np.ndarray:
    """(size + 1,) int64 offsets: rank r of ``size`` holds samples ``bounds[r]:bounds[r + 1]``
    of a batch of ``n``; the sizes ``n // size + (r < n % size)`` sum to n."""
    counts = np.full(size, n // size, dtype=np.int64)
    counts[: n % size] += 1
    return np.concatenate([[0], np.cumsum(counts)])


def shard_of(batch: np.ndarray, rank: int, size: int) -> np.ndarray:
    """Rank ``rank``'s part of ``batch`` (any array indexed along axis 0)."""
    bounds = shard_bounds(len(batch), size)
    return batch[bounds[rank] : bounds[rank + 1]]
