"""Receptive-field-centred hyper-parameter search with Optuna.

:func:`rf_search_space` builds the default space (rho or rho_f/rho_t, width,
mixup, learning rate, weight decay, Shake-Shake, frequency-aware blocks);
:class:`RFOptunaSearchCV` searches it as a scikit-learn meta-estimator, with
per-epoch pruning and studies shared by processes or machines;
:func:`run_worker` joins a shared study without refitting;
:func:`report_study` summarises a study (best trials, receptive field in
seconds) and plots it.

Optuna is an optional dependency: ``pip install 'sklearn-rfcnn[tune]'``.
"""

from sklearn_rfcnn.search._optuna import RFOptunaSearchCV, run_worker
from sklearn_rfcnn.search._report import receptive_field_seconds, report_study
from sklearn_rfcnn.search._spaces import (
    DEFAULT_SPACE_NAMES,
    find_rf_prefix,
    fitted_search_space,
    rf_search_space,
)
from sklearn_rfcnn.search._storage import (
    create_or_load_study,
    make_storage,
    storage_kind,
)

__all__ = [
    "DEFAULT_SPACE_NAMES",
    "RFOptunaSearchCV",
    "create_or_load_study",
    "find_rf_prefix",
    "fitted_search_space",
    "make_storage",
    "receptive_field_seconds",
    "report_study",
    "rf_search_space",
    "run_worker",
    "storage_kind",
]
