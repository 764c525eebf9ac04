"""The embedded instrument-mixture dataset and the loaders of local copies."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import roc_auc_score

from sklearn_rfcnn.datasets import (
    INSTRUMENT_TAGS,
    _instruments,
    get_data_home,
    load_audio_folder,
    load_manifest,
    load_mtg_jamendo,
    load_openmic,
    make_instrument_mixtures,
)
from sklearn_rfcnn.exceptions import DataError, ParameterError, SkippedItemsWarning

SMALL = {"duration": 1.0, "sr": 16000}


# --------------------------------------------------------------------------
# make_instrument_mixtures
# --------------------------------------------------------------------------


def test_shapes_and_contents(tmp_path):
    data = make_instrument_mixtures(
        n_clips=8, random_state=0, data_home=tmp_path, **SMALL
    )
    assert data.waveforms.shape == (8, 16000)
    assert data.waveforms.dtype == np.float32
    assert data.target.shape == (8, len(INSTRUMENT_TAGS))
    assert list(data.target_names) == list(INSTRUMENT_TAGS)
    assert set(np.unique(data.target)) <= {0, 1}
    assert 1 <= data.target.sum(axis=1).min() and data.target.sum(axis=1).max() <= 3
    assert data.sr == 16000 and "Instrument mixtures" in data.DESCR
    # no silent clip, peak-normalised
    np.testing.assert_allclose(np.abs(data.waveforms).max(axis=1), 0.9, atol=1e-3)
    # the filenames are the cached WAVs and hold exactly the waveforms
    for path, wave in zip(data.filenames, data.waveforms):
        assert path.startswith(str(tmp_path))
        y, sr = sf.read(path, dtype="float32")
        assert sr == 16000
        np.testing.assert_array_equal(y, wave)


def test_deterministic_for_a_random_state(tmp_path):
    kw = dict(n_clips=6, instruments=["piano", "drums", "violin", "bass"], **SMALL)
    a = make_instrument_mixtures(random_state=3, data_home=tmp_path / "a", **kw)
    b = make_instrument_mixtures(random_state=3, data_home=tmp_path / "b", **kw)
    c = make_instrument_mixtures(random_state=4, data_home=tmp_path / "c", **kw)
    np.testing.assert_array_equal(a.waveforms, b.waveforms)
    np.testing.assert_array_equal(a.target, b.target)
    assert not np.array_equal(a.waveforms, c.waveforms)
    assert list(a.target_names) == ["piano", "drums", "violin", "bass"]
    # a larger request extends the cache: the first clips are the same
    d = make_instrument_mixtures(
        random_state=3, data_home=tmp_path / "a", **{**kw, "n_clips": 8}
    )
    np.testing.assert_array_equal(d.waveforms[:6], a.waveforms)


def test_cache_is_reused_and_keyed(tmp_path, monkeypatch):
    kw = dict(n_clips=3, random_state=0, data_home=tmp_path, **SMALL)
    first = make_instrument_mixtures(**kw)

    def boom(*args, **kwargs):
        raise AssertionError("rendered although cached")

    monkeypatch.setattr(_instruments, "_render_clip", boom)
    again = make_instrument_mixtures(**kw)
    np.testing.assert_array_equal(first.waveforms, again.waveforms)
    assert list(again.filenames) == list(first.filenames)
    # any other generation parameter is a different cache entry
    with pytest.raises(AssertionError, match="rendered although cached"):
        make_instrument_mixtures(**{**kw, "max_polyphony": 2})


def test_tags_match_the_sounding_instruments():
    """Each tag's instrument, rendered alone, is audible, and nothing else sounds."""
    sf_path, sf_bytes = _instruments._load_soundfont(None)
    config = {
        "duration": 1.0,
        "sr": 16000,
        "instruments": list(INSTRUMENT_TAGS),
        "max_polyphony": 3,
        "soundfont_name": os.path.basename(sf_path),
    }
    for index in range(12):
        pcm, tags, stems = _instruments._render_clip(
            index, 11, config, sf_bytes, return_stems=True
        )
        assert tags == [t for t in INSTRUMENT_TAGS if t in stems]
        mix = pcm / 32767.0
        mix_rms = np.sqrt(np.mean(mix**2))
        for tag in tags:
            stem_rms = np.sqrt(np.mean(stems[tag] ** 2))
            # each tagged instrument alone is well above silence and within
            # about 12 dB of the whole mix
            assert stem_rms > 0.25 * mix_rms, (index, tag)
        # the mix is exactly the sum of the tagged stems (up to 16-bit rounding)
        np.testing.assert_allclose(mix, np.sum(list(stems.values()), axis=0), atol=1e-4)


