"""Reader of CSV manifests of audio paths and their labels or tags."""

import csv
import io
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.datasets._common import (
    _check_on_missing,
    _missing_audio,
    _read_text,
)
from sklearn_rfcnn.exceptions import DataError

__all__ = ["load_manifest"]

_PATH_COLUMNS = ("path", "filename", "file")
_LAYOUT = (
    "A manifest is a UTF-8 CSV file with a header row: 'path,tags', "
    "'path,label' or 'path,<tag1>,<tag2>,...'."
)


def _check_duplicate_rows(filenames, target, path):
    """A file listed twice must carry the same labels both times."""
    first = {}
    for r, name in enumerate(filenames):
        key = os.path.normpath(name)
        if key not in first:
            first[key] = r
            continue
        r0 = first[key]
        if not np.array_equal(np.asarray(target[r0]), np.asarray(target[r])):
            raise DataError(
                f"manifest {str(path)!r}: {name!r} is listed on lines {r0 + 2} and "
                f"{r + 2} with different labels; keep one row per file."
            )


def _read_rows(path):
    """The manifest's header and non-empty rows, as stripped cells."""
    if path.is_dir():
        raise DataError(
            f"manifest {str(path)!r} is a folder; pass the CSV file itself. {_LAYOUT}"
        )
    if not path.exists():
        raise DataError(f"manifest {str(path)!r} does not exist.")
    text = _read_text(path, "manifest", _LAYOUT, "a CSV file")
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise DataError(
            f"manifest {str(path)!r} line {reader.line_num}: {exc} (a cell is "
            "too long or a quote is not closed); fix the row. " + _LAYOUT
        ) from None
    if not rows:
        raise DataError(f"manifest {str(path)!r} is empty; it needs a header row.")
    header = [h.strip() for h in rows[0]]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(
            f"manifest {str(path)!r}: the header names the columns {repeated} more "
            "than once, so their values cannot be told apart; rename or merge "
            "them."
        )
    return header, rows[1:]


def _columns(path, header, lower, body):
    """The path column and the label columns."""
    path_col = next((lower.index(c) for c in _PATH_COLUMNS if c in lower), None)
    if path_col is None:
        raise DataError(
            f"manifest {str(path)!r} has no path column (header {header}); name "
            "it 'path', 'filename' or 'file'."
        )
    if not body:
        raise DataError(f"manifest {str(path)!r} lists no audio files.")
    others = [j for j in range(len(header)) if j != path_col]
    if not others:
        raise DataError(
            f"manifest {str(path)!r} has no label column; add 'tags', 'label' or "
            "one 0/1 column per tag."
        )
    return path_col, others


def _filenames(path, header, body, path_col):
    """The audio paths, relative ones taken from the manifest's folder."""
    base = path.parent
    filenames = []
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"manifest {str(path)!r} line {i} has {len(row)} fields; the "
                f"header has {len(header)}."
            )
        p = Path(row[path_col].strip()).expanduser()
        filenames.append(str(p if p.is_absolute() else base / p))
    return filenames


def _known_labels(path, allowed):
    """A check that a label is in the given tag set (any label without one)."""

    def check_known(label, line):
        if allowed is not None and label not in allowed:
            import difflib

            close = difflib.get_close_matches(label, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"manifest {str(path)!r} line {line}: {label!r} is not in the tag "
                f"set {allowed}{hint}."
            )

    return check_known


def _tag_lists(path, body, j, separator, allowed, check_known):
    """``path,tags``: a 0/1 tag matrix and its tag names."""
    lists = [[t.strip() for t in row[j].split(separator) if t.strip()] for row in body]
    for line, labels in enumerate(lists, start=2):
        for label in labels:
            check_known(label, line)
    names = allowed or sorted({t for labels in lists for t in labels})
    if not names:
        raise DataError(f"manifest {str(path)!r} has no tags at all.")
    column = {t: k for k, t in enumerate(names)}
    target = np.zeros((len(body), len(names)), dtype=np.int64)
    for r, labels in enumerate(lists):
        target[r, [column[t] for t in labels]] = 1
    return target, names


def _labels(path, body, j, allowed, check_known):
    """``path,label``: one label per row and the class names."""
    labels = [row[j].strip() for row in body]
    for line, label in enumerate(labels, start=2):
        if not label:
            raise DataError(f"manifest {str(path)!r} line {line} has an empty label.")
        check_known(label, line)
    return np.array(labels, dtype=object), allowed or sorted(set(labels))


