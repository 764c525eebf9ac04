"""``rfcnn fit``: train a CP-ResNet on audio files and save it as a model folder.

The training data are either a folder with one sub-folder per class (GTZAN
style; single-label classification) or a CSV manifest of audio paths and
their labels or tags (see :func:`sklearn_rfcnn.datasets.load_manifest`).  The
saved folder is a :func:`sklearn_rfcnn.save_pipeline` folder of the whole
pipeline (audio front end and network), ready for ``rfcnn predict``,
``rfcnn embed`` and :func:`sklearn_rfcnn.load_pipeline`.
"""

import os
import warnings
from pathlib import Path

import numpy as np

from sklearn_rfcnn.cli._log import ProgressLog
from sklearn_rfcnn.cli._model import (
    check_device,
    check_output_folder,
    cli_language,
    load_clips,
)
from sklearn_rfcnn.cli._options import (
    add_frontend_args,
    add_network_args,
    check_options,
    frontend_flags,
    frontend_kwargs,
    network_flags,
    network_kwargs,
)

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


#: ``rfcnn fit --help``: the one-line help and the description.
HELP = "train a CP-ResNet on an audio folder or a CSV manifest and save it"
DESCRIPTION = (
    "Train a CP-ResNet classifier (one label per file) or tagger "
    "(several tags per file) and save it, with its audio front end, as a "
    "model folder for 'rfcnn predict' and 'rfcnn embed'. INPUT is a folder "
    "with one sub-folder per class (GTZAN style), or a CSV manifest with a "
    "header: 'path,label' (one class per file), 'path,tags' (tags joined by "
    "--separator) or 'path,<tag1>,<tag2>,...' (0/1 columns). Relative paths "
    "in a manifest are relative to its folder."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn fit`` to its parser."""
    p.add_argument("input", metavar="INPUT", help="class folder or CSV manifest")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL",
        help="model folder to write (created)",
    )
    p.add_argument(
        "--tags",
        default=None,
        help="comma-separated allowed tag (or class) set, in output order; a "
        "manifest row with a label outside it is an error (default: the labels "
        "found in the manifest)",
    )
    p.add_argument(
        "--separator",
        default=";",
        help="separator of the tags in a manifest's 'tags' column (default: ';')",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave missing or unreadable audio files out (and list them) "
        "instead of stopping with an error",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing model folder at MODEL",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no epoch table, only the summary"
    )
    p.add_argument(
        "--record-source-path",
        action="store_true",
        help="record INPUT's absolute path in the model's metadata (by default "
        "only its name is kept, so that a shared model does not reveal local "
        "paths)",
    )
    add_frontend_args(p)
    add_network_args(p, epochs=30, width=32)


def _read_input(args, log):
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.datasets import load_audio_folder, load_manifest
    from sklearn_rfcnn.exceptions import SkippedItemsWarning

    source = Path(args.input).expanduser()
    tags = None
    if args.tags is not None:
        tags = [t.strip() for t in args.tags.split(",") if t.strip()]
        if not tags:
            raise CLIError(f"--tags {args.tags!r} names no tag.")
    if source.is_dir():
        with cli_language():
            data = load_audio_folder(source)
        if tags is not None:
            unknown = sorted(set(data.target_names) - set(tags))
            if unknown:
                raise CLIError(
                    f"class folders {unknown} under {str(source)!r} are not in "
                    f"--tags {tags}."
                )
            data.target_names = np.array(tags, dtype=object)
        data.multilabel = False
        return data
    if not source.exists():
        from sklearn_rfcnn.utils._atomic import describe_missing

        raise CLIError(
            f"INPUT {str(source)!r} {describe_missing(source)}; pass a class "
            "folder or a CSV manifest."
        )
    if source.suffix.lower() not in (".csv", ".txt"):
        raise CLIError(
            f"INPUT {str(source)!r} is neither a folder nor a .csv manifest."
        )
    with warnings.catch_warnings(), cli_language():
        warnings.simplefilter("ignore", SkippedItemsWarning)
        try:
            data = load_manifest(
                source,
                tags=tags,
                separator=args.separator,
                on_missing="skip" if args.skip_bad else "raise",
            )
        except UnicodeDecodeError as exc:
            raise CLIError(
                f"manifest {str(source)!r} is not UTF-8 text ({exc.reason} at "
                f"byte {exc.start}); save it as UTF-8 (e.g. iconv -t UTF-8)."
            ) from None
    for path in data.skipped:
        log(f"  skipped {path}: file does not exist")
    return data


def run(args):
    """Train and save; returns 0 (errors propagate to the CLI's one-line handler)."""
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn import save_pipeline
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.inspection import describe_pipeline
    from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram

    log = ProgressLog()

    # everything that can be checked is checked before any file is read
    out = Path(args.output).expanduser()
    check_output_folder(out, overwrite=args.overwrite)
    check_device(args.device)
    loader_kwargs, mel_kwargs = frontend_kwargs(args)
    pipe = Pipeline(
        [
            ("load", AudioLoader(**loader_kwargs)),
            ("mel", MelSpectrogram(**mel_kwargs)),
            ("norm", BandStandardizer()),
            (
                "clf",
                RFCNNClassifier(**network_kwargs(args), verbose=0 if args.quiet else 1),
            ),
        ]
    )
    check_options(pipe, {**frontend_flags(), **network_flags()})
    data = _read_input(args, log)
    paths = list(data.filenames)
    waves, kept = load_clips(paths, pipe[0], skip_bad=args.skip_bad, log=log)
    y = data.target[kept]
    names = [str(t) for t in data.target_names]
    if data.multilabel:
        empty = [t for t, n in zip(names, y.sum(axis=0)) if n == 0]
        if empty:
            log(f"warning: tags {empty} have no positive training file")
        if len(y) < 2:
            raise CLIError("training needs at least 2 audio files.")
    elif len(set(y)) < 2:
        raise CLIError(
            f"training needs at least 2 classes; found only {sorted(set(y))}."
        )
    log(
        f"training on {len(y)} files, "
        f"{'tags' if data.multilabel else 'classes'}: {', '.join(names)}"
    )
    # The files are decoded once: the loader is fitted on the paths (it only
    # validates), the rest of the pipeline on the decoded clips.
    pipe[0].fit([paths[i] for i in kept])
    pipe[1:].fit(waves, y)
    metadata = {
        "target_names": names,
        "multilabel": bool(data.multilabel),
        "n_train": len(y),
        "source": (
            os.fspath(Path(args.input).expanduser().resolve())
            if args.record_source_path
            else Path(args.input).expanduser().resolve().name
        ),
    }
    # written whole beside MODEL and renamed into place: a reader, or a crash,
    # sees the old model or the new one, never a mix
    save_pipeline(pipe, out, metadata=metadata, overwrite=args.overwrite)
    desc = describe_pipeline(pipe)
    log(
        f"saved model to {out} (receptive field {desc.rf.freq} x {desc.rf.time} "
        f"px = {desc.time_seconds:.2f} s)"
    )
    return 0
