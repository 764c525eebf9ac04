"""Wall time of one Optuna search with 1 and with 2 workers, cold start included.

Every run is a fresh ``rfcnn tune`` process (or two) on a new journal study,
timed from launch to exit, so each pays what a real worker pays: the
imports, opening the study, loading the data and torch's first-fit warm-up.
The same search runs three ways:

* ``1_worker``: one ``rfcnn tune --n-jobs 1`` process;
* ``n_jobs_2``: one ``rfcnn tune --n-jobs 2`` process (it is worker 0 and
  starts one more worker process: the route of ``RFOptunaSearchCV(n_jobs=2)``);
* ``2_processes``: two ``rfcnn tune --n-jobs 1`` processes started together
  on the same study (the many-machine recipe, here on one machine).

The search is over the learning rate and weight decay of a fixed tiny
RF-CNN (``rho`` fixed, no pruning), so every trial does the same work and the
ratio measures the parallel efficiency, not luck in which ``rho`` each worker
drew.  The first run's ``-v`` line says where a cold worker's start-up goes,
and the trial durations say how much longer each worker's first trial takes
(torch imports ``torch._dynamo`` when the first optimizer is built, and
oneDNN creates its kernels).  Prints the figures and writes
``benchmarks/results/bench_search.json``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--quick]`` (the
full run is 16 trials of about 5 s or more, roughly 4 minutes on 2 cores).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from _common import format_machine, machine_info, write_results


def _write_data(path, n, n_mels, n_frames, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.randn(n, n_mels, n_frames).astype(np.float32)
    X[y == 1, : n_mels // 2] += 1.0
    np.savez(path, X=X, y=y)


def _tune_command(data, storage, study, n_trials, epochs, n_jobs, seed):
    return [
        sys.executable,
        "-m",
        "sklearn_rfcnn",
        "tune",
        "--study",
        study,
        "--storage",
        str(storage),
        "--data",
        str(data),
        "--n-trials",
        str(n_trials),
        "--cv",
        "3",
        "--max-epochs",
        str(epochs),
        "--include",
        "lr",
        "weight_decay",
        "--set",
        "rho=3",
        "--set",
        "width=8",
        "--set",
        "depth=8",
        "--set",
        "batch_size=16",
        "--set",
        'device="cpu"',
        "--no-pruning",
        "--n-jobs",
        str(n_jobs),
        "--seed",
        str(seed),
        "-v",
    ]


def _run(commands):
    """Start ``commands`` together; wall time until the last exits, and outputs."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for cmd in commands
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"rfcnn tune failed ({proc.returncode}):\n{err[-3000:]}")
        outs.append(out)
    return time.perf_counter() - t0, outs


def _startup_laps(out):
    """``{"imports": s, ...}`` from the ``worker start-up:`` line of ``-v``."""
    line = next(x for x in out.splitlines() if x.startswith("worker start-up: "))
    laps = dict(re.findall(r"(\w+) ([\d.]+) s", line))
    return {k: float(v) for k, v in laps.items()}


def _trial_times(storage, study_name):
    """Per worker: durations of its trials in start order; and the fold fit time."""
    import optuna

    from sklearn_rfcnn.search import make_storage

    study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
    by_worker = {}
    for t in sorted(study.trials, key=lambda t: t.datetime_start):
        if t.state.name != "COMPLETE":
            continue
        span = (t.datetime_complete - t.datetime_start).total_seconds()
        by_worker.setdefault(t.user_attrs["rfcnn:worker"], []).append(span)
    return by_worker


def _burn():
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
    parser.add_argument("--quick", action="store_true", help="4 short trials")
    parser.add_argument("--n-trials", type=int, default=None, help="default 16")
    parser.add_argument(
        "--epochs", type=int, default=None, help="per fold (default 30; quick 2)"
    )
    parser.add_argument(
        "--output", default=None, help="JSON file (default: results/<name>.json)"
    )
    args = parser.parse_args(argv)
    started = time.time()
    print(format_machine(machine_info()))
    n_trials = args.n_trials or (4 if args.quick else 16)
    epochs = args.epochs or (2 if args.quick else 30)
    n, mels, frames = (48, 16, 32) if args.quick else (144, 32, 64)
    runs = {
        "1_worker": [(1, 0)],
        "n_jobs_2": [(2, 0)],
        "2_processes": [(1, 0), (1, 1)],
    }
    times, trials, startup = {}, {}, None
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        _write_data(data, n, mels, frames)
        for label, workers in runs.items():
            storage = Path(tmp) / f"{label}.journal"
            commands = [
                _tune_command(data, storage, label, n_trials, epochs, n_jobs, seed)
                for n_jobs, seed in workers
            ]
            times[label], outs = _run(commands)
            if startup is None:
                startup = _startup_laps(outs[0])
            trials[label] = _trial_times(storage, label)
            done = sum(len(v) for v in trials[label].values())
            assert done == n_trials, (label, done)
            print(
                f"{label}: {times[label]:.1f} s for {n_trials} trials "
                f"({len(trials[label])} worker(s): "
                + ", ".join(str(len(v)) for v in trials[label].values())
                + " trials)"
            )
    spans = trials["1_worker"]
    (serial,) = spans.values()
    later = float(np.median(serial[1:])) if len(serial) > 1 else float(serial[0])
    first_extra = float(serial[0] - later)
    print(
        "cold worker start-up (1_worker run): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items())
    )
    print(
        f"trial time: median {later:.2f} s; the first trial of a fresh process "
        f"takes {first_extra:+.2f} s more (torch's first-fit warm-up)"
    )
    machine = _machine_parallelism()
    print(f"machine: two processes run {machine:.2f}x faster than one right now")
    ratios = {
        k: round(times["1_worker"] / times[k], 2) for k in ("n_jobs_2", "2_processes")
    }
    print(
        f"speed-up with 2 workers, cold: {ratios['n_jobs_2']:.2f}x (rfcnn tune "
        f"--n-jobs 2), {ratios['2_processes']:.2f}x (two rfcnn tune processes)"
    )
    result = {
        "n_trials": n_trials,
        "quick": args.quick,
        "data": {"n_clips": n, "n_mels": mels, "n_frames": frames},
        "cv": 3,
        "epochs_per_fold": epochs,
        "wall_time_s": {k: round(v, 2) for k, v in times.items()},
        "speedup_vs_1_worker": ratios,
        "median_trial_s": round(later, 2),
        "first_trial_extra_s": round(first_extra, 2),
        "cold_startup_s": startup,
        "trials_per_worker": {
            k: [len(v) for v in w.values()] for k, w in trials.items()
        },
        "machine_parallel_speedup": round(machine, 2),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    out = write_results("bench_search", result, started=started, path=args.output)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
