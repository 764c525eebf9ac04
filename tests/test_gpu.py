"""The library on a device: every path ``make gpu-check`` runs on CUDA.

Each test takes the device as a parameter: ``"cpu"`` runs everywhere (so that
every code path the GPU check calls is exercised on any machine), ``"cuda"``
carries the ``gpu`` marker and is skipped where CUDA is absent (the root conftest).
``benchmarks/gpu_check.py`` (``make gpu-check``) runs the ``gpu`` tests on a
GPU machine.

Models trained on the device are compared with the same weights run on the
CPU: in float32 to float tolerance (cuDNN may use TF32 and other summation
orders, hence ``ATOL``), in mixed precision to the rounding of bf16/float16.
"""

import os

import numpy as np
import pytest
import torch
from _helpers import band_labels
from scipy.special import expit, logit
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from sklearn_rfcnn import (
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    RFCNNEmbedder,
    hear,
    load_pipeline,
    save_pipeline,
)
from sklearn_rfcnn.datasets import SpectrogramStore
from sklearn_rfcnn.estimators._data import _ClipDataset, loader_workers
from sklearn_rfcnn.exceptions import RFCNNWarning
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]

#: float32 on the device against float32 on the CPU (TF32 convolutions on
#: Ampere and later keep ~1e-3 relative accuracy).
ATOL = 2e-3
#: bf16 / float16 autocast on the device against float32 on the CPU.
ATOL_MIXED = 5e-2

FAST = {**FAST_CNN_PARAMS, "precision": "32", "channels_last": False}


@pytest.fixture(scope="module")
def labels(bands):
    """One class per spectrogram of ``bands`` (the root conftest): its strongest tag."""
    return band_labels(bands[1])


@pytest.fixture
def cpu_only(monkeypatch):
    """Hide CUDA from the library, as on a machine without a GPU."""

    def hide():
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    return hide


def _load_on_cpu(cls, path, device, cpu_only):
    """``cls.load(path)`` as on a CPU-only machine (a CUDA model warns so)."""
    cpu_only()
    if device == "cpu":
        return cls.load(path)
    with pytest.warns(RFCNNWarning, match="loading it on the CPU"):
        return cls.load(path)


def _on(device, estimator):
    assert torch.device(estimator.net_.device).type == device
    assert next(estimator.net_.module_.parameters()).device.type == device


# --------------------------------------------------------------------------
# fit / predict / save / load in each precision
# --------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["32", "16", "bf16"])
def test_fit_predict_save_load_in_each_precision(
    device, precision, bands, labels, tmp_path
):
    X, _ = bands
    clf = RFCNNClassifier(**{**FAST, "device": device, "precision": precision})
    clf.fit(X, labels)
    _on(device, clf)
    assert clf.precision_ == precision
    # float16 trains with a gradient scaler on CUDA (the CPU needs none)
    scaler = clf.net_.grad_scaler_
    assert (scaler is not None) == (precision == "16" and device == "cuda")
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    clf.partial_fit(X, labels)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    loaded = RFCNNClassifier.load(clf.save(tmp_path / "model"))
    _on(device, loaded)
    assert loaded.precision_ == precision
    # the same weights on the same device (cuDNN may pick another algorithm)
    atol = 1e-6 if device == "cpu" else 1e-4
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=0, atol=atol)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_weights_batches_and_equal_predictions(device, bands, labels):
    X, _ = bands
    clf = RFCNNClassifier(
        **{**FAST, "device": device, "precision": "32", "channels_last": True}
    ).fit(X, labels)
    _on(device, clf)
    weights = [w for w in clf.net_.module_.parameters() if w.ndim == 4]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    batch = clf.net_.prepare_input(torch.as_tensor(X[:4, None]))
    assert batch.device.type == device
    assert batch.is_contiguous(memory_format=torch.channels_last)
    # the same weights in the default layout predict the same
    dense = RFCNNClassifier(
        **{**FAST, "device": device, "precision": "32", "channels_last": False}
    ).fit(X, labels)
    dense.net_.module_.load_state_dict(clf.net_.module_.state_dict())
    np.testing.assert_allclose(
        dense.predict_proba(X), clf.predict_proba(X), rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("device", DEVICES)
def test_device_auto_chooses_the_gpu_when_present(device, bands, labels, cpu_only):
    X, _ = bands
    if device == "cpu":
        cpu_only()
    clf = RFCNNClassifier(
        **{**FAST_CNN_PARAMS, "device": "auto", "verbose": 0, "max_epochs": 1}
    ).fit(X, labels)
    _on(device, clf)
    if device == "cuda":
        expected = "bf16" if torch.cuda.is_bf16_supported() else "16"
        assert (clf.precision_, clf.channels_last_) == (expected, True)
        # batches are pinned for asynchronous host-to-device copies
        assert clf.net_.iterator_train__pin_memory is True
    else:
        assert clf.net_.iterator_train__pin_memory is False


@pytest.mark.parametrize("device", DEVICES)
def test_training_from_a_store_reads_in_loader_workers_on_cuda(device, tmp_path):
    rng = np.random.default_rng(0)
    waves = [rng.normal(size=4000).astype("float32") for _ in range(16)]
    mel = MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=16)
    store = SpectrogramStore.create(tmp_path / "store", waves, mel, verbose=0)
    y = np.arange(16) % 2
    params = {**FAST, "device": device, "max_epochs": 2}
    clf = RFCNNClassifier(**params).fit(store, y)
    _on(device, clf)
    loader = clf.net_.get_iterator(_ClipDataset(store), training=True)
    assert loader.num_workers == loader_workers(device, source=True)
    # on CUDA the reads overlap the GPU's step; on a CPU they would share its cores
    assert (loader.num_workers > 0) == (device == "cuda" and os.cpu_count() > 1)
    # the workers only read: the same model as from the clips in memory
    clips = [store[i][0] for i in range(len(store))]  # (F, T) each
    ref = RFCNNClassifier(**params).fit(clips, y)
    np.testing.assert_allclose(
        clf.predict_proba(clips), ref.predict_proba(clips), atol=ATOL
    )


