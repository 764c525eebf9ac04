"""Files from strangers (issue #28): model folders, stores, manifests, audio
headers and study journals are read bounded and checked, and every hostile
case ends in one of the package's exceptions naming the file and the field.

The cases that could hang or exhaust memory if a check regressed (FIFOs,
``/dev/zero``, a 1 GiB deflated archive member, networks of width 4000 or
depth 120002, a WAV header claiming 1 Hz) run in one child process under
``RLIMIT_AS`` (3 GB), with an alarm per case and a timeout on the whole: a
regression fails its case instead of exhausting the machine.  The child
reports each case's exception, message and seconds, and its own peak
resident memory, which must stay under 1.2 GB.  Cheaper cases run here.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import (
    AudioLoader,
    BandStandardizer,
    MelSpectrogram,
    load_pipeline,
    save_pipeline,
)
from sklearn_rfcnn.cli import main
from sklearn_rfcnn.datasets import SpectrogramStore, load_manifest
from sklearn_rfcnn.exceptions import AudioDecodeError, DataError

SR = 16000
FIXTURES = Path(__file__).parent / "data" / "format_v1"
CLASSES = ['=HYPERLINK("http://x")', "bass"]  # a formula-like class name
#: What the risky cases may add to the child's peak memory, after the same
#: code paths ran once on good files (imports and one-time compilation, e.g.
#: numba's on a fresh environment, are not the files' doing); a file that
#: made the library allocate by its declared sizes would add gigabytes.
PEAK_GROWTH_BYTES = 4e8
#: An absolute bound as well, below the child's 3 GB address-space limit.
PEAK_RSS_BYTES = 2.5e9
CASE_SECONDS = 30


def _waves(n=6, length=4000, seed=0):
    rng = np.random.default_rng(seed)
    return list(rng.normal(scale=0.3, size=(n, length)).astype(np.float32))


def _make_fixtures():
    """``tests/data/format_v1/make_fixtures.py``, which wrote the format-1 folders."""
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_fixtures
    finally:
        sys.path.remove(str(FIXTURES))
    return make_fixtures


def _front_end():
    return [
        AudioLoader(sr=SR),
        MelSpectrogram(sr=SR, n_fft=256, hop_length=128, n_mels=8),
    ]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted audio pipeline saved to ``root/model``, a WAV file, a store."""
    root = tmp_path_factory.mktemp("hostile_files")
    waves = _waves()
    y = [CLASSES[i % 2] for i in range(len(waves))]
    pipe = make_pipeline(
        *_front_end(),
        BandStandardizer(),
        _make_fixtures().classifier(),  # the format-1 fixtures' classifier
    ).fit(waves, y)
    model = save_pipeline(
        pipe,
        root / "model",
        metadata={"target_names": CLASSES, "multilabel": False},
    )
    wav = root / "clip.wav"
    sf.write(str(wav), waves[0], SR, subtype="PCM_16")
    store = SpectrogramStore.create(
        root / "store", waves[:3], make_pipeline(*_front_end()), verbose=0
    )
    return {
        "root": root,
        "model": model,
        "wav": wav,
        "store": store.path,
        "pipe": pipe,
        "waves": waves,
    }


def _copy(src, dest):
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _edit_json(path, edit):
    doc = json.loads(Path(path).read_text())
    edit(doc)
    Path(path).write_text(json.dumps(doc))


def _as_format_1(doc):
    """What a folder saved before pipeline.json had a checksum looks like."""
    doc["format_version"] = 1
    doc.pop("checksum", None)
    doc.pop("sizes", None)


