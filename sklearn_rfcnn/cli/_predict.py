"""``rfcnn predict``: tag or classify audio files with a model from ``rfcnn fit``.

Writes a CSV with one row per file: its path, one probability column per tag
(or class), and the predicted tags (joined by ``;``) or class.  The numbers
are the saved pipeline's own ``predict_proba`` and ``predict``, so they equal
``sklearn_rfcnn.load_pipeline(MODEL).predict(files)``: a tag is predicted
where its probability exceeds the threshold, as
:meth:`RFCNNClassifier.predict <sklearn_rfcnn.RFCNNClassifier.predict>` does.
Text cells (paths, class names) that a spreadsheet would take for a formula
(starting with ``=``, ``+``, ``-``, ``@``) get a leading ``'``; the CSV may
not be written inside the model folder.
"""

import csv
import io
import sys
from pathlib import Path

from sklearn_rfcnn.cli._log import ProgressLog
from sklearn_rfcnn.cli._model import (
    add_model_and_audio_args,
    check_output_file,
    model_and_audio,
)

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


#: ``rfcnn predict --help``: the one-line help and the description.
HELP = "write a CSV of tag (or class) probabilities for audio files"
DESCRIPTION = (
    "Load a model folder written by 'rfcnn fit' and write a CSV "
    "with one row per audio file: 'path', one probability column per tag "
    "or class, and 'predicted' (the tags whose probability exceeds the "
    "threshold, joined "
    "by ';', or the most probable class). Folders among the inputs are "
    "searched recursively for wav/flac/ogg/mp3 files."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn predict`` to its parser."""
    add_model_and_audio_args(p, skipped_where="standard error")
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
        help="probability above which a tag is predicted (tagging models only; "
        "default: the threshold saved with the model)",
    )


#: A cell starting with one of these is a formula to spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text):
    """``text`` for a CSV cell, a leading ``'`` defusing formula-like starts.

    Class and tag names come from the model folder (its author may be a
    stranger) and paths from the file system: ``=HYPERLINK(...)`` must reach
    a spreadsheet as text (OWASP's advice on CSV injection).

    Examples
    --------
    >>> _cell("=1+1"), _cell("piano"), _cell("-x")
    ("'=1+1", 'piano', "'-x")
    """
    return "'" + text if text.startswith(_FORMULA_START) else text


def run(args):
    """Predict and write the CSV; returns 0."""
    from sklearn_rfcnn.cli import CLIError

    log = ProgressLog("stderr")

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise CLIError(f"--threshold={args.threshold} must lie in [0, 1].")
    if args.output != "-":
        out = Path(args.output).expanduser()
        check_output_file(out)
        if out.resolve().is_relative_to(Path(args.model).expanduser().resolve()):
            raise CLIError(
                f"-o/--output {args.output!r} lies inside the model folder "
                f"{args.model!r}; write the CSV elsewhere (the model's own files "
                "must stay as saved)."
            )
    pipe, metadata, paths, waves, kept = model_and_audio(args, log)
    model = pipe[1:]  # the saved pipeline after its AudioLoader
    clf_name, clf = pipe.steps[-1]
    if args.threshold is not None:
        model.set_params(**{f"{clf_name}__threshold": args.threshold})
    proba = model.predict_proba(waves)
    labels = model.predict(waves)
    if metadata.get("multilabel", labels.ndim == 2):
        names = list(metadata.get("target_names", [str(c) for c in clf.classes_]))
        predicted = [";".join(n for n, on in zip(names, row) if on) for row in labels]
    else:
        names = [str(c) for c in clf.classes_]
        predicted = [str(label) for label in labels]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_cell(c) for c in ("path", *names, "predicted")])
    for i, row, pred in zip(kept, proba, predicted):
        writer.writerow([_cell(str(paths[i])), *(f"{p:.6f}" for p in row), _cell(pred)])
    if args.output == "-":
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
    else:
        from sklearn_rfcnn.utils._atomic import atomic_file

        out = Path(args.output).expanduser()
        with atomic_file(out) as scratch:
            scratch.write_text(buf.getvalue(), encoding="utf-8")
        log(f"wrote {len(kept)} predictions to {out}")
    return 0
