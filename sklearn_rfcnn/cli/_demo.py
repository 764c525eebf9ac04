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

from sklearn_rfcnn.cli._log import ProgressLog
from sklearn_rfcnn.cli._options import (
    add_device_args,
    add_epochs,
    add_random_state,
    channels_last_param,
)
from sklearn_rfcnn.receptive_field import DEFAULT_RHO

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

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


def _add_size_args(p):
    """The options that size the run (each overrides ``DEFAULTS`` / ``QUICK``)."""
    d = DEFAULTS
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


#: ``rfcnn demo --help``: the one-line help and the description.
HELP = (
    "train and evaluate a CP-ResNet tagger on the embedded dataset and write a report"
)
DESCRIPTION = (
    "Render the embedded instrument-mixture dataset (cached), "
    "train a CP-ResNet tagger, evaluate it on held-out clips beside an "
    "MFCC + logistic-regression baseline and beside CNN embeddings + SVM, "
    "print mAP / PR-AUC / ROC-AUC and write a report folder (metrics.json "
    "and PNG plots). The default size takes under 10 minutes on 2 CPU "
    "cores (the first run also renders and caches the clips, about a "
    "minute); --quick takes seconds."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn demo`` to its parser."""
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a tiny smoke-test run ({QUICK['n_clips']} clips of "
        f"{QUICK['duration']:g} s, {len(QUICK['instruments'])} tags, width "
        f"{QUICK['width']}, {QUICK['epochs']} epochs); explicit options below "
        "still override it",
    )
    _add_size_args(p)
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


def _check_run(args):
    """Every check that needs no data: settings, output folder, device, threads."""
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.cli._model import check_device
    from sklearn_rfcnn.utils._atomic import check_writable_folder

    cfg = _settings(args)
    out = Path(args.output).expanduser()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--output {str(out)!r} exists and is not a folder.")
    # the report folder must be writable before minutes of training
    check_writable_folder(out, what="--output")
    check_device(args.device)
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads={args.threads} must be >= 1.")
    return cfg, out


def _make_pipeline(cfg, args, device):
    """The demo's model: the library's front end and CNN as one Pipeline."""
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.transformers import BandStandardizer, MelSpectrogram

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
    mel = MelSpectrogram(sr=_SR, n_fft=_N_FFT, hop_length=_HOP, n_mels=cfg["n_mels"])
    return Pipeline([("mel", mel), ("norm", BandStandardizer()), ("clf", clf)])


def _render(cfg, args, log, timing):
    """Steps 1-2: the instrument mixtures (cached) and their train/test split."""
    from sklearn_rfcnn.datasets import (
        make_instrument_mixtures,
        multilabel_train_test_split,
    )

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
    log(
        f"      {len(data.target_names)} tags, "
        f"{data.target.sum(axis=1).mean():.2f} per clip; cache "
        f"{os.path.dirname(data.filenames[0])} ({timing['data_s']:.1f} s)"
    )
    train, test = multilabel_train_test_split(
        data.target, test_size=_TEST_FRACTION, random_state=args.random_state
    )
    log(f"[2/6] split: {len(train)} training clips, {len(test)} test clips")
    return data, train, test


def _train(pipe, data, train, test, cfg, log, timing):
    """Steps 3-4: the pipeline's front end, then its CNN; test spectrograms."""
    from sklearn_rfcnn.inspection import describe_pipeline

    t = time.perf_counter()
    front, clf = pipe[:-1], pipe[-1]
    Z_train = front.fit_transform(data.waveforms[train], data.target[train])
    Z_test = front.transform(data.waveforms[test])
    timing["features_s"] = time.perf_counter() - t
    log(
        f"[3/6] features: perceptual mel spectrograms {Z_train.shape[1:]} (mel "
        f"bins x frames) ({timing['features_s']:.1f} s)"
    )
    log(
        f"[4/6] training CP-ResNet (rho={cfg['rho']}, width={cfg['width']}, "
        f"{cfg['epochs']} epochs, the default recipe) on {len(train)} clips"
    )
    t = time.perf_counter()
    clf.fit(Z_train, data.target[train])
    timing["train_cnn_s"] = time.perf_counter() - t
    description = describe_pipeline(pipe)
    log(f"      trained in {timing['train_cnn_s']:.1f} s; {description}".rstrip())
    return Z_train, Z_test, description


def _compare(pipe, data, train, test, Z_train, Z_test, cfg):
    """Step 5's scores: the CNN, an MFCC baseline and CNN embeddings + SVM."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from sklearn_rfcnn.estimators import RFCNNEmbedder

    Y = data.target
    sr = pipe.named_steps["mel"].sr
    mfcc = _mfcc_features(data.waveforms, sr)
    cnn_name = f"CP-ResNet (rho={cfg['rho']}, width={cfg['width']})"
    scores = {cnn_name: pipe[-1].predict_proba(Z_test)}
    baseline = OneVsRestClassifier(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    ).fit(mfcc[train], Y[train])
    scores["MFCC stats + LogReg"] = baseline.predict_proba(mfcc[test])
    embedder = RFCNNEmbedder.from_classifier(pipe[-1])
    E_train, E_test = embedder.transform(Z_train), embedder.transform(Z_test)
    svm = OneVsRestClassifier(make_pipeline(StandardScaler(), SVC(C=1.0)))
    svm.fit(E_train, Y[train])
    name = f"CNN embedding ({E_train.shape[1]}-d) + SVM"
    scores[name] = svm.decision_function(E_test)
    return cnn_name, scores


def _evaluate(scores, cnn_name, Y_test, tags, timing, t):
    """Step 5's table: overall and per-tag scores of every model."""
    from sklearn_rfcnn.metrics import per_tag_report, per_tag_scores

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
    # the results table is output, not progress: no time stamps
    print(f"\n{_table(results)}")
    print("(mAP = macro average precision = MediaEval's PR-AUC-macro)\n")
    return results, per_tag, report_text


def _write_plots(out, pipe, data, test, per_tag, description, tags):
    """The report's three plots, each written whole (``utils._atomic``)."""
    from sklearn_rfcnn.plotting import (
        plot_per_tag_scores,
        plot_receptive_field,
        plot_training_curve,
    )
    from sklearn_rfcnn.utils._atomic import atomic_file

    history = _history(pipe[-1])
    Y_test = data.target[test]
    example = int(test[np.argmax(Y_test.sum(axis=1))])
    example_tags = [tg for tg, on in zip(tags, data.target[example]) if on]
    spectrogram = pipe.named_steps["mel"].transform(data.waveforms[[example]])[0]
    with atomic_file(out / "training_curve.png") as path:
        plot_training_curve(history, ylabel="binary cross-entropy", path=path)
    with atomic_file(out / "per_tag_ap.png") as path:
        plot_per_tag_scores(per_tag, tags, chance=Y_test.mean(axis=0), path=path)
    with atomic_file(out / "receptive_field.png") as path:
        plot_receptive_field(
            spectrogram,
            description,
            subtitle=f"test clip tagged: {', '.join(example_tags) or 'none'}",
            path=path,
        )


def _history(clf):
    return [
        {k: row.get(k) for k in ("epoch", "train_loss", "valid_loss", "dur")}
        for row in clf.history_
    ]


def _metrics(args, cfg, pipe, device, data, split, report):
    """``metrics.json``: settings (the front end's read from the pipeline)."""
    from sklearn_rfcnn import __version__

    train, test = split
    results, per_tag, description, timing = report
    tags = [str(t) for t in data.target_names]
    Y_test = data.target[test]
    mel = pipe.named_steps["mel"]
    rf = pipe[-1].receptive_field_
    return {
        "sklearn_rfcnn_version": __version__,
        "mode": "quick" if args.quick else "default",
        "device": device,
        "torch_threads": _torch_threads(),
        "config": {
            **cfg,
            "sr": mel.sr,
            "hop_length": mel.hop_length,
            "n_fft": mel.n_fft,
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
        "history": _history(pipe[-1]),
        "timing_s": timing,
        "notes": "mAP is the macro mean of per-tag average precision "
        "(sklearn.metrics.average_precision_score), which is MediaEval's "
        "PR-AUC-macro; 'PR-AUC (trapezoid)' integrates each precision-recall "
        "curve with the trapezoidal rule.",
    }


def run(args):
    """Run the demo; returns 0 (library errors propagate to the CLI handler)."""
    log = ProgressLog(elapsed=True)
    cfg, out = _check_run(args)
    from sklearn_rfcnn import __version__
    from sklearn_rfcnn.utils._atomic import atomic_file
    from sklearn_rfcnn.utils._torch import resolve_device

    device = resolve_device(args.device)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    timing = {}
    mode = "quick" if args.quick else "default"
    log(f"sklearn-rfcnn {__version__} demo ({mode} size) on device {device!r}")
    data, train, test = _render(cfg, args, log, timing)
    pipe = _make_pipeline(cfg, args, device)
    Z_train, Z_test, description = _train(pipe, data, train, test, cfg, log, timing)
    log("[5/6] evaluating on the test clips")
    t = time.perf_counter()
    cnn_name, scores = _compare(pipe, data, train, test, Z_train, Z_test, cfg)
    tags = [str(t) for t in data.target_names]
    results, per_tag, report_text = _evaluate(
        scores, cnn_name, data.target[test], tags, timing, t
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_plots(out, pipe, data, test, per_tag, description, tags)
    with atomic_file(out / "per_tag_report.txt") as path:
        path.write_text(f"{cnn_name} on {len(test)} test clips\n\n{report_text}\n")
    timing["total_s"] = log.seconds()
    report = (results, per_tag, description, timing)
    metrics = _metrics(args, cfg, pipe, device, data, (train, test), report)
    with atomic_file(out / "metrics.json") as path:
        path.write_text(json.dumps(metrics, indent=2))
    log(
        f"[6/6] report written to {out}/ (metrics.json, per_tag_report.txt, "
        "training_curve.png, per_tag_ap.png, receptive_field.png)"
    )
    log(f"done in {timing['total_s']:.1f} s")
    return 0
