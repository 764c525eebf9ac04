"""The cross-validated objective of :class:`RFOptunaSearchCV` (one trial).

The cross-validation splits are drawn once per fit and reused by every trial
and every epoch: with a shuffling splitter, re-splitting per epoch would let a
fold model train on samples it is later scored on.  When pruning per epoch,
each fold model is trained with ``partial_fit`` on its own training part only
(the Pipeline's transformers are fitted on that part once per trial) and
scored on its validation part; the mean over folds is reported at step
``epoch``.  Estimators without ``partial_fit`` are pruned per fold instead
(running mean after each fold).

No shared mutable callback state: the objective is a plain object that only
reads its inputs, so thread workers do not interfere.
"""

import math
import numbers
import os
import socket
import time
import traceback
import warnings
from inspect import signature

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.pipeline import Pipeline

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.search._scheduler import (
    ATTR_EPOCHS,
    ATTR_FIT_FAILED,
    ATTR_FIT_TIME,
    ATTR_SCORE_TIME,
    ATTR_SURPLUS,
    ATTR_TEST,
    ATTR_TIMEOUT,
    ATTR_TRAIN,
    ATTR_WORKER,
    _FailedFit,
    _SurplusTrial,
    is_surplus,
)
from sklearn_rfcnn.search._spaces import _import_optuna

__all__ = []


