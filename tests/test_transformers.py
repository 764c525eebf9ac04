"""Tests of the audio front end: AudioLoader, MelSpectrogram, BandStandardizer.

The scikit-learn common checks run in ``tests/test_common.py``; here are the
behaviours they cannot see: files, variable-length lists, the paper's
numerical recipe, the torch backend, caching and the bad-input errors.
"""

import os
import subprocess
import sys
import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from sklearn_rfcnn.exceptions import (
    AudioDecodeError,
    DataError,
    InputTypeError,
    ParameterError,
    SkippedItemsWarning,
)
from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram
from sklearn_rfcnn.transformers import _mel as mel_module
from sklearn_rfcnn.utils._sklearn_compat import InvalidParameterError
from sklearn_rfcnn.utils._testing import make_tone, write_tones

SR = 8000
SMALL = {"sr": SR, "n_fft": 256, "hop_length": 64, "n_mels": 32}


def _signals(n=4, n_samples=4000, seed=0):
    """Tones, noise, a square wave and silence, float32 (n, n_samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    rows = [
        0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n_samples),
        0.5 * rng.standard_normal(n_samples),
        0.9 * np.sign(np.sin(2 * np.pi * 100 * t)),
        np.zeros(n_samples),
    ]
    return np.stack([rows[i % len(rows)] for i in range(n)]).astype(np.float32)


def _reference(y, sr, n_fft, hop_length, n_mels, scale):
    """The paper's pipeline written directly with librosa, one clip at a time."""
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, pad_mode="reflect"))
    S = S**2
    if scale == "perceptual":
        freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
        with np.errstate(divide="ignore"):
            S = librosa.perceptual_weighting(S, freqs, ref=1.0, amin=1e-10, top_db=80)
        return librosa.feature.melspectrogram(S=S, sr=sr, n_mels=n_mels)
    M = librosa.feature.melspectrogram(S=S, sr=sr, n_mels=n_mels)
    if scale == "db":
        return librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=80.0)
    return M


# --------------------------------------------------------------------- AudioLoader


def test_loader_fixed_duration_shapes_and_dtype(tone_files):
    paths, _ = tone_files
    X = AudioLoader(sr=SR, duration=0.25).fit_transform(paths)
    assert X.shape == (6, 2000)
    assert X.dtype == np.float32
    assert_allclose(X[0], make_tone(220.0, duration=0.25, sr=SR), atol=1e-4)


def test_loader_variable_length_returns_list(tmp_path):
    p1 = write_tones(tmp_path, [300.0], duration=0.5, sr=SR)[0]
    p2 = os.path.join(tmp_path, "short.wav")
    sf.write(p2, make_tone(300.0, duration=0.2, sr=SR), SR)
    out = AudioLoader(sr=SR).transform([p1, p2])
    assert isinstance(out, list)
    assert [w.shape for w in out] == [(4000,), (1600,)]
    assert all(w.dtype == np.float32 for w in out)


def test_loader_resamples_like_librosa_load(tmp_path):
    paths = write_tones(tmp_path, [440.0], duration=0.5, sr=16000)
    other = os.path.join(tmp_path, "at_11025.wav")
    sf.write(other, make_tone(440.0, duration=0.5, sr=11025), 11025)
    out = AudioLoader(sr=SR).transform([paths[0], other])
    for path, y in zip([paths[0], other], out):
        expected, _ = librosa.load(path, sr=SR)
        assert_allclose(y, expected, atol=1e-6)
        assert y.shape == (4000,)


def test_loader_stereo_mixdown_and_keep_channels(tmp_path):
    (path,) = write_tones(tmp_path, [500.0], duration=0.25, sr=SR, channels=2)
    tone = make_tone(500.0, duration=0.25, sr=SR)
    mono = AudioLoader(sr=SR, duration=0.25).transform([path])
    assert_allclose(mono[0], 0.75 * tone, atol=1e-4)  # mean of y and y/2
    stereo = AudioLoader(sr=SR, duration=0.25, mono=False).transform([path, path])
    assert stereo.shape == (2, 2, 2000)
    assert_allclose(stereo[0, 1], 0.5 * tone, atol=1e-4)


def test_loader_crop_pad_offset(tmp_path):
    ramp = (np.arange(SR, dtype=np.float32) / SR) - 0.5  # 1 s ramp
    path = os.path.join(tmp_path, "ramp.wav")
    sf.write(path, ramp, SR, subtype="FLOAT")
    crop = AudioLoader(sr=SR, duration=0.5, offset=0.25).transform([path])[0]
    assert_allclose(crop, ramp[2000:6000])
    pad = AudioLoader(sr=SR, duration=1.5).transform([path])[0]
    assert_allclose(pad[:SR], ramp)
    assert_array_equal(pad[SR:], 0.0)
    wrap = AudioLoader(sr=SR, duration=1.5, pad_mode="wrap").transform([path])[0]
    assert_allclose(wrap[SR:], ramp[:4000])
    refl = AudioLoader(sr=SR, duration=1.5, pad_mode="reflect").transform([path])[0]
    assert_allclose(refl[SR : SR + 10], ramp[-2:-12:-1])
    rest = AudioLoader(sr=SR, offset=0.75).transform([path])[0]
    assert_allclose(rest, ramp[6000:])
    # the same crop policy for waveform input (assumed already at sr)
    arr = AudioLoader(sr=SR, duration=0.5, offset=0.25).transform([ramp])[0]
    assert_allclose(arr, crop)


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_loader_decodes_compressed_formats(tmp_path, fmt):
    (path,) = write_tones(tmp_path, [440.0], duration=0.5, sr=SR, fmt=fmt)
    y = AudioLoader(sr=SR, duration=0.5).transform([path])[0]
    assert y.shape == (4000,)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.1


