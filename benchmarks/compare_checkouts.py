"""Two fastnn checkouts against each other, in one process: is a change slower anywhere?

    python benchmarks/compare_checkouts.py OLD_CHECKOUT [NEW_CHECKOUT] [--repeats 30]

Both packages are copied into a temporary folder as ``fastnn_old`` and ``fastnn_new``
(fastnn imports itself relatively, so a renamed copy works) and imported side by side.
For every network of the zoo, a training step (Adam, batch 100) and a ``predict`` of the
same batch take turns in interleaved blocks through fastnn's own harness, as
``fastnn bench`` times them, and the script prints each median's new/old ratio and the
best and worst of them. NEW_CHECKOUT defaults to this repository. The first calls
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the checkout to compare against")
    parser.add_argument("new", type=Path, nargs="?", default=REPO, help="default: this repository")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per median")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        sys.path.insert(0, folder)
        old = import_copy(args.old.resolve(), "fastnn_old", Path(folder))
        new = import_copy(args.new.resolve(), "fastnn_new", Path(folder))
        rng = np.random.default_rng(0)
        x = rng.random((100, 1, 28, 28), dtype=np.float32)
        t = rng.integers(0, 10, 100)
        ratios = {}
        print(f"{'network':16s}{'call':12s}{'old ms':>10s}{'new ms':>10s}{'new/old':>9s}")
        for network in ZOO:
            for call in ("train_step", "predict"):
                contenders = {}
                for tag, package in (("old", old), ("new", new)):
                    model = getattr(package.models, network)(seed=0)
                    optimizer = package.optim.Adam()
                    if call == "train_step":
                        contenders[tag] = lambda m=model, o=optimizer: m.train_step(x, t, o)
                    else:
                        contenders[tag] = lambda m=model: m.predict(x, batch_size=100)
                repeats = args.repeats * (4 if network == "mlp" else 1)
                median = new.bench.harness.interleaved(contenders, repeats, warmup=3, block=3)
                ratio = median["new"] / median["old"]
                ratios[(network, call)] = ratio
                print(
                    f"{network:16s}{call:12s}{1e3 * median['old']:10.2f}{1e3 * median['new']:10.2f}"
                    f"{ratio:9.3f}",
                    flush=True,
                )
        best, worst = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
        print(f"best  new/old {ratios[best]:.3f} ({' '.join(best)})")
        print(f"worst new/old {ratios[worst]:.3f} ({' '.join(worst)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