def _percussiveness(wave, n_fft=512, hop=256):
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop]
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1))
    flux = np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)
    high = mag[:, mag.shape[1] // 2 :].sum() / mag.sum()  # above sr/4
    return flux.mean() / (mag.sum(axis=1).mean() + 1e-9) + high


def test_drum_clips_carry_percussive_energy(tmp_path):
    data = make_instrument_mixtures(
        n_clips=30,
        instruments=["drums", "flute", "violin", "organ", "voice"],
        max_polyphony=2,
        random_state=1,
        data_home=tmp_path,
        **SMALL,
    )
    has_drums = data.target[:, 0]
    assert 5 <= has_drums.sum() <= 25
    score = [_percussiveness(w) for w in data.waveforms]
    assert roc_auc_score(has_drums, score) > 0.9


def test_corrupt_cache_entries_are_rendered_again(tmp_path):
    kw = dict(n_clips=4, random_state=0, data_home=tmp_path, **SMALL)
    ref = make_instrument_mixtures(**kw)
    paths = ref.filenames
    with open(paths[0], "wb") as fh:  # garbage
        fh.write(b"not a wav file")
    with open(paths[1], "r+b") as fh:  # truncated
        fh.truncate(2000)
    raw = bytearray(open(paths[2], "rb").read())  # a flipped sample byte
    raw[len(raw) // 2] ^= 0xFF
    open(paths[2], "wb").write(bytes(raw))
    again = make_instrument_mixtures(**kw)
    np.testing.assert_array_equal(again.waveforms, ref.waveforms)
    np.testing.assert_array_equal(again.target, ref.target)
    for p in paths[:3]:
        np.testing.assert_array_equal(
            sf.read(p, dtype="float32")[0], ref.waveforms[list(paths).index(p)]
        )


def test_two_processes_render_the_same_cache(tmp_path):
    home = tmp_path / "shared"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from sklearn_rfcnn.datasets import make_instrument_mixtures
        d = make_instrument_mixtures(n_clips=40, duration=1.0, sr=16000,
                                     random_state=5, data_home={str(home)!r})
        print(int(np.abs(d.waveforms).sum() * 1000), d.target.sum())
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert outs[0][0] == outs[1][0]
    ref = make_instrument_mixtures(
        n_clips=40, duration=1.0, sr=16000, random_state=5, data_home=tmp_path / "ref"
    )
    shared = make_instrument_mixtures(
        n_clips=40, duration=1.0, sr=16000, random_state=5, data_home=home
    )
    np.testing.assert_array_equal(shared.waveforms, ref.waveforms)
    np.testing.assert_array_equal(shared.target, ref.target)
    folder = os.path.dirname(shared.filenames[0])
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]


def test_data_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RFCNN_DATA_HOME", str(tmp_path / "envhome"))
    assert get_data_home() == str((tmp_path / "envhome").resolve())
    data = make_instrument_mixtures(n_clips=1, random_state=0, **SMALL)
    assert data.filenames[0].startswith(str((tmp_path / "envhome").resolve()))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"instruments": ["piano", "gitar"]}, "did you mean 'acoustic_guitar'"),
        ({"instruments": "piano"}, "single string"),
        ({"instruments": ["piano", "piano"]}, "duplicates"),
        ({"instruments": ["piano"], "max_polyphony": 2}, "max_polyphony"),
        ({"n_clips": 0}, "n_clips"),
        ({"duration": -1.0}, "duration"),
        ({"sr": 100}, "sr="),
        ({"soundfont": "/nonexistent/font.sf2"}, "does not exist"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        make_instrument_mixtures(**{"n_clips": 1, "data_home": tmp_path, **kwargs})


def test_unreadable_soundfont(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF0000junk")
    with pytest.raises(ParameterError, match="could not be read as a SoundFont"):
        make_instrument_mixtures(n_clips=1, soundfont=bad, data_home=tmp_path)


# --------------------------------------------------------------------------
# loaders of local copies, on tiny fixture trees in the official layouts
# --------------------------------------------------------------------------


def _write_audio(path, fmt=None, seconds=0.1, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), sr, format=fmt)


@pytest.fixture
def openmic_root(tmp_path):
    root = tmp_path / "openmic-2018"
    names = ["accordion", "banjo", "bass"]
    keys = ["000046_3840", "000135_483840", "014503_115200", "155310_188160"]
    rng = np.random.RandomState(0)
    y_true = rng.rand(4, 3)
    y_mask = rng.rand(4, 3) < 0.6
    root.mkdir()
    np.savez(
        root / "openmic-2018.npz",
        Y_true=y_true,
        Y_mask=y_mask,
        sample_key=np.array(keys),
        X=np.zeros((4, 10, 128)),
    )
    # class-map order differs from alphabetical on purpose
    (root / "class-map.json").write_text(
        json.dumps({"bass": 2, "accordion": 0, "banjo": 1})
    )
    (root / "partitions").mkdir()
    (root / "partitions" / "split01_train.csv").write_text("\n".join(keys[:3]) + "\n")
    (root / "partitions" / "split01_test.csv").write_text(keys[3] + "\n")
    for k in keys:
        _write_audio(root / "audio" / k[:3] / f"{k}.ogg", fmt="OGG")
    return root, names, keys, y_true, y_mask


def test_load_openmic(openmic_root):
    root, names, keys, y_true, y_mask = openmic_root
    data = load_openmic(root)
    assert list(data.target_names) == names
    np.testing.assert_array_equal(data.target, y_true)
    np.testing.assert_array_equal(data.mask, y_mask)
    assert list(data.sample_key) == keys
    assert list(data.split) == ["train", "train", "train", "test"]
    assert data.filenames[1] == str(root / "audio" / "000" / "000135_483840.ogg")
    assert all(sf.info(f).samplerate == 8000 for f in data.filenames)
    assert "Y_true >= 0.5" in data.DESCR


def test_load_openmic_errors(openmic_root, tmp_path):
    root, *_ = openmic_root
    with pytest.raises(DataError, match=r"does not exist.*\n.*Expected layout"):
        load_openmic(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"openmic-2018.npz' is missing"):
        load_openmic(tmp_path)  # the wrong folder (the parent)
    os.remove(root / "audio" / "014" / "014503_115200.ogg")
    with pytest.raises(DataError, match=r"1 of 4 audio files are missing.*014503"):
        load_openmic(root)
    with pytest.warns(SkippedItemsWarning, match="014503_115200"):
        data = load_openmic(root, on_missing="skip")
    assert len(data.filenames) == 3 and "014503_115200" not in data.sample_key
    (root / "partitions" / "split01_test.csv").write_text("999999_0\n")
    with pytest.raises(DataError, match=r"not in openmic-2018.npz"):
        load_openmic(root, on_missing="skip")
    os.remove(root / "class-map.json")
    with pytest.raises(DataError, match=r"class-map.json' is missing"):
        load_openmic(root)


_JAMENDO_HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"


@pytest.fixture
def jamendo_root(tmp_path):
    root = tmp_path / "mtg-jamendo-dataset"
    tracks = [
        ("track_0000214", "14/214.mp3", "124.6", ["mood/theme---film"]),
        (
            "track_0000382",
            "82/382.mp3",
            "229.8",
            ["mood/theme---happy", "mood/theme---energetic"],
        ),
        ("track_0000948", "48/948.mp3", "221.0", ["mood/theme---sad"]),
        ("track_0001044", "44/1044.mp3", "306.3", ["mood/theme---happy"]),
    ]

    def line(t):
        return "\t".join([t[0], "artist_000014", "album_000031", t[1], t[2], *t[3]])

    data = root / "data"
    (data / "splits" / "split-0").mkdir(parents=True)
    (data / "autotagging_moodtheme.tsv").write_text(
        _JAMENDO_HEADER + "\n".join(line(t) for t in tracks) + "\n"
    )
    parts = {"train": tracks[:2], "validation": tracks[2:3], "test": tracks[3:]}
    for part, rows in parts.items():
        (data / "splits" / "split-0" / f"autotagging_moodtheme-{part}.tsv").write_text(
            _JAMENDO_HEADER + "\n".join(line(t) for t in rows) + "\n"
        )
    for t in tracks:
        _write_audio(root / "audio" / t[1], fmt="MP3")
    return root, tracks


def test_load_mtg_jamendo(jamendo_root, tmp_path):
    root, tracks = jamendo_root
    data = load_mtg_jamendo(root)
    assert list(data.target_names) == ["energetic", "film", "happy", "sad"]
    np.testing.assert_array_equal(
        data.target, [[0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    )
    assert list(data.split) == ["train", "train", "validation", "test"]
    assert list(data.track_id) == [t[0] for t in tracks]
    assert data.filenames[1] == str(root / "audio" / "82" / "382.mp3")
    np.testing.assert_allclose(data.duration, [124.6, 229.8, 221.0, 306.3])
    assert sf.info(data.filenames[0]).samplerate == 8000  # readable MP3
    # audio elsewhere
    moved = tmp_path / "mp3s"
    os.rename(root / "audio", moved)
    with pytest.raises(DataError, match="audio_dir="):
        load_mtg_jamendo(root)
    assert len(load_mtg_jamendo(root, audio_dir=moved).filenames) == 4


def test_load_mtg_jamendo_errors(jamendo_root, tmp_path):
    root, _ = jamendo_root
    with pytest.raises(DataError, match=r"does not exist.*\n.*Expected layout"):
        load_mtg_jamendo(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"autotagging_genre.tsv' is missing"):
        load_mtg_jamendo(root, subset="genre")
    with pytest.raises(DataError, match="split=3 has no folder"):
        load_mtg_jamendo(root, split=3)
    with pytest.raises(ParameterError, match="subset="):
        load_mtg_jamendo(root, subset="mood")
    os.remove(root / "audio" / "48" / "948.mp3")
    with pytest.raises(DataError, match=r"948.mp3"):
        load_mtg_jamendo(root)
    with pytest.warns(SkippedItemsWarning):
        assert len(load_mtg_jamendo(root, on_missing="skip").filenames) == 3
    (root / "data" / "autotagging_moodtheme.tsv").write_text("a,b,c\n")
    with pytest.raises(DataError, match="header"):
        load_mtg_jamendo(root, on_missing="skip")


def test_load_audio_folder(tmp_path):
    for genre, fmts in {"blues": ["wav", "flac"], "rock": ["ogg", "mp3"]}.items():
        for i, fmt in enumerate(fmts):
            _write_audio(tmp_path / genre / f"{genre}.{i:05d}.{fmt.upper()}")
    (tmp_path / "rock" / "notes.txt").write_text("not audio")
    (tmp_path / "rock" / ".hidden.wav").write_text("ignored")
    (tmp_path / "README").write_text("ignored")
    data = load_audio_folder(tmp_path)
    assert list(data.target_names) == ["blues", "rock"]
    assert list(data.target) == ["blues", "blues", "rock", "rock"]
    assert all(
        f.lower().endswith((".wav", ".flac", ".ogg", ".mp3")) for f in data.filenames
    )
    (tmp_path / "pop").mkdir()
    with pytest.raises(DataError, match=r"\['pop'\].*hold no audio"):
        load_audio_folder(tmp_path)


def test_load_audio_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_audio_folder(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_audio_folder(tmp_path)
    _write_audio(tmp_path / "loose.wav")
    with pytest.raises(DataError, match=r"directly.*loose.wav"):
        load_audio_folder(tmp_path)


def test_load_manifest_layouts(tmp_path):
    for name in ["a.wav", "b.wav", "c.wav"]:
        _write_audio(tmp_path / "clips" / name)
    tags = tmp_path / "tags.csv"
    tags.write_text(
        "path,tags\nclips/a.wav,piano;drums\nclips/b.wav,\n"
        f"{tmp_path / 'clips' / 'c.wav'},drums\n"
    )
    data = load_manifest(tags)
    assert data.multilabel and list(data.target_names) == ["drums", "piano"]
    np.testing.assert_array_equal(data.target, [[1, 1], [0, 0], [1, 0]])
    assert data.filenames[0] == str(tmp_path / "clips" / "a.wav")
    data = load_manifest(tags, tags=["piano", "drums", "violin"])
    np.testing.assert_array_equal(data.target, [[1, 1, 0], [0, 0, 0], [0, 1, 0]])
    with pytest.raises(DataError, match=r"line 2: 'piano' is not in the tag set"):
        load_manifest(tags, tags=["drums", "violin"])

    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\nclips/a.wav,jazz\nclips/b.wav,rock\n")
    data = load_manifest(labels)
    assert not data.multilabel and list(data.target) == ["jazz", "rock"]
    labels.write_text("filename,label\nclips/a.wav,jazz\nclips/b.wav,rok\n")
    with pytest.raises(DataError, match=r"line 3: 'rok'.*did you mean 'rock'"):
        load_manifest(labels, tags=["jazz", "rock", "pop"])

    onehot = tmp_path / "onehot.csv"
    onehot.write_text("file,piano,drums\nclips/a.wav,1,0\nclips/b.wav,0,1\n")
    data = load_manifest(onehot)
    assert list(data.target_names) == ["piano", "drums"]
    np.testing.assert_array_equal(data.target, [[1, 0], [0, 1]])
    onehot.write_text("file,piano,drums\nclips/a.wav,1,yes\n")
    with pytest.raises(DataError, match=r"line 2, column 'drums': 'yes' is not 0 or 1"):
        load_manifest(onehot)


def test_load_manifest_errors(tmp_path):
    _write_audio(tmp_path / "a.wav")
    m = tmp_path / "m.csv"
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(m)
    m.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_manifest(m)
    m.write_text("audio,tags\na.wav,x\n")
    with pytest.raises(DataError, match="no path column"):
        load_manifest(m)
    m.write_text("path,tags\n")
    with pytest.raises(DataError, match="lists no audio files"):
        load_manifest(m)
    m.write_text("path,tags\na.wav,x\nmissing.wav,y\n")
    with pytest.raises(DataError, match=r"missing.wav"):
        load_manifest(m)
    with pytest.warns(SkippedItemsWarning, match=r"missing.wav"):
        data = load_manifest(m, on_missing="skip")
    assert data.skipped == [str(tmp_path / "missing.wav")]
    assert len(data.filenames) == 1


# --------------------------------------------------------------------------
# shared audio-file filter, multi-label split, one module per data set
# --------------------------------------------------------------------------
def test_find_audio_files_is_the_loaders_filter(tmp_path):
    from sklearn_rfcnn.datasets import find_audio_files, is_audio_file

    (tmp_path / "jazz" / "deep").mkdir(parents=True)
    for name in ["jazz/a.WAV", "jazz/deep/b.flac", "jazz/.c.wav", "jazz/d.txt"]:
        (tmp_path / name).write_bytes(b"")
    found = find_audio_files(tmp_path)
    assert found == [
        str(tmp_path / "jazz" / "a.WAV"),
        str(tmp_path / "jazz/deep/b.flac"),
    ]
    assert all(is_audio_file(p) for p in found)
    assert load_audio_folder(tmp_path).filenames.tolist() == found
    with pytest.raises(DataError, match="does not exist"):
        find_audio_files(tmp_path / "nope")


def test_multilabel_train_test_split_keeps_every_tag_testable():
    from sklearn_rfcnn.datasets import multilabel_train_test_split

    rng = np.random.RandomState(0)
    Y = (rng.rand(40, 5) < 0.3).astype(int)
    train, test = multilabel_train_test_split(Y, test_size=0.25, random_state=3)
    assert len(test) == 10 and len(train) == 30
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(40))
    pos = Y[test].sum(axis=0)
    assert ((pos > 0) & (pos < len(test))).all()
    again = multilabel_train_test_split(Y, test_size=0.25, random_state=3)
    np.testing.assert_array_equal(again[1], test)
    with pytest.raises(DataError, match="0/1 tag matrix"):
        multilabel_train_test_split(np.arange(5))
    with pytest.raises(ParameterError, match="n_tries=0"):
        multilabel_train_test_split(Y, n_tries=0)


def test_one_module_per_data_set():
    from sklearn_rfcnn.datasets import (
        _folder,
        _jamendo,
        _manifest,
        _openmic,
    )

    assert _openmic.load_openmic is load_openmic
    assert _jamendo.load_mtg_jamendo is load_mtg_jamendo
    assert _folder.load_audio_folder is load_audio_folder
    assert _manifest.load_manifest is load_manifest


# --------------------------------------------------------------------------
# issue #14: checked class maps, identifier conflicts, cache checksums and
# raw errors turned into DataErrors naming the file and the layout
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("class_map", "match"),
    [
        ({"accordion": 0, "banjo": 5, "bass": 2}, r"'banjo' -> 5.*0 to 2"),
        ({"accordion": 0, "banjo": 0, "bass": 2}, r"'accordion' and 'banjo'.*0"),
        ({"accordion": 0, "banjo": 1.5, "bass": 2}, r"'banjo' -> 1.5.*integer"),
        ({"accordion": 0, "banjo": True, "bass": 2}, r"'banjo' -> True.*integer"),
        ({"accordion": 0, "banjo": "1", "bass": 2}, r"'banjo' -> '1'.*integer"),
        ({"accordion": 0, "banjo": 1}, r"names 2 classes.*3 columns"),
        ([0, 5, 2], r"JSON object"),
    ],
)
def test_load_openmic_checks_the_class_map_indices(openmic_root, class_map, match):
    root, *_ = openmic_root
    (root / "class-map.json").write_text(json.dumps(class_map))
    with pytest.raises(DataError, match=match) as info:
        load_openmic(root)
    assert str(root / "class-map.json") in str(info.value)


def test_load_openmic_class_map_order_is_the_column_index(openmic_root):
    root, *_ = openmic_root
    (root / "class-map.json").write_text(
        json.dumps({"banjo": 2, "bass": 0, "accordion": 1})
    )
    assert list(load_openmic(root).target_names) == ["bass", "accordion", "banjo"]


def test_load_openmic_key_in_both_partitions_is_an_error(openmic_root):
    root, _names, keys, *_ = openmic_root
    (root / "partitions" / "split01_test.csv").write_text(f"{keys[3]}\n{keys[1]}\n")
    with pytest.raises(DataError, match=rf"both.*{keys[1]}") as info:
        load_openmic(root)
    assert "split01_train.csv" in str(info.value)
    assert "split01_test.csv" in str(info.value)
    assert keys[3] not in str(info.value)


def test_load_openmic_duplicated_sample_key_is_an_error(openmic_root):
    root, _names, keys, y_true, y_mask = openmic_root
    np.savez(
        root / "openmic-2018.npz",
        Y_true=y_true,
        Y_mask=y_mask,
        sample_key=np.array([keys[0], keys[1], keys[2], keys[1]]),
    )
    with pytest.raises(DataError, match=rf"sample_key.*{keys[1]}.*rows \[1, 3\]"):
        load_openmic(root)


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "/abs", "00a/b", ".."])
def test_load_openmic_sample_key_cannot_leave_the_root(openmic_root, bad):
    root, _names, keys, y_true, y_mask = openmic_root
    np.savez(
        root / "openmic-2018.npz",
        Y_true=y_true,
        Y_mask=y_mask,
        sample_key=np.array([keys[0], keys[1], keys[2], bad]),
    )
    with pytest.raises(DataError, match=r"sample_key.*not OpenMIC sample keys"):
        load_openmic(root)