@pytest.mark.parametrize("fmt", ["WAV", "AIFF"])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_loader_pcm16_int_read_equals_float_read(tmp_path, fmt, channels):
    # 16-bit WAV/AIFF are read as int16 and scaled here; the result must be
    # libsndfile's float32 read (then np.mean over channels) to the bit
    rng = np.random.default_rng(0)
    y = (0.4 * rng.standard_normal((3000, channels))).clip(-1, 1)
    path = os.path.join(tmp_path, f"pcm16.{fmt.lower()}")
    sf.write(path, y, SR, format=fmt, subtype="PCM_16")
    floats = sf.read(path, dtype="float32", always_2d=True)[0].T
    mono = AudioLoader(sr=SR).transform([path])[0]
    kept = AudioLoader(sr=SR, mono=False).transform([path])[0]
    assert mono.dtype == kept.dtype == np.float32
    assert_array_equal(kept, floats)
    assert_allclose(mono, np.mean(floats, axis=0), rtol=1e-7, atol=0)
    if channels <= 2:  # two channels: the same single rounding as np.mean
        assert_array_equal(mono, np.mean(floats, axis=0))
    assert_array_equal(mono, librosa.load(path, sr=None)[0])  # librosa's reader


@pytest.mark.parametrize(
    "orig_sr, target_sr, n",
    [(44100, 22050, 4410), (16000, 22050, 1001), (8000, 8001, 7)],
)
def test_resample_equals_librosa_soxr_hq(orig_sr, target_sr, n):
    from sklearn_rfcnn.transformers._loader import _resample

    y = np.random.default_rng(1).standard_normal((2, n)).astype(np.float32)
    ref = librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")
    out = _resample(y, orig_sr, target_sr)
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert_array_equal(out, ref)


def test_loader_accepts_pathlike_and_array_column(tone_files):
    from pathlib import Path

    paths, _ = tone_files
    a = AudioLoader(sr=SR, duration=0.1).transform([Path(p) for p in paths])
    b = AudioLoader(sr=SR, duration=0.1).transform(np.asarray(paths))
    assert_array_equal(a, b)


def test_loader_integer_pcm_is_rescaled():
    int16 = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    out = AudioLoader(sr=SR).transform([int16, int16.astype(np.int32) << 16])
    assert_allclose(out[0], [0.0, 0.5, -1.0, 32767 / 32768])
    assert_allclose(out[1], out[0])
    uint8 = np.array([128, 255, 0], dtype=np.uint8)
    assert_allclose(AudioLoader(sr=SR).transform([uint8])[0], [0, 127 / 128, -1])
    with pytest.raises(InputTypeError, match=r"X\[0\] has dtype int64"):
        AudioLoader(sr=SR).transform([np.arange(10)])


def test_loader_silent_audio_is_valid(tmp_path):
    path = os.path.join(tmp_path, "silence.wav")
    sf.write(path, np.zeros(800, dtype=np.float32), SR)
    X = AudioLoader(sr=SR, duration=0.1).transform([path])
    S = MelSpectrogram(**SMALL).transform(X)
    assert_array_equal(X, 0.0)
    assert np.isfinite(S).all()


def test_loader_n_jobs_equal(tone_files):
    paths, _ = tone_files
    a = AudioLoader(sr=16000, duration=0.3, n_jobs=1).transform(paths)
    b = AudioLoader(sr=16000, duration=0.3, n_jobs=2).transform(paths)
    assert_array_equal(a, b)


def _bad_files(tmp_path):
    corrupt = os.path.join(tmp_path, "corrupt.wav")
    with open(corrupt, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 4)
    empty = os.path.join(tmp_path, "empty.wav")
    sf.write(empty, np.zeros(0, dtype=np.float32), SR)
    nan = os.path.join(tmp_path, "nan.wav")
    sf.write(nan, np.array([0.0, np.nan, 0.1], dtype=np.float32), SR, subtype="FLOAT")
    return {
        "missing": (os.path.join(tmp_path, "missing.wav"), "does not exist"),
        "directory": (str(tmp_path), "is a directory"),
        "corrupt": (corrupt, "could not decode"),
        "empty": (empty, "has no samples"),
        "nan": (nan, "NaN or inf"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "corrupt", "empty", "nan"])
def test_loader_bad_files_raise_naming_path_and_index(tmp_path, tone_files, case):
    good, _ = tone_files
    path, message = _bad_files(tmp_path)[case]
    with pytest.raises(AudioDecodeError, match=message) as info:
        AudioLoader(sr=SR).transform([good[0], path])
    assert info.value.index == 1
    assert info.value.path == path
    assert "X[1]" in str(info.value) and repr(path) in str(info.value)


