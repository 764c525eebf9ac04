"""RFOptunaSearchCV: a receptive-field-centred Optuna search, scikit-learn style.

Design notes (what differs from ``optuna_integration.OptunaSearchCV`` and why):

* A fresh study per ``fit`` unless ``study_name`` names one to join, so a
  second fit never mixes in the first fit's trials.
* The cross-validation splits are drawn once per fit and reused by every
  trial and every epoch, so a shuffling splitter cannot leak validation
  samples into training; pruning is per epoch (``partial_fit``) or per fold
  (see :mod:`~sklearn_rfcnn.search._objective`).
* ``n_trials`` is the total of finished trials across every worker of a
  study (see :mod:`~sklearn_rfcnn.search._scheduler`).

The pieces live in their own modules: the cross-validated objective
(:mod:`~sklearn_rfcnn.search._objective`), the exact-total trial scheduler
(:mod:`~sklearn_rfcnn.search._scheduler`) and the ``cv_results_`` assembly
(:mod:`~sklearn_rfcnn.search._cv_results`); this module holds the
meta-estimator and :func:`run_worker`.
"""

import itertools
import os
import time
import uuid
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable

from sklearn_rfcnn.exceptions import ParameterError, RFCNNWarning
from sklearn_rfcnn.search._cv_results import _cv_results
from sklearn_rfcnn.search._spaces import (
    _import_optuna,
    fitted_search_space,
    to_distribution,
)
from sklearn_rfcnn.search._study import _StudyMixin
from sklearn_rfcnn.utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
)
from sklearn_rfcnn.utils._validation import ParamValidationMixin, check_params
from sklearn_rfcnn.utils._warnings import warnings_once

__all__ = ["RFOptunaSearchCV", "run_worker"]


#: Most combinations of searched values the pre-flight tries (see
#: ``RFOptunaSearchCV._check_params_extra``).
_PREFLIGHT_COMBINATIONS = 256


