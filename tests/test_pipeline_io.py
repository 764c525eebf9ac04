"""save_pipeline / load_pipeline: whole fitted pipelines without pickle."""

import json
import os
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_rfcnn import (
    AudioLoader,
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    RFCNNEmbedder,
    load_pipeline,
    save_pipeline,
)
from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, write_tones

SR = 8000
MEL = {"sr": SR, "n_fft": 256, "hop_length": 64, "n_mels": 16}


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    freqs = [220, 240, 260, 280, 1800, 1850, 1900, 1950]
    paths = write_tones(folder, freqs, duration=0.4, sr=SR)
    labels = np.array(["low"] * 4 + ["high"] * 4, dtype=object)
    return paths, labels


@pytest.fixture(scope="module")
def fitted(tones):
    paths, labels = tones
    pipe = Pipeline(
        [
            ("load", AudioLoader(sr=SR, duration=0.4)),
            ("mel", MelSpectrogram(**MEL)),
            ("norm", BandStandardizer()),
            ("clf", RFCNNClassifier(**FAST_CNN_PARAMS)),
        ]
    )
    return pipe.fit(paths, labels)


def _no_leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_round_trip_predicts_identically(fitted, tones, tmp_path):
    paths, _ = tones
    folder = save_pipeline(fitted, tmp_path / "model")
    assert (folder / "pipeline.json").is_file()
    assert not _no_leftovers(tmp_path)
    loaded = load_pipeline(folder)
    assert isinstance(loaded, Pipeline)
    assert [name for name, _ in loaded.steps] == ["load", "mel", "norm", "clf"]
    for (_, a), (_, b) in zip(fitted.steps, loaded.steps):
        assert type(a) is type(b)
        assert a.get_params() == b.get_params() or isinstance(a, RFCNNClassifier)
    norm = loaded.named_steps["norm"]
    np.testing.assert_array_equal(norm.mean_, fitted.named_steps["norm"].mean_)
    np.testing.assert_array_equal(norm.scale_, fitted.named_steps["norm"].scale_)
    assert norm.mean_.dtype == np.float64
    np.testing.assert_array_equal(
        loaded.predict_proba(paths), fitted.predict_proba(paths)
    )
    np.testing.assert_array_equal(loaded.predict(paths), fitted.predict(paths))
    # arrays are plain numbers: readable without pickle
    with np.load(folder / "arrays.npz", allow_pickle=False) as f:
        assert any(key.endswith(".mean_") for key in f.files)


def test_metadata_and_its_validation(fitted, tmp_path):
    meta = {"tags": ["a", "b"], "n_train": 8}
    save_pipeline(fitted, tmp_path / "m", metadata=meta)
    _, got = load_pipeline(tmp_path / "m", return_metadata=True)
    assert got == meta
    with pytest.raises(ParameterError, match="JSON-serialisable"):
        save_pipeline(fitted, tmp_path / "m2", metadata={"x": object()})
    assert not (tmp_path / "m2").exists()


