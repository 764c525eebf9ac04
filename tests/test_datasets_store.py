"""SpectrogramStore: round trips, crash safety, bad stores, clip-source protocol."""

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

# the loaders' fixture trees in the official layouts (tests/ is on sys.path)
from test_datasets import _write_audio, jamendo_root, openmic_root  # noqa: F401

from sklearn_rfcnn.datasets import (
    SpectrogramStore,
    load_audio_folder,
    load_mtg_jamendo,
    load_openmic,
)
from sklearn_rfcnn.datasets._store import front_end_checksum
from sklearn_rfcnn.exceptions import AudioDecodeError, DataError, ParameterError
from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram

ROOT = Path(__file__).resolve().parents[1]
MEL = {"sr": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 16}


def _front_end(**mel):
    return Pipeline(
        [("load", AudioLoader(sr=8000)), ("mel", MelSpectrogram(**{**MEL, **mel}))]
    )


def _waves(n=7, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (0.1 * rng.standard_normal(int(n_samples))).astype(np.float32)
        for n_samples in rng.integers(2000, 9000, size=n)
    ]


def _reference(waves, front_end=None):
    out = (front_end or _front_end()).fit_transform(waves)
    return [S[None] if S.ndim == 2 else S for S in out]


# --------------------------------------------------------------------------
# round trip
# --------------------------------------------------------------------------


def test_round_trip_float32_is_exact(tmp_path):
    waves = _waves()
    store = SpectrogramStore.create(
        tmp_path / "s", waves, _front_end(), chunk_size=3, verbose=0
    )
    ref = _reference(waves)
    assert len(store) == len(waves) and store.complete
    assert store.clip_shape == (1, 16)
    assert store.dtype == np.float32
    np.testing.assert_array_equal(store.lengths, [S.shape[-1] for S in ref])
    assert store.lengths.dtype == np.int64
    assert store.paths == [f"X[{i}]" for i in range(len(waves))]
    for i, S in enumerate(ref):
        got = store[i]
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, S)
        np.testing.assert_array_equal(store.read(i, 5, 17), S[..., 5:17])
    np.testing.assert_array_equal(store[-1], ref[-1])
    assert store.__rfcnn_clip_source__ is True
    assert store.front_end_checksum == front_end_checksum(_front_end())
    assert store.library_version
    assert store.front_end_params["params"]["mel__n_mels"] == 16
    # reopened: the same
    again = SpectrogramStore(tmp_path / "s")
    np.testing.assert_array_equal(again[3], ref[3])
    assert repr(again).startswith("SpectrogramStore(")
    store.verify()


def test_float16_halves_the_disk_and_reads_float32(tmp_path):
    waves = _waves()
    s32 = SpectrogramStore.create(tmp_path / "a", waves, _front_end(), verbose=0)
    s16 = SpectrogramStore.create(
        tmp_path / "b", waves, _front_end(), dtype="float16", verbose=0
    )
    size = {p: (tmp_path / p / "data.bin").stat().st_size for p in "ab"}
    assert size["b"] * 2 == size["a"]
    for i, S in enumerate(_reference(waves)):
        got = s16[i]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, S.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(got, s32[i], rtol=2**-10, atol=1e-3)


def test_multichannel_and_file_paths(tone_files, tmp_path):
    paths, _ = tone_files
    fe = Pipeline(
        [
            ("load", AudioLoader(sr=8000, mono=False)),
            ("mel", MelSpectrogram(**MEL)),
        ]
    )
    store = SpectrogramStore.create(tmp_path / "s", paths, fe, n_jobs=2, verbose=0)
    assert store.paths == [str(p) for p in paths]
    ref = fe.fit_transform(paths)
    for i in range(len(paths)):
        np.testing.assert_array_equal(store[i], ref[i].reshape(store[i].shape))


def test_create_is_idempotent_and_refuses_other_inputs(tmp_path):
    waves = _waves()
    path = tmp_path / "s"
    store = SpectrogramStore.create(path, waves, _front_end(), verbose=0)
    before = (path / "data.bin").stat().st_mtime_ns
    again = SpectrogramStore.create(path, waves, _front_end(n_jobs=2), verbose=0)
    assert (path / "data.bin").stat().st_mtime_ns == before  # nothing recomputed
    assert again.front_end_checksum == store.front_end_checksum
    with pytest.raises(DataError, match=r"mel__n_mels: 16 \(store\) vs 32.*overwrite"):
        SpectrogramStore.create(path, waves, _front_end(n_mels=32), verbose=0)
    with pytest.raises(DataError, match="inputs_checksum"):
        SpectrogramStore.create(path, waves[:-1] + waves[:1], _front_end(), verbose=0)
    with pytest.raises(DataError, match="dtype"):
        SpectrogramStore.create(path, waves, _front_end(), dtype="float16", verbose=0)
    new = SpectrogramStore.create(
        path, waves, _front_end(n_mels=32), overwrite=True, verbose=0
    )
    assert new.clip_shape == (1, 32)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a store"):
        SpectrogramStore.create(tmp_path / "other", waves, _front_end(), verbose=0)


