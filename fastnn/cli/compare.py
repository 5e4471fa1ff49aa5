"""``fastnn compare MODEL.npz``: one training step of a saved model on the numba backend and on
the NumPy reference, layer by layer (:func:`fastnn.compare`); exit 1 when a layer differs
beyond the oracle's bound."""

from __future__ import annotations

import argparse

from ._common import DATASETS, existing_dir, positive_int, writable_file


def add_parser(commands) -> argparse.ArgumentParser:
    compare = commands.add_parser(
        "compare",
        help="a saved model's training step, numba against NumPy, per layer",
        description="Run one training step (forward and backward, no update) of a saved model on a "
        "batch of --dataset's training split, on the numba backend and on the NumPy reference from "
        "the same weights. Print per layer (and per fused group) the difference of the outputs, of "
        "the input gradient and of the weight gradients, each against the oracle's bound, and the "
        "time on each backend. Exit 1 when a difference goes beyond its bound; the first such "
        "layer is marked.",
    )
    compare.add_argument(
        "model", metavar="MODEL.npz", help="a model saved by model.save or fastnn train --save"
    )
    compare.add_argument(
        "--dataset", choices=DATASETS, default="digits", help="the training split to take the batch from"
    )
    compare.add_argument(
        "--data-dir",
        type=existing_dir,
        default=None,
        metavar="DIR",
        help="folder holding the IDX .gz files (else $FASTNN_DATA, then the cache)",
    )
    compare.add_argument(
        "--batch-size", type=positive_int, default=64, metavar="N", help="samples in the batch"
    )
    compare.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="picks the batch (and the digits train/test split, as fastnn train's)",
    )
    compare.add_argument(
        "--repeats",
        type=int,
        default=5,
        metavar="K",
        help="timed calls per layer and backend, median shown (0: no timing)",
    )
    compare.add_argument(
        "--json", type=writable_file, default=None, metavar="OUT", help="also write the results as JSON"
    )
    compare.add_argument("--quiet", action="store_true", help="no download messages")
    return compare


def run(args) -> int:
    import json

    import numpy as np

    from .._files import atomic_write
    from ..compare import compare
    from ._common import load_data
    from ._saved_model import check_inputs, load_saved_model

    if args.repeats < 0:
        raise ValueError(f"--repeats must be 0 or more (0: no timing), got {args.repeats}")
    model = load_saved_model(args.model)
    (x_train, t_train), _ = load_data(args)
    source = f"the {args.dataset} training set"
    try:
        check_inputs(model, args.model, x_train, source)
    except ValueError as error:
        others = ", ".join(d for d in DATASETS if d != args.dataset)
        raise ValueError(
            f"{error}; was the model trained on another data set? (--dataset {others})"
        ) from None
    rng = np.random.default_rng(args.seed)
    picked = rng.choice(len(x_train), size=min(args.batch_size, len(x_train)), replace=False)
    result = compare(model, x_train[picked], t_train[picked], repeats=args.repeats)
    print(f"{args.model} on {len(picked)} samples of {source} (seed {args.seed})")
    print(result.table())
    if args.json:
        text = json.dumps(result.to_dict(), indent=1, allow_nan=False).encode("utf-8")
        atomic_write(args.json, lambda handle: handle.write(text))
        print(f"\nwrote {args.json}")
    return 0 if result.ok else 1
