"""Reading files that may come from strangers: regular files only, bounded.

Every file the library reads from a model folder, a store, a manifest or a
journal goes through :func:`open_regular` or :func:`read_regular`:

* it is opened without blocking (``O_NONBLOCK``: opening a FIFO with no
  writer would otherwise wait for ever) and checked with ``fstat`` on the open
  descriptor, so a device (``/dev/zero``), a FIFO or a socket is refused, also
  behind a symbolic link, and the check cannot race with a swap of the path;
* it is read only up to a bound: the size the format declares where it does
  (a weights file's recorded size), else a fixed cap for its kind, and never
  more than the size ``fstat`` reported (a file that grows while it is read
  is refused).

Errors are :class:`~sklearn_rfcnn.exceptions.DataError` naming the file.
"""

import errno
import os
import stat

from sklearn_rfcnn.exceptions import DataError

__all__ = ["MAX_JSON_BYTES", "open_regular", "read_regular"]

#: The JSON documents the library writes (configurations, manifests, store
#: indexes) stay far below this; a larger one is refused before it is read.
MAX_JSON_BYTES = 256 << 20

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode):
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path, where=None):
    """Open ``path`` for binary reading if, and only if, it is a regular file.

    Parameters
    ----------
    path : path-like
    where : str, default=None
        How error messages name the file (default: ``path``).

    Returns
    -------
    file : io.BufferedReader
        Open for reading; close it (use ``with``).

    Raises
    ------
    DataError
        The file is missing, cannot be opened, or is a device, FIFO, socket
        or folder (also when reached through a symbolic link).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> _ = open(path, "wb").write(b"abc")
    >>> with open_regular(path) as f:
    ...     f.read()
    b'abc'
    >>> try:
    ...     open_regular("/dev/zero", "weights.pt")
    ... except ValueError as exc:  # a DataError
    ...     print(exc)
    'weights.pt' is a character device, not a regular file; replace it with ...
    """
    where = os.fspath(path) if where is None else where
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            problem = "does not exist"
        elif exc.errno == errno.ELOOP:
            problem = "is a symbolic link loop"
        elif exc.errno == errno.ENXIO:
            problem = "is a socket, not a regular file"
        else:
            problem = f"cannot be opened ({exc.strerror})"
        raise DataError(f"{where!r} {problem}.") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(
                f"{where!r} is {_kind(mode)}, not a regular file; replace it with "
                "the file itself."
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, where=None, *, max_bytes=MAX_JSON_BYTES, size=None):
    """The bytes of the regular file ``path``, read within a bound.

    Parameters
    ----------
    path : path-like
    where : str, default=None
        How error messages name the file (default: ``path``).
    max_bytes : int, default=MAX_JSON_BYTES
        Refuse a larger file before reading it.
    size : int, default=None
        The size the format declares; a file of another size is refused
        before it is read.

    Returns
    -------
    data : bytes

    Raises
    ------
    DataError
        As :func:`open_regular`, or the file is larger than ``max_bytes``,
        not of the declared ``size``, or changed size while it was read.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> _ = open(path, "wb").write(b"abcd")
    >>> read_regular(path, size=4)
    b'abcd'
    >>> try:
    ...     read_regular(path, "a.bin", max_bytes=2)
    ... except ValueError as exc:
    ...     print(exc)
    'a.bin' holds 4 bytes, more than the 2 this kind of file may hold; ...
    """
    where = os.fspath(path) if where is None else where
    with open_regular(path, where) as f:
        actual = os.fstat(f.fileno()).st_size
        if size is not None and actual != size:
            raise DataError(
                f"{where!r} holds {actual} bytes, but {size} were recorded when it "
                "was saved; the file is truncated or was replaced."
            )
        if actual > max_bytes:
            raise DataError(
                f"{where!r} holds {actual} bytes, more than the {max_bytes} this "
                "kind of file may hold; it is not the file that was saved."
            )
        data = f.read(actual + 1)
    if len(data) != actual:
        raise DataError(
            f"{where!r} changed size while it was read ({actual} bytes, then "
            f"{len(data)}); read it again when nothing writes to it."
        )
    return data