@pytest.mark.parametrize(
    ("subtype", "channels"), [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)]
)
def test_loader_warns_on_a_wav_shorter_than_its_header(tmp_path, subtype, channels):
    """A truncated WAV (interrupted copy) is read short: warn, not pad silently."""
    from sklearn_rfcnn.exceptions import RFCNNWarning

    path = tmp_path / "cut.wav"
    wave = 0.5 * np.ones((SR, channels))
    sf.write(path, wave, SR, subtype=subtype)
    intact = tmp_path / "intact.wav"
    sf.write(intact, wave, SR, subtype=subtype)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    kept = sf.info(str(path)).frames
    assert 0 < kept < SR  # libsndfile silently reads what is there
    loader = AudioLoader(sr=SR, duration=1.0, mono=True)
    with pytest.warns(RFCNNWarning, match="shorter than their WAV header") as record:
        out = loader.transform([str(intact), str(path)])
    message = str(record[0].message)
    assert repr(str(path)) in message and "X[1]" in message
    assert f"holds {kept} samples" in message and f"declares {SR}" in message
    assert "intact.wav" not in message
    assert out.shape == (2, SR) and not out[1, kept:].any()  # the padding it names
    with warnings.catch_warnings():
        warnings.simplefilter("error", RFCNNWarning)
        AudioLoader(sr=SR, duration=1.0).transform([str(intact)])


def test_loader_skip_reports_every_skipped_item(tmp_path, tone_files):
    good, _ = tone_files
    bad = _bad_files(tmp_path)
    X = [good[0], bad["missing"][0], good[1], bad["corrupt"][0]]
    loader = AudioLoader(sr=SR, duration=0.1, on_error="skip")
    with pytest.warns(SkippedItemsWarning, match="skipped 2 of 4") as record:
        result = loader.load(X)
    assert result.data.shape == (2, 800)
    assert_array_equal(result.kept, [0, 2])
    assert [(i, p) for i, p, _ in result.skipped] == [(1, X[1]), (3, X[3])]
    message = str(record[0].message)
    assert "X[1]" in message and "missing.wav" in message and "corrupt.wav" in message
    assert record[0].message.skipped == result.skipped
    with pytest.warns(SkippedItemsWarning):
        assert_array_equal(loader.transform(X), result.data)
    with pytest.warns(SkippedItemsWarning), pytest.raises(DataError, match="none of"):
        loader.transform([bad["missing"][0]])


def test_loader_bad_array_items():
    loader = AudioLoader(sr=SR)
    with pytest.raises(AudioDecodeError, match=r"X\[1\] contains NaN or inf"):
        loader.transform([np.zeros(4), np.array([0.0, np.inf])])
    with pytest.raises(AudioDecodeError, match=r"X\[0\] has no samples"):
        loader.transform([np.zeros(0)])
    with pytest.raises(AudioDecodeError, match="after offset"):
        AudioLoader(sr=SR, offset=1.0).transform([np.zeros(10)])
    with pytest.raises(InputTypeError, match=r"X\[1\] is a int"):
        loader.transform([np.zeros(4), 3])


def test_loader_rejects_wrong_structure(tone_files):
    paths, _ = tone_files
    loader = AudioLoader(sr=SR)
    with pytest.raises(InputTypeError, match=r"X\[:, 0\]"):
        loader.fit(np.asarray(paths).reshape(-1, 1))
    with pytest.raises(InputTypeError, match=r"list\(X\)"):
        loader.transform(np.zeros((3, 100)))
    with pytest.raises(InputTypeError, match="single path"):
        loader.transform(paths[0])
    with pytest.raises(InputTypeError, match=r"pass a single waveform as \[X\]"):
        loader.transform(np.zeros(100, dtype=np.float32))
    with pytest.raises(DataError, match="empty"):
        loader.transform([])


def test_loader_mixed_channel_counts_need_mono(tmp_path):
    (stereo,) = write_tones(tmp_path, [300.0], duration=0.1, sr=SR, channels=2)
    (tmp_path / "mono").mkdir()
    mono = write_tones(tmp_path / "mono", [300.0], duration=0.1, sr=SR)[0]
    loader = AudioLoader(sr=SR, duration=0.1, mono=False)
    with pytest.raises(DataError, match=r"X\[1\].*mono=True"):
        loader.transform([stereo, mono])
    assert AudioLoader(sr=SR, duration=0.1).transform([stereo, mono]).shape == (2, 800)


@pytest.mark.parametrize(
    "params",
    [
        {"sr": -1},
        {"duration": 0},
        {"offset": -1.0},
        {"pad_mode": "edge"},
        {"on_error": "x"},
    ],
)
def test_loader_bad_parameters(params, tone_files):
    paths, _ = tone_files
    with pytest.raises(ParameterError, match="parameter of AudioLoader"):
        AudioLoader(**params).fit(paths)
    with pytest.raises(InvalidParameterError):
        AudioLoader(**params).transform(paths)


@pytest.mark.parametrize(
    "check",
    [
        check_estimator_cloneable,
        check_estimator_repr,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
    ],
)
def test_loader_api_checks(check):
    # The data checks of parametrize_with_checks need 2-D numeric X; the API
    # checks do not, so AudioLoader gets these.
    check("AudioLoader", AudioLoader())


def test_loader_is_stateless_and_picklable(tone_files):
    import pickle

    paths, _ = tone_files
    loader = AudioLoader(sr=SR, duration=0.1)
    unfitted = loader.transform(paths)
    fitted = pickle.loads(pickle.dumps(loader.fit(paths)))
    assert vars(fitted) == vars(AudioLoader(sr=SR, duration=0.1))
    assert_array_equal(fitted.transform(paths), unfitted)


# AudioLoader takes paths, so parametrize_with_checks skips it ("Can't test
# estimator AudioLoader"); these are its contract tests on real files.
_LOADER_SETTINGS = [
    {"sr": 16000, "duration": 0.3},  # resampled, fixed length
    {"sr": SR},  # native rate, each clip's own length (a list)
    {"sr": SR, "duration": 0.7, "offset": 0.1, "pad_mode": "wrap"},
]


