"""predict's chunk size on the zoo's predict workloads: 256 samples against bigger chunks.

    python benchmarks/predict_chunks.py [--repeats 9]

For each ``predict_*`` workload of the zoo, ``model.predict(x, batch_size=b)`` takes turns
(fastnn's harness, interleaved) for b = 256 and for the chunks whose input holds 4, 8 and
32 MiB (at least 256 samples), and the script prints each median's ratio to 256's. The
default chunk (``Sequential.inference_batch_size``) was read off this table: it counts
every layer's output, not only the input, since bigger chunks slow the conv nets, and a
network of vectors alone (the MLP) takes the 32 MiB chunk.
"""

from __future__ import annotations

import argparse

from fastnn.bench import harness, zoo, zoo_bench


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    for entry in zoo.ENTRIES:
        if entry.kind != "predict":
            continue
        x, _ = zoo_bench.batch(entry)
        model = entry.build(seed=0)
        per_sample = x[0].nbytes
        sizes = {
            "256": 256,
            "4 MiB": max(256, (4 << 20) // per_sample),
            "8 MiB": max(256, (8 << 20) // per_sample),
            "32 MiB": max(256, (32 << 20) // per_sample),
        }
        calls = {name: (lambda b=b: model.predict(x, batch_size=b)) for name, b in sizes.items()}
        median = harness.interleaved(calls, args.repeats, warmup=1, block=1)
        cells = "  ".join(
            f"{name} ({sizes[name]}) {1e3 * t:8.2f} ms {t / median['256']:.2f}" for name, t in median.items()
        )
        print(f"{entry.name:24s} {cells}", flush=True)


if __name__ == "__main__":
    main()
