"""Iterative stratification of a multi-label hold-out (Sechidis et al., 2011)."""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["multilabel_holdout"]


def multilabel_holdout(Y, n_test, random_state=None):
    """Train and hold-out indices that keep every tag on both sides if possible.

    The iterative stratification of Sechidis, Tsoumakas and Vlahavas (2011),
    for one split: the rarest tag still to place is handled first, and each of
    its clips goes to the side that most lacks that tag (ties: the side that
    most lacks clips; then at random).  Clips without any tag are spread last
    to fill the sizes.  Both sides get a tag whenever it has at least two
    positive clips, and the hold-out has exactly ``n_test`` clips.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_tags)
        0/1 indicator matrix.
    n_test : int
        Size of the hold-out, ``1 <= n_test < n_samples``.
    random_state : int, RandomState instance or None, default=None
        Breaks ties.

    Returns
    -------
    train, test : ndarray of int
        Sorted indices.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.zeros((20, 3), dtype=int)
    >>> Y[:2, 0] = 1; Y[2:12, 1] = 1; Y[12:, 2] = 1
    >>> train, test = multilabel_holdout(Y, 5, random_state=0)
    >>> len(test), bool(Y[test, 0].sum() == 1), bool(Y[train, 0].sum() == 1)
    (5, True, True)
    """
    Y = np.asarray(Y) > 0.5
    n, n_tags = Y.shape
    if not 1 <= n_test < n:
        raise ValueError(f"n_test={n_test} must be in [1, {n - 1}] for {n} samples.")
    rng = check_random_state(random_state)
    fractions = np.array([1.0 - n_test / n, n_test / n])
    need_size = fractions * n
    need_tag = fractions[:, None] * Y.sum(axis=0)[None, :]  # (2, n_tags)
    have = np.zeros((2, n_tags))  # positives of each tag placed on each side
    total = Y.sum(axis=0)
    side = np.full(n, -1)
    remaining = Y.copy()
    while True:
        counts = remaining[side < 0].sum(axis=0) if (side < 0).any() else 0
        counts = np.where(np.asarray(counts) > 0, counts, np.inf)
        if not np.isfinite(counts).any():
            break
        tag = int(np.argmin(counts))
        clips = np.flatnonzero((side < 0) & Y[:, tag])
        for i in clips[rng.permutation(len(clips))]:
            lack = need_tag[:, tag].copy()
            if total[tag] >= 2 and (have[:, tag] == 0).any():
                lack = np.where(have[:, tag] == 0, np.inf, -np.inf)
                if (have[:, tag] == 0).all():
                    lack = need_tag[:, tag].copy()
            best = np.flatnonzero(lack == lack.max())
            if len(best) > 1:
                size = need_size[best]
                best = best[size == size.max()]
            s = int(best[rng.randint(len(best))]) if len(best) > 1 else int(best[0])
            if need_size[s] < 1:  # that side is full
                s = 1 - s
            side[i] = s
            need_size[s] -= 1
            need_tag[s] -= Y[i]
            have[s] += Y[i]
    rest = np.flatnonzero(side < 0)
    rest = rest[rng.permutation(len(rest))]
    for i in rest:
        s = int(np.argmax(need_size))
        side[i] = s
        need_size[s] -= 1
    # exact size: move clips from the over-full side (fewest tags first)
    test = np.flatnonzero(side == 1)
    if len(test) != n_test:
        src = 1 if len(test) > n_test else 0
        pool = np.flatnonzero(side == src)
        pool = pool[np.argsort(Y[pool].sum(axis=1), kind="stable")]
        for i in pool[: abs(len(test) - n_test)]:
            side[i] = 1 - src
    return np.flatnonzero(side == 0), np.flatnonzero(side == 1)