def _same_output(a, b):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, z in zip(a, b):
            assert_array_equal(x, z)
    else:
        assert type(a) is type(b) is np.ndarray
        assert a.dtype == b.dtype == np.float32
        assert_array_equal(a, b)


@pytest.mark.parametrize("params", _LOADER_SETTINGS)
def test_loader_contract_clone_params_fit_determinism(tone_files, params):
    paths, labels = tone_files
    loader = AudioLoader(**params)
    # fit validates only and returns self, with or without y
    assert loader.fit(paths) is loader
    assert loader.fit(paths, labels) is loader
    assert vars(loader) == vars(AudioLoader(**params))  # no fitted state
    # the same files give the same numbers, call after call
    first = loader.transform(paths)
    _same_output(first, loader.transform(paths))
    _same_output(first, loader.fit_transform(paths))
    # a clone has equal parameters and equal output
    twin = clone(loader)
    assert twin is not loader and twin.get_params() == loader.get_params()
    _same_output(first, twin.transform(paths))
    # get_params / set_params round trip; a changed parameter takes effect
    other = AudioLoader().set_params(**loader.get_params())
    assert other.get_params() == loader.get_params()
    _same_output(first, other.transform(paths))
    longer = clone(loader).set_params(duration=1.0).transform(paths)
    assert longer.shape[-1] == round(1.0 * loader.sr)


@pytest.mark.parametrize("params", _LOADER_SETTINGS)
@pytest.mark.parametrize("n_jobs", [2, -1])
def test_loader_contract_n_jobs_gives_equal_output(tone_files, params, n_jobs):
    paths, _ = tone_files
    one = AudioLoader(**params, n_jobs=1).transform(paths)
    _same_output(one, AudioLoader(**params, n_jobs=n_jobs).transform(paths))


@pytest.mark.parametrize("params", _LOADER_SETTINGS)
def test_loader_contract_pickling(tone_files, params):
    import pickle

    paths, _ = tone_files
    loader = AudioLoader(**params, on_error="skip", verbose=0)
    copy = pickle.loads(pickle.dumps(loader))
    assert copy.get_params() == loader.get_params()
    _same_output(loader.transform(paths), copy.transform(paths))


def test_loader_contract_set_output_and_feature_names(tone_files):
    """Waveforms are not a table: no set_output, no feature names.

    As for MelSpectrogram and BandStandardizer (and scikit-learn's text
    vectorizers), set_output is off and a global pandas configuration leaves
    the output numpy; the embeddings at the end of a pipeline still come out
    as a DataFrame with named columns.
    """
    pd = pytest.importorskip("pandas")
    from sklearn import config_context

    paths, labels = tone_files
    loader = AudioLoader(sr=SR, duration=0.5)
    plain = loader.transform(paths)
    assert not hasattr(loader, "set_output")
    assert not hasattr(loader, "get_feature_names_out")
    with config_context(transform_output="pandas"):
        _same_output(plain, clone(loader).fit_transform(paths))
    # a pandas Series of paths is a sequence like any other; no names are kept
    _same_output(plain, loader.fit(pd.Series(paths, name="path")).transform(paths))
    assert not hasattr(loader, "feature_names_in_")
    # the whole pipeline under the global configuration: named embeddings
    from sklearn_rfcnn import RFCNNEmbedder
    from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

    pipe = make_pipeline(
        AudioLoader(sr=SR, duration=0.5),
        MelSpectrogram(**SMALL),
        BandStandardizer(),
        RFCNNEmbedder(**FAST_CNN_PARAMS),
    )
    with config_context(transform_output="pandas"):
        E = pipe.fit(paths, labels).transform(paths)
    assert isinstance(E, pd.DataFrame)
    assert list(E.columns) == list(pipe[-1].get_feature_names_out())


# ------------------------------------------------------------------ MelSpectrogram


@pytest.mark.parametrize("scale", ["perceptual", "db", "power"])
def test_mel_librosa_backend_equals_paper_pipeline(scale):
    X = _signals()
    out = MelSpectrogram(**SMALL, scale=scale).fit_transform(X)
    ref = np.stack([_reference(x, scale=scale, **SMALL) for x in X])
    assert out.dtype == np.float32
    assert out.shape == ref.shape == (4, 32, 1 + 4000 // 64)
    if scale == "power":
        assert_allclose(out, ref, rtol=1e-4, atol=1e-6 * ref.max())
    else:
        assert np.abs(out - ref).max() < 1e-3


def _research_loop(paths, sr=22050, duration=None):
    """The research loop: ``librosa.load`` then the paper's recipe, per file."""
    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=sr, duration=duration)
        out.append(_reference(y, sr, 2048, 512, 256, "perceptual"))
    return np.stack(out)


def _write(path, seconds, file_sr, channels, subtype, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * file_sr)) / file_sr
    y = np.stack(
        [
            0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)
            + 0.02 * rng.standard_normal(t.size)
            for _ in range(channels)
        ],
        axis=-1,
    )
    sf.write(path, y.astype(np.float32), file_sr, subtype=subtype)
    return str(path)


