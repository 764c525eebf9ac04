"""``rfcnn predict``: tag or classify audio files with a model from ``rfcnn fit``.

Writes a CSV with one row per file: its path, one probability column per tag
(or class), and the predicted tags (joined by ``;``) or class.
"""

import csv
import io
import sys
from pathlib import Path

import numpy as np

from sklearn_rfcnn.cli._model import (
    collect_audio_paths,
    extract_features,
    load_clips,
    load_model,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``predict`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "predict",
        help="write a CSV of tag (or class) probabilities for audio files",
        description="Load a model folder written by 'rfcnn fit' and write a CSV "
        "with one row per audio file: 'path', one probability column per tag "
        "or class, and 'predicted' (the tags at or above the threshold, joined "
        "by ';', or the most probable class). Folders among the inputs are "
        "searched recursively for wav/flac/ogg/mp3 files.",
    )
    p.add_argument("model", metavar="MODEL", help="model folder from 'rfcnn fit'")
    p.add_argument("inputs", metavar="AUDIO", nargs="+", help="audio files or folders")
    p.add_argument(
        "-o",
        "--output",
        default="-",
        help="CSV file to write; '-' writes to standard output (default: -)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="probability at or above which a tag is predicted (tagging models "
        "only; default: the model's threshold, 0.5)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave missing or unreadable files out (listed on standard error) "
        "instead of stopping with an error",
    )
    p.set_defaults(run=run)
    return p


def run(args):
    """Predict and write the CSV; returns 0."""
    from sklearn_rfcnn.cli import CLIError

    def log(message):
        print(message, file=sys.stderr, flush=True)

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise CLIError(f"--threshold={args.threshold} must lie in [0, 1].")
    model = load_model(args.model)
    paths = collect_audio_paths(args.inputs)
    waves, kept = load_clips(paths, model.loader, skip_bad=args.skip_bad, log=log)
    proba = model.classifier.predict_proba(extract_features(model, waves))
    multilabel = model.config["multilabel"]
    if multilabel:
        names = list(model.config["target_names"])
        threshold = (
            model.classifier.threshold if args.threshold is None else args.threshold
        )
        thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (len(names),))
        predicted = [
            ";".join(n for n, p, t in zip(names, row, thresholds) if p >= t)
            for row in proba
        ]
    else:
        names = [str(c) for c in model.classifier.classes_]
        predicted = [names[i] for i in np.argmax(proba, axis=1)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", *names, "predicted"])
    for i, row, pred in zip(kept, proba, predicted):
        writer.writerow([paths[i], *(f"{p:.6f}" for p in row), pred])
    if args.output == "-":
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
    else:
        out = Path(args.output).expanduser()
        out.write_text(buf.getvalue())
        log(f"wrote {len(kept)} predictions to {out}")
    return 0
