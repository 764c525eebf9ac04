"""Shared studies: worker processes, killed workers, PostgreSQL, creation races."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from _helpers import c_search

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from sklearn_rfcnn.search import create_or_load_study, make_storage  # noqa: E402

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from optuna.distributions import FloatDistribution
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn_rfcnn.search import RFOptunaSearchCV, run_worker

    class Slow(ClassifierMixin, BaseEstimator):
        def __init__(self, C=1.0):
            self.C = C

        def fit(self, X, y):
            time.sleep(float(os.environ.get("FIT_DELAY", "0")))
            self.m_ = LogisticRegression(C=self.C, max_iter=300).fit(X, y)
            self.classes_ = self.m_.classes_
            return self

        def predict(self, X):
            return self.m_.predict(X)

    storage, study, n_trials, seed = sys.argv[1:5]
    X, y = load_iris(return_X_y=True)
    search = RFOptunaSearchCV(
        Slow(), {"C": FloatDistribution(1e-3, 1e3, log=True)},
        n_trials=int(n_trials), cv=2, storage=storage, study_name=study,
        random_state=int(seed), pruning=False,
        heartbeat_interval=int(os.environ.get("HB", "60")),
        grace_period=int(os.environ.get("GRACE", "0")) or None,
    )
    run_worker(search, X, y)
    """
)


def _start(tmp_path, storage, study, n_trials, seed, **env):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen(
        [sys.executable, str(script), storage, study, str(n_trials), str(seed)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc, timeout=240):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _load(storage, study):
    return optuna.load_study(study_name=study, storage=make_storage(storage))


def _assert_exact(study, n_trials):
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == n_trials, [t.state for t in trials]
    assert not [
        t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)
    ]
    # every other trial is a surplus one that fitted nothing
    others = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.user_attrs.get("rfcnn:surplus") for t in others), others
    # no parameter set was evaluated twice
    values = [t.params["C"] for t in complete]
    assert len(set(values)) == len(values)
    return complete


def test_two_worker_processes_share_a_journal_study_exactly(tmp_path):
    storage = str(tmp_path / "study.journal")
    procs = [
        _start(tmp_path, storage, "shared", 10, seed, FIT_DELAY="0.25")
        for seed in (0, 1)
    ]
    for p in procs:
        _finish(p)
    complete = _assert_exact(_load(storage, "shared"), 10)
    workers = {t.user_attrs["rfcnn:worker"] for t in complete}
    assert len(workers) == 2, "both processes should have run trials"


def test_killed_worker_trial_is_rerun_after_grace_period(tmp_path):
    _kill_and_rerun(tmp_path, str(tmp_path / "study.journal"))


def _kill_and_rerun(tmp_path, storage):
    env = {"HB": "1", "GRACE": "3"}
    doomed = _start(tmp_path, storage, "killed", 3, 0, FIT_DELAY="120", **env)
    deadline = time.monotonic() + 120
    running = []
    while time.monotonic() < deadline and not running:
        time.sleep(0.5)
        if "://" in storage or Path(storage).exists():
            try:
                study = _load(storage, "killed")
            except Exception:  # not created yet (KeyError), or no schema yet
                continue
            # a trial counts once its parameters are drawn (it is then fitting);
            # a snapshot taken earlier would hold no parameters yet
            running = [
                t for t in study.get_trials(states=(TrialState.RUNNING,)) if t.params
            ]
    assert running, "the first worker never started a trial"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    killed = running[0]

    # The second worker runs new trials, waits out the grace period of the
    # dead one, fails it and re-runs its parameters.
    _finish(_start(tmp_path, storage, "killed", 3, 1, FIT_DELAY="0", **env))

    trials = _load(storage, "killed").trials
    assert trials[killed.number].state == TrialState.FAIL
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    retried = [t for t in complete if t.system_attrs.get("failed_trial") is not None]
    assert len(retried) == 1
    assert retried[0].system_attrs["failed_trial"] == killed.number
    assert retried[0].params == killed.params  # re-run, not lost


