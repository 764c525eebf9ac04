"""ONNX export: parity with onnxruntime, dynamic axes, untouched estimators, CLI."""

import json
import sys

import numpy as np
import pytest
import torch
from _helpers import band_labels
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder, save_pipeline
from sklearn_rfcnn.cli import main
from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, write_tones

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

#: One block per stage keeps every export at a few seconds; the graph computes
#: in float32, so the estimator it is compared with must too ("auto" may pick
#: bf16 autocast on a CPU with native bf16).
FAST = dict(FAST_CNN_PARAMS, depth=8, precision="32", channels_last=False)
ATOL = 1e-4


def _scramble(estimator, seed=0):
    """Perturb the trained weights so that outputs are far from the zero init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in estimator.net_.module_.parameters():
            noise = torch.randn(p.shape, generator=gen).to(p.device, p.dtype)
            p.add_(0.3 * noise)
    return estimator


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session, X):
    X = np.asarray(X, np.float32)
    if X.ndim == 3:
        X = X[:, None]
    (out,) = session.run(None, {"spectrograms": X})
    return out


def _metadata(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def multiclass(bands):
    X, Y = bands  # conftest: 24 spectrograms, 3 band tags
    return _scramble(RFCNNClassifier(**FAST).fit(X, band_labels(Y)))


@pytest.fixture(scope="module")
def multiclass_onnx(multiclass, tmp_path_factory):
    return multiclass.export_onnx(tmp_path_factory.mktemp("onnx") / "clf.onnx")


# ---------------------------------------------------------------------------
# parity with predict_proba / transform
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n, T", [(1, 40), (3, 23), (5, 77), (9, 130)])
def test_multiclass_parity_dynamic_batch_and_time(multiclass, multiclass_onnx, n, T):
    # the example batch traced by the exporter is (2, 1, 16, 64)
    X = np.random.default_rng(n * T).normal(size=(n, 16, T)).astype(np.float32)
    proba = _run(_session(multiclass_onnx), X)
    assert proba.dtype == np.float32 and proba.shape == (n, 4)
    np.testing.assert_allclose(proba, multiclass.predict_proba(X), atol=ATOL, rtol=0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_graph_signature_and_metadata(multiclass, multiclass_onnx):
    model = onnx.load(str(multiclass_onnx))
    onnx.checker.check_model(model)
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "spectrograms" and dims == ["batch", 1, 16, "frames"]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in model.graph.output] == ["probabilities"]
    meta = _metadata(multiclass_onnx)
    assert json.loads(meta["classes"]) == multiclass.classes_.tolist()
    assert meta["multilabel"] == "false"
    assert meta["output"] == "predict_proba"
    assert meta["estimator"] == "RFCNNClassifier"
    assert meta["input_layout"].startswith("NCFT")
    assert (meta["n_channels"], meta["n_bands"]) == ("1", "16")
    assert int(meta["min_frames"]) <= 40
    assert json.loads(meta["receptive_field"]) == list(multiclass.receptive_field_)
    assert meta["sklearn_rfcnn_version"]


@pytest.fixture(scope="module")
def tagger_export(bands, tmp_path_factory):
    """A channels-last tagger in train mode, its state before export, the file."""
    X, Y = bands
    params = {**FAST, "channels_last": True, "threshold": 0.3}
    clf = _scramble(RFCNNClassifier(**params).fit(X, Y), seed=1)
    module = clf.net_.module_
    module.train()  # a mode the export must not reset
    before = {
        "state": {k: v.clone() for k, v in module.state_dict().items()},
        "layouts": _layouts(module),
    }
    path = clf.export_onnx(tmp_path_factory.mktemp("onnx") / "tags.onnx")
    before["training_after_export"] = module.training
    return clf, before, path


def _layouts(module):
    return [
        p.is_contiguous(memory_format=torch.channels_last)
        for p in module.parameters()
        if p.ndim == 4
    ]


def test_multilabel_parity_is_sigmoid(tagger_export):
    clf, _, path = tagger_export
    X_new = np.random.default_rng(1).normal(size=(6, 16, 55)).astype(np.float32)
    proba = _run(_session(path), X_new)
    np.testing.assert_allclose(proba, clf.predict_proba(X_new), atol=ATOL, rtol=0)
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent per tag
    meta = _metadata(path)
    assert meta["multilabel"] == "true"
    assert json.loads(meta["classes"]) == [0, 1, 2]
    assert json.loads(meta["threshold"]) == 0.3


def test_channels_last_estimator_is_unchanged_by_export(tagger_export):
    clf, before, _ = tagger_export
    module = clf.net_.module_
    assert before["training_after_export"]  # still in train mode
    assert all(before["layouts"]) and _layouts(module) == before["layouts"]
    assert all(p.device.type == "cpu" for p in module.parameters())
    after = module.state_dict()
    assert before["state"].keys() == after.keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after[k]), k


def test_embedder_parity_is_transform(bands, tmp_path):
    X, Y = bands
    emb = _scramble(RFCNNEmbedder(**FAST).fit(X, Y), seed=2)
    path = emb.export_onnx(tmp_path / "emb.onnx")
    X_new = np.random.default_rng(2).normal(size=(4, 16, 61)).astype(np.float32)
    E = _run(_session(path), X_new)
    assert E.shape == (4, emb.net_.module_.num_features)
    np.testing.assert_allclose(E, emb.transform(X_new), atol=ATOL, rtol=0)
    meta = _metadata(path)
    assert meta["output"] == "transform" and meta["estimator"] == "RFCNNEmbedder"
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["embeddings"]


@pytest.mark.parametrize(
    "params",
    [
        {"frequency_aware": True},
        {"arch": "vgg_cnn", "rho": None, "depth": None, "width": 2},
    ],
    ids=["cp_resnet_frequency_aware", "vgg_cnn"],
)
def test_variants_and_multichannel_input(params, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2, 16, 36)).astype(np.float32)  # 2 channels
    y = np.arange(12) % 3
    clf = _scramble(RFCNNClassifier(**{**FAST, **params}).fit(X, y), seed=3)
    path = clf.export_onnx(tmp_path / "m.onnx")
    X_new = rng.normal(size=(3, 2, 16, 70)).astype(np.float32)
    np.testing.assert_allclose(
        _run(_session(path), X_new), clf.predict_proba(X_new), atol=ATOL, rtol=0
    )


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RFCNNClassifier, RFCNNEmbedder])
def test_unfitted_raises_not_fitted(cls, tmp_path):
    with pytest.raises(NotFittedError):
        cls(**FAST).export_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnxscript_names_the_extra(multiclass, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'sklearn-rfcnn\[onnx\]'"):
        multiclass.export_onnx(tmp_path / "m.onnx")


def test_missing_folder_is_a_clear_error(multiclass, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        multiclass.export_onnx(tmp_path / "nowhere" / "m.onnx")


# ---------------------------------------------------------------------------
# rfcnn export
# ---------------------------------------------------------------------------
def test_cli_round_trip(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    freqs = [220.0, 1800.0, 260.0, 2000.0, 300.0, 2200.0]
    paths = write_tones(tmp_path / "audio", freqs, duration=0.5, sr=8000)
    labels = np.array(["a", "b"])[np.arange(len(paths)) % 2]
    pipe = Pipeline(
        [
            ("load", AudioLoader(sr=8000, duration=0.5)),
            ("mel", MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=16)),
            ("norm", BandStandardizer()),
            ("clf", RFCNNClassifier(**FAST)),
        ]
    ).fit(paths, labels)
    _scramble(pipe[-1], seed=6)
    model = save_pipeline(pipe, tmp_path / "model")
    out = tmp_path / "model.onnx"
    assert main(["export", str(model), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "probabilities" in printed
    assert "front end (not in the graph)" in printed
    S = pipe[:-1].transform(paths)  # the front end runs outside the graph
    np.testing.assert_allclose(
        _run(_session(out), S), pipe.predict_proba(paths), atol=ATOL, rtol=0
    )
    assert "MelSpectrogram" in _metadata(out)["front_end"]

    # an existing file needs --overwrite; --embeddings exports rfcnn embed's graph
    assert main(["export", str(model), str(out), "--embeddings"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(model), str(out), "--embeddings", "--overwrite"]) == 0
    E = _run(_session(out), S)
    emb = RFCNNEmbedder.from_classifier(pipe[-1])
    np.testing.assert_allclose(E, emb.transform(S), atol=ATOL, rtol=0)


def test_cli_estimator_folder_and_two_d_input(tmp_path, capsys):
    # an estimator's own save() folder; fitted on 2-D (n, n_features) input,
    # whose graph takes (n, 1, 1, n_features) with a fixed frame axis
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20, 12)).astype(np.float32)
    clf = _scramble(RFCNNClassifier(**FAST).fit(X, np.arange(20) % 2), seed=4)
    saved = clf.save(tmp_path / "estimator")
    out = tmp_path / "estimator.onnx"
    assert main(["export", str(saved), str(out)]) == 0
    assert "(batch, 1, 1, 12)" in capsys.readouterr().out
    (inp,) = onnx.load(str(out)).graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 1, 12]
    X_new = rng.normal(size=(7, 12)).astype(np.float32)
    proba = _run(_session(out), X_new[:, None, None, :])
    np.testing.assert_allclose(proba, clf.predict_proba(X_new), atol=ATOL, rtol=0)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "m.onnx")]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "m.txt")]) == 2
    assert ".onnx" in capsys.readouterr().err