class RFOptunaSearchCV(
    _StudyMixin, ParamValidationMixin, MetaEstimatorMixin, BaseEstimator
):
    """Optuna search over the receptive field and regularisers, with CV.

    A scikit-learn meta-estimator: each trial samples parameters from
    ``param_distributions`` (by default :func:`fitted_search_space`: the
    receptive field of the RF-CNN inside ``estimator``, everything else as
    given), scores them on validation data, and the best are refit on all the
    data. Trials live in an Optuna study that several processes or machines
    can share (see ``storage``); trials are pruned per epoch (``partial_fit``
    estimators) or per fold without leaking validation samples into training.
    With ``n_trials=None`` the search runs until ``timeout``, which covers
    the refit.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Cloned for every fold; any scikit-learn estimator works.
    param_distributions : dict of str to distribution or list, default=None
        Optuna distributions (``optuna.distributions.*``) keyed by parameter
        name; a list is a categorical choice. ``None`` uses
        :func:`fitted_search_space`: rho (or ``rho_f``/``rho_t``) of the
        step that has a ``rho`` parameter, over 3-12, keeping the estimator's
        width, epochs, batch size and every other setting; the estimator's
        own rho is the first trial and every other value follows once,
        coarse to fine (middle, ends, then between). For a wider space pass
        e.g. :func:`rf_search_space` (which also searches width, mixup,
        learning rate and the regularisers).
    n_trials : int >= 1 or None, default=20
        Number of finished trials (complete, pruned or failed fits) the
        study must hold; shared by every worker of a named study. ``None``:
        run trials until ``timeout``, or until every point of a finite space
        (integers and choices only, such as the default space) has been
        tried; a space with a continuous parameter then needs ``timeout``.
    cv : None, int, cross-validation generator or iterable, default=None
        As in :func:`sklearn.model_selection.check_cv` (stratified for
        classifiers). ``None``: for an estimator trained per epoch (a final
        step with ``partial_fit`` and ``max_epochs``, such as the RF-CNNs),
        one hold-out of 20% of the samples, stratified (iteratively, per tag,
        for a multi-label indicator ``y``; seeded by ``random_state``): at a
        CNN's cost, one model per trial and more trials beat 3 models per
        trial; 3-fold cross-validation for any other estimator. The splits
        are drawn once per fit and used by every trial.
    scoring : str or callable, default=None
        A scorer name (the library's tagging scorers from
        :mod:`sklearn_rfcnn.metrics` when present, else scikit-learn's) or a
        callable ``scorer(estimator, X, y)``; ``None`` uses the estimator's
        ``score``. Greater is better.
    storage : None, "memory", path-like, str URL or optuna storage, default=None
        ``None``: a journal file ``<data_home>/optuna/<study>.journal``
        (several processes on one machine); a path: that journal file; an RDB
        URL (``postgresql://``, ``mysql://``, ``sqlite:///``): Optuna's
        RDBStorage (many machines); ``"memory"``: in this process only.
    study_name : str, default=None
        ``None`` creates a fresh study for each fit; a name creates the study
        or joins it (its earlier trials count towards ``n_trials``).
    pruning : bool or optuna pruner, default=True
        ``True``: for an estimator trained per epoch, successive halving over
        epochs (``SuccessiveHalvingPruner(min_resource=max_epochs // 4,
        reduction_factor=3)`` on the per-epoch validation score), else
        ``MedianPruner(n_startup_trials=5, n_warmup_steps=1)`` per fold; a
        pruner object is used as given; ``False`` never prunes.
    n_jobs : int, default=1
        Parallel workers: processes on a journal or RDB storage, threads on
        ``"memory"`` or a storage object. ``-1`` uses all cores. With
        processes, this one is worker 0 and ``n_jobs - 1`` processes of
        joblib's reusable loky executor join it (kept for the next fit);
        under a joblib backend that runs elsewhere
        (``with joblib.parallel_config("dask"): search.fit(X, y)``) all
        ``n_jobs`` workers are tasks of that backend, which needs a storage
        every worker reaches (a journal file on a shared file system, or an
        RDB URL).
    timeout : float > 0, default=None
        Seconds the whole ``fit`` may take, refit included. A trial starts
        only if the time left covers the refit (estimated from the measured
        epochs, scaled to all the data) and the trial's first pruning
        decision; a running trial stops before an epoch (or fold) that would
        leave too little for the refit, and is recorded as pruned (user
        attribute ``rfcnn:stopped_by_timeout``). One complete trial always
        runs, so a timeout shorter than one trial and the refit is overrun
        (with a warning). In :func:`run_worker` nothing is kept for a refit.
    refit : bool, default=True
        Refit the best parameters on the whole data as ``best_estimator_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the default TPE sampler (worker ``i`` uses seed + ``i``).
    sampler : optuna sampler, default=None
        Overrides the default ``TPESampler``.
    data_home : path-like, default=None
        Folder of the default journal files (else ``$RFCNN_DATA_HOME`` or
        ``~/rfcnn_data``).
    heartbeat_interval : int >= 1 or None, default=60
        Seconds between heartbeats of a running trial on journal and RDB
        storages. A trial silent for ``grace_period`` seconds is failed and
        re-run with the same parameters by another worker. ``None``: off.
    grace_period : int >= 1, default=None
        See ``heartbeat_interval``; ``None`` means twice the interval.
    error_score : "raise" or float, default=np.nan
        Score of a trial whose fit fails (a NaN marks the trial failed);
        ``"raise"`` re-raises the error.
    return_train_score : bool, default=False
        Also record training scores in ``cv_results_``.
    verbose : int, default=0
        ``0``: quiet (Optuna's warnings only); ``1``: one line per trial
        (Optuna's log); ``>= 2``: also each fit's own output, such as the
        epoch table of an RF-CNN (below 2 the trials' fits run with their
        ``verbose`` parameters at 0; the refit keeps them).  Warnings
        repeated by the fits are shown once per kind, with a count.

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        One row per finished trial, in scikit-learn's format (``params``,
        ``param_<name>``, ``split<k>_test_score``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score``, ``mean_fit_time`` ...) plus
        ``trial_number``, ``state`` (``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``)
        and ``n_epochs``. Pruned and failed trials have NaN test scores.
    best_index_ : int
        Row of the best complete trial in ``cv_results_``.
    best_params_ : dict
    best_score_ : float
        Its mean cross-validated score.
    best_estimator_ : estimator
        Refit on the whole data (only with ``refit=True``).
    refit_time_ : float
        Seconds the refit took.
    search_time_ : float
        Seconds the whole ``fit`` took (trials and refit), the figure
        ``timeout`` bounds.
    study_ : optuna.Study
        The study, with every trial (its storage keeps them).
    study_name_ : str
    n_trials_ : int
        Finished trials in ``cv_results_``.
    n_splits_ : int
    scorer_ : callable
    multimetric_ : bool
        Always False (one metric).

    Notes
    -----
    *Pruning.* When the final estimator has ``partial_fit`` and a
    ``max_epochs`` (or ``max_iter``) parameter, every fold model is trained
    one ``partial_fit`` call per epoch for that many epochs, on its own
    training part only (the Pipeline's transformers are fitted on that part
    once per trial), and the mean validation score over folds is reported at
    step ``epoch``. Other estimators are fitted per fold and the running mean
    is reported after each fold. The folds are drawn once per fit, so a
    shuffling splitter cannot leak validation samples into later epochs.
    The refit uses ``fit``.

    *Exact totals.* A trial runs only if fewer than ``n_trials`` live or
    finished trials precede it in the study's numbering, which the storage
    assigns atomically; a trial created past the total (two workers racing
    for the last place) is closed as a failed *surplus* trial without fitting
    anything (user attribute ``rfcnn:surplus``) and does not appear in
    ``cv_results_``.

    See Also
    --------
    rf_search_space : The default search space.
    run_worker : Join a shared study and run trials without refit.

    Examples
    --------
    >>> from optuna.distributions import FloatDistribution
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_rfcnn.search import RFOptunaSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = RFOptunaSearchCV(
    ...     LogisticRegression(max_iter=200),
    ...     {"C": FloatDistribution(1e-2, 1e2, log=True)},
    ...     n_trials=4, storage="memory", random_state=0,
    ... ).fit(X, y)
    >>> search.n_trials_, len(search.cv_results_["params"])
    (4, 4)
    >>> round(search.best_score_, 2) > 0.9
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [dict, None],
        "n_trials": [Interval(Integral, 1, None, closed="left"), None],
        "cv": ["cv_object", None],
        "scoring": [str, callable, None],
        "storage": "no_validation",
        "study_name": [str, None],
        "pruning": ["boolean", HasMethods(["prune"])],
        "n_jobs": [Integral, None],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "sampler": [HasMethods(["sample_independent"]), None],
        "data_home": [str, os.PathLike, None],
        "heartbeat_interval": [
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "grace_period": [Interval(Integral, 1, None, closed="left"), None],
        "error_score": [StrOptions({"raise"}), Real],
        "return_train_score": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        param_distributions=None,
        *,
        n_trials=20,
        cv=None,
        scoring=None,
        storage=None,
        study_name=None,
        pruning=True,
        n_jobs=1,
        timeout=None,
        refit=True,
        random_state=None,
        sampler=None,
        data_home=None,
        heartbeat_interval=60,
        grace_period=None,
        error_score=np.nan,
        return_train_score=False,
        verbose=0,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.storage = storage
        self.study_name = study_name
        self.pruning = pruning
        self.n_jobs = n_jobs
        self.timeout = timeout
        self.refit = refit
        self.random_state = random_state
        self.sampler = sampler
        self.data_home = data_home
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.verbose = verbose

    # -- building blocks (also used by worker processes) -----------------------
    def _distributions(self):
        if self.param_distributions is None:
            return fitted_search_space(self.estimator)[0]
        valid = self.estimator.get_params(deep=True)
        out = {}
        for name, value in self.param_distributions.items():
            if name.split("__")[0] not in valid and name not in valid:
                raise ParameterError(
                    f"param_distributions names {name!r}, which is not a parameter "
                    f"of {type(self.estimator).__name__}; valid names include "
                    f"{sorted(valid)[:10]}."
                )
            out[name] = to_distribution(name, value)
        return out

    def _scorer(self):
        if callable(self.scoring):
            return self.scoring
        if self.scoring is None:
            return check_scoring(self.estimator)
        try:
            from sklearn_rfcnn.metrics import get_scorer
        except ImportError:
            from sklearn.metrics import get_scorer
        return get_scorer(self.scoring)

    def _check_params_extra(self):
        """Pre-flight: the estimator's parameters too, before any data or trial.

        The base values of searched parameters do not count (``rho=None``
        beside ``depth=8`` is fine when rho is searched): the estimator is
        checked with the searched parameters at their ends (the lowest and
        highest value, each choice), and it is an error only when no such
        combination passes, up to :data:`_PREFLIGHT_COMBINATIONS` of them
        (beyond that the fits judge).
        """
        ends = {
            name: dist.choices if hasattr(dist, "choices") else (dist.low, dist.high)
            for name, dist in self._distributions().items()
        }
        combinations = itertools.islice(
            itertools.product(*ends.values()), _PREFLIGHT_COMBINATIONS + 1
        )
        first_error = None
        for i, values in enumerate(combinations):
            if i == _PREFLIGHT_COMBINATIONS:
                return
            try:
                check_params(
                    clone(self.estimator).set_params(**dict(zip(ends, values)))
                )
                return
            except (ValueError, TypeError) as exc:  # the library's errors, wrapped
                first_error = first_error or exc
        raise first_error

    # -- fit ----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, groups=None, **fit_params):
        """Search, then refit the best parameters on all of ``X, y``.

        Parameters
        ----------
        X : indexable, length n_samples
            Anything the estimator takes (arrays, lists of paths ...).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware splitters.
        **fit_params : dict
            Passed to the estimator's ``fit`` (sample-aligned values are
            indexed per fold).

        Returns
        -------
        self : RFOptunaSearchCV
        """
        start = time.time()
        optuna = _import_optuna()
        self._check_budget()
        X, y, groups = indexable(X, y, groups)
        study_name = self.study_name or f"rfcnn-search-{uuid.uuid4().hex[:12]}"
        previous = self._configure_logging()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                with warnings_once("trials"):  # not once per fold and trial
                    study, splits = self._optimize(
                        X, y, groups, fit_params, study_name, start, self.refit
                    )
        finally:
            optuna.logging.set_verbosity(previous)

        self.study_ = study
        self.study_name_ = study_name
        self.scorer_ = self._scorer()
        self.multimetric_ = False
        self.n_splits_ = len(splits)
        self.cv_results_, numbers_ = _cv_results(
            study, self.n_splits_, self.return_train_score
        )
        self.n_trials_ = len(numbers_)
        complete = self.cv_results_["state"] == "COMPLETE"
        if not complete.any():
            raise ValueError(
                f"No trial of study {study_name!r} completed: all "
                f"{self.n_trials_} were pruned or failed to fit. See "
                "cv_results_['state'] and the trials' 'rfcnn:error' user attributes, "
                "or set error_score='raise' to see the error."
            )
        best = study.best_trial
        self.best_index_ = int(numbers_.index(best.number))
        self.best_params_ = dict(best.params)
        self.best_score_ = float(best.value)
        if self.refit:
            estimator = clone(self.estimator).set_params(**self.best_params_)
            t0 = time.perf_counter()
            estimator.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - t0
            self.best_estimator_ = estimator
        self.search_time_ = time.time() - start
        if self.timeout is not None and self.search_time_ > self.timeout:
            warnings.warn(
                f"the search took {self.search_time_:.1f} s, more than "
                f"timeout={self.timeout:g} s: one complete trial and the refit "
                "always run, and the refit is estimated from the trials' epochs. "
                "Raise timeout to cover several trials and the refit.",
                RFCNNWarning,
                stacklevel=2,
            )
        return self

    def _check_budget(self):
        if self.n_trials is None and self.timeout is None:
            if self._space_size() is None:
                raise ParameterError(
                    "n_trials=None runs trials until the timeout (or until every "
                    "point of a finite space is tried), but timeout=None and the "
                    "space has a continuous parameter; set timeout (seconds, "
                    "refit included) or n_trials."
                )

    # -- delegation -------------------------------------------------------------
    @property
    def classes_(self):
        """Class labels of ``best_estimator_``."""
        _search_has("classes_")(self)
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen by ``best_estimator_`` during fit."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute."
            ) from exc
        return self.best_estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """Feature names seen by ``best_estimator_`` during fit."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no feature_names_in_ attribute."
            ) from exc
        return self.best_estimator_.feature_names_in_

    def _check_fitted_refit(self, what):
        check_is_fitted(self)
        if not self.refit:
            raise AttributeError(
                f"{what} needs refit=True; refit manually with best_params_."
            )

    @available_if(lambda self: _search_has("predict")(self))
    def predict(self, X):
        """Predict with ``best_estimator_``."""
        self._check_fitted_refit("predict")
        return self.best_estimator_.predict(X)

    @available_if(lambda self: _search_has("predict_proba")(self))
    def predict_proba(self, X):
        """Class probabilities from ``best_estimator_``."""
        self._check_fitted_refit("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(lambda self: _search_has("predict_log_proba")(self))
    def predict_log_proba(self, X):
        """Class log-probabilities from ``best_estimator_``."""
        self._check_fitted_refit("predict_log_proba")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(lambda self: _search_has("decision_function")(self))
    def decision_function(self, X):
        """Decision function of ``best_estimator_``."""
        self._check_fitted_refit("decision_function")
        return self.best_estimator_.decision_function(X)

    @available_if(lambda self: _search_has("transform")(self))
    def transform(self, X):
        """Transform with ``best_estimator_`` (e.g. an RF-CNN embedder)."""
        self._check_fitted_refit("transform")
        return self.best_estimator_.transform(X)

    @available_if(lambda self: _search_has("inverse_transform")(self))
    def inverse_transform(self, X):
        """Inverse transform with ``best_estimator_``."""
        self._check_fitted_refit("inverse_transform")
        return self.best_estimator_.inverse_transform(X)

    def score(self, X, y=None):
        """Score of ``best_estimator_`` with ``scorer_``.

        Parameters
        ----------
        X : indexable, length n_samples
        y : array-like, default=None

        Returns
        -------
        score : float
        """
        self._check_fitted_refit("score")
        return self.scorer_(self.best_estimator_, X, y)

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.target_tags.required = sub.target_tags.required
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.non_deterministic = sub.non_deterministic
        return tags


def _search_has(attr):
    """``available_if`` check: refit on, and the (best) estimator has ``attr``."""

    def check(self):
        if not self.refit:
            raise AttributeError(
                f"{type(self).__name__} was built with refit=False; {attr} is "
                "available only after refitting. Refit manually with best_params_."
            )
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, attr)
            return True
        getattr(self.estimator, attr)
        return True

    return check


