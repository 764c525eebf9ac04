"""Where a study lives: embedded journal files, RDB URLs, memory.

Three routes, after Optuna's "Easy Parallelization" guide:

* ``storage=None`` or a file path: an Optuna journal file (one append-only
  log guarded by a file lock), safe for several processes on one machine.
  The default file is ``<data_home>/optuna/<study_name>.journal`` with
  ``data_home`` from the argument, else ``$RFCNN_DATA_HOME``, else
  ``~/rfcnn_data``.  A worker killed while appending leaves a last record
  cut short; the next append, under the journal's lock, moves those bytes to
  ``<journal>.torn`` and writes after the last complete record, so every
  finished trial stays readable (Optuna's own file backend would append to
  the torn line and make the whole journal unreadable).
* an RDB URL (``postgresql://``, ``mysql://``, ``sqlite:///``): Optuna's
  :class:`~optuna.storages.RDBStorage`, for workers on many machines.  A
  PostgreSQL URL without a driver (``postgresql://`` or ``postgres://``) is
  given the driver that is installed: ``postgresql+psycopg2://`` (the
  ``postgres`` extra installs psycopg2-binary), else ``postgresql+psycopg://``
  when only psycopg 3 is there.  SQLAlchemy 2.1 alone would pick psycopg 3 for
  ``postgresql://`` (see :func:`resolve_rdb_url`).
* ``"memory"``: an in-process study (threads only; nothing is written).

On file and RDB storages every running trial records a heartbeat; a trial
whose worker died (no heartbeat for ``grace_period`` seconds) is failed by the
next worker that looks and re-queued with the same parameters
(:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`), so it is re-run,
not lost.  Optuna's own journal storage has no heartbeat; the subclass here
adds one by stamping the time into a trial system attribute.
"""

import importlib.util
import json
import os
import random
import stat
import time
import warnings
from pathlib import Path

from sklearn_rfcnn.exceptions import DataError, ParameterError, RFCNNWarning
from sklearn_rfcnn.search._spaces import _import_optuna

__all__ = [
    "HEARTBEAT_ATTR",
    "TORN_SUFFIX",
    "create_or_load_study",
    "get_data_home",
    "make_storage",
    "resolve_rdb_url",
    "storage_kind",
]

#: Trial system attribute holding the last heartbeat (POSIX time) on journal files.
HEARTBEAT_ATTR = "rfcnn:heartbeat"

_RDB_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgres",
    "mysql",
    "mariadb",
    "oracle",
    "mssql",
)
_MEMORY = ("memory", ":memory:")

#: What to install for each SQLAlchemy driver (its ``dialect.driver``).
_DRIVER_PACKAGES = {
    "psycopg2": "pip install 'sklearn-rfcnn[postgres]' (psycopg2-binary)",
    "psycopg": "pip install 'psycopg[binary]'",
    "pg8000": "pip install pg8000",
    "asyncpg": "pip install asyncpg",
    "mysqldb": "pip install mysqlclient",
    "pymysql": "pip install PyMySQL",
    "mysqlconnector": "pip install mysql-connector-python",
    "mariadbconnector": "pip install mariadb",
    "oracledb": "pip install oracledb",
    "cx_oracle": "pip install cx_Oracle",
    "pyodbc": "pip install pyodbc",
    "pymssql": "pip install pymssql",
}


def get_data_home(data_home=None):
    """Return the library's data folder, creating it if needed.

    Parameters
    ----------
    data_home : path-like, default=None
        Explicit folder. ``None`` reads ``$RFCNN_DATA_HOME`` and falls back to
        ``~/rfcnn_data``.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     get_data_home(tmp).is_dir()
    True
    """
    from sklearn_rfcnn.datasets import get_data_home as _datasets_home

    return Path(_datasets_home(data_home))


