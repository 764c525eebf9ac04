"""``rfcnn demo``: render data, train a CP-ResNet, compare, and write a report.

The whole library in one command, on the embedded dataset (no download):

1. render (or reuse from the cache) instrument mixtures with multi-hot tags;
2. split them into training and test clips (every tag present and absent in
   the test part);
3. compute perceptually weighted mel spectrograms and standardise each band;
4. train a CP-ResNet tagger (``RFCNNClassifier``), printing skorch's epoch table;
5. evaluate it on the held-out clips beside a classical baseline (MFCC
   statistics + one-vs-rest logistic regression) and beside the CNN used as a
   feature extractor (``RFCNNEmbedder.from_classifier`` + an RBF SVM);
6. print a table of mAP, PR-AUC and ROC-AUC and write a report folder with
   ``metrics.json``, ``per_tag_report.txt`` and PNG plots of the training
   curve, the per-tag average precision and a spectrogram with the network's
   receptive field drawn to scale.

The default size (1000 clips of 3 s, a width-32 CP-ResNet with the library's
default rho, 50 epochs) runs in under ten minutes on two CPU cores, rendering
included; ``--quick`` is a tiny run for smoke tests (seconds).
"""

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sklearn_rfcnn.cli._options import (
    add_device_args,
    add_epochs,
    add_random_state,
    channels_last_param,
)
from sklearn_rfcnn.receptive_field import DEFAULT_RHO

__all__ = ["add_parser", "run"]

#: The default run, sized to finish within about ten minutes on two CPU cores.
#: Measured on a busy 2-core machine with ``--threads 1``: 7 min 24 s (8 s per
#: epoch, 21 s rendering of 200 uncached clips); rendering all 1000 clips once
#: takes about one more minute.  Test mAP 0.82 at the default rho 9 (0.76-0.78
#: at rho 5; MFCC baseline 0.55), single runs.
DEFAULTS = {
    "n_clips": 1000,
    "duration": 3.0,
    "n_mels": 128,
    "width": 32,
    "rho": DEFAULT_RHO,
    "epochs": 50,
    "instruments": None,
    "max_polyphony": 3,
    # the training recipe is the library's default (no demo-specific tuning)
}

#: ``--quick``: a smoke test that runs in well under a minute.
QUICK = {
    "n_clips": 48,
    "duration": 1.5,
    "n_mels": 40,
    "width": 4,
    "rho": 2,
    "epochs": 2,
    "instruments": ["bass", "drums", "flute", "organ", "piano", "violin"],
    "max_polyphony": 2,
    "batch_size": 16,
    "lr": 3e-3,
}

_SR = 22050
_HOP = 512
_N_FFT = 2048
_TEST_FRACTION = 0.25


def add_parser(subparsers):
    """Register the ``demo`` subcommand on an argparse ``subparsers`` object."""
    d = DEFAULTS
    p = subparsers.add_parser(
        "demo",
        help="train and evaluate a CP-ResNet tagger on the embedded dataset and "
        "write a report",
        description="Render the embedded instrument-mixture dataset (cached), "
        "train a CP-ResNet tagger, evaluate it on held-out clips beside an "
        "MFCC + logistic-regression baseline and beside CNN embeddings + SVM, "
        "print mAP / PR-AUC / ROC-AUC and write a report folder (metrics.json "
        "and PNG plots). The default size takes under 10 minutes on 2 CPU "
        "cores (the first run also renders and caches the clips, about a "
        "minute); --quick takes seconds.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a tiny smoke-test run ({QUICK['n_clips']} clips of "
        f"{QUICK['duration']:g} s, {len(QUICK['instruments'])} tags, width "
        f"{QUICK['width']}, {QUICK['epochs']} epochs); explicit options below "
        "still override it",
    )
    p.add_argument(
        "--n-clips",
        type=int,
        default=None,
        help=f"number of clips to render, 1/4 held out for testing "
        f"(default: {d['n_clips']})",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help=f"clip length in seconds (default: {d['duration']:g})",
    )
    p.add_argument(
        "--instruments",
        default=None,
        help="comma-separated instrument tags to draw from (default: all 18 of "
        "sklearn_rfcnn.datasets.INSTRUMENT_TAGS)",
    )
    p.add_argument(
        "--n-mels",
        type=int,
        default=None,
        help=f"mel bands of the spectrogram (default: {d['n_mels']})",
    )
    add_epochs(p, default=None, default_text=d["epochs"])
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help=f"CP-ResNet base width (default: {d['width']})",
    )
    p.add_argument(
        "--rho",
        type=int,
        default=None,
        help=f"CP-ResNet receptive-field parameter rho (default: {d['rho']})",
    )
    p.add_argument(
        "--output",
        "-o",
        default="rfcnn-demo-report",
        help="report folder, created if needed (default: ./rfcnn-demo-report)",
    )
    p.add_argument(
        "--data-home",
        default=None,
        help="cache folder for the rendered clips (default: $RFCNN_DATA_HOME or "
        "~/rfcnn_data)",
    )
    add_random_state(p, default=0, what="the dataset, the split and training")
    add_device_args(p, what="train and predict")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice, all cores); on a "
        "machine busy with other work, --threads 1 avoids oversubscription, "
        "which can slow training by an order of magnitude",
    )
    p.set_defaults(run=run)
    return p


