"""End to end on generated audio: file paths -> mel -> z-score -> CNN."""

import numpy as np
import pytest
import soundfile as sf
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC

from sklearn_rfcnn import (
    AudioLoader,
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    RFCNNEmbedder,
)
from sklearn_rfcnn.utils._testing import make_tone

SR = 8000
MEL = dict(sr=SR, n_fft=256, hop_length=64, n_mels=16)
# float32 everywhere: the accuracy bars below are sanity checks of tiny
# 20-epoch fits, and bf16 ("auto" on CPUs with native bf16) moves such a fit
# by a seed's worth (0.67-0.92 over seeds; float32 0.88-0.92).  bf16 against
# float32 at a realistic size: benchmarks/README.md.
CNN = dict(
    precision="32",
    width=8,
    rho=2,
    max_epochs=20,
    batch_size=8,
    lr=1e-2,
    mixup_alpha=0.0,
    roll=4,
    verbose=0,
    device="cpu",
    random_state=0,
    validation_fraction=None,
)
#: tag -> frequency in Hz
TAGS = {"low": 300.0, "mid": 1000.0, "high": 3000.0}


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """24 short clips mixing 1-2 tones; multi-hot tags and a string label."""
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    names = list(TAGS)
    paths, Y, labels = [], [], []
    for i in range(24):
        main = i % 3
        row = np.zeros(3, dtype=int)
        row[main] = 1
        if rng.random() < 0.5:
            row[rng.integers(3)] = 1
        y = sum(
            make_tone(TAGS[names[j]], duration=0.4, sr=SR, phase=rng.random() * 6)
            for j in np.flatnonzero(row)
        )
        y = y + 0.01 * rng.normal(size=y.shape).astype(np.float32)
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, y, SR)
        paths.append(str(path))
        Y.append(row)
        labels.append(names[main])
    return np.array(paths), np.array(Y), np.array(labels)


def _pipe(**cnn):
    return Pipeline(
        [
            ("load", AudioLoader(sr=SR, duration=0.4)),
            ("mel", MelSpectrogram(**MEL)),
            ("norm", BandStandardizer()),
            ("clf", RFCNNClassifier(**{**CNN, **cnn})),
        ]
    )


def test_pipeline_multilabel_tags_from_paths(audio):
    paths, Y, _ = audio
    pipe = _pipe().fit(paths, Y)
    proba = pipe.predict_proba(paths)
    assert proba.shape == Y.shape
    assert pipe.predict(paths).shape == Y.shape
    # the tones are trivially separable along frequency
    from sklearn.metrics import average_precision_score

    assert average_precision_score(Y, proba, average="macro") > 0.8


def test_pipeline_string_labels_clone_pickle_save(audio, tmp_path):
    import pickle

    paths, _, labels = audio
    pipe = _pipe().fit(paths, labels)
    pred = pipe.predict(paths)
    assert set(pred) <= set(TAGS)
    assert (pred == labels).mean() > 0.7
    proba = pipe.predict_proba(paths)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(pipe)).predict_proba(paths), proba
    )
    refit = clone(pipe).fit(paths, labels)
    np.testing.assert_array_equal(refit.predict_proba(paths), proba)
    clf = pipe.named_steps["clf"]
    loaded = RFCNNClassifier.load(clf.save(tmp_path / "clf"))
    pipe_loaded = Pipeline([*pipe.steps[:-1], ("clf", loaded)])
    np.testing.assert_array_equal(pipe_loaded.predict_proba(paths), proba)


def test_variable_length_audio(audio, tmp_path):
    paths, _, labels = audio
    pipe = _pipe(max_epochs=2)
    pipe.set_params(load__duration=None)
    # write a few clips of other lengths
    extra = []
    for i, dur in enumerate([0.2, 0.7]):
        path = tmp_path / f"var{i}.wav"
        sf.write(path, make_tone(TAGS["high"], duration=dur, sr=SR), SR)
        extra.append(str(path))
    train = np.concatenate([paths, extra])
    pipe.fit(train, np.concatenate([labels, ["high", "high"]]))
    assert pipe.predict(np.array(extra)).shape == (2,)


def test_grid_search_over_rho_in_parallel(audio):
    paths, _, labels = audio

    def rf(estimator, X, y):  # the fitted candidate's receptive field (px)
        return estimator[-1].receptive_field_.time

    search = GridSearchCV(
        _pipe(max_epochs=2),
        {"clf__rho": [1, 2]},
        cv=2,
        n_jobs=2,
        error_score="raise",
        scoring={"accuracy": "accuracy", "rf": rf},
        refit="accuracy",
    )
    search.fit(paths, labels)
    assert search.best_params_["clf__rho"] in (1, 2)
    assert len(search.cv_results_["mean_test_accuracy"]) == 2
    # rho reached the networks fitted in the worker processes: RF 31 vs 39 px
    assert list(search.cv_results_["mean_test_rf"]) == [31, 39]


def test_embedder_svc_pipeline(audio):
    paths, _, labels = audio
    pipe = make_pipeline(
        AudioLoader(sr=SR, duration=0.4),
        MelSpectrogram(**MEL),
        BandStandardizer(),
        RFCNNEmbedder(**CNN),
        SVC(),
    )
    pipe.fit(paths, labels)
    assert pipe.score(paths, labels) > 0.7


def test_describe_pipeline_on_a_real_fitted_pipeline(audio):
    from sklearn_rfcnn.inspection import describe_pipeline

    paths, Y, _ = audio
    pipe = _pipe(max_epochs=1).fit(paths, Y)
    desc = describe_pipeline(pipe)
    rf = pipe.named_steps["clf"].receptive_field_
    assert desc.rf == rf
    assert tuple(rf) == (39, 39)  # rho=2 at depth 26
    assert desc.time_seconds == pytest.approx(39 * MEL["hop_length"] / SR)
    assert desc.n_mels == MEL["n_mels"]
