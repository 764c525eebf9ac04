"""CPU inference throughput: exported ONNX graph (onnxruntime) vs the torch path.

For each configuration a CP-ResNet classifier is fitted for one epoch on
random spectrograms (the weights do not matter for speed), exported with
:meth:`RFCNNClassifier.export_onnx`, and the same batch is then classified by

* ``torch_fp32``: the estimator's own ``predict_proba`` with
  ``precision="32"`` (input validation, batching, float64 softmax included);
* ``torch_bf16``: the same with ``precision="bf16"`` (bf16 autocast; a second
  estimator fitted with the same seed);
* ``onnxruntime``: ``InferenceSession.run`` on the exported graph with the
  CPUExecutionProvider, ``intra_op_num_threads`` = torch's thread count,
  ``inter_op_num_threads=1``, all graph optimisations.

Both estimators keep ``channels_last="auto"`` (what a user gets; the choice is
recorded as ``channels_last_``).  Repetitions are interleaved (one call of each
method per round, after one warm-up call each), so a change in the load of a
shared machine hits every method alike; samples/s are reported as the median
and the best round, with ratios to ``torch_fp32``.  The largest absolute
difference of each method's probabilities from ``torch_fp32`` is recorded as a
sanity check.

Usage::

    python benchmarks/bench_onnx.py             # small + paper configs, 5 rounds
    python benchmarks/bench_onnx.py --quick     # a tiny config, 2 rounds
    python benchmarks/bench_onnx.py --configs small_rho5 --threads 1

Other scripts call :func:`run` (``run(["small_rho5"], quick=True)``).  The
machine (``_common.machine_info``) is printed with the figures; results go to
``benchmarks/results/bench_onnx.json`` (``_common.write_results``).
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

# Passive OpenMP waiting on shared machines (see bench_model.py); must be set
# before torch loads its OpenMP runtime; an explicit setting wins.
if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    format_machine,
    machine_info,
    time_rounds,
    write_results,
)

from sklearn_rfcnn import RFCNNClassifier

CONFIGS = {
    "tiny": {
        "model": {"rho": 5, "width": 8},
        "input": (64, 100),
        "batch": 8,
        "n_classes": 10,
    },
    "small_rho5": {
        "model": {"rho": 5, "width": 32},
        "input": (128, 130),
        "batch": 16,
        "n_classes": 20,
    },
    "paper_rho5": {
        "model": {"rho": 5, "width": 128},
        "input": (256, 431),
        "batch": 16,
        "n_classes": 56,
    },
}
DEFAULT_CONFIGS = ("small_rho5", "paper_rho5")
QUICK_CONFIGS = ("tiny",)
METHODS = ("torch_fp32", "torch_bf16", "onnxruntime")


def _fit(cfg, precision, X, y, seed=0):
    clf = RFCNNClassifier(
        **cfg["model"],
        max_epochs=1,
        batch_size=cfg["batch"],
        precision=precision,
        device="cpu",
        verbose=0,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clf.fit(X, y)


def _session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bench_config(cfg, *, rounds, threads, seed=0):
    """Time the three methods on one configuration; returns a dict of figures."""
    rng = np.random.default_rng(seed)
    n_bands, n_frames = cfg["input"]
    batch = cfg["batch"]
    X = rng.normal(size=(batch, n_bands, n_frames)).astype(np.float32)
    y = np.arange(batch) % cfg["n_classes"]
    t0 = time.perf_counter()
    fp32 = _fit(cfg, "32", X, y, seed)
    bf16 = _fit(cfg, "bf16", X, y, seed)
    fit_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = fp32.export_onnx(Path(tmp) / "model.onnx")
        export_s = time.perf_counter() - t0
        size = path.stat().st_size
        session = _session(path, threads)
    X4 = X[:, None]
    calls = {
        "torch_fp32": lambda: fp32.predict_proba(X),
        "torch_bf16": lambda: bf16.predict_proba(X),
        "onnxruntime": lambda: session.run(None, {"spectrograms": X4})[0],
    }
    outputs = {name: np.asarray(fn(), np.float64) for name, fn in calls.items()}
    times = time_rounds(calls, rounds)
    methods = {}
    for name in calls:
        methods[name] = {
            "seconds": times[name],
            "samples_per_s_median": batch / statistics.median(times[name]),
            "samples_per_s_best": batch / min(times[name]),
            "max_abs_diff_vs_torch_fp32": float(
                np.abs(outputs[name] - outputs["torch_fp32"]).max()
            ),
        }
    base = methods["torch_fp32"]
    for r in methods.values():
        r["ratio_median_vs_torch_fp32"] = (
            r["samples_per_s_median"] / base["samples_per_s_median"]
        )
        r["ratio_best_vs_torch_fp32"] = (
            r["samples_per_s_best"] / base["samples_per_s_best"]
        )
    for name, est in (("torch_fp32", fp32), ("torch_bf16", bf16)):
        # what the estimator decided (precision, channels_last) for this machine
        methods[name]["execution"] = [
            getattr(est, "precision_", est.precision),
            getattr(est, "channels_last_", est.channels_last),
        ]
    return {
        **cfg,
        "input": list(cfg["input"]),
        "fit_s": fit_s,
        "export_s": export_s,
        "onnx_bytes": size,
        "methods": methods,
    }


def run(configs=None, *, quick=False, threads=None, verbose=True):
    """Benchmark ``configs``; returns the results dict (as written to JSON).

    Parameters
    ----------
    configs : iterable of str or dict, default=None
        Names from :data:`CONFIGS` or ``{name: config}``; None is
        :data:`QUICK_CONFIGS` with ``quick`` and :data:`DEFAULT_CONFIGS`
        otherwise.
    quick : bool, default=False
        2 timed rounds instead of 5.
    threads : int, default=None
        torch threads (and onnxruntime intra-op threads); None keeps
        ``torch.get_num_threads()``.
    verbose : bool, default=True
        Print the machine line and one line per method.

    Returns
    -------
    results : dict
        ``{"threads", "rounds", "onnxruntime", "torch", "load_average_before",
        "load_average_after", "configs": {name: {..., "methods": {...}}},
        "summary": {name: {"<method> x fp32": median ratio}}}``.
    """
    import onnxruntime as ort

    if configs is None:
        configs = QUICK_CONFIGS if quick else DEFAULT_CONFIGS
    if isinstance(configs, dict):
        items = list(configs.items())
    else:
        items = [(name, CONFIGS[name]) for name in configs]
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    rounds = 2 if quick else 5
    results = {
        "threads": threads,
        "rounds": rounds,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "load_average_before": os.getloadavg(),
        "configs": {},
    }
    if verbose:
        print(format_machine(machine_info()))
        print(
            f"onnxruntime {ort.__version__}, {threads} thread(s), 1 warm-up + "
            f"{rounds} interleaved rounds, load {os.getloadavg()[0]:.2f}"
        )
        header = (
            f"{'config':<12} {'method':<12} {'samples/s med':>13} "
            f"{'best':>8} {'x fp32 med':>10} {'x fp32 best':>11} {'max |diff|':>10}"
        )
        print(header)
        print("-" * len(header))
    for name, cfg in items:
        entry = bench_config(cfg, rounds=rounds, threads=threads)
        results["configs"][name] = entry
        if verbose:
            for method, r in entry["methods"].items():
                print(
                    f"{name:<12} {method:<12} {r['samples_per_s_median']:>13.2f} "
                    f"{r['samples_per_s_best']:>8.2f} "
                    f"{r['ratio_median_vs_torch_fp32']:>10.2f} "
                    f"{r['ratio_best_vs_torch_fp32']:>11.2f} "
                    f"{r['max_abs_diff_vs_torch_fp32']:>10.1e}",
                    flush=True,
                )
            print(
                f"{'':<12} batch {entry['batch']} x {tuple(entry['input'])}; export "
                f"{entry['export_s']:.1f} s, {entry['onnx_bytes'] / 1e6:.1f} MB"
            )
    results["load_average_after"] = os.getloadavg()
    # one line per config for benchmarks/speed.py's report: median ratios
    results["summary"] = {
        name: {
            f"{method} x fp32": round(r["ratio_median_vs_torch_fp32"], 2)
            for method, r in entry["methods"].items()
            if method != "torch_fp32"
        }
        for name, entry in results["configs"].items()
    }
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny config, 2 rounds")
    p.add_argument(
        "--threads", type=int, default=None, help="threads (default: torch's)"
    )
    p.add_argument("--configs", nargs="+", default=None, choices=list(CONFIGS))
    p.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "bench_onnx.json",
        help="JSON file to write (default: benchmarks/results/bench_onnx.json)",
    )
    args = p.parse_args(argv)
    started = time.time()
    results = run(args.configs, quick=args.quick, threads=args.threads)
    path = write_results("bench_onnx", results, started=started, path=args.output)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
