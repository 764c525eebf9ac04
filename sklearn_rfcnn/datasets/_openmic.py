"""Loader of a local copy of OpenMIC-2018 (instrument tagging, partial labels)."""

import csv
import io
import json
import re
import zipfile

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.datasets._common import (
    _check_on_missing,
    _check_root,
    _missing_audio,
    _read_text,
    _repeats,
    _require_file,
    _shorten,
)
from sklearn_rfcnn.exceptions import DataError

__all__ = ["load_openmic"]

_OPENMIC_LAYOUT = """\
Expected layout (OpenMIC-2018, https://zenodo.org/record/1432913, unpack
openmic-2018-v1.0.0.tgz):
    ROOT/openmic-2018.npz            (arrays Y_true, Y_mask, sample_key)
    ROOT/class-map.json              ({"accordion": 0, ...})
    ROOT/partitions/split01_train.csv, ROOT/partitions/split01_test.csv
    ROOT/audio/<first 3 characters of key>/<key>.ogg"""


_OPENMIC_DESCR = """\
OpenMIC-2018 (local copy)
-------------------------

20,000 ten-second Creative-Commons clips from the Free Music Archive with
crowd-sourced, partially observed labels for 20 instrument classes.

* ``target`` is the soft ``Y_true`` in [0, 1] (the mean annotator confidence),
  ``mask`` is ``Y_mask`` (True where the label is known).  The dataset's
  convention: **a tag counts as present where it is known and Y_true >= 0.5**,
  absent where known and ``Y_true < 0.5``, and unknown elsewhere; e.g.
  ``(bunch.target >= 0.5).astype(int)`` with ``bunch.mask`` for the metrics
  of :mod:`sklearn_rfcnn.metrics` (which apply the same rule).
* ``split`` is "train" or "test" from ``partitions/split01_*.csv``.

Humphrey, Durand and McFee, "OpenMIC-2018: an open dataset for multiple
instrument recognition", ISMIR 2018.

Root: {root}
"""


#: An OpenMIC sample key names ROOT/audio/<key[:3]>/<key>.ogg: no separators,
#: no parent references, so the file cannot lie outside the root.
_SAFE_KEY = re.compile(r"(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")


def _read_key_list(path, name, layout):
    text = _read_text(path, name, layout, "a CSV file of sample keys")
    rows = csv.reader(io.StringIO(text))
    keys = [row[0].strip() for row in rows if row and row[0].strip()]
    if keys and keys[0].lower() in ("sample_key", "key"):
        keys = keys[1:]
    return keys


def _read_class_map(path, n_columns, npz_path, name, layout):
    """Class names in column order, after checking the indices are 0..n-1."""
    text = _read_text(path, name, layout, "a JSON object")
    example = '{"accordion": 0, "banjo": 1, ...}'
    try:
        class_map = json.loads(text)
    except ValueError as exc:
        raise DataError(
            f"{name}: {str(path)!r} is not valid JSON ({exc}); it must be a JSON "
            f"object mapping class names to column indices, e.g. {example}."
            f"\n{layout}"
        ) from exc
    if not isinstance(class_map, dict) or not class_map:
        raise DataError(
            f"{name}: {str(path)!r} must be a JSON object mapping class names to "
            f"column indices, e.g. {example}; it holds "
            f"{type(class_map).__name__} {str(class_map)[:60]}.\n{layout}"
        )
    n = len(class_map)
    for cls, index in class_map.items():
        if isinstance(index, bool) or not isinstance(index, int):
            raise DataError(
                f"{name}: {str(path)!r} maps {cls!r} -> {index!r}, which is not an "
                f"integer column index; every class needs an integer index from 0 "
                f"to {n - 1}, e.g. {example}."
            )
    if n != n_columns:
        raise DataError(
            f"{name}: {str(path)!r} names {n} classes but Y_true in "
            f"{str(npz_path)!r} has {n_columns} columns; are both files from the "
            "same release?"
        )
    by_index = {}
    for cls, index in class_map.items():
        by_index.setdefault(index, []).append(cls)
    shared = sorted((i, c) for i, c in by_index.items() if len(c) > 1)
    if shared:
        index, names = shared[0]
        raise DataError(
            f"{name}: {str(path)!r} maps {' and '.join(map(repr, names))} to the "
            f"same column {index}; each of the {n} columns of Y_true needs its own "
            "class."
        )
    outside = [(c, i) for c, i in class_map.items() if not 0 <= i < n]
    if outside:
        listed = ", ".join(f"{c!r} -> {i}" for c, i in outside)
        raise DataError(
            f"{name}: {str(path)!r} maps {listed}; the column indices must be "
            f"exactly 0 to {n - 1} (one per column of Y_true), each used once."
        )
    return [by_index[j][0] for j in range(n)]


def _check_keys(keys, npz_path, name):
    """Every sample key is a safe OpenMIC key, and none repeats."""
    unsafe = [k for k in keys.tolist() if not _SAFE_KEY.fullmatch(k)]
    if unsafe:
        raise DataError(
            f"{name}: sample_key in {str(npz_path)!r} holds {len(unsafe)} key(s) "
            f"that are not OpenMIC sample keys (e.g. {unsafe[0]!r}): a key is a "
            "name like '000046_3840' (letters, digits, '_', '-', '.', no '..' "
            "and no '/'), so that its audio file stays under ROOT/audio. Is the "
            "archive from the official release?"
        )
    repeated = _repeats(keys.tolist())
    if repeated:
        listed = "; ".join(f"{k!r} at rows {rows}" for k, rows in repeated.items())
        raise DataError(
            f"{name}: sample_key in {str(npz_path)!r} repeats {len(repeated)} "
            f"key(s): {_shorten(listed)}; each clip must appear once (is the "
            "archive from one release?)."
        )


