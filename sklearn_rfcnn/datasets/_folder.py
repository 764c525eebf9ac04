"""Loader of a folder of audio files arranged one sub-folder per class."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.datasets._common import (
    AUDIO_EXTENSIONS,
    find_audio_files,
    is_audio_file,
)
from sklearn_rfcnn.exceptions import DataError, ParameterError

__all__ = ["load_audio_folder"]


def load_audio_folder(root):
    """Load a folder of audio files arranged one sub-folder per class.

    The GTZAN layout: ``root/<class>/<file>`` (files may sit in deeper
    sub-folders of their class folder).  Files with extensions
    :data:`AUDIO_EXTENSIONS` (wav, flac, ogg, mp3; any case) count as audio;
    other files and hidden files are ignored.

    Parameters
    ----------
    root : str or path-like
        The folder holding one sub-folder per class.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str, shape (n_files,)
            Sorted by class, then path.
        target : ndarray of str, shape (n_files,)
            The class (folder name) of each file.
        target_names : ndarray of str, shape (n_classes,)
            Sorted class names.
        DESCR : str
            Description of the collection.

    Raises
    ------
    DataError
        ``root`` does not exist or is a file, holds no class folder, holds audio files
        directly (not in a class folder), or a class folder holds no audio.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for genre in ["jazz", "rock"]:
    ...         os.mkdir(os.path.join(tmp, genre))
    ...         sf.write(os.path.join(tmp, genre, "a.wav"), np.zeros(80), 8000)
    ...     data = load_audio_folder(tmp)
    >>> data.target.tolist(), data.target_names.tolist()
    (['jazz', 'rock'], ['jazz', 'rock'])
    """
    layout = (
        "Expected one sub-folder per class holding that class's audio files "
        f"({', '.join(e[1:] for e in AUDIO_EXTENSIONS)}), e.g. GTZAN's "
        "genres/blues/blues.00000.wav."
    )
    if root is None:
        raise ParameterError("root=None; pass the folder of class sub-folders.")
    root = Path(os.fspath(root)).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(
            f"audio folder {str(root)!r} is a file, not a folder; pass the folder "
            f"that holds the class sub-folders. {layout}"
        )
    if not root.is_dir():
        raise DataError(f"audio folder {str(root)!r} does not exist. {layout}")
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and is_audio_file(p))
    if loose:
        raise DataError(
            f"{str(root)!r} holds audio files directly (e.g. {loose[0]!r}); put "
            f"them in class sub-folders. {layout}"
        )
    classes = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not classes:
        raise DataError(f"{str(root)!r} holds no class sub-folders. {layout}")
    filenames, target, empty = [], [], []
    for cls in classes:
        files = find_audio_files(root / cls)
        if not files:
            empty.append(cls)
        filenames += files
        target += [cls] * len(files)
    if empty:
        raise DataError(
            f"class folder(s) {empty} under {str(root)!r} hold no audio files; "
            f"remove them or add audio. {layout}"
        )
    return Bunch(
        filenames=np.array(filenames, dtype=object),
        target=np.array(target, dtype=object),
        target_names=np.array(classes, dtype=object),
        DESCR=(
            f"Audio folder {root}: {len(filenames)} files in {len(classes)} "
            f"classes ({', '.join(classes)}), one sub-folder per class."
        ),
    )
