"""The Optuna study behind a search: storage, sampler, pruner, trials, workers.

:class:`_StudyMixin` gives :class:`~sklearn_rfcnn.search.RFOptunaSearchCV` the
study it runs: the storage and sampler, the successive-halving pruner over
epochs, the trials enqueued first (the estimator's own configuration, then
coarse to fine), the objective, the time budget (refit included), the
validation splits (one stratified hold-out for ``cv=None``) and the worker
threads and processes.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.search._objective import (
    _final_step,
    _n_epochs,
    _n_samples,
    _Objective,
)
from sklearn_rfcnn.search._scheduler import _Budget, _run_trials
from sklearn_rfcnn.search._spaces import (
    _import_optuna,
    fitted_search_space,
)
from sklearn_rfcnn.search._storage import (
    create_or_load_study,
    make_storage,
    storage_kind,
)
from sklearn_rfcnn.utils._parallel import (
    distributed_backend,
    n_processes,
    process_executor,
    threads_per_worker,
)

__all__ = ["clone_sampler"]

#: Validation share of the one split ``cv=None`` draws for epoch-trained estimators.
HOLDOUT_FRACTION = 0.2


def _process_worker(search, X, y, splits, fit_params, study_name, seed, reseed, budget):
    """One worker process: join the study and run trials (no refit)."""
    search._configure_logging()
    storage = search._make_storage(study_name)
    sampler = search._make_sampler(seed, reseed)
    study = create_or_load_study(
        storage, study_name, sampler=sampler, pruner=search._make_pruner()
    )
    objective = search._make_objective(X, y, splits, fit_params, budget)
    _run_trials(study, objective, search.n_trials, budget, search._space_size())
    return True


def _epoch_trained(estimator):
    """Epochs of the final step when it trains per epoch (``partial_fit``)."""
    _, final = _final_step(estimator)
    n_epochs, _ = _n_epochs(final)
    return n_epochs if hasattr(final, "partial_fit") else None


def _holdout(y, classifier, rng):
    """One (train, validation) split of ``HOLDOUT_FRACTION``, stratified if possible."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    from sklearn_rfcnn.utils._stratify import multilabel_holdout

    y = np.asarray(y)
    n = len(y)
    n_valid = max(1, round(HOLDOUT_FRACTION * n))
    if n - n_valid < 1:
        raise ParameterError(
            f"cv=None holds out {HOLDOUT_FRACTION:.0%} of the data for validation, "
            f"which leaves nothing to train on with {n} samples; pass more data or "
            "an explicit cv."
        )
    seed = int(rng.randint(np.iinfo(np.int32).max))
    if classifier and y.ndim == 2:
        return multilabel_holdout(y, n_valid, random_state=seed)
    splitter = ShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
    if classifier:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and min(n_valid, n - n_valid) >= len(counts):
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=n_valid, random_state=seed
            )
    return next(splitter.split(np.zeros(n), y))


def _coarse_to_fine(values):
    """``values`` reordered middle, ends, then ever finer (no repeats)."""
    values = list(values)
    order, seen = [], set()
    fractions = [0.5, 1.0, 0.0]
    denominator = 4
    while len(order) < len(values):
        for f in fractions:
            i = round(f * (len(values) - 1))
            if i not in seen:
                seen.add(i)
                order.append(values[i])
        fractions = [k / denominator for k in range(1, denominator, 2)]
        denominator *= 2
    return order


def clone_sampler(sampler):
    """A deep copy of an Optuna sampler (its state must not be shared)."""
    import copy

    return copy.deepcopy(sampler)


