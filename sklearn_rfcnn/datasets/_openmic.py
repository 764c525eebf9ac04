"""Loader of a local copy of OpenMIC-2018 (instrument tagging, partial labels)."""

import csv
import json

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.datasets._common import (
    _check_on_missing,
    _check_root,
    _missing_audio,
    _require_file,
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


def _read_key_list(path):
    with open(path, newline="") as fh:
        keys = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
    if keys and keys[0].lower() in ("sample_key", "key"):
        keys = keys[1:]
    return keys


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
        ``root`` or one of the files above is missing, or they disagree; the
        message shows the expected layout and where to get the data.

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
    except (OSError, ValueError) as exc:
        raise DataError(f"{name}: cannot read {str(npz_path)!r} ({exc}).") from exc
    try:
        class_map = json.loads(map_path.read_text())
        names = sorted(class_map, key=lambda k: int(class_map[k]))
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{name}: {str(map_path)!r} must be a JSON object mapping class "
            f"names to column indices ({exc})."
        ) from exc
    y_true = np.asarray(arrays["Y_true"], dtype=np.float64)
    y_mask = np.asarray(arrays["Y_mask"]).astype(bool)
    keys = np.asarray(arrays["sample_key"]).astype(str)
    if y_true.ndim != 2 or y_true.shape != y_mask.shape or len(keys) != len(y_true):
        raise DataError(
            f"{name}: Y_true {y_true.shape}, Y_mask {y_mask.shape} and sample_key "
            f"({len(keys)},) in {str(npz_path)!r} do not agree."
        )
    if y_true.shape[1] != len(names):
        raise DataError(
            f"{name}: class-map.json names {len(names)} classes but Y_true has "
            f"{y_true.shape[1]} columns."
        )
    split = np.full(len(keys), "", dtype=object)
    position = {k: i for i, k in enumerate(keys)}
    for part, path in parts.items():
        listed = _read_key_list(path)
        unknown = [k for k in listed if k not in position]
        if unknown:
            raise DataError(
                f"{name}: {str(path)!r} lists {len(unknown)} keys that are not in "
                f"openmic-2018.npz, e.g. {unknown[:3]}; are the partitions from "
                "the same release?"
            )
        for k in listed:
            split[position[k]] = part
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
