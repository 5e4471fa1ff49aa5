"""Benchmarks behind ``fastnn bench``: training steps against the NumPy reference and
PyTorch (when installed), thread scaling, conv GFLOP/s against sgemm, the fused
optimizer step, and start-up time. See :mod:`fastnn.bench.report` for the targets."""
