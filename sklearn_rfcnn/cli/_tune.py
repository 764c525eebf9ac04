"""``rfcnn tune``: one worker of a shared Optuna study, or its report.

Worker mode joins (or creates) the study ``--study`` in ``--storage`` and
runs trials of a ``BandStandardizer -> RFCNNClassifier`` pipeline until the
study holds ``--n-trials`` finished trials, counting every worker's, or until
``--timeout`` seconds (``--timeout`` alone: trials until the timeout); it
never refits.  With none of ``--rho``, ``--width``, ``--separate-axes``,
``--include``, ``--exclude`` the space is the one ``RFOptunaSearchCV`` fits
to the estimator (rho over 3-12, the ``--set`` width and budget kept), the
classifier's own rho first; with ``--cv`` unset each trial is scored on one
stratified hold-out and pruned per epoch by successive halving.
Start it on as many processes or machines as you like with the same
arguments. Data come from ``--data FILE.npz`` (arrays ``X``: spectrograms
``(n, F, T)`` / ``(n, C, F, T)`` or features ``(n, d)``, and ``y``: labels or
a 0/1 tag matrix) or ``--demo-data`` (the embedded instrument mixtures,
rendered once and turned into mel spectrograms).

Report mode (``--report``) prints the best trials with their receptive field
in frames and seconds and writes ``optimization_history.png``,
``param_importances.png``, ``score_vs_receptive_field.png`` and
``summary.json`` into ``--output``.
"""

import json
import sys
import time

from sklearn_rfcnn.cli._options import (
    add_epochs,
    add_random_state,
    add_sr,
    check_options,
)

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


def _key_value(text):
    if "=" not in text:
        raise ValueError(f"--set {text!r} must read KEY=VALUE")
    key, value = text.split("=", 1)
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass
    return key.strip(), value


def _add_data_args(src):
    """Where a worker's clips come from: an ``.npz`` file or the demo data."""
    src.add_argument("--data", default=None, help=".npz file with arrays X and y")
    src.add_argument(
        "--demo-data",
        action="store_true",
        help="use the embedded instrument mixtures (rendered once, cached)",
    )
    src.add_argument("--n-clips", type=int, default=200, help="demo clips")
    src.add_argument("--duration", type=float, default=3.0, help="demo clip length")
    add_sr(src)
    src.add_argument("--hop-length", type=int, default=512, help="STFT hop")
    src.add_argument("--n-mels", type=int, default=128, help="demo mel bands")


def _add_search_args(s):
    """The search a worker runs: space, budget, pruning and scoring."""
    s.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="total over workers (default: until --timeout, or every rho of "
        "the default space once; 20 with --rho/--width/--include/--exclude)",
    )
    s.add_argument(
        "--cv",
        type=int,
        default=None,
        help="cross-validation folds (default: one stratified 20%% hold-out)",
    )
    s.add_argument(
        "--scoring",
        default=None,
        help="scorer name (default: pr_auc_macro for tags, accuracy for labels)",
    )
    s.add_argument(
        "--rho",
        type=int,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="rho range of rf_search_space (default: the fitted space, 3-12)",
    )
    s.add_argument("--separate-axes", action="store_true", help="tune rho_f, rho_t")
    s.add_argument(
        "--width",
        type=int,
        nargs="+",
        default=None,
        help="width choices of rf_search_space (default 32 64 128 with --rho "
        "etc.; the fitted space keeps --set width)",
    )
    s.add_argument("--include", nargs="+", default=None, help="space names kept")
    s.add_argument("--exclude", nargs="+", default=None, help="space names dropped")
    s.add_argument(
        "--set",
        dest="fixed",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed RFCNNClassifier parameter (JSON value), repeatable",
    )
    add_epochs(s, default=10, what="training epochs per fold")
    s.add_argument("--no-pruning", action="store_true", help="never prune")
    s.add_argument("--heartbeat-interval", type=int, default=60)
    s.add_argument("--grace-period", type=int, default=None)
    s.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds; no trial starts that could not finish its first "
        "pruning step in time",
    )
    s.add_argument("--n-jobs", type=int, default=1, help="worker processes here")
    add_random_state(s, default=None, what="the search (sampler)")
    s.add_argument("-v", "--verbose", action="count", default=0)