def storage_kind(storage):
    """Classify ``storage``: ``"journal"``, ``"rdb"``, ``"memory"`` or ``"object"``.

    Examples
    --------
    >>> storage_kind(None), storage_kind("memory"), storage_kind("sqlite:///x.db")
    ('journal', 'memory', 'rdb')
    >>> storage_kind("/tmp/study.journal")
    'journal'
    """
    if storage is None:
        return "journal"
    if isinstance(storage, str) and storage in _MEMORY:
        return "memory"
    if isinstance(storage, str) and "://" in storage:
        scheme = storage.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in _RDB_SCHEMES:
            raise ParameterError(
                f"storage={storage!r}: unknown URL scheme {scheme!r}; use an RDB URL "
                "(postgresql://, mysql://, sqlite:///), a journal file path, "
                "'memory', or None."
            )
        return "rdb"
    if isinstance(storage, str | os.PathLike):
        return "journal"
    optuna = _import_optuna()
    if isinstance(storage, optuna.storages.BaseStorage):
        return "object"
    raise ParameterError(
        f"storage={storage!r} must be None, 'memory', a journal file path, an RDB "
        "URL, or an optuna.storages.BaseStorage."
    )


def _importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_driver(url, shown):
    """Import the DBAPI module of ``url``'s driver; ImportError naming the package."""
    from sqlalchemy.exc import NoSuchModuleError

    try:
        dialect = url.get_dialect()
    except NoSuchModuleError as exc:
        backend, _, driver = url.drivername.partition("+")
        raise ParameterError(
            f"storage={shown!r}: SQLAlchemy has no driver {driver or backend!r} "
            f"for {backend!r} ({exc}); write the URL as postgresql://..., "
            "postgresql+psycopg2://..., mysql+pymysql://... or sqlite:///...."
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        hint = _DRIVER_PACKAGES.get(dialect.driver, f"pip install {dialect.driver}")
        raise ImportError(
            f"storage={shown!r} needs the {dialect.driver} database driver, which "
            f"is not installed ({exc}); install it with: {hint}"
        ) from exc


def resolve_rdb_url(storage):
    """The RDB URL handed to SQLAlchemy, with an installed driver named.

    A PostgreSQL URL without a driver (``postgresql://...`` as the README
    writes it, or ``postgres://...``) becomes ``postgresql+psycopg2://...``
    when psycopg2 is installed (the ``postgres`` extra installs
    psycopg2-binary), else ``postgresql+psycopg://...`` when only psycopg 3
    is; SQLAlchemy 2.1 by itself maps ``postgresql://`` to psycopg 3.  Other
    URLs are returned as given.  The driver's module is imported, so a
    missing one fails here, with the package to install.

    Parameters
    ----------
    storage : str
        An RDB URL.

    Returns
    -------
    url : str
        The URL, password included, to pass to SQLAlchemy or Optuna.

    Raises
    ------
    ImportError
        The driver is not installed; the message names the package.
    ParameterError
        The URL cannot be parsed or names a driver SQLAlchemy does not know.

    Examples
    --------
    >>> resolve_rdb_url("sqlite:///study.db")
    'sqlite:///study.db'
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except ArgumentError as exc:
        raise ParameterError(
            f"storage={storage!r} is not a valid database URL ({exc}); write it "
            "as postgresql://user:password@host:5432/db."
        ) from None
    shown = url.render_as_string(hide_password=True)
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgres":  # the Heroku spelling; SQLAlchemy rejects it
        backend = "postgresql"
        url = url.set(drivername="postgresql" + (f"+{driver}" if driver else ""))
    if backend == "postgresql" and not driver:
        use = "psycopg2"
        if not _importable("psycopg2") and _importable("psycopg"):
            use = "psycopg"
        url = url.set(drivername=f"postgresql+{use}")
    _check_driver(url, shown)
    if url.drivername == make_url(storage).drivername:
        return storage
    return url.render_as_string(hide_password=False)


def __getattr__(name):
    # The classes are built on first use so that importing this module does
    # not import optuna; resolving them by name keeps fitted searches picklable.
    if name == "HeartbeatJournalStorage":
        return _heartbeat_journal_class()
    if name == "RepairingJournalFileBackend":
        return _journal_backend_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Where the bytes of a torn last record go: ``<journal>`` + this suffix.
TORN_SUFFIX = ".torn"


def _cut_torn_tail(path):
    """Move an unfinished last record of the journal ``path`` aside.

    Optuna writes each record as one line ending in a newline.  A worker
    killed mid-write leaves a last line without one; Optuna's file backend
    would append the next record to it, making one undecodable line that
    stops every later reader.  Called under the journal's lock (so no
    live writer is mid-record), this cuts the file back to its last complete
    line and appends the cut bytes to ``path + ".torn"``, so nothing is lost
    and every finished trial stays readable.

    Returns
    -------
    n_cut : int
        Bytes moved aside (0 when the file ends with a complete record).
    """
    with open(path, "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return 0
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return 0
        pos, block = end, 1 << 16
        cut = 0
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            pos = start
        f.seek(cut)
        torn = f.read(end - cut)
        with open(os.fspath(path) + TORN_SUFFIX, "ab") as side:
            side.write(torn + b"\n")
            side.flush()
            os.fsync(side.fileno())
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(
        f"the study journal {os.fspath(path)!r} ended in a record cut short (a "
        f"worker was killed while writing); its {len(torn)} bytes were moved to "
        f"{os.fspath(path) + TORN_SUFFIX!r} and every complete record kept.",
        RFCNNWarning,
        stacklevel=3,
    )
    return len(torn)


def _journal_backend_class():
    """Optuna's journal file backend that isolates a torn last record."""
    cached = globals().get("_JOURNAL_BACKEND")
    if cached is not None:
        return cached
    _import_optuna()
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class RepairingJournalFileBackend(JournalFileBackend):
        """``JournalFileBackend`` whose appends first cut a torn last record.

        Reading errors (a record that is not JSON in the middle of the file)
        are :class:`~sklearn_rfcnn.exceptions.DataError` naming the journal.
        """

        def append_logs(self, logs):
            with get_lock_file(self._lock):
                _cut_torn_tail(self._file_path)
                text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs)
                with open(self._file_path, "ab") as f:
                    f.write((text + "\n").encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())

        def read_logs(self, log_number_from):
            try:
                yield from super().read_logs(log_number_from)
            except (ValueError, UnicodeDecodeError) as exc:
                raise DataError(
                    f"the study journal {self._file_path!r} holds a damaged record "
                    f"before its end ({type(exc).__name__}: {exc}); it was written "
                    "by a tool that does not isolate torn records. Move the bad "
                    "line out of the file (keep a copy) to recover the other "
                    "trials."
                ) from None

    RepairingJournalFileBackend.__module__ = __name__
    RepairingJournalFileBackend.__qualname__ = "RepairingJournalFileBackend"
    globals()["_JOURNAL_BACKEND"] = RepairingJournalFileBackend
    return RepairingJournalFileBackend