def _jamendo_line(track, rel, tags):
    return "\t".join([track, "artist_1", "album_1", rel, "100.0", *tags])


def test_load_mtg_jamendo_duplicated_track_id_is_an_error(jamendo_root):
    root, tracks = jamendo_root
    main = root / "data" / "autotagging_moodtheme.tsv"
    with open(main, "a") as fh:
        fh.write(_jamendo_line(tracks[0][0], "14/214.mp3", ["mood/theme---sad"]))
        fh.write("\n")
    with pytest.raises(DataError, match=r"track_0000214.*lines \[2, 6\]") as info:
        load_mtg_jamendo(root)
    assert str(main) in str(info.value)


def test_load_mtg_jamendo_track_in_two_splits_is_an_error(jamendo_root):
    root, tracks = jamendo_root
    split_dir = root / "data" / "splits" / "split-0"
    with open(split_dir / "autotagging_moodtheme-test.tsv", "a") as fh:
        fh.write(_jamendo_line(tracks[0][0], tracks[0][1], tracks[0][3]) + "\n")
    with pytest.raises(DataError, match=r"track_0000214.*train.*test") as info:
        load_mtg_jamendo(root)
    assert "autotagging_moodtheme-test.tsv" in str(info.value)
    assert "track_0001044" not in str(info.value)