# --------------------------------------------------------------------------
# risky cases: one child process, bounded in memory and time
# --------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, time, warnings
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    warnings.simplefilter("ignore")

    class Hang(Exception):
        pass

    def alarm(*_):
        raise Hang("no result within the time limit")

    signal.signal(signal.SIGALRM, alarm)
    from sklearn_rfcnn import AudioLoader, RFCNNClassifier, load_pipeline
    from sklearn_rfcnn.cli import main
    from sklearn_rfcnn.hear import load_model

    def maxrss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    print(json.dumps({"case": "imports_rss", "bytes": maxrss()}), flush=True)

    def run(kind, path, extra):
        if kind == "load_pipeline":
            load_pipeline(path)
        elif kind == "hear":
            load_model(path)
        elif kind == "estimator":
            RFCNNClassifier.load(path)
        elif kind == "audio":
            AudioLoader(sr=16000).fit([path]).transform([path])
        elif kind == "audio_skip":
            res = AudioLoader(sr=16000, on_error="skip").fit([path, extra]).load(
                [path, extra])
            raise ValueError("kept %s skipped %s" % (res.kept.tolist(),
                             [s[0] for s in res.skipped]))
        elif kind == "predict":
            status = main(["predict", path, *extra])
            raise ValueError("exit status %d" % status)

    for name, kind, path, extra in json.loads(sys.argv[1]):
        start = time.perf_counter()
        signal.alarm(CASE_SECONDS)
        try:
            run(kind, path, extra)
            error, message = None, "no error"
        except BaseException as exc:
            error, message = type(exc).__name__, str(exc)
            from sklearn_rfcnn.exceptions import RFCNNError
            error = ("RFCNNError:" if isinstance(exc, RFCNNError) else "") + error
        finally:
            signal.alarm(0)
        print(json.dumps({"case": name, "error": error, "message": message,
                          "seconds": time.perf_counter() - start,
                          "peak_rss_after": maxrss()}), flush=True)
    print(json.dumps({"case": "peak_rss", "bytes": maxrss()}), flush=True)
    """
).replace("CASE_SECONDS", str(CASE_SECONDS))


def _risky_cases(saved, tmp):
    model, wav = saved["model"], saved["wav"]
    cases = []  # (name, kind, path, extra), expected substrings

    def folder(name):
        return _copy(model, tmp / name)

    def weights(f):
        return f / "steps" / "step3" / "weights.pt"

    def clf_config(f):
        return f / "steps" / "step3" / "config.json"

    f = folder("fifo_weights")
    weights(f).unlink()
    os.mkfifo(weights(f))
    cases.append(
        (("fifo_weights", "load_pipeline", str(f), None), ["weights.pt", "FIFO"])
    )
    f = folder("zero_weights")
    weights(f).unlink()
    os.symlink("/dev/zero", weights(f))
    cases.append(
        (("zero_weights", "hear", str(f), None), ["weights.pt", "character device"])
    )
    f = folder("zero_weights_estimator")
    weights(f).unlink()
    os.symlink("/dev/zero", weights(f))
    cases.append(
        (
            ("zero_weights_estimator", "estimator", str(f / "steps" / "step3"), None),
            ["weights.pt", "character device"],
        )
    )

    # arrays.npz with an extra deflated member of 1 GiB (about 1 MB on disk)
    f = folder("npz_bomb")
    with zipfile.ZipFile(f / "arrays.npz", "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("bomb.npy", "w", force_zip64=True) as member:
            block = bytes(16 << 20)
            for _ in range(64):
                member.write(block)
    cases.append((("npz_bomb", "load_pipeline", str(f), None), ["arrays.npz"]))
    # ... and in a format 1 folder without checksums: the member list refuses it
    f = _copy(tmp / "npz_bomb", tmp / "npz_bomb_v1")
    _edit_json(f / "pipeline.json", lambda d: (_as_format_1(d), d.pop("files")))
    cases.append(
        (("npz_bomb_v1", "load_pipeline", str(f), None), ["arrays.npz", "bomb.npy"])
    )

    # a network far larger than its weights, declared in config.json
    for field, value in (("width", 4000), ("depth", 120002)):
        f = folder(f"{field}_checksum")
        _edit_json(clf_config(f), lambda d, kv={field: value}: d["params"].update(kv))
        cases.append(
            (
                (f"{field}_checksum", "load_pipeline", str(f), None),
                ["config.json", "checksum"],
            )
        )
        f = folder(f"{field}_no_checksum")  # an older file: no checksum to fail

        def strip(d, field=field, value=value):
            d["params"][field] = value
            for key in ("checksum", "weights_sha256", "weights_size"):
                d.pop(key)

        _edit_json(clf_config(f), strip)
        cases.append(
            (
                (f"{field}_no_checksum", "load_pipeline", str(f), None),
                ["config.json", f"'{field}'"],
            )
        )

    # a WAV header claiming 1 Hz: 60k frames would become 960M samples
    one_hz = tmp / "one_hz.wav"
    sf.write(str(one_hz), np.zeros(60000, dtype=np.int16), 1, subtype="PCM_16")
    cases.append((("wav_1_hz", "audio", str(one_hz), None), ["one_hz.wav", "1 Hz"]))
    cases.append(
        (
            ("wav_1_hz_skip", "audio_skip", str(one_hz), str(wav)),
            ["kept [1] skipped [0]"],
        )
    )
    # a FLAC header claiming 2**36 - 1 frames (256 GiB of float32) in 28 kB
    flac = tmp / "huge_header.flac"
    sf.write(str(flac), np.zeros(16000, dtype=np.int16), SR, subtype="PCM_16")
    data = bytearray(flac.read_bytes())
    data[21] |= 0x0F  # STREAMINFO's 36-bit total-samples field, all ones
    data[22:26] = b"\xff\xff\xff\xff"
    flac.write_bytes(bytes(data))
    cases.append(
        (("flac_huge_header", "audio", str(flac), None), ["huge_header.flac", "frames"])
    )
    fifo = tmp / "pipe.wav"
    os.mkfifo(fifo)
    cases.append(
        (
            ("fifo_audio_skip", "audio_skip", str(fifo), str(wav)),
            ["kept [1] skipped [0]"],
        )
    )
    out = tmp / "fifo_predict.csv"
    cases.append(
        (
            (
                "fifo_predict_skip_bad",
                "predict",
                str(model),
                [str(fifo), str(wav), "--skip-bad", "-o", str(out)],
            ),
            ["exit status 0"],
        )
    )
    return cases


def _warmups(saved, tmp):
    """The risky cases' code paths on good files, run first in the child."""
    model, wav = str(saved["model"]), str(saved["wav"])
    return [
        ("warmup_load_pipeline", "load_pipeline", model, None),
        ("warmup_hear", "hear", model, None),
        (
            "warmup_estimator",
            "estimator",
            str(saved["model"] / "steps" / "step3"),
            None,
        ),
        ("warmup_audio", "audio", wav, None),
        ("warmup_predict", "predict", model, [wav, "-o", str(tmp / "warm.csv")]),
    ]