def test_front_end_equals_research_loop_on_mixed_formats(tmp_path):
    # FLAC stereo 44.1 kHz, OGG mono 22.05 kHz, 16-bit WAV stereo 44.1 kHz and
    # float WAV mono 22.05 kHz: decode, mixdown, resampling and the
    # perceptual mel as the per-clip librosa loop, within 0.01 dB
    paths = [
        _write(tmp_path / "a.flac", 1.2, 44100, 2, "PCM_16", 0),
        _write(tmp_path / "b.ogg", 1.2, 22050, 1, "VORBIS", 1),
        _write(tmp_path / "c.wav", 1.2, 44100, 2, "PCM_16", 2),
        _write(tmp_path / "d.wav", 1.2, 22050, 1, "FLOAT", 3),
    ]
    ref = _research_loop(paths, duration=1.0)
    for n_jobs in (1, 2):
        pipe = make_pipeline(
            AudioLoader(sr=22050, duration=1.0, n_jobs=n_jobs),
            MelSpectrogram(n_jobs=n_jobs),
        )
        out = pipe.fit_transform(paths)
        assert out.dtype == np.float32 and out.shape == ref.shape == (4, 256, 44)
        assert np.abs(out - ref).max() <= 0.01


def test_mel_perceptual_floor_and_weighting_after_projection():
    # the top_db floor (taken in nepers) and the A-weighting (added after the
    # projection) give the per-bin recipe's numbers, also where the floor binds
    t = np.arange(22050) / 22050
    pure = 0.5 * np.sin(2 * np.pi * 1000 * t)  # > 80 dB range: the floor binds
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(t.size)
    X = np.stack([pure, quiet, pure * np.hanning(t.size)]).astype(np.float32)
    ref = np.stack([_reference(x, 22050, 2048, 512, 256, "perceptual") for x in X])
    out = MelSpectrogram().fit_transform(X)
    assert np.abs(out - ref).max() < 1e-3


def test_mel_fit_transform_checks_once_and_equals_fit_then_transform(monkeypatch):
    import sklearn_rfcnn.transformers._validation as validation

    X = _signals(n=3)
    calls = []
    real = validation.check_finite_rows

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(validation, "check_finite_rows", counting)
    mel = MelSpectrogram(**SMALL)
    out = mel.fit_transform(X)
    assert len(calls) == 1
    assert mel.n_features_in_ == X.shape[1]
    assert_array_equal(out, MelSpectrogram(**SMALL).fit(X).transform(X))
    lst = MelSpectrogram(**SMALL).fit_transform([X[0], X[1, :3000]])
    assert_array_equal(lst[1], mel.transform([X[1, :3000]])[0])
    with pytest.raises(InvalidParameterError):
        MelSpectrogram(n_mels=0).fit_transform(X)


@pytest.mark.parametrize("scale", ["perceptual", "db", "power"])
def test_mel_torch_backend_matches_librosa(scale):
    pytest.importorskip("torch")
    X = _signals(n=5)
    a = MelSpectrogram(**SMALL, scale=scale).fit_transform(X)
    b = MelSpectrogram(**SMALL, scale=scale, backend="torch").fit_transform(X)
    assert b.dtype == np.float32 and b.shape == a.shape
    if scale == "power":  # compare relative to each clip's peak
        peak = a.max(axis=(1, 2), keepdims=True) + 1e-30
        assert np.abs((b - a) / peak).max() < 1e-4
    else:
        assert np.abs(b - a).max() < 0.01
    lst = MelSpectrogram(**SMALL, scale=scale, backend="torch").transform([X[0]])
    assert_allclose(lst[0], b[0])


@pytest.mark.gpu
def test_mel_torch_backend_on_cuda_matches_librosa():
    from sklearn_rfcnn.transformers._mel_torch import TorchMel

    X = _signals(n=5)
    mel = MelSpectrogram(**SMALL)
    torch_mel = TorchMel(**mel._settings(), device="cuda")
    assert np.abs(torch_mel(X) - mel.fit_transform(X)).max() < 0.01


@pytest.mark.parametrize(
    "n_fft, hop_length", [(256, 64), (255, 64), (64, 64), (64, 16)]
)
def test_stft_power_equals_librosa(n_fft, hop_length):
    X = _signals(n=2, n_samples=1000)
    ours = np.stack([mel_module._stft_power(x, n_fft, hop_length) for x in X])
    assert ours.dtype == np.float32 and ours[0].flags.c_contiguous
    ref = np.abs(
        librosa.stft(X, n_fft=n_fft, hop_length=hop_length, pad_mode="reflect")
    )
    ref = ref**2
    assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())
    with pytest.MonkeyPatch.context() as mp:  # blocks of 3 frames: same numbers
        mp.setattr(mel_module, "_STFT_BLOCK_BYTES", 3 * 4 * n_fft)
        blocked = np.stack([mel_module._stft_power(x, n_fft, hop_length) for x in X])
    assert_array_equal(blocked, ours)
    mel = MelSpectrogram(sr=SR, n_fft=n_fft, hop_length=hop_length, n_mels=8)
    assert mel.n_frames(1000) == ref.shape[-1] == mel.transform(X).shape[-1]


def test_mel_input_forms():
    X = _signals(n=3)
    mel = MelSpectrogram(**SMALL)
    flat = mel.fit_transform(X)
    assert mel.n_features_in_ == 4000
    multi = mel.fit_transform(np.stack([X, 0.5 * X], axis=1))
    assert multi.shape == (3, 2, 32, 63)
    assert_allclose(multi[:, 0], flat)
    assert not hasattr(mel.fit([X[0], X[1, :1000]]), "n_features_in_")
    ragged = mel.transform([X[0], X[1, :1000], np.stack([X[2], X[2]])])
    assert [s.shape for s in ragged] == [(32, 63), (32, 16), (2, 32, 63)]
    assert_allclose(ragged[0], flat[0])
    assert all(s.dtype == np.float32 for s in ragged)
    assert mel.n_frames(4000) == 63


