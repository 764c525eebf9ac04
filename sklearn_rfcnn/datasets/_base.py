"""Where datasets live on disk, and small helpers shared by the loaders.

The data home is the folder that holds rendered and cached datasets (and, by
convention, local copies of public datasets).  It is ``~/rfcnn_data`` unless the
environment variable ``RFCNN_DATA_HOME`` or an explicit ``data_home`` argument
says otherwise.
"""

import os
import shutil
import tempfile
from pathlib import Path

from sklearn_rfcnn.exceptions import DataError

__all__ = ["atomic_write_bytes", "clear_data_home", "get_data_home"]

#: Environment variable that overrides the default data home.
DATA_HOME_ENV = "RFCNN_DATA_HOME"


def get_data_home(data_home=None):
    """Return the folder where sklearn-rfcnn keeps its datasets, creating it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use.  ``None`` means the environment variable
        ``RFCNN_DATA_HOME`` when set, else ``~/rfcnn_data``.  A leading ``~``
        is expanded.

    Returns
    -------
    data_home : str
        The absolute path of the (now existing) folder.

    Raises
    ------
    DataError
        The path is a file, or the folder cannot be created.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     home = get_data_home(os.path.join(tmp, "rfcnn"))
    ...     os.path.isdir(home)
    True
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or os.path.join("~", "rfcnn_data")
    path = Path(os.fspath(data_home)).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise DataError(
            f"data_home {str(path)!r} is a file, not a folder; pass data_home= "
            f"(or set ${DATA_HOME_ENV} to) a folder, or move the file away."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the data home {str(path)!r} ({exc}); pass data_home= "
            f"(or set ${DATA_HOME_ENV} to) a folder you can write to."
        ) from exc
    return str(path)


def clear_data_home(data_home=None):
    """Delete the whole data home folder and everything cached in it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        As in :func:`get_data_home`.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     home = get_data_home(os.path.join(tmp, "rfcnn"))
    ...     clear_data_home(home)
    ...     os.path.exists(home)
    False
    """
    shutil.rmtree(get_data_home(data_home))


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` so that readers never see a partial file.

    The bytes go to a unique temporary file in the same folder, which then
    replaces ``path`` in one ``os.replace`` step; concurrent writers of the same
    content are therefore safe.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    data : bytes
        Content.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "x.bin")
    ...     atomic_write_bytes(p, b"abc")
    ...     open(p, "rb").read()
    b'abc'
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
