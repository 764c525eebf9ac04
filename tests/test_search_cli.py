"""``rfcnn tune``: a worker on saved arrays, two workers, and the report."""

import json

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("matplotlib")

from sklearn_rfcnn.cli import main  # noqa: E402


@pytest.fixture
def npz(tmp_path):
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], 12)
    X = rng.randn(24, 8, 16).astype(np.float32)
    X[y == 1, :4] += 2.0
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    return path


def _tune_args(tmp_path, npz, study, *options):
    """``rfcnn tune`` of ``study`` (in ``<study>.journal``) on ``npz``: a small
    network, batches of 16 on the CPU, seed 0."""
    return [
        "tune",
        "--study",
        study,
        "--storage",
        str(tmp_path / f"{study}.journal"),
        "--data",
        str(npz),
        *options,
        "--set",
        "depth=8",
        "--set",
        "batch_size=16",
        "--set",
        'device="cpu"',
        "--seed",
        "0",
    ]


def _worker_args(tmp_path, npz, n_trials):
    return _tune_args(
        tmp_path,
        npz,
        "cli",
        "--n-trials",
        str(n_trials),
        "--cv",
        "2",
        "--max-epochs",
        "2",
        "--rho",
        "1",
        "3",
        "--width",
        "4",
        "--include",
        "rho",
        "lr",
    )


def test_tune_worker_then_report(tmp_path, npz, capsys):
    assert main(_worker_args(tmp_path, npz, 2)) == 0
    out = capsys.readouterr().out
    assert "2/2 trials finished" in out and "best so far" in out
    # a second worker on the same study has nothing left to do
    assert main(_worker_args(tmp_path, npz, 2)) == 0
    study = optuna.load_study(
        study_name="cli",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "cli.journal"))
        ),
    )
    assert len(study.trials) == 2
    assert study.user_attrs["rfcnn:depth"] == 8
    # ... and a larger total makes it run only the missing ones
    assert main([*_worker_args(tmp_path, npz, 3), "-v"]) == 0
    out = capsys.readouterr().out
    assert "3/3 trials finished" in out
    # -v says where the worker's start-up went
    line = next(x for x in out.splitlines() if x.startswith("worker start-up: "))
    for lap in ("imports", "data", "storage", "study", "total"):
        assert f"{lap} " in line

    report = tmp_path / "report"
    args = ["tune", "--report", "--study", "cli", "--output", str(report)]
    args += ["--storage", str(tmp_path / "cli.journal")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "#1 trial" in out and "frames =" in out
    for name in (
        "optimization_history.png",
        "param_importances.png",
        "score_vs_receptive_field.png",
    ):
        assert (report / name).read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["states"] == {"COMPLETE": 3} or sum(summary["states"].values()) == 3
    best = summary["best"]
    assert best["rf_frames"] > 0 and best["rf_seconds"] == pytest.approx(
        best["rf_frames"] * 512 / 22050, abs=1e-3
    )


def test_tune_errors_exit_with_status_2(tmp_path, npz, capsys):
    args = ["tune", "--study", "x", "--storage", str(tmp_path / "x.journal")]
    assert main(args) == 2
    assert "--data" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, A=np.zeros(3))
    assert main([*args, "--data", str(bad)]) == 2
    assert "'X' and 'y'" in capsys.readouterr().err
    assert main([*args, "--report"]) == 2
    assert "no study named 'x'" in capsys.readouterr().err
    fresh = ["tune", "--study", "y", "--storage", str(tmp_path / "y.journal")]
    assert main([*fresh, "--data", str(npz), "--set", "nonsense"]) == 2
    assert "--set 'nonsense' must read KEY=VALUE" in capsys.readouterr().err
    assert main([*fresh, "--data", str(npz), "--set", "no_such_param=1"]) == 2
    assert "--set: " in capsys.readouterr().err
    # a bad --set is found before the storage is opened or the study created
    assert not (tmp_path / "y.journal").exists()


def test_tune_error_with_n_jobs_stops_the_warmed_up_workers(
    tmp_path, capsys, monkeypatch
):
    """--n-jobs 2 starts a worker process early; an error shuts it down at once."""
    from sklearn_rfcnn.utils import _parallel

    warmed = []

    def spy(n, *args, **kwargs):
        futures = _parallel.warm_up_processes.__wrapped__(n, *args, **kwargs)
        warmed.append((n, _parallel.process_executor(n)))
        return futures

    spy.__wrapped__ = _parallel.warm_up_processes
    monkeypatch.setattr(_parallel, "warm_up_processes", spy)
    args = ["tune", "--study", "x", "--storage", str(tmp_path / "x.journal")]
    assert main([*args, "--n-jobs", "2"]) == 2  # no --data: a CLIError
    assert "--data" in capsys.readouterr().err
    ((n, executor),) = warmed
    assert n == 1
    assert executor._flags.shutdown  # shut down (workers killed), not left running