def test_cache_checksum_covers_the_tags(tmp_path):
    import re

    kw = dict(
        n_clips=2,
        instruments=["piano", "drums", "violin"],
        max_polyphony=2,
        random_state=0,
        data_home=tmp_path,
        **SMALL,
    )
    ref = make_instrument_mixtures(**kw)
    path = ref.filenames[0]
    with sf.SoundFile(path) as fh:
        comment, pcm = fh.comment, fh.read(dtype="int16")
    other = next(t for t, on in zip(ref.target_names, ref.target[0]) if not on)
    edited = re.sub(r"tags=[a-z_,]*", f"tags={other}", comment)
    assert edited != comment
    with sf.SoundFile(
        path, "w", samplerate=16000, channels=1, subtype="PCM_16", format="WAV"
    ) as fh:  # the same samples, another tag
        fh.comment = edited
        fh.write(pcm)
    again = make_instrument_mixtures(**kw)
    np.testing.assert_array_equal(again.target, ref.target)
    np.testing.assert_array_equal(again.waveforms, ref.waveforms)
    with sf.SoundFile(path) as fh:  # rendered again, with its true tags
        assert fh.comment == comment


def test_cache_checksum_covers_the_parameters(tmp_path):
    import shutil

    kw = dict(n_clips=1, max_polyphony=2, random_state=0, **SMALL)
    a = make_instrument_mixtures(
        instruments=["piano", "drums", "violin"], data_home=tmp_path / "a", **kw
    )
    b_kw = dict(instruments=["drums", "piano", "violin"], **kw)
    ref = make_instrument_mixtures(data_home=tmp_path / "ref", **b_kw)
    b = make_instrument_mixtures(data_home=tmp_path / "b", **b_kw)
    assert not np.array_equal(a.waveforms, ref.waveforms)
    shutil.copy(a.filenames[0], b.filenames[0])  # a clip of another dataset
    again = make_instrument_mixtures(data_home=tmp_path / "b", **b_kw)
    np.testing.assert_array_equal(again.waveforms, ref.waveforms)
    np.testing.assert_array_equal(again.target, ref.target)