def test_risky_cases_end_in_time_memory_and_a_named_error(saved, tmp_path):
    cases = _risky_cases(saved, tmp_path)
    warmups = _warmups(saved, tmp_path)
    specs = warmups + [spec for spec, _ in cases]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(specs)],
        capture_output=True,
        text=True,
        timeout=40 + 3 * len(specs),
        env=env,
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    results = {r["case"]: r for r in lines}
    assert "peak_rss" in results, proc.stderr[-3000:]
    for r in lines:  # shown with pytest -s
        print(f"{r['case']:24} {r.get('seconds', 0):6.2f} s  {r.get('error') or r}")
    for (name, kind, *_), expected in cases:
        r = results[name]
        where = f"{name}: {r}"
        assert r["seconds"] < CASE_SECONDS, where
        if kind in ("audio_skip", "predict"):
            assert r["error"] == "ValueError", where
        else:  # one of the package's exceptions, naming the file and the field
            assert r["error"].startswith("RFCNNError:"), where
        for text in expected:
            assert text in r["message"], where
    for name, *_ in warmups:  # good files load (predict exits with status 0)
        assert results[name]["error"] in (None, "ValueError"), results[name]
        assert results[name]["message"] in ("no error", "exit status 0")
    # the peak after the imports and after each case, to see which one grew it
    trajectory = {r["case"]: r.get("peak_rss_after", r.get("bytes")) for r in lines}
    peak = results["peak_rss"]["bytes"]
    warm = results[warmups[-1][0]]["peak_rss_after"]
    assert peak - warm < PEAK_GROWTH_BYTES, trajectory
    assert peak < PEAK_RSS_BYTES, trajectory
    # the FIFO was skipped and the good file predicted
    rows = list(csv.reader((tmp_path / "fifo_predict.csv").open()))
    assert len(rows) == 2 and rows[1][0].endswith("clip.wav")


# --------------------------------------------------------------------------
# integrity of what decides predictions: pipeline.json
# --------------------------------------------------------------------------


