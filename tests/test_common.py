"""scikit-learn's common checks over every public estimator of the library.

Estimators are discovered from the public subpackages (nothing to register by
hand); tiny CPU configurations and the expected failures, each with a reason,
live in one table: :mod:`sklearn_rfcnn.utils._testing`.
"""

import importlib
import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

from sklearn_rfcnn.utils._testing import EXPECTED_FAILED_CHECKS, TINY_PARAMS

PUBLIC_SUBPACKAGES = ["transformers", "estimators", "search"]


def _discover():
    found = {}
    for sub in PUBLIC_SUBPACKAGES:
        try:
            module = importlib.import_module(f"sklearn_rfcnn.{sub}")
        except ModuleNotFoundError:  # optional layer not installed
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                found[name] = obj
    return found


ESTIMATOR_CLASSES = _discover()


def _instance(name, cls):
    return cls(**TINY_PARAMS.get(name, {}))


# Meta-estimators need an inner estimator; they are checked in their own module.
_CHECKED_HERE = {n: c for n, c in ESTIMATOR_CLASSES.items() if n != "RFOptunaSearchCV"}
ESTIMATORS = [_instance(n, c) for n, c in sorted(_CHECKED_HERE.items())]


def test_every_public_estimator_has_a_tiny_config():
    missing = sorted(set(ESTIMATOR_CLASSES) - set(TINY_PARAMS))
    assert not missing, f"add tiny configurations to TINY_PARAMS for {missing}"


def test_discovery_finds_the_front_end():
    assert {"MelSpectrogram", "BandStandardizer", "AudioLoader"} <= set(
        ESTIMATOR_CLASSES
    )


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)
