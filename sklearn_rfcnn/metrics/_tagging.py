"""Tagging metrics: macro PR-AUC, ROC-AUC and mAP, per-tag reports, masks.

Definitions
-----------
All metrics here are computed **per tag** (per column of the indicator matrix)
and then averaged with equal weight over tags (*macro* averaging), the
convention of music auto-tagging benchmarks:

* ``average_precision`` of one tag is scikit-learn's
  :func:`~sklearn.metrics.average_precision_score`: the step-wise sum
  ``AP = sum_n (R_n - R_{n-1}) P_n`` over the ranked clips, with no
  interpolation.
* :func:`mean_average_precision` is the macro mean of the per-tag AP.
* :func:`pr_auc_macro` is, by default, **the same number**.  MediaEval's
  Emotion and Theme Recognition task (MTG-Jamendo) computes its official
  "PR-AUC-macro" as ``sklearn.metrics.average_precision_score(y, p,
  average="macro")``, so published PR-AUC figures are macro AP; keeping that
  definition keeps our numbers comparable with them.  ``method="trapezoid"``
  gives instead the area under the precision-recall curve by the trapezoidal
  rule (``sklearn.metrics.auc(recall, precision)``), which linearly
  interpolates precision between operating points and is therefore usually a
  little higher (optimistic) than AP.
* :func:`roc_auc_macro` is the macro mean of the per-tag ROC-AUC
  (:func:`~sklearn.metrics.roc_auc_score`).

Partially labelled data (OpenMIC-2018) pass ``mask``: a boolean matrix of the
same shape, true where the label is known.  Each tag is then scored on its
known entries only.  Soft labels in [0, 1] (OpenMIC's ``Y_true``) count as
present where ``>= 0.5``.  A tag whose known entries lack a positive or a
negative example has no defined AP/ROC-AUC; it is skipped (left out of the
macro mean) with an :class:`~sklearn.exceptions.UndefinedMetricWarning`.
"""

import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.utils._docstrings import fill_doc

__all__ = [
    "SCORERS",
    "get_scorer",
    "get_scorer_names",
    "mean_average_precision",
    "per_tag_report",
    "per_tag_scores",
    "pr_auc_macro",
    "roc_auc_macro",
]

_FIELDS = [
    ("tag", object),
    ("n_known", np.int64),
    ("n_positive", np.int64),
    ("average_precision", np.float64),
    ("pr_auc_trapezoid", np.float64),
    ("roc_auc", np.float64),
    ("precision", np.float64),
    ("recall", np.float64),
    ("f1", np.float64),
]


#: The inputs every tag metric takes (docstring sections).
_TAG_INPUTS_DOC = """
y_true : array-like of shape (n_clips, n_tags)
    0/1 tag indicators (soft labels in [0, 1] count as present at >= 0.5).
y_score : array-like of shape (n_clips, n_tags)
    Scores, probabilities or decision values; only their ranking matters
    (:func:`per_tag_scores` also thresholds them for precision, recall and
    F1).
"""
_MASK_DOC = """
mask : array-like of bool, shape (n_clips, n_tags), default=None
    True where the label is known; ``None`` means all known.
"""
_TAG_METRIC_DOCS = {
    "tag_inputs": _TAG_INPUTS_DOC,
    "mask": _MASK_DOC,
    "tag_metric_parameters": "Parameters\n----------\n"
    + _TAG_INPUTS_DOC.strip()
    + "\n"
    + _MASK_DOC.strip(),
}


