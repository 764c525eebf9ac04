"""The command line's model folder and audio input, over public library calls.

A model folder written by ``rfcnn fit`` and read by ``rfcnn predict`` /
``rfcnn embed`` is exactly a :func:`sklearn_rfcnn.save_pipeline` folder of the
pipeline ``AudioLoader -> MelSpectrogram -> BandStandardizer ->
RFCNNClassifier``, with the tag names and training facts as its metadata; so
``sklearn_rfcnn.load_pipeline(MODEL)`` gives the very pipeline the CLI uses.
Nothing is pickled.
"""

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "LEGACY_MODEL_FILE",
    "add_model_and_audio_args",
    "check_device",
    "check_output_file",
    "check_output_folder",
    "cli_language",
    "collect_audio_paths",
    "load_clips",
    "model_and_audio",
    "read_model",
]

#: The description file of model folders written before ``save_pipeline``.
LEGACY_MODEL_FILE = "rfcnn-model.json"


def _cli_error(message):
    from sklearn_rfcnn.cli import CLIError

    return CLIError(message)


_SKIP = re.compile(r"on_(?:error|missing)=(['\"])skip\1")


@contextmanager
def cli_language():
    """Re-raise library data errors in the command line's words.

    The library suggests ``on_error='skip'`` / ``on_missing='skip'``; on the
    command line that option is ``--skip-bad``.
    """
    from sklearn_rfcnn.exceptions import DataError

    try:
        yield
    except DataError as exc:
        message = str(exc)
        if not _SKIP.search(message):
            raise
        raise _cli_error(_SKIP.sub("--skip-bad", message)) from exc


def check_device(device):
    """Fail at once on a ``--device`` torch does not know, or an absent GPU."""
    import torch

    from sklearn_rfcnn.utils._torch import resolve_device

    if device in (None, "auto"):
        return
    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise _cli_error(
            f"--device {device!r} is not a torch device; use auto, cpu, cuda, "
            "cuda:N or mps."
        ) from None
    resolve_device(device)  # ParameterError when CUDA is asked for but absent


def check_output_file(path, *, what="-o/--output", overwrite=True):
    """Fail before any work when the output file ``path`` cannot be written."""
    from sklearn_rfcnn.utils._atomic import check_writable_file

    path = Path(path)
    check_writable_file(path, what=what)
    if not overwrite and os.path.lexists(path):
        raise _cli_error(
            f"{what} {str(path)!r} already exists; pass --overwrite to replace it."
        )


# --------------------------------------------------------------------------
# audio
# --------------------------------------------------------------------------


def collect_audio_paths(items):
    """Expand files and folders (recursively, audio files only) to paths."""
    from sklearn_rfcnn.datasets import AUDIO_EXTENSIONS, find_audio_files

    paths = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = find_audio_files(path)
            if not found:
                raise _cli_error(
                    f"folder {str(path)!r} holds no audio files "
                    f"({', '.join(e[1:] for e in AUDIO_EXTENSIONS)})."
                )
            paths += found
        else:
            paths.append(str(path))
    if not paths:
        raise _cli_error("no audio files given.")
    return paths


def load_clips(paths, loader, *, skip_bad, log):
    """Decode ``paths`` with a copy of ``loader``; returns ``(waveforms, kept)``.

    Without ``skip_bad`` the first missing or corrupt file raises a one-line
    error naming it; with it, bad files are left out and listed through
    ``log``.  ``loader`` itself is not changed (a saved pipeline keeps
    ``on_error="raise"``).
    """
    from sklearn.base import clone

    from sklearn_rfcnn.exceptions import SkippedItemsWarning
    from sklearn_rfcnn.utils._atomic import describe_missing

    if not skip_bad:
        missing = [(i, p) for i, p in enumerate(paths) if not os.path.isfile(p)]
        if missing:
            index, first = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise _cli_error(
                f"audio file {first!r} (input {index}) {describe_missing(first)}"
                f"{more}; fix the path or pass --skip-bad to leave missing and "
                "unreadable files out."
            )
        reader = clone(loader).set_params(on_error="raise")
        with cli_language():
            result = reader.fit(paths).load(paths)
    else:
        reader = clone(loader).set_params(on_error="skip")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedItemsWarning)
            result = reader.fit(paths).load(paths)
        for _index, item, reason in result.skipped:
            log(f"  skipped {os.fsdecode(item)}: {_SKIP.sub('--skip-bad', reason)}")
        if result.skipped:
            log(f"skipped {len(result.skipped)} of {len(paths)} files (--skip-bad)")
    return result.data, result.kept


