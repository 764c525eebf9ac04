"""Atomic writes of model folders and output files, and checks done before work.

A model folder (an estimator's ``save``, :func:`sklearn_rfcnn.save_pipeline`,
``rfcnn fit``) is written whole into a scratch folder beside the target and
then moved into place:

1. write everything into ``.NAME.tmp-PID-XXXX`` (files are fsynced);
2. if ``NAME`` exists, rename it to the backup ``.NAME.old-PID-XXXX``;
3. rename the scratch folder to ``NAME`` (and fsync the parent folder);
4. delete the backup.

Each rename is atomic, so ``NAME`` always holds either the complete old or
the complete new folder -- except in the instant between steps 2 and 3,
when ``NAME`` is briefly absent.  A process killed exactly there leaves the
complete old folder under its backup name; :func:`readable_folder` (used by
every ``load``) then reads that backup, so a reader still sees the old model,
and the next save of ``NAME`` removes the leftovers of dead writers.  A
symlink swap would close that instant but turn every model folder into a
link, which copying tools, archives and Windows handle badly; the backup
rename keeps model folders plain folders.

Readers that race with a writer (read ``pipeline.json`` of the old folder,
then a weights file of the new one) are handled by :func:`read_consistently`:
it notes the folder's identity (device and inode) before and after reading
and reads again if it changed.
"""

import errno
import json
import os
import shutil
import stat
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.utils._files import MAX_JSON_BYTES, read_regular

__all__ = [
    "atomic_file",
    "atomic_folder",
    "check_writable_file",
    "check_writable_folder",
    "describe_missing",
    "read_consistently",
    "read_json_file",
    "readable_folder",
]

_TMP = ".tmp-"
_OLD = ".old-"
#: Leftovers of a writer whose process is gone are removed only when older
#: than this (seconds), so a writer on another machine sharing the folder is
#: never disturbed while it works.
_STALE_AGE = 600.0


def _scratch(path, tag):
    return path.parent / f".{path.name}{tag}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _fsync_path(path, *, directory=False):
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync folders
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder):
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_path(os.path.join(root, name))
        _fsync_path(root, directory=True)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists
        return True
    return True


def _leftovers(path, tag):
    """Scratch or backup folders of ``path`` (newest first), with their pid."""
    prefix = f".{path.name}{tag}"
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = int(pid_text) if pid_text.isdigit() else None
        found.append((mtime, Path(entry.path), pid))
    found.sort(key=lambda item: item[0], reverse=True)
    return found


def _remove_stale(path):
    now = time.time()
    for tag in (_TMP, _OLD):
        for mtime, leftover, pid in _leftovers(path, tag):
            if pid == os.getpid() or (pid is not None and _pid_alive(pid)):
                continue
            if now - mtime < _STALE_AGE and tag == _TMP:
                continue
            if tag == _OLD and not path.exists():
                continue  # the only complete copy of a model: keep it
            shutil.rmtree(leftover, ignore_errors=True)


def describe_missing(path):
    """Why ``path`` cannot be opened: ``"does not exist"``, a symlink loop...

    Parameters
    ----------
    path : path-like

    Returns
    -------
    reason : str
        A short phrase to put after the path in an error message.
    """
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (a link that points back to itself)"
        if exc.errno == errno.ENOENT and os.path.lexists(path):
            return f"is a broken symbolic link (to {os.readlink(path)!r})"
        if exc.errno == errno.ENOENT:
            return "does not exist"
        if exc.errno == errno.ENOTDIR:
            return "does not exist (a folder on its path is a file)"
        return f"cannot be opened ({exc.strerror})"
    if os.path.isdir(path):
        return "is a folder, not a file"
    return "is not a regular file"


def _nearest_existing(path):
    probe = Path(os.path.abspath(path))
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _probe_folder(folder, what, path):
    """Raise ParameterError unless a file can be created in ``folder``."""
    if not folder.is_dir():
        raise ParameterError(
            f"{what} {os.fspath(path)!r} cannot be created: "
            f"{os.fspath(folder)!r} {describe_missing(folder)}; choose a path "
            "inside a writable folder."
        )
    try:
        probe = tempfile.mkdtemp(prefix=".rfcnn-probe-", dir=folder)
    except OSError as exc:
        raise ParameterError(
            f"{what} {os.fspath(path)!r} cannot be written: folder "
            f"{os.fspath(folder)!r} is not writable ({exc.strerror}); choose a "
            "path in a writable folder."
        ) from None
    os.rmdir(probe)


def check_writable_folder(path, *, what="folder"):
    """Check, before any work, that a folder can be created or replaced at ``path``.

    Parameters
    ----------
    path : path-like
        The folder to write; it may not exist yet (its missing parents are
        created when it is written).
    what : str, default="folder"
        How error messages name it (e.g. ``"--output"``).

    Raises
    ------
    ParameterError
        ``path`` is a file (or another non-folder), or no file can be created
        beside it (read-only or special file systems such as ``/sys``).
    """
    path = Path(os.fspath(path))
    if os.path.lexists(path) and not path.is_dir():
        if os.path.exists(path):
            raise ParameterError(
                f"{what} {os.fspath(path)!r} is a file, not a folder; name a "
                "folder path (a new one, or a model folder to replace)."
            )
        raise ParameterError(f"{what} {os.fspath(path)!r} {describe_missing(path)}.")
    _probe_folder(_nearest_existing(path.parent), what, path)