def _corrupt(path, how):
    import shutil

    if how == "binary":
        path.write_bytes(b"\xff\xfe\x00\x81garbage\x00" * 8)
    elif how == "half":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "zip":
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    elif how == "folder":
        path.unlink() if path.is_file() else shutil.rmtree(path)
        path.mkdir()
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize(
    ("rel", "how", "match"),
    [
        ("openmic-2018.npz", "half", "not a valid npz"),
        ("openmic-2018.npz", "zip", "not a valid npz"),
        ("openmic-2018.npz", "empty", "not a valid npz"),
        ("openmic-2018.npz", "folder", "is a folder"),
        ("class-map.json", "binary", "UTF-8"),
        ("class-map.json", "folder", "is a folder"),
        ("partitions/split01_train.csv", "binary", "UTF-8"),
        ("partitions/split01_test.csv", "folder", "is a folder"),
    ],
)
def test_load_openmic_faulty_files_raise_data_errors(openmic_root, rel, how, match):
    root, *_ = openmic_root
    _corrupt(root / rel, how)
    with pytest.raises(DataError, match=match) as info:
        load_openmic(root)
    assert str(root / rel) in str(info.value)
    assert "Expected layout" in str(info.value)


def test_load_openmic_non_numeric_labels_raise_a_data_error(openmic_root):
    root, _names, keys, _y_true, y_mask = openmic_root
    np.savez(
        root / "openmic-2018.npz",
        Y_true=np.full((4, 3), "x"),
        Y_mask=y_mask,
        sample_key=np.array(keys),
    )
    with pytest.raises(DataError, match=r"Y_true.*numbers") as info:
        load_openmic(root)
    assert str(root / "openmic-2018.npz") in str(info.value)


