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
    so workers racing for the last place never exceed the total.

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
    before = [
        t
        for t in trial.study.get_trials(deepcopy=False)
        if t.number < trial.number and _count_towards_total(t, TrialState)
    ]
    return len(before) >= n_trials


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


def _run_trials(study, objective, n_trials, timeout):
    """Run trials until the study holds ``n_trials`` finished ones (or timeout).

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
    start = time.monotonic()
    while True:
        if timeout is not None and time.monotonic() - start >= timeout:
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
        if done >= n_trials:
            return
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
        if done + running >= n_trials and waiting == 0:
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