def _indicators(path, header, body, others, allowed):
    """``path,<tag1>,<tag2>,...``: the 0/1 columns, in the given tag set's order."""
    names = [header[j] for j in others]
    if allowed is not None:
        extra = [n for n in names if n not in allowed]
        if extra:
            raise DataError(
                f"manifest {str(path)!r} has tag columns {extra} that are not "
                f"in the tag set {allowed}."
            )
    target = np.zeros((len(body), len(names)), dtype=np.int64)
    for r, row in enumerate(body):
        for k, j in enumerate(others):
            cell = row[j].strip()
            if cell not in ("0", "1"):
                raise DataError(
                    f"manifest {str(path)!r} line {r + 2}, column "
                    f"{header[j]!r}: {cell!r} is not 0 or 1."
                )
            target[r, k] = int(cell)
    if allowed is not None:  # reorder/extend to the given tag set
        full = np.zeros((len(body), len(allowed)), dtype=np.int64)
        for k, n in enumerate(names):
            full[:, allowed.index(n)] = target[:, k]
        target, names = full, allowed
    return target, names


def load_manifest(path, *, tags=None, separator=";", on_missing="raise"):
    """Read a CSV manifest of audio paths and their labels or tags.

    Three layouts are understood (a header row is required; the path column is
    named ``path``, ``filename`` or ``file``; relative paths are relative to
    the manifest's folder):

    * ``path,tags`` -- multi-label: each row's tags joined by ``separator``
      (an empty cell means no tag);
    * ``path,label`` -- single-label (multi-class);
    * ``path,<tag1>,<tag2>,...`` -- multi-label as 0/1 columns.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    tags : sequence of str, default=None
        The allowed tag (or class) set, in column order.  A row naming a tag
        outside it raises.  ``None`` takes the sorted tags found in the file
        (or the 0/1 column names).
    separator : str, default=";"
        Separator of the tags inside a ``tags`` cell.
    on_missing : {"raise", "skip"}, default="raise"
        Raise on rows whose audio file does not exist, or leave them out with
        a :class:`~sklearn_rfcnn.exceptions.SkippedItemsWarning`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        filenames : ndarray of str
            Paths of the listed audio files.
        target : ndarray
            ``(n, n_tags)`` 0/1 ints for multi-label manifests, ``(n,)`` str
            labels for single-label ones.
        target_names : ndarray of str
            Tag or class names.
        multilabel : bool
            True for a tag matrix, False for single labels.
        skipped : list of str
            Paths left out (``on_missing="skip"``).

    Raises
    ------
    DataError
        The file is missing, a folder, not UTF-8 text or empty, lacks a path
        column, names a column twice, has a label outside ``tags``, a non-0/1
        indicator, a cell too long for the CSV reader, a file listed twice
        with different labels, or (by default) a missing audio file; the
        message names the row.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ["a.wav", "b.wav"]:
    ...         open(os.path.join(tmp, name), "wb").close()
    ...     with open(os.path.join(tmp, "train.csv"), "w") as fh:
    ...         _ = fh.write("path,tags\\na.wav,piano;drums\\nb.wav,piano\\n")
    ...     data = load_manifest(os.path.join(tmp, "train.csv"))
    >>> data.target.tolist(), data.target_names.tolist()
    ([[1, 1], [0, 1]], ['drums', 'piano'])
    """
    _check_on_missing(on_missing)
    path = Path(os.fspath(path)).expanduser()
    header, body = _read_rows(path)
    lower = [h.lower() for h in header]
    path_col, others = _columns(path, header, lower, body)
    filenames = _filenames(path, header, body, path_col)
    allowed = None if tags is None else [str(t) for t in tags]
    check_known = _known_labels(path, allowed)
    if len(others) == 1 and lower[others[0]] in ("tags", "label", "labels", "class"):
        j = others[0]
        multilabel = lower[j] in ("tags", "labels")
        if multilabel:
            target, names = _tag_lists(path, body, j, separator, allowed, check_known)
        else:
            target, names = _labels(path, body, j, allowed, check_known)
    else:
        multilabel = True
        target, names = _indicators(path, header, body, others, allowed)
    _check_duplicate_rows(filenames, target, path)
    filenames = np.array(filenames, dtype=object)
    keep = _missing_audio(
        filenames,
        on_missing,
        f"manifest {str(path)!r}",
        "(Relative paths are relative to the manifest's folder.)",
    )
    return Bunch(
        filenames=filenames[keep],
        target=target[keep],
        target_names=np.array(names, dtype=object),
        multilabel=multilabel,
        skipped=[str(f) for f in filenames[~keep]],
    )
