"""The exact-total trial scheduler of :class:`RFOptunaSearchCV`.

``n_trials`` is the number of finished trials (complete, pruned, or failed
fits) the study must hold.  Workers in several processes or machines count
together: a trial only runs if fewer than ``n_trials`` live or finished
trials precede it in the study's numbering (which the storage assigns
atomically), so two workers asked for a total of ``n_trials`` finish exactly
that many, even under races; a trial created past the total is closed as a
failed *surplus* trial without fitting anything.  A worker whose trial died
(killed process) leaves a running trial without heartbeat; another worker
fails it after the grace period and re-runs its parameters
(:func:`_run_trials`).

This module also names the user attributes every trial carries (the
objective writes them, :mod:`~sklearn_rfcnn.search._cv_results` reads them).
"""

import logging
import re
import statistics
import time
import warnings

from sklearn_rfcnn.search._spaces import _import_optuna

__all__ = []

#: User attributes the objective writes on each trial.
ATTR_SURPLUS = "rfcnn:surplus"
ATTR_FIT_FAILED = "rfcnn:fit_failed"
ATTR_TEST = "rfcnn:split_test_scores"
ATTR_TRAIN = "rfcnn:split_train_scores"
ATTR_FIT_TIME = "rfcnn:fit_times"
ATTR_SCORE_TIME = "rfcnn:score_times"
ATTR_EPOCHS = "rfcnn:n_epochs"
ATTR_WORKER = "rfcnn:worker"
ATTR_TIMEOUT = "rfcnn:stopped_by_timeout"


class _SurplusTrial(Exception):
    """Raised inside a trial created after the study reached its total."""


class _FailedFit(Exception):
    """Raised inside a trial whose fit failed and ``error_score`` is NaN."""


def _count_towards_total(trial, TrialState):
    """Whether a trial occupies one of the study's ``n_trials`` places."""
    state = trial.state
    if state in (TrialState.RUNNING, TrialState.WAITING):
        return True
    if state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return state == TrialState.FAIL and bool(trial.user_attrs.get(ATTR_FIT_FAILED))


def is_surplus(trial, n_trials):
    """Whether ``trial`` was created after the study reached ``n_trials``.

    A trial runs only if fewer than ``n_trials`` live or finished trials
    precede it in the study's numbering, which the storage assigns atomically,
    so workers racing for the last place never exceed the total.  A trial
    enqueued with the same fixed parameters as a live or finished one before
    it is surplus too: two workers that open a fresh study at once both
    enqueue its first trials (Optuna's ``skip_if_exists`` reads, then
    writes), and the second copy must not be fitted again.

    Parameters
    ----------
    trial : optuna.Trial
        A trial just created by ``study.optimize`` (or ``study.ask``).
    n_trials : int
        The study's total.

    Returns
    -------
    bool
    """
    optuna = _import_optuna()
    TrialState = optuna.trial.TrialState
    trials = trial.study.get_trials(deepcopy=False)
    before = [
        t
        for t in trials
        if t.number < trial.number and _count_towards_total(t, TrialState)
    ]
    fixed = next(
        (
            t.system_attrs.get("fixed_params")
            for t in trials
            if t.number == trial.number
        ),
        None,
    )
    if fixed and any(t.system_attrs.get("fixed_params") == fixed for t in before):
        return True
    return n_trials is not None and len(before) >= n_trials


class _QuietSurplus(logging.Filter):
    """Drop Optuna's failure log (with traceback) for surplus trials."""

    def __init__(self):
        super().__init__()
        self.numbers = set()

    def filter(self, record):
        message = record.getMessage()
        match = re.match(r"Trial (\d+) failed", message)
        if match is None:
            return True
        if "_SurplusTrial" in message:
            self.numbers.add(match.group(1))
            return False
        return match.group(1) not in self.numbers


def _install_log_filter():
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietSurplus) for f in logger.filters):
        logger.addFilter(_QuietSurplus())


def _trial_costs(trial):
    """(training s per fold-epoch, whole trial s per epoch) of a finished trial.

    Read from the user attributes the objective writes; a trial trained per
    fold (no epochs) counts as one epoch.  ``None`` when it recorded none.
    """
    fit = trial.user_attrs.get(ATTR_FIT_TIME)
    if not fit:
        return None
    score = trial.user_attrs.get(ATTR_SCORE_TIME) or [0.0]
    epochs = max(int(trial.user_attrs.get(ATTR_EPOCHS, 1)), 1)
    return sum(fit) / len(fit) / epochs, (sum(fit) + sum(score)) / epochs