def _suggest(trial, name, distribution):
    """Sample one parameter through the public ``suggest_*`` API."""
    optuna = _import_optuna()
    d = optuna.distributions
    numeric = (
        (d.FloatDistribution, trial.suggest_float),
        (d.IntDistribution, trial.suggest_int),
    )
    for kind, suggest in numeric:
        if isinstance(distribution, kind):
            low, high = distribution.low, distribution.high
            return suggest(
                name, low, high, step=distribution.step, log=distribution.log
            )
    if isinstance(distribution, d.CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise ParameterError(  # pragma: no cover - optuna has only these three
        f"unsupported distribution for {name}: {distribution!r}"
    )


def _index_params(params, indices, n_samples):
    """Index the sample-aligned entries of fit parameters (sample_weight...)."""
    out = {}
    for key, value in params.items():
        if hasattr(value, "shape") or isinstance(value, list | tuple):
            if _n_samples(value) == n_samples:
                out[key] = _take(value, indices)
                continue
        out[key] = value
    return out


def _final_step(estimator):
    """Split a Pipeline into (pre-processing pipeline or None, final estimator)."""
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator[:-1], estimator.steps[-1][1]
    if isinstance(estimator, Pipeline):
        return None, estimator.steps[-1][1]
    return None, estimator


def _n_epochs(final):
    """Epochs per fold when pruning per epoch: ``max_epochs`` or ``max_iter``."""
    params = final.get_params(deep=False)
    for name in ("max_epochs", "max_iter"):
        value = params.get(name)
        if isinstance(value, numbers.Integral) and value >= 1:
            return int(value), name
    return None, None


def _take(X, indices):
    """Rows ``indices`` of an array, sparse matrix, DataFrame or sequence."""
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    if hasattr(X, "shape"):
        return X[indices]
    return [X[i] for i in indices]


def _n_samples(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _subset(y, indices):
    return None if y is None else _take(y, indices)


class _Objective:
    """The cross-validated score of one parameter set (an Optuna objective)."""

    def __init__(
        self,
        estimator,
        distributions,
        X,
        y,
        groups_splits,
        scorer,
        fit_params,
        *,
        n_trials,
        pruning,
        error_score,
        return_train_score,
        budget=None,
    ):
        self.estimator = estimator
        self.distributions = distributions
        self.X = X
        self.y = y
        self.splits = groups_splits
        self.scorer = scorer
        self.fit_params = fit_params
        self.n_trials = n_trials
        self.pruning = pruning
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.budget = budget

    def _out_of_time(self, trial, step_seconds, fold_step_seconds):
        """Whether the search's timeout leaves no time for one more step."""
        if self.budget is None:
            return False
        return not self.budget.next_epoch_fits(
            trial.study, step_seconds, fold_step_seconds
        )

    def __call__(self, trial):
        optuna = _import_optuna()
        if is_surplus(trial, self.n_trials):
            trial.set_user_attr(ATTR_SURPLUS, True)
            raise _SurplusTrial(
                f"trial {trial.number} is surplus: the study already holds "
                f"{self.n_trials} running or finished trials; nothing was fitted"
            )
        trial.set_user_attr(ATTR_WORKER, f"{socket.gethostname()}:{os.getpid()}")
        params = {
            name: _suggest(trial, name, dist)
            for name, dist in self.distributions.items()
        }
        estimator = clone(self.estimator).set_params(**params)
        try:
            pre, final = _final_step(estimator)
            n_epochs, _ = _n_epochs(final)
            if self.pruning and hasattr(final, "partial_fit") and n_epochs:
                return self._by_epoch(trial, pre, final, n_epochs)
            return self._by_fold(trial, estimator)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if isinstance(self.error_score, str):  # "raise"
                raise
            trial.set_user_attr(ATTR_FIT_FAILED, True)
            trial.set_user_attr("rfcnn:error", "".join(traceback.format_exception(exc)))
            warnings.warn(
                f"Trial {trial.number} failed to fit with {params}; its score is "
                f"error_score={self.error_score!r}. The error was:\n{exc!r}",
                FitFailedWarning,
                stacklevel=2,
            )
            if math.isnan(self.error_score):
                raise _FailedFit(repr(exc)) from exc
            n = len(self.splits)
            trial.set_user_attr(ATTR_TEST, [float(self.error_score)] * n)
            return float(self.error_score)

    def _record(self, trial, test, train, fit_times, score_times, n_epochs=None):
        trial.set_user_attr(ATTR_TEST, [float(s) for s in test])
        if train is not None:
            trial.set_user_attr(ATTR_TRAIN, [float(s) for s in train])
        trial.set_user_attr(ATTR_FIT_TIME, [float(t) for t in fit_times])
        trial.set_user_attr(ATTR_SCORE_TIME, [float(t) for t in score_times])
        if n_epochs is not None:
            trial.set_user_attr(ATTR_EPOCHS, int(n_epochs))

    # -- one estimator per fold, pruned after each fold --------------------------
    def _by_fold(self, trial, estimator):
        optuna = _import_optuna()
        n_samples = _n_samples(self.X)
        test, train, fit_times, score_times = [], [], [], []
        for k, (tr, te) in enumerate(self.splits):
            if k and self._out_of_time(
                trial, (sum(fit_times) + sum(score_times)) / k, sum(fit_times) / k
            ):
                self._record(trial, test, None, fit_times, score_times)
                trial.set_user_attr(ATTR_TIMEOUT, True)
                raise optuna.TrialPruned(f"stopped by the timeout after fold {k - 1}")
            est = clone(estimator)
            X_tr, y_tr = _take(self.X, tr), _subset(self.y, tr)
            X_te, y_te = _take(self.X, te), _subset(self.y, te)
            params = _index_params(self.fit_params, tr, n_samples)
            t0 = time.perf_counter()
            est.fit(X_tr, y_tr, **params)
            t1 = time.perf_counter()
            test.append(self.scorer(est, X_te, y_te))
            score_times.append(time.perf_counter() - t1)
            fit_times.append(t1 - t0)
            if self.return_train_score:
                train.append(self.scorer(est, X_tr, y_tr))
            if self.pruning:
                trial.report(float(np.mean(test)), k)
                if k + 1 < len(self.splits) and trial.should_prune():
                    self._record(trial, test, None, fit_times, score_times)
                    raise optuna.TrialPruned(f"pruned after fold {k}")
        self._record(
            trial,
            test,
            train if self.return_train_score else None,
            fit_times,
            score_times,
        )
        return float(np.mean(test))

    # -- fold models trained epoch by epoch with partial_fit -------------------
    def _by_epoch(self, trial, pre, final, n_epochs):
        optuna = _import_optuna()
        n_samples = _n_samples(self.X)
        folds = []
        for tr, te in self.splits:
            X_tr, y_tr = _take(self.X, tr), _subset(self.y, tr)
            X_te, y_te = _take(self.X, te), _subset(self.y, te)
            params = _index_params(self.fit_params, tr, n_samples)
            t0 = time.perf_counter()
            if pre is not None:
                fold_pre = clone(pre)
                X_tr = fold_pre.fit_transform(X_tr, y_tr)
                X_te = fold_pre.transform(X_te)
            model = clone(final)
            kwargs = dict(params)
            if (
                is_classifier(model)
                and "classes" in signature(model.partial_fit).parameters
                and np.ndim(self.y) == 1
            ):
                kwargs["classes"] = np.unique(self.y)
            folds.append(
                {
                    "model": model,
                    "X_tr": X_tr,
                    "y_tr": y_tr,
                    "X_te": X_te,
                    "y_te": y_te,
                    "kwargs": kwargs,
                    "fit_time": time.perf_counter() - t0,
                    "score_time": 0.0,
                }
            )

        def record(scores, train, n_epochs):
            self._record(
                trial,
                scores,
                train,
                [f["fit_time"] for f in folds],
                [f["score_time"] for f in folds],
                n_epochs=n_epochs,
            )

        scores = []
        setup = sum(f["fit_time"] for f in folds)  # the pre-processing
        for epoch in range(n_epochs):
            if epoch:
                fit = sum(f["fit_time"] for f in folds) - setup
                spent = fit + sum(f["score_time"] for f in folds)
                if self._out_of_time(trial, spent / epoch, fit / epoch / len(folds)):
                    record(scores, None, epoch)
                    trial.set_user_attr(ATTR_TIMEOUT, True)
                    raise optuna.TrialPruned(
                        f"stopped by the timeout after epoch {epoch - 1}"
                    )
            scores = []
            for fold in folds:
                t0 = time.perf_counter()
                fold["model"].partial_fit(fold["X_tr"], fold["y_tr"], **fold["kwargs"])
                fold["kwargs"].pop("classes", None)
                t1 = time.perf_counter()
                scores.append(self.scorer(fold["model"], fold["X_te"], fold["y_te"]))
                fold["fit_time"] += t1 - t0
                fold["score_time"] += time.perf_counter() - t1
            trial.report(float(np.mean(scores)), epoch)
            if epoch + 1 < n_epochs and trial.should_prune():
                record(scores, None, epoch + 1)
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")
        train = None
        if self.return_train_score:
            train = [self.scorer(f["model"], f["X_tr"], f["y_tr"]) for f in folds]
        record(scores, train, n_epochs)
        return float(np.mean(scores))
