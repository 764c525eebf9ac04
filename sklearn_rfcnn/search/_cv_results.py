"""``cv_results_`` of :class:`RFOptunaSearchCV`, assembled from a study.

One row per finished trial that counts towards the study's total (surplus
trials are left out), in scikit-learn's layout (``params``, ``param_<name>``,
``split<k>_test_score``, ``mean_test_score``, ``rank_test_score``,
``mean_fit_time`` ...) plus ``trial_number``, ``state`` and ``n_epochs``.
The per-fold figures come from the trials' user attributes, so any worker's
trials (other processes or machines) are included.
"""

import warnings

import numpy as np

from sklearn_rfcnn.search._scheduler import (
    ATTR_EPOCHS,
    ATTR_FIT_TIME,
    ATTR_SCORE_TIME,
    ATTR_TEST,
    ATTR_TRAIN,
    _count_towards_total,
)
from sklearn_rfcnn.search._spaces import _import_optuna

__all__ = []


def _masked_param_column(params_list, name):
    values = np.ma.MaskedArray(
        np.empty(len(params_list), dtype=object),
        mask=np.ones(len(params_list), dtype=bool),
    )
    for i, params in enumerate(params_list):
        if name in params:
            values[i] = params[name]
    return values


def _rank(means):
    from scipy.stats import rankdata

    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return rankdata(-filled, method="min").astype(np.int32)


def _cv_results(study, n_splits, return_train_score):
    """Build ``cv_results_`` (scikit-learn's layout) from a study's trials."""
    optuna = _import_optuna()
    TrialState = optuna.trial.TrialState
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and _count_towards_total(t, TrialState)
    ]
    trials.sort(key=lambda t: t.number)
    n = len(trials)

    def matrix(attr, only_complete):
        out = np.full((n, n_splits), np.nan)
        for i, t in enumerate(trials):
            if only_complete and t.state != TrialState.COMPLETE:
                continue
            values = t.user_attrs.get(attr)
            if values is not None and len(values) == n_splits:
                out[i] = values
        return out

    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        for key, attr in (("fit_time", ATTR_FIT_TIME), ("score_time", ATTR_SCORE_TIME)):
            m = matrix(attr, only_complete=False)
            results[f"mean_{key}"] = np.nanmean(m, axis=1)
            results[f"std_{key}"] = np.nanstd(m, axis=1)
        params_list = [dict(t.params) for t in trials]
        names = sorted({k for p in params_list for k in p})
        for name in names:
            results[f"param_{name}"] = _masked_param_column(params_list, name)
        results["params"] = params_list
        test = matrix(ATTR_TEST, only_complete=True)
        for k in range(n_splits):
            results[f"split{k}_test_score"] = test[:, k]
        results["mean_test_score"] = test.mean(axis=1)
        results["std_test_score"] = test.std(axis=1)
        results["rank_test_score"] = _rank(results["mean_test_score"])
        if return_train_score:
            train = matrix(ATTR_TRAIN, only_complete=True)
            for k in range(n_splits):
                results[f"split{k}_train_score"] = train[:, k]
            results["mean_train_score"] = train.mean(axis=1)
            results["std_train_score"] = train.std(axis=1)
    results["trial_number"] = np.array([t.number for t in trials], dtype=np.int64)
    results["state"] = np.array([t.state.name for t in trials], dtype=object)
    results["n_epochs"] = np.array(
        [t.user_attrs.get(ATTR_EPOCHS, -1) for t in trials], dtype=np.int64
    )
    return results, [t.number for t in trials]
