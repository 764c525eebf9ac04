"""The paper's claims, re-tested on the embedded instrument-tagging data.

Every row trains on the same 600 clips and is scored on the same 250 held-out
clips (a fixed train / validation / test split of ``make_instrument_mixtures``
from the bundled TimGM6mb SoundFont; the 150 validation clips are used only by
the Optuna search), with the same front end (3 s at 22.05 kHz, 128-band
perceptual mel spectrograms, per-band standardisation) and the same training
budget for every CNN (``max_epochs`` epochs, batch 32, the library's default
recipe).  Three seeds each; mAP (macro average precision), PR-AUC macro
(trapezoid) and ROC-AUC macro as mean +- std over seeds.

Rows:

* classical: MFCC statistics + logistic regression, + RBF SVM;
* baselines: VGG-style CNN and ResNet-18 / ResNet-34 (un-regularised), each at
  its standard width;
* CP-ResNet over a rho sweep (receptive field from too small to too large),
  with frequency awareness (CP-FAResNet) and with Shake-Shake;
* the CNN as a feature extractor: ``RFCNNEmbedder`` -> ``StandardScaler`` ->
  SVM, trained on in-sample embeddings (of the clips the CNN was trained on)
  and on cross-fitted (out-of-fold) embeddings;
* one ``RFOptunaSearchCV`` run over ``rf_search_space()`` (seed 0 only).

Generalisation across SoundFonts: every model trained on TimGM6mb clips is also
scored on the same test pieces rendered from Debian's ``csound-soundfont``
General-MIDI bank (``apt-get install csound-soundfont``); where it is missing
that part is skipped with a message.

Usage::

    python benchmarks/accuracy.py            # the full run (see README.md)
    python benchmarks/accuracy.py --quick    # a smoke test of every row

Writes ``benchmarks/results/accuracy.json`` (``--quick``:
``accuracy_quick.json``) and beside it the plot ``accuracy_rf.png`` (score
against receptive field in seconds).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import format_machine, machine_info, write_results
from _data import available_soundfonts, load_spectrograms

from sklearn_rfcnn import BandStandardizer, RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.metrics import (
    mean_average_precision,
    pr_auc_macro,
    roc_auc_macro,
)
from sklearn_rfcnn.receptive_field import describe_receptive_field
from sklearn_rfcnn.utils._stratify import multilabel_holdout

SR, HOP, N_FFT = 22050, 512, 1024

FULL = dict(
    n_clips=1000,
    n_val=150,
    n_test=250,
    duration=3.0,
    n_mels=128,
    max_epochs=20,
    width=16,
    seeds=(0, 1, 2),
    rhos=(0, 2, 4, 6, 8, 12),
    variant_rho=6,
    n_trials=8,
    crossfit_folds=3,
    # standard widths (64) cost 15x (VGG) and 3-5x (ResNet) a CP-ResNet epoch
    # here: scaled so that every CNN row fits the 2-core budget
    baseline_width={"vgg_cnn": 8, "resnet18": 16, "resnet34": 16},
    jobs=2,
)
QUICK = dict(
    n_clips=60,
    n_val=12,
    n_test=16,
    duration=1.0,
    n_mels=32,
    max_epochs=1,
    width=4,
    seeds=(0,),
    rhos=(0, 4),
    variant_rho=2,
    n_trials=2,
    crossfit_folds=2,
    baseline_width={"vgg_cnn": 2, "resnet18": 2, "resnet34": 2},
    jobs=1,
)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def mfcc_statistics(waveforms, sr):
    """Mean and std of 20 MFCCs and their deltas: the classical baseline."""
    import librosa

    mfcc = librosa.feature.mfcc(y=np.asarray(waveforms), sr=sr, n_mfcc=20)
    delta = librosa.feature.delta(mfcc, axis=-1)
    parts = [mfcc.mean(-1), mfcc.std(-1), delta.mean(-1), delta.std(-1)]
    return np.concatenate(parts, axis=1)


def load_data(cfg, soundfont, split=None):
    """Spectrograms, tags, MFCC statistics and the fixed split for a SoundFont."""
    S, Y, names, audio = load_spectrograms(
        soundfont,
        n_clips=cfg["n_clips"],
        duration=cfg["duration"],
        n_mels=cfg["n_mels"],
        n_fft=N_FFT,
        random_state=0,
        verbose=False,
    )
    if split is None:
        rest, test = multilabel_holdout(Y, cfg["n_test"], random_state=0)
        train_i, val_i = multilabel_holdout(Y[rest], cfg["n_val"], random_state=0)
        split = {"train": rest[train_i], "val": rest[val_i], "test": test}
    mfcc = mfcc_statistics(audio.waveforms, audio.sr)
    return {"S": S, "Y": Y, "mfcc": mfcc, "names": names, "split": split}


def scores(Y, score):
    return {
        "map": float(mean_average_precision(Y, score)),
        "pr_auc": float(pr_auc_macro(Y, score, method="trapezoid")),
        "roc_auc": float(roc_auc_macro(Y, score)),
    }


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
def cnn(cfg, seed, **params):
    base = dict(
        width=cfg["width"],
        max_epochs=cfg["max_epochs"],
        batch_size=32,
        verbose=0,
        device="cpu",
        random_state=seed,
    )
    arch = params.get("arch", "cp_resnet")
    if arch != "cp_resnet":
        base["width"] = cfg["baseline_width"][arch]
    return RFCNNClassifier(**{**base, **params})


def ovr_svm(seed):
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(
        StandardScaler(), OneVsRestClassifier(SVC(C=1.0, random_state=seed))
    )


def ovr_logreg(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=2000)),
    )


def decision(model, X):
    if hasattr(model, "predict_proba") and not hasattr(model, "decision_function"):
        return model.predict_proba(X)
    return model.decision_function(X)


def crossfit_embeddings(cfg, seed, X, Y, params):
    """Out-of-fold embeddings of X: each fold embedded by a CNN not trained on it."""
    from sklearn.model_selection import KFold

    out = None
    folds = KFold(cfg["crossfit_folds"], shuffle=True, random_state=seed)
    for train, held in folds.split(X):
        emb = RFCNNEmbedder(**cnn(cfg, seed, **params).get_params())
        emb.fit(X[train], Y[train])
        Z = emb.transform(X[held])
        if out is None:
            out = np.zeros((len(X), Z.shape[1]), dtype=np.float32)
        out[held] = Z
    return out


# --------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------
def rows(cfg):
    """(name, kind, params) for every row, in the order they are reported."""
    out = [
        ("MFCC + logistic regression", "mfcc_logreg", {}),
        ("MFCC + SVM", "mfcc_svm", {}),
        ("VGG-style CNN", "cnn", {"arch": "vgg_cnn"}),
        ("ResNet-18", "cnn", {"arch": "resnet18"}),
        ("ResNet-34", "cnn", {"arch": "resnet34"}),
    ]
    for rho in cfg["rhos"]:
        out.append((f"CP-ResNet rho={rho}", "cnn", {"rho": rho}))
    r = cfg["variant_rho"]
    out.append((f"CP-FAResNet rho={r}", "cnn", {"rho": r, "frequency_aware": True}))
    out.append(
        (f"CP-ResNet Shake-Shake rho={r}", "cnn", {"rho": r, "shake_shake": True})
    )
    out.append((f"CP-ResNet rho={r} embedding + SVM", "embed", {"rho": r}))
    out.append(("RFOptunaSearchCV over rf_search_space()", "optuna", {}))
    return out


def _both(model_score, Y, te, X, Xo):
    """Scores on the test clips, and on their other-SoundFont rendering."""
    result = {"test": scores(Y[te], model_score(X[te]))}
    if Xo is not None:
        result["other_soundfont"] = scores(Y[te], model_score(Xo[te]))
    return result


def run_row(kind, params, cfg, seed, data, other):
    """Fit one row for one seed; return ``(scores, extra)``.

    ``scores`` maps a variant name (``""`` for the row itself) to the test
    scores and those on the other SoundFont.
    """
    import torch

    torch.set_num_threads(1)
    sp = data["split"]
    tr, te = sp["train"], sp["test"]
    Y = data["Y"]
    if kind in ("mfcc_logreg", "mfcc_svm"):
        model = (ovr_logreg if kind == "mfcc_logreg" else ovr_svm)(seed)
        model.fit(data["mfcc"][tr], Y[tr])
        Xo = None if other is None else other["mfcc"]
        score = lambda Z: decision(model, Z)  # noqa: E731
        return {"": _both(score, Y, te, data["mfcc"], Xo)}, {}
    norm = BandStandardizer().fit(data["S"][tr])
    X = norm.transform(data["S"])
    Xo = norm.transform(other["S"]) if other is not None else None
    if kind == "cnn":
        clf = cnn(cfg, seed, **params).fit(X[tr], Y[tr])
        rf = clf.receptive_field_
        desc = describe_receptive_field(rf, sr=SR, hop_length=HOP, n_mels=cfg["n_mels"])
        extra = {
            "rf_px": int(rf.time),
            "rf_seconds": float(desc.time_seconds),
            "n_params": int(sum(p.numel() for p in clf.net_.module_.parameters())),
            "width": int(clf.net_.module_.width),
        }
        return {"": _both(clf.predict_proba, Y, te, X, Xo)}, extra
    if kind == "embed":
        clf = cnn(cfg, seed, **params).fit(X[tr], Y[tr])
        emb = RFCNNEmbedder.from_classifier(clf)
        out = {"CNN alone": _both(clf.predict_proba, Y, te, X, Xo)}
        for variant, Z_train in (
            ("in-sample", emb.transform(X[tr])),
            ("cross-fitted", crossfit_embeddings(cfg, seed, X[tr], Y[tr], params)),
        ):
            svm = ovr_svm(seed).fit(Z_train, Y[tr])
            score = lambda Z, svm=svm: decision(svm, emb.transform(Z))  # noqa: E731
            out[variant] = _both(score, Y, te, X, Xo)
        return out, {}
    if kind == "optuna":
        from sklearn.model_selection import PredefinedSplit

        from sklearn_rfcnn.metrics import get_scorer
        from sklearn_rfcnn.search import RFOptunaSearchCV, rf_search_space

        va = sp["val"]
        idx = np.concatenate([tr, va])
        fold = np.r_[np.full(len(tr), -1), np.zeros(len(va), dtype=int)]
        space = rf_search_space(
            "", rho=(min(cfg["rhos"]), max(cfg["rhos"])), width=(cfg["width"],)
        )
        search = RFOptunaSearchCV(
            cnn(cfg, seed),
            space,
            n_trials=cfg["n_trials"],
            cv=PredefinedSplit(fold),
            scoring=get_scorer("mean_average_precision"),
            refit=False,
            random_state=seed,
        )
        search.fit(X[idx], Y[idx])
        clf = cnn(cfg, seed, **search.best_params_).fit(X[tr], Y[tr])
        extra = {"best_params": search.best_params_}
        return {"": _both(clf.predict_proba, Y, te, X, Xo)}, extra
    raise ValueError(kind)


def _timed(func, *args):
    start = time.perf_counter()
    res, extra = func(*args)
    return res, extra, time.perf_counter() - start


def summarise(per_seed):
    out = {}
    for part in ("test", "other_soundfont"):
        if part not in per_seed[0]:
            continue
        out[part] = {
            m: {
                "mean": float(np.mean([r[part][m] for r in per_seed])),
                "std": float(np.std([r[part][m] for r in per_seed])),
            }
            for m in ("map", "pr_auc", "roc_auc")
        }
    return out


def plot(results, chance, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sweep = [r for r in results if r["name"].startswith("CP-ResNet rho=")]
    sweep = [r for r in sweep if "embedding" not in r["name"]]
    x = [r["rf_seconds"] for r in sweep]
    m = [r["summary"]["test"]["map"]["mean"] for r in sweep]
    s = [r["summary"]["test"]["map"]["std"] for r in sweep]
    ax.errorbar(x, m, yerr=s, fmt="o-", capsize=3, label="CP-ResNet (rho sweep)")
    for r, xi, mi in zip(sweep, x, m):
        ax.annotate(
            r["name"].split()[-1],
            (xi, mi),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    styles = iter(["--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1))] * 3)
    k = 0
    for r in results:
        if r in sweep or "summary" not in r:
            continue
        keys = ("MFCC", "VGG", "ResNet-", "FAResNet", "Shake", "SVM (")
        if not any(k in r["name"] for k in keys) or "CNN alone" in r["name"]:
            continue
        ax.axhline(
            r["summary"]["test"]["map"]["mean"],
            ls=next(styles, "--"),
            lw=1,
            label=r["name"],
            color=f"C{k % 9 + 1}",
        )
        k += 1
    ax.axhline(chance, color="black", lw=1, label="chance (mean tag prevalence)")
    ax.set_xscale("log")
    ax.set_xlabel("receptive field along time (seconds, log scale)")
    ax.set_ylabel("test mAP (mean over seeds)")
    ax.set_title("Instrument tagging: mAP against the receptive field")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)


def markdown(doc):
    """The results of a run as a Markdown table (``--report``)."""
    other = doc["results"]["other_soundfont"]
    head = "| model | RF (s) | mAP | PR-AUC | ROC-AUC |"
    sep = "|---|---|---|---|---|"
    if other:
        head += f" mAP on {other} |"
        sep += "---|"
    lines = [head, sep]
    for r in doc["results"]["rows"]:
        t = r["summary"]["test"]
        cells = [
            r["name"],
            f"{r['rf_seconds']:.2f}" if "rf_seconds" in r else "",
            *(
                f"{t[m]['mean']:.3f} ± {t[m]['std']:.3f}"
                for m in ("map", "pr_auc", "roc_auc")
            ),
        ]
        if other:
            o = r["summary"]["other_soundfont"]["map"]
            cells.append(f"{o['mean']:.3f} ± {o['std']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    chance = doc["results"]["chance_map"]
    lines.append(f"\nChance level (mean tag prevalence in the test part): {chance:.3f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    parser.add_argument(
        "--report", metavar="JSON", help="print a written run as Markdown and exit"
    )
    parser.add_argument("--only", nargs="*", help="run only rows whose name has this")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    if args.report:  # the table, and the plot drawn again beside the JSON
        path = Path(args.report)
        doc = json.loads(path.read_text())
        print(markdown(doc))
        res = doc["results"]
        plot(res["rows"], res["chance_map"], path.with_name(path.stem + "_rf.png"))
        return None
    cfg = QUICK if args.quick else FULL
    started = time.time()
    info = machine_info()
    print(format_machine(info), flush=True)
    data = load_data(cfg, "timgm6mb")
    other = None
    if available_soundfonts(["csound"]):
        other = load_data(cfg, "csound", split=data["split"])
    sp = data["split"]
    print(
        f"{len(data['Y'])} clips: train {len(sp['train'])}, validation "
        f"{len(sp['val'])}, test {len(sp['test'])}; {data['Y'].shape[1]} tags",
        flush=True,
    )
    chance = float(data["Y"][sp["test"]].mean(axis=0).mean())
    from joblib import Parallel, delayed

    todo = []
    for name, kind, params in rows(cfg):
        if args.only and not any(o in name for o in args.only):
            continue
        seeds = cfg["seeds"][:1] if kind == "optuna" else cfg["seeds"]
        todo.extend((name, kind, params, seed) for seed in seeds)
    t0 = time.perf_counter()
    done = Parallel(n_jobs=cfg["jobs"], return_as="generator")(
        delayed(_timed)(run_row, kind, params, cfg, seed, data, other)
        for name, kind, params, seed in todo
    )
    collected = {}
    for (name, kind, params, seed), (res, extra, seconds) in zip(todo, done):
        print(f"  {name} seed {seed}: {seconds:.0f} s", flush=True)
        for variant, r in res.items():
            key = name if not variant else f"{name} ({variant})"
            entry = collected.setdefault(
                key, {"name": key, "kind": kind, "params": params, "per_seed": []}
            )
            entry.update(extra)
            entry["per_seed"].append({**r, "seed": seed, "seconds": round(seconds, 1)})
    results = []
    for entry in collected.values():
        entry["summary"] = summarise(entry["per_seed"])
        results.append(entry)
        t = entry["summary"]["test"]["map"]
        o = entry["summary"].get("other_soundfont", {}).get("map")
        line = f"{entry['name']:58s} mAP {t['mean']:.3f} +- {t['std']:.3f}"
        if o:
            line += f" | csound {o['mean']:.3f} +- {o['std']:.3f}"
        print(line, flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    doc = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "chance_map": chance,
        "other_soundfont": "csound" if other is not None else None,
        "rows": results,
    }
    name = "accuracy_quick" if args.quick else "accuracy"
    path = write_results(name, doc, started=started, path=args.out)
    figure = path.with_name(path.stem + "_rf.png")
    if any(r["name"].startswith("CP-ResNet rho=") for r in results):
        plot(results, chance, figure)
        print(f"wrote {figure}")
    print(f"wrote {path}")
    return doc


if __name__ == "__main__":
    main()