def _settings(args):
    base = dict(QUICK if args.quick else DEFAULTS)
    for key in ("n_clips", "duration", "n_mels", "epochs", "width", "rho"):
        value = getattr(args, key)
        if value is not None:
            base[key] = value
    if args.instruments is not None:
        base["instruments"] = [t.strip() for t in args.instruments.split(",") if t]
        base["max_polyphony"] = min(base["max_polyphony"], len(base["instruments"]))
    from sklearn_rfcnn.cli import CLIError

    for key in ("n_clips", "epochs", "width", "n_mels"):
        if base[key] < 1:
            raise CLIError(f"--{key.replace('_', '-')}={base[key]} must be >= 1.")
    if base["rho"] < 0:
        raise CLIError(f"--rho={base['rho']} must be >= 0.")
    if base["n_clips"] < 8:
        raise CLIError(
            f"--n-clips={base['n_clips']} is too few to split into training and "
            "test clips; use at least 8."
        )
    return base


def _mfcc_features(waveforms, sr):
    import librosa

    mfcc = librosa.feature.mfcc(y=waveforms, sr=sr, n_mfcc=20)  # (n, 20, frames)
    delta = librosa.feature.delta(mfcc, axis=-1)
    parts = [mfcc.mean(-1), mfcc.std(-1), delta.mean(-1), delta.std(-1)]
    return np.concatenate(parts, axis=1)


def _scores(y_true, y_score):
    from sklearn_rfcnn.metrics import (
        mean_average_precision,
        pr_auc_macro,
        roc_auc_macro,
    )

    return {
        "mAP": mean_average_precision(y_true, y_score),
        "PR-AUC (trapezoid)": pr_auc_macro(y_true, y_score, method="trapezoid"),
        "ROC-AUC": roc_auc_macro(y_true, y_score),
    }


def _table(results):
    metrics = ["mAP", "PR-AUC (trapezoid)", "ROC-AUC"]
    w0 = max(len("model"), *(len(name) for name in results))
    widths = [max(len(m), 6) for m in metrics]
    head = "  ".join(
        ["model".ljust(w0)] + [m.rjust(w) for m, w in zip(metrics, widths)]
    )
    lines = [head, "-" * len(head)]
    for name, res in results.items():
        cells = [f"{res[m]:.3f}".rjust(w) for m, w in zip(metrics, widths)]
        lines.append("  ".join([name.ljust(w0), *cells]))
    return "\n".join(lines)


def _torch_threads():
    import torch

    return int(torch.get_num_threads())