class _StudyMixin:
    """Runs the study of a search (see the module docstring)."""

    def _make_storage(self, study_name):
        return make_storage(
            self.storage,
            study_name=study_name,
            data_home=self.data_home,
            heartbeat_interval=self.heartbeat_interval,
            grace_period=self.grace_period,
        )

    def _make_sampler(self, seed, reseed=False):
        optuna = _import_optuna()
        if self.sampler is not None:
            sampler = clone_sampler(self.sampler)
            if reseed:
                sampler.reseed_rng()
            return sampler
        return optuna.samplers.TPESampler(seed=seed)

    def _first_rung(self):
        """Epochs before the default pruner's first decision (None: per fold)."""
        n_epochs = _epoch_trained(self.estimator)
        return None if n_epochs is None else max(1, n_epochs // 4)

    def _make_pruner(self):
        optuna = _import_optuna()
        if self.pruning is True:
            rung = self._first_rung()
            if rung is not None:  # multi-fidelity over epochs
                return optuna.pruners.SuccessiveHalvingPruner(
                    min_resource=rung, reduction_factor=3
                )
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        if self.pruning is False:
            return optuna.pruners.NopPruner()
        return self.pruning

    def _trial_estimator(self):
        """The estimator the trials clone: its own output silenced below verbose=2.

        Every ``verbose`` parameter inside it (the epoch table of an RF-CNN)
        is set to 0, so a search prints one line per trial at ``verbose=1``
        and nothing at 0; the refit keeps the estimator's own verbosity.
        """
        if self.verbose >= 2:
            return self.estimator
        loud = {
            name: 0
            for name, value in self.estimator.get_params(deep=True).items()
            if name.rpartition("__")[2] == "verbose"
            and isinstance(value, Integral)
            and value
        }
        return clone(self.estimator).set_params(**loud) if loud else self.estimator

    def _space_size(self):
        """Number of points of a finite space (only integers and choices)."""
        optuna = _import_optuna()
        d = optuna.distributions
        size = 1
        for dist in self._distributions().values():
            if isinstance(dist, d.CategoricalDistribution):
                size *= len(dist.choices)
            elif isinstance(dist, d.IntDistribution) and not dist.log:
                size *= (dist.high - dist.low) // dist.step + 1
            else:
                return None
        return size

    def _first_trials(self):
        """Parameter sets to enqueue in a fresh study, in order.

        The estimator's own values come first (so the search never ends below
        the configuration it was given); with the default space every other
        value follows, coarse to fine (middle, ends, then between), each run
        once with the pruner cutting the weak ones early.
        """
        if self.param_distributions is None:
            space, own = fitted_search_space(self.estimator)
            first = [own] if own else []
            if len(space) == 1:
                ((name, dist),) = space.items()
                values = range(dist.low, dist.high + 1, dist.step)
                first += [
                    {name: v}
                    for v in _coarse_to_fine([v for v in values if v != own.get(name)])
                ]
            return first
        params = self.estimator.get_params(deep=True)
        own = {}
        for name, dist in self._distributions().items():
            value = params.get(name)
            try:
                if value is not None and dist._contains(dist.to_internal_repr(value)):
                    own[name] = value
            except (TypeError, ValueError):
                continue
        return [own] if own else []

    def _make_objective(self, X, y, splits, fit_params, budget=None):
        return _Objective(
            self._trial_estimator(),
            self._distributions(),
            X,
            y,
            splits,
            self._scorer(),
            fit_params,
            n_trials=self.n_trials,
            pruning=self.pruning is not False,
            error_score=self.error_score,
            return_train_score=self.return_train_score,
            budget=budget,
        )

    def _make_budget(self, n_samples, splits, start, refit):
        """The search's :class:`_Budget` (the timeout covers the refit)."""
        n_epochs = _epoch_trained(self.estimator)
        if self.pruning is True:
            first = self._first_rung() or 1
        elif self.pruning is False:
            first = n_epochs or 1
        else:
            first = 1
        n_train = np.mean([len(train) for train, _ in splits])
        return _Budget(
            self.timeout,
            start=start,
            refit_scale=n_samples / n_train if refit else 0.0,
            n_epochs=n_epochs if self.pruning is not False else 1,
            first_epochs=first,
        )

    def _configure_logging(self):
        optuna = _import_optuna()
        level = optuna.logging.INFO if self.verbose else optuna.logging.WARNING
        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(level)
        return previous

    def _splits(self, X, y, groups, rng=None):
        """The validation splits every trial uses (drawn once) and the splitter.

        ``cv=None``: one stratified hold-out of ``HOLDOUT_FRACTION`` for an
        estimator trained per epoch (a CNN: one model per trial, pruned per
        epoch), label-aware for a multi-label indicator ``y``
        (:func:`~sklearn_rfcnn.utils._stratify.multilabel_holdout`);
        3-fold cross-validation for any other estimator.
        """
        if self.cv is None and _epoch_trained(self.estimator) and y is not None:
            rng = check_random_state(self.random_state if rng is None else rng)
            return [_holdout(y, is_classifier(self.estimator), rng)], None
        cv = check_cv(
            3 if self.cv is None else self.cv,
            y,
            classifier=is_classifier(self.estimator),
        )
        return list(cv.split(X, y, groups)), cv

    def _optimize(self, X, y, groups, fit_params, study_name, start=None, refit=False):
        """Run this process's share of the trials; returns the study.

        ``start`` (``time.time()``) is when the timeout began; ``refit``
        whether a refit follows (the timeout keeps time for it).
        """
        storage = self._make_storage(study_name)
        kind = storage_kind(self.storage)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        study = create_or_load_study(
            storage,
            study_name,
            sampler=self._make_sampler(seed),
            pruner=self._make_pruner(),
        )
        splits, _ = self._splits(X, y, groups, rng)
        if not study.get_trials(deepcopy=False):
            for params in self._first_trials():
                study.enqueue_trial(params, skip_if_exists=True)
        budget = self._make_budget(_n_samples(X), splits, start, refit)
        size = self._space_size()
        n_jobs = n_processes(self.n_jobs)
        if n_jobs == 1:
            objective = self._make_objective(X, y, splits, fit_params, budget)
            _run_trials(study, objective, self.n_trials, budget, size)
        elif kind in ("journal", "rdb"):
            self._run_process_workers(
                study, n_jobs, X, y, splits, fit_params, study_name, seed, budget
            )
        else:
            objective = self._make_objective(X, y, splits, fit_params, budget)
            with ThreadPoolExecutor(n_jobs) as pool:
                futures = [
                    pool.submit(
                        _run_trials, study, objective, self.n_trials, budget, size
                    )
                    for _ in range(n_jobs)
                ]
                for future in futures:
                    future.result()
        return study, splits

    def _run_process_workers(
        self, study, n_jobs, X, y, splits, fit_params, study_name, seed, budget
    ):
        """``n_jobs`` workers of a journal or RDB study, in several processes.

        Under a joblib backend that runs elsewhere (``joblib.parallel_config(
        "dask")``, Ray ...) all ``n_jobs`` workers are tasks of that backend.
        Otherwise this process is worker 0 (its imports are done and its data
        loaded) while ``n_jobs - 1`` processes of joblib's reusable loky
        executor (:func:`~sklearn_rfcnn.utils._parallel.process_executor`,
        threads shared out as joblib does) join the study: a fresh process
        spends seconds importing torch and scikit-learn before its first
        trial, and this way only the extra workers pay that (and only on the
        first fit: the executor keeps them for the next one).
        """
        args = (self, X, y, splits, fit_params, study_name)
        if distributed_backend() is not None:
            from joblib import Parallel, delayed

            Parallel(n_jobs=n_jobs)(  # the active backend's own configuration
                delayed(_process_worker)(*args, seed + i, i > 0, budget)
                for i in range(n_jobs)
            )
            return
        from threadpoolctl import threadpool_limits

        executor = process_executor(n_jobs - 1)
        others = [
            executor.submit(_process_worker, *args, seed + i, True, budget)
            for i in range(1, n_jobs)
        ]
        # this process shares the cores with them, like the workers' limit
        limit = None if "OMP_NUM_THREADS" in os.environ else threads_per_worker(n_jobs)
        try:
            objective = self._make_objective(X, y, splits, fit_params, budget)
            with threadpool_limits(limits=limit):
                _run_trials(study, objective, self.n_trials, budget, self._space_size())
            for future in others:
                future.result()
        except BaseException:
            # this worker failed or was interrupted: stop the others too
            executor.shutdown(wait=False, kill_workers=True)
            raise
