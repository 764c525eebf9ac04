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
    add_model_and_audio_args,
    check_output_file,
    model_and_audio,
)

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


#: ``rfcnn embed --help``: the one-line help and the description.
HELP = "write CNN embeddings of audio files to a .npy file"
DESCRIPTION = (
    "Load a model folder written by 'rfcnn fit' and write the "
    "pooled CP-ResNet embedding of every audio file as a float32 array "
    "of shape (n_files, 4 * width) to OUTPUT (.npy), and the file paths in "
    "the same order, one per line, to OUTPUT with the suffix '.paths.txt'. "
    "Folders among the inputs are searched recursively for "
    "wav/flac/ogg/mp3 files."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn embed`` to its parser."""
    add_model_and_audio_args(
        p, skipped_where="standard error and absent from the paths file"
    )
    p.add_argument("-o", "--output", required=True, help="the .npy file to write")


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
    pipe, _, paths, waves, kept = model_and_audio(args, log)
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