def run(args):
    """Run the demo; returns 0 (library errors propagate to the CLI handler)."""
    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:6.1f}s] {message}", flush=True)

    cfg = _settings(args)
    out = Path(args.output).expanduser()
    if out.exists() and not out.is_dir():
        from sklearn_rfcnn.cli import CLIError

        raise CLIError(f"--output {str(out)!r} exists and is not a folder.")
    from sklearn_rfcnn.cli._model import check_device
    from sklearn_rfcnn.utils._atomic import check_writable_folder

    # the report folder must be writable before minutes of training
    check_writable_folder(out, what="--output")
    check_device(args.device)

    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from sklearn_rfcnn import __version__
    from sklearn_rfcnn.datasets import (
        make_instrument_mixtures,
        multilabel_train_test_split,
    )
    from sklearn_rfcnn.estimators import RFCNNClassifier, RFCNNEmbedder
    from sklearn_rfcnn.metrics import per_tag_report, per_tag_scores
    from sklearn_rfcnn.plotting import (
        plot_per_tag_scores,
        plot_receptive_field,
        plot_training_curve,
    )
    from sklearn_rfcnn.receptive_field import describe_receptive_field
    from sklearn_rfcnn.transformers import BandStandardizer, MelSpectrogram
    from sklearn_rfcnn.utils._torch import resolve_device

    device = resolve_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            from sklearn_rfcnn.cli import CLIError

            raise CLIError(f"--threads={args.threads} must be >= 1.")
        import torch

        torch.set_num_threads(args.threads)
    timing = {}
    mode = "quick" if args.quick else "default"
    log(f"sklearn-rfcnn {__version__} demo ({mode} size) on device {device!r}")

    # 1. data ------------------------------------------------------------------
    log(
        f"[1/6] instrument mixtures: {cfg['n_clips']} clips of "
        f"{cfg['duration']:g} s at {_SR} Hz (rendered once, then cached)"
    )
    t = time.perf_counter()
    data = make_instrument_mixtures(
        n_clips=cfg["n_clips"],
        duration=cfg["duration"],
        sr=_SR,
        instruments=cfg["instruments"],
        max_polyphony=cfg["max_polyphony"],
        random_state=args.random_state,
        data_home=args.data_home,
        verbose=sys.stderr.isatty(),
    )
    timing["data_s"] = time.perf_counter() - t
    tags = [str(t) for t in data.target_names]
    Y = data.target
    log(
        f"      {len(tags)} tags, {Y.sum(axis=1).mean():.2f} per clip; cache "
        f"{os.path.dirname(data.filenames[0])} ({timing['data_s']:.1f} s)"
    )

    # 2. split -----------------------------------------------------------------
    train, test = multilabel_train_test_split(
        Y, test_size=_TEST_FRACTION, random_state=args.random_state
    )
    log(f"[2/6] split: {len(train)} training clips, {len(test)} test clips")

    # 3. features --------------------------------------------------------------
    t = time.perf_counter()
    mel = MelSpectrogram(sr=_SR, n_fft=_N_FFT, hop_length=_HOP, n_mels=cfg["n_mels"])
    S = mel.fit_transform(data.waveforms)
    standardizer = BandStandardizer().fit(S[train])
    Z_train, Z_test = standardizer.transform(S[train]), standardizer.transform(S[test])
    mfcc = _mfcc_features(data.waveforms, _SR)
    timing["features_s"] = time.perf_counter() - t
    log(
        f"[3/6] features: perceptual mel spectrograms {S.shape[1:]} (mel bins x "
        f"frames), MFCC statistics ({mfcc.shape[1]} values) "
        f"({timing['features_s']:.1f} s)"
    )

    # 4. CNN -------------------------------------------------------------------
    clf = RFCNNClassifier(
        rho=cfg["rho"],
        width=cfg["width"],
        max_epochs=cfg["epochs"],
        **{k: cfg[k] for k in ("batch_size", "lr") if k in cfg},
        device=device,
        channels_last=channels_last_param(args),
        precision=args.precision,
        random_state=args.random_state,
        verbose=1,
    )
    log(
        f"[4/6] training CP-ResNet (rho={cfg['rho']}, width={cfg['width']}, "
        f"{cfg['epochs']} epochs, mix-up, time roll) on {len(train)} clips"
    )
    t = time.perf_counter()
    clf.fit(Z_train, Y[train])
    timing["train_cnn_s"] = time.perf_counter() - t
    rf = clf.receptive_field_
    description = describe_receptive_field(
        rf, sr=_SR, hop_length=_HOP, n_mels=cfg["n_mels"]
    )
    log(f"      trained in {timing['train_cnn_s']:.1f} s; {description}".rstrip())

    # 5. evaluation ------------------------------------------------------------
    log("[5/6] evaluating on the test clips")
    t = time.perf_counter()
    Y_test = Y[test]
    scores = {}
    cnn_name = f"CP-ResNet (rho={cfg['rho']}, width={cfg['width']})"
    scores[cnn_name] = clf.predict_proba(Z_test)
    baseline = OneVsRestClassifier(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    ).fit(mfcc[train], Y[train])
    scores["MFCC stats + LogReg"] = baseline.predict_proba(mfcc[test])
    embedder = RFCNNEmbedder.from_classifier(clf)
    E_train, E_test = embedder.transform(Z_train), embedder.transform(Z_test)
    svm = OneVsRestClassifier(make_pipeline(StandardScaler(), SVC(C=1.0))).fit(
        E_train, Y[train]
    )
    scores[f"CNN embedding ({E_train.shape[1]}-d) + SVM"] = svm.decision_function(
        E_test
    )
    results, per_tag = {}, {}
    with warnings.catch_warnings():
        # tags without a positive test clip (tiny --quick runs) are skipped
        warnings.simplefilter("ignore")
        for name, score in scores.items():
            results[name] = _scores(Y_test, score)
            per_tag[name] = per_tag_scores(Y_test, score, target_names=tags)[
                "average_precision"
            ]
        report_text = per_tag_report(Y_test, scores[cnn_name], target_names=tags)
    timing["evaluate_s"] = time.perf_counter() - t
    table = _table(results)
    print()
    print(table)
    print("(mAP = macro average precision = MediaEval's PR-AUC-macro)")
    print()

    # 6. report ----------------------------------------------------------------
    out.mkdir(parents=True, exist_ok=True)
    history = [
        {k: row.get(k) for k in ("epoch", "train_loss", "valid_loss", "dur")}
        for row in clf.history_
    ]
    plot_training_curve(
        history, ylabel="binary cross-entropy", path=out / "training_curve.png"
    )
    plot_per_tag_scores(
        per_tag, tags, chance=Y_test.mean(axis=0), path=out / "per_tag_ap.png"
    )
    example = int(test[np.argmax(Y_test.sum(axis=1))])
    example_tags = [tg for tg, on in zip(tags, Y[example]) if on]
    plot_receptive_field(
        S[example],
        description,
        subtitle=f"test clip tagged: {', '.join(example_tags) or 'none'}",
        path=out / "receptive_field.png",
    )
    (out / "per_tag_report.txt").write_text(
        f"{cnn_name} on {len(test)} test clips\n\n{report_text}\n"
    )
    timing["total_s"] = time.perf_counter() - start
    metrics = {
        "sklearn_rfcnn_version": __version__,
        "mode": mode,
        "device": device,
        "torch_threads": _torch_threads(),
        "config": {
            **cfg,
            "sr": _SR,
            "hop_length": _HOP,
            "n_fft": _N_FFT,
            "random_state": args.random_state,
            "channels_last": channels_last_param(args),
            "precision": args.precision,
        },
        "data": {
            "n_train": len(train),
            "n_test": len(test),
            "tags": tags,
            "test_positives": dict(zip(tags, Y_test.sum(axis=0).tolist())),
            "cache_folder": os.path.dirname(data.filenames[0]),
        },
        "receptive_field": {
            "pixels": {"freq": int(rf.freq), "time": int(rf.time)},
            "time_frames": int(description.time_frames),
            "time_seconds": float(description.time_seconds),
            "freq_bins": int(description.freq_bins),
            "hz_spans": {k: list(v) for k, v in description.hz_spans.items()},
        },
        "results": results,
        "per_tag_average_precision": {
            name: dict(zip(tags, [None if np.isnan(v) else float(v) for v in vals]))
            for name, vals in per_tag.items()
        },
        "history": history,
        "timing_s": timing,
        "notes": "mAP is the macro mean of per-tag average precision "
        "(sklearn.metrics.average_precision_score), which is MediaEval's "
        "PR-AUC-macro; 'PR-AUC (trapezoid)' integrates each precision-recall "
        "curve with the trapezoidal rule.",
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / "metrics.json")
    log(
        f"[6/6] report written to {out}/ (metrics.json, per_tag_report.txt, "
        "training_curve.png, per_tag_ap.png, receptive_field.png)"
    )
    log(f"done in {timing['total_s']:.1f} s")
    return 0