def test_check_front_end_names_both_checksums(tmp_path):
    store = SpectrogramStore.create(tmp_path / "s", _waves(3), _front_end(), verbose=0)
    store.check_front_end(_front_end(n_jobs=4))  # n_jobs does not count
    other = _front_end(hop_length=128)
    with pytest.raises(DataError) as info:
        store.check_front_end(other)
    msg = str(info.value)
    assert store.front_end_checksum in msg and front_end_checksum(other) in msg
    assert "mel__hop_length: 64 (store) vs 128" in msg and "create(new_path" in msg


def test_bad_create_arguments(tmp_path):
    with pytest.raises(ParameterError, match="X is empty"):
        SpectrogramStore.create(tmp_path / "s", [], _front_end())
    with pytest.raises(ParameterError, match="dtype="):
        SpectrogramStore.create(tmp_path / "s", _waves(2), _front_end(), dtype="int8")
    with pytest.raises(ParameterError, match="chunk_size="):
        SpectrogramStore.create(tmp_path / "s", _waves(2), _front_end(), chunk_size=0)
    with pytest.raises(ParameterError, match="get_params"):
        SpectrogramStore.create(tmp_path / "s", _waves(2), lambda x: x)
    loud = [np.full(4000, 1e3, dtype=np.float32)]
    power = Pipeline(
        [("load", AudioLoader(sr=8000)), ("mel", MelSpectrogram(**MEL, scale="power"))]
    )
    with pytest.raises(DataError, match=r"clip 0 \(X\[0\]\).*float16's range"):
        SpectrogramStore.create(tmp_path / "p", loud, power, dtype="float16", verbose=0)


def test_a_clip_failing_in_the_front_end_names_its_path(tmp_path, tone_files):
    paths, _ = tone_files
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    X = [*paths[:4], bad, *paths[4:]]
    with pytest.raises(AudioDecodeError, match=r"clip 4 \(.*broken.wav\)") as info:
        SpectrogramStore.create(tmp_path / "s", X, _front_end(), chunk_size=2)
    assert info.value.path is not None and "broken.wav" in str(info.value.path)
    assert info.value.index == 4
    partial = SpectrogramStore(tmp_path / "s")  # the two chunks before it are kept
    assert len(partial) == 4 and not partial.complete


# --------------------------------------------------------------------------
# crash safety, resumption, concurrent readers
# --------------------------------------------------------------------------

_SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from sklearn.pipeline import Pipeline
    from sklearn_rfcnn.datasets import SpectrogramStore
    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram
    from sklearn_rfcnn.transformers import _mel

    real = _mel.MelSpectrogram.transform
    def slow(self, X):          # the same front end, only slower
        time.sleep(0.4)
        return real(self, X)
    _mel.MelSpectrogram.transform = slow

    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(n))).astype(np.float32)
             for n in rng.integers(2000, 9000, size=int(sys.argv[2]))]
    fe = Pipeline([("load", AudioLoader(sr=8000)),
                   ("mel", MelSpectrogram(sr=8000, n_fft=256, hop_length=64,
                                          n_mels=16))])
    fe.fit(waves[:1])
    SpectrogramStore.create(sys.argv[1], waves, fe, chunk_size=2, verbose=0)
    """
)


def _waves_like_script(n):
    rng = np.random.default_rng(0)
    return [
        (0.1 * rng.standard_normal(int(k))).astype(np.float32)
        for k in rng.integers(2000, 9000, size=n)
    ]


def _committed(path):
    folder = Path(path) / "chunks"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_killed_build_resumes_to_the_uninterrupted_result(tmp_path):
    n = 20
    path = tmp_path / "killed"
    script = tmp_path / "build.py"
    script.write_text(_SLOW_BUILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(n)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(_committed(path)) < 3:
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk committed within 60 s"
            time.sleep(0.05)
        # a reader during the build sees only committed clips, all intact
        reader = SpectrogramStore(path)
        seen = len(reader)
        assert seen % 2 == 0 and 6 <= seen < n and not reader.complete
        reader.verify()
        first = [reader[i] for i in range(seen)]
        # a second builder is refused while the first holds the lock
        with pytest.raises(DataError, match="another process is building"):
            SpectrogramStore.create(path, _waves_like_script(n), _front_end())
        time.sleep(0.2)  # mid-chunk, most likely
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = SpectrogramStore(path)
    assert seen <= len(killed) < n  # readable, committed clips only
    waves = _waves_like_script(n)
    resumed = SpectrogramStore.create(path, waves, _front_end(), verbose=0)
    whole = SpectrogramStore.create(
        tmp_path / "whole", waves, _front_end(), chunk_size=5, verbose=0
    )
    assert len(resumed) == n and resumed.complete
    np.testing.assert_array_equal(resumed.lengths, whole.lengths)
    assert resumed.paths == whole.paths
    for i in range(n):
        np.testing.assert_array_equal(resumed[i], whole[i])
    for i in range(seen):
        np.testing.assert_array_equal(first[i], whole[i])
    assert (path / "data.bin").read_bytes() == (
        tmp_path / "whole" / "data.bin"
    ).read_bytes()
    resumed.verify()
    # the reader opened mid-build still reads its clips, and refresh sees all
    assert len(reader) == seen and len(reader.refresh()) == n


def test_uncommitted_bytes_are_invisible_and_truncated_on_resume(tmp_path):
    waves = _waves(6)
    path = tmp_path / "s"
    SpectrogramStore.create(path, waves[:4], _front_end(), verbose=0)
    # simulate a build of 6 killed after writing data but before its commit
    manifest = json.loads((path / "manifest.json").read_text())
    whole = SpectrogramStore.create(tmp_path / "w", waves, _front_end(), verbose=0)
    doc = json.loads((path / "index.json").read_text())
    (path / "index.json").unlink()
    (path / "chunks").mkdir(exist_ok=True)
    (path / "chunks" / f"{0:012d}.json").write_text(json.dumps(doc))
    other = json.loads((tmp_path / "w" / "manifest.json").read_text())
    manifest["inputs_checksum"], manifest["n_inputs"] = (
        other["inputs_checksum"],
        other["n_inputs"],
    )
    from sklearn_rfcnn.datasets._store import _manifest_checksum

    manifest["checksum"] = _manifest_checksum(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with open(path / "data.bin", "ab") as fh:
        fh.write(b"\x7f" * 1000)  # half a clip nobody committed
    partial = SpectrogramStore(path)
    assert len(partial) == 4
    resumed = SpectrogramStore.create(path, waves, _front_end(), verbose=0)
    assert len(resumed) == 6
    for i in range(6):
        np.testing.assert_array_equal(resumed[i], whole[i])


def _read_in_worker(args):
    store, i, start, stop = args
    return os.getpid(), store.read(i, start, stop)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pickled_store_reads_in_worker_processes(tmp_path, method):
    waves = _waves(4)
    store = SpectrogramStore.create(tmp_path / "s", waves, _front_end(), verbose=0)
    store[0]  # the parent's handle is open before the fork
    clone = pickle.loads(pickle.dumps(store))
    assert clone._fd is None
    np.testing.assert_array_equal(clone[2], store[2])
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        out = pool.map(_read_in_worker, [(store, i, 1, 9) for i in range(4)])
    assert all(pid != os.getpid() for pid, _ in out)
    for i, (_, crop) in enumerate(out):
        np.testing.assert_array_equal(crop, store.read(i, 1, 9))


# --------------------------------------------------------------------------
# bad stores
# --------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path):
    path = tmp_path / "s"
    SpectrogramStore.create(path, _waves(5), _front_end(), chunk_size=2, verbose=0)
    return path


def test_missing_and_empty_stores(tmp_path, built):
    with pytest.raises(DataError, match=r"no store at .*create"):
        SpectrogramStore(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"manifest.json is missing"):
        SpectrogramStore(tmp_path / "empty")
    (built / "index.json").unlink()
    with pytest.raises(DataError, match=r"holds no committed clip.*re-run"):
        SpectrogramStore(built)


def test_truncated_data_file(built):
    size = (built / "data.bin").stat().st_size
    os.truncate(built / "data.bin", size - 10)
    beyond = r"points beyond the data file: clip 4 \(X\[4\]"
    with pytest.raises(DataError, match=beyond):
        SpectrogramStore(built)
    # re-running create rebuilds only the damaged clip
    store = SpectrogramStore.create(built, _waves(5), _front_end(), verbose=0)
    np.testing.assert_array_equal(store[4], _reference(_waves(5))[4])
    # truncated after opening: the read says so
    os.truncate(built / "data.bin", size - 10)
    with pytest.raises(DataError, match=r"clip 4 \(X\[4\]\) is cut short"):
        store[4]
    os.remove(built / "data.bin")
    with pytest.raises(DataError, match=r"data file .* is missing"):
        SpectrogramStore(built)


def test_index_pointing_beyond_the_data(built):
    doc = json.loads((built / "index.json").read_text())
    doc["lengths"][-1] += 1000
    (built / "index.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"beyond the data file: clip 4"):
        SpectrogramStore(built)
    doc["lengths"][-1] -= 1000
    doc["offsets"][2] += 4
    (built / "index.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"inconsistent at clip 2"):
        SpectrogramStore(built)


def test_corrupt_manifest_index_and_data(built):
    (built / "index.json").write_text('{"start": 0, "offs')
    with pytest.raises(DataError, match=r"index file .*index.json.* is corrupt"):
        SpectrogramStore(built)
    store = SpectrogramStore.create(built, _waves(5), _front_end(), verbose=0)
    assert len(store) == 5  # rebuilt from scratch around the damaged index
    (built / "manifest.json").write_text("not json")
    with pytest.raises(DataError, match=r"manifest .* is corrupt.*overwrite=True"):
        SpectrogramStore(built)
    (built / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not a SpectrogramStore manifest"):
        SpectrogramStore(built)
    SpectrogramStore.create(built, _waves(5), _front_end(), overwrite=True, verbose=0)
    with open(built / "data.bin", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xff\xff\xff")
    with pytest.raises(DataError, match=r"clip 0 \(X\[0\]\).*does not match its chec"):
        SpectrogramStore(built).verify()


def test_bad_reads(built):
    store = SpectrogramStore(built)
    with pytest.raises(IndexError, match=r"clip index 5 is out of range.*5 clips"):
        store[5]
    with pytest.raises(TypeError, match="integers"):
        store[1:3]
    n = int(store.lengths[1])
    with pytest.raises(ParameterError, match=rf"outside clip 1 .*{n} frames"):
        store.read(1, 0, n + 1)
    with pytest.raises(ParameterError, match="outside clip 1"):
        store.read(1, 5, 5)


# --------------------------------------------------------------------------
# BandStandardizer on a store
# --------------------------------------------------------------------------


def test_band_standardizer_streams_a_store(tmp_path):
    waves = _waves(9)
    store = SpectrogramStore.create(tmp_path / "s", waves, _front_end(), verbose=0)
    clips = _reference(waves)
    streamed = BandStandardizer().fit(store)
    loaded = BandStandardizer().fit(clips)
    assert streamed.mean_.shape == (1, 16)
    np.testing.assert_allclose(streamed.mean_, loaded.mean_, rtol=1e-12)
    np.testing.assert_allclose(streamed.scale_, loaded.scale_, rtol=1e-12)
    Z = streamed.transform(store)
    assert Z.__rfcnn_clip_source__ and len(Z) == 9
    np.testing.assert_array_equal(Z.lengths, store.lengths)
    assert Z.clip_shape == (1, 16)
    assert Z.front_end_checksum != store.front_end_checksum
    expected = loaded.transform(clips)
    np.testing.assert_allclose(Z[3], expected[3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Z.read(3, 2, 8), expected[3][..., 2:8], atol=1e-5)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(Z))[0], expected[0], atol=1e-5)
    # the same fitted statistics apply to in-memory lists of (C, F, T)
    np.testing.assert_allclose(streamed.transform(clips)[1], expected[1], atol=1e-5)


# --------------------------------------------------------------------------
# the loaders' results feed create directly
# --------------------------------------------------------------------------


def test_loaders_feed_create(jamendo_root, openmic_root, tmp_path):  # noqa: F811
    jamendo, _ = jamendo_root
    openmic, *_ = openmic_root
    for genre in ("blues", "rock"):
        for k in range(2):
            _write_audio(tmp_path / "gtzan" / genre / f"{genre}.{k}.wav")
    for name, data in {
        "jamendo": load_mtg_jamendo(jamendo),
        "openmic": load_openmic(openmic),
        "folder": load_audio_folder(tmp_path / "gtzan"),
    }.items():
        store = SpectrogramStore.create(
            tmp_path / f"store-{name}", data.filenames, _front_end(), verbose=0
        )
        assert store.paths == [str(f) for f in data.filenames]
        assert len(store) == len(data.target)
        np.testing.assert_array_equal(
            store[0], _reference([data.filenames[0]])[0], err_msg=name
        )


# --------------------------------------------------------------------------
# benchmarks/train_store_recipe.py end to end on a fixture tree
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_train_store_recipe_runs_on_a_jamendo_tree(jamendo_root, tmp_path):  # noqa: F811
    root, _ = jamendo_root
    out = tmp_path / "recipe.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "train_store_recipe.py"),
        "--dataset",
        "mtg_jamendo",
        "--root",
        str(root),
        "--store-dir",
        str(tmp_path / "stores"),
        "--tiny",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    res = doc["results"]
    assert res["stores"]["train"]["clips"] == 2
    assert res["stores"]["test"]["clips"] == 1
    if isinstance(res.get("training"), str):  # estimators without clip sources
        assert "crop_frames" in res["training"]
    else:
        assert set(res["scores"]) == {"validation", "test"}
        assert "0.1480" in proc.stdout and "this run (test)" in proc.stdout
    # a second run reuses the stores (resumable, complete: nothing rebuilt)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
