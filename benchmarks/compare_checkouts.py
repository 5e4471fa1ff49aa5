"""Two fastnn checkouts against each other, in one process: is a change slower anywhere?

    python benchmarks/compare_checkouts.py OLD_CHECKOUT [NEW_CHECKOUT] [--repeats 30]
        [--zoo NAME ...]

Both packages are copied into a temporary folder as ``fastnn_old`` and ``fastnn_new``
(fastnn imports itself relatively, so a renamed copy works) and imported side by side.
For every book network, a training step (Adam, batch 100) and a ``predict`` of the
same batch take turns in interleaved blocks through fastnn's own harness, as
``fastnn bench`` times them, and the script prints each median's new/old ratio and the
best and worst of them. With ``--zoo``, the named workloads of ``fastnn bench --zoo``
instead, each at its own batch and input shape, as a training step or a ``predict`` as
the zoo runs it. NEW_CHECKOUT defaults to this repository. The first calls
compile both copies' kernels (the copies start with an empty kernel cache).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ZOO = ("mlp", "simple_convnet", "deep_convnet", "lenet5")


def import_copy(checkout: Path, name: str, folder: Path):
    """The package ``checkout/fastnn``, copied to ``folder/name`` and imported as ``name``."""
    shutil.copytree(checkout / "fastnn", folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    importlib.import_module(f"{name}.bench.harness")
    return importlib.import_module(name)


def workloads(zoo_names):
    """(network, call) pairs: both calls of each book network, or each named zoo workload's
    own call (``train_step`` or ``predict``)."""
    if zoo_names is None:
        return [(network, call) for network in ZOO for call in ("train_step", "predict")]
    from fastnn.bench.zoo import ZOO as ENTRIES

    unknown = [name for name in zoo_names if name not in ENTRIES]
    if unknown:
        raise SystemExit(f"compare_checkouts: no zoo workload {unknown}; there are {sorted(ENTRIES)}")
    return [(name, "train_step" if ENTRIES[name].kind == "train" else "predict") for name in zoo_names]


def build(package, network: str, from_zoo: bool):
    """(model, batch, input shape) of the book network or zoo workload ``network``."""
    if from_zoo:
        entry = importlib.import_module(f"{package.__name__}.bench.zoo").ZOO[network]
        return entry.build(seed=0), entry.batch, tuple(entry.input_shape)
    return getattr(package.models, network)(seed=0), 100, (1, 28, 28)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the checkout to compare against")
    parser.add_argument("new", type=Path, nargs="?", default=REPO, help="default: this repository")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per median")
    parser.add_argument("--zoo", nargs="+", metavar="NAME", help="zoo workloads instead of the book networks")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        sys.path.insert(0, folder)
        old = import_copy(args.old.resolve(), "fastnn_old", Path(folder))
        new = import_copy(args.new.resolve(), "fastnn_new", Path(folder))
        rng = np.random.default_rng(0)
        ratios = {}
        print(f"{'network':24s}{'call':12s}{'old ms':>10s}{'new ms':>10s}{'new/old':>9s}")
        for network, call in workloads(args.zoo):
            contenders = {}
            for tag, package in (("old", old), ("new", new)):
                model, batch, shape = build(package, network, args.zoo is not None)
                if tag == "old":  # one batch for both
                    x = rng.random((batch, *shape), dtype=np.float32)
                    t = rng.integers(0, 10, batch)
                optimizer = package.optim.Adam()
                if call == "train_step":
                    contenders[tag] = lambda m=model, o=optimizer: m.train_step(x, t, o)
                else:
                    contenders[tag] = lambda m=model, b=batch: m.predict(x, batch_size=b)
            repeats = args.repeats * (4 if network == "mlp" else 1)
            median = new.bench.harness.interleaved(contenders, repeats, warmup=3, block=3)
            ratio = median["new"] / median["old"]
            ratios[(network, call)] = ratio
            print(
                f"{network:24s}{call:12s}{1e3 * median['old']:10.2f}{1e3 * median['new']:10.2f}{ratio:9.3f}",
                flush=True,
            )
        best, worst = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
        print(f"best  new/old {ratios[best]:.3f} ({' '.join(best)})")
        print(f"worst new/old {ratios[worst]:.3f} ({' '.join(worst)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
