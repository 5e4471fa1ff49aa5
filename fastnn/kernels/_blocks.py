"""Fixed-size blocks for elementwise parallel loops.

``prange(n)`` splits 0..n among the threads, so which elements land in the
vectorised body of a thread's loop and which in its scalar remainder depends on
the thread count; with fast-math contraction (FMA) the two can round differently.
Looping over fixed blocks of BLOCK elements instead makes every element's code
path independent of the thread count: results are bitwise the same on 1 or 8 threads.
(BLOCK is a knob of :mod:`fastnn.kernels.tuning`.)

The pattern, in every elementwise kernel::

    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            ...

The index is made unsigned because Numba cannot prove that ``k`` is non-negative and
would otherwise guard every access with a negative-index wraparound, which stops LLVM
from vectorising the loop.
"""

from .._config import jit
from .tuning import BLOCK


@jit(inline="always")
def block_count(n):
    """The number of BLOCK-sized blocks covering n elements."""
    return (n + BLOCK - 1) // BLOCK
