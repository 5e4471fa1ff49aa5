"""The register tiles' AVX2 path (:data:`~fastnn.kernels.conv.direct.HALF_TILES`), run here.

The kernels pick 256-bit vectors and half-width tiles at import when the CPU has no
AVX-512. A test machine with AVX-512 never runs that code, so this test starts a process
that hides the CPU's AVX-512 features from llvmlite before fastnn is imported (Numba then
compiles for AVX2 alone, into an empty kernel cache of its own) and checks the
convolution kernels there against the NumPy reference: the stride-1 forward and backward
(pixel tiles), and the channel tiles forward, weight gradients and input gradient at
strides 1 to 3, in both dtypes and both builds. Slow: it compiles those kernels afresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import llvmlite.binding as binding

    host = binding.get_host_cpu_features

    def without_avx512():
        features = host()
        for name in list(features.keys()):
            if name.startswith("avx512"):
                features[name] = False
        return features

    binding.get_host_cpu_features = without_avx512

    import numpy as np
    from fastnn.backends import get_ops
    from fastnn.kernels import conv as conv_k
    from fastnn.kernels.conv.direct import HALF_TILES
    from fastnn.kernels.activations import ACT_IDENTITY

    assert HALF_TILES, "the AVX-512 features were not hidden"
    NB, REF = get_ops("numba"), get_ops("numpy")
    rng = np.random.default_rng(0)
    none = {t: np.empty((0, 0, 0, 0), t) for t in (np.float32, np.float64)}
    checked = 0
    for dtype in (np.float32, np.float64):
        tol = 1e-4 if dtype == np.float32 else 1e-10
        for N, C, F, H, K, stride, pad in [
            (3, 3, 20, 15, 3, 1, 1),
            (2, 17, 40, 14, 5, 1, 2),
            (2, 35, 33, 13, 3, 2, 1),
            (3, 40, 19, 17, 3, 3, 0),
            (2, 33, 34, 9, 1, 2, 0),
            (2, 6, 16, 14, 5, 1, 0),
        ]:
            x = rng.uniform(-1, 1, (N, C, H, H)).astype(dtype)
            W = rng.uniform(-1, 1, (F, C, K, K)).astype(dtype)
            b = rng.uniform(-1, 1, F).astype(dtype)
            y = NB.conv2d(x, W, b, stride, pad, impl="direct")
            np.testing.assert_allclose(y, REF.conv2d(x, W, b, stride, pad), rtol=tol, atol=tol * C * K * K)
            dy = rng.uniform(-1, 1, y.shape).astype(dtype)
            want = REF.conv2d_backward(dy, x, W, stride, pad)
            for got, ref in zip(NB.conv2d_backward(dy, x, W, stride, pad, impl="direct"), want):
                np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * F * K * K * N * H)
            geometry = (K, K, stride, stride, pad, pad)
            for build in ("serial", "parallel"):
                out = np.full(y.shape, np.nan, dtype)
                getattr(conv_k.channel_tiled_forward, build)(
                    x, conv_k.pack_weight_rows(W), b, *geometry, ACT_IDENTITY, dtype(0), none[dtype], out
                )
                np.testing.assert_allclose(out, y, rtol=tol, atol=tol * C * K * K)
                dW, db = np.full(W.shape, np.nan, dtype), np.full(F, np.nan, dtype)
                getattr(conv_k.channel_tiled_weights, build)(x, dy, dy, 0, *geometry, dW, db)
                np.testing.assert_allclose(dW, want[1], rtol=tol, atol=tol * N * H * H)
                dx = np.full(x.shape, np.nan, dtype)
                getattr(conv_k.channel_tiled_data, build)(dy, dy, 0, conv_k.pack_tap_rows(W), *geometry, dx)
                np.testing.assert_allclose(dx, want[0], rtol=tol, atol=tol * F * K * K)
                checked += 1
    print("checked", checked)
    """
)


@pytest.mark.slow
def test_the_avx2_tiles_match_the_reference(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "checked 24" in result.stdout