@pytest.mark.parametrize(
    ("rel", "how", "match"),
    [
        ("data/autotagging_moodtheme.tsv", "binary", "UTF-8"),
        ("data/autotagging_moodtheme.tsv", "folder", "is a folder"),
        ("data/splits/split-0/autotagging_moodtheme-test.tsv", "binary", "UTF-8"),
        ("data/splits/split-0/autotagging_moodtheme-train.tsv", "folder", "folder"),
    ],
)
def test_load_mtg_jamendo_faulty_files_raise_data_errors(jamendo_root, rel, how, match):
    root, _ = jamendo_root
    _corrupt(root / rel, how)
    with pytest.raises(DataError, match=match) as info:
        load_mtg_jamendo(root)
    assert str(root / rel) in str(info.value)
    assert "Expected layout" in str(info.value)


def test_load_manifest_faulty_files_raise_data_errors(tmp_path):
    _write_audio(tmp_path / "a.wav")
    m = tmp_path / "m.csv"
    _corrupt(m, "binary")
    with pytest.raises(DataError, match=r"(?s)m.csv.*UTF-8.*header row"):
        load_manifest(m)
    _corrupt(m, "folder")
    with pytest.raises(DataError, match=r"m.csv' is a folder"):
        load_manifest(m)
    (tmp_path / "sub").mkdir()
    (tmp_path / "n.csv").write_text("path,tags\nsub,x\n")
    with pytest.raises(DataError, match=r"sub' \(a folder, not a file\)"):
        load_manifest(tmp_path / "n.csv")


def test_load_audio_folder_root_is_a_file(tmp_path):
    _write_audio(tmp_path / "a.wav")
    with pytest.raises(DataError, match=r"a.wav' is a file, not a folder"):
        load_audio_folder(tmp_path / "a.wav")


def test_mixture_cache_faults_raise_data_errors(tmp_path):
    kw = dict(n_clips=1, random_state=0, **SMALL)
    data = make_instrument_mixtures(data_home=tmp_path / "home", **kw)
    path = data.filenames[0]
    os.remove(path)
    os.mkdir(path)
    with pytest.raises(DataError, match=r"mix_00000.wav' is a folder.*remove it"):
        make_instrument_mixtures(data_home=tmp_path / "home", **kw)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"file' is a file, not a folder"):
        make_instrument_mixtures(data_home=tmp_path / "file", **kw)