def test_mel_per_clip_floor_and_batch_invariance():
    X = _signals(n=4)
    X[1] *= 1e-3  # a quiet clip next to loud ones
    mel = MelSpectrogram(**SMALL, scale="db")
    batch = mel.fit_transform(X)
    single = np.stack([mel.transform(X[i : i + 1])[0] for i in range(4)])
    assert_array_equal(batch, single)
    assert batch[1].max() - batch[1].min() <= 80.0 + 1e-4


def test_mel_silence_is_finite():
    X = np.zeros((2, 1000), dtype=np.float32)
    for scale in ["perceptual", "db", "power"]:
        for backend in ["librosa", "torch"]:
            out = MelSpectrogram(**SMALL, scale=scale, backend=backend).transform(X)
            assert np.isfinite(out).all()
    assert_allclose(MelSpectrogram(**SMALL, scale="db").transform(X), -100.0)


def test_mel_short_clips_are_zero_padded_to_n_fft():
    X = _signals(n=2, n_samples=100)
    mel = MelSpectrogram(**SMALL)
    out = mel.fit_transform(X)
    assert out.shape == (2, 32, mel.n_frames(100)) == (2, 32, 5)
    padded = np.pad(X, [(0, 0), (0, 156)])
    assert_array_equal(out, clone(mel).transform(padded))
    assert np.isfinite(clone(mel).transform(np.ones((3, 1), dtype=np.float32))).all()


def _concurrency_probe(real):
    """Wrap ``real`` so that its first two calls must overlap in time.

    They meet at a two-party barrier: run one after the other (n_jobs
    ignored), the first call times out and raises ``BrokenBarrierError``.
    """
    import threading

    barrier = threading.Barrier(2, timeout=20)
    lock = threading.Lock()
    calls = []

    def probe(*args, **kwargs):
        with lock:
            calls.append(threading.get_ident())
            wait = len(calls) <= 2
        if wait:
            barrier.wait()
        return real(*args, **kwargs)

    return probe, calls


def test_mel_n_jobs_equal():
    X = _signals(n=6, n_samples=2000)
    a = MelSpectrogram(**SMALL).transform(X)
    real = mel_module._mel_librosa
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mel_module, "_CHUNK_SAMPLES", 4000)  # several chunks
        probe, calls = _concurrency_probe(real)
        mp.setattr(mel_module, "_mel_librosa", probe)
        b = MelSpectrogram(**SMALL, n_jobs=2).transform(X)
        assert len(calls) == 3 and len(set(calls[:2])) == 2  # 3 chunks, 2 threads
        probe, calls = _concurrency_probe(real)
        mp.setattr(mel_module, "_mel_librosa", probe)
        c = MelSpectrogram(**SMALL, n_jobs=2).transform(list(X))
        assert len(calls) == 6 and len(set(calls[:2])) == 2  # one call per clip
    assert_array_equal(a, b)
    assert_array_equal(a, np.stack(c))


def test_thread_map_order_threads_parallel_config_and_early_close():
    import threading
    import time

    import joblib

    from sklearn_rfcnn.transformers._validation import thread_map

    seen = []

    def double(x):
        seen.append(threading.get_ident())
        time.sleep(0.01)
        return 2 * x

    assert list(thread_map(double, range(5), None)) == [0, 2, 4, 6, 8]
    assert set(seen) == {threading.get_ident()}  # n_jobs=None: this thread
    seen.clear()
    with joblib.parallel_config(n_jobs=2):  # honoured, as joblib's n_jobs
        assert list(thread_map(double, range(8), None)) == list(range(0, 16, 2))
    assert len(set(seen)) == 2 and threading.get_ident() not in seen
    started = []

    def slow(x):
        started.append(x)
        time.sleep(0.02)
        return x

    results = thread_map(slow, range(50), 2)
    assert next(results) == 0
    results.close()  # e.g. the loader raising on a bad clip
    assert len(started) < 50


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_front_end_verbose_shows_progress_bar_only_when_asked(
    tone_files, capsys, monkeypatch, n_jobs
):
    paths, _ = tone_files
    monkeypatch.setattr(mel_module, "_CHUNK_SAMPLES", 4000)  # several chunks
    X = _signals(n=6, n_samples=2000)
    runs = {
        "AudioLoader": (AudioLoader(sr=16000, duration=0.3, n_jobs=n_jobs), paths),
        "MelSpectrogram": (MelSpectrogram(**SMALL, n_jobs=n_jobs), X),
        "MelSpectrogram list": (MelSpectrogram(**SMALL, n_jobs=n_jobs), list(X)),
    }
    for name, (est, data) in runs.items():
        quiet = est.fit_transform(data)
        captured = capsys.readouterr()
        assert captured.out == captured.err == "", name
        loud = clone(est).set_params(verbose=1).fit_transform(data)
        captured = capsys.readouterr()
        assert captured.out == "", name
        n_items = len(data)
        desc = name.split()[0]
        assert f"{desc}: 100%" in captured.err, (name, captured.err)
        assert f"{n_items}/{n_items}" in captured.err, (name, captured.err)
        if isinstance(quiet, list):
            assert len(quiet) == len(loud)
            for a, b in zip(quiet, loud):
                assert_array_equal(a, b)
        else:
            assert_array_equal(quiet, loud)


