"""Recipe study: which training defaults make RFCNNClassifier strong.

Each *run* trains :class:`~sklearn_rfcnn.RFCNNClassifier` on the 630 training
clips of one feature set (``_data.load_features``: 5 s instrument mixtures of
one General-MIDI SoundFont, 128-band perceptual mel spectrograms) and scores
macro mAP on its 270 held-out clips.  A *configuration* is a set of estimator
parameters over a *budget* (the user-facing settings being defaulted):

* ``b25``: ``rho=5, width=24, max_epochs=25, batch_size=32``
* ``b60``: ``rho=7, width=32, max_epochs=60``
* ``b50``: ``width=32, max_epochs=50`` (the default rho; the demo's size, and
  the first budget where ``freq_mask="auto"`` masks)

Every other parameter is the library's current default unless the
configuration names it, so a configuration is exactly what a user would type.
Runs go to ``benchmarks/results/recipe_study.jsonl`` (one JSON object per
line, appended as each run finishes, so a long study can be read while it
runs; a re-run skips the runs already there, so it can be stopped and
resumed); ``--summary`` prints mean +- std of mAP per configuration and
SoundFont and writes ``benchmarks/results/recipe_study.json``.

Usage::

    python benchmarks/recipe_study.py --configs default paper --budgets b25 \\
        --soundfonts timgm6mb csound --seeds 0 1 --jobs 2
    python benchmarks/recipe_study.py --summary
    python benchmarks/recipe_study.py --list
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, format_machine, machine_info, write_results
from _data import available_soundfonts, load_features, load_spectrograms

from sklearn_rfcnn.models import _batch_norm, _fold
from sklearn_rfcnn.utils import _conv_grad
from sklearn_rfcnn.utils._torch import resolve_channels_last, resolve_precision

BUDGETS = {
    "b25": dict(rho=5, width=24, max_epochs=25, batch_size=32),
    "b60": dict(rho=7, width=32, max_epochs=60),
    "b100": dict(rho=7, width=24, max_epochs=100),
    # the demo's budget (default rho), where "auto" masks switch on
    "b50": dict(width=32, max_epochs=50),
}

#: What the library's old defaults and the paper's recipe share: Adam, a
#: linear schedule without warm-up, mixup 0.3, rolls of 50 frames, no decay,
#: no SpecAugment masks.
_ADAM_LINEAR = dict(
    lr_schedule="linear",
    optimizer="adam",
    warmup=0.0,
    mixup_alpha=0.3,
    roll=50,
    weight_decay=0.0,
    freq_mask=0,
    time_mask=0,
)

#: The library's defaults before this study (0.1.0.dev0), for reference.
OLD_DEFAULTS = dict(
    lr=1e-3, **_ADAM_LINEAR, validation_fraction=0.1, swa=False, output_bias="zero"
)

#: The paper's recipe (reference configuration), scaled to the budget.
PAPER = dict(lr=1e-4, **_ADAM_LINEAR, swa=True, batch_size=10, output_bias="zero")

_OLD = {**OLD_DEFAULTS, "validation_fraction": None}
_COS = dict(
    optimizer="adamw",
    lr_schedule="cosine",
    warmup=0.05,
    weight_decay=1e-2,
    output_bias="zero",
)


def _cos(lr, **kw):
    return {**_COS, "lr": lr, **kw}


CONFIGS = {
    "default": {},
    # the defaults before issue 24's masks; the b60 "default" rows written
    # before that change (2026-12-06) are this configuration
    "no_masks": {"freq_mask": 0, "time_mask": 0},
    "old_default": OLD_DEFAULTS,
    "paper": PAPER,
    # the old recipe, one change at a time
    "old_no_holdout": _OLD,
    "old_lr3e-3": {**_OLD, "lr": 3e-3},
    "old_no_mixup": {**_OLD, "mixup_alpha": 0.0},
    "old_prior": {**_OLD, "output_bias": "prior"},
    # warm-up + cosine, AdamW (decoupled weight decay), output bias at zero
    "cos_2e-3_prior": _cos(2e-3, output_bias="prior"),
    "cos_1e-3": _cos(1e-3),
    "cos_2e-3": _cos(2e-3),
    "cos_4e-3": _cos(4e-3),
    "cos_2e-3_wd0": _cos(2e-3, weight_decay=0.0),
    "cos_2e-3_wd5e-2": _cos(2e-3, weight_decay=5e-2),
    "cos_2e-3_adam": _cos(2e-3, optimizer="adam", weight_decay=0.0),
    "cos_2e-3_nowarm": _cos(2e-3, warmup=0.0),
    "cos_2e-3_mix0": _cos(2e-3, mixup_alpha=0.0),
    "cos_2e-3_mix1": _cos(2e-3, mixup_alpha=1.0),
    "cos_2e-3_roll0": _cos(2e-3, roll=0),
    "cos_2e-3_bal": _cos(2e-3, class_weight="balanced"),
    "cos_2e-3_swa": _cos(2e-3, swa=True),
    "cos_2e-3_bs16": _cos(2e-3, batch_size=16),
    # the classifier's batch norm after pooling instead of on the class map
    "cos_2e-3_pooled": _cos(2e-3, head="pooled"),
    "cos_2e-3_pooled_prior": _cos(2e-3, head="pooled", output_bias="prior"),
    "cos_2e-3_pooled_mix0": _cos(2e-3, head="pooled", mixup_alpha=0.0),
    "cos_4e-3_pooled": _cos(4e-3, head="pooled"),
    "cos_1e-3_pooled": _cos(1e-3, head="pooled"),
    "old_pooled": {**_OLD, "head": "pooled"},
    "cos_5e-4_pooled": _cos(5e-4, head="pooled"),
    "cos_1e-3_pooled_bal": _cos(1e-3, head="pooled", class_weight="balanced"),
    "cos_1e-3_pooled_mix0": _cos(1e-3, head="pooled", mixup_alpha=0.0),
    "cos_1e-3_pooled_wd0": _cos(1e-3, head="pooled", weight_decay=0.0),
    # issue 12: precision at the same memory format (the default recipe otherwise)
    "fp32": {"precision": "32", "channels_last": True},
    "bf16": {"precision": "bf16", "channels_last": True},
    # issue 27: float32 in the default layout (what "auto" trained on AVX2
    # CPUs before they were given channels-last)
    "fp32_nchw": {"precision": "32", "channels_last": False},
    # ... and channels-last float32 with every convolution of 16 channels or
    # more on maps of 256 positions or more re-routed through the NCHW
    # weight gradient (REROUTED; at width 24 the library's thresholds leave
    # all of them alone): the accuracy of that gradient path
    "fp32_rerouted": {"precision": "32", "channels_last": True},
    # ... and bf16 channels-last with torch's batch-norm kernel for every
    # layer (TORCH_BATCH_NORM): "bf16" at b25 (width 24) normalises its
    # 24-channel maps of 1 M values or more on wide rows
    # (``sklearn_rfcnn.models._batch_norm``)
    "bf16_torch_bn": {"precision": "bf16", "channels_last": True},
    # issue 24: the default rho (and per-axis rho_f / rho_t) at each budget
    **{f"rho{r}": {"rho": r} for r in (3, 5, 7, 9, 10, 12, 14, 16)},
    "rf5_rt12": {"rho_f": 5, "rho_t": 12},
    "rf12_rt5": {"rho_f": 12, "rho_t": 5},
    "rf7_rt12": {"rho_f": 7, "rho_t": 12},
    # issue 24: the recipe at b60 -- SpecAugment-style masks (128 bands, 215
    # frames), SWA, a higher or lower lr, more mixup
    "mask_f16": {"freq_mask": 16},
    "mask_f16_t40": {"freq_mask": 16, "time_mask": 40},
    "mask_f32_t40": {"freq_mask": 32, "time_mask": 40},
    "mask_f48_t80": {"freq_mask": 48, "time_mask": 80},
    # the same as shares of the axis (0.25 x 128 bands = 32, 0.2 x 215 frames = 43)
    "mask_q25_t20": {"freq_mask": 0.25, "time_mask": 0.2},
    "swa": {"swa": True},
    "lr5e-4": {"lr": 5e-4},
    "lr2e-3": {"lr": 2e-3},
    "mix1": {"mixup_alpha": 1.0},
    "lin_2e-3": {
        **_OLD,
        "lr": 2e-3,
        "optimizer": "adamw",
        "weight_decay": 1e-2,
        "warmup": 0.05,
    },
}


#: config -> (MIN_IN_CHANNELS, MIN_PIXELS) of ``sklearn_rfcnn.utils._conv_grad``
#: for its runs.
REROUTED = {"fp32_rerouted": (16, 256)}
#: configs run with ``RFCNN_WIDE_ROW_BATCH_NORM=0``; the others with the
#: wide rows on one thread too (``_batch_norm.MIN_THREADS = 1``).
TORCH_BATCH_NORM = {"bf16_torch_bn"}
_LIBRARY_THRESHOLDS = (_conv_grad.MIN_IN_CHANNELS, _conv_grad.MIN_PIXELS)


def run_one(config, budget, soundfont, seed, threads=1):
    """Fit one configuration and return its record (runs in a worker)."""
    import torch

    torch.set_num_threads(threads)
    from sklearn_rfcnn import RFCNNClassifier
    from sklearn_rfcnn.metrics import (
        mean_average_precision,
        roc_auc_macro,
    )

    X_train, Y_train, X_test, Y_test, _ = load_features(soundfont, verbose=False)
    params = {**BUDGETS[budget], **CONFIGS[config]}
    # set for every run: a worker process runs several configurations
    thresholds = REROUTED.get(config, _LIBRARY_THRESHOLDS)
    os.environ[_batch_norm.ENV_VAR] = "0" if config in TORCH_BATCH_NORM else "1"
    # the runs' single thread would keep torch's kernel (MIN_THREADS): the
    # study tests the wide rows' numerics, so it lets them run on one
    _batch_norm.MIN_THREADS = 1
    _conv_grad.MIN_IN_CHANNELS, _conv_grad.MIN_PIXELS = thresholds
    precision = resolve_precision(params.get("precision", "auto"), "cpu")
    layout = resolve_channels_last(
        params.get("channels_last", "auto"), "cpu", precision
    )
    pays = _conv_grad.nchw_weight_grads_pay("cpu", precision, layout)
    if config == "paper":  # the paper's batch size, over the budget's epochs
        params["batch_size"] = PAPER["batch_size"]
    clf = RFCNNClassifier(**params, verbose=0, random_state=seed, device="cpu")
    start = time.perf_counter()
    clf.fit(X_train, Y_train)
    fit_s = time.perf_counter() - start
    os.environ[_fold.ENV_VAR] = "1"
    proba = clf.predict_proba(X_test)
    unfolded = None
    if precision != "32":  # mixed-precision inference folds the batch norms
        os.environ[_fold.ENV_VAR] = "0"
        try:
            unfolded = float(mean_average_precision(Y_test, clf.predict_proba(X_test)))
        finally:
            os.environ[_fold.ENV_VAR] = "1"
    return {
        "config": config,
        "budget": budget,
        "soundfont": soundfont,
        "seed": seed,
        "params": {k: v for k, v in params.items()},
        "map": float(mean_average_precision(Y_test, proba)),
        "roc_auc": float(roc_auc_macro(Y_test, proba)),
        "train_map": float(mean_average_precision(Y_train, clf.predict_proba(X_train))),
        **_other_soundfonts(clf, soundfont),
        "train_loss_last": float(clf.history_[-1, "train_loss"]),
        "fit_s": round(fit_s, 1),
        "threads": threads,
        # (MIN_IN_CHANNELS, MIN_PIXELS) where the NCHW weight gradient ran
        "nchw_weight_grads": list(thresholds) if pays else None,
        "wide_row_batch_norm": config not in TORCH_BATCH_NORM,
        # held-out mAP of the same model with the batch norms not folded
        # (``models._fold``; None in float32, where they never are)
        "map_unfolded": unfolded,
    }


def _other_soundfonts(clf, soundfont, n_train=630):
    """mAP of a model trained on ``soundfont`` on the same test pieces in the others.

    The feature sets share their compositions (same seed), so this measures
    how a model transfers to another General-MIDI bank's instrument sounds;
    the other bank's clips are standardised with the training bank's
    statistics, as a deployed pipeline would.
    """
    from sklearn_rfcnn import BandStandardizer
    from sklearn_rfcnn.metrics import mean_average_precision

    S, _, _, _ = load_spectrograms(soundfont, verbose=False)
    norm = BandStandardizer().fit(S[:n_train])
    out = {}
    for other in available_soundfonts(["timgm6mb", "csound"]):
        if other == soundfont:
            continue
        S_o, Y_o, _, _ = load_spectrograms(other, verbose=False)
        proba = clf.predict_proba(norm.transform(S_o[n_train:]))
        out[f"map_on_{other}"] = float(mean_average_precision(Y_o[n_train:], proba))
    return out


def _finished(path):
    """``(config, budget, soundfont, seed)`` of the runs already in ``path``.

    A re-run skips them, so a long study can be stopped and resumed.
    """
    if not path.exists():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return {(r["config"], r["budget"], r["soundfont"], r["seed"]) for r in rows}


def summarise(path):
    import numpy as np

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    groups = {}
    for r in rows:
        groups.setdefault((r["budget"], r["config"]), {}).setdefault(
            r["soundfont"], []
        ).append(r["map"])
    table = []
    for (budget, config), by_sf in sorted(groups.items()):
        entry = {"budget": budget, "config": config}
        means = []
        for sf, values in sorted(by_sf.items()):
            entry[sf] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "n": len(values),
            }
            means.append(np.mean(values))
        entry["mean_over_soundfonts"] = float(np.mean(means))
        table.append(entry)
    table.sort(key=lambda e: (e["budget"], -e["mean_over_soundfonts"]))
    for e in table:
        cells = "  ".join(
            f"{sf} {v['mean']:.3f}+-{v['std']:.3f} (n={v['n']})"
            for sf, v in e.items()
            if isinstance(v, dict)
        )
        mean = e["mean_over_soundfonts"]
        print(f"{e['budget']:5s} {e['config']:18s} {mean:.3f}  {cells}")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["default"])
    parser.add_argument("--budgets", nargs="+", default=["b25"], choices=BUDGETS)
    parser.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "csound"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS_DIR / "recipe_study.jsonl"))
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, params in CONFIGS.items():
            print(f"{name:18s} {params}")
        return
    if args.summary:
        started = time.time()
        table = summarise(args.out)
        write_results("recipe_study", table, started=started)
        return
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configurations {unknown}; see --list")
    soundfonts = available_soundfonts(args.soundfonts)
    print(format_machine(machine_info()), flush=True)
    for sf in soundfonts:  # render and cache the features before the workers
        load_features(sf)
    from joblib import Parallel, delayed

    tasks = [
        (c, b, sf, seed)
        for seed in args.seeds
        for b in args.budgets
        for c in args.configs
        for sf in soundfonts
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _finished(out)
    skipped = [t for t in tasks if t in done]
    tasks = [t for t in tasks if t not in done]
    if skipped:
        print(f"skipping {len(skipped)} finished run(s) already in {out}", flush=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
        delayed(run_one)(*t) for t in tasks
    )
    for record in results:
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(
            f"{record['budget']} {record['config']:18s} {record['soundfont']:9s} "
            f"seed {record['seed']}: mAP {record['map']:.3f} "
            f"({record['fit_s']:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
