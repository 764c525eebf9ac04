"""Wall time of one 16-trial RFOptunaSearchCV with 1 and with 2 worker processes.

The same search (tiny RF-CNN on synthetic spectrograms, 3-fold CV, no
pruning so every run does the same work) runs with ``n_jobs=1`` (in this
process), then with ``n_jobs=2`` (two worker processes sharing one journal
study in a temporary folder) twice: cold (process start-up and imports
included) and warm (joblib keeps the workers). Prints the times and ratios
and writes ``benchmarks/results/bench_search.json`` (``_common.write_results``)
with the time to the first trial and the mean per-fold fit time, which tell
start-up cost from CPU contention.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--quick]``.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from _common import format_machine, machine_info, write_results


def _data(n, n_mels, n_frames, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.randn(n, n_mels, n_frames).astype(np.float32)
    X[y == 1, : n_mels // 2] += 1.0
    return X, y


def _search(n_jobs, n_trials, epochs, tmp):
    import optuna

    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.search import RFOptunaSearchCV, rf_search_space

    clf = RFCNNClassifier(
        width=8,
        depth=8,
        rho=2,
        max_epochs=epochs,
        batch_size=16,
        verbose=0,
        device="cpu",
        random_state=0,
    )
    space = rf_search_space(
        "", rho=(1, 4), width=(8,), include=["rho", "lr", "mixup_alpha"]
    )
    return RFOptunaSearchCV(
        clf,
        space,
        n_trials=n_trials,
        cv=3,
        storage=str(Path(tmp) / f"bench-{n_jobs}.journal"),
        study_name=f"bench-{n_jobs}",
        pruning=False,
        n_jobs=n_jobs,
        refit=False,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )


def _burn(seconds_hint=1.0):
    """A fixed torch workload; returns its duration in seconds."""
    import torch

    torch.set_num_threads(1)
    x = torch.randn(32, 8, 32, 64)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    t0 = time.perf_counter()
    for _ in range(20):
        conv(x).sum().backward()
    return time.perf_counter() - t0


def _machine_parallelism():
    """How much faster two processes finish two fixed workloads than one does.

    2.0 on an idle two-core machine; about 1.0 when other work already fills
    the cores. The search cannot gain more than this.
    """
    from joblib import Parallel, delayed

    Parallel(n_jobs=2, backend="loky")(delayed(_burn)() for _ in range(2))  # warm
    t0 = time.perf_counter()
    for _ in range(2):
        _burn()
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    Parallel(n_jobs=2, backend="loky")(delayed(_burn)() for _ in range(2))
    return serial / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, 2 epochs")
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument(
        "--output", default=None, help="JSON file (default: results/<name>.json)"
    )
    args = parser.parse_args(argv)
    started = time.time()
    print(format_machine(machine_info()))
    n, mels, frames, epochs = (48, 16, 32, 2) if args.quick else (96, 32, 64, 3)
    X, y = _data(n, mels, frames)
    times, startup, fold_fit = {}, {}, {}
    # "2_warm": the same search again; joblib's loky executor keeps its two
    # worker processes, so this run shows the steady state without start-up.
    runs = (("1_worker", 1), ("2_workers", 2), ("2_workers_warm", 2))
    with tempfile.TemporaryDirectory() as tmp:
        for label, n_jobs in runs:
            search = _search(n_jobs, args.n_trials, epochs, tmp)
            search.set_params(study_name=f"bench-{label}")
            wall0, t0 = time.time(), time.perf_counter()
            search.fit(X, y)
            times[label] = time.perf_counter() - t0
            first = min(t.datetime_start.timestamp() for t in search.study_.trials)
            startup[label] = first - wall0
            fold_fit[label] = float(np.mean(search.cv_results_["mean_fit_time"]))
            states = list(search.cv_results_["state"])
            assert states.count("COMPLETE") == args.n_trials, states
            print(
                f"{label}: {times[label]:.1f} s for {args.n_trials} trials "
                f"(first trial after {startup[label]:.1f} s, "
                f"{fold_fit[label]:.3f} s per fold fit)"
            )
    machine = _machine_parallelism()
    print(f"machine: two processes run {machine:.2f}x faster than one right now")
    ratio = times["1_worker"] / times["2_workers"]
    warm = times["1_worker"] / times["2_workers_warm"]
    print(f"speed-up with 2 worker processes: {ratio:.2f}x ({warm:.2f}x warm)")
    result = {
        "n_trials": args.n_trials,
        "quick": args.quick,
        "data": {"n_clips": n, "n_mels": mels, "n_frames": frames},
        "cv": 3,
        "epochs_per_fold": epochs,
        "wall_time_s": {k: round(v, 2) for k, v in times.items()},
        "speedup_2_vs_1": round(ratio, 2),
        "speedup_2_warm_vs_1": round(warm, 2),
        "first_trial_start_s": {k: round(v, 2) for k, v in startup.items()},
        "mean_fold_fit_time_s": {k: round(v, 3) for k, v in fold_fit.items()},
        "machine_parallel_speedup": round(machine, 2),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    out = write_results("bench_search", result, started=started, path=args.output)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