@pytest.mark.parametrize("device", DEVICES)
def test_model_trained_on_the_device_loads_on_a_cpu_machine(
    device, bands, labels, tmp_path, cpu_only
):
    X, Y = bands
    clf = RFCNNClassifier(**{**FAST, "device": device}).fit(X, labels)
    mixed = RFCNNClassifier(
        **{**FAST, "device": device, "precision": "auto", "channels_last": "auto"}
    ).fit(X, Y)
    expected, expected_mixed = clf.predict_proba(X), mixed.predict_proba(X)
    clf.save(tmp_path / "m32")
    mixed.save(tmp_path / "mixed")
    loaded = _load_on_cpu(RFCNNClassifier, tmp_path / "m32", device, cpu_only)
    _on("cpu", loaded)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=0, atol=ATOL)
    # a mixed-precision model decides afresh for the CPU it is loaded on
    loaded = _load_on_cpu(RFCNNClassifier, tmp_path / "mixed", device, cpu_only)
    _on("cpu", loaded)
    np.testing.assert_allclose(
        loaded.predict_proba(X), expected_mixed, rtol=0, atol=ATOL_MIXED
    )


# --------------------------------------------------------------------------
# the embedder, windows, ONNX, HEAR
# --------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_embedder_on_the_device(device, bands, tmp_path, cpu_only):
    X, Y = bands
    emb = RFCNNEmbedder(**{**FAST, "device": device}).fit(X, Y)
    _on(device, emb)
    Z = emb.transform(X)
    assert Z.shape == (len(X), 4 * FAST["width"]) and np.isfinite(Z).all()
    clf = RFCNNClassifier(**{**FAST, "device": device}).fit(X, Y)
    shared = RFCNNEmbedder.from_classifier(clf)
    _on(device, shared)
    expected = shared.transform(X)
    on_cpu = _load_on_cpu(RFCNNEmbedder, shared.save(tmp_path / "e"), device, cpu_only)
    _on("cpu", on_cpu)
    np.testing.assert_allclose(on_cpu.transform(X), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_windowed_prediction_and_frames_on_the_device(
    device, bands, tmp_path, cpu_only
):
    X, Y = bands
    clf = RFCNNClassifier(**{**FAST, "device": device}, crop_frames=16).fit(X, Y)
    _on(device, clf)
    long = np.concatenate([X, X[:, :, ::-1]], axis=2)  # 80 frames: 9 windows
    proba = clf.predict_proba(long)
    frames = clf.predict_proba_frames(long[:3], sr=22050, hop_length=512)
    assert [p.shape for p, _ in frames] == [(9, Y.shape[1])] * 3
    # a clip's probability is that of the mean of its windows' logits
    for (p, _), clip in zip(frames, proba):
        np.testing.assert_allclose(expit(logit(p).mean(axis=0)), clip, atol=1e-5)
    on_cpu = _load_on_cpu(RFCNNClassifier, clf.save(tmp_path / "m"), device, cpu_only)
    np.testing.assert_allclose(on_cpu.predict_proba(long), proba, atol=ATOL)
    for (p_dev, t_dev), (p_cpu, t_cpu) in zip(
        frames, on_cpu.predict_proba_frames(long[:3], sr=22050, hop_length=512)
    ):
        np.testing.assert_allclose(p_cpu, p_dev, atol=ATOL)
        np.testing.assert_array_equal(t_cpu, t_dev)


@pytest.mark.parametrize("device", DEVICES)
def test_onnx_export_of_a_device_trained_model(device, bands, labels, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    X, _ = bands
    clf = RFCNNClassifier(**{**FAST, "device": device, "depth": 8}).fit(X, labels)
    before = clf.predict_proba(X)
    path = clf.export_onnx(tmp_path / "clf.onnx")
    _on(device, clf)  # the estimator is untouched by the export
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"spectrograms": X[:, None]})
    np.testing.assert_allclose(out, before, rtol=0, atol=ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_hear_api_on_the_device(device, tmp_path):
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    audio = (
        np.sin(2 * np.pi * rng.uniform(200, 4000, size=(8, 1)) * t)
        + 0.1 * rng.standard_normal((8, t.size))
    ).astype(np.float32)
    pipe = make_pipeline(
        MelSpectrogram(sr=sr, n_fft=512, hop_length=256, n_mels=24),
        BandStandardizer(),
        RFCNNEmbedder(**{**FAST, "device": device, "width": 2, "depth": 8}),
    ).fit(audio, [0, 1] * 4)
    _on(device, pipe[-1])
    folder = save_pipeline(pipe, tmp_path / "pipe")
    reloaded = load_pipeline(folder)
    np.testing.assert_allclose(
        reloaded.transform(list(audio)), pipe.transform(list(audio)), atol=ATOL
    )
    model = hear.load_model(folder).to(device)
    clips = torch.as_tensor(audio[:2], device=device)
    scene = hear.get_scene_embeddings(clips, model)
    emb, ts = hear.get_timestamp_embeddings(clips, model)
    assert scene.device.type == emb.device.type == ts.device.type == device
    assert scene.shape == (2, model.scene_embedding_size)
    on_cpu = hear.get_scene_embeddings(clips.cpu(), hear.load_model(folder))
    torch.testing.assert_close(scene.cpu(), on_cpu, rtol=1e-3, atol=ATOL)


# --------------------------------------------------------------------------
# search and data-parallel training
# --------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_optuna_search_of_two_trials_on_the_device(device, bands, labels):
    pytest.importorskip("optuna")
    from optuna.distributions import IntDistribution

    from sklearn_rfcnn import RFOptunaSearchCV

    X, _ = bands
    search = RFOptunaSearchCV(
        RFCNNClassifier(**{**FAST, "device": device}),
        {"rho": IntDistribution(1, 3)},
        n_trials=2,
        cv=2,
        storage="memory",
        random_state=0,
    ).fit(X, labels)
    assert len(search.study_.trials) == 2
    assert np.isfinite(search.best_score_)
    _on(device, search.best_estimator_)
    assert search.predict_proba(X).shape == (len(X), 4)


@pytest.mark.parametrize("device", DEVICES)
def test_data_parallel_fit_through_accelerate_on_one_process(device, bands, labels):
    pytest.importorskip("accelerate")
    if device == "cuda":
        # an earlier test of this process may have fixed Accelerate's (shared)
        # process state on the CPU (cpu=True); a fresh one chooses the GPU
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    X, _ = bands
    params = {**FAST, "device": device}
    acc = RFCNNClassifier(distributed="accelerate", **params).fit(X, labels)
    assert type(acc.net_).__name__ == "_AcceleratedRFCNNNet"
    assert acc.net_.accelerator.num_processes == 1
    _on(device, acc)
    plain = RFCNNClassifier(**params).fit(X, labels)
    # one process is the plain fit: same draws, same weights (on CUDA up to
    # the non-deterministic summation order of cuDNN's backward kernels)
    np.testing.assert_allclose(
        acc.history_[:, "train_loss"], plain.history_[:, "train_loss"], rtol=1e-3
    )
    np.testing.assert_allclose(
        acc.predict_proba(X), plain.predict_proba(X), rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("device", DEVICES)
def test_batch_losses_read_back_once_per_epoch(device, bands, labels, monkeypatch):
    from sklearn_rfcnn.estimators._net import _RFCNNNet

    X, _ = bands
    params = {**FAST, "device": device, "validation_fraction": 0.25}
    per_batch = RFCNNClassifier(**params)
    monkeypatch.setattr(_RFCNNNet, "_defer_batch_losses", lambda self: False)
    per_batch.fit(X, labels)
    # deferred: the CUDA default, forced here on the CPU too
    monkeypatch.setattr(_RFCNNNet, "_defer_batch_losses", lambda self: True)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            if training:
                seen.append(float(net.history[-1]["batches"][-1]["train_loss"]))

    deferred = RFCNNClassifier(**params, callbacks=[Spy()]).fit(X, labels)
    for key in ("train_loss", "valid_loss"):
        rows = deferred.history_[:, "batches", :, key]
        assert all(type(v) is float for epoch in rows for v in epoch)
        np.testing.assert_allclose(
            np.concatenate(rows),
            np.concatenate(per_batch.history_[:, "batches", :, key]),
            rtol=1e-5 if device == "cpu" else 1e-3,
        )
    # callbacks saw each batch's loss as a number during the epoch
    train = np.concatenate(deferred.history_[:, "batches", :, "train_loss"])
    np.testing.assert_allclose(seen, train, rtol=1e-6)
