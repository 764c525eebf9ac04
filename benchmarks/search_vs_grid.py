"""The receptive-field search against a fixed rho grid of equal wall time.

One *cell* is one SoundFont x one seed.  In one process, back to back (so both
see the same machine load):

1. the *grid*: ``RFCNNClassifier(rho=r, width=24, max_epochs=25,
   batch_size=32, random_state=seed)`` for r in {3, 5, 7, 9, 12}, each trained
   on the 630 training clips of the feature set (``_data.load_features``: 5 s
   instrument mixtures, 128-band perceptual mel spectrograms) and scored
   (macro mAP) on its 270 held-out clips; its wall time (fits and scoring) is
   the budget ``T``;
2. the *search*: ``RFOptunaSearchCV(RFCNNClassifier(width=24, max_epochs=25,
   batch_size=32, random_state=seed), n_trials=None, timeout=T,
   scoring="average_precision", random_state=seed)`` (default space, default
   validation split, default pruner) fitted on the same training clips, its
   refit model scored on the same held-out clips.

Each finished cell is appended to ``benchmarks/results/search_vs_grid.jsonl``
(a re-run skips the cells already there, so a long run can be resumed);
``--summary`` prints the table (search mAP, grid best, grid mean, trials run,
trials pruned, wall time and its ratio to ``T``) and writes
``benchmarks/results/search_vs_grid.json``.  ``--quick`` is a tiny version
(small clips, narrow network, two epochs) for the test suite.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/search_vs_grid.py \\
        --soundfonts timgm6mb csound --seeds 0 1 2
    python benchmarks/search_vs_grid.py --summary
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, format_machine, machine_info, write_results
from _data import available_soundfonts, load_features

GRID = (3, 5, 7, 9, 12)
BUDGET = dict(width=24, max_epochs=25, batch_size=32)
DATA = dict(n_clips=900, n_train=630, duration=5.0, n_mels=128, n_fft=1024)

QUICK_GRID = (2, 4)
QUICK_BUDGET = dict(width=4, depth=8, max_epochs=3, batch_size=8)
QUICK_DATA = dict(n_clips=40, n_train=28, duration=1.0, n_mels=32, n_fft=512)


def _map(clf, X, Y):
    from sklearn_rfcnn.metrics import mean_average_precision

    return float(mean_average_precision(Y, clf.predict_proba(X)))


def _grid_cache(out):
    return Path(out).with_suffix(".grid.jsonl")


def _cached_grid(path, soundfont, seed, quick):
    for r in _read(path):
        if (r["soundfont"], r["seed"], r["quick"]) == (soundfont, seed, quick):
            return r
    return None


def run_cell(soundfont, seed, *, quick=False, grid_cache=None):
    """Grid then search on one SoundFont and seed; returns the cell's record.

    The grid's rows are also appended to ``grid_cache``: when the search of a
    cell fails (or the run is stopped during it) a re-run reuses the grid and
    its ``T`` (the record then says ``"grid_reused": true``).
    """
    from sklearn_rfcnn import RFCNNClassifier
    from sklearn_rfcnn.search import RFOptunaSearchCV

    budget = QUICK_BUDGET if quick else BUDGET
    data = QUICK_DATA if quick else DATA
    X_train, Y_train, X_test, Y_test, _ = load_features(
        soundfont, verbose=False, **data
    )
    load_start = os.getloadavg()
    cached = grid_cache and _cached_grid(grid_cache, soundfont, seed, quick)
    if cached:
        grid, T = cached["grid"], cached["T_s"]
        print(f"  grid reused from {grid_cache}: T={T:.0f} s", flush=True)
    else:
        grid = []
        start = time.perf_counter()
        for rho in QUICK_GRID if quick else GRID:
            t0 = time.perf_counter()
            clf = RFCNNClassifier(
                rho=rho, **budget, random_state=seed, verbose=0, device="cpu"
            )
            clf.fit(X_train, Y_train)
            score = _map(clf, X_test, Y_test)
            grid.append({"rho": rho, "map": score, "s": time.perf_counter() - t0})
            print(
                f"  grid rho={rho:2d}: mAP {score:.3f} ({grid[-1]['s']:.0f} s)",
                flush=True,
            )
        T = time.perf_counter() - start
        if grid_cache:
            row = {"soundfont": soundfont, "seed": seed, "quick": quick}
            with Path(grid_cache).open("a") as f:
                f.write(json.dumps({**row, "grid": grid, "T_s": T}) + "\n")

    search = RFOptunaSearchCV(
        RFCNNClassifier(**budget, random_state=seed, verbose=0, device="cpu"),
        n_trials=None,
        timeout=T,
        scoring="average_precision",
        random_state=seed,
    )
    t0 = time.perf_counter()
    search.fit(X_train, Y_train)
    wall = time.perf_counter() - t0
    search_map = _map(search, X_test, Y_test)
    states = list(search.cv_results_["state"])
    maps = [g["map"] for g in grid]
    record = {
        "soundfont": soundfont,
        "seed": seed,
        "quick": quick,
        "budget": budget,
        "grid": grid,
        "grid_best": max(maps),
        "grid_best_rho": grid[maps.index(max(maps))]["rho"],
        "grid_mean": sum(maps) / len(maps),
        "T_s": T,
        "grid_reused": bool(cached),
        "search_map": search_map,
        "search_best_params": {k: v for k, v in search.best_params_.items()},
        "search_best_val": float(search.best_score_),
        "trials_run": len(states),
        "trials_complete": states.count("COMPLETE"),
        "trials_pruned": states.count("PRUNED"),
        "trials_params": [
            {**p, "state": s, "n_epochs": int(e)}
            for p, s, e in zip(
                search.cv_results_["params"], states, search.cv_results_["n_epochs"]
            )
        ],
        "search_wall_s": wall,
        "refit_s": float(search.refit_time_),
        "ratio_to_T": wall / T,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "machine": format_machine(machine_info()),
    }
    print(
        f"{soundfont} seed {seed}: search {search_map:.3f} (params "
        f"{record['search_best_params']}, {record['trials_run']} trials, "
        f"{record['trials_pruned']} pruned, {wall:.0f} s = {wall / T:.2f} T) vs grid "
        f"best {record['grid_best']:.3f} (rho={record['grid_best_rho']}), mean "
        f"{record['grid_mean']:.3f}, T={T:.0f} s",
        flush=True,
    )
    return record


def _read(path):
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def summarise(path):
    """Print one row per cell plus the mean over cells; return the table."""
    import numpy as np

    rows = [r for r in _read(path) if not r.get("quick")] or _read(path)
    print(
        f"{'soundfont':9s} {'seed':>4s} {'search':>6s} {'best':>6s} {'mean':>6s} "
        f"{'diff':>6s} {'trials':>6s} {'pruned':>6s} {'T s':>6s} {'wall s':>6s} "
        f"{'ratio':>5s}  best params"
    )
    for r in rows:
        print(
            f"{r['soundfont']:9s} {r['seed']:4d} {r['search_map']:6.3f} "
            f"{r['grid_best']:6.3f} {r['grid_mean']:6.3f} "
            f"{r['search_map'] - r['grid_best']:+6.3f} {r['trials_run']:6d} "
            f"{r['trials_pruned']:6d} {r['T_s']:6.0f} {r['search_wall_s']:6.0f} "
            f"{r['ratio_to_T']:5.2f}  {r['search_best_params']}"
        )
    table = {"cells": rows}
    if rows:
        diff = np.array([r["search_map"] - r["grid_best"] for r in rows])
        ratio = np.array([r["ratio_to_T"] for r in rows])
        table["mean"] = {
            "search_minus_grid_best": float(diff.mean()),
            "search_minus_grid_best_std": float(diff.std()),
            "ratio_to_T": float(ratio.mean()),
            "ratio_to_T_max": float(ratio.max()),
            "n_cells": len(rows),
        }
        print(
            f"mean over {len(rows)} cell(s): search - grid best "
            f"{diff.mean():+.3f} +- {diff.std():.3f}; wall / T "
            f"{ratio.mean():.2f} (max {ratio.max():.2f})"
        )
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "csound"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(RESULTS_DIR / "search_vs_grid.jsonl"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--json", default=None, help="summary JSON path")
    args = parser.parse_args(argv)
    if args.summary:
        started = time.time()
        table = summarise(args.out)
        write_results("search_vs_grid", table, started=started, path=args.json)
        return
    if args.quick:
        args.soundfonts, args.seeds = ["timgm6mb"], [0]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(format_machine(machine_info()), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["soundfont"], r["seed"], r.get("quick", False)) for r in _read(out)}
    soundfonts = available_soundfonts(args.soundfonts)
    for seed in args.seeds:  # every SoundFont at seed 0 first, then seed 1 ...
        for sf in soundfonts:
            if (sf, seed, args.quick) in done:
                print(f"{sf} seed {seed}: already in {out}, skipped", flush=True)
                continue
            record = run_cell(sf, seed, quick=args.quick, grid_cache=_grid_cache(out))
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
