"""Reusable work arrays for the numba backend's kernels.

A training step runs the same ops on the same shapes every step. Allocating their
multi-megabyte work arrays afresh each time costs page faults: glibc returns the
freed memory to the system and the next step touches new pages (simple_convnet's
backward pass faulted them in again every step). Work arrays that never leave an op
are therefore kept here and reused.
"""

from __future__ import annotations

import math
import threading

import numpy as np

_local = threading.local()


def scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """A reusable work array of ``shape`` and ``dtype``, one buffer per Python thread and name.

    The contents are whatever the last user left: callers write every element they
    read. The buffer only grows, so a later, smaller request gets a view of it.
    """
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (name, dtype)
    size = math.prod(shape)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1), dtype=dtype)
        buffers[key] = buf
    return buf[:size].reshape(shape)
