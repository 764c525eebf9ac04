"""Input checks shared by the front-end transformers.

Every error names the offending clip (its index, or its path for files) and
says what to do about it; every error class comes from
:mod:`sklearn_rfcnn.exceptions`.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sklearn_rfcnn.exceptions import DataError, InputTypeError
from sklearn_rfcnn.utils._checks import (
    _reject_strings,
    is_sequence_of_arrays,
    is_stringlike,
    reject_non_finite,
)
from sklearn_rfcnn.utils._sklearn_compat import validate_data
from sklearn_rfcnn.utils._validation import ConstraintError, ParamValidationMixin

__all__ = [
    "ConstraintError",
    "ParamValidationMixin",
    "as_signal_item",
    "check_finite_rows",
    "check_signals",
    "chunk_slices",
    "is_sequence_of_arrays",
    "progress_bar",
    "thread_map",
]


def _escape(text):
    """``text`` as a literal :meth:`str.format` template."""
    return text.replace("{", "{{").replace("}", "}}")


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
    if is_stringlike(x):
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
    reject_non_finite(
        arr, _name(X_name, index), "clean or drop that clip before transforming."
    )
    return arr


def check_signals(
    estimator,
    X,
    *,
    reset,
    what,
    strings_hint,
    max_item_ndim,
    max_ndim,
    accepted,
    check_items=None,
):
    """Validate a front-end transformer's input: an array or a list of clips.

    Strings (paths) are refused with ``strings_hint``. A list or tuple of
    arrays is the variable-length form: every item is checked with
    :func:`as_signal_item` (up to ``max_item_ndim`` dimensions), then by
    ``check_items(items)`` when given; on ``reset`` a stale ``n_features_in_``
    is removed. Anything else goes through scikit-learn's ``validate_data``
    as float32 of at most ``max_ndim`` dimensions (``accepted`` says which
    shapes, for the message) and must be finite row by row.

    Returns
    -------
    kind : {"list", "array"}
    data : list of np.ndarray or np.ndarray
        The float32 items, or the validated array.
    """
    name = type(estimator).__name__
    _reject_strings(
        X,
        name,
        message=_escape(
            f"{name} takes {what}s, but X holds strings (file paths?); {strings_hint}"
        ),
    )
    if is_sequence_of_arrays(X):
        items = [
            as_signal_item(x, i, max_ndim=max_item_ndim, what=what)
            for i, x in enumerate(X)
        ]
        if check_items is not None:
            check_items(items)
        if reset and hasattr(estimator, "n_features_in_"):
            del estimator.n_features_in_
        return "list", items
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=np.float32,
        allow_nd=True,
        ensure_all_finite=False,
    )
    if X.ndim > max_ndim:
        raise DataError(f"X has shape {X.shape}; {name} takes {accepted}.")
    check_finite_rows(X)
    return "array", X


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
    flat = X.reshape(X.shape[0], -1)
    finite = np.empty(flat.shape[0], dtype=bool)
    # a few MB of booleans at a time, not one per sample of X
    for rows in chunk_slices(flat.shape[0], flat.shape[1], 2**22):
        np.isfinite(flat[rows]).all(axis=1, out=finite[rows])
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


def progress_bar(total, *, verbose, desc, unit="clip"):
    """A tqdm progress bar on stderr, disabled (and silent) when ``verbose`` is 0.

    Update it with ``bar.update(n)`` as work completes and close it (it is a
    context manager).

    Examples
    --------
    >>> with progress_bar(3, verbose=0, desc="clips") as bar:
    ...     bar.update(3)
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not verbose, leave=True)


#: Upper bounds of the items, and of their array bytes, one task carries to a
#: cluster (see thread_map); Dask warns about tasks over 10 MB.
_MAX_BATCH = 256
_MAX_BATCH_BYTES = 8 * 2**20
#: Tasks per worker that thread_map aims at on a cluster (load balancing).
_TASKS_PER_WORKER = 4


def thread_map(fn, items, n_jobs, *, batch_size=None):
    """``map(fn, items)`` on ``n_jobs`` workers; a generator of results in order.

    ``n_jobs`` counts as in joblib (``None``: 1 unless in a
    :func:`joblib.parallel_config` context; ``-1``: all processors). The
    threads come from the standard library's pool, not ``joblib.Parallel``:
    the front end's work releases the GIL either way, and a threaded
    ``Parallel`` call spends about 20 ms starting and stopping its pool, more
    than a clip takes. Items not yet started are cancelled when the generator
    is closed early (e.g. on an error).

    Inside ``joblib.parallel_config("dask")`` (or any backend that runs
    elsewhere, see :func:`~sklearn_rfcnn.utils._parallel.distributed_backend`)
    the items go through ``joblib.Parallel`` instead, to the cluster's
    workers, ``batch_size`` items per task: ``fn`` and each batch are pickled
    (with cloudpickle, so closures work), so ``fn`` must return its result
    rather than write into shared memory. ``n_jobs=1`` stays in this process,
    as in joblib.

    Parameters
    ----------
    fn : callable
        Applied to every item; what it raises propagates (on a cluster, the
        worker's exception, re-raised here), so it should name the item.
    items : iterable
    n_jobs : int or None
    batch_size : int or None, default=None
        Items per cluster task; None: about four tasks per worker, at most
        256 items and 8 MiB of arrays each (a clip takes 5--20 ms, a task
        some milliseconds to ship). Ignored on local threads.

    Yields
    ------
    result
        ``fn(item)``, in the order of ``items``.

    Examples
    --------
    >>> list(thread_map(abs, [-1, 2, -3], n_jobs=2))
    [1, 2, 3]
    """
    from joblib import effective_n_jobs

    from sklearn_rfcnn.utils._parallel import distributed_backend

    items = list(items)
    n_workers = effective_n_jobs(n_jobs)
    if n_workers > 1 and items and distributed_backend() is not None:
        yield from _joblib_map(fn, items, n_jobs, n_workers, batch_size)
        return
    n_threads = min(n_workers, len(items))
    if n_threads <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(n_threads, thread_name_prefix="sklearn_rfcnn")
    try:
        yield from pool.map(fn, items)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _nbytes(item):
    """The array bytes ``item`` carries (an array, or a tuple/list of them)."""
    if isinstance(item, np.ndarray):
        return item.nbytes
    if isinstance(item, (tuple, list)):
        return sum(x.nbytes for x in item if isinstance(x, np.ndarray))
    return 0


def _apply_batch(fn, batch):
    """One cluster task of :func:`thread_map`: ``fn`` over a batch of items."""
    return [fn(item) for item in batch]


def _joblib_map(fn, items, n_jobs, n_workers, batch_size):
    """:func:`thread_map` through ``joblib.Parallel`` (the configured backend)."""
    from joblib import Parallel, delayed

    from sklearn_rfcnn.utils._parallel import close_parallel_generator

    if batch_size is None:
        batch_size = -(-len(items) // (_TASKS_PER_WORKER * n_workers))
        per_item = sum(map(_nbytes, items)) / len(items)
        by_bytes = int(_MAX_BATCH_BYTES // per_item) if per_item else _MAX_BATCH
        batch_size = max(1, min(batch_size, by_bytes, _MAX_BATCH))
    batches = (items[i : i + batch_size] for i in range(0, len(items), batch_size))
    parallel = Parallel(n_jobs=n_jobs, batch_size=1, return_as="generator")
    results = parallel(delayed(_apply_batch)(fn, batch) for batch in batches)
    try:
        for batch in results:
            yield from batch
    finally:
        close_parallel_generator(results)
