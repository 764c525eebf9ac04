"""Benchmark RFCNNClassifier: fit time per epoch and prediction throughput.

Two configurations -- the paper's network (width 128, depth 26, rho 7) on
256-band spectrograms, and a small one -- each with float32, with bf16
autocast (``precision="32"`` / ``"bf16"``) and with float32 in the
channels-last memory format (``channels_last=True``).  Times are measured end
to end through the estimator (validation, datasets, skorch loop), on random
data.  Speed-ups are ratios to float32 (> 1: faster).

Usage::

    python benchmarks/bench_estimators.py            # full sizes
    python benchmarks/bench_estimators.py --quick    # a minute on a laptop CPU

Prints the machine and a table, and writes
``benchmarks/results/bench_estimators.json`` (``_common.write_results``).
"""

import argparse
import os
import time

import numpy as np
import torch
from _common import format_machine, machine_info, write_results

from sklearn_rfcnn import RFCNNClassifier
from sklearn_rfcnn.utils._torch import resolve_device

CONFIGS = {
    # name: (model params, n_bands, n_frames, n_clips, batch_size)
    "paper": (dict(width=128, depth=26, rho=7), 256, 431, 32, 8),
    "small": (dict(width=16, depth=26, rho=4), 64, 128, 64, 16),
}
QUICK = {
    "paper": (dict(width=128, depth=26, rho=7), 256, 128, 8, 4),
    "small": (dict(width=16, depth=26, rho=4), 64, 64, 32, 16),
}


#: variant name -> its estimator parameters
VARIANTS = {
    "float32": dict(precision="32", channels_last=False),
    "bf16": dict(precision="bf16", channels_last=False),
    "channels_last": dict(precision="32", channels_last=True),
}
#: What every benchmarked fit shares: no validation split, quiet, seeded.
FIT = dict(validation_fraction=None, verbose=0, random_state=0)


def bench(config, variant, epochs, device):
    """Fit and predict timings of one of ``CONFIGS``' values in one variant."""
    params, n_bands, n_frames, n_clips, batch_size = config
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_clips, n_bands, n_frames)).astype(np.float32)
    y = np.arange(n_clips) % 4
    clf = RFCNNClassifier(
        **params,
        **VARIANTS[variant],
        **FIT,
        max_epochs=epochs,
        batch_size=batch_size,
        device=device,
    )
    clf.fit(X, y)
    # the first epoch includes allocator / kernel warm-up: report the median
    epoch_s = float(np.median(clf.history_[:, "dur"]))
    clf.predict_proba(X[:batch_size])  # warm-up
    start = time.perf_counter()
    clf.predict_proba(X)
    predict_s = time.perf_counter() - start
    return {
        "fit_s_per_epoch": epoch_s,
        "fit_clips_per_s": n_clips / epoch_s,
        "predict_clips_per_s": n_clips / predict_s,
    }


def _speedups(result, variant):
    """Epoch-time and predict-throughput ratios of ``variant`` to float32."""
    base, other = result["float32"], result[variant]
    return {
        "fit_speedup": base["fit_s_per_epoch"] / other["fit_s_per_epoch"],
        "predict_speedup": other["predict_clips_per_s"] / base["predict_clips_per_s"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--output", default=None, help="JSON file (default: results/<name>.json)"
    )
    args = parser.parse_args(argv)
    started = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(format_machine(machine_info()))
    configs = QUICK if args.quick else CONFIGS
    epochs = args.epochs or (2 if args.quick else 3)

    rows = []
    for name, config in configs.items():
        params, n_bands, n_frames, n_clips, batch_size = config
        result = {}
        for variant in VARIANTS:
            result[variant] = bench(config, variant, epochs, args.device)
        rows.append(
            {
                "config": name,
                **params,
                "input": f"{n_bands}x{n_frames}",
                "n_clips": n_clips,
                "batch_size": batch_size,
                **result,
                **{
                    f"{variant}_{key}": value
                    for variant in VARIANTS
                    if variant != "float32"
                    for key, value in _speedups(result, variant).items()
                },
            }
        )

    header = (
        f"{'config':<7} {'input':>8} {'prec':>5} {'s/epoch':>9} "
        f"{'fit clip/s':>11} {'pred clip/s':>12}"
    )
    print(header)
    print("-" * len(header))
    labels = {"float32": "float", "bf16": "bf16", "channels_last": "chlst"}
    for row in rows:
        for variant in VARIANTS:
            r = row[variant]
            print(
                f"{row['config']:<7} {row['input']:>8} {labels[variant]:>5} "
                f"{r['fit_s_per_epoch']:>9.3f} {r['fit_clips_per_s']:>11.2f} "
                f"{r['predict_clips_per_s']:>12.2f}"
            )
        for variant in VARIANTS:
            if variant == "float32":
                continue
            print(
                f"{row['config']:<7} {variant}/float32 speed-up: fit "
                f"{row[f'{variant}_fit_speedup']:.2f}x, "
                f"predict {row[f'{variant}_predict_speedup']:.2f}x"
            )

    settings = {
        "quick": args.quick,
        "epochs": epochs,
        "device": resolve_device(args.device),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    out = write_results(
        "bench_estimators",
        {"settings": settings, "rows": rows},
        started=started,
        path=args.output,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