def _assert_six_threads_create_one_study(url):
    """Six threads create or load study "race" at ``url``: all get the same one."""
    from concurrent.futures import ThreadPoolExecutor

    def join(_):
        storage = make_storage(url, heartbeat_interval=None)
        return create_or_load_study(storage, "race")._study_id

    with ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(join, range(6)))
    assert len(set(ids)) == 1


def test_creation_race_on_a_fresh_sqlite_database(tmp_path):
    """Many threads create one study on a fresh database: all end up in it."""
    _assert_six_threads_create_one_study(f"sqlite:///{tmp_path / 'race.db'}")


# ---------------------------------------------------------------------------
# PostgreSQL on loopback
# ---------------------------------------------------------------------------
def _pg_bindir():
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


def _install_postgres():
    """apt-get install the server when root on a Debian-like system."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root on a Debian-like system, cannot apt-get install postgresql"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
    ):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            return f"{' '.join(cmd)} failed: {res.stderr.strip()[-300:]}"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for PostgreSQL")
    bindir = _pg_bindir()
    if bindir is None:
        why = _install_postgres()
        bindir = _pg_bindir()
        if bindir is None:
            pytest.skip(f"no PostgreSQL server (initdb/pg_ctl) and {why}")
    run_as = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run it")
        run_as = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="rfcnn-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if run_as:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()

    def pg(*args, timeout=120):
        return subprocess.run(
            [*run_as, *args], capture_output=True, text=True, timeout=timeout
        )

    res = pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {res.stderr.strip()[-300:]}")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    res = pg(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        opts,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    if res.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {res.stderr} {log[-500:]}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    # Both start on a fresh database: schema and study creation race.
    procs = [
        _start(tmp_path, postgres_url, "pg-shared", 8, seed, FIT_DELAY="0.25")
        for seed in (0, 1)
    ]
    for p in procs:
        _finish(p)
    study = optuna.load_study(study_name="pg-shared", storage=postgres_url)
    complete = _assert_exact(study, 8)
    assert len({t.user_attrs["rfcnn:worker"] for t in complete}) == 2


@pytest.mark.postgres
def test_creation_race_on_a_fresh_postgresql_database(postgres_url):
    """Six threads create one study on a database with no schema yet."""
    import psycopg2

    conn = psycopg2.connect(postgres_url.replace("postgresql+psycopg2", "postgresql"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE race")
    conn.close()
    _assert_six_threads_create_one_study(postgres_url.rsplit("/", 1)[0] + "/race")


def test_a_trial_created_past_the_total_is_surplus_and_fits_nothing():
    """The exact-total rule, step by step, as two racing workers would see it."""
    from sklearn.datasets import load_iris

    from sklearn_rfcnn.search._scheduler import _SurplusTrial

    X, y = load_iris(return_X_y=True)
    search = c_search(c_range=(0.1, 10), n_trials=2, cv=2)
    splits, _ = search._splits(X, y, None)
    objective = search._make_objective(X, y, splits, {})
    study = create_or_load_study(make_storage("memory"), "rule")
    first, second = study.ask(), study.ask()  # other workers' running trials
    third = study.ask()
    with pytest.raises(_SurplusTrial):
        objective(third)
    assert "rfcnn:split_test_scores" not in study.trials[2].user_attrs
    study.tell(third, state=TrialState.FAIL)
    study.tell(first, state=TrialState.FAIL)  # its worker died: a place frees up
    fourth = study.ask()
    score = objective(fourth)
    assert score > 0.5
    study.tell(second, 0.9)
    study.tell(fourth, score)
    fifth = study.ask()
    with pytest.raises(_SurplusTrial):
        objective(fifth)


def test_a_first_trial_enqueued_twice_by_racing_workers_is_fitted_once():
    """Two workers opening a fresh study at once both enqueue its first trials
    (``skip_if_exists`` reads before it writes): the second copy is surplus."""
    from sklearn.datasets import load_iris

    from sklearn_rfcnn.search._scheduler import _SurplusTrial, is_surplus

    X, y = load_iris(return_X_y=True)
    search = c_search(c_range=(0.1, 10), n_trials=3, cv=2)
    splits, _ = search._splits(X, y, None)
    objective = search._make_objective(X, y, splits, {})
    study = create_or_load_study(make_storage("memory"), "race")
    for _ in range(2):  # what each worker found missing and wrote
        study.enqueue_trial({"C": 1.0}, skip_if_exists=False)
    first, copy = study.ask(), study.ask()
    assert not is_surplus(first, 3)
    assert is_surplus(copy, 3) and is_surplus(copy, None)
    with pytest.raises(_SurplusTrial):
        objective(copy)
    study.tell(copy, state=TrialState.FAIL)
    study.tell(first, objective(first))
    third = study.ask()  # sampled: not a copy, and a place is still free
    assert not is_surplus(third, 3)
    assert objective(third) > 0.5


class _SlowLogisticRegression(LogisticRegression):
    """Half a second per fit, so that a second worker process has time to start."""

    def fit(self, X, y, sample_weight=None):
        time.sleep(0.5)
        return super().fit(X, y, sample_weight=sample_weight)


def test_fit_with_two_worker_processes_on_the_default_journal(tmp_path):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    search = c_search(
        _SlowLogisticRegression(max_iter=300),
        c_range=(1e-3, 1e3),
        n_trials=12,
        cv=2,
        n_jobs=2,
        data_home=str(tmp_path),
        random_state=0,
        pruning=False,
    ).fit(X, y)
    assert search.n_trials_ == 12
    assert (tmp_path / "optuna" / f"{search.study_name_}.journal").is_file()
    complete = _assert_exact(search.study_, 12)
    pids = {int(t.user_attrs["rfcnn:worker"].rsplit(":", 1)[1]) for t in complete}
    # this process is worker 0 (already imported, data loaded); one loky
    # process starts for the second worker
    assert len(pids) == 2
    assert os.getpid() in pids
    assert search.predict(X).shape == (150,)


@pytest.mark.postgres
def test_killed_worker_trial_is_rerun_on_postgresql(tmp_path, postgres_url):
    _kill_and_rerun(tmp_path, postgres_url)


THREADS_SCRIPT = textwrap.dedent(
    """
    import json, os, tempfile
    from optuna.distributions import FloatDistribution
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.datasets import load_iris
    from threadpoolctl import threadpool_info
    from sklearn_rfcnn.search import RFOptunaSearchCV
    from sklearn_rfcnn.utils._parallel import threads_per_worker

    class Threads(ClassifierMixin, BaseEstimator):
        def __init__(self, C=1.0):
            self.C = C

        def fit(self, X, y):
            import time
            time.sleep(0.3)  # so that both workers get trials
            self.classes_ = sorted(set(y))
            return self

        def score(self, X, y):  # the trial's value: the threads it may use
            return max(p["num_threads"] for p in threadpool_info())

    X, y = load_iris(return_X_y=True)
    search = RFOptunaSearchCV(
        Threads(), {"C": FloatDistribution(0.1, 10)}, n_trials=10, cv=2,
        n_jobs=2, storage=os.path.join(tempfile.mkdtemp(), "s.journal"),
        random_state=0, pruning=False, refit=False,
    ).fit(X, y)
    print(json.dumps({
        "pids": len({t.user_attrs["rfcnn:worker"] for t in search.study_.trials}),
        "values": sorted({t.value for t in search.study_.trials}),
        "expected": threads_per_worker(2),
    }))
    """
)


def test_workers_share_the_cores_when_no_thread_count_is_set(tmp_path):
    """Without OMP_NUM_THREADS, this process and its worker split the cores."""
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["pids"] == 2  # this process and one loky worker
    # every trial, in either process, saw the same share of the cores
    assert result["values"] == [float(result["expected"])], result