def _split_of_keys(keys, parts, name, layout):
    """The split of every sample key, from the partition files."""
    split = np.full(len(keys), "", dtype=object)
    position = {k: i for i, k in enumerate(keys)}
    listed_in = {}
    for part, path in parts.items():
        listed = _read_key_list(path, name, layout)
        unknown = [k for k in listed if k not in position]
        if unknown:
            raise DataError(
                f"{name}: {str(path)!r} lists {len(unknown)} keys that are not in "
                f"openmic-2018.npz, e.g. {unknown[:3]}; are the partitions from "
                "the same release?"
            )
        both = sorted({k for k in listed if k in listed_in})
        if both:
            raise DataError(
                f"{name}: {len(both)} key(s) are listed in both "
                f"{str(parts['train'])!r} and {str(path)!r}: {_shorten(both)}; a "
                "clip belongs to one split. Are both partition files from the "
                "same release?"
            )
        for k in listed:
            listed_in[k] = part
            split[position[k]] = part
    return split


def load_openmic(root, *, on_missing="raise"):
    """Load a local copy of OpenMIC-2018 (instrument tagging, partial labels).

    Parameters
    ----------
    root : str or path-like
        The unpacked ``openmic-2018`` folder (it holds ``openmic-2018.npz``,
        ``class-map.json``, ``partitions/`` and ``audio/``).
    on_missing : {"raise", "skip"}, default="raise"
        What to do when clips listed in the npz have no audio file: raise a
        :class:`~sklearn_rfcnn.exceptions.DataError` listing them, or leave them
        out with a :class:`~sklearn_rfcnn.exceptions.SkippedItemsWarning`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str, shape (n_clips,)
            ``root/audio/<key[:3]>/<key>.ogg``.
        target : ndarray of float, shape (n_clips, 20)
            The soft labels ``Y_true`` in [0, 1].
        mask : ndarray of bool, shape (n_clips, 20)
            ``Y_mask``: True where the label is known.
        target_names : ndarray of str, shape (20,)
            Instrument classes in ``class-map.json`` order.
        sample_key : ndarray of str, shape (n_clips,)
            OpenMIC sample keys, in ``openmic-2018.npz`` order.
        split : ndarray of str, shape (n_clips,)
            ``"train"``, ``"test"`` (split01), or ``""`` for a clip in neither.
        DESCR : str
            Notes the convention: a tag is present where known and
            ``Y_true >= 0.5``.

    Raises
    ------
    DataError
        ``root`` or one of the files above is missing, damaged (not a valid
        npz, not UTF-8 text, a folder in a file's place), or they disagree; the
        message names the file and shows the expected layout.  In particular:
        the indices of ``class-map.json`` must be exactly ``0 .. n-1``, each
        used once, with ``n`` the width of ``Y_true``; ``sample_key`` must not
        repeat a key; and no key may be listed in both partition files (the
        official split01 partitions are disjoint).  A key listed twice in the
        same partition file is harmless and accepted.

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     load_openmic(tempfile.gettempdir() + "/no-such-openmic")
    ... except ValueError as exc:
    ...     print(str(exc).split(" (this")[0])
    OpenMIC-2018 folder '...no-such-openmic' does not exist
    """
    _check_on_missing(on_missing)
    name, layout = "OpenMIC-2018", _OPENMIC_LAYOUT
    root = _check_root(root, name, layout)
    npz_path = _require_file(root / "openmic-2018.npz", name, layout)
    map_path = _require_file(root / "class-map.json", name, layout)
    parts = {
        split: _require_file(root / "partitions" / f"split01_{split}.csv", name, layout)
        for split in ("train", "test")
    }
    if not (root / "audio").is_dir():
        raise DataError(
            f"{name}: the audio folder {str(root / 'audio')!r} is missing.\n{layout}"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("Y_true", "Y_mask", "sample_key")}
    except KeyError as exc:
        raise DataError(
            f"{name}: {str(npz_path)!r} lacks the array {exc}; it must hold "
            f"Y_true, Y_mask and sample_key.\n{layout}"
        ) from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{name}: {str(npz_path)!r} is not a valid npz archive ({exc}); it may "
            f"be truncated or damaged: unpack the release again.\n{layout}"
        ) from exc
    try:
        y_true = np.asarray(arrays["Y_true"], dtype=np.float64)
        y_mask = np.asarray(arrays["Y_mask"]).astype(bool)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name}: Y_true and Y_mask in {str(npz_path)!r} must hold numbers "
            f"(soft labels in [0, 1] and a 0/1 mask) ({exc}).\n{layout}"
        ) from exc
    keys = np.asarray(arrays["sample_key"]).astype(str)
    if y_true.ndim != 2 or y_true.shape != y_mask.shape or len(keys) != len(y_true):
        raise DataError(
            f"{name}: Y_true {y_true.shape}, Y_mask {y_mask.shape} and sample_key "
            f"({len(keys)},) in {str(npz_path)!r} do not agree."
        )
    _check_keys(keys, npz_path, name)
    names = _read_class_map(map_path, y_true.shape[1], npz_path, name, layout)
    split = _split_of_keys(keys, parts, name, layout)
    filenames = np.array(
        [str(root / "audio" / k[:3] / f"{k}.ogg") for k in keys], dtype=object
    )
    keep = _missing_audio(filenames, on_missing, name, "\n" + layout)
    return Bunch(
        filenames=filenames[keep],
        target=y_true[keep],
        mask=y_mask[keep],
        target_names=np.array(names, dtype=object),
        sample_key=keys[keep].astype(object),
        split=split[keep],
        DESCR=_OPENMIC_DESCR.format(root=root),
    )