def test_mel_checks_length_seen_in_fit():
    X = _signals(n=2)
    mel = MelSpectrogram(**SMALL).fit(X)
    with pytest.raises(ValueError, match="X has 3000 features"):
        mel.transform(X[:, :3000])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hop_length": -512}, "'hop_length' parameter"),
        ({"n_mels": 300, "n_fft": 256}, r"n_mels=300 must be <= n_fft // 2 \+ 1 = 129"),
        ({"scale": "log"}, "'scale' parameter"),
        ({"fmax": 5000.0}, r"fmax=5000.0 must be <= sr / 2 = 4000"),
        ({"fmin": 3000.0, "fmax": 2000.0}, "fmin=3000.0 must be below fmax"),
        ({"backend": "cuda"}, "'backend' parameter"),
    ],
)
def test_mel_bad_parameters(params, match):
    X = _signals(n=1)
    settings = {**SMALL, **params}
    with pytest.raises(ParameterError, match=match):
        MelSpectrogram(**settings).fit(X)
    with pytest.raises(ParameterError, match=match):
        MelSpectrogram(**settings).transform(X)


def test_mel_bad_input():
    mel = MelSpectrogram(**SMALL)
    X = _signals(n=3)
    X[2, 5] = np.nan
    with pytest.raises(DataError, match=r"NaN or inf in 1 clip\(s\) at index \[2\]"):
        mel.fit(X)
    with pytest.raises(DataError, match=r"X\[1\] contains NaN"):
        mel.transform([X[0], X[2]])
    with pytest.raises(DataError, match=r"X\[0\] is empty"):
        mel.transform([np.zeros(0, dtype=np.float32)])
    with pytest.raises(InputTypeError, match="AudioLoader"):
        mel.transform(["a.wav", "b.wav"])
    with pytest.raises(DataError, match="shape"):
        clone(mel).transform(np.zeros((2, 2, 2, 100)))


def _module_level_imports(module):
    """Modules imported at module level (not inside functions) by ``module``."""
    import ast
    import importlib.util

    tree = ast.parse(open(importlib.util.find_spec(module).origin).read())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_mel_backends_share_spectral_tables_without_an_import_cycle():
    base = "sklearn_rfcnn.transformers."
    librosa_side = _module_level_imports(base + "_mel")
    torch_side = _module_level_imports(base + "_mel_torch")
    assert base + "_mel_torch" not in librosa_side  # imported lazily, on use
    assert base + "_mel" not in torch_side
    assert base + "_spectral" in librosa_side & torch_side
    from sklearn_rfcnn.transformers import _mel_torch, _spectral

    assert mel_module.a_weighting is _mel_torch.a_weighting is _spectral.a_weighting
    assert mel_module.mel_filterbank is _mel_torch.mel_filterbank


def test_mel_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from sklearn_rfcnn.transformers import MelSpectrogram, AudioLoader\n"
        "MelSpectrogram(sr=8000, n_fft=64, hop_length=16, n_mels=8)"
        ".fit_transform(np.zeros((2, 100)))\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- BandStandardizer


def test_band_standardizer_3d_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 5, 11)) * np.arange(1, 6)[:, None] + 3.0
    norm = BandStandardizer().fit(X)
    assert norm.mean_.shape == norm.scale_.shape == (5,)
    assert norm.n_features_in_ == 5
    assert_allclose(norm.mean_, X.mean(axis=(0, 2)))
    assert_allclose(norm.scale_, X.std(axis=(0, 2)))
    Z = norm.transform(X)
    assert Z.dtype == np.float32
    assert_allclose(Z.mean(axis=(0, 2)), 0.0, atol=1e-5)
    assert_allclose(Z.std(axis=(0, 2)), 1.0, rtol=1e-5)


def test_band_standardizer_chunked_fit_equals_direct(monkeypatch):
    from sklearn_rfcnn.transformers import _standardize

    X = np.random.default_rng(1).normal(2.0, 3.0, size=(10, 4, 6)).astype(np.float32)
    monkeypatch.setattr(_standardize, "_CHUNK_CLIPS", 3)
    norm = BandStandardizer().fit(X)
    assert_allclose(norm.mean_, X.astype(np.float64).mean(axis=(0, 2)), rtol=1e-6)
    assert_allclose(norm.scale_, X.astype(np.float64).std(axis=(0, 2)), rtol=1e-6)


def test_band_standardizer_4d_is_per_channel_and_band():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2, 3, 8))
    X[:, 1] = 10 * X[:, 1] + 5
    norm = BandStandardizer().fit(X)
    assert norm.mean_.shape == (2, 3)
    assert_allclose(norm.mean_, X.mean(axis=(0, 3)))
    assert_allclose(norm.transform(X).std(axis=(0, 3)), 1.0, rtol=1e-5)


def test_band_standardizer_2d_equals_standard_scaler():
    X = np.random.default_rng(0).normal(size=(20, 4))
    ours = BandStandardizer().fit_transform(X)
    theirs = StandardScaler().fit_transform(X)
    assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_band_standardizer_lists():
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(4, n)).astype(np.float32) for n in (5, 9, 2)]
    norm = BandStandardizer().fit(items)
    joined = np.concatenate(items, axis=1).astype(np.float64)
    assert_allclose(norm.mean_, joined.mean(axis=1), rtol=1e-6)
    assert_allclose(norm.scale_, joined.std(axis=1), rtol=1e-6)
    out = norm.transform(items)
    assert [o.shape for o in out] == [(4, 5), (4, 9), (4, 2)]
    assert_allclose(np.concatenate(out, axis=1).mean(axis=1), 0.0, atol=1e-6)
    # a 3-D batch is the same layout as a list of 2-D spectrograms
    assert_allclose(norm.transform(np.stack([items[0]]))[0], out[0])


