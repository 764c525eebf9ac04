"""Input-form checks shared by the front end and the estimators.

One place for the questions every layer that takes ``X`` asks first: does
``X`` hold strings (file paths given where arrays are expected)?  Is it a
sequence of arrays (clips of their own lengths) rather than one array?  Only
numpy and :mod:`sklearn_rfcnn.exceptions` are imported.
"""

import os

import numpy as np

from sklearn_rfcnn.exceptions import DataError, InputTypeError

__all__ = [
    "_is_ragged",
    "_reject_strings",
    "first_string",
    "is_sequence_of_arrays",
    "is_stringlike",
    "reject_non_finite",
]

#: The estimators' message for :func:`_reject_strings`.
_SPECTROGRAM_MESSAGE = (
    "{name} expects spectrogram arrays, but X holds strings (e.g. {first!r}). "
    "To classify audio files, put AudioLoader and MelSpectrogram in front of it "
    "in a Pipeline."
)


def is_stringlike(obj):
    """True for a ``str``, ``bytes`` or path-like object (``os.PathLike``).

    Examples
    --------
    >>> from pathlib import Path
    >>> is_stringlike("a.wav"), is_stringlike(Path("a.wav")), is_stringlike(1.0)
    (True, True, False)
    """
    return isinstance(obj, str | bytes | os.PathLike)


def first_string(X):
    """The first string or path in ``X``, or ``None`` when ``X`` holds numbers.

    ``X`` itself may be a string or path; a numpy array of strings (or an
    object array whose first item is one) or a list/tuple whose first item
    is one all count.  An empty string array yields ``""``.

    Parameters
    ----------
    X : object
        A string or path, an array, or a list or tuple.

    Returns
    -------
    first : str, bytes, os.PathLike or None

    Examples
    --------
    >>> first_string(["a.wav", "b.wav"])
    'a.wav'
    >>> first_string(np.zeros((2, 3))) is None
    True
    """
    if is_stringlike(X):
        return X
    if isinstance(X, np.ndarray):
        if X.dtype.kind in "US":
            return X.ravel()[0] if X.size else ""
        if X.dtype == object and X.size and is_stringlike(X.ravel()[0]):
            return X.ravel()[0]
        return None
    if isinstance(X, list | tuple) and len(X) and is_stringlike(X[0]):
        return X[0]
    return None


def _reject_strings(X, name, *, message=_SPECTROGRAM_MESSAGE):
    """Raise :class:`InputTypeError` when ``X`` holds strings (e.g. file paths).

    Parameters
    ----------
    X : object
        The input to check.
    name : str
        The estimator's class name, for the message.
    message : str, optional
        A format string with the fields ``{name}`` and ``{first}`` (the first
        string found); by default the estimators' message, which points to
        ``AudioLoader`` and ``MelSpectrogram``.

    Raises
    ------
    InputTypeError
        When :func:`first_string` finds a string or path in ``X``.

    Examples
    --------
    >>> _reject_strings(np.zeros((2, 3)), "RFCNNClassifier")
    >>> _reject_strings(["a.wav"], "RFCNNClassifier")
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.InputTypeError: RFCNNClassifier expects ...
    """
    first = first_string(X)
    if first is None:
        return
    shown = first if isinstance(first, bytes) else os.fspath(first)
    raise InputTypeError(message.format(name=name, first=shown))


def is_sequence_of_arrays(X):
    """True for a list/tuple of numpy arrays: clips of possibly different lengths.

    Nested Python lists (``X.tolist()``) stay array-like, as everywhere in
    scikit-learn; only a list or tuple whose items are :class:`numpy.ndarray`
    is the variable-length form (the front end's test: equal lengths still
    travel as a list).

    Parameters
    ----------
    X : object
        The input to inspect.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_sequence_of_arrays([np.zeros(3), np.zeros(5)])
    True
    >>> is_sequence_of_arrays([[0.0, 1.0], [2.0, 3.0]])
    False
    >>> is_sequence_of_arrays(np.zeros((2, 3)))
    False
    """
    return (
        isinstance(X, list | tuple)
        and len(X) > 0
        and all(isinstance(x, np.ndarray) for x in X)
    )


def _is_ragged(X):
    """True for a sequence of arrays whose shapes are not all equal.

    The estimators' test: a list of equal-shape clips is stacked into one
    array, only clips of different shapes stay a list.  Anything else (an
    array, a list of non-arrays, an empty list) is not ragged.

    Examples
    --------
    >>> _is_ragged([np.zeros((2, 3)), np.zeros((2, 5))])
    True
    >>> _is_ragged([np.zeros((2, 3)), np.zeros((2, 3))])
    False
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        return False
    if not isinstance(X, list | tuple | np.ndarray) or len(X) == 0:
        return False
    if not all(hasattr(x, "shape") for x in X):
        return False
    return len({tuple(x.shape) for x in X}) > 1


def reject_non_finite(values, what, fix):
    """Raise :class:`DataError` if ``values`` holds NaN or inf.

    The one message for a clip that is not finite: ``"{what} contains NaN or
    inf values; {fix}"``, so every layer names the clip and the remedy alike.

    Parameters
    ----------
    values : array-like
        The clip (or array) to check.
    what : str
        Names the clip, e.g. ``"X[3]"`` or ``"clip 2 of the store"``.
    fix : str
        What the user should do about it.

    Examples
    --------
    >>> reject_non_finite(np.zeros(3), "X[0]", "drop that clip.")
    >>> reject_non_finite(np.array([0.0, np.nan]), "X[1]", "drop that clip.")
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.DataError: X[1] contains NaN or inf values; drop that clip.
    """
    if not np.isfinite(values).all():
        raise DataError(f"{what} contains NaN or inf values; {fix}")