def _heartbeat_journal_class():
    """Build the journal storage class with heartbeats (optuna imported lazily)."""
    cached = globals().get("_HEARTBEAT_JOURNAL")
    if cached is not None:
        return cached
    optuna = _import_optuna()
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import TrialState

    class HeartbeatJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
        """Optuna's journal storage plus a heartbeat kept in a system attribute."""

        def __init__(
            self,
            log_storage,
            *,
            heartbeat_interval=None,
            grace_period=None,
            heartbeat_stale_trial_callback=None,
        ):
            super().__init__(log_storage)
            self.heartbeat_interval = heartbeat_interval
            self.grace_period = grace_period
            self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

        def record_heartbeat(self, trial_id):
            try:
                self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
            except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
                # Another worker declared this trial stale and failed it.
                pass

        def _get_stale_trial_ids(self, study_id):
            if self.heartbeat_interval is None:
                return []
            grace = self.grace_period or 2 * self.heartbeat_interval
            now = time.time()
            stale = []
            for trial in self.get_all_trials(
                study_id, deepcopy=False, states=(TrialState.RUNNING,)
            ):
                last = trial.system_attrs.get(HEARTBEAT_ATTR)
                if last is None and trial.datetime_start is not None:
                    last = trial.datetime_start.timestamp()
                if last is not None and now - last > grace:
                    stale.append(trial._trial_id)
            return stale

        def get_heartbeat_interval(self):
            return self.heartbeat_interval

        def get_heartbeat_stale_trial_callback(self):
            return self.heartbeat_stale_trial_callback

    HeartbeatJournalStorage.__module__ = __name__
    HeartbeatJournalStorage.__qualname__ = "HeartbeatJournalStorage"
    globals()["_HEARTBEAT_JOURNAL"] = HeartbeatJournalStorage
    return HeartbeatJournalStorage