def test_overwrite_rules_and_atomic_replace(fitted, tmp_path):
    target = tmp_path / "model"
    save_pipeline(fitted, target, metadata={"run": 1})
    with pytest.raises(ParameterError, match="overwrite=True"):
        save_pipeline(fitted, target, metadata={"run": 2})
    save_pipeline(fitted, target, metadata={"run": 2}, overwrite=True)
    assert load_pipeline(target, return_metadata=True)[1] == {"run": 2}
    assert not _no_leftovers(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ParameterError, match="not a saved pipeline"):
        save_pipeline(fitted, other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    save_pipeline(fitted, empty)  # an empty folder is fine
    assert (empty / "pipeline.json").is_file()


def test_a_failed_save_leaves_the_old_folder_intact(fitted, tmp_path, monkeypatch):
    target = tmp_path / "model"
    save_pipeline(fitted, target, metadata={"run": 1})

    def broken(self, path, params=None):
        raise OSError("disk full")

    monkeypatch.setattr(RFCNNClassifier, "_write_files", broken)
    with pytest.raises(OSError, match="disk full"):
        save_pipeline(fitted, target, metadata={"run": 2}, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        save_pipeline(fitted, tmp_path / "new")
    monkeypatch.undo()
    assert load_pipeline(target, return_metadata=True)[1] == {"run": 1}
    assert not (tmp_path / "new").exists()
    assert not _no_leftovers(tmp_path)


def test_unfitted_and_non_pipeline_inputs_are_refused(tmp_path):
    pipe = make_pipeline(MelSpectrogram(**MEL), BandStandardizer())
    with pytest.raises(NotFittedError, match="'bandstandardizer'"):
        save_pipeline(pipe, tmp_path / "a")
    with pytest.raises(ParameterError, match="make_pipeline"):
        save_pipeline(BandStandardizer(), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_load_errors_name_the_folder_and_the_fix(fitted, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_pipeline(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"no pipeline\.json"):
        load_pipeline(tmp_path / "plain")
    folder = save_pipeline(fitted, tmp_path / "m")
    config = json.loads((folder / "pipeline.json").read_text())
    config["format_version"] = 99
    (folder / "pipeline.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="upgrade sklearn-rfcnn"):
        load_pipeline(folder)


def _waves():
    rng = np.random.default_rng(0)
    t = np.arange(3200) / SR
    waves = [np.sin(2 * np.pi * f * t) for f in (200, 220, 240, 1800, 1900, 2000)]
    return (np.array(waves) + 0.01 * rng.normal(size=(6, 3200))).astype(np.float32)


def test_embedder_with_plain_sklearn_steps_through_skops(tmp_path):
    pytest.importorskip("skops")
    from sklearn.svm import SVC

    X, y = _waves(), np.array([0, 0, 0, 1, 1, 1])
    pipe = make_pipeline(
        MelSpectrogram(**MEL),
        BandStandardizer(),
        RFCNNEmbedder(**FAST_CNN_PARAMS),
        StandardScaler(),
        SVC(),
    ).fit(X, y)
    folder = save_pipeline(pipe, tmp_path / "m")
    assert sorted(p.name for p in (folder / "steps").iterdir()) == [
        "step2",
        "step3.skops",
        "step4.skops",
    ]
    loaded = load_pipeline(folder)
    np.testing.assert_array_equal(
        loaded.decision_function(X), pipe.decision_function(X)
    )


def test_nested_pipeline_and_passthrough(tmp_path):
    X, y = _waves(), np.array([0, 0, 0, 1, 1, 1])
    front = make_pipeline(MelSpectrogram(**MEL), BandStandardizer())
    pipe = Pipeline(
        [
            ("front", front),
            ("skip", "passthrough"),
            ("clf", RFCNNClassifier(**FAST_CNN_PARAMS)),
        ]
    ).fit(X, y)
    loaded = load_pipeline(save_pipeline(pipe, tmp_path / "m"))
    assert loaded.named_steps["skip"] == "passthrough"
    assert isinstance(loaded.named_steps["front"], Pipeline)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


class _Custom(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return X


def test_steps_that_cannot_be_stored_safely_are_refused(tmp_path, monkeypatch):
    X = np.random.default_rng(0).normal(size=(6, 3))
    pipe = make_pipeline(StandardScaler(), _Custom()).fit(X)
    pytest.importorskip("skops")
    with pytest.raises(ParameterError, match=r"'_custom'.*loaded safely"):
        save_pipeline(pipe, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    assert not _no_leftovers(tmp_path)
    # without skops, a plain scikit-learn step is a clear ImportError
    monkeypatch.setitem(sys.modules, "skops.io", None)
    monkeypatch.setitem(sys.modules, "skops", None)
    with pytest.raises(ImportError, match=r"'standardscaler'.*pip install skops"):
        save_pipeline(make_pipeline(StandardScaler()).fit(X), tmp_path / "b")


def test_trusted_types_for_skops_steps(tmp_path):
    pytest.importorskip("skops")
    from sklearn.tree import DecisionTreeClassifier

    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), DecisionTreeClassifier()).fit(X, y)
    folder = save_pipeline(pipe, tmp_path / "m")
    np.testing.assert_array_equal(load_pipeline(folder).predict(X), pipe.predict(X))
    assert os.path.isfile(folder / "steps" / "step1.skops")
