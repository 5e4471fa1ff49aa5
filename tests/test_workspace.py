"""A training step reuses its work arrays: in the steady state it touches no new pages.

The numba backend keeps the work arrays that never leave an op (fastnn.backends.scratch)
instead of allocating them each call; before, simple_convnet took about 830 minor page
faults per step (glibc returned the freed megabytes to the system and the next step
faulted them back in), 15-20 % of its step time.
"""

import sys

import numpy as np
import pytest

from fastnn.backends.scratch import scratch
from fastnn.models import simple_convnet
from fastnn.optim import Adam

resource = pytest.importorskip("resource")


def test_scratch_reuses_one_buffer_per_name_and_dtype():
    a = scratch("test_a", (3, 4), np.float32)
    a[...] = 7
    b = scratch("test_a", (2, 5), np.float32)
    assert b.shape == (2, 5) and np.shares_memory(a, b)
    assert not np.shares_memory(a, scratch("test_b", (3, 4), np.float32))
    assert scratch("test_a", (3, 4), np.float64).dtype == np.float64
    bigger = scratch("test_a", (10, 10), np.float32)
    assert bigger.shape == (10, 10) and bigger.flags.c_contiguous


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator behaviour")
def test_training_step_takes_no_page_faults_in_the_steady_state():
    model = simple_convnet(seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((100, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 100)
    optimizer = Adam()
    for _ in range(5):
        model.train_step(x, t, optimizer)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    steps = 10
    for _ in range(steps):
        model.train_step(x, t, optimizer)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps
    assert faults < 50, f"{faults:.0f} minor page faults per training step"
