"""``rfcnn embed``: CNN embeddings of audio files with a model from ``rfcnn fit``.

The trained CP-ResNet is used as a feature extractor
(:meth:`RFCNNEmbedder.from_classifier`): every file becomes its pooled
``4 * width``-dimensional embedding.  The embeddings go to a ``.npy`` file, and
the matching file paths, one per line, to ``<name>.paths.txt`` beside it.
"""

from pathlib import Path

import numpy as np

from sklearn_rfcnn.cli._log import ProgressLog
from sklearn_rfcnn.cli._model import (
    check_output_file,
    collect_audio_paths,
    load_clips,
    read_model,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``embed`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "embed",
        help="write CNN embeddings of audio files to a .npy file",
        description="Load a model folder written by 'rfcnn fit' and write the "
        "pooled CP-ResNet embedding of every audio file as a float32 array "
        "of shape (n_files, 4 * width) to OUTPUT (.npy), and the file paths in "
        "the same order, one per line, to OUTPUT with the suffix '.paths.txt'. "
        "Folders among the inputs are searched recursively for "
        "wav/flac/ogg/mp3 files.",
    )
    p.add_argument("model", metavar="MODEL", help="model folder from 'rfcnn fit'")
    p.add_argument("inputs", metavar="AUDIO", nargs="+", help="audio files or folders")
    p.add_argument("-o", "--output", required=True, help="the .npy file to write")
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave missing or unreadable files out (listed on standard error "
        "and absent from the paths file) instead of stopping with an error",
    )
    p.set_defaults(run=run)
    return p


def run(args):
    """Embed and write the arrays; returns 0."""
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.estimators import RFCNNEmbedder

    log = ProgressLog("stderr")

    out = Path(args.output).expanduser()
    if out.suffix != ".npy":
        raise CLIError(f"--output {str(out)!r} must end in .npy.")
    check_output_file(out)
    check_output_file(out.with_suffix(".paths.txt"), what="the paths file")
    pipe, _ = read_model(args.model)
    paths = collect_audio_paths(args.inputs)
    waves, kept = load_clips(paths, pipe[0], skip_bad=args.skip_bad, log=log)
    # the saved front end, then the trained network as a feature extractor
    embed = Pipeline(
        [
            *pipe.steps[1:-1],
            ("embed", RFCNNEmbedder.from_classifier(pipe.steps[-1][1])),
        ]
    )
    E = np.asarray(embed.transform(waves), np.float32)
    from sklearn_rfcnn.utils._atomic import atomic_file

    with atomic_file(out) as scratch:
        np.save(scratch, E)
    paths_file = out.with_suffix(".paths.txt")
    with atomic_file(paths_file) as scratch:
        scratch.write_text("".join(f"{paths[i]}\n" for i in kept), encoding="utf-8")
    log(f"wrote {E.shape[0]} x {E.shape[1]} embeddings to {out} (paths: {paths_file})")
    return 0