def _mel_step(doc):
    return next(s for s in doc["pipeline"]["steps"] if s.get("cls") == "MelSpectrogram")


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: _mel_step(d)["params"].update(hop_length=64),
        lambda d: _mel_step(d)["params"].update(fmin=20.0),
        lambda d: d["metadata"].update(
            target_names=d["metadata"]["target_names"][::-1]
        ),
        lambda d: d["pipeline"]["steps"][0]["params"].update(sr=22050),
    ],
    ids=["hop_length", "fmin", "target_names_order", "loader_sr"],
)
def test_an_edit_of_pipeline_json_is_detected(saved, tmp_path, edit):
    from sklearn_rfcnn.hear import load_model

    folder = _copy(saved["model"], tmp_path / "m")
    _edit_json(folder / "pipeline.json", edit)
    with pytest.raises(DataError, match=r"pipeline\.json.*checksum"):
        load_pipeline(folder)
    with pytest.raises(DataError, match=r"pipeline\.json.*checksum"):
        load_model(folder)
    # removing the checksum of a format 2 file is an edit too
    _edit_json(folder / "pipeline.json", lambda d: d.pop("checksum"))
    with pytest.raises(DataError, match=r"pipeline\.json.*'checksum' is missing"):
        load_pipeline(folder)


def test_reindented_pipeline_json_still_loads(saved, tmp_path):
    folder = _copy(saved["model"], tmp_path / "m")
    doc = json.loads((folder / "pipeline.json").read_text())
    (folder / "pipeline.json").write_text(json.dumps(doc, indent=4, sort_keys=True))
    pipe = load_pipeline(folder)
    waves = saved["waves"]
    assert np.array_equal(pipe.predict_proba(waves), saved["pipe"].predict_proba(waves))


def _assert_fitted_field_refused(saved, folder, field, value, match):
    """A format-1 copy of the saved model whose BandStandardizer's fitted
    ``field`` is ``value`` (no checksum: the whitelist alone must refuse it)."""
    _copy(saved["model"], folder)

    def edit(d):
        _as_format_1(d)
        step = next(
            s for s in d["pipeline"]["steps"] if s.get("cls") == "BandStandardizer"
        )
        step["fitted"][field] = value

    _edit_json(folder / "pipeline.json", edit)
    with pytest.raises(DataError, match=match):
        load_pipeline(folder)


def test_fitted_field_named_like_a_method_is_refused(saved, tmp_path):
    match = r"pipeline\.json.*'transform'.*not a fitted"
    _assert_fitted_field_refused(saved, tmp_path / "m", "transform", "pwned", match)


def test_fitted_field_of_the_wrong_type_is_refused(saved, tmp_path):
    match = r"'n_features_in_'.*not a positive integer"
    _assert_fitted_field_refused(
        saved, tmp_path / "m", "n_features_in_", "eight", match
    )


def test_deeply_nested_pipeline_json(saved, tmp_path):
    folder = _copy(saved["model"], tmp_path / "m")
    (folder / "pipeline.json").write_text("[" * 200000 + "]" * 200000)
    with pytest.raises(DataError, match=r"pipeline\.json.*nested too deeply"):
        load_pipeline(folder)


def test_format_1_folders_load_with_equal_outputs():
    waves = _make_fixtures().waves
    config = json.loads((FIXTURES / "v1_pipeline" / "pipeline.json").read_text())
    assert config["format_version"] == 1 and "checksum" not in config
    pipe, meta = load_pipeline(FIXTURES / "v1_pipeline", return_metadata=True)
    expected = np.load(FIXTURES / "v1_pipeline_expected_proba.npy")
    assert np.array_equal(pipe.predict_proba(waves()), expected)
    assert meta["target_names"] == ["bass", "drums"]
    store = SpectrogramStore(FIXTURES / "v1_store").verify()
    assert "checksum" not in json.loads(
        (FIXTURES / "v1_store" / "manifest.json").read_text()
    )
    with np.load(FIXTURES / "v1_store_expected.npz") as clips:
        for i in range(len(store)):
            assert np.array_equal(store[i], clips[f"arr_{i}"])


# --------------------------------------------------------------------------
# stores
# --------------------------------------------------------------------------


def test_store_manifest_lying_about_clip_shape(saved, tmp_path):
    store = _copy(saved["store"], tmp_path / "s")
    _edit_json(store / "manifest.json", lambda d: d.update(clip_shape=[2, 4]))
    with pytest.raises(DataError, match=r"manifest\.json.*checksum"):
        SpectrogramStore(store)
    # an older manifest without a checksum: the front end's n_mels refuses it
    _edit_json(store / "manifest.json", lambda d: d.pop("checksum"))
    with pytest.raises(DataError, match=r"'clip_shape'.*8"):
        SpectrogramStore(store)


