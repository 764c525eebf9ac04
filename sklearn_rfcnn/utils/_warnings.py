"""Warnings of many similar fits, shown once per kind."""

import warnings
from contextlib import contextmanager

__all__ = ["warnings_once"]


@contextmanager
def warnings_once(what="fits"):
    """Show each kind of warning raised inside the block once, with a count.

    A search or cross-validation repeats the same warning for every fold and
    trial, each time with slightly different text (the tags of that fold);
    this shows the first of each kind, a category raised from one line of
    code, once the block ends, followed by how many similar ones there were.
    The warning filters in force outside the block still apply to what is
    shown ("ignore" and "error" included).

    Parameters
    ----------
    what : str, default="fits"
        What the block repeats, for the count's wording.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as shown:
    ...     warnings.simplefilter("always")
    ...     with warnings_once("folds"):
    ...         for fold in range(3):
    ...             warnings.warn(f"fold {fold}: tag 4 has no positive example")
    >>> [str(w.message) for w in shown]
    ['fold 0: tag 4 has no positive example (and 2 similar warnings in these folds)']
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    kinds = {}
    for w in caught:
        key = (w.category, w.filename, w.lineno)
        kinds.setdefault(key, []).append(w)
    for (category, filename, lineno), similar in kinds.items():
        message = similar[0].message
        if len(similar) > 1:
            text = (
                f"{message} (and {len(similar) - 1} similar warnings in these {what})"
            )
            try:
                message = category(text)
            except Exception:  # a warning class that needs more arguments
                pass
        warnings.warn_explicit(message, category, filename, lineno)
