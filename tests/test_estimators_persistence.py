"""Pickle, clone and the pickle-free save/load format of the estimators."""

import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from _helpers import random_spectrograms
from sklearn.base import clone

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.exceptions import DataError, ParameterError, RFCNNWarning
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

FAST = dict(FAST_CNN_PARAMS)


@pytest.fixture(scope="module")
def data():
    return random_spectrograms(["bass", "drums", "voice"])


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return RFCNNClassifier(**FAST, swa=True).fit(X, y)


def test_pickle_and_joblib_round_trip(fitted, data, tmp_path):
    X = data[0]
    expected = fitted.predict_proba(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    joblib.dump(fitted, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_clone_is_unfitted_with_same_params(fitted):
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not hasattr(fresh, "net_")


@pytest.mark.parametrize("labels", ["strings", "ints", "multilabel"])
def test_save_load_round_trip(data, tmp_path, labels):
    X, y, Y = data
    target = {
        "strings": y,
        "ints": np.searchsorted(np.unique(y), y) * 10,
        "multilabel": Y,
    }[labels]
    clf = RFCNNClassifier(**FAST).fit(X, target)
    path = clf.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == [
        "README.md",
        "config.json",
        "weights.pt",
    ]
    loaded = RFCNNClassifier.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    pred, ref = loaded.predict(X), clf.predict(X)
    np.testing.assert_array_equal(pred, ref)
    assert pred.dtype == ref.dtype
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.get_params() == clf.get_params()
    assert loaded.receptive_field_ == clf.receptive_field_
    assert len(loaded.history_) == len(clf.history_)
    # loaded models keep training
    loaded.partial_fit(X, target)
    assert len(loaded.history_) == len(clf.history_) + 1


def test_saved_files_are_json_and_plain_tensors(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    assert config["estimator"] == "RFCNNClassifier"
    assert config["params"]["rho"] == 2
    assert config["fitted"]["classes"]["values"] == ["bass", "drums", "voice"]
    state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_load_uses_weights_only(fitted, tmp_path, monkeypatch):
    path = fitted.save(tmp_path / "m")
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    RFCNNClassifier.load(path)
    assert calls and all(
        c.get("weights_only") is True and c.get("map_location") == "cpu" for c in calls
    )


def test_model_saved_for_cuda_loads_on_cpu(fitted, data, tmp_path, monkeypatch):
    X = data[0]
    path = fitted.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["params"]["device"] = "cuda"
    # as if saved on a GPU machine: the checksum then covers device="cuda"
    from sklearn_rfcnn.estimators._persistence import _config_checksum

    config["checksum"] = _config_checksum(config, config["weights_sha256"])
    (path / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(RFCNNWarning, match="CPU"):
        loaded = RFCNNClassifier.load(path)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_embedder_save_load(data, tmp_path):
    X, y, _ = data
    emb = RFCNNEmbedder(**FAST).fit(X, y)
    loaded = RFCNNEmbedder.load(emb.save(tmp_path / "e"))
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))


def test_save_rejects_unserialisable_params_and_load_checks_folder(data, tmp_path):
    from skorch.callbacks import EpochScoring

    X, y, _ = data
    clf = RFCNNClassifier(**FAST, callbacks=[EpochScoring("accuracy")]).fit(X, y)
    with pytest.raises(ParameterError, match="callbacks"):
        clf.save(tmp_path / "m")
    with pytest.raises(DataError, match=r"nowhere.* does not exist"):
        RFCNNClassifier.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"config\.json"):
        RFCNNClassifier.load(tmp_path / "empty")


# ---------------------------------------------------------------------------
# files saved by an earlier release (tests/data/release_0_1, format_version 1,
# default rho 5): they keep loading and give the same outputs
# ---------------------------------------------------------------------------
_RELEASE_0_1 = Path(__file__).parent / "data" / "release_0_1"


def test_release_0_1_classifier_loads_with_equal_outputs():
    expected = np.load(_RELEASE_0_1 / "expected.npz")
    clf = RFCNNClassifier.load(_RELEASE_0_1 / "classifier")
    np.testing.assert_allclose(
        clf.predict_proba(expected["X"]), expected["classifier_proba"], atol=1e-5
    )


def test_release_0_1_pipeline_loads_with_equal_outputs():
    from sklearn_rfcnn import load_pipeline

    expected = np.load(_RELEASE_0_1 / "expected.npz")
    pipe = load_pipeline(_RELEASE_0_1 / "pipeline")
    np.testing.assert_allclose(
        pipe.predict_proba(expected["waves"]), expected["pipeline_proba"], atol=1e-5
    )


# ---------------------------------------------------------------------------
# files saved just before the architecture step (tests/data/release_0_2,
# commit 063a992): a windowed classifier, an embedder, a VGG-style baseline and
# a pipeline keep loading with equal outputs
# ---------------------------------------------------------------------------
_RELEASE_0_2 = Path(__file__).parent / "data" / "release_0_2"


@pytest.mark.parametrize(
    "folder, method, key",
    [
        ("windowed_classifier", "predict_proba", "windowed_proba"),
        ("embedder", "transform", "embedding"),
        ("vgg_classifier", "predict_proba", "vgg_proba"),
    ],
)
def test_release_0_2_estimators_load_with_equal_outputs(folder, method, key):
    from sklearn_rfcnn import RFCNNEmbedder

    expected = np.load(_RELEASE_0_2 / "expected.npz")
    cls = RFCNNEmbedder if folder == "embedder" else RFCNNClassifier
    est = cls.load(_RELEASE_0_2 / folder)
    np.testing.assert_allclose(
        getattr(est, method)(expected["X"]), expected[key], rtol=1e-5, atol=1e-6
    )


def test_files_older_than_the_masks_keep_their_recipe():
    # written before freq_mask / time_mask existed: their models trained
    # without masks, so a refit of the loaded model must not add them
    from sklearn_rfcnn import load_pipeline

    assert (RFCNNClassifier().freq_mask, RFCNNClassifier().time_mask) == ("auto",) * 2
    for est in (
        RFCNNClassifier.load(_RELEASE_0_1 / "classifier"),
        RFCNNClassifier.load(_RELEASE_0_2 / "windowed_classifier"),
        load_pipeline(_RELEASE_0_2 / "pipeline")[-1],
    ):
        assert (est.freq_mask, est.time_mask) == (0, 0)


def test_saved_masks_round_trip(tmp_path, bands):
    X, Y = bands
    clf = RFCNNClassifier(**FAST, freq_mask=3, time_mask=0.5).fit(X, Y)
    loaded = RFCNNClassifier.load(clf.save(tmp_path / "m"))
    assert (loaded.freq_mask, loaded.time_mask) == (3, 0.5)


def test_release_0_2_pipeline_loads_with_equal_outputs():
    from sklearn_rfcnn import load_pipeline

    expected = np.load(_RELEASE_0_2 / "expected.npz")
    pipe = load_pipeline(_RELEASE_0_2 / "pipeline")
    np.testing.assert_allclose(
        pipe.predict_proba(expected["waves"]),
        expected["pipeline_proba"],
        rtol=1e-5,
        atol=1e-6,
    )
