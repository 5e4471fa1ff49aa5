"""``fastnn info``: versions, thread counts, threading layer and kernel cache."""

from __future__ import annotations

import argparse
import os
import platform


def add_parser(commands) -> argparse.ArgumentParser:
    return commands.add_parser("info", help="print versions, threads, threading layer and cache location")


def run(args) -> int:
    import numba
    import numpy
    import scipy

    from .. import __version__, _config, _malloc, kernels
    from .._blas import get_kernel_blas_threads
    from ..kernels.activations import relu_forward

    relu_forward.parallel(numpy.zeros(4, numpy.float32), numpy.zeros(4, numpy.float32))
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(kernels.__file__)), "__pycache__"
    )
    rows = [
        ("fastnn", __version__),
        ("python", platform.python_version()),
        ("numpy", numpy.__version__),
        ("numba", numba.__version__),
        ("scipy", scipy.__version__),
        ("cpu cores", os.cpu_count()),
        ("kernel threads", _config.get_num_threads()),
        ("kernel BLAS threads", get_kernel_blas_threads()),
        ("malloc thresholds", "fastnn's (FASTNN_MALLOC)" if _malloc.APPLIED else "glibc's own"),
        ("threading layer", layer),
        ("fastmath", _config.FASTMATH),
        ("parallel", _config.PARALLEL),
        ("parallel threshold", _config.PARALLEL_THRESHOLD),
        ("kernel cache", f"{'on' if _config.CACHE else 'off'}: {cache_dir}"),
        ("FASTNN_DATA", os.environ.get("FASTNN_DATA", "(unset)")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0
