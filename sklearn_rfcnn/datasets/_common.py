"""What the dataset loaders share: audio extensions, root and file checks.

Nothing here downloads: each loader reads a folder in the dataset's official
layout and, when something is missing, raises an error that says where to get
the data and which layout is expected.
"""

import io
import os
import warnings
from pathlib import Path

import numpy as np

from sklearn_rfcnn.exceptions import DataError, ParameterError, SkippedItemsWarning
from sklearn_rfcnn.utils._files import read_regular

__all__ = ["AUDIO_EXTENSIONS", "find_audio_files", "is_audio_file"]

#: File name extensions (lower case) the loaders treat as audio.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
#: Manifests and key lists larger than this are refused before they are read.
MAX_TEXT_BYTES = 1 << 30


def is_audio_file(path):
    """Whether ``path`` names an audio file the loaders read.

    Parameters
    ----------
    path : str or path-like
        A file name (the file need not exist).

    Returns
    -------
    bool
        True when the extension is one of :data:`AUDIO_EXTENSIONS` (any case)
        and the name is not hidden (does not start with ``.``).

    Examples
    --------
    >>> is_audio_file("a/b/Song.FLAC"), is_audio_file("a/.song.wav")
    (True, False)
    >>> is_audio_file("notes.txt")
    False
    """
    path = Path(os.fspath(path))
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def find_audio_files(root):
    """All audio files under a folder, recursively, sorted.

    The filter every loader applies (:func:`is_audio_file`): extensions
    :data:`AUDIO_EXTENSIONS` in any case, hidden files left out.

    Parameters
    ----------
    root : str or path-like
        An existing folder.

    Returns
    -------
    paths : list of str
        Sorted paths of the audio files (empty when there is none).

    Raises
    ------
    DataError
        ``root`` does not exist or is not a folder.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.mkdir(os.path.join(tmp, "jazz"))
    ...     for name in ["jazz/b.wav", "a.MP3", "notes.txt", ".hidden.wav"]:
    ...         open(os.path.join(tmp, name), "wb").close()
    ...     [os.path.relpath(p, tmp) for p in find_audio_files(tmp)]
    ['a.MP3', 'jazz/b.wav']
    """
    root = Path(os.fspath(root)).expanduser()
    if not root.is_dir():
        raise DataError(
            f"audio folder {str(root)!r} does not exist or is not a folder."
        )
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and is_audio_file(p))


def _check_root(root, name, layout):
    if root is None:
        raise ParameterError(f"root=None; pass the folder of your local {name} copy.")
    path = Path(os.fspath(root)).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(
            f"{name} folder {str(path)!r} is a file, not a folder; pass the "
            f"folder that holds the dataset.\n{layout}"
        )
    if not path.is_dir():
        raise DataError(
            f"{name} folder {str(path)!r} does not exist (this loader never "
            f"downloads).\n{layout}"
        )
    return path


def _require_file(path, name, layout):
    if path.is_dir():
        raise DataError(
            f"{name}: {str(path)!r} is a folder, but the layout needs a file "
            f"there; remove or rename the folder and put the file in its "
            f"place.\n{layout}"
        )
    if not path.is_file():
        raise DataError(f"{name}: {str(path)!r} is missing.\n{layout}")
    return path


def _read_text(path, name, layout, what="a text file"):
    """The UTF-8 text of ``path`` (newlines made ``\\n``), or a DataError naming it."""
    if Path(path).is_dir():
        raise DataError(
            f"{name}: {str(path)!r} is a folder, but the layout needs {what} "
            f"there.\n{layout}"
        )
    try:
        data = read_regular(path, str(path), max_bytes=MAX_TEXT_BYTES)
    except DataError as exc:
        raise DataError(f"{name}: cannot read it: {exc}\n{layout}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: {str(path)!r} is not UTF-8 text ({exc}); it should be "
            f"{what}. Is it the right file, or damaged (re-download it)?\n{layout}"
        ) from exc
    return io.StringIO(text, newline=None).read()


def _check_on_missing(on_missing):
    if on_missing not in ("raise", "skip"):
        raise ParameterError(f"on_missing={on_missing!r} must be 'raise' or 'skip'.")


def _missing_audio(filenames, on_missing, name, layout):
    """Boolean keep-mask over ``filenames``; raises or warns about missing ones."""
    exists = np.array([os.path.isfile(f) for f in filenames], dtype=bool)
    missing = [str(f) for f, ok in zip(filenames, exists) if not ok]
    if not missing:
        return exists
    listed = ", ".join(
        repr(m) + (" (a folder, not a file)" if os.path.isdir(m) else "")
        for m in missing[:3]
    )
    listed += ", ..." if len(missing) > 3 else ""
    if on_missing == "raise":
        raise DataError(
            f"{name}: {len(missing)} of {len(filenames)} audio files are missing "
            f"(e.g. {listed}); complete the download or fix the paths, or pass "
            f"on_missing='skip' to leave those items out. {layout}".rstrip()
        )
    warnings.warn(
        f"{name}: skipped {len(missing)} of {len(filenames)} items whose audio "
        f"is missing (on_missing='skip'): {listed}",
        SkippedItemsWarning,
        stacklevel=3,
    )
    return exists


def _shorten(items, limit=10):
    """``items`` for a message: a list of at most ``limit`` items, or a string."""
    if isinstance(items, str):
        return items if len(items) <= 400 else items[:400] + " ..."
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{items[:limit]}{more}"


def _repeats(values):
    """``{value: [positions]}`` of the values that occur more than once."""
    where = {}
    for i, v in enumerate(values):
        where.setdefault(v, []).append(i)
    return {v: rows for v, rows in where.items() if len(rows) > 1}
