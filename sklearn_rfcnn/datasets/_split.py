"""A train/test split for multi-label tag matrices that keeps every tag testable."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from sklearn_rfcnn.exceptions import DataError, ParameterError

__all__ = ["multilabel_train_test_split"]


def multilabel_train_test_split(Y, *, test_size=0.25, random_state=None, n_tries=50):
    """Split clip indices so that every tag is both present and absent in the test part.

    Average precision and ROC-AUC of a tag are undefined on a test part where
    the tag is always or never present.  This draws up to ``n_tries`` random
    splits (:func:`sklearn.model_selection.train_test_split`) and keeps the
    first one in which every tag is testable, or else the one with the most
    testable tags.

    Parameters
    ----------
    Y : array-like of shape (n_clips, n_tags)
        0/1 tag matrix.
    test_size : float in (0, 1) or int >= 1, default=0.25
        Share (or number) of clips in the test part, as in ``train_test_split``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws; an int gives the same split every time.
    n_tries : int >= 1, default=50
        Most splits drawn.

    Returns
    -------
    train, test : ndarray of int
        Sorted clip indices of the two parts.

    Raises
    ------
    DataError
        ``Y`` is not a 2-D 0/1 matrix with at least two rows.
    ParameterError
        ``n_tries`` is not a positive int.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5)
    >>> train, test = multilabel_train_test_split(Y, test_size=0.25, random_state=0)
    >>> len(train), len(test)
    (15, 5)
    >>> bool(((Y[test].sum(axis=0) > 0) & (Y[test].sum(axis=0) < len(test))).all())
    True
    """
    from sklearn.model_selection import train_test_split

    Y = np.asarray(Y)
    if Y.ndim != 2 or len(Y) < 2 or not np.isin(Y, (0, 1)).all():
        raise DataError(
            f"Y must be a 0/1 tag matrix of shape (n_clips >= 2, n_tags); got "
            f"shape {Y.shape}. For single labels use "
            "sklearn.model_selection.train_test_split(..., stratify=y)."
        )
    if (
        isinstance(n_tries, bool)
        or not isinstance(n_tries, numbers.Integral)
        or n_tries < 1
    ):
        raise ParameterError(f"n_tries={n_tries!r} must be an int >= 1.")
    idx = np.arange(len(Y))
    rng = check_random_state(random_state)
    best = None
    for _ in range(n_tries):
        train, test = train_test_split(
            idx, test_size=test_size, random_state=rng.randint(2**31 - 1)
        )
        pos = Y[test].sum(axis=0)
        ok = int(np.sum((pos > 0) & (pos < len(test))))
        if best is None or ok > best[0]:
            best = (ok, np.sort(train), np.sort(test))
        if ok == Y.shape[1]:
            break
    return best[1], best[2]
