"""Every public transformer and estimator pickles, unfitted and fitted.

joblib ships estimators to its process and cluster backends (loky, Dask)
with pickle or cloudpickle; a fitted copy that comes back must give exactly
the outputs of the original.  The estimators are discovered as in
``tests/test_common.py`` and configured from ``TINY_PARAMS``, so a new public
estimator is covered without registering it here; the baseline
architectures of the CNN estimators are added by hand.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_rfcnn.utils._testing import TINY_PARAMS, make_tone

try:
    import cloudpickle
except ImportError:  # pragma: no cover - cloudpickle comes with joblib's loky
    from joblib.externals import cloudpickle

from test_common import ESTIMATOR_CLASSES

DUMPERS = {"pickle": pickle, "cloudpickle": cloudpickle}

_CNN = {"RFCNNClassifier", "RFCNNEmbedder"}
_BASELINES = {  # the paper's baselines: other architectures of the classifier
    "RFCNNClassifier[vgg_cnn]": ("RFCNNClassifier", {"arch": "vgg_cnn"}),
    "RFCNNClassifier[resnet18]": ("RFCNNClassifier", {"arch": "resnet18"}),
}


def _cases():
    cases = {}
    for name in sorted(ESTIMATOR_CLASSES):
        if name == "RFOptunaSearchCV":
            continue  # a meta-estimator: below, around a tiny classifier
        cases[name] = (name, {})
    cases.update(_BASELINES)
    return cases


CASES = _cases()


def _make(case):
    name, extra = CASES[case]
    params = {**TINY_PARAMS.get(name, {}), **extra}
    if "arch" in extra:  # rho, max_epochs... are CP-ResNet's; keep them tiny
        params.update(rho=None, width=4, max_epochs=2)
    return ESTIMATOR_CLASSES[name](**params)


def _data(name):
    """Inputs fitting each estimator, and its output method."""
    rng = np.random.default_rng(0)
    if name == "AudioLoader":
        waves = [make_tone(200.0 + 50 * i, duration=0.05) for i in range(4)]
        return waves, None, "transform"
    if name == "MelSpectrogram":
        return rng.normal(size=(4, 400)).astype(np.float32), None, "transform"
    X = rng.normal(size=(16, 8, 16)).astype(np.float32)
    y = np.arange(16) % 2
    X[y == 1, :4] += 2.0
    if name == "BandStandardizer":
        return X, None, "transform"
    if name == "RFCNNEmbedder":
        return X, y, "transform"
    return X, y, "predict_proba"


def _roundtrip(obj, dumper):
    return DUMPERS[dumper].loads(DUMPERS[dumper].dumps(obj))


def _same_output(a, b):
    if isinstance(a, list):
        return len(a) == len(b) and all(map(np.array_equal, a, b))
    return np.array_equal(a, b)


@pytest.mark.parametrize("dumper", sorted(DUMPERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_unfitted_roundtrip_keeps_params_and_fits_alike(case, dumper):
    est = _make(case)
    copy = _roundtrip(est, dumper)
    assert type(copy) is type(est)
    assert repr(copy.get_params()) == repr(est.get_params())
    name = CASES[case][0]
    if name in _CNN:
        return  # fitting each is below; a fitted copy must predict alike
    X, y, method = _data(name)
    a = getattr(clone(est).fit(X, y), method)(X)
    b = getattr(copy.fit(X, y), method)(X)
    assert _same_output(a, b)


@pytest.mark.parametrize("dumper", sorted(DUMPERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_fitted_roundtrip_predicts_identically(case, dumper):
    name = CASES[case][0]
    X, y, method = _data(name)
    est = _make(case).fit(X, y)
    before = getattr(est, method)(X)
    copy = _roundtrip(est, dumper)
    after = getattr(copy, method)(X)
    assert _same_output(before, after)
    # the original still works after being pickled (no state moved out of it)
    assert _same_output(getattr(est, method)(X), before)
    if name == "RFCNNClassifier":
        assert np.array_equal(copy.predict(X), est.predict(X))


def test_torch_mel_pickles():
    from sklearn_rfcnn.transformers._mel_torch import TorchMel

    mel = TorchMel(
        sr=8000, n_fft=64, hop_length=16, n_mels=8, fmin=0.0, fmax=None, scale="db"
    )
    Y = np.random.default_rng(0).normal(size=(2, 400)).astype(np.float32)
    for dumper in DUMPERS:
        assert np.array_equal(_roundtrip(mel, dumper)(Y), mel(Y))


@pytest.mark.parametrize("dumper", sorted(DUMPERS))
def test_optuna_search_unfitted_roundtrip(dumper):
    pytest.importorskip("optuna")
    search_cls = ESTIMATOR_CLASSES.get("RFOptunaSearchCV")
    if search_cls is None:  # pragma: no cover - optuna present but layer absent
        pytest.skip("the search layer is not importable")
    clf = _make("RFCNNClassifier")
    search = search_cls(clf, {"rho": [1, 2]}, n_trials=2, cv=2, random_state=0)
    copy = _roundtrip(search, dumper)
    assert type(copy) is search_cls
    assert repr(copy.get_params(deep=False)) == repr(search.get_params(deep=False))
    assert repr(copy.estimator.get_params()) == repr(clf.get_params())