def test_band_standardizer_constant_band_scale_one():
    X = np.random.default_rng(0).normal(size=(3, 4, 5))
    X[:, 2] = 7.0
    norm = BandStandardizer().fit(X)
    assert norm.scale_[2] == 1.0
    Z = norm.transform(X)
    assert np.isfinite(Z).all()
    assert_array_equal(Z[:, 2], 0.0)


def test_band_standardizer_layout_errors():
    X = np.random.default_rng(0).normal(size=(3, 4, 5))
    norm = BandStandardizer().fit(X)
    with pytest.raises(ValueError, match="X has 5 features"):
        norm.transform(np.zeros((3, 5, 5)))
    with pytest.raises(DataError, match=r"X has \(5,\) bands"):
        norm.transform([np.zeros((5, 5))])
    with pytest.raises(DataError, match=r"\(1, 5\) bands"):
        clone(norm).fit(np.zeros((3, 1, 4, 5))).transform(np.zeros((3, 1, 5, 5)))
    with pytest.raises(DataError, match="fitted on 3-D"):
        norm.transform([np.zeros((1, 4, 5))])
    with pytest.raises(DataError, match=r"X\[1\] has bands"):
        norm.fit([np.zeros((4, 3)), np.zeros((5, 3))])
    with pytest.raises(DataError, match=r"NaN or inf in 1 clip\(s\) at index \[0\]"):
        norm.transform(np.full((1, 4, 5), np.inf))


@pytest.mark.parametrize(
    "estimator",
    [MelSpectrogram(**SMALL), BandStandardizer()],
    ids=lambda e: type(e).__name__,
)
def test_set_output_is_off_and_3d_output_is_not_wrapped(estimator):
    pytest.importorskip("pandas")
    from sklearn import config_context

    # scikit-learn's test_common runs check_set_output_transform* only on
    # estimators that have set_output; ours opt out (3-D output cannot become a
    # DataFrame)...
    assert not hasattr(estimator, "set_output")
    assert not hasattr(estimator, "get_feature_names_out")
    # ...so their 3-D output survives a global pandas output configuration.
    X = _signals(n=2, n_samples=1000)
    if isinstance(estimator, BandStandardizer):
        X = MelSpectrogram(**SMALL).fit_transform(X)
    with config_context(transform_output="pandas"):
        out = clone(estimator).fit_transform(X)
        pipe_out = make_pipeline(clone(estimator)).fit_transform(X)
    assert isinstance(out, np.ndarray) and out.ndim == 3
    assert_array_equal(pipe_out, out)


# -------------------------------------------------------------- pipeline, caching


def test_pipeline_end_to_end(tone_files):
    paths, _ = tone_files
    pipe = make_pipeline(
        AudioLoader(sr=SR, duration=0.5),
        MelSpectrogram(**SMALL),
        BandStandardizer(),
    )
    Z = pipe.fit_transform(paths)
    assert Z.shape == (6, 32, 63) and Z.dtype == np.float32
    assert_allclose(Z.mean(axis=(0, 2)), 0.0, atol=1e-4)


def test_pipeline_variable_length_lists(tmp_path):
    paths = []
    for i, seconds in enumerate([0.3, 0.5, 0.2]):
        paths.append(os.path.join(tmp_path, f"clip{i}.wav"))
        sf.write(paths[-1], make_tone(300.0 + 100 * i, duration=seconds, sr=SR), SR)
    pipe = make_pipeline(
        AudioLoader(sr=SR), MelSpectrogram(**SMALL), BandStandardizer()
    )
    out = pipe.fit_transform(paths)
    assert isinstance(out, list)
    assert [o.shape for o in out] == [(32, 38), (32, 63), (32, 26)]
    assert_allclose(np.concatenate(out, axis=1).mean(axis=1), 0.0, atol=1e-4)


def test_pipeline_memory_skips_extraction_on_refit(tone_files, tmp_path, monkeypatch):
    paths, _ = tone_files
    calls = {"load": 0, "mel": 0}
    real_mel, real_load = mel_module._mel_librosa, AudioLoader._load_one

    def counting_mel(*args, **kwargs):
        calls["mel"] += 1
        return real_mel(*args, **kwargs)

    def counting_load(self, item, index):
        calls["load"] += 1
        return real_load(self, item, index)

    monkeypatch.setattr(mel_module, "_mel_librosa", counting_mel)
    monkeypatch.setattr(AudioLoader, "_load_one", counting_load)

    def make(memory):
        return Pipeline(
            [
                ("load", AudioLoader(sr=SR, duration=0.5)),
                ("mel", MelSpectrogram(**SMALL)),
                ("norm", BandStandardizer()),
            ],
            memory=memory,
        )

    first = make(str(tmp_path / "cache")).fit(paths)
    assert calls == {"load": 6, "mel": 1}
    second = make(str(tmp_path / "cache")).fit(paths)
    assert calls == {"load": 6, "mel": 1}, "the cached refit re-extracted features"
    assert_array_equal(second[-1].mean_, first[-1].mean_)
    make(None).fit(paths)  # control: without memory everything runs again
    assert calls == {"load": 12, "mel": 2}


def test_front_end_hashes_stably():
    import joblib

    for est in (AudioLoader(sr=SR), MelSpectrogram(**SMALL), BandStandardizer()):
        assert joblib.hash(est) == joblib.hash(clone(est))
    X = _signals(n=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = BandStandardizer().fit(MelSpectrogram(**SMALL).transform(X))
    assert joblib.hash(fitted) == joblib.hash(joblib.load(_dump(fitted)))


def _dump(obj):
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return buffer
