"""The ``rfcnn demo``, ``fit``, ``predict`` and ``embed`` subcommands, end to end."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from _helpers import cli_front_end, cli_tiny_net

from sklearn_rfcnn import load_pipeline
from sklearn_rfcnn.cli import build_parser, main

TINY_FRONT_END = cli_front_end(duration=0.5)
TINY_NET = cli_tiny_net(epochs=2)


def _tone(path, freq, sr=8000, seconds=0.5):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * freq * t), sr)


@pytest.fixture
def audio_tree(tmp_path):
    """``data/<class>/*.wav`` with two classes, and a tag manifest over them."""
    root = tmp_path / "data"
    for cls, base in (("low", 220.0), ("high", 1800.0)):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            _tone(root / cls / f"{cls}{i}.wav", base + 15 * i)
    manifest = tmp_path / "tags.csv"
    lines = ["path,tags"]
    for i in range(4):
        lines += [f"data/low/low{i}.wav,low;tone", f"data/high/high{i}.wav,high"]
    manifest.write_text("\n".join(lines) + "\n")
    return tmp_path, root, manifest


def _fit(args, capsys=None):
    status = main(["fit", *args, *TINY_FRONT_END, *TINY_NET, "--quiet"])
    return status


def test_help_documents_every_option(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("demo", "fit", "predict", "embed"):
        sub_parser = sub.choices[name]
        for action in sub_parser._actions:
            assert action.help, f"rfcnn {name}: {action.option_strings} has no help"
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--quick",
        "--n-clips",
        "--epochs",
        "--width",
        "--rho",
        "--output",
        "--data-home",
        "--random-state",
        "--device",
        "--skip-bad",
        "--threshold",
        "--tags",
    ):
        assert option in out


def test_fit_predict_embed_from_folder(audio_tree, capsys):
    tmp, root, _ = audio_tree
    model = tmp / "model"
    assert _fit([str(root), "-o", str(model)]) == 0
    # the model folder is a save_pipeline folder of the whole pipeline
    saved, meta = load_pipeline(model, return_metadata=True)
    assert [name for name, _ in saved.steps] == ["load", "mel", "norm", "clf"]
    assert meta["target_names"] == ["high", "low"] and not meta["multilabel"]
    assert saved.named_steps["norm"].mean_.shape == (16,)
    assert not list(model.rglob("*.pkl"))
    capsys.readouterr()

    out_csv = tmp / "pred.csv"
    assert main(["predict", str(model), str(root), "-o", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 8
    assert set(rows[0]) == {"path", "high", "low", "predicted"}
    for row in rows:
        assert float(row["high"]) + float(row["low"]) == pytest.approx(1, abs=1e-5)
        assert row["predicted"] in ("high", "low")

    # the saved front end reproduces the training features exactly
    from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram

    paths = [r["path"] for r in rows]
    train = sorted(str(p) for p in root.rglob("*.wav"))
    mel = MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=16)
    loader = AudioLoader(sr=8000, duration=0.5)
    std = BandStandardizer().fit(mel.fit_transform(loader.fit_transform(train)))
    clf = saved.named_steps["clf"]
    expected = clf.predict_proba(std.transform(mel.transform(loader.transform(paths))))
    got = np.array([[float(r["high"]), float(r["low"])] for r in rows])
    np.testing.assert_allclose(got, expected, atol=2e-6)

    emb = tmp / "emb.npy"
    assert main(["embed", str(model), str(root / "low"), "-o", str(emb)]) == 0
    E = np.load(emb)
    assert E.shape == (4, 16) and E.dtype == np.float32
    listed = (tmp / "emb.paths.txt").read_text().split()
    assert listed == sorted(str(p) for p in (root / "low").glob("*.wav"))


def test_fit_predict_tags_from_manifest(audio_tree, capsys):
    tmp, root, manifest = audio_tree
    model = tmp / "tagger"
    assert _fit([str(manifest), "-o", str(model)]) == 0
    capsys.readouterr()
    assert (
        main(
            ["predict", str(model), str(root / "low" / "low0.wav"), "--threshold", "0"]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "path,high,low,tone,predicted"
    assert out[1].endswith(",high;low;tone")  # threshold 0: every tag
    # refitting into an existing model folder needs --overwrite
    assert _fit([str(manifest), "-o", str(model)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _fit([str(manifest), "-o", str(model), "--overwrite"]) == 0


def test_fit_then_predict_is_exactly_the_saved_pipeline(audio_tree, capsys):
    tmp, root, manifest = audio_tree
    model = tmp / "tagger"
    assert _fit([str(manifest), "-o", str(model)]) == 0
    files = sorted(str(p) for p in root.rglob("*.wav"))
    out_csv = tmp / "pred.csv"
    assert main(["predict", str(model), *files, "-o", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    pipe, meta = load_pipeline(model, return_metadata=True)
    names = meta["target_names"]
    proba = pipe.predict_proba(files)
    labels = pipe.predict(files)
    assert [r["path"] for r in rows] == files
    got = [[r[n] for n in names] for r in rows]
    assert got == [[f"{p:.6f}" for p in row] for row in proba]
    expected = [";".join(n for n, on in zip(names, row) if on) for row in labels]
    assert [r["predicted"] for r in rows] == expected

    # a tag whose probability equals the threshold is not predicted, exactly as
    # RFCNNClassifier.predict (proba > threshold) decides
    t = float(pipe.predict_proba([files[0]])[0, 0])  # the CLI's batch of one
    capsys.readouterr()
    assert main(["predict", str(model), files[0], "--threshold", repr(t)]) == 0
    predicted = capsys.readouterr().out.splitlines()[1].rsplit(",", 1)[1]
    assert names[0] not in predicted.split(";")
    pipe.set_params(clf__threshold=t)
    assert pipe.predict([files[0]])[0, 0] == 0
    below = float(np.nextafter(t, 0.0))
    assert main(["predict", str(model), files[0], "--threshold", repr(below)]) == 0
    predicted = capsys.readouterr().out.splitlines()[1].rsplit(",", 1)[1]
    assert names[0] in predicted.split(";")


def test_shared_options_have_one_definition_and_old_spellings():
    parser = build_parser()
    common = ["-o", "m", *TINY_FRONT_END]
    for spelling in (["--epochs", "3"], ["--max-epochs", "3"]):
        args = parser.parse_args(["fit", "in", *common, *spelling])
        assert args.epochs == 3
    for spelling in (["--random-state", "5"], ["--seed", "5"]):
        args = parser.parse_args(["fit", "in", *common, *spelling])
        assert args.random_state == 5
        args = parser.parse_args(["tune", "--study", "s", *spelling])
        assert args.random_state == 5
        args = parser.parse_args(["demo", *spelling])
        assert args.random_state == 5
    args = parser.parse_args(["tune", "--study", "s", "--max-epochs", "2"])
    assert args.epochs == 2
    args = parser.parse_args(["tune", "--study", "s", "--epochs", "4"])
    assert args.epochs == 4
    for sub in (["rf"], ["tune", "--study", "s"], ["fit", "in", "-o", "m"]):
        args = parser.parse_args([*sub, "--sr", "22050"])
        assert args.sr == 22050 and isinstance(args.sr, int)
        assert parser.parse_args([*sub, "--sr", "22050.0"]).sr == 22050
    assert parser.parse_args(["rf", "--sr", "44100.5"]).sr == 44100.5
    with pytest.raises(SystemExit):
        parser.parse_args(["rf", "--sr", "-1"])


def test_old_model_folders_get_a_clear_error(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "rfcnn-model.json").write_text("{}")
    assert main(["predict", str(old), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "older 'rfcnn fit'" in err and len(err.strip().splitlines()) == 1


def test_bad_inputs_are_one_line_errors(audio_tree, capsys, tmp_path):
    tmp, root, manifest = audio_tree

    def error_of(argv):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith(f"rfcnn {argv[0]}: error: ")
        return err

    model = str(tmp / "m")
    empty = tmp / "empty"
    empty.mkdir()
    assert "no class sub-folders" in error_of(["fit", str(empty), "-o", model])
    assert "does not exist" in error_of(["fit", str(tmp / "nope"), "-o", model])
    # labels not in the given tag set
    err = error_of(["fit", str(manifest), "-o", model, "--tags", "low,high"])
    assert "'tone' is not in the tag set" in err
    # a manifest naming a missing file and a corrupt file
    bad = tmp / "bad.csv"
    (tmp / "corrupt.wav").write_bytes(b"RIFF....garbage")
    bad.write_text(manifest.read_text() + "data/low/gone.wav,low\ncorrupt.wav,high\n")
    assert "gone.wav" in error_of(["fit", str(bad), "-o", model])
    (tmp / "bad2.csv").write_text(manifest.read_text() + "corrupt.wav,high\n")
    assert "corrupt.wav" in error_of(["fit", str(tmp / "bad2.csv"), "-o", model])
    assert "not a model folder" in error_of(["predict", str(root), str(root)])
    assert "does not exist" in error_of(["predict", model, str(root)])


def test_skip_bad_lists_what_was_skipped(audio_tree, capsys):
    tmp, root, manifest = audio_tree
    (tmp / "corrupt.wav").write_bytes(b"RIFF....garbage")
    bad = tmp / "bad.csv"
    bad.write_text(manifest.read_text() + "data/low/gone.wav,low\ncorrupt.wav,high\n")
    model = tmp / "m"
    assert _fit([str(bad), "-o", str(model), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "gone.wav" in out and "corrupt.wav" in out
    assert "on_error" not in out  # the CLI names its own option
    assert load_pipeline(model, return_metadata=True)[1]["n_train"] == 8
    status = main(
        [
            "predict",
            str(model),
            str(root / "low" / "low0.wav"),
            str(tmp / "corrupt.wav"),
            "--skip-bad",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert "corrupt.wav" in captured.err and "on_error" not in captured.err
    assert len(captured.out.strip().splitlines()) == 2  # header + the good file
    emb = tmp / "e.npy"
    assert (
        main(
            [
                "embed",
                str(model),
                str(tmp / "corrupt.wav"),
                str(root / "high" / "high1.wav"),
                "-o",
                str(emb),
                "--skip-bad",
            ]
        )
        == 0
    )
    assert np.load(emb).shape[0] == 1
    assert (tmp / "e.paths.txt").read_text().strip().endswith("high1.wav")


def test_demo_quick_end_to_end(tmp_path, capsys, monkeypatch):
    out = tmp_path / "report"
    demo = [
        "demo",
        "--quick",
        "--data-home",
        str(tmp_path / "home"),
        "--output",
        str(out),
    ]
    status = main([*demo, "--device", "cpu", "--threads", "1"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "mAP" in printed and "ROC-AUC" in printed and "MFCC" in printed
    for name in (
        "metrics.json",
        "training_curve.png",
        "per_tag_ap.png",
        "receptive_field.png",
        "per_tag_report.txt",
    ):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "quick" and metrics["torch_threads"] == 1
    assert len(metrics["results"]) == 3
    for res in metrics["results"].values():
        assert set(res) == {"mAP", "PR-AUC (trapezoid)", "ROC-AUC"}
        assert all(0.0 <= v <= 1.0 for v in res.values())
    rf = metrics["receptive_field"]
    assert rf["pixels"] == {"freq": 39, "time": 39}  # rho=2
    assert rf["time_seconds"] == pytest.approx(39 * 512 / 22050)
    assert len(metrics["history"]) == 2
    cache = tmp_path / "home" / "instrument_mixtures"
    clips = sorted(cache.rglob("*.wav"))
    assert len(clips) == 48
    stamps = {p: p.stat().st_mtime_ns for p in clips}
    # the rendered clips are cached: a second run renders nothing and leaves
    # every cached file untouched
    from sklearn_rfcnn.datasets import _instruments

    rendered = []
    real_render = _instruments._render_clip

    def counting_render(*args, **kwargs):
        rendered.append(args[0])
        return real_render(*args, **kwargs)

    monkeypatch.setattr(_instruments, "_render_clip", counting_render)
    assert main([*demo, "--epochs", "1", "--n-clips", "40"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and metrics["data"]["n_test"] == 10
    assert rendered == []
    assert sorted(cache.rglob("*.wav")) == clips
    assert {p: p.stat().st_mtime_ns for p in clips} == stamps
    assert metrics["data"]["cache_folder"] == str(clips[0].parent)


def test_demo_rejects_bad_options(tmp_path, capsys):
    assert main(["demo", "--quick", "--n-clips", "3", "--output", str(tmp_path)]) == 2
    assert "--n-clips=3" in capsys.readouterr().err
    assert (
        main(
            [
                "demo",
                "--quick",
                "--instruments",
                "piano,gitar",
                "--data-home",
                str(tmp_path),
                "--output",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "did you mean 'acoustic_guitar'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad, flags, words",
    [
        (["--rho", "40"], "--rho", "rho=40"),
        (["--epochs", "-2"], "--epochs", "max_epochs"),
        (["--depth", "14", "--rho-t", "12"], "--rho-t", "rho_t=12"),
        (["--n-mels", "0"], "--n-mels", "n_mels"),
    ],
)
def test_fit_checks_every_parameter_before_reading_a_file(
    audio_tree, capsys, monkeypatch, bad, flags, words
):
    """A wrong value (or combination) fails before any file is listed or decoded."""
    from sklearn_rfcnn.cli import _fit as fit_module

    tmp, root, _ = audio_tree

    def no_reading(*args, **kwargs):
        raise AssertionError("the input was read before the parameters were checked")

    monkeypatch.setattr(fit_module, "_read_input", no_reading)
    argv = ["fit", str(root), "-o", str(tmp / "m"), *TINY_FRONT_END, "--quiet"]
    assert main([*argv, "--width", "4", "--device", "cpu", *bad]) == 2
    captured = capsys.readouterr()
    assert "training" not in captured.out
    err = captured.err.strip()
    assert err.startswith("rfcnn fit: error: --") and words in err
    lead = err.split(": step ")[0].removeprefix("rfcnn fit: error: ")
    assert flags in lead.split(", ")
    assert len(err.splitlines()) == 1
    assert not (tmp / "m").exists()


def test_redirected_fit_log_holds_no_escape_codes(audio_tree, capsys):
    tmp, root, _ = audio_tree
    argv = ["fit", str(root), "-o", str(tmp / "m"), *TINY_FRONT_END, *TINY_NET]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train_loss" in out  # the epoch table is there, in plain text
    assert "\x1b" not in out
