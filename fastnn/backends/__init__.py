"""Backends: ``get_ops("numpy")`` is the reference, ``get_ops("numba")`` the fast kernels."""

from __future__ import annotations

from .numba_ops import NumbaOps
from .numpy_ops import NumpyOps

BACKENDS = {"numpy": NumpyOps, "numba": NumbaOps}
_instances: dict[str, object] = {}


def get_ops(name: str = "numba"):
    """The ops object for backend ``name`` ("numba" or "numpy"); one shared instance each."""
    if isinstance(name, (NumpyOps,)):
        return name
    if name not in BACKENDS:
        raise ValueError(f"get_ops: unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    if name not in _instances:
        _instances[name] = BACKENDS[name]()
    return _instances[name]


__all__ = ["get_ops", "NumpyOps", "NumbaOps", "BACKENDS"]