@pytest.mark.parametrize(
    "field, value",
    [
        ("clip_shape", ["x", 8]),
        ("clip_shape", [1, 10**30]),
        ("n_inputs", "many"),
        ("format_version", "1"),
        ("dtype", 5),
        ("front_end", [1, 2]),
        ("inputs_checksum", None),
    ],
)
def test_malformed_store_manifest_fields(saved, tmp_path, field, value):
    store = _copy(saved["store"], tmp_path / "s")

    def edit(d):
        d[field] = value
        d.pop("checksum")

    _edit_json(store / "manifest.json", edit)
    with pytest.raises(DataError, match=rf"manifest\.json.*{field}"):
        SpectrogramStore(store)


def test_malformed_store_index(saved, tmp_path):
    store = _copy(saved["store"], tmp_path / "s")
    _edit_json(
        store / "index.json", lambda d: d.update(crc32=[2**70] * len(d["crc32"]))
    )
    with pytest.raises(DataError, match=r"index\.json.*wrong type"):
        SpectrogramStore(store)


def test_store_deleted_before_the_first_read(saved, tmp_path):
    path = _copy(saved["store"], tmp_path / "s")
    store = SpectrogramStore(path)
    shutil.rmtree(path)
    with pytest.raises(DataError, match=r"data\.bin.*does not exist.*moved or deleted"):
        store[0]


# --------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------


def _manifest(tmp_path, text, files=("a.wav", "b.wav")):
    for name in files:
        (tmp_path / name).write_bytes(b"")
    path = tmp_path / "m.csv"
    path.write_text(text)
    return path


def test_manifest_with_a_repeated_tag_column(tmp_path):
    path = _manifest(tmp_path, "path,a,a\na.wav,1,0\nb.wav,0,1\n")
    with pytest.raises(DataError, match=r"m\.csv.*\['a'\] more than once"):
        load_manifest(path)


def test_manifest_listing_a_file_twice_with_other_labels(tmp_path):
    path = _manifest(tmp_path, "path,label\na.wav,x\nb.wav,y\n./a.wav,y\n")
    with pytest.raises(DataError, match=r"m\.csv.*lines 2 and 4"):
        load_manifest(path)
    same = _manifest(tmp_path, "path,label\na.wav,x\nb.wav,y\na.wav,x\n")
    assert len(load_manifest(same).filenames) == 3  # repeated, consistent rows load


def test_manifest_cell_with_100k_tags(tmp_path):
    tags = ";".join(f"t{i}" for i in range(100_000))
    path = _manifest(tmp_path, f"path,tags\na.wav,{tags}\n")
    with pytest.raises(DataError, match=r"m\.csv.*line 2"):
        load_manifest(path)


def test_manifest_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"m\.csv.*FIFO"):
        load_manifest(tmp_path / "m.csv")


# --------------------------------------------------------------------------
# journals
# --------------------------------------------------------------------------


def test_journal_cut_mid_record_keeps_its_trials(tmp_path):
    optuna = pytest.importorskip("optuna")
    from sklearn_rfcnn.exceptions import RFCNNWarning
    from sklearn_rfcnn.search import create_or_load_study, make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path / "s.journal"
    study = create_or_load_study(make_storage(path, heartbeat_interval=None), "s")
    for value in (1.0, 2.0):
        study.tell(study.ask(), value)
    torn = b'{"op_code": 4, "worker_id": "w", "study_id": 0, "datetime_st'
    with open(path, "ab") as f:  # a worker killed mid-write
        f.write(torn)
    # the next worker appends its trial
    with pytest.warns(RFCNNWarning, match=r"s\.journal.*cut short"):
        worker = create_or_load_study(make_storage(path, heartbeat_interval=None), "s")
        worker.tell(worker.ask(), 3.0)
    reader = create_or_load_study(make_storage(path, heartbeat_interval=None), "s")
    assert [t.value for t in reader.trials] == [1.0, 2.0, 3.0]
    assert (tmp_path / "s.journal.torn").read_bytes() == torn + b"\n"