def make_storage(
    storage=None,
    *,
    study_name=None,
    data_home=None,
    heartbeat_interval=60,
    grace_period=None,
    max_retry=3,
):
    """Turn a ``storage`` argument into an Optuna storage object.

    Parameters
    ----------
    storage : None, "memory", path-like, str URL or optuna storage, default=None
        See the module docstring. An Optuna storage object is returned as is.
    study_name : str, default=None
        Names the default journal file (needed when ``storage`` is None).
    data_home : path-like, default=None
        Folder of the default journal file (see :func:`get_data_home`).
    heartbeat_interval : int > 0 or None, default=60
        Seconds between heartbeats of a running trial (file and RDB
        storages); ``None`` switches heartbeats and stale-trial retries off.
    grace_period : int > 0, default=None
        Seconds without a heartbeat after which a running trial counts as
        dead; ``None`` means twice the interval.
    max_retry : int >= 0 or None, default=3
        How often a dead trial is re-queued with the same parameters.

    Returns
    -------
    storage : optuna.storages.BaseStorage

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     s = make_storage(os.path.join(tmp, "s.journal"), heartbeat_interval=5)
    ...     type(s).__name__, s.get_heartbeat_interval()
    ('HeartbeatJournalStorage', 5)
    """
    optuna = _import_optuna()
    with warnings.catch_warnings():
        # heartbeats and their retry callback are flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_storage(
            optuna,
            storage,
            study_name=study_name,
            data_home=data_home,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
        )


def _make_storage(
    optuna,
    storage,
    *,
    study_name,
    data_home,
    heartbeat_interval,
    grace_period,
    max_retry,
):
    kind = storage_kind(storage)
    if kind == "object":
        return storage
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    callback = None
    if heartbeat_interval is not None:
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    if kind == "rdb":
        url = resolve_rdb_url(storage)
        engine_kwargs = {}
        if not url.startswith("sqlite"):
            engine_kwargs = {"pool_pre_ping": True}
        return _retry_integrity(
            lambda: optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=callback,
            )
        )
    if storage is None:
        if study_name is None:
            raise ParameterError(
                "the default journal storage needs a study name to name its file."
            )
        path = get_data_home(data_home) / "optuna" / f"{study_name}.journal"
    else:
        path = Path(os.fspath(storage)).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise ParameterError(
            f"storage={os.fspath(path)!r} is not a regular file (a folder, device "
            "or FIFO); name a journal file."
        )
    cls = _heartbeat_journal_class()
    return cls(
        _journal_backend_class()(str(path)),
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=callback,
    )


def _is_creation_race(exc):
    """Whether ``exc`` is the error two workers get creating one study or schema."""
    optuna = _import_optuna()
    if isinstance(exc, optuna.exceptions.DuplicatedStudyError):
        return True
    try:
        import sqlalchemy.exc
    except ImportError:  # pragma: no cover - sqlalchemy comes with optuna
        return False
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True
    if isinstance(
        exc, sqlalchemy.exc.ProgrammingError | sqlalchemy.exc.OperationalError
    ):
        # concurrent schema creation: "table ... already exists", duplicate
        # type/key on PostgreSQL, or SQLite's writer lock
        text = str(exc).lower()
        return any(k in text for k in ("already exists", "duplicate", "locked"))
    return False


def _retry_integrity(make, attempts=8):
    """Call ``make`` again after a creation race, with a random back-off."""
    for attempt in range(attempts):
        try:
            return make()
        except Exception as exc:
            if not _is_creation_race(exc) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def create_or_load_study(storage, study_name, *, sampler=None, pruner=None):
    """Create a maximising study, or join it if it exists; safe under races.

    Several workers creating the same study on a fresh database race inside
    Optuna (``IntegrityError`` on SQLite and PostgreSQL, or
    ``DuplicatedStudyError``); the loser retries and then loads the study.

    Parameters
    ----------
    storage : optuna.storages.BaseStorage
    study_name : str
    sampler, pruner : optuna sampler and pruner, default=None

    Returns
    -------
    study : optuna.Study

    Examples
    --------
    >>> s = make_storage("memory")
    >>> a = create_or_load_study(s, "demo")
    >>> b = create_or_load_study(s, "demo")
    >>> a._study_id == b._study_id
    True
    """
    optuna = _import_optuna()

    def create():
        # load_if_exists covers a study that is already there; a creation
        # race (two workers at once) raises and is retried, then loads.
        return optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )

    study = _retry_integrity(create)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ParameterError(
            f"study {study_name!r} exists and minimises; RFOptunaSearchCV maximises "
            "scikit-learn scores. Use another study_name."
        )
    return study
