"""fastnn: fast deep learning on the CPU, Numba kernels checked against a NumPy reference."""

__version__ = "0.1.0"

from ._config import get_num_threads, set_num_threads
from .backends import get_ops

__all__ = ["__version__", "get_ops", "set_num_threads", "get_num_threads"]