class _Budget:
    """The time budget of a search: a deadline that the refit must also fit in.

    ``timeout`` counts from ``start`` (wall-clock ``time.time()``, so worker
    processes share it) and includes the refit: the refit is estimated from
    the measured trials as the training time per fold and epoch (of the best
    complete trial so far, or of the running one if that is slower) times
    ``n_epochs`` times ``refit_scale`` (all the data over a fold's training
    part; 0 without refit).  A trial starts only if the time left covers the
    refit and ``first_epochs`` epochs at the measured cost per epoch (median
    over the finished trials; ``first_epochs`` is the pruner's first
    decision, or the whole trial without pruning); a running trial stops
    before an epoch that would not leave time for the refit (it is closed as
    pruned, user attribute ``rfcnn:stopped_by_timeout``) unless no trial has
    completed yet: one complete trial is needed to refit, so a timeout
    shorter than one trial and the refit is overrun.
    """

    def __init__(
        self, timeout, *, start=None, refit_scale=0.0, n_epochs=None, first_epochs=1
    ):
        self.timeout = timeout
        self.start = time.time() if start is None else start
        self.refit_scale = refit_scale
        self.n_epochs = n_epochs
        self.first_epochs = first_epochs

    @property
    def deadline(self):
        return None if self.timeout is None else self.start + self.timeout

    def _finished(self, study):
        optuna = _import_optuna()
        TrialState = optuna.trial.TrialState
        out = []
        for t in study.get_trials(deepcopy=False):
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                costs = _trial_costs(t)
                if costs is not None:
                    out.append((t, costs))
        return out

    def refit_estimate(self, study, running_fold_epoch=None):
        """Seconds the refit is expected to take (0 without refit)."""
        if not self.refit_scale:
            return 0.0
        optuna = _import_optuna()
        complete = [
            (t, c)
            for t, c in self._finished(study)
            if t.state == optuna.trial.TrialState.COMPLETE
        ]
        per_epoch = []
        if complete:
            direction = study.direction == optuna.study.StudyDirection.MAXIMIZE
            best = (max if direction else min)(complete, key=lambda tc: tc[0].value)
            per_epoch.append(best[1][0])
        if running_fold_epoch is not None:
            per_epoch.append(running_fold_epoch)
        if not per_epoch:
            return 0.0
        return max(per_epoch) * (self.n_epochs or 1) * self.refit_scale

    def has_complete(self, study):
        optuna = _import_optuna()
        return any(
            t.state == optuna.trial.TrialState.COMPLETE
            for t in study.get_trials(deepcopy=False)
        )

    def can_start(self, study):
        """Whether a new trial may start now."""
        if self.timeout is None:
            return True
        left = self.deadline - time.time()
        if left <= 0:
            return False
        finished = self._finished(study)
        if not finished:
            return True
        # the median: robust to the first trial's one-off start-up costs
        per_epoch = statistics.median(c[1] for _, c in finished)
        return per_epoch * self.first_epochs + self.refit_estimate(study) <= left

    def next_epoch_fits(self, study, epoch_seconds, fold_epoch_seconds):
        """Whether one more epoch of the running trial leaves time for the refit."""
        if self.timeout is None or not self.has_complete(study):
            return True
        refit = self.refit_estimate(study, fold_epoch_seconds)
        return time.time() + epoch_seconds + refit <= self.deadline


def _tried_everything(trials, space_size, TrialState):
    """Whether the trials (finished or running) hold every point of the space."""
    if space_size is None:
        return False
    seen = {
        tuple(sorted(t.params.items()))
        for t in trials
        if t.state != TrialState.FAIL or t.user_attrs.get(ATTR_FIT_FAILED)
    }
    return len(seen) >= space_size


def _run_trials(study, objective, n_trials, budget, space_size=None):
    """Run trials until the study holds ``n_trials`` finished ones (or timeout).

    ``n_trials=None`` runs until ``budget`` (a :class:`_Budget`) lets no new
    trial start, or, for a finite space of ``space_size`` points, until every
    point has been tried (a trial is deterministic given its parameters).
    While other workers' trials are running and heartbeats are on, the worker
    waits rather than leaving, so it can re-run a trial whose worker dies.
    """
    optuna = _import_optuna()
    _install_log_filter()
    TrialState = optuna.trial.TrialState
    storage = study._storage
    interval = (
        storage.get_heartbeat_interval()
        if hasattr(storage, "get_heartbeat_interval")
        else None
    )
    while True:
        if not budget.can_start(study):
            return
        if interval is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        done = sum(
            1
            for t in trials
            if t.state.is_finished() and _count_towards_total(t, TrialState)
        )
        if n_trials is not None and done >= n_trials:
            return
        waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
        if n_trials is None and not waiting:
            if _tried_everything(trials, space_size, TrialState):
                return
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
        if n_trials is not None and done + running >= n_trials and waiting == 0:
            if interval is None:
                return
            time.sleep(min(1.0, interval / 2))
            continue
        study.optimize(
            objective,
            n_trials=1,
            catch=(_SurplusTrial, _FailedFit),
            gc_after_trial=False,
        )
