"""Input checks shared by the front-end transformers.

Every error names the offending clip (its index, or its path for files) and
says what to do about it; every error class comes from
:mod:`sklearn_rfcnn.exceptions`.
"""

import numpy as np

from sklearn_rfcnn.exceptions import DataError, InputTypeError
from sklearn_rfcnn.utils._validation import ConstraintError, ParamValidationMixin

__all__ = [
    "ConstraintError",
    "ParamValidationMixin",
    "as_signal_item",
    "check_finite_rows",
    "chunk_slices",
    "holds_strings",
    "is_sequence_of_arrays",
]


def is_sequence_of_arrays(X):
    """True for a list/tuple of numpy arrays: clips of possibly different lengths.

    Nested Python lists (``X.tolist()``) stay array-like, as everywhere in
    scikit-learn; only a list or tuple whose items are :class:`numpy.ndarray`
    is the variable-length form.

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


def holds_strings(X):
    """True when ``X`` is, or starts with, a path or string rather than numbers.

    Examples
    --------
    >>> holds_strings(["a.wav"]), holds_strings(np.zeros((2, 3)))
    (True, False)
    """
    if isinstance(X, str | bytes) or hasattr(X, "__fspath__"):
        return True
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "US" or (
            X.dtype.kind == "O" and X.size > 0 and isinstance(X.flat[0], str | bytes)
        )
    if isinstance(X, list | tuple) and len(X) > 0:
        first = X[0]
        return isinstance(first, str | bytes) or hasattr(first, "__fspath__")
    return False


def _name(X_name, index):
    return f"{X_name}[{index}]"


def as_signal_item(x, index, *, max_ndim=2, what="waveform", X_name="X"):
    """Check one item of a variable-length sequence and return it as float32.

    Parameters
    ----------
    x : array-like
        The item.
    index : int
        Its position, for messages.
    max_ndim : int, default=2
        Largest accepted rank (1 = one channel; 2 = ``(channels, samples)``).
    what : str, default="waveform"
        What the item is, for messages.
    X_name : str, default="X"
        How the input is called in messages.

    Returns
    -------
    x : np.ndarray of float32

    Examples
    --------
    >>> as_signal_item([0.0, 0.5], 0).dtype
    dtype('float32')
    """
    if isinstance(x, str | bytes) or hasattr(x, "__fspath__"):
        raise InputTypeError(
            f"{_name(X_name, index)} is a path ({x!r}), but this transformer takes "
            f"{what} arrays; decode files first with AudioLoader."
        )
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise InputTypeError(
            f"{_name(X_name, index)} is not a rectangular numeric array ({exc})."
        ) from None
    if arr.dtype.kind not in "biuf":
        raise InputTypeError(
            f"{_name(X_name, index)} has dtype {arr.dtype}, but a numeric {what} "
            "array is required."
        )
    if not 1 <= arr.ndim <= max_ndim:
        raise DataError(
            f"{_name(X_name, index)} has shape {arr.shape}; each item must be a "
            f"{what} with 1 to {max_ndim} dimensions."
        )
    if arr.size == 0 or arr.shape[-1] == 0:
        raise DataError(
            f"{_name(X_name, index)} is empty (shape {arr.shape}); remove it or "
            "replace it with a non-empty clip."
        )
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(
            f"{_name(X_name, index)} contains NaN or inf values; clean or drop that "
            "clip before transforming."
        )
    return arr


def check_finite_rows(X, X_name="X"):
    """Raise :class:`DataError` naming the rows of ``X`` that hold NaN or inf.

    Examples
    --------
    >>> check_finite_rows(np.zeros((2, 3)))
    >>> check_finite_rows(np.array([[0.0], [np.nan]]))
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.DataError: Input X contains NaN or inf in ...
    """
    finite = np.isfinite(X.reshape(X.shape[0], -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        shown = ", ".join(str(i) for i in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise DataError(
            f"Input {X_name} contains NaN or inf in {bad.size} clip(s) at index "
            f"[{shown}]; clean or drop those clips (e.g. X[np.isfinite(X)"
            ".all(axis=-1)]) before transforming."
        )


def chunk_slices(n_items, per_item, budget):
    """Split ``range(n_items)`` into slices of about ``budget // per_item`` items.

    Examples
    --------
    >>> chunk_slices(5, 10, 20)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    step = max(1, int(budget) // max(1, int(per_item)))
    return [slice(i, min(i + step, n_items)) for i in range(0, n_items, step)]
