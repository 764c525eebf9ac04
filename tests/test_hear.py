"""The HEAR 2021 API (``sklearn_rfcnn.hear``), checked as HEAR's validator does.

The checks of ``hear-validator`` (function names, integer model attributes,
an allowed sample rate, float32 outputs of the right shapes, 2-D timestamps
with a constant hop, several clip lengths and a batch of sounds) re-created
without depending on it (it pulls TensorFlow), plus this library's own
promises: the scene embedding is the pipeline's numpy path, the front end is
MelSpectrogram's numbers, and the timestamps sit where the docstring says.
"""

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import (
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    RFCNNEmbedder,
    hear,
    save_pipeline,
)
from sklearn_rfcnn.exceptions import DataError, InputTypeError, ParameterError

SR = 16000
MEL = dict(sr=SR, n_fft=512, hop_length=256, n_mels=24)
NET = dict(
    width=2, rho=2, depth=8, max_epochs=1, precision="32", verbose=0, random_state=0
)
DURATIONS = (1.07, 1.98, 4.0)


def _clips(n, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    freqs = rng.uniform(200, 4000, size=(n, 1))
    tone = np.sin(2 * np.pi * freqs * t)
    noise = 0.1 * rng.standard_normal((n, t.size))
    return (0.5 * tone + noise).astype(np.float32)


def _fit_save(tmp_path_factory, name, estimator):
    X = _clips(8, 1.0)
    pipe = make_pipeline(MelSpectrogram(**MEL), BandStandardizer(), estimator)
    pipe.fit(X, [0, 1] * 4)
    folder = save_pipeline(pipe, tmp_path_factory.mktemp(name) / "model")
    return pipe, folder


@pytest.fixture(scope="module")
def saved_embedder(tmp_path_factory):
    return _fit_save(tmp_path_factory, "emb", RFCNNEmbedder(**NET))


@pytest.fixture(scope="module")
def model(saved_embedder):
    return hear.load_model(saved_embedder[1])


def _numpy_path(pipe, X):
    """``pipeline[:-1]`` then the estimator's ``transform``, on numpy clips.

    Passed as a list of 1-D clips, the variable-length form, so that clips of
    another length than the training clips are accepted.
    """
    return pipe[-1].transform(pipe[:-1].transform(list(X)))


# -- the validator's checks ------------------------------------------------------
def test_api_functions_exist():
    for name in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert callable(getattr(hear, name))


def test_model_attributes(model):
    assert isinstance(model, torch.nn.Module)
    for attr in ("sample_rate", "scene_embedding_size", "timestamp_embedding_size"):
        assert isinstance(getattr(model, attr), int), attr
    assert model.sample_rate in (16000, 22050, 32000, 44100, 48000)
    assert model.sample_rate == SR
    assert model.scene_embedding_size == 4 * NET["width"]
    assert model.timestamp_embedding_size == 4 * NET["width"]
    assert not model.training


@pytest.mark.parametrize("seconds", DURATIONS)
def test_embeddings_shapes_dtypes_and_timestamps(model, seconds):
    audio = torch.as_tensor(_clips(3, seconds, seed=1))
    scene = hear.get_scene_embeddings(audio, model)
    assert isinstance(scene, torch.Tensor)
    assert scene.dtype == torch.float32
    assert scene.shape == (3, model.scene_embedding_size)
    assert torch.isfinite(scene).all()

    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert isinstance(emb, torch.Tensor) and isinstance(ts, torch.Tensor)
    assert emb.dtype == torch.float32 and ts.dtype == torch.float32
    assert emb.ndim == 3 and ts.ndim == 2
    assert emb.shape[0] == 3 and emb.shape[2] == model.timestamp_embedding_size
    assert ts.shape == emb.shape[:2]
    assert emb.shape[1] >= 2
    assert torch.isfinite(emb).all()
    # a constant hop, the same for every sound
    diffs = torch.diff(ts.double(), dim=1)
    hop = float(diffs[0, 0])
    assert hop > 0
    assert torch.allclose(diffs, torch.full_like(diffs, hop), atol=1e-3)
    assert torch.equal(ts[0], ts[-1])
    # starting near 0, ending within one hop of the sound's end and never
    # after it (the validator raises on a timestamp past the end)
    length_ms = 1000.0 * audio.shape[1] / SR
    assert 0.0 <= float(ts.min()) < hop
    assert length_ms - hop < float(ts.max()) <= length_ms
    # HEAR's advice: at most 50 ms apart, so the last is within 50 ms of the end
    assert hop <= 50.0 and length_ms - float(ts.max()) < 50.0


def _validate_like_hear(model, seed=0):
    """The checks of hear-validator's ``ValidateModel``, on numpy copies."""
    gen = torch.Generator().manual_seed(seed)
    sr = model.sample_rate
    assert sr in (16000, 22050, 32000, 44100, 48000)
    for length in DURATIONS:
        audio = torch.rand((2, int(length * sr)), generator=gen) * 2 - 1.0
        emb, ts = hear.get_timestamp_embeddings(audio, model)
        assert emb.dtype == torch.float32
        emb, ts = emb.detach().cpu().numpy(), ts.detach().cpu().numpy()
        assert emb.ndim == 3 and ts.ndim == 2 and emb.shape[0] == 2
        assert emb.shape[:2] == ts.shape
        assert emb.shape[2] == model.timestamp_embedding_size
        assert ts.shape[1] > 1
        diff = np.diff(ts)
        assert np.max(np.abs(diff - np.mean(diff))) <= 1.0  # the validator's 1 ms
        assert np.min(ts) <= np.mean(diff)  # it warns otherwise
        assert np.max(ts) >= 1000 * length - np.mean(diff)  # it warns otherwise
        assert np.max(ts) <= 1000 * length  # it raises otherwise
    audio = torch.rand((4, int(2.74 * sr)), generator=gen) * 2 - 1.0
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.dtype == torch.float32
    assert scene.shape == (4, model.scene_embedding_size)


def test_hear_validator_checks(model):
    _validate_like_hear(model)


def test_22050_rate_with_a_non_integer_hop(tmp_path):
    sr = 22050
    X = np.random.default_rng(0).standard_normal((4, sr)).astype(np.float32)
    pipe = make_pipeline(
        MelSpectrogram(sr=sr, n_fft=1024, hop_length=512, n_mels=24),
        BandStandardizer(),
        RFCNNEmbedder(**NET),
    ).fit(X, [0, 1] * 2)
    model = hear.load_model(save_pipeline(pipe, tmp_path / "model"))
    assert model.sample_rate == sr
    # output frames 371.5 ms apart, eight timestamps each: 46.4 ms
    assert model.frame_hop_ms == pytest.approx(16 * 512 / sr * 1000)
    assert model.timestamps_per_frame == 8
    assert model.hop_ms == pytest.approx(16 * 512 / sr * 1000 / 8)
    _validate_like_hear(model, seed=1)
    audio = np.random.default_rng(1).uniform(-1, 1, (2, 4 * sr)).astype(np.float32)
    got = hear.get_scene_embeddings(torch.as_tensor(audio), model).numpy()
    np.testing.assert_allclose(got, _numpy_path(pipe, audio), rtol=1e-3, atol=1e-4)


def test_four_second_clip_ends_within_one_hop(model):
    audio = torch.as_tensor(_clips(2, 4.0))
    _, ts = hear.get_timestamp_embeddings(audio, model)
    hop = model.hop_ms
    # output frames 256 ms apart, six timestamps each
    assert hop == pytest.approx(16 * MEL["hop_length"] / SR * 1000 / 6)
    assert float(ts[0, 0]) == 0.0
    assert 4000.0 - hop < float(ts[0, -1]) <= 4000.0


@pytest.mark.parametrize("seconds", (1.98, 1.0, 0.3))
def test_timestamps_every_50_ms_to_the_end_in_one_pass(model, monkeypatch, seconds):
    """Between output frames the embedding is their linear interpolation."""
    audio = torch.as_tensor(_clips(3, seconds, seed=7))
    passes = []
    forward = model.network.forward_features
    monkeypatch.setattr(
        model.network,
        "forward_features",
        lambda x: passes.append(len(x)) or forward(x),
    )
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert passes == [3]  # one network pass for the batch, not one per timestamp
    diffs = torch.diff(ts[0].double())
    assert float(diffs.max()) <= 50.0
    length_ms = 1000.0 * audio.shape[1] / SR
    assert 0.0 <= length_ms - float(ts[0, -1]) < 50.0
    m = model.timestamps_per_frame
    frames = emb[:, ::m]  # every m-th timestamp is an output frame
    for k in range(1, min(m, emb.shape[1] - m)):
        w = k / m
        expected = (1 - w) * frames[:, 0] + w * frames[:, 1]
        torch.testing.assert_close(emb[:, k], expected, rtol=1e-5, atol=1e-6)


def test_embeddings_are_float32_whatever_the_precision(tmp_path_factory):
    """A bf16-fitted pipeline's HEAR embeddings are those of its float32 network."""
    pipe, folder = _fit_save(
        tmp_path_factory, "bf16", RFCNNEmbedder(**{**NET, "precision": "bf16"})
    )
    assert pipe[-1].precision_ == "bf16"
    model = hear.load_model(folder)
    X = _clips(3, 1.98, seed=8)
    got = hear.get_scene_embeddings(torch.as_tensor(X), model).numpy()
    pipe[-1].net_.amp_dtype = None  # the estimator, run in float32
    expected = _numpy_path(pipe, X)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_batch_of_sounds_is_embedded_independently(model):
    audio = torch.as_tensor(_clips(5, 1.07, seed=2))
    scene = hear.get_scene_embeddings(audio, model)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    for i in (0, 3):
        one = audio[i : i + 1]
        torch.testing.assert_close(
            hear.get_scene_embeddings(one, model),
            scene[i : i + 1],
            rtol=1e-4,
            atol=1e-5,
        )
        emb_i, ts_i = hear.get_timestamp_embeddings(one, model)
        torch.testing.assert_close(emb_i, emb[i : i + 1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ts_i, ts[i : i + 1])


def test_no_grad_and_eval(model):
    model.train()
    audio = torch.as_tensor(_clips(2, 1.0)).requires_grad_()
    scene = hear.get_scene_embeddings(audio, model)
    emb, _ = hear.get_timestamp_embeddings(audio, model)
    assert not scene.requires_grad and not emb.requires_grad
    assert not model.training and not model.network.training


# -- this library's promises ------------------------------------------------------
@pytest.mark.parametrize("seconds", (1.0, 1.98))
def test_scene_embedding_is_the_pipeline_numpy_path(saved_embedder, model, seconds):
    pipe, _ = saved_embedder
    X = _clips(4, seconds, seed=3)
    expected = _numpy_path(pipe, X)
    got = hear.get_scene_embeddings(torch.as_tensor(X), model).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_front_end_matches_mel_spectrogram(saved_embedder, model):
    pipe, _ = saved_embedder
    mel, norm = pipe[0], pipe[1]
    X = _clips(3, 1.98, seed=4)
    S = model.spectrogram(torch.as_tensor(X))
    assert S.shape == (3, 1, MEL["n_mels"], mel.n_frames(X.shape[1]))
    # undo the standardisation: the dB values of MelSpectrogram (librosa)
    librosa_db = np.stack(mel.transform(list(X)))
    db = S[:, 0].double().numpy() * norm.scale_[:, None] + norm.mean_[:, None]
    np.testing.assert_allclose(db, librosa_db, rtol=0, atol=0.01)
    expected = np.stack(norm.transform(list(librosa_db)))
    np.testing.assert_allclose(S[:, 0].numpy(), expected, rtol=0, atol=1e-3)


def test_timestamp_j_is_centred_on_frame_j_times_stride(model):
    """Output frame j's receptive field is centred on spectrogram frame j * s."""
    from sklearn_rfcnn.models._layers import TinySafeMaxPool2d

    s = model.time_stride
    assert s == 16
    audio = torch.as_tensor(_clips(1, 4.0, seed=5))
    S = model.spectrogram(audio).detach()
    pools = [m for m in model.network.modules() if isinstance(m, TinySafeMaxPool2d)]
    for pool in pools:  # average pooling: every input of a window gets gradient
        pool.probe = True
    try:
        m = model.timestamps_per_frame  # timestamp j * m is output frame j
        for j in (3, 6):
            Sg = S.clone().requires_grad_()
            emb, ts = model._frame_embeddings(Sg, audio.shape[-1])
            emb[0, j * m].abs().sum().backward()
            support = torch.nonzero(Sg.grad[0, 0].abs().sum(dim=0) > 0).ravel()
            centre = (float(support[0]) + float(support[-1])) / 2
            assert centre == pytest.approx(j * s, abs=1.0)
            frame_ms = 1000.0 * MEL["hop_length"] / SR
            assert float(ts[0, j * m]) == pytest.approx(j * s * frame_ms)
    finally:
        for pool in pools:
            pool.probe = False


def test_classifier_pipeline_scene_is_pooled_features(tmp_path_factory):
    pipe, folder = _fit_save(tmp_path_factory, "clf", RFCNNClassifier(**NET))
    model = hear.load_model(folder)
    X = _clips(3, 1.07, seed=6)
    got = hear.get_scene_embeddings(torch.as_tensor(X), model).numpy()
    embedder = RFCNNEmbedder.from_classifier(pipe[-1])
    expected = embedder.transform(pipe[:-1].transform(list(X)))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    emb, ts = hear.get_timestamp_embeddings(torch.as_tensor(X), model)
    assert emb.shape[:2] == ts.shape and emb.shape[2] == 4 * NET["width"]


def test_crop_frames_embedder_averages_its_windows(tmp_path_factory):
    est = RFCNNEmbedder(**NET, crop_frames=20)
    pipe, folder = _fit_save(tmp_path_factory, "crop", est)
    model = hear.load_model(folder)
    for seconds in (0.2, 1.98):  # shorter than a window (tiled), and longer
        X = _clips(2, seconds, seed=7)
        got = hear.get_scene_embeddings(torch.as_tensor(X), model).numpy()
        np.testing.assert_allclose(got, _numpy_path(pipe, X), rtol=1e-3, atol=1e-4)


# -- errors -----------------------------------------------------------------------
def test_bad_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        hear.load_model(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not a pipeline")
    with pytest.raises(DataError, match="is not a pipeline saved with save_pipeline"):
        hear.load_model(tmp_path / "junk")


def test_disallowed_sample_rate_is_a_clear_error(tmp_path):
    X = np.random.default_rng(0).standard_normal((4, 8000)).astype(np.float32)
    pipe = make_pipeline(
        MelSpectrogram(**{**MEL, "sr": 8000}), BandStandardizer(), RFCNNEmbedder(**NET)
    ).fit(X, [0, 1] * 2)
    folder = save_pipeline(pipe, tmp_path / "model")
    with pytest.raises(ParameterError, match=r"sr=8000.*16000, 22050"):
        hear.load_model(folder)


def test_pipeline_steps_are_checked(saved_embedder):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.svm import SVC

    from sklearn_rfcnn import AudioLoader

    pipe, _ = saved_embedder
    mel, norm, est = pipe.named_steps.values()
    # an AudioLoader in front and an estimator behind the CNN are fine
    steps = [("load", AudioLoader(sr=SR)), ("mel", mel), ("norm", norm)]
    ok = Pipeline([*steps, ("emb", est), ("svc", SVC())])
    assert hear._find_steps(ok, "x") == (mel, norm, est)
    assert hear._find_steps(Pipeline([("mel", mel), ("emb", est)]), "x") == (
        mel,
        None,
        est,
    )
    bad_rate = Pipeline([("load", AudioLoader(sr=22050)), *steps[1:], ("emb", est)])
    with pytest.raises(ParameterError, match=r"AudioLoader\(sr=22050\)"):
        hear._find_steps(bad_rate, "x")
    odd = Pipeline([*steps[1:], ("f", FunctionTransformer()), ("emb", est)])
    with pytest.raises(ParameterError, match=r"'f' \(FunctionTransformer\)"):
        hear._find_steps(odd, "x")
    with pytest.raises(ParameterError, match="no RFCNNEmbedder"):
        hear._find_steps(Pipeline(steps[1:]), "x")


def test_bad_audio_and_model_are_clear_errors(model):
    with pytest.raises(InputTypeError, match=r"torch\.Tensor"):
        hear.get_scene_embeddings(np.zeros((1, 16000), np.float32), model)
    with pytest.raises(DataError, match="n_sounds, n_samples"):
        hear.get_timestamp_embeddings(torch.zeros(16000), model)
    with pytest.raises(InputTypeError, match="float32"):
        hear.get_scene_embeddings(torch.zeros((1, 16000), dtype=torch.int16), model)
    with pytest.raises(InputTypeError, match="load_model"):
        hear.get_scene_embeddings(torch.zeros((1, 16000)), torch.nn.Identity())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_runs_on_gpu(saved_embedder, monkeypatch):
    # full float32 on the GPU too (cuDNN convolutions default to TF32, whose
    # 10-bit mantissa would dominate the comparison with the CPU)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model = hear.load_model(saved_embedder[1]).to("cuda")
    audio = torch.as_tensor(_clips(2, 1.07)).to("cuda")
    cpu = hear.get_scene_embeddings(audio.cpu(), hear.load_model(saved_embedder[1]))
    scene = hear.get_scene_embeddings(audio, model)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert scene.device.type == emb.device.type == ts.device.type == "cuda"
    torch.testing.assert_close(scene.cpu(), cpu, rtol=1e-3, atol=1e-4)