def _check_inputs(y_true, y_score, mask):
    """Validate and return 2-D ``(binary y_true, y_score, bool mask)``."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if y_true.ndim == 1 and y_score.ndim == 1:
        y_true, y_score = y_true[:, None], y_score[:, None]
        if mask is not None:
            mask = np.asarray(mask).reshape(-1, 1)
    if y_true.ndim != 2 or y_score.ndim != 2:
        raise DataError(
            f"y_true and y_score must be 2-D (n_clips, n_tags) indicator/score "
            f"matrices (or both 1-D for one tag); got shapes {y_true.shape} and "
            f"{y_score.shape}.  For 1-D class labels, binarise them first, e.g. "
            "sklearn.preprocessing.label_binarize(y, classes=clf.classes_)."
        )
    if y_true.shape != y_score.shape:
        raise DataError(
            f"y_true has shape {y_true.shape} but y_score has shape "
            f"{y_score.shape}; they must match (one score per clip and tag)."
        )
    if y_true.shape[0] == 0:
        raise DataError("y_true is empty; at least one clip is needed.")
    try:
        y_true = y_true.astype(np.float64)
        y_score = y_score.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"y_true and y_score must be numeric matrices ({exc})."
        ) from exc
    if mask is None:
        mask = np.ones(y_true.shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.shape != y_true.shape:
            raise DataError(
                f"mask has shape {mask.shape} but y_true has shape "
                f"{y_true.shape}; it must mark each (clip, tag) entry as known "
                "(True) or unknown (False)."
            )
        mask = mask.astype(bool)
    known_true = y_true[mask]
    if not np.all(np.isfinite(known_true)):
        raise DataError("y_true contains NaN or inf at known (masked-in) entries.")
    if np.any((known_true < 0) | (known_true > 1)):
        raise DataError(
            "y_true must hold 0/1 labels (or soft labels in [0, 1]); found values "
            f"in [{known_true.min():g}, {known_true.max():g}]."
        )
    if not np.all(np.isfinite(y_score[mask])):
        bad = np.argwhere(~np.isfinite(y_score) & mask)[0]
        raise DataError(
            f"y_score contains NaN or inf (first at clip {bad[0]}, tag {bad[1]})."
        )
    return (y_true >= 0.5).astype(np.int64), y_score, mask


def _tag_names(target_names, n_tags):
    if target_names is None:
        return [str(j) for j in range(n_tags)]
    names = [str(t) for t in target_names]
    if len(names) != n_tags:
        raise ParameterError(
            f"target_names has {len(names)} names but there are {n_tags} tags."
        )
    return names


def _per_tag(y_true, y_score, mask, func, name, warn=True):
    """``func(y, s)`` per tag on known entries; NaN (and a warning) if undefined."""
    n_tags = y_true.shape[1]
    values = np.full(n_tags, np.nan)
    skipped = []
    for j in range(n_tags):
        known = mask[:, j]
        y, s = y_true[known, j], y_score[known, j]
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            skipped.append(j)
            continue
        values[j] = func(y, s)
    if skipped and warn:
        warnings.warn(
            f"{name} is undefined for tag(s) {skipped} (no positive or no "
            "negative example among their known entries); they are left out of "
            "the macro average.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
    return values


def _macro(values, name):
    if np.all(np.isnan(values)):
        warnings.warn(
            f"{name} is undefined for every tag; returning nan.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(np.nanmean(values))


def _trapezoid_pr_auc(y, s):
    precision, recall, _ = skm.precision_recall_curve(y, s)
    return skm.auc(recall, precision)


@fill_doc(**_TAG_METRIC_DOCS)
def mean_average_precision(y_true, y_score, *, mask=None):
    """Macro mean over tags of the per-tag average precision (mAP).

    %(tag_metric_parameters)s

    Returns
    -------
    score : float
        Between 0 and 1; ``nan`` if no tag has both a positive and a negative
        known example.

    See Also
    --------
    pr_auc_macro : The same number under MediaEval's name.

    Examples
    --------
    >>> y_true = [[1, 0], [0, 1], [1, 1], [0, 0]]
    >>> y_score = [[0.9, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.5]]
    >>> round(mean_average_precision(y_true, y_score), 4)
    0.9167

    Entries whose label is unknown are left out of their tag's score:

    >>> known = [[True, True], [True, True], [True, False], [True, True]]
    >>> round(mean_average_precision(y_true, y_score, mask=known), 4)
    1.0
    """
    y_true, y_score, mask = _check_inputs(y_true, y_score, mask)
    ap = _per_tag(y_true, y_score, mask, skm.average_precision_score, "AP")
    return _macro(ap, "mean_average_precision")


@fill_doc(**_TAG_METRIC_DOCS)
def pr_auc_macro(y_true, y_score, *, mask=None, method="average_precision"):
    """Macro-averaged area under the per-tag precision-recall curves.

    With the default ``method="average_precision"`` this is MediaEval's
    official "PR-AUC-macro" (``average_precision_score(..., average="macro")``)
    and equals :func:`mean_average_precision`.  ``method="trapezoid"``
    integrates each precision-recall curve with the trapezoidal rule instead,
    which interpolates linearly between operating points and usually comes out
    slightly higher.

    Parameters
    ----------
    %(tag_inputs)s
    %(mask)s
    method : {"average_precision", "trapezoid"}, default="average_precision"
        How each tag's curve is integrated.

    Returns
    -------
    score : float

    See Also
    --------
    mean_average_precision : The same number as the default method.

    Examples
    --------
    >>> y_true = [[1, 0], [0, 1], [1, 1], [0, 0]]
    >>> y_score = [[0.9, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.5]]
    >>> [round(pr_auc_macro(y_true, y_score, method=m), 4)
    ...  for m in ("average_precision", "trapezoid")]
    [0.9167, 0.8958]
    """
    funcs = {
        "average_precision": skm.average_precision_score,
        "trapezoid": _trapezoid_pr_auc,
    }
    if method not in funcs:
        raise ParameterError(
            f"method={method!r} must be 'average_precision' or 'trapezoid'."
        )
    y_true, y_score, mask = _check_inputs(y_true, y_score, mask)
    values = _per_tag(y_true, y_score, mask, funcs[method], "PR-AUC")
    return _macro(values, "pr_auc_macro")


@fill_doc(**_TAG_METRIC_DOCS)
def roc_auc_macro(y_true, y_score, *, mask=None):
    """Macro mean over tags of the per-tag ROC-AUC.

    %(tag_metric_parameters)s

    Returns
    -------
    score : float

    See Also
    --------
    sklearn.metrics.roc_auc_score : The per-tag score, computed here on each
        tag's known entries.

    Examples
    --------
    >>> y_true = [[1, 0], [0, 1], [1, 1], [0, 0]]
    >>> y_score = [[0.9, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.5]]
    >>> roc_auc_macro(y_true, y_score)
    0.875
    """
    y_true, y_score, mask = _check_inputs(y_true, y_score, mask)
    values = _per_tag(y_true, y_score, mask, skm.roc_auc_score, "ROC-AUC")
    return _macro(values, "roc_auc_macro")


@fill_doc(**_TAG_METRIC_DOCS)
def per_tag_scores(y_true, y_score, *, target_names=None, mask=None, threshold=0.5):
    """Per-tag metrics as a numpy structured array (one row per tag).

    Parameters
    ----------
    %(tag_inputs)s
    target_names : sequence of str, default=None
        Tag names; ``None`` numbers them.
    %(mask)s
    threshold : float, default=0.5
        Decision threshold on ``y_score`` for precision, recall and F1.

    Returns
    -------
    table : numpy structured array of shape (n_tags,)
        Fields ``tag``, ``n_known``, ``n_positive``, ``average_precision``,
        ``pr_auc_trapezoid``, ``roc_auc``, ``precision``, ``recall``, ``f1``.
        Undefined ranking metrics (no positive or no negative known example)
        are ``nan``; ``precision``/``recall``/``f1`` use 0 where undefined.

    Examples
    --------
    >>> table = per_tag_scores([[1, 0], [0, 1], [1, 0]],
    ...                        [[0.8, 0.3], [0.4, 0.6], [0.7, 0.1]],
    ...                        target_names=["piano", "drums"])
    >>> table["tag"].tolist(), table["average_precision"].tolist()
    (['piano', 'drums'], [1.0, 1.0])
    """
    y_true, y_score, mask = _check_inputs(y_true, y_score, mask)
    names = _tag_names(target_names, y_true.shape[1])
    n_tags = y_true.shape[1]
    table = np.zeros(n_tags, dtype=_FIELDS)
    table["tag"] = names
    table["n_known"] = mask.sum(axis=0)
    table["n_positive"] = (y_true.astype(bool) & mask).sum(axis=0)
    table["average_precision"] = _per_tag(
        y_true, y_score, mask, skm.average_precision_score, "AP"
    )
    table["pr_auc_trapezoid"] = _per_tag(
        y_true, y_score, mask, _trapezoid_pr_auc, "PR-AUC", warn=False
    )
    table["roc_auc"] = _per_tag(
        y_true, y_score, mask, skm.roc_auc_score, "ROC-AUC", warn=False
    )
    for j in range(n_tags):
        known = mask[:, j]
        y = y_true[known, j]
        pred = (y_score[known, j] >= threshold).astype(np.int64)
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, pred, average="binary", zero_division=0
        )
        table["precision"][j], table["recall"][j], table["f1"][j] = p, r, f
    return table


def per_tag_report(
    y_true,
    y_score,
    *,
    target_names=None,
    mask=None,
    threshold=0.5,
    digits=3,
    output_dict=False,
):
    """A per-tag table of AP, ROC-AUC, precision, recall and F1, with macro means.

    Like :func:`sklearn.metrics.classification_report`, but for ranking
    metrics of multi-label tagging and without pandas.

    Parameters
    ----------
    y_true, y_score, target_names, mask, threshold
        As in :func:`per_tag_scores`.
    digits : int, default=3
        Decimals in the text table.
    output_dict : bool, default=False
        Return a ``{tag: {metric: value}}`` dict (with a ``"macro avg"``
        entry) instead of text.

    Returns
    -------
    report : str or dict

    Examples
    --------
    >>> print(per_tag_report([[1, 0], [0, 1], [1, 0], [0, 0]],
    ...                      [[0.8, 0.3], [0.4, 0.6], [0.7, 0.1], [0.2, 0.7]],
    ...                      target_names=["piano", "drums"]))
    tag    known  pos     AP  ROC-AUC  precision  recall     F1
    piano      4    2  1.000    1.000      1.000   1.000  1.000
    drums      4    1  0.500    0.667      0.500   1.000  0.667
    <BLANKLINE>
    macro avg  8    3  0.750    0.833      0.750   1.000  0.833
    """
    table = per_tag_scores(
        y_true, y_score, target_names=target_names, mask=mask, threshold=threshold
    )
    metrics = ["average_precision", "roc_auc", "precision", "recall", "f1"]
    macro = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns
        for m in metrics:
            col = table[m]
            macro[m] = float(np.nanmean(col)) if np.any(~np.isnan(col)) else np.nan
    macro["n_known"] = int(table["n_known"].sum())
    macro["n_positive"] = int(table["n_positive"].sum())
    if output_dict:
        out = {}
        for row in table:
            out[row["tag"]] = {
                "n_known": int(row["n_known"]),
                "n_positive": int(row["n_positive"]),
                **{m: float(row[m]) for m in [*metrics, "pr_auc_trapezoid"]},
            }
        out["macro avg"] = macro
        return out
    headers = ["known", "pos", "AP", "ROC-AUC", "precision", "recall", "F1"]
    rows = [
        [row["tag"], str(row["n_known"]), str(row["n_positive"])]
        + [_fmt(row[m], digits) for m in metrics]
        for row in table
    ]
    total = ["macro avg", str(macro["n_known"]), str(macro["n_positive"])] + [
        _fmt(macro[m], digits) for m in metrics
    ]
    width0 = max(len("tag"), len(total[0]), *(len(r[0]) for r in rows))
    widths = [
        max(len(h), *(len(r[i + 1]) for r in [*rows, total]))
        for i, h in enumerate(headers)
    ]

    def line(cells):
        parts = [cells[0].ljust(width0)]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths)]
        return "  ".join(parts).rstrip()

    lines = [line(["tag", *headers])]
    lines += [line(r) for r in rows]
    lines.append("")
    lines.append(line(total))
    return "\n".join(lines)


def _fmt(value, digits):
    return "nan" if np.isnan(value) else f"{value:.{digits}f}"


# --------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------


def _tag_scores(estimator, X):
    """Per-tag ranking scores of ``estimator`` on ``X`` as ``(n_clips, n_tags)``."""
    if hasattr(estimator, "predict_proba"):
        scores = estimator.predict_proba(X)
        if isinstance(scores, list):  # multi-output trees: one (n, 2) per tag
            scores = np.column_stack([np.asarray(p)[:, -1] for p in scores])
    elif hasattr(estimator, "decision_function"):
        scores = estimator.decision_function(X)
    else:
        raise ParameterError(
            f"{type(estimator).__name__} has neither predict_proba nor "
            "decision_function, so it cannot be scored with a ranking metric."
        )
    return np.asarray(scores)


class _TaggingScorer:
    """``scorer(estimator, X, y_true, mask=None)`` for a macro tagging metric.

    Unlike ``sklearn.metrics.make_scorer(..., response_method="predict_proba")``
    it never reduces the probability matrix to one column: scikit-learn does so
    whenever ``classes_`` looks binary, which is the case for a multi-label
    estimator with exactly two tags (``classes_ == [0, 1]``).
    """

    def __init__(self, score_func, name):
        self._score_func = score_func
        self._name = name

    def __call__(self, estimator, X, y_true, sample_weight=None, mask=None):
        if sample_weight is not None:
            raise ParameterError(
                f"the {self._name!r} scorer does not support sample_weight."
            )
        scores = _tag_scores(estimator, X)
        y_true = np.asarray(y_true)
        if y_true.ndim == 1 and scores.ndim == 2 and scores.shape[1] == 2:
            scores = scores[:, 1]  # a binary classifier: the positive class
        return self._score_func(y_true, scores, mask=mask)

    def __repr__(self):
        return f"get_scorer({self._name!r})"


#: Scorers for ``GridSearchCV(scoring=...)``, by name.  They rank clips with
#: ``predict_proba`` (or ``decision_function`` when an estimator has no
#: probabilities), expect a multi-label indicator ``y`` and accept ``mask=``.
SCORERS = {
    name: _TaggingScorer(func, name)
    for name, func in [
        ("pr_auc_macro", pr_auc_macro),
        ("roc_auc_macro", roc_auc_macro),
        ("mean_average_precision", mean_average_precision),
    ]
}


def get_scorer(scoring):
    """Return a scorer by name: this library's tagging scorers, else scikit-learn's.

    Parameters
    ----------
    scoring : str or callable
        One of :data:`SCORERS` (``"pr_auc_macro"``, ``"roc_auc_macro"``,
        ``"mean_average_precision"``), any name
        :func:`sklearn.metrics.get_scorer` knows, or a callable (returned as
        is).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``; pass it to ``GridSearchCV(scoring=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(40, 3)
    >>> Y = np.c_[X[:, 0] > 0, X[:, 1] > 0].astype(int)
    >>> clf = OneVsRestClassifier(LogisticRegression()).fit(X, Y)
    >>> get_scorer("pr_auc_macro")(clf, X, Y) > 0.9
    True
    >>> get_scorer("accuracy")  # falls back to scikit-learn
    make_scorer(accuracy_score, response_method='predict')
    """
    if callable(scoring):
        return scoring
    if isinstance(scoring, str) and scoring in SCORERS:
        return SCORERS[scoring]
    try:
        return skm.get_scorer(scoring)
    except ValueError as exc:
        raise ParameterError(
            f"scoring={scoring!r} is not a known scorer; use one of "
            f"{sorted(SCORERS)} or a name from sklearn.metrics.get_scorer_names()."
        ) from exc


def get_scorer_names():
    """All names :func:`get_scorer` accepts (this library's and scikit-learn's).

    Examples
    --------
    >>> "pr_auc_macro" in get_scorer_names() and "accuracy" in get_scorer_names()
    True
    """
    return sorted(set(SCORERS) | set(skm.get_scorer_names()))