def test_tune_then_report_on_a_study_with_the_default_parameters(tmp_path, capsys):
    """The report reads a study that ``rfcnn tune`` made with default depth (None)."""
    storage = str(tmp_path / "t1.journal")
    common = ["--study", "t1", "--storage", storage, "--data-home", str(tmp_path)]
    worker = ["tune", *common, "--demo-data", "--n-clips", "12", "--duration", "1"]
    worker += ["--n-mels", "32", "--n-trials", "2", "--cv", "2", "--epochs", "1"]
    worker += ["--width", "4", "--seed", "0"]
    assert main(worker) == 0
    capsys.readouterr()
    study = optuna.load_study(
        study_name="t1",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(storage)
        ),
    )
    assert study.user_attrs["rfcnn:depth"] is None  # the estimator's default
    report = tmp_path / "report"
    assert main(["tune", "--report", *common, "--output", str(report)]) == 0
    captured = capsys.readouterr()
    assert "error" not in captured.err
    assert "#1 trial" in captured.out and "frames =" in captured.out
    summary = json.loads((report / "summary.json").read_text())
    from sklearn_rfcnn.search import receptive_field_seconds

    for row in summary["top"]:
        # depth None is the network's default depth (26)
        rho = row["params"]["clf__rho"]
        assert row["rf_frames"] == receptive_field_seconds({"rho": rho, "depth": 26})[0]
    assert (report / "score_vs_receptive_field.png").read_bytes()[:4] == b"\x89PNG"


def test_report_on_a_search_study_takes_the_depth_given():
    """A study of RFOptunaSearchCV records no depth: report_study's depth= applies."""
    from sklearn_rfcnn.search import report_study

    study = optuna.create_study(direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"clf__rho": 3},
            distributions={"clf__rho": optuna.distributions.IntDistribution(1, 4)},
            value=0.5,
        )
    )
    default = report_study(study)
    shallow = report_study(study, depth=8)
    assert shallow["best"]["rf_frames"] != default["best"]["rf_frames"]
    from sklearn_rfcnn.receptive_field import cp_resnet_layers, receptive_field

    expected = receptive_field(cp_resnet_layers(3, depth=8)).time
    assert shallow["best"]["rf_frames"] == expected


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "rho=30"], "--set rho: "),
        (["--epochs", "0"], "--epochs: "),
        (["--n-trials", "0"], "--n-trials: "),
        (["--set", "depth=8", "--rho", "3", "10"], "--rho 3 10: rho above 4"),
        (["--set", "depth=8", "--set", "rho_f=6"], "--set rho_f: "),
    ],
)
def test_tune_checks_every_parameter_before_data_or_study(
    tmp_path, npz, capsys, monkeypatch, extra, message
):
    from sklearn_rfcnn.cli import _tune

    def no_reading(*args, **kwargs):
        raise AssertionError("data were read before the parameters were checked")

    monkeypatch.setattr(_tune, "_load_data", no_reading)
    journal = tmp_path / "p.journal"
    argv = ["tune", "--study", "p", "--storage", str(journal), "--data", str(npz)]
    assert main([*argv, "--rho", "1", "3", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rfcnn tune: error: ") and message in err
    assert not journal.exists()  # no study created


def test_tune_fixed_depth_with_searched_rho_in_range_is_accepted(tmp_path, npz):
    """A fixed depth=8 is fine when the searched rho range fits it."""
    args = _worker_args(tmp_path, npz, 1)  # --rho 1 3 --set depth=8
    assert main(args) == 0


def _timeout_args(tmp_path, npz, *extra):
    return [
        *_tune_args(tmp_path, npz, "t", "--max-epochs", "2", "--set", "width=4"),
        *extra,
    ]


def _load(tmp_path, name):
    return optuna.load_study(
        study_name=name,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(
                str(tmp_path / f"{name}.journal")
            )
        ),
    )


def test_tune_timeout_alone_runs_trials_until_the_timeout(tmp_path, npz, capsys):
    import time

    timeout = 20.0  # the first trial pays torch's start-up (seconds)
    args = _timeout_args(tmp_path, npz, "--rho", "1", "3", "--include", "rho", "lr")
    args[args.index("--max-epochs") + 1] = "4"
    t0 = time.perf_counter()
    assert main([*args, "--timeout", str(timeout)]) == 0
    wall = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert "trials finished" in out and "/20" not in out  # no trial count
    study = _load(tmp_path, "t")
    starts = sorted(t.datetime_start for t in study.trials)
    ends = sorted(t.datetime_complete for t in study.trials)
    # trials started within the timeout, and the worker did not stop at a count
    assert (starts[-1] - starts[0]).total_seconds() <= timeout
    assert (ends[-1] - starts[0]).total_seconds() <= 1.25 * timeout
    assert len(study.trials) >= 3 and wall < 90


def test_tune_default_space_is_the_fitted_one(tmp_path, npz, capsys):
    assert main(_timeout_args(tmp_path, npz, "--set", "rho=2")) == 0
    study = _load(tmp_path, "t")
    params = [t.params for t in study.trials]
    # the classifier's own rho first, then every other rho of 2..4 once
    assert params == [{"clf__rho": 2}, {"clf__rho": 3}, {"clf__rho": 4}]
    assert "3 trials finished" in capsys.readouterr().out
