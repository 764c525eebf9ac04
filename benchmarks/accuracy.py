"""The paper's claims at a regime that can decide them (issue 25, study v2).

Regime: 10 s clips (22.05 kHz, 128-band perceptual mel, hop 512: 431 frames)
rendered by ``make_instrument_mixtures`` from two General-MIDI SoundFonts
(TimGM6mb and Debian's csound ``sf_GMbank.sf2``, ``n_clips`` each; the first
``n_train`` of each train every row), CNNs trained on random crops of
``crop_frames`` frames and predicting with sliding windows, so receptive
fields of several seconds fit inside a clip.  Every row is scored (macro mAP)
on the held-out clips of both training SoundFonts (in timbre) and on the same
pieces rendered from FluidR3_GM, a SoundFont no row trained on (unseen).

Rows (:func:`stages`), in the order they run so that a partial run informs:

1. claims, 3 seeds each: CP-ResNet over a rho sweep 0 ... 20; ``rho_f`` /
   ``rho_t`` sweeps (one axis swept, the other held at ``DEFAULT_RHO``);
   CP-FAResNet and Shake-Shake at ``DEFAULT_RHO`` (fixed up front, not chosen
   from test scores); ResNet-18, ResNet-34 and VGG-style at the CP-ResNet's
   width (equal compute);
2. ``search``: ``RFOptunaSearchCV`` per seed with a time budget equal to the
   wall time of the seed's rho grid (as in ``search_vs_grid.py``); then the
   baselines at their standard width 64, seed 0 (the longest runs, last).

Each finished run (row x seed) is appended as one JSON line to
``results/accuracy_v2.jsonl`` with its scores, parameters, forward FLOPs per
clip (``torch.utils.flop_counter.FlopCounterMode``), fit and predict time; a
re-run skips the runs there.  ``--summary`` prints the Markdown table (mean
+- std over seeds, missing rows marked) and draws the plot of mAP against the
RF in seconds per axis from whatever has finished.  ``--estimate`` prints the
full run's time from the cost model in :func:`estimate_seconds`.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/accuracy.py --estimate
    OMP_NUM_THREADS=1 python benchmarks/accuracy.py --jobs 2
    python benchmarks/accuracy.py --summary
    python benchmarks/accuracy.py --device cuda   # width 128, 256 mels, one GPU
    python benchmarks/accuracy.py --quick --out /tmp/acc.jsonl
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, format_machine, machine_info, read_jsonl
from _data import available_soundfonts, load_spectrograms

from sklearn_rfcnn import BandStandardizer, RFCNNClassifier
from sklearn_rfcnn.metrics import mean_average_precision
from sklearn_rfcnn.receptive_field import DEFAULT_RHO, describe_receptive_field

SR, HOP, N_FFT = 22050, 512, 1024
TRAIN_FONTS, UNSEEN_FONT = ("timgm6mb", "csound"), "fluidr3"

FULL = dict(
    n_clips=520,
    n_train=400,
    duration=10.0,
    n_mels=128,
    crop_frames=215,
    max_epochs=15,
    batch_size=32,
    width=16,
    rhos=(0, 2, 4, 6, 8, 10, 12, 14, 16, 20),
    axis_rhos=(2, 5, 14, 20),
    baseline_widths=(16, 64),
    seeds=(0, 1, 2),
    device="cpu",
)
#: a smoke test of every kind of row (the test suite): tiny clips, one epoch
QUICK = dict(FULL, n_clips=12, n_train=8, duration=2.0, n_mels=32, crop_frames=32)
QUICK.update(max_epochs=1, batch_size=8, width=4, rhos=(0, 4), axis_rhos=(2,))
QUICK.update(baseline_widths=(4,), seeds=(0, 1))
#: the standard-width regime on one GPU (``--device cuda``)
CUDA = dict(FULL, n_mels=256, width=128, baseline_widths=(64, 128), device="cuda")

#: v1 (3 s clips, 600 clips x 20 epochs, 2 jobs on 2 AMD EPYC cores): seconds
#: per fit and the width it ran at, per architecture (results/accuracy_v1.json).
V1_COST = {
    "cp_resnet": (80.0, 16),
    "vgg_cnn": (245.0, 8),
    "resnet18": (96.0, 16),
    "resnet34": (165.0, 16),
}
V1_WORK = 600 * 20 * 130  # clips x epochs x frames per v1 fit


def stages(cfg):
    """The runs in the order they go, as ``(stage, [(row, params, seed), ...])``.

    1. ``claims``: every seed of the rows a claim rests on and that are cheap
       to repeat: the rho sweep, the ``rho_f`` / ``rho_t`` sweeps, CP-FAResNet
       and Shake-Shake at ``DEFAULT_RHO``, and the baselines at the
       CP-ResNet's width (equal compute);
    2. ``search``: ``RFOptunaSearchCV`` per seed, its time budget the wall
       time of that seed's rho grid from stage 1, then the baselines at their
       standard width (seed 0; the longest runs come last, so a partial run
       has every claim row first).
    """
    d = DEFAULT_RHO
    rows = [(f"rho={rho}", {"rho": rho}) for rho in cfg["rhos"]]
    rows += [
        (f"rho_f={r} rho_t={d}", {"rho_f": r, "rho_t": d}) for r in cfg["axis_rhos"]
    ]
    rows += [
        (f"rho_f={d} rho_t={r}", {"rho_f": d, "rho_t": r}) for r in cfg["axis_rhos"]
    ]
    rows.append((f"CP-FAResNet rho={d}", {"rho": d, "frequency_aware": True}))
    rows.append((f"Shake-Shake rho={d}", {"rho": d, "shake_shake": True}))
    narrow_w, *wide_ws = sorted(cfg["baseline_widths"])
    archs = ("resnet18", "resnet34", "vgg_cnn")  # cheapest first
    rows += [(f"{a} width={narrow_w}", {"arch": a, "width": narrow_w}) for a in archs]
    claims = [(row, params, seed) for seed in cfg["seeds"] for row, params in rows]
    search = [
        ("RFOptunaSearchCV (time = rho grid)", {"search": True}, seed)
        for seed in cfg["seeds"]
    ]
    wide = [
        (f"{a} width={w}", {"arch": a, "width": w}, cfg["seeds"][0])
        for w in wide_ws
        for a in archs
    ]
    return [("claims", claims), ("search", search + wide)]


def tasks(cfg):
    """``(row, params, seed)`` for every run, in the order they go."""
    return [t for _, stage in stages(cfg) for t in stage]


def estimate_seconds(cfg, params):
    """Cost model of one fit on one CPU core (2 jobs on 2 cores).

    v1's measured fit time of the architecture, scaled by the work
    (training clips x epochs x crop frames against v1's 600 x 20 x 130) and
    by (width / v1 width) ** 2 (convolution FLOPs); CP-ResNet rows by rho as
    in v1's sweep (0.7 at rho 0-4, 1 at 6-12, +4 % per rho above 12); the
    frequency-aware variant x 1.5, Shake-Shake x 1.9 (v1's ratios).
    """
    arch = params.get("arch", "cp_resnet")
    base, w0 = V1_COST[arch]
    work = len(TRAIN_FONTS) * cfg["n_train"] * cfg["max_epochs"] * cfg["crop_frames"]
    s = base * work / V1_WORK * (params.get("width", cfg["width"]) / w0) ** 2
    rho = max(params.get("rho", 0), params.get("rho_f", 0), params.get("rho_t", 0))
    if arch == "cp_resnet":
        s *= 0.7 if rho <= 4 else 1.0 + 0.04 * max(rho - 12, 0)
    if params.get("frequency_aware"):
        s *= 1.5
    if params.get("shake_shake"):
        s *= 1.9
    return s


def estimate(cfg, todo):
    """Seconds of the runs ``todo`` on 2 processes; prints the basis."""
    grid = sum(estimate_seconds(cfg, {"rho": r}) for r in cfg["rhos"])
    each = [grid if p.get("search") else estimate_seconds(cfg, p) for _, p, _ in todo]
    total = max(sum(each) / 2, max(each, default=0.0))  # the longest fit bounds it
    print(
        f"estimate: {len(todo)} runs, {sum(each) / 3600:.1f} core-hours, "
        f"{total / 3600:.1f} h with --jobs 2 (cost model: v1 fit times scaled by "
        "clips x epochs x crop frames and width^2; see estimate_seconds)",
        flush=True,
    )
    return total


def load_data(cfg):
    """Standardised training clips of both fonts, and the test clips per font."""
    parts = {}
    for font in available_soundfonts([*TRAIN_FONTS, UNSEEN_FONT]):
        S, Y, _, _ = load_spectrograms(
            font,
            n_clips=cfg["n_clips"],
            duration=cfg["duration"],
            n_mels=cfg["n_mels"],
            n_fft=N_FFT,
            random_state=25,
            verbose=False,
        )
        parts[font] = (S, Y)
    n = cfg["n_train"]
    S_tr = np.concatenate([parts[f][0][:n] for f in TRAIN_FONTS if f in parts])
    Y_tr = np.concatenate([parts[f][1][:n] for f in TRAIN_FONTS if f in parts])
    norm = BandStandardizer().fit(S_tr)
    tests = {f: (norm.transform(S[n:]), Y[n:]) for f, (S, Y) in parts.items()}
    return norm.transform(S_tr), Y_tr, tests


def forward_flops(clf, n_mels, n_frames):
    """Forward FLOPs of one clip through the fitted network."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module = clf.net_.module_
    param = next(module.parameters())
    x = torch.zeros(1, 1, n_mels, n_frames, device=param.device, dtype=param.dtype)
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops())


def make_clf(cfg, params, seed):
    """The row's classifier over the study's shared budget."""
    base = dict(
        width=cfg["width"],
        max_epochs=cfg["max_epochs"],
        batch_size=cfg["batch_size"],
        crop_frames=cfg["crop_frames"],
        precision="auto",
        device=cfg["device"],
        verbose=0,
        random_state=seed,
    )
    return RFCNNClassifier(**{**base, **params})


def fit_row(cfg, params, seed, data, budget_s=None):
    """Fit one run; return the fitted classifier and the record's extra fields."""
    X, Y, _ = data
    if not params.get("search"):
        return make_clf(cfg, params, seed).fit(X, Y), {}
    from sklearn_rfcnn.search import RFOptunaSearchCV

    search = RFOptunaSearchCV(
        make_clf(cfg, {}, seed),
        n_trials=None if budget_s else 2,
        timeout=budget_s,
        scoring="average_precision",
        random_state=seed,
    ).fit(X, Y)
    states = list(search.cv_results_["state"])
    extra = {
        "budget_s": budget_s,
        "best_params": dict(search.best_params_),
        "trials_run": len(states),
        "trials_pruned": states.count("PRUNED"),
    }
    return search.best_estimator_, extra


def run_one(cfg, row, params, seed, budget_s=None):
    """One row x seed, in a worker process; returns its JSON record."""
    import torch

    torch.set_num_threads(1)
    data = load_data(cfg)
    start = time.perf_counter()
    clf, extra = fit_row(cfg, params, seed, data, budget_s)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = {
        f: float(mean_average_precision(Y, clf.predict_proba(X)))
        for f, (X, Y) in data[2].items()
    }
    predict_s = time.perf_counter() - start
    rf = clf.receptive_field_
    desc = describe_receptive_field(rf, sr=SR, hop_length=HOP, n_mels=cfg["n_mels"])
    n_frames = data[0].shape[-1]
    return {
        "row": row,
        "seed": seed,
        "params": params,
        "map_in_timbre": float(np.mean([scores[f] for f in TRAIN_FONTS])),
        "map_unseen": scores.get(UNSEEN_FONT),
        "map_per_font": scores,
        "rf_time_s": float(desc.time_seconds),
        "rf_freq_px": int(rf.freq),
        "rf_time_px": int(rf.time),
        "n_params": int(sum(p.numel() for p in clf.net_.module_.parameters())),
        "flops_per_clip": forward_flops(clf, cfg["n_mels"], n_frames),
        "fit_s": round(fit_s, 1),
        "predict_s": round(predict_s, 1),
        **extra,
    }


def _append(out, record):
    with Path(out).open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(
        f"{record['row']:34s} seed {record['seed']}: mAP {record['map_in_timbre']:.3f}"
        f" (unseen {record['map_unseen']}) {record['fit_s']:.0f} s",
        flush=True,
    )


def _grid_seconds(out, seed):
    """Wall time of one seed's rho grid (fit + predict of its ``rho=`` rows)."""
    grid = [
        r["fit_s"] + r["predict_s"]
        for r in read_jsonl(out)
        if r["seed"] == seed and r["row"].startswith("rho=")
    ]
    return sum(grid) or None


def run(cfg, out, jobs):
    """Run every unfinished run of ``stages(cfg)``, appending to ``out``."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["row"], r["seed"]) for r in read_jsonl(out)}
    todo = [t for t in tasks(cfg) if (t[0], t[2]) not in done]
    print(f"skipped {len(tasks(cfg)) - len(todo)} finished run(s) in {out}")
    estimate(cfg, todo)
    if not todo:
        return
    load_data(cfg)  # render and cache the features before the workers
    with ProcessPoolExecutor(max(jobs, 1)) as pool:
        for name, stage in stages(cfg):
            stage = [t for t in stage if (t[0], t[2]) not in done]
            print(f"stage {name}: {len(stage)} run(s)", flush=True)
            futures = [
                pool.submit(
                    run_one,
                    cfg,
                    *t,
                    budget_s=_grid_seconds(out, t[2]) if t[1].get("search") else None,
                )
                for t in stage
            ]
            for fut in as_completed(futures):
                _append(out, fut.result())


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:  # one seed: no spread to show
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def summary(cfg, path):
    """The Markdown table of the finished runs (missing rows marked)."""
    records = read_jsonl(path)
    lines = [
        "| row | seeds | RF freq (px) / time (s) | params | GFLOPs/clip | fit (s) "
        "| mAP in timbre | mAP unseen (FluidR3) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in dict.fromkeys(t[0] for t in tasks(cfg)):
        rs = [r for r in records if r["row"] == row]
        if not rs:
            lines.append(f"| {row} | (missing) | | | | | | |")
            continue
        r = rs[0]
        lines.append(
            f"| {row} | {len(rs)} | {r['rf_freq_px']} / {r['rf_time_s']:.2f} "
            f"| {r['n_params']:,} | {r['flops_per_clip'] / 1e9:.3f} "
            f"| {np.mean([x['fit_s'] for x in rs]):.0f} "
            f"| {_mean_std([x['map_in_timbre'] for x in rs])} "
            f"| {_mean_std([x['map_unseen'] for x in rs])} |"
        )
    return "\n".join(lines)


def _sweep_points(records, axis, x="rf_time_s", score="map_in_timbre"):
    """(RF along ``x``, mean, std of ``score``) of the runs of one swept axis."""
    d = f"rho_f={DEFAULT_RHO} "
    groups = {}
    for r in records:
        p = r["params"]
        if axis == "rho" and set(p) == {"rho"}:
            pass
        elif axis == "rho_f" and "rho_f" in p and p.get("rho_t") == DEFAULT_RHO:
            pass
        elif axis == "rho_t" and r["row"].startswith(d):
            pass
        else:
            continue
        groups.setdefault(r["row"], []).append(r)
    return sorted(
        (
            rs[0][x],
            float(np.mean([r[score] for r in rs])),
            float(np.std([r[score] for r in rs])),
        )
        for rs in groups.values()
    )


def plot(records, path):
    """mAP against the RF per axis: time (seconds) and frequency (mel bands).

    Solid lines: in timbre; dashed: the unseen SoundFont (same colour per sweep).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    panels = (
        ("rf_time_s", ("rho", "rho_t"), "receptive field along time (s)"),
        ("rf_freq_px", ("rho", "rho_f"), "receptive field along frequency (mel bands)"),
    )
    for ax, (x, axes, label) in zip(fig.subplots(1, 2, sharey=True), panels):
        for colour, axis in zip(("C0", "C1"), axes):
            for score, fmt, where in (
                ("map_in_timbre", "o-", "in timbre"),
                ("map_unseen", "s--", "unseen font"),
            ):
                pts = _sweep_points(records, axis, x, score)
                if pts:
                    xs, m, s = zip(*pts)
                    ax.errorbar(
                        xs,
                        m,
                        yerr=s,
                        fmt=fmt,
                        color=colour,
                        capsize=3,
                        label=f"{axis} sweep, {where}",
                    )
        ax.set_xlabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("mAP (mean ± std over seeds)")
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default=None, help="the JSON-lines results file")
    parser.add_argument("--estimate", action="store_true")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else CUDA if args.device == "cuda" else FULL
    name = "accuracy_quick" if args.quick else "accuracy_v2"
    out = Path(args.out or RESULTS_DIR / f"{name}.jsonl")
    if args.estimate:
        estimate(cfg, tasks(cfg))
        return
    if not args.summary:
        print(format_machine(machine_info()), flush=True)
        run(cfg, out, args.jobs)
    print(summary(cfg, out))
    plot(read_jsonl(out), out.with_name(out.stem + "_rf.png"))


if __name__ == "__main__":
    main()
