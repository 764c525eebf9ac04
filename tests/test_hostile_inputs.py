"""Hostile inputs (issue #14): model folders that lie, paths that cannot be
written, writers killed mid-save, and the command line's one-line errors.

The command-line cases run ``python -m sklearn_rfcnn`` as subprocesses (a
few at a time) and check exit status 2, one line on standard error and no
traceback; the tiny model they use is fitted once per module in-process.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _helpers import cli_front_end, cli_tiny_net
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import (
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    load_pipeline,
    save_pipeline,
)
from sklearn_rfcnn.cli import main
from sklearn_rfcnn.exceptions import DataError
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

FAST = dict(FAST_CNN_PARAMS)
TINY_FRONT_END = cli_front_end(duration=0.25)
TINY_NET = cli_tiny_net(epochs=1)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 8, 10)).astype(np.float32)
    y = np.array(["bass", "drums"] * 8)
    return X, y


@pytest.fixture(scope="module")
def two_models(data):
    X, y = data
    a = RFCNNClassifier(**FAST).fit(X, y)
    b = RFCNNClassifier(**dict(FAST, random_state=1)).fit(X, y)
    assert not np.allclose(a.predict_proba(X), b.predict_proba(X))
    return a, b


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """``root/data/<class>/*.wav`` (2 classes x 3 files) and a fitted model."""
    root = tmp_path_factory.mktemp("hostile")
    sr = 8000
    t = np.arange(int(sr * 0.25)) / sr
    for cls, base in (("low", 220.0), ("high", 1800.0)):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(3):
            wave = 0.5 * np.sin(2 * np.pi * (base + 20 * i) * t)
            sf.write(str(root / "data" / cls / f"{cls}{i}.wav"), wave, sr)
    model = root / "model"
    argv = ["fit", str(root / "data"), "-o", str(model), "--quiet"]
    assert main([*argv, *TINY_FRONT_END, *TINY_NET]) == 0
    return root, model


def _copy_model(model, dest):
    import shutil

    shutil.copytree(model, dest)
    return dest


def _clf_config(folder):
    return folder / "steps" / "step3" / "config.json"


# --------------------------------------------------------------------------
# item 3: load checks every part of a model folder
# --------------------------------------------------------------------------


def _edit(config, case):
    fitted, params = config["fitted"], config["params"]
    if case == "reversed_classes":
        fitted["classes"]["values"] = fitted["classes"]["values"][::-1]
        return "'classes'"
    if case == "multilabel_on_multiclass":
        fitted["multilabel"] = True
        return "'multilabel'"
    if case == "three_classes_two_outputs":
        fitted["classes"]["values"] = ["bass", "drums", "voice"]
        return "'n_outputs'"
    if case == "negative_batch_size":
        params["batch_size"] = -5
        return "batch_size"
    if case == "unknown_parameter":
        params["bogus"] = 1
        return "bogus"
    if case == "missing_field":
        del fitted["clip_shape"]
        return "'clip_shape'"
    if case == "bad_clip_shape":
        fitted["clip_shape"] = [1, "x"]
        return "'clip_shape'"
    if case == "outputs_for_another_head":
        fitted["classes"]["values"] = ["a", "b", "c"]
        fitted["n_outputs"] = 3
        # the checksum would refuse it first; without one (an older file)
        # the weights' shapes still do
        del config["checksum"]
        return "shape"
    if case == "edited_threshold":  # valid value: only the checksum sees it
        params["threshold"] = 0.7
        return "checksum"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "reversed_classes",
        "multilabel_on_multiclass",
        "three_classes_two_outputs",
        "negative_batch_size",
        "unknown_parameter",
        "missing_field",
        "bad_clip_shape",
        "outputs_for_another_head",
        "edited_threshold",
    ],
)
def test_load_rejects_an_edited_config(two_models, tmp_path, case):
    path = two_models[0].save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    field = _edit(config, case)
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError) as info:
        RFCNNClassifier.load(path)
    message = str(info.value)
    assert "config.json" in message or "weights.pt" in message, message
    assert field in message, message


def test_load_rejects_broken_weights(two_models, tmp_path):
    path = two_models[0].save(tmp_path / "m")
    weights = path / "weights.pt"
    state = torch.load(weights, weights_only=True)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    torch.save(state, weights)
    # the checksums would refuse it first; without them (an older file) the
    # values are still checked
    config = json.loads((path / "config.json").read_text())
    for field in ("checksum", "weights_sha256", "weights_size"):
        del config[field]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=rf"weights\.pt.*{key}.*NaN"):
        RFCNNClassifier.load(path)
    weights.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"weights\.pt.*truncated or damaged"):
        RFCNNClassifier.load(path)
    weights.unlink()
    with pytest.raises(DataError, match=r"weights\.pt.*incomplete"):
        RFCNNClassifier.load(path)


@pytest.mark.parametrize("content", [b'{"format": "sklearn-rf', b"\xff\xfe{}", b"[]"])
def test_load_rejects_a_damaged_config_file(two_models, tmp_path, content):
    path = two_models[0].save(tmp_path / "m")
    (path / "config.json").write_bytes(content)
    with pytest.raises(DataError, match=r"config\.json"):
        RFCNNClassifier.load(path)


def test_load_pipeline_checks_every_file(two_models, data, tmp_path):
    _X, y = data
    mel = MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=8)
    waves = np.random.default_rng(0).normal(size=(8, 600)).astype(np.float32)
    pipe = make_pipeline(mel, BandStandardizer(), RFCNNClassifier(**FAST))
    pipe.fit(waves, y[:8])
    folder = save_pipeline(pipe, tmp_path / "p")
    assert json.loads((folder / "pipeline.json").read_text())["files"]
    # arrays.npz swapped for other numbers: a checksum mismatch
    with np.load(folder / "arrays.npz") as f:
        arrays = {k: f[k] for k in f.files}
    key = next(k for k in arrays if k.endswith("mean_"))
    arrays[key] = arrays[key] + 1.0
    np.savez(folder / "arrays.npz", **arrays)
    with pytest.raises(DataError, match=r"arrays\.npz.*checksum"):
        load_pipeline(folder)
    # a transformer parameter outside its constraints names the step
    folder = save_pipeline(pipe, tmp_path / "q")
    config = json.loads((folder / "pipeline.json").read_text())
    config["pipeline"]["steps"][0]["params"]["n_mels"] = -3
    (folder / "pipeline.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"pipeline\.json.*checksum"):
        load_pipeline(folder)
    # ... and without the checksum (a format 1 file) the field is named
    del config["checksum"]
    config["format_version"] = 1
    (folder / "pipeline.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"pipeline\.json.*melspectrogram.*n_mels"):
        load_pipeline(folder)
    # a truncated pipeline.json
    (folder / "pipeline.json").write_text('{"format": "sklearn-rfcnn-pip')
    with pytest.raises(DataError, match=r"pipeline\.json.*not valid JSON"):
        load_pipeline(folder)


# --------------------------------------------------------------------------
# item 2: a writer killed at any moment leaves the old or the new model
# --------------------------------------------------------------------------


def _kill_repeatedly(target, save_a, save_b, check, n_kills=20):
    """Fork a child that saves A and B to ``target`` in turn; kill it at random."""
    save_a(target)
    start = time.perf_counter()
    save_b(target)
    save_a(target)
    one_save = (time.perf_counter() - start) / 2
    rng = random.Random(0)
    seen = set()
    for _ in range(n_kills):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: save B, A, B, ... until killed
            try:
                os.close(read_fd)
                os.write(write_fd, b"x")
                for i in range(10_000):
                    (save_b if i % 2 == 0 else save_a)(target)
            finally:
                os._exit(0)
        os.close(write_fd)
        os.read(read_fd, 1)
        os.close(read_fd)
        time.sleep(rng.uniform(0.0, 2.5 * one_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen.add(check(target))
    return seen


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_estimator_save_killed_at_random_points(two_models, data, tmp_path):
    X = data[0]
    a, b = two_models
    expected = {"a": a.predict_proba(X), "b": b.predict_proba(X)}

    def check(target):
        proba = RFCNNClassifier.load(target).predict_proba(X)
        which = [k for k, v in expected.items() if np.array_equal(proba, v)]
        assert which, "the loaded model is neither the old nor the new one"
        return which[0]

    seen = _kill_repeatedly(tmp_path / "model", a.save, b.save, check)
    assert seen <= {"a", "b"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_save_pipeline_overwrite_killed_at_random_points(two_models, data, tmp_path):
    X, _ = data
    a, b = two_models
    pipes = {
        "a": make_pipeline(BandStandardizer().fit(X), a),
        "b": make_pipeline(BandStandardizer().fit(X), b),
    }
    expected = {k: p.predict_proba(X) for k, p in pipes.items()}

    def saver(key):
        return lambda target: save_pipeline(
            pipes[key], target, metadata={"model": key}, overwrite=True
        )

    def check(target):
        pipe, meta = load_pipeline(target, return_metadata=True)
        np.testing.assert_array_equal(pipe.predict_proba(X), expected[meta["model"]])
        return meta["model"]

    seen = _kill_repeatedly(tmp_path / "model", saver("a"), saver("b"), check)
    assert seen <= {"a", "b"}


def test_load_reads_the_backup_when_killed_between_renames(two_models, tmp_path):
    a, _ = two_models
    target = a.save(tmp_path / "model")
    # the state right after step 2 of the swap: only the backup exists
    os.rename(target, tmp_path / f".model.old-{2**22 + 7}-deadbeef")
    loaded = RFCNNClassifier.load(target)
    np.testing.assert_array_equal(loaded.classes_, a.classes_)
    # the next save cleans the leftovers of the dead writer
    a.save(target)
    a.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# --------------------------------------------------------------------------
# items 1, 8, 10: the command line, driven as a subprocess
# --------------------------------------------------------------------------


def _cases(audio, tmp):
    root, model = audio
    data = root / "data"
    wav = str(data / "low" / "low0.wav")
    a_file = tmp / "a_file"
    a_file.write_text("not a model")
    tampered = _copy_model(model, tmp / "tampered")
    config = json.loads(_clf_config(tampered).read_text())
    config["fitted"]["classes"]["values"] = config["fitted"]["classes"]["values"][::-1]
    _clf_config(tampered).write_text(json.dumps(config))
    truncated = _copy_model(model, tmp / "truncated")
    weights = truncated / "steps" / "step3" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    latin1 = tmp / "latin1.csv"
    latin1.write_bytes("path,label\ndata/low/low0.wav,Gr\xfcn\n".encode("latin-1"))
    loop = tmp / "loop.wav"
    os.symlink(loop, loop)
    fit = ["fit", str(data), *TINY_FRONT_END, *TINY_NET, "--quiet"]
    tune = ["tune", "--study", "s", "--demo-data", "--n-trials", "1"]
    return {
        # item 1 / 8: outputs checked before any work
        "fit_to_sys": ([*fit, "-o", "/sys/kernel/m_model"], "not writable"),
        "fit_to_proc_file": ([*fit, "-o", "/proc/self/status"], "is a file"),
        "fit_over_a_file": ([*fit, "-o", str(a_file)], "is a file"),
        "predict_to_proc": (
            ["predict", str(model), wav, "-o", "/proc/self/status"],
            "cannot be written",
        ),
        "predict_to_a_folder": (
            ["predict", str(model), wav, "-o", str(tmp)],
            "is a folder",
        ),
        "embed_to_sys": (
            ["embed", str(model), wav, "-o", "/sys/kernel/e.npy"],
            "not writable",
        ),
        "export_to_proc": (
            ["export", str(model), "/proc/self/m.onnx"],
            "not writable",
        ),
        "demo_to_sys": (
            ["demo", "--quick", "--output", "/sys/kernel/report"],
            "not writable",
        ),
        "bogus_device": (
            ["fit", str(data), "-o", str(tmp / "m2"), "--device", "bogus"],
            "--device 'bogus' is not a torch device",
        ),
        # item 3 / 8: damaged model folders
        "tampered_model": (["predict", str(tampered), wav], "'classes'"),
        "truncated_model": (["predict", str(truncated), wav], "weights.pt"),
        # item 8 / 10: inputs
        "non_utf8_manifest": ([*fit[:1], str(latin1), "-o", str(tmp / "m3")], "UTF-8"),
        "symlink_loop": (["predict", str(model), str(loop)], "symbolic link loop"),
        # item 8: tune storages
        "tune_sqlite_in_proc": (
            [*tune, "--storage", "sqlite:////proc/nowhere/s.db"],
            "cannot be opened",
        ),
        "tune_unreachable_db": (
            [*tune, "--storage", "postgresql://u:p@127.0.0.1:9/db"],
            "--storage",
        ),
    }


def _run_cli(argv, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sklearn_rfcnn", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=240,
    )
    return proc, time.perf_counter() - start


def test_cli_hostile_inputs_end_in_one_line_and_status_2(audio, tmp_path):
    cases = _cases(audio, tmp_path)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            name: pool.submit(_run_cli, argv, tmp_path)
            for name, (argv, _) in cases.items()
        }
        results = {name: f.result() for name, f in futures.items()}
    failures = []
    for name, (proc, _seconds) in results.items():
        expected = cases[name][1]
        err = proc.stderr.strip()
        ok = (
            proc.returncode == 2
            and len(err.splitlines()) == 1
            and "Traceback" not in err
            and expected in err
            and "training on" not in proc.stdout  # failed before any work
        )
        if not ok:
            failures.append(f"{name}: status {proc.returncode}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    # nothing was written where it could not be
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()


def test_cli_debug_shows_the_traceback(audio, tmp_path):
    root, _model = audio
    argv = ["predict", str(tmp_path / "nowhere"), str(root / "data")]
    assert main(argv) == 2
    with pytest.raises(DataError, match="does not exist"):
        main([*argv, "--debug"])
    with pytest.raises(DataError, match="does not exist"):
        main(["--debug", *argv])


def test_cli_speaks_of_skip_bad_not_on_error(audio, tmp_path, capsys):
    root, model = audio
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....garbage")
    assert main(["predict", str(model), str(tmp_path / "corrupt.wav")]) == 2
    err = capsys.readouterr().err
    assert "--skip-bad" in err and "on_error" not in err, err
    manifest = tmp_path / "m.csv"
    rel = os.path.relpath(root / "data" / "low" / "low0.wav", tmp_path)
    manifest.write_text(f"path,label\n{rel},low\ngone.wav,high\n")
    argv = ["fit", str(manifest), "-o", str(tmp_path / "m"), *TINY_NET]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--skip-bad" in err and "on_missing" not in err, err


def test_fit_refuses_a_non_model_folder_before_training(audio, tmp_path, capsys):
    root, _ = audio
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    argv = ["fit", str(root / "data"), "-o", str(other), "--overwrite", *TINY_NET]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "holds no model" in captured.err and "training on" not in captured.out
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]


def test_predict_writes_its_csv_atomically(audio, tmp_path):
    root, model = audio
    out = tmp_path / "p.csv"
    argv = ["predict", str(model), str(root / "data"), "-o", str(out)]
    assert main(argv) == 0
    assert out.read_text().startswith("path,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]
    assert Path(model).is_dir()
