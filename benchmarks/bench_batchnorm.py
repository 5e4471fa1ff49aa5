"""A VGG-style network with BatchNorm after every convolution: fused against apart.

    python benchmarks/bench_batchnorm.py [--repeats 20] [--old CHECKOUT] [--profile]

The network is issue 16's "VGG-style 3x3 stack with BatchNorm" on 3x32x32 inputs at
batch 64: Conv2D(3,32)-BN-ReLU-Conv2D(32,32)-BN-ReLU-MaxPool-Conv2D(32,64)-BN-ReLU-
Conv2D(64,64)-BN-ReLU-MaxPool-Flatten-Dense(4096,256)-BN-ReLU-Dense(256,10). A training
step (Adam) and ``predict`` of 1000 images (batches of 256) run with
``model.fuse_layers`` True and False, taking turns in interleaved blocks
(:func:`fastnn.bench.harness.interleaved`), and the script prints the medians and the
fused/apart ratios. With ``--old CHECKOUT`` that checkout's fastnn (copied and imported
as ``fastnn_old``, as ``compare_checkouts.py`` does) is a third contender. ``--profile``
also prints every kernel call of a fused and an unfused step (as ``profile_step.py``).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import fastnn  # noqa: E402
from fastnn import _config  # noqa: E402
from fastnn.bench.harness import interleaved  # noqa: E402


def vgg_bn(fnn, seed=0):
    """The network, built from the package ``fnn``."""
    layers = []
    for c_in, c_out, pool in ((3, 32, False), (32, 32, True), (32, 64, False), (64, 64, True)):
        layers += [fnn.Conv2D(c_in, c_out, 3, pad=1), fnn.BatchNorm(c_out), fnn.ReLU()]
        if pool:
            layers.append(fnn.MaxPool2D(2))
    layers += [fnn.Flatten(), fnn.Dense(64 * 8 * 8, 256), fnn.BatchNorm(256), fnn.ReLU(), fnn.Dense(256, 10)]
    return fnn.Sequential(layers, seed=seed)


def profile(model, x, t, steps=20):
    """Median microseconds of each kernel call of a training step, in call order."""
    calls = []
    original = _config.ParallelKernel.__call__

    def timed(kernel, work, *args):
        started = time.perf_counter()
        result = original(kernel, work, *args)
        calls.append((kernel.__name__, getattr(args[0], "shape", ()), time.perf_counter() - started))
        return result

    optimizer = fastnn.optim.Adam()
    for _ in range(3):
        model.train_step(x, t, optimizer)
    _config.ParallelKernel.__call__ = timed
    rows, step_s = None, []
    try:
        for _ in range(steps):
            calls.clear()
            started = time.perf_counter()
            model.train_step(x, t, optimizer)
            step_s.append(time.perf_counter() - started)
            rows = rows or [[name, shape, []] for name, shape, _ in calls]
            for row, call in zip(rows, calls):
                row[2].append(call[2])
    finally:
        _config.ParallelKernel.__call__ = original
    for name, shape, times in rows:
        print(f"  {name:<40}{str(shape):<22}{np.median(times) * 1e6:>9.0f} us")
    print(f"  step {np.median(step_s) * 1e3:.1f} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--old", type=Path, help="a checkout to time as a third contender")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((64, 3, 32, 32), dtype=np.float32)
    t = rng.integers(0, 10, 64)
    images = rng.random((1000, 3, 32, 32), dtype=np.float32)
    packages = {"fused": fastnn, "apart": fastnn}
    with tempfile.TemporaryDirectory() as folder:
        if args.old is not None:
            shutil.copytree(
                args.old.resolve() / "fastnn",
                Path(folder) / "fastnn_old",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            sys.path.insert(0, folder)
            packages["old"] = importlib.import_module("fastnn_old")
        models = {}
        for tag, package in packages.items():
            model = vgg_bn(package)
            model.fuse_layers = tag != "apart"
            model.train_step(x, t, package.optim.Adam())  # statistics away from the initial ones
            models[tag] = (model, package.optim.Adam())
        if args.profile:
            for tag in ("fused", "apart"):
                print(f"kernel calls of a training step, {tag}:")
                profile(models[tag][0], x, t)
        print(f"VGG + BatchNorm, float32, {_config.get_num_threads()} threads; median ms")
        results = {}
        for call in ("train_step", "predict"):
            contenders = {}
            for tag, (model, optimizer) in models.items():
                if call == "train_step":
                    contenders[tag] = lambda m=model, o=optimizer: m.train_step(x, t, o)
                else:
                    contenders[tag] = lambda m=model: m.predict(images, batch_size=256)
            repeats = args.repeats if call == "train_step" else max(3, args.repeats // 2)
            results[call] = interleaved(contenders, repeats, warmup=2, block=3)
            medians = results[call]
            line = "  ".join(f"{tag} {1e3 * s:8.1f}" for tag, s in medians.items())
            ratios = "  ".join(
                f"{tag}/apart {s / medians['apart']:.3f}" for tag, s in medians.items() if tag != "apart"
            )
            print(f"{call:<11} {line}   {ratios}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