def check_writable_file(path, *, what="output file"):
    """Check, before any work, that the file ``path`` can be written.

    Parameters
    ----------
    path : path-like
    what : str, default="output file"
        How error messages name it.

    Raises
    ------
    ParameterError
        ``path`` is a folder, its folder does not exist or is not writable,
        or it is a special file that refuses writes (e.g. under ``/proc``).
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        raise ParameterError(
            f"{what} {os.fspath(path)!r} is a folder; name a file to write."
        )
    if os.path.lexists(path) and not os.path.exists(path):
        raise ParameterError(f"{what} {os.fspath(path)!r} {describe_missing(path)}.")
    if not path.parent.is_dir() and os.fspath(path.parent):
        raise ParameterError(
            f"the folder of {what} {os.fspath(path)!r} "
            f"{describe_missing(path.parent)}; create it first."
        )
    if path.exists() and not stat.S_ISREG(os.stat(path).st_mode):
        # a device or a pipe (e.g. /dev/null): it is written in place
        try:
            with open(path, "ab"):
                pass
        except OSError as exc:
            raise ParameterError(
                f"{what} {os.fspath(path)!r} cannot be written ({exc.strerror})."
            ) from None
        return
    _probe_folder(path.parent if os.fspath(path.parent) else Path("."), what, path)


@contextmanager
def atomic_file(path, mode="wb"):
    """Write the file ``path`` through a scratch file renamed into place.

    Yields the scratch path (its suffix is ``path``'s, so writers that look
    at it are content); readers see the old file or the complete new one.
    Special files (devices, pipes) are written in place.

    Parameters
    ----------
    path : path-like
    mode : str, default="wb"
        Unused; kept for symmetry with :func:`open`.

    Yields
    ------
    scratch : pathlib.Path
    """
    path = Path(os.fspath(path))
    if path.exists() and not stat.S_ISREG(os.stat(path).st_mode):
        yield path
        return
    scratch = path.parent / f".{path.stem}{_TMP}{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        yield scratch
        _fsync_path(scratch)
        os.replace(scratch, path)
    finally:
        if os.path.lexists(scratch):
            os.unlink(scratch)


def _replace_folder(tmp, path):
    """Move the complete folder ``tmp`` to ``path`` (see the module docstring)."""
    _fsync_tree(tmp)
    if os.path.lexists(path):
        backup = _scratch(path, _OLD)
        os.rename(path, backup)
        try:
            os.rename(tmp, path)
        except OSError:
            os.rename(backup, path)
            raise
        _fsync_path(path.parent, directory=True)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(tmp, path)
        _fsync_path(path.parent, directory=True)


@contextmanager
def atomic_folder(path, *, check=None):
    """Write the folder ``path`` whole, through a scratch folder beside it.

    Parameters
    ----------
    path : path-like
        The folder to create or replace.
    check : callable, default=None
        Called with ``path`` right before the swap (e.g. to make sure no
        other kind of folder appeared there meanwhile).

    Yields
    ------
    scratch : pathlib.Path
        An empty folder to write into; it becomes ``path`` when the block
        ends without an exception, and is removed otherwise.
    """
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = _scratch(path, _TMP)
    tmp.mkdir()
    try:
        yield tmp
        if check is not None:
            check(path)
        _replace_folder(tmp, path)
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def readable_folder(path):
    """The folder to read for the model folder ``path``.

    ``path`` itself when it is a folder; when it is absent because a writer
    was stopped between its two renames, the complete backup it left.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    folder : pathlib.Path or None
        None when there is nothing to read.
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        return path
    if os.path.lexists(path):
        return None
    for _mtime, backup, _pid in _leftovers(path, _OLD):
        if backup.is_dir():
            return backup
    return None


def _identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def read_consistently(path, read, *, attempts=5):
    """Call ``read(folder)`` until the folder did not change while it was read.

    Parameters
    ----------
    path : path-like
        The model folder.
    read : callable
        ``read(folder)`` loads the model from ``folder``.
    attempts : int, default=5

    Returns
    -------
    result
        What ``read`` returned.

    Raises
    ------
    DataError
        Nothing readable is at ``path`` (the message says why).
    """
    path = Path(os.fspath(path))
    for attempt in range(attempts):
        folder = readable_folder(path)
        if folder is None:
            raise DataError(
                f"model folder {os.fspath(path)!r} {describe_missing(path)}"
                + (
                    "; pass the folder itself."
                    if os.path.isfile(path)
                    else "; check the path."
                )
            )
        before = _identity(folder)
        try:
            result = read(folder)
        except (DataError, OSError):
            if attempt + 1 < attempts and _identity(folder) != before:
                continue
            if attempt + 1 < attempts and folder != path and path.is_dir():
                continue  # the backup vanished: the new folder is in place
            raise
        if _identity(folder) == before and (folder == path or not path.is_dir()):
            return result
    return result


def read_json_file(path, where, *, max_bytes=MAX_JSON_BYTES):
    """The JSON document in ``path``; a DataError naming ``where`` if unreadable.

    Not UTF-8, or not valid JSON (a truncated or damaged file), are the two
    ways a saved model's configuration fails to parse; both are one clear
    message instead of a raw ``UnicodeDecodeError``/``JSONDecodeError``.  The
    file must be a regular one of at most ``max_bytes``
    (:func:`~sklearn_rfcnn.utils._files.read_regular`), and a document nested
    beyond Python's recursion limit is a DataError too.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.json")
    >>> _ = open(path, "w").write('{"a": 1}')
    >>> read_json_file(path, "c.json")
    {'a': 1}
    """
    data = read_regular(path, where, max_bytes=max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{where!r} is not UTF-8 text ({exc.reason}).") from None
    except RecursionError:
        raise DataError(
            f"{where!r} is nested too deeply to be a file the library wrote; "
            "it is damaged or was crafted."
        ) from None
    except ValueError as exc:
        raise DataError(
            f"{where!r} is not valid JSON ({exc}); the file is truncated or damaged."
        ) from None
