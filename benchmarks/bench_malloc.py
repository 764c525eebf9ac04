"""Freed memory kept for reuse (``keep_freed_memory``) against glibc's default.

While the estimators train or predict on the CPU, glibc is told to serve
large allocations from its heap and to keep what is freed
(:mod:`sklearn_rfcnn.utils._malloc`); by default it maps every allocation
above its mmap threshold (at most 32 MiB) afresh and unmaps it when freed,
so each batch faults its activation maps in page by page.  This script
measures both settings side by side, each fit in its own child process (a
process's peak memory can only be read for its whole life), the settings
alternating round by round:

* ``keep``: the library's default;
* ``glibc``: ``RFCNN_KEEP_FREED_MEMORY=0``, the allocator left as it is.

Each child builds ``RFCNNClassifier`` (``precision="auto",
channels_last="auto"``) with one ``partial_fit`` (a warm-up), then fits
``--epochs`` epochs, calls ``predict_proba`` three times and ``partial_fit``
on two batches four times in a row and four times after handing the freed
memory back (``release_freed_memory``, what an idle pause of
``RELEASE_DELAY_S`` does), and reports the median epoch time after the
first (skorch's ``dur``), the median ``predict_proba`` and ``partial_fit``
times, the minor page faults of the fit, the peak resident
memory of the process, and its resident memory right after the fit and at
the end, once the library has handed the freed memory back (what
``RELEASE_DELAY_S`` seconds of idleness do).

Usage::

    python benchmarks/bench_malloc.py                 # paper and small widths, 3 rounds
    python benchmarks/bench_malloc.py --quick         # small width, 1 round, 2 epochs

The machine (``_common.machine_info``) is printed with the figures; results go
to ``benchmarks/results/bench_malloc_<cpu>.json`` (``--out`` overrides).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import format_machine, machine_info, write_and_report

#: setting -> environment of its child.
SETTINGS = {"keep": {}, "glibc": {"RFCNN_KEEP_FREED_MEMORY": "0"}}
#: config -> (clips, epochs) of a full run; the network is ``speed.MODEL_CONFIGS``'.
FIT_SIZES = {"paper": (16, 5), "small": (128, 6), "tiny": (32, 6)}


def _child(config, n_clips, epochs, threads):
    """Fit and predict in this process; return the measures (a dict)."""
    import resource

    import torch
    from speed import MODEL_CONFIGS, _estimator, _tagging_data, auto_mode

    from sklearn_rfcnn.utils._malloc import release_freed_memory

    torch.set_num_threads(threads)
    cfg = MODEL_CONFIGS[config]
    X, Y = _tagging_data(cfg, n_clips)
    precision, cl = auto_mode("cpu")
    clf = _estimator(cfg, precision, cl, "cpu", max_epochs=epochs)
    clf.partial_fit(X[: cfg["batch"]], Y[: cfg["batch"]])  # warm-up: builds the net

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    before = faults()
    clf.fit(X, Y)
    fit_faults = faults() - before

    def rss_mb():
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    rss_after = rss_mb()
    durations = [float(d) for d in clf.history_[:, "dur"]]
    predict = []
    for _ in range(3):
        t0 = time.perf_counter()
        clf.predict_proba(X)
        predict.append(time.perf_counter() - t0)
    two = 2 * cfg["batch"]
    partial, partial_released = [], []
    for _ in range(4):
        t0 = time.perf_counter()
        clf.partial_fit(X[:two], Y[:two])  # right after the previous call
        partial.append(time.perf_counter() - t0)
    for _ in range(4):
        release_freed_memory()  # as after an idle pause
        t0 = time.perf_counter()
        clf.partial_fit(X[:two], Y[:two])
        partial_released.append(time.perf_counter() - t0)
    release_freed_memory()  # what RELEASE_DELAY_S seconds of idleness do
    rss_idle = rss_mb()
    return {
        "epoch_s": durations,
        "epoch_s_median": statistics.median(durations[1:] or durations),
        "steps_per_epoch": -(-n_clips // cfg["batch"]),
        "predict_proba_s": statistics.median(predict),
        "fit_minor_faults": fit_faults,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "partial_fit_s": statistics.median(partial),
        "partial_fit_released_s": statistics.median(partial_released),
        "rss_after_fit_mb": rss_after,
        "rss_idle_mb": rss_idle,
    }


def _base_env():
    """This environment without the settings compared here."""
    return {
        k: v
        for k, v in os.environ.items()
        if k != "RFCNN_KEEP_FREED_MEMORY" and not k.startswith("MALLOC_")
    }


def _run_child(config, n_clips, epochs, threads, setting):
    env = {**_base_env(), **SETTINGS[setting]}
    args = json.dumps([config, n_clips, epochs, threads])
    out = subprocess.run(
        [sys.executable, __file__, "--child", args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent,
    )
    if out.returncode:
        raise RuntimeError(f"child {setting} {config} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(configs, rounds, threads, quick=False):
    """Every config: ``rounds`` x (keep, glibc) children, then their ratios."""
    from sklearn_rfcnn.utils._malloc import malloc_tunable

    reason = malloc_tunable(_base_env())
    if reason is not None:
        print(f"bench_malloc: the allocator is left alone here ({reason})")
        return {"skipped": reason}
    results = {}
    for config in configs:
        n_clips, epochs = FIT_SIZES[config]
        if quick:
            epochs = 2
        runs = {name: [] for name in SETTINGS}
        for r in range(rounds):
            order = list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]
            for setting in order:
                print(
                    f"[{time.strftime('%H:%M:%S')}] {config} round {r + 1}: {setting}",
                    flush=True,
                )
                runs[setting].append(
                    _run_child(config, n_clips, epochs, threads, setting)
                )

        def med(setting, key, runs=runs):
            return statistics.median(rec[key] for rec in runs[setting])

        pairs = list(zip(runs["keep"], runs["glibc"]))
        epoch_x = [g["epoch_s_median"] / k["epoch_s_median"] for k, g in pairs]
        predict_x = [g["predict_proba_s"] / k["predict_proba_s"] for k, g in pairs]
        partial_x = [g["partial_fit_s"] / k["partial_fit_s"] for k, g in pairs]
        # the library's own: calls in a row against calls after a release
        kept_x = [k["partial_fit_released_s"] / k["partial_fit_s"] for k, _ in pairs]
        results[config] = {
            "n_clips": n_clips,
            "epochs": epochs,
            "runs": runs,
            "fit_speedup_median": statistics.median(epoch_x),
            "fit_speedup_range": [min(epoch_x), max(epoch_x)],
            "predict_speedup_median": statistics.median(predict_x),
            "predict_speedup_range": [min(predict_x), max(predict_x)],
            "partial_fit_speedup_median": statistics.median(partial_x),
            "partial_fit_speedup_range": [min(partial_x), max(partial_x)],
            "partial_fit_in_a_row_vs_released_median": statistics.median(kept_x),
            "partial_fit_in_a_row_vs_released_range": [min(kept_x), max(kept_x)],
            "faults_ratio": med("keep", "fit_minor_faults")
            / max(med("glibc", "fit_minor_faults"), 1),
            "peak_rss_ratio": med("keep", "peak_rss_mb") / med("glibc", "peak_rss_mb"),
            "peak_rss_mb": {s: med(s, "peak_rss_mb") for s in SETTINGS},
            "rss_after_fit_mb": {s: med(s, "rss_after_fit_mb") for s in SETTINGS},
            "rss_idle_mb": {s: med(s, "rss_idle_mb") for s in SETTINGS},
        }
    return results


def report(doc):
    lines = [format_machine(doc["machine"])]
    res = doc["results"]
    if "skipped" in res:
        return "\n".join([*lines, f"skipped: {res['skipped']}"])
    lines.append(
        "keep_freed_memory (default) against glibc's allocator as it is "
        "(RFCNN_KEEP_FREED_MEMORY=0); medians over rounds [range]"
    )
    for config, r in res.items():
        n = len(r["runs"]["keep"])
        fit, pred = r["fit_speedup_range"], r["predict_speedup_range"]
        part = r["partial_fit_speedup_range"]
        kept = r["partial_fit_in_a_row_vs_released_range"]
        kept_median = r["partial_fit_in_a_row_vs_released_median"]
        peak, after, idle = r["peak_rss_mb"], r["rss_after_fit_mb"], r["rss_idle_mb"]
        lines += [
            f"  {config} ({n} round(s)): fit x{r['fit_speedup_median']:.2f} "
            f"[{fit[0]:.2f}-{fit[1]:.2f}]  predict_proba "
            f"x{r['predict_speedup_median']:.2f} [{pred[0]:.2f}-{pred[1]:.2f}]  "
            f"partial_fit (2 batches, in a row) "
            f"x{r['partial_fit_speedup_median']:.2f} [{part[0]:.2f}-{part[1]:.2f}]",
            f"    partial_fit in a row x{kept_median:.2f} "
            f"[{kept[0]:.2f}-{kept[1]:.2f}] the same call after the freed memory "
            "was handed back (keep setting)",
            f"    page faults x{r['faults_ratio']:.2f}  peak memory "
            f"x{r['peak_rss_ratio']:.2f} ({peak['keep']:.0f} vs {peak['glibc']:.0f} "
            f"MB)  resident after the fit {after['keep']:.0f} vs "
            f"{after['glibc']:.0f} MB, once idle {idle['keep']:.0f} vs "
            f"{idle['glibc']:.0f} MB",
        ]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", choices=list(FIT_SIZES), default=None)
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="width 24, 1 round, 2 epochs")
    p.add_argument("--out", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*json.loads(args.child))))
        return 0
    started = time.time()
    info = machine_info()
    print(format_machine(info))
    configs = args.configs or (["small"] if args.quick else ["paper", "small"])
    rounds = args.rounds or (1 if args.quick else 3)
    results = run(configs, rounds, args.threads, quick=args.quick)
    write_and_report(
        "bench_malloc", results, report, started=started, info=info, out=args.out
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