# --------------------------------------------------------------------------
# model folder
# --------------------------------------------------------------------------


def check_output_folder(folder, *, overwrite, what="-o/--output"):
    """Fail before any work when the model folder ``folder`` cannot be written.

    Refused: a file (or other non-folder) at ``folder``; a path where no
    folder can be created (a read-only or special file system such as
    ``/sys`` or ``/proc``); a non-empty folder that is not a model folder (it
    is never replaced); a model folder without ``--overwrite``.
    """
    from sklearn_rfcnn.utils._atomic import check_writable_folder

    folder = Path(folder)
    check_writable_folder(folder, what=what)
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / "pipeline.json").is_file():
            raise _cli_error(
                f"{what} {str(folder)!r} is a folder that holds no model "
                "(no pipeline.json); only a model folder is ever replaced, so "
                "choose a new path."
            )
        if not overwrite:
            raise _cli_error(
                f"model folder {str(folder)!r} already exists; pass --overwrite "
                "to replace it (only a model folder is ever replaced)."
            )


def read_model(folder):
    """``(pipeline, metadata)`` of a model folder written by ``rfcnn fit``."""
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn import load_pipeline
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.transformers import AudioLoader

    folder = Path(folder).expanduser()
    if (folder / LEGACY_MODEL_FILE).is_file() and not (
        folder / "pipeline.json"
    ).is_file():
        raise _cli_error(
            f"{str(folder)!r} was written by an older 'rfcnn fit' (before model "
            "folders became sklearn_rfcnn.save_pipeline folders); train it again "
            "with 'rfcnn fit'."
        )
    pipe, metadata = load_pipeline(folder, return_metadata=True)
    if not (
        isinstance(pipe, Pipeline)
        and len(pipe) >= 2
        and isinstance(pipe[0], AudioLoader)
        and isinstance(pipe[-1], RFCNNClassifier)
    ):
        raise _cli_error(
            f"{str(folder)!r} holds a saved pipeline that does not run from audio "
            "files to an RFCNNClassifier (AudioLoader -> ... -> RFCNNClassifier); "
            "'rfcnn predict' and 'rfcnn embed' need one written by 'rfcnn fit'."
        )
    return pipe, metadata


def add_model_and_audio_args(p, *, skipped_where):
    """The arguments of a command that runs a saved model on audio files.

    ``MODEL`` (a folder from ``rfcnn fit``), ``AUDIO ...`` (files or folders)
    and ``--skip-bad``; ``skipped_where`` says where skipped files are listed.
    """
    p.add_argument("model", metavar="MODEL", help="model folder from 'rfcnn fit'")
    p.add_argument("inputs", metavar="AUDIO", nargs="+", help="audio files or folders")
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help=f"leave missing or unreadable files out (listed on {skipped_where}) "
        "instead of stopping with an error",
    )


def model_and_audio(args, log):
    """The saved pipeline and the decoded audio of ``args``.

    Returns ``(pipe, metadata, paths, waves, kept)``: ``waves`` are the clips
    of ``paths[kept]`` after the pipeline's loader.
    """
    pipe, metadata = read_model(args.model)
    paths = collect_audio_paths(args.inputs)
    waves, kept = load_clips(paths, pipe[0], skip_bad=args.skip_bad, log=log)
    return pipe, metadata, paths, waves, kept