def run_worker(search, X, y=None, *, groups=None, **fit_params):
    """Join ``search``'s shared study and run trials until it holds ``n_trials``.

    The worker evaluates cross-validated scores exactly as
    :meth:`RFOptunaSearchCV.fit` does but never refits; run it in as many
    processes or machines as you like against one storage, then read the
    study (``rfcnn tune --report``) or fit an ``RFOptunaSearchCV`` with the
    same ``study_name`` to refit the best parameters. Together the workers
    finish exactly ``search.n_trials`` trials; a worker waits for the others'
    running trials so it can re-run one whose worker died (heartbeats).

    Parameters
    ----------
    search : RFOptunaSearchCV
        Its ``study_name`` must be set; its ``n_jobs`` workers run here.
    X, y, groups, **fit_params
        As in :meth:`RFOptunaSearchCV.fit`; every worker must use the same
        data and a deterministic ``cv`` so that folds agree.

    Returns
    -------
    study : optuna.Study

    Examples
    --------
    >>> import tempfile, os
    >>> from optuna.distributions import FloatDistribution
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     search = RFOptunaSearchCV(
    ...         LogisticRegression(max_iter=200),
    ...         {"C": FloatDistribution(1e-2, 1e2, log=True)},
    ...         n_trials=3, storage=os.path.join(tmp, "s.journal"),
    ...         study_name="iris", random_state=0,
    ...     )
    ...     study = run_worker(search, X, y)
    ...     len(study.trials)
    3
    """
    optuna = _import_optuna()
    if not isinstance(search, RFOptunaSearchCV):
        raise ParameterError(
            f"search={type(search).__name__} must be an RFOptunaSearchCV instance."
        )
    if not search.study_name:
        raise ParameterError(
            "run_worker needs search.study_name: workers meet in a named study."
        )
    search._validate_params()
    search._check_budget()
    X, y, groups = indexable(X, y, groups)
    previous = search._configure_logging()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study, _ = search._optimize(X, y, groups, fit_params, search.study_name)
    finally:
        optuna.logging.set_verbosity(previous)
    return study
