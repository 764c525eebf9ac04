"""What the checks of a loaded model folder cost: load_pipeline vs a bare load.

For each configuration a pipeline (``MelSpectrogram`` → ``BandStandardizer``
→ ``RFCNNClassifier``, fitted for one epoch on random waves) is saved with
:func:`sklearn_rfcnn.save_pipeline`, and then loaded by

* ``checked``: :func:`sklearn_rfcnn.load_pipeline` -- every check of issue 28
  (regular files, sizes, the checksum of ``pipeline.json`` and of every file,
  ``arrays.npz`` members, fitted-field whitelist, declared sizes against the
  weights, every shape on a ``meta`` network, then the network);
* ``bare``: the least any loader must do -- parse ``pipeline.json``, read
  ``arrays.npz`` and the weights, build the network and load its state,
  without any check.

Rounds are interleaved (one load of each per round, after a warm-up), so a
change in the load of a shared machine hits both alike; the median and the
best round are reported with the ratio checked / bare.

Usage::

    python benchmarks/bench_load.py            # small and paper widths, 7 rounds
    python benchmarks/bench_load.py --quick    # a tiny config, 3 rounds

The machine (``_common.machine_info``) is printed with the figures; results go
to ``benchmarks/results/bench_load.json`` (``_common.write_results``).
"""

import argparse
import io
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from _common import format_machine, machine_info, time_rounds, write_results
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import (
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    load_pipeline,
    save_pipeline,
)
from sklearn_rfcnn.models import create_model

CONFIGS = {
    "tiny": {"width": 8, "rho": 5, "n_classes": 4},
    "small_rho5": {"width": 32, "rho": 5, "n_classes": 20},
    "paper_rho5": {"width": 128, "rho": 5, "n_classes": 56},
}
DEFAULT_CONFIGS = ("small_rho5", "paper_rho5")
QUICK_CONFIGS = ("tiny",)


def _save(cfg, folder):
    rng = np.random.default_rng(0)
    waves = rng.normal(size=(2 * cfg["n_classes"], 4000)).astype(np.float32)
    y = np.arange(len(waves)) % cfg["n_classes"]
    pipe = make_pipeline(
        MelSpectrogram(sr=16000, n_fft=512, hop_length=128, n_mels=32),
        BandStandardizer(),
        RFCNNClassifier(
            width=cfg["width"],
            rho=cfg["rho"],
            max_epochs=1,
            verbose=0,
            device="cpu",
            precision="32",
            random_state=0,
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(waves, y)
    return save_pipeline(pipe, folder)


def _bare_load(folder):
    """Parse, read and build with no check at all (the floor of any loader)."""
    config = json.loads((folder / "pipeline.json").read_text())
    with np.load(folder / "arrays.npz") as f:
        arrays = {k: f[k] for k in f.files}
    step = next(s for s in config["pipeline"]["steps"] if s["kind"] == "estimator")
    sub = folder / step["path"]
    est = json.loads((sub / "config.json").read_text())
    weights = (sub / "weights.pt").read_bytes()
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    p = est["params"]
    module = create_model(
        p["arch"],
        in_channels=est["fitted"]["clip_shape"][0],
        n_classes=est["fitted"]["n_outputs"],
        **{k: p[k] for k in ("rho", "width", "depth") if p.get(k) is not None},
    )
    module.load_state_dict(state)
    return module, arrays


def run(configs=None, *, quick=False, verbose=True):
    """Benchmark ``configs``; returns the results dict (as written to JSON)."""
    if configs is None:
        configs = QUICK_CONFIGS if quick else DEFAULT_CONFIGS
    rounds = 3 if quick else 7
    out = {"rounds": rounds, "threads": torch.get_num_threads(), "configs": {}}
    if verbose:
        print(format_machine(machine_info()))
    with tempfile.TemporaryDirectory() as tmp:
        for name in configs:
            cfg = CONFIGS[name]
            folder = _save(cfg, Path(tmp) / name)
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            methods = {
                "checked": lambda f=folder: load_pipeline(f),
                "bare": lambda f=folder: _bare_load(f),
            }
            for fn in methods.values():
                fn()  # warm-up
            times = time_rounds(methods, rounds)
            row = {
                **cfg,
                "folder_bytes": size,
                "methods": {
                    m: {
                        "seconds_median": statistics.median(t),
                        "seconds_best": min(t),
                        "seconds_all": t,
                    }
                    for m, t in times.items()
                },
            }
            med = {m: row["methods"][m]["seconds_median"] for m in methods}
            best = {m: row["methods"][m]["seconds_best"] for m in methods}
            row["ratio_median_checked_vs_bare"] = med["checked"] / med["bare"]
            row["ratio_best_checked_vs_bare"] = best["checked"] / best["bare"]
            out["configs"][name] = row
            if verbose:
                print(
                    f"{name:12} width {cfg['width']:4} ({size / 1e6:.1f} MB): "
                    f"checked {med['checked'] * 1e3:7.1f} ms (best "
                    f"{best['checked'] * 1e3:.1f}), bare {med['bare'] * 1e3:7.1f} ms "
                    f"(best {best['bare'] * 1e3:.1f}), ratio "
                    f"{row['ratio_median_checked_vs_bare']:.2f} median, "
                    f"{row['ratio_best_checked_vs_bare']:.2f} best; "
                    f"{rounds} rounds"
                )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny config, 3 rounds")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS))
    parser.add_argument("--out", help="JSON file (default: results/bench_load.json)")
    args = parser.parse_args(argv)
    started = time.time()
    results = run(args.configs, quick=args.quick)
    name = "bench_load_quick" if args.quick else "bench_load"
    path = write_results(name, results, started=started, path=args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
