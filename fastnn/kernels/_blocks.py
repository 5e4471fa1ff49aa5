"""Fixed-size blocks for elementwise parallel loops.

``prange(n)`` splits 0..n among the threads, so which elements land in the
vectorised body of a thread's loop and which in its scalar remainder depends on
the thread count; with fast-math contraction (FMA) the two can round differently.
Looping over fixed blocks of BLOCK elements instead makes every element's code
path independent of the thread count: results are bitwise the same on 1 or 8 threads.
"""

from .._config import jit

BLOCK = 4096


@jit(inline="always")
def block_count(n):
    """The number of BLOCK-sized blocks covering n elements."""
    return (n + BLOCK - 1) // BLOCK