def test_journal_damaged_in_the_middle_names_the_file(tmp_path):
    pytest.importorskip("optuna")
    from sklearn_rfcnn.search import create_or_load_study, make_storage

    path = tmp_path / "s.journal"
    study = create_or_load_study(make_storage(path, heartbeat_interval=None), "s")
    study.tell(study.ask(), 1.0)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], b"{not json\n", *lines[1:]]))
    with pytest.raises(DataError, match=r"s\.journal.*damaged record"):
        create_or_load_study(make_storage(path, heartbeat_interval=None), "s")


def test_cli_does_not_blame_a_database_for_a_journal(tmp_path, capsys):
    folder = tmp_path / "a_folder.journal"
    folder.mkdir()
    status = main(
        [
            "tune",
            "--study",
            "s",
            "--storage",
            str(folder),
            "--demo-data",
            "--n-trials",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "a_folder.journal" in err
    assert "database" not in err


# --------------------------------------------------------------------------
# the command line's outputs
# --------------------------------------------------------------------------


def test_predict_defuses_formula_cells(saved, tmp_path):
    out = tmp_path / "p.csv"
    assert (
        main(["predict", str(saved["model"]), str(saved["wav"]), "-o", str(out)]) == 0
    )
    header = next(csv.reader(out.open()))
    assert header[1] == "'" + CLASSES[0] and header[2] == "bass"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header)


def test_predict_output_inside_the_model_folder_is_refused(saved, tmp_path, capsys):
    model = _copy(saved["model"], tmp_path / "m")
    before = (model / "pipeline.json").read_bytes()
    for target in (model / "pipeline.json", model / "steps" / "out.csv"):
        status = main(["predict", str(model), str(saved["wav"]), "-o", str(target)])
        assert status == 2 and "inside the model folder" in capsys.readouterr().err
    assert (model / "pipeline.json").read_bytes() == before
    assert not (model / "steps" / "out.csv").exists()


def test_fit_keeps_no_absolute_source_path(tmp_path):
    data = tmp_path / "data"
    for cls, freq in (("low", 220.0), ("high", 1800.0)):
        (data / cls).mkdir(parents=True)
        t = np.arange(2000) / 8000
        for i in range(2):
            sf.write(str(data / cls / f"{i}.wav"), np.sin(2 * np.pi * freq * t), 8000)
    args = [
        "fit",
        str(data),
        "--quiet",
        "--sr",
        "8000",
        "--n-fft",
        "256",
        "--hop-length",
        "64",
        "--n-mels",
        "8",
        "--width",
        "2",
        "--rho",
        "1",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    assert main([*args, "-o", str(tmp_path / "m")]) == 0
    _, meta = load_pipeline(tmp_path / "m", return_metadata=True)
    assert meta["source"] == "data"
    assert str(tmp_path) not in (tmp_path / "m" / "pipeline.json").read_text()
    assert str(tmp_path) not in (tmp_path / "m" / "README.md").read_text()


def test_cli_refuses_a_sample_rate_below_1000_hz(capsys):
    with pytest.raises(SystemExit):
        main(["rf", "--sr", "1"])
    assert "below 1000 Hz" in capsys.readouterr().err


# --------------------------------------------------------------------------
# the readers themselves
# --------------------------------------------------------------------------


def test_audio_file_that_is_a_device_is_refused():
    with pytest.raises(AudioDecodeError, match=r"/dev/zero.*not a regular file"):
        AudioLoader(sr=SR).fit(["/dev/zero"]).transform(["/dev/zero"])


def test_the_fitted_field_whitelist_covers_what_fit_sets():
    """A fitted attribute added to a front-end step must join the whitelist."""
    from sklearn_rfcnn._pipeline_io import _FITTED_FIELDS

    waves = np.stack(_waves(4))
    loader, mel = (step.fit(list(waves)) for step in _front_end())
    S = mel.transform(waves)
    steps = [loader, mel, BandStandardizer().fit(S)]
    steps += [BandStandardizer().fit(S[:, None]), BandStandardizer().fit(list(S))]
    steps.append(BandStandardizer().fit(S.reshape(len(S), -1)))
    for step in steps:
        params = step.get_params(deep=False)
        allowed = _FITTED_FIELDS[type(step).__name__]
        for attr, value in vars(step).items():
            if attr in params:
                continue
            assert attr in allowed, (type(step).__name__, attr)
            assert allowed[attr](value) is None, (type(step).__name__, attr, value)