#: ``rfcnn tune --help``: the one-line help and the description.
HELP = "run one worker of a shared Optuna study (or report on it)"
DESCRIPTION = (
    "Join a shared Optuna study and run cross-validated trials "
    "of an RF-CNN over the receptive-field search space (no refit), or "
    "with --report print the best trials and write plots."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn tune`` to its parser."""
    p.add_argument("--study", required=True, help="study name shared by workers")
    p.add_argument(
        "--storage",
        default=None,
        help="RDB URL (postgresql://..., mysql://..., sqlite:///...) or a "
        "journal file path; default: DATA_HOME/optuna/STUDY.journal",
    )
    p.add_argument("--data-home", default=None, help="default: $RFCNN_DATA_HOME")
    p.add_argument(
        "--report", action="store_true", help="report on the study instead of tuning"
    )
    p.add_argument(
        "--output", default="rfcnn-tune-report", help="report folder for --report"
    )
    p.add_argument("--top", type=int, default=5, help="best trials listed")
    _add_data_args(p.add_argument_group("data (worker mode)"))
    _add_search_args(p.add_argument_group("search (worker mode)"))


def _load_data(args):
    import numpy as np

    from sklearn_rfcnn.cli import CLIError

    if bool(args.data) == bool(args.demo_data):
        raise CLIError(
            "worker mode needs exactly one of --data FILE.npz or --demo-data"
        )
    if args.data:
        with np.load(args.data, allow_pickle=False) as f:
            keys = set(f.files)
            ykey = "y" if "y" in keys else "Y" if "Y" in keys else None
            if "X" not in keys or ykey is None:
                raise CLIError(
                    f"--data {args.data}: needs arrays named 'X' and 'y' "
                    f"(found {sorted(keys)}); save with np.savez(path, X=X, y=y)"
                )
            return np.asarray(f["X"], dtype=np.float32), np.asarray(f[ykey])
    from sklearn_rfcnn.datasets import make_instrument_mixtures
    from sklearn_rfcnn.transformers import MelSpectrogram

    bunch = make_instrument_mixtures(
        n_clips=args.n_clips,
        duration=args.duration,
        sr=args.sr,
        random_state=0,
        data_home=args.data_home,
    )
    mel = MelSpectrogram(sr=args.sr, hop_length=args.hop_length, n_mels=args.n_mels)
    return mel.fit_transform(bunch.waveforms), np.asarray(bunch.target)


def _open_storage(args, **kwargs):
    """``make_storage`` for ``--storage``, failing with one line on any error.

    An unreachable database, a missing driver or an unwritable SQLite or
    journal path is reported before any data are loaded.
    """
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.exceptions import RFCNNError
    from sklearn_rfcnn.search import make_storage

    shown = args.storage if args.storage is not None else "(default journal file)"
    try:
        return make_storage(
            args.storage, study_name=args.study, data_home=args.data_home, **kwargs
        )
    except RFCNNError:
        raise
    except ImportError as exc:
        raise CLIError(
            f"--storage {shown!r} needs a database driver that is not installed "
            f"({' '.join(str(exc).split())}); install it (e.g. pip install "
            "psycopg2-binary for postgresql://, pymysql for mysql+pymysql://)."
        ) from None
    except Exception as exc:
        raise CLIError(_storage_problem(shown, exc, args.storage)) from None


def _storage_problem(shown, exc, storage=None):
    from sklearn_rfcnn.search import storage_kind

    text = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename!r}" if exc.filename else "")
    try:
        kind = storage_kind(storage)
    except Exception:
        kind = "rdb"
    if kind == "journal":  # a file: no database server to blame
        return (
            f"--storage {shown!r}: the journal file cannot be used ({text}); check "
            "that its folder is writable and that it is a study journal."
        )
    return (
        f"--storage {shown!r} cannot be opened ({text}); check the URL, that the "
        "database server is reachable and that the file's folder is writable."
    )


def _join_study(args, storage):
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.exceptions import RFCNNError
    from sklearn_rfcnn.search import create_or_load_study

    shown = args.storage if args.storage is not None else "(default journal file)"
    try:
        return create_or_load_study(storage, args.study)
    except RFCNNError:
        raise
    except Exception as exc:
        raise CLIError(_storage_problem(shown, exc, args.storage)) from None


def _report(args):
    import optuna

    from sklearn_rfcnn.exceptions import RFCNNError
    from sklearn_rfcnn.search import report_study

    storage = _open_storage(args)
    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        from sklearn_rfcnn.cli import CLIError

        raise CLIError(f"no study named {args.study!r} in that storage") from None
    except RFCNNError:
        raise
    except Exception as exc:
        from sklearn_rfcnn.cli import CLIError

        raise CLIError(_storage_problem(args.storage, exc, args.storage)) from None
    summary = report_study(
        study, args.output, sr=args.sr, hop_length=args.hop_length, top=args.top
    )
    states = ", ".join(
        f"{k.lower()}: {v}" for k, v in sorted(summary["states"].items())
    )
    print(f"study {summary['study_name']}  ({states})")
    for rank, row in enumerate(summary["top"], 1):
        rf = (
            f"RF {row['rf_frames']} frames = {row['rf_seconds']} s"
            if row["rf_frames"] is not None
            else "RF n/a"
        )
        print(f"#{rank} trial {row['number']}: score {row['score']:.4f}  {rf}")
        print(f"    {json.dumps(row['params'], default=str)}")
    if summary["best"] is None:
        print("no complete trial yet")
    for path in summary["plots"]:
        print(f"wrote {path}")
    return 0


#: RFOptunaSearchCV parameter -> the ``rfcnn tune`` option that sets it.
_SEARCH_FLAGS = {
    "n_trials": "--n-trials",
    "cv": "--cv",
    "scoring": "--scoring",
    "n_jobs": "--n-jobs",
    "timeout": "--timeout",
    "random_state": "--random-state",
    "heartbeat_interval": "--heartbeat-interval",
    "grace_period": "--grace-period",
}

#: What a worker process imports before its first trial (warmed up early).
_WORKER_MODULES = (
    "sklearn_rfcnn.estimators",
    "sklearn_rfcnn.search",
    "sklearn_rfcnn.transformers",
    "sklearn.pipeline",
)


def _worker(args):
    started = time.perf_counter()
    # With --n-jobs N the N - 1 extra worker processes start first, so that
    # their imports (and torch's first-optimizer import of torch._dynamo)
    # run while this process does the same, not after it.
    from sklearn_rfcnn.utils._parallel import (
        n_processes,
        process_executor,
        warm_up_processes,
    )

    extra = n_processes(args.n_jobs) - 1
    warm_up_processes(extra, _WORKER_MODULES, optimizer=True)
    try:
        return _run_worker(args, started)
    except BaseException:
        if extra > 0:  # an error exits at once, not after their imports
            process_executor(extra).shutdown(wait=False, kill_workers=True)
        raise


def _make_search(args):
    """The search a worker runs, from the options; ``(search, clf, fixed, space)``."""
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.search import RFOptunaSearchCV, rf_search_space
    from sklearn_rfcnn.search._spaces import RHO_RANGE
    from sklearn_rfcnn.transformers import BandStandardizer

    # a malformed --set fails before any storage is opened or study created
    try:
        fixed = dict(_key_value(t) for t in args.fixed)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    params = {"max_epochs": args.epochs, "verbose": 0, "random_state": 0}
    params.update(fixed)
    try:
        clf = RFCNNClassifier(**params)
    except TypeError as exc:
        raise CLIError(f"--set: {exc}") from None
    pipe = Pipeline([("norm", BandStandardizer()), ("clf", clf)])
    space = None  # the space RFOptunaSearchCV fits to the classifier
    custom = (args.rho, args.width, args.include, args.exclude)
    if args.separate_axes or any(v is not None for v in custom):
        space = rf_search_space(
            "clf__",
            rho=tuple(args.rho or RHO_RANGE),
            separate_axes=args.separate_axes,
            width=tuple(args.width or (32, 64, 128)),
            include=args.include,
            exclude=args.exclude,
        )
        for key in fixed:  # a fixed parameter is not searched
            space.pop("clf__" + key, None)
    n_trials = args.n_trials
    if n_trials is None and args.timeout is None and space is not None:
        n_trials = 20  # the fitted space is finite: every rho once
    search = RFOptunaSearchCV(
        pipe,
        space,
        n_trials=n_trials,
        cv=args.cv,
        scoring=args.scoring,
        storage=args.storage,
        study_name=args.study,
        pruning=not args.no_pruning,
        n_jobs=args.n_jobs,
        timeout=args.timeout,
        random_state=args.random_state,
        data_home=args.data_home,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        verbose=args.verbose,
    )
    return search, clf, fixed, space


def _print_outcome(args, study, n_trials):
    """The study's trial counts and its best trial so far."""
    states = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    done = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    total = "" if n_trials is None else f"/{n_trials}"
    print(
        f"study {args.study}: {done}{total} trials finished "
        f"({', '.join(f'{k.lower()}: {v}' for k, v in sorted(states.items()))})"
    )
    if done and states.get("COMPLETE"):
        best = study.best_trial
        print(f"best so far: trial {best.number}, score {best.value:.4f}")
        print(f"    {json.dumps(best.params, default=str)}")


def _run_worker(args, started):
    import numpy as np

    from sklearn_rfcnn.search import run_worker
    from sklearn_rfcnn.utils._warnings import warnings_once

    # Where a worker's start-up goes (printed with -v; benchmarks/bench_search.py
    # reads it): the imports (torch, scikit-learn, skorch, optuna) are most of it.
    startup = _Stopwatch(started)
    search, clf, fixed, space = _make_search(args)
    startup.lap("imports")
    # every parameter is checked before any data are read or a study created
    check_options(
        search,
        {"max_epochs": "--epochs", **_SEARCH_FLAGS, **{k: f"--set {k}" for k in fixed}},
    )
    _check_rho_range(args, space, clf)
    # a --data file is read first (quick, and a bad one creates no study);
    # the storage is opened before demo data are rendered or anything
    # trains, so an unreachable database fails at once
    if bool(args.data) == bool(args.demo_data) or args.data:
        X, y = _load_data(args)
        startup.lap("data")
    storage = _open_storage(
        args,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
    )
    startup.lap("storage")
    study = _join_study(args, storage)
    startup.lap("study")
    if not args.data:
        X, y = _load_data(args)
        startup.lap("data")
    if args.scoring is None:
        search.set_params(scoring="pr_auc_macro" if np.ndim(y) == 2 else "accuracy")
    # Record what the report needs to turn pixels into seconds.
    study.set_user_attr("rfcnn:sr", args.sr)
    study.set_user_attr("rfcnn:hop_length", args.hop_length)
    study.set_user_attr("rfcnn:depth", clf.depth)
    if args.verbose:
        print(f"worker start-up: {startup}", flush=True)
    with warnings_once("trials"):  # not once per fold and trial
        study = run_worker(search, X, y)
    _print_outcome(args, study, search.n_trials)
    return 0


def _check_rho_range(args, space, clf):
    """``--rho LO HI`` must lie within the rho range of the network's depth."""
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.receptive_field import max_rho

    if space is None or args.rho is None:  # the fitted space caps rho itself
        return
    searched = [k for k in ("rho", "rho_f", "rho_t") if "clf__" + k in space]
    if not searched or clf.arch != "cp_resnet":
        return
    hi = max_rho() if clf.depth is None else max_rho(clf.depth)
    if args.rho[1] > hi:
        depth = "the default depth" if clf.depth is None else f"depth={clf.depth}"
        raise CLIError(
            f"--rho {args.rho[0]} {args.rho[1]}: rho above {hi} is not possible "
            f"at {depth} ({', '.join(searched)} searched); pass --rho LO HI with "
            f"HI <= {hi}, or a larger --set depth."
        )


class _Stopwatch:
    """Named laps since a start time; ``str`` lists them and their total.

    Examples
    --------
    >>> watch = _Stopwatch(time.perf_counter())
    >>> watch.lap("imports")
    >>> str(watch).startswith("imports ")
    True
    """

    def __init__(self, started):
        self.started = self.last = started
        self.laps = {}

    def lap(self, name):
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now

    def __str__(self):
        parts = [f"{k} {v:.2f} s" for k, v in self.laps.items()]
        return ", ".join(parts) + f" (total {self.last - self.started:.2f} s)"


def run(args):
    """Run ``rfcnn tune``; returns the exit status."""
    if args.report:
        return _report(args)
    return _worker(args)


if __name__ == "__main__":  # pragma: no cover
    from sklearn_rfcnn.cli import main

    sys.exit(main(["tune", *sys.argv[1:]]))
