"""The README.md model card written by ``save`` and ``save_pipeline``."""

import json
import re

import numpy as np
import pytest
from _helpers import random_spectrograms
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC

from sklearn_rfcnn import (
    AudioLoader,
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    RFCNNEmbedder,
    load_pipeline,
    save_pipeline,
)
from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.inspection import describe_pipeline
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, write_tones

SR = 8000
MEL = {"sr": SR, "n_fft": 256, "hop_length": 64, "n_mels": 16}
TAGS = ["low|tone", "high tone", "any"]


# --------------------------------------------------------------------------
# reading a card back
# --------------------------------------------------------------------------


def _section(card, title):
    """The body of ``## title`` (up to the next ``## `` heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.S | re.M)
    assert match, f"no section {title!r} in the card:\n{card}"
    return match.group(1)


def _table(body):
    """Rows of the first Markdown table in ``body`` (``\\|`` unescaped)."""
    rows = [
        line for line in body.splitlines() if line.startswith("|") and "---" not in line
    ]
    out = []
    for line in rows[1:]:  # rows[0] is the header
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        out.append([c.strip().replace("\\|", "|") for c in cells])
    return out


def _labels(card, title="Labels"):
    rows = _table(_section(card, title))
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    return [r[1] for r in rows]


def _rf_pixels(card):
    m = re.search(r"pixels: (\d+) x (\d+) px", _section(card, "Receptive field"))
    return int(m.group(1)), int(m.group(2))


def _rf_seconds(card):
    m = re.search(
        r"time: (\d+) frames = ([0-9.]+) s", _section(card, "Receptive field")
    )
    return int(m.group(1)), float(m.group(2))


def _metrics(card):
    return {k: float(v) for k, v in _table(_section(card, "Evaluation"))}


def _read(folder):
    return (folder / "README.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    return random_spectrograms(["voice", "bass", "drums"])


@pytest.fixture(scope="module")
def clf(data):
    X, y, _ = data
    return RFCNNClassifier(**FAST_CNN_PARAMS).fit(X, y)


@pytest.fixture(scope="module")
def tagger(data):
    X, _, Y = data
    return RFCNNClassifier(**FAST_CNN_PARAMS).fit(X, Y)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    freqs = [220, 240, 260, 280, 1800, 1850, 1900, 1950]
    paths = write_tones(folder, freqs, duration=0.4, sr=SR)
    Y = np.array([[1, 0, 1]] * 4 + [[0, 1, 1]] * 4)
    Y[0, 2] = 0
    return paths, Y


@pytest.fixture(scope="module")
def pipe(tones):
    paths, Y = tones
    pipe = Pipeline(
        [
            ("load", AudioLoader(sr=SR, duration=0.4)),
            ("mel", MelSpectrogram(**MEL)),
            ("norm", BandStandardizer()),
            ("clf", RFCNNClassifier(**FAST_CNN_PARAMS)),
        ]
    )
    return pipe.fit(paths, Y)


# --------------------------------------------------------------------------
# estimator cards
# --------------------------------------------------------------------------


def test_estimator_card_lists_classes_in_output_order(clf, data, tmp_path):
    folder = clf.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "weights.pt",
    ]
    card = _read(folder)
    assert card.startswith("---\nlibrary_name: sklearn-rfcnn\n")
    assert _labels(card) == [str(c) for c in clf.classes_]  # bass, drums, voice
    proba = clf.predict_proba(data[0])
    assert proba.shape[1] == len(_labels(card))
    assert "Multi-class classification: 3 classes" in _section(card, "Labels")
    assert _rf_pixels(card) == (clf.receptive_field_.freq, clf.receptive_field_.time)
    front = _section(card, "Front end")
    assert "not part of this folder" in front
    assert "seconds and Hz: not known" in _section(card, "Receptive field")
    arch = dict(_table(_section(card, "Architecture")))
    module = clf.net_.module_
    assert arch["arch"] == "'cp_resnet'"
    assert int(arch["width"]) == module.width
    assert int(arch["rho"]) == module.rho
    assert int(arch["parameter count"]) == sum(p.numel() for p in module.parameters())
    training = _section(card, "Training")
    recipe = dict(_table(training))
    assert float(recipe["lr"]) == clf.lr
    assert int(recipe["batch_size"]) == clf.batch_size
    assert recipe["precision_"] == repr(clf.precision_)
    assert float(recipe["mixup_alpha"]) == clf.mixup_alpha
    assert f"epochs run: {len(clf.history_)}" in training
    assert "examples per epoch: 24 for training" in training
    assert "per-label counts: not recorded" in training
    assert "No held-out metrics" in _section(card, "Evaluation")
    assert f'RFCNNClassifier.load("{folder.name}")' in card
    assert __version__ in _section(card, "Library")


def test_estimator_card_of_a_tagger_lists_tag_columns(tagger, tmp_path):
    card = _read(tagger.save(tmp_path / "model"))
    assert _labels(card) == ["0", "1", "2"]
    labels = _section(card, "Labels")
    assert "Multi-label tagging: 3 tags" in labels
    assert "column *i* of that `y`" in labels
    assert "- audio-tagging" in card


def test_embedder_card_says_what_it_was_trained_on(data, tmp_path):
    X, y, _ = data
    emb = RFCNNEmbedder(**FAST_CNN_PARAMS).fit(X, y)
    card = _read(emb.save(tmp_path / "emb"))
    assert _labels(card, "Labels the CNN was trained on") == ["bass", "drums", "voice"]
    assert "model.transform(X)" in card
    assert f"pooled embedding: {emb.transform(X).shape[1]} features" in card


def test_metrics_appear_when_passed(clf, tmp_path):
    card = _read(
        clf.save(tmp_path / "model", metrics={"accuracy": 0.875, "f1": np.float32(0.5)})
    )
    assert _metrics(card) == {"accuracy": 0.875, "f1": 0.5}


@pytest.mark.parametrize(
    "metrics", [[("acc", 1.0)], {"acc": "high"}, {"acc": True}, {3: 0.5}]
)
def test_bad_metrics_fail_before_writing(clf, tmp_path, metrics):
    with pytest.raises(ParameterError, match="metrics"):
        clf.save(tmp_path / "model", metrics=metrics)
    assert not (tmp_path / "model").exists()


def test_card_is_rewritten_with_the_model(clf, tagger, data, tmp_path):
    folder = clf.save(tmp_path / "model", metrics={"accuracy": 0.5})
    folder = tagger.save(folder, metrics={"pr_auc_macro": 0.7})
    card = _read(folder)
    assert _labels(card) == ["0", "1", "2"]
    assert _metrics(card) == {"pr_auc_macro": 0.7}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers
    loaded = RFCNNClassifier.load(folder)
    np.testing.assert_array_equal(
        loaded.predict_proba(data[0]), tagger.predict_proba(data[0])
    )


def test_failed_card_leaves_the_old_model_and_card(clf, tagger, tmp_path, monkeypatch):
    folder = clf.save(tmp_path / "model", metrics={"accuracy": 0.5})
    before = _read(folder)

    def broken(folder, text):
        (folder / "README.md").write_text(text[:10])
        raise OSError("disk full")

    monkeypatch.setattr("sklearn_rfcnn.estimators._persistence.write_card", broken)
    with pytest.raises(OSError, match="disk full"):
        tagger.save(folder)
    assert _read(folder) == before  # the old card, with the old model
    assert RFCNNClassifier.load(folder).classes_.tolist() == clf.classes_.tolist()


def test_load_ignores_missing_or_edited_card(clf, data, tmp_path):
    X = data[0]
    folder = clf.save(tmp_path / "model")
    card = folder / "README.md"
    card.write_text(_read(folder).replace("| 0 | bass |", "| 0 | voice |") + "\nnote")
    np.testing.assert_array_equal(
        RFCNNClassifier.load(folder).predict_proba(X), clf.predict_proba(X)
    )
    card.write_bytes(b"\xff\xfe not text")
    RFCNNClassifier.load(folder)
    card.unlink()  # a folder saved before cards existed
    np.testing.assert_array_equal(
        RFCNNClassifier.load(folder).predict_proba(X), clf.predict_proba(X)
    )
    assert RFCNNClassifier.load(folder).save(folder).joinpath("README.md").is_file()


# --------------------------------------------------------------------------
# pipeline cards
# --------------------------------------------------------------------------


def test_pipeline_card_labels_front_end_and_rf_in_seconds(pipe, tmp_path):
    folder = save_pipeline(
        pipe,
        tmp_path / "model",
        metadata={"target_names": TAGS, "n_train": 8},
        metrics={"pr_auc_macro": 0.9},
    )
    card = _read(folder)
    assert _labels(card) == TAGS  # names from the metadata, in output order
    assert "Multi-label tagging: 3 tags" in _section(card, "Labels")
    d = describe_pipeline(pipe)
    assert _rf_pixels(card) == (d.rf.freq, d.rf.time)
    frames, seconds = _rf_seconds(card)
    assert frames == d.time_frames
    assert seconds == pytest.approx(d.time_seconds, abs=5e-4)
    rf = _section(card, "Receptive field")
    lo, hi = d.hz_spans["mid"]
    assert f"middle band: {lo:.0f}-{hi:.0f} Hz" in rf
    steps = _table(_section(card, "Front end"))
    assert [r[:2] for r in steps] == [
        ["load", "AudioLoader"],
        ["mel", "MelSpectrogram"],
        ["norm", "BandStandardizer"],
        ["clf", "RFCNNClassifier"],
    ]
    assert "duration=0.4" in steps[0][2]
    for key, value in MEL.items():
        assert f"{key}={value}" in steps[1][2]
    assert steps[3][2] == "see Architecture"
    assert "training clips: 8" in _section(card, "Training")
    assert _metrics(card) == {"pr_auc_macro": 0.9}
    assert 'pipe.predict_proba(["clip.wav"])' in card


def test_pipeline_card_is_outside_the_checksums(pipe, tones, tmp_path):
    paths, _ = tones
    folder = save_pipeline(pipe, tmp_path / "model")
    config = json.loads((folder / "pipeline.json").read_text())
    assert "README.md" not in config["files"]
    expected = pipe.predict_proba(paths)
    # tag names unknown: the card names the columns
    assert _labels(_read(folder)) == ["0", "1", "2"]
    (folder / "README.md").write_text("# my notes\n\nevaluated on our own data\n")
    np.testing.assert_array_equal(load_pipeline(folder).predict_proba(paths), expected)
    (folder / "README.md").unlink()  # folders saved before cards existed
    np.testing.assert_array_equal(load_pipeline(folder).predict_proba(paths), expected)


def test_pipeline_card_overwrite_replaces_card(pipe, tmp_path):
    folder = save_pipeline(pipe, tmp_path / "model", metrics={"a": 1.0})
    save_pipeline(pipe, folder, overwrite=True, metrics={"b": 2.0})
    assert _metrics(_read(folder)) == {"b": 2.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with pytest.raises(ParameterError, match="metrics"):
        save_pipeline(pipe, folder, overwrite=True, metrics={"c": "x"})
    assert _metrics(_read(folder)) == {"b": 2.0}


def test_pipeline_card_of_embedder_and_svc(data, tmp_path):
    pytest.importorskip("skops")
    rng = np.random.default_rng(1)
    waves = rng.normal(size=(8, 4000)).astype(np.float32)
    y = np.array(["b", "a"] * 4)
    pipe = make_pipeline(
        MelSpectrogram(**MEL),
        BandStandardizer(),
        RFCNNEmbedder(**FAST_CNN_PARAMS),
        SVC(),
    ).fit(waves, y)
    card = _read(save_pipeline(pipe, tmp_path / "model"))
    assert _labels(card) == ["a", "b"]  # the SVC's outputs
    assert _labels(card, "Labels the CNN was trained on") == ["a", "b"]
    assert _rf_seconds(card)[1] == pytest.approx(
        describe_pipeline(pipe).time_seconds, abs=5e-4
    )
    assert "pipe.predict(waveforms)" in card


def test_estimator_cards_keep_the_layering():
    # design §2: the estimators never import inspection or the front end, and
    # the card needs no optional dependency (skops)
    import subprocess
    import sys

    code = (
        "import sys, sklearn_rfcnn.estimators._persistence\n"
        "bad = sorted(m for m in sys.modules if m.startswith(("
        "'sklearn_rfcnn.inspection', 'sklearn_rfcnn.transformers', 'skops')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------
# the card's YAML, read by Hugging Face's own parser
# --------------------------------------------------------------------------


def test_pipeline_card_parses_as_a_hub_model_card_with_its_metrics(pipe, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    metrics = {"pr_auc_macro": 0.8125, "roc_auc_macro": np.float64(0.9)}
    folder = save_pipeline(
        pipe,
        tmp_path / "model",
        metrics=metrics,
        license="cc-by-4.0",
        datasets=["openmic-2018", "my: data"],  # YAML specials stay strings
    )
    card = hub.ModelCard.load(folder / "README.md")
    data = card.data
    assert data.library_name == "sklearn-rfcnn"
    assert data.pipeline_tag == "audio-classification"
    assert data.license == "cc-by-4.0"
    assert data.datasets == ["openmic-2018", "my: data"]
    assert "audio-tagging" in data.tags
    results = {r.metric_type: r.metric_value for r in data.eval_results}
    assert results == {"pr_auc_macro": 0.8125, "roc_auc_macro": 0.9}
    (result, _) = data.eval_results
    assert result.task_type == "audio-classification"
    assert result.dataset_name == "openmic-2018"
    assert data.model_name == "model"
    # the Markdown table says the same
    assert _metrics(card.text) == {"pr_auc_macro": 0.8125, "roc_auc_macro": 0.9}


def test_card_yaml_without_metrics_license_or_data(clf, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    data = hub.ModelCard.load(clf.save(tmp_path / "model") / "README.md").data
    assert data.pipeline_tag == "audio-classification"
    assert data.eval_results is None and data.license is None
    assert data.datasets is None


def test_embedder_card_yaml_is_feature_extraction(data, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    X, y, _ = data
    emb = RFCNNEmbedder(**FAST_CNN_PARAMS).fit(X, y)
    folder = emb.save(tmp_path / "model", metrics={"svm_accuracy": 0.75})
    card = hub.ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "feature-extraction"
    ((result),) = card.data.eval_results
    assert (result.metric_type, result.metric_value) == ("svm_accuracy", 0.75)
    assert result.dataset_type == "custom"


@pytest.mark.parametrize(
    "kwargs",
    [{"license": ""}, {"license": 3}, {"datasets": [1]}, {"datasets": "a\nb"}],
)
def test_bad_license_or_datasets_fail_before_writing(pipe, clf, tmp_path, kwargs):
    with pytest.raises(ParameterError, match=r"license|datasets"):
        save_pipeline(pipe, tmp_path / "p", **kwargs)
    with pytest.raises(ParameterError, match=r"license|datasets"):
        clf.save(tmp_path / "e", **kwargs)
    assert not (tmp_path / "p").exists() and not (tmp_path / "e").exists()
