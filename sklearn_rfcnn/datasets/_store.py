"""An on-disk spectrogram store for data sets larger than memory.

:class:`SpectrogramStore` keeps the spectrograms of a whole data set in one
folder, computed once through a scikit-learn front end and read back one clip
or one crop at a time, so that training on MTG-Jamendo (about 180 GB of
float32 spectrograms at 22.05 kHz, hop 512, 256 mels) needs the memory of a
batch, not of the data set.

On-disk format, and why
-----------------------
One folder::

    manifest.json        store-level metadata, written once (atomic rename)
    data.bin             every clip's frames, one after the other
    chunks/<start>.json  the index of one committed chunk of clips (while building)
    index.json           the consolidated index, written when the build completes

Each clip is stored **time-major**, ``(n_frames, C, F)`` in C order, so the
frames ``start:stop`` of a clip are one contiguous byte range: a random crop
is a single ``os.pread`` of exactly its bytes.  The format was chosen by
measurement (``benchmarks/bench_store.py``, figures in
``benchmarks/README.md``) against ``np.memmap`` of the same file, a
frequency-major flat file, HDF5 through h5py (chunked and contiguous) and zarr
(chunked, with and without compression):

* cold reads (the case for a data set larger than the page cache): one
  contiguous ``pread`` per crop gave 1.2k crops/s of 431 x 256 frames from
  70-second tracks, against 0.3-0.4k through ``np.memmap`` (page-by-page
  faults; a frequency-major layout spreads a crop over the whole track),
  0.6k for chunked HDF5 and 0.3-0.4k for zarr; contiguous HDF5 was as fast
  (1.5k) but cannot be appended to, so it cannot be built resumably;
* warm reads favour ``np.memmap`` (8-14k against 4.9k crops/s: ``pread``
  pays a copy and the transpose to ``(C, F, T)``), but a memmap of a 180 GB
  file needs 180 GB of address space (under a 1 GB ``RLIMIT_AS`` the 2 GB
  store could not be mapped) and counts every touched page in the resident
  set; ``pread`` into a fresh buffer keeps both flat in the store's size,
  and 4.9k crops/s is far above what the CNN consumes;
* robustness: appending bytes and renaming a small index file are the only
  writes, so a killed build leaves at worst uncommitted bytes at the end of
  ``data.bin``, which readers never look at and a resumed build truncates.
  HDF5 files can be left unreadable by a writer killed mid-write, h5py
  handles must not cross ``fork`` (DataLoader workers) and concurrent readers
  of a file being written need SWMR mode; zarr is safe here but slow per
  crop, writes one file per chunk (about a million for MTG-Jamendo) and
  needs an extra dependency.  The flat file needs only numpy.

Crash safety
------------
Clips are computed and written ``chunk_size`` at a time.  A chunk is
*committed* by: appending its bytes to ``data.bin``, ``fsync``, then writing
its index to a temporary file, ``fsync`` and renaming it to
``chunks/<start>.json`` (a rename is atomic).  Readers only see committed
clips; a clip is either fully indexed with its bytes on disk, or invisible.
Re-running :meth:`SpectrogramStore.create` on the same folder with the same
inputs and front end resumes after the last committed chunk; different inputs,
front-end parameters or dtype are refused unless ``overwrite=True``.  A lock
file stops two builders from writing the same folder at once.
"""

import copy
import errno
import fcntl
import hashlib
import json
import os
import re
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.exceptions import AudioDecodeError, DataError, ParameterError
from sklearn_rfcnn.utils._files import open_regular, read_regular
from sklearn_rfcnn.utils._parallel import (
    close_parallel_generator,
    distributed_backend,
)

__all__ = ["SpectrogramStore", "front_end_checksum", "front_end_spec"]

FORMAT = "sklearn_rfcnn.SpectrogramStore"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_DATA = "data.bin"
_CHUNKS = "chunks"
_INDEX = "index.json"
_LOCK = ".lock"
_DTYPES = ("float32", "float16")
#: Channels or mel bands above this in a manifest's clip_shape are refused.
_MAX_BANDS = 1 << 16
#: Parameters that change speed or chattiness but never the numbers.
_NEUTRAL_PARAMS = {"n_jobs", "verbose", "memory", "verbose_feature_names_out"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


# -----------------------------------------------------------------------------
# front-end identity
# -----------------------------------------------------------------------------


def _json_safe(value):
    """``value`` as plain JSON data (estimators by class name, arrays as lists)."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return {"class": type(value).__name__}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, type):
        return {"type": value.__qualname__}
    return _ADDRESS.sub("", repr(value))


def front_end_spec(front_end):
    """The front end's class and ``get_params(deep=True)``, as JSON-safe data.

    Parameters that never change the output (``n_jobs``, ``verbose``,
    ``memory``) are left out, so a store built with one thread resumes with
    four.

    Parameters
    ----------
    front_end : estimator
        A scikit-learn transformer or pipeline.

    Returns
    -------
    spec : dict
        ``{"class": ..., "params": {...}}``.

    Examples
    --------
    >>> from sklearn_rfcnn.transformers import MelSpectrogram
    >>> spec = front_end_spec(MelSpectrogram(n_mels=64))
    >>> spec["class"], spec["params"]["n_mels"], "n_jobs" in spec["params"]
    ('MelSpectrogram', 64, False)
    """
    if not hasattr(front_end, "get_params"):
        raise ParameterError(
            f"front_end={front_end!r} is not a scikit-learn estimator (no "
            "get_params); pass a transformer or a Pipeline such as "
            "Pipeline([('load', AudioLoader()), ('mel', MelSpectrogram())])."
        )
    params = front_end.get_params(deep=True)
    kept = {
        k: _json_safe(v)
        for k, v in params.items()
        if k.rsplit("__", 1)[-1] not in _NEUTRAL_PARAMS
    }
    return {"class": type(front_end).__name__, "params": kept}


def _checksum(obj):
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def front_end_checksum(front_end):
    """A short, stable checksum of :func:`front_end_spec` (16 hex digits).

    Examples
    --------
    >>> from sklearn_rfcnn.transformers import MelSpectrogram
    >>> a = front_end_checksum(MelSpectrogram(n_mels=64))
    >>> a == front_end_checksum(MelSpectrogram(n_mels=64, n_jobs=4)), len(a)
    (True, 16)
    >>> a == front_end_checksum(MelSpectrogram(n_mels=128))
    False
    """
    return _checksum(front_end_spec(front_end))


def _spec_differences(stored, given, limit=8):
    """``name: stored vs given`` for the parameters that differ."""
    a, b = stored.get("params", {}), given.get("params", {})
    out = []
    if stored.get("class") != given.get("class"):
        out.append(f"class: {stored.get('class')} (store) vs {given.get('class')}")
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(
                f"{key}: {a.get(key, '<absent>')!r} (store) vs "
                f"{b.get(key, '<absent>')!r}"
            )
    more = f"; and {len(out) - limit} more" if len(out) > limit else ""
    return "; ".join(out[:limit]) + more


def _item_label(item, index):
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"X[{index}]"


def _inputs_checksum(X):
    """Checksum of the input list: paths as text, waveforms by their bytes."""
    h = hashlib.sha256()
    for item in X:
        if isinstance(item, (str, os.PathLike)):
            h.update(b"p" + os.fspath(item).encode() + b"\0")
        else:
            arr = np.ascontiguousarray(item)
            h.update(f"a{arr.dtype}{arr.shape}".encode())
            h.update(arr.tobytes())
            h.update(b"\0")
    return h.hexdigest()[:16]


# -----------------------------------------------------------------------------
# small durable-write helpers
# -----------------------------------------------------------------------------


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path, obj):
    """Write ``obj`` to ``path`` durably: temporary file, fsync, rename, fsync dir."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_json(path, what, fix):
    if not os.path.lexists(path):
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        return json.loads(read_regular(path, str(path)))
    except (DataError, ValueError, RecursionError) as exc:
        raise DataError(
            f"SpectrogramStore: {what} {str(path)!r} is corrupt or unreadable "
            f"({type(exc).__name__}: {exc}); {fix}"
        ) from None


def _manifest_checksum(manifest):
    """SHA-256 of the manifest's canonical content, its checksum excluded."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_manifest_fields(manifest, mpath, fix):
    """Every field the store uses has its type and a sane value."""

    def bad(field, problem):
        return DataError(
            f"SpectrogramStore: the manifest {str(mpath)!r}: field {field!r} "
            f"{problem}; it is damaged; {fix}"
        )

    def count(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    stored = manifest.get("checksum")
    if stored is not None and stored != _manifest_checksum(manifest):
        raise DataError(
            f"SpectrogramStore: the manifest {str(mpath)!r} does not match its "
            "checksum: a field (e.g. clip_shape or dtype) was edited after the "
            f"store was built; {fix}"
        )

    if not count(manifest["format_version"]):
        raise bad("format_version", f"is {manifest['format_version']!r}, not an int")
    shape = manifest["clip_shape"]
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(count(v) and 0 < v <= _MAX_BANDS for v in shape)
    ):
        raise bad("clip_shape", f"is {shape!r}, not [C, F] of 2 positive ints")
    if manifest["dtype"] not in _DTYPES:
        raise bad("dtype", f"is {manifest['dtype']!r}, not one of {_DTYPES}")
    if not count(manifest["n_inputs"]):
        raise bad("n_inputs", f"is {manifest['n_inputs']!r}, not a count")
    for key in ("front_end_checksum", "library_version", "inputs_checksum"):
        if not isinstance(manifest[key], str):
            raise bad(key, f"is {manifest[key]!r}, not a string")
    spec = manifest["front_end"]
    if not isinstance(spec, dict) or not isinstance(spec.get("params"), dict):
        raise bad("front_end", "is not an object of class and parameters")
    # the mel bands the front end makes are the clips' F
    n_mels = {v for k, v in spec["params"].items() if k.rsplit("__", 1)[-1] == "n_mels"}
    if len(n_mels) == 1 and n_mels != {shape[1]}:
        raise bad(
            "clip_shape",
            f"says {shape[1]} bands but the front end makes {n_mels.pop()}",
        )


def _fix_rebuild(path):
    return (
        f"re-run SpectrogramStore.create({str(path)!r}, X, front_end) with the "
        "same inputs to rebuild the damaged part (it keeps every intact "
        "committed clip), or pass overwrite=True to start again."
    )


# -----------------------------------------------------------------------------
# the index
# -----------------------------------------------------------------------------


def _is_int(value, low, high):
    return (
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    )


class _Index:
    """Offsets, lengths, CRCs and sources of the committed clips, in order."""

    def __init__(self):
        self.offsets, self.lengths, self.crc32, self.sources = [], [], [], []
        self.chunk_files = []  # (start, path) of the chunk files read
        self.complete = False

    def extend(self, entry):
        self.offsets.extend(int(v) for v in entry["offsets"])
        self.lengths.extend(int(v) for v in entry["lengths"])
        self.crc32.extend(int(v) for v in entry["crc32"])
        self.sources.extend(str(v) for v in entry["sources"])

    def __len__(self):
        return len(self.offsets)

    @classmethod
    def load(cls, root, *, strict=True):
        """Read the committed index; with ``strict=False`` stop at a damaged chunk.

        Returns the index and, with ``strict=False``, the description of the
        first problem (or None).
        """
        root = Path(root)
        index = cls()
        fix = _fix_rebuild(root)
        consolidated = root / _INDEX
        if consolidated.exists():
            try:
                doc = _read_json(consolidated, "index file", fix)
                cls._check_entry(doc, consolidated, start=0)
            except DataError as exc:
                if strict:
                    raise
                return index, str(exc)
            index.extend(doc)
            index.complete = bool(doc.get("complete", False))
            return index, None
        folder = root / _CHUNKS
        names = (
            sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
            if folder.is_dir()
            else []
        )
        for p in names:
            try:
                doc = _read_json(p, "chunk index file", fix)
                cls._check_entry(doc, p, start=len(index))
                if p.stem != f"{doc['start']:012d}":
                    raise DataError(
                        f"SpectrogramStore: chunk index file {str(p)!r} says it "
                        f"starts at clip {doc['start']}, which does not match its "
                        f"name; {fix}"
                    )
            except DataError as exc:
                if strict:
                    raise
                return index, str(exc)
            index.extend(doc)
            index.chunk_files.append((doc["start"], p))
        return index, None

    @staticmethod
    def _check_entry(doc, path, *, start):
        fix = _fix_rebuild(
            Path(path).parent if Path(path).name == _INDEX else Path(path).parent.parent
        )
        keys = ("start", "offsets", "lengths", "crc32", "sources")
        if not isinstance(doc, dict) or any(k not in doc for k in keys):
            raise DataError(
                f"SpectrogramStore: index file {str(path)!r} lacks the keys "
                f"{list(keys)}; it is not a store index or is damaged; {fix}"
            )
        if not all(isinstance(doc[k], list) for k in keys[1:]) or not (
            isinstance(doc["start"], int)
            and all(_is_int(v, 0, 1 << 62) for v in doc["offsets"])
            and all(_is_int(v, 0, (1 << 32) - 1) for v in doc["crc32"])
            and all(isinstance(v, str) for v in doc["sources"])
        ):
            raise DataError(
                f"SpectrogramStore: index file {str(path)!r} has a field of the "
                "wrong type (offsets, crc32 and lengths must be lists of "
                "non-negative integers, sources a list of strings); it is "
                f"damaged; {fix}"
            )
        n = len(doc["offsets"])
        if any(len(doc[k]) != n for k in keys[2:]):
            raise DataError(
                f"SpectrogramStore: index file {str(path)!r} has columns of "
                f"different lengths; it is damaged; {fix}"
            )
        if doc["start"] != start:
            raise DataError(
                f"SpectrogramStore: index file {str(path)!r} starts at clip "
                f"{doc['start']} but the clips before it end at {start} (a chunk "
                f"is missing); {fix}"
            )
        if any(not _is_int(v, 1, 1 << 40) for v in doc["lengths"]):
            raise DataError(
                f"SpectrogramStore: index file {str(path)!r} holds a clip length "
                f"that is not a positive integer; it is damaged; {fix}"
            )


# -----------------------------------------------------------------------------
# the store
# -----------------------------------------------------------------------------


class SpectrogramStore:
    """Spectrograms of a data set on disk, read one clip or one crop at a time.

    Build one with :meth:`create` (file paths through an
    ``AudioLoader`` → ``MelSpectrogram`` front end, in chunks, crash-safe and
    resumable), open one with ``SpectrogramStore(path)``.  A store is a
    *clip source*: ``len(store)``, ``store[i]`` (float32 ``(C, F, T_i)``),
    ``store.read(i, start, stop)`` (a crop, reading only those frames),
    ``store.lengths``, ``store.clip_shape`` and ``store.front_end_checksum``;
    the estimators accept it as ``X`` and stream random crops from it, and
    :class:`~sklearn_rfcnn.transformers.BandStandardizer` fits on it in one
    streaming pass.

    Read more in the User Guide ("Data sets larger than memory").

    Parameters
    ----------
    path : str or path-like
        The store's folder.

    Attributes
    ----------
    path : pathlib.Path
        The folder.
    lengths : np.ndarray of int64, shape (n_clips,)
        Frames of every clip (read-only).
    paths : list of str
        Source of every clip: its file path, or ``"X[i]"`` for a waveform.
    clip_shape : tuple of int
        ``(C, F)``: channels and mel bands of every clip.
    dtype : numpy.dtype
        Storage dtype (float32 or float16); reads always return float32.
    front_end_params : dict
        The front end's class and parameters (:func:`front_end_spec`).
    front_end_checksum : str
        16 hex digits identifying ``front_end_params``.
    library_version : str
        sklearn-rfcnn version that created the store.
    complete : bool
        Whether the build finished (an interrupted or ongoing build's store
        is readable: it holds the clips committed so far).
    n_inputs : int
        Number of inputs the build was given (``len(store) == n_inputs`` once
        complete).

    See Also
    --------
    sklearn_rfcnn.transformers.BandStandardizer : Fits on a store in one pass.

    Notes
    -----
    The format and the reasons for it are in this module's docstring
    (``sklearn_rfcnn.datasets._store``).  File handles are opened lazily and
    per process, so a store pickles (a few bytes per clip) into DataLoader
    worker processes, forked or spawned.  Concurrent readers see the clips
    committed when they opened the store; :meth:`refresh` picks up later
    ones.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram
    >>> front_end = Pipeline([("load", AudioLoader(sr=8000)),
    ...                       ("mel", MelSpectrogram(sr=8000, n_fft=256,
    ...                                              hop_length=64, n_mels=16))])
    >>> rng = np.random.default_rng(0)
    >>> waves = [rng.normal(size=n).astype("float32") for n in (4000, 8000)]
    >>> path = os.path.join(tempfile.mkdtemp(), "store")
    >>> store = SpectrogramStore.create(path, waves, front_end, verbose=0)
    >>> len(store), store.clip_shape, store.lengths.tolist()
    (2, (1, 16), [63, 126])
    >>> store[1].shape, store[1].dtype
    ((1, 16, 126), dtype('float32'))
    >>> store.read(1, 10, 20).shape
    (1, 16, 10)
    >>> SpectrogramStore(path).front_end_checksum == store.front_end_checksum
    True
    """

    __rfcnn_clip_source__ = True

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None
        self._pid = None
        self._load()

    # -- opening ---------------------------------------------------------------

    def _load(self):
        root = self.path
        if not root.is_dir():
            raise DataError(
                f"SpectrogramStore: no store at {str(root)!r} (the folder does not "
                "exist); build one with SpectrogramStore.create(path, X, front_end)."
            )
        manifest = self._read_manifest(root)
        self._manifest = manifest
        self.clip_shape = tuple(int(v) for v in manifest["clip_shape"])
        self.dtype = np.dtype(manifest["dtype"])
        self.front_end_params = manifest["front_end"]
        self.front_end_checksum = manifest["front_end_checksum"]
        self.library_version = manifest["library_version"]
        self.n_inputs = int(manifest["n_inputs"])
        index, _ = _Index.load(root, strict=True)
        if len(index) == 0:
            raise DataError(
                f"SpectrogramStore: the store at {str(root)!r} holds no committed "
                "clip (its build stopped, or is still running, before the first "
                "chunk was committed); re-run SpectrogramStore.create with the same "
                "arguments to build it, or wait for the running build."
            )
        self._set_index(index)
        self._check_data_file()

    @staticmethod
    def _read_manifest(root):
        mpath = root / _MANIFEST
        fix = (
            "if a build was interrupted before its first chunk, re-run "
            "SpectrogramStore.create with the same arguments; otherwise rebuild "
            "it with overwrite=True."
        )
        try:
            manifest = _read_json(mpath, "manifest", fix)
        except FileNotFoundError:
            raise DataError(
                f"SpectrogramStore: {str(root)!r} is not a spectrogram store "
                f"({_MANIFEST} is missing); {fix}"
            ) from None
        required = (
            "format",
            "format_version",
            "clip_shape",
            "dtype",
            "front_end",
            "front_end_checksum",
            "library_version",
            "n_inputs",
            "inputs_checksum",
        )
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise DataError(
                f"SpectrogramStore: {str(mpath)!r} is not a SpectrogramStore "
                f"manifest (no format={FORMAT!r}); {fix}"
            )
        missing = [k for k in required if k not in manifest]
        if missing:
            raise DataError(
                f"SpectrogramStore: the manifest {str(mpath)!r} lacks {missing}; "
                f"it is damaged; {fix}"
            )
        version = manifest["format_version"]
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise DataError(
                f"SpectrogramStore: {str(root)!r} has format version "
                f"{manifest['format_version']}, newer than this sklearn-rfcnn "
                f"({__version__}) reads ({FORMAT_VERSION}); upgrade sklearn-rfcnn."
            )
        _check_manifest_fields(manifest, mpath, fix)
        return manifest

    def _set_index(self, index):
        self._offsets = np.asarray(index.offsets, dtype=np.int64)
        lengths = np.asarray(index.lengths, dtype=np.int64)
        lengths.flags.writeable = False
        self.lengths = lengths
        self._crc32 = np.asarray(index.crc32, dtype=np.uint64)
        self.paths = list(index.sources)
        self.complete = index.complete
        frame = self._frame_bytes
        ends = self._offsets + lengths * frame
        if len(self._offsets) and (
            self._offsets[0] != 0 or np.any(self._offsets[1:] != ends[:-1])
        ):
            bad = (
                0
                if self._offsets[0] != 0
                else int(np.flatnonzero(self._offsets[1:] != ends[:-1])[0] + 1)
            )
            raise DataError(
                f"SpectrogramStore: the index of {str(self.path)!r} is inconsistent "
                f"at clip {bad} ({self.paths[bad]}): its offset "
                f"{int(self._offsets[bad])} is not where the previous clip ends; "
                f"the index is damaged; {_fix_rebuild(self.path)}"
            )
        self._end = int(ends[-1]) if len(ends) else 0

    @property
    def _frame_bytes(self):
        c, f = self.clip_shape
        return c * f * self.dtype.itemsize

    def _check_data_file(self):
        data = self.path / _DATA
        try:
            size = data.stat().st_size
        except FileNotFoundError:
            raise DataError(
                f"SpectrogramStore: the data file {str(data)!r} is missing; "
                f"{_fix_rebuild(self.path)}"
            ) from None
        if size < self._end:
            ends = self._offsets + self.lengths * self._frame_bytes
            bad = int(np.flatnonzero(ends > size)[0])
            raise DataError(
                f"SpectrogramStore: the index points beyond the data file: clip "
                f"{bad} ({self.paths[bad]}) needs bytes [{int(self._offsets[bad])}, "
                f"{int(ends[bad])}) but {str(data)!r} has only {size} bytes (the "
                f"file was truncated or replaced); {_fix_rebuild(self.path)}"
            )

    def refresh(self):
        """Re-read the index, to see clips committed since the store was opened.

        Returns
        -------
        self : SpectrogramStore
        """
        self._load()
        return self

    # -- the clip-source protocol ------------------------------------------------

    def __len__(self):
        return len(self.lengths)

    def _fileno(self):
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            # a handle inherited through fork is left to the parent
            data = self.path / _DATA
            try:
                with open_regular(data, f"SpectrogramStore: data file {data}") as f:
                    self._fd = os.dup(f.fileno())
            except DataError as exc:
                raise DataError(
                    f"{exc} The store was moved or deleted after it was opened, or "
                    f"is damaged; {_fix_rebuild(self.path)}"
                ) from None
            self._pid = pid
        return self._fd

    def _index(self, i):
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(
                f"SpectrogramStore indices must be integers, not "
                f"{type(i).__name__}; use [store[j] for j in ...] for several clips."
            )
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(
                f"clip index {int(i)} is out of range for the store at "
                f"{str(self.path)!r} with {n} clips."
            )
        return j

    def read(self, i, start=0, stop=None):
        """Frames ``start:stop`` of clip ``i``, reading only those bytes.

        Parameters
        ----------
        i : int
            Clip index (negative counts from the end).
        start : int, default=0
            First frame, ``0 <= start < stop``.
        stop : int or None, default=None
            One past the last frame, at most ``lengths[i]``; None for the end.

        Returns
        -------
        S : np.ndarray of float32, shape (C, F, stop - start)
        """
        j = self._index(i)
        length = int(self.lengths[j])
        stop = length if stop is None else int(stop)
        start = int(start)
        if not 0 <= start < stop <= length:
            raise ParameterError(
                f"read({j}, start={start}, stop={stop}) is outside clip {j} "
                f"({self.paths[j]}), which has {length} frames; use 0 <= start < "
                f"stop <= {length}."
            )
        c, f = self.clip_shape
        n = stop - start
        buf = np.empty((n, c, f), dtype=self.dtype)
        offset = int(self._offsets[j]) + start * self._frame_bytes
        got = os.preadv(self._fileno(), [memoryview(buf).cast("B")], offset)
        if got != buf.nbytes:
            raise DataError(
                f"SpectrogramStore: clip {j} ({self.paths[j]}) is cut short in "
                f"{str(self.path / _DATA)!r} (read {got} of {buf.nbytes} bytes at "
                f"offset {offset}): the data file was truncated after the store was "
                f"opened; {_fix_rebuild(self.path)}"
            )
        return np.ascontiguousarray(buf.transpose(1, 2, 0), dtype=np.float32)

    def __getitem__(self, i):
        """Clip ``i`` as float32 ``(C, F, T_i)``."""
        return self.read(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self.read(i)

    # -- checks ------------------------------------------------------------------

    def check_front_end(self, front_end):
        """Raise unless ``front_end`` has the parameters the store was built with.

        Parameters
        ----------
        front_end : estimator
            The front end meant to produce data like the store's (e.g. for
            prediction on new files).

        Returns
        -------
        self : SpectrogramStore

        Raises
        ------
        DataError
            Naming both checksums and the parameters that differ.
        """
        spec = front_end_spec(front_end)
        given = _checksum(spec)
        if given != self.front_end_checksum:
            raise DataError(
                f"SpectrogramStore {str(self.path)!r} was built with front-end "
                f"checksum {self.front_end_checksum}, but the given "
                f"{spec['class']} has checksum {given} ("
                f"{_spec_differences(self.front_end_params, spec)}). Use a front "
                "end with the store's parameters (store.front_end_params), or "
                "build a new store with SpectrogramStore.create(new_path, X, "
                "front_end)."
            )
        return self

    def verify(self):
        """Read every clip and check it against the CRC-32 recorded at write time.

        Returns
        -------
        self : SpectrogramStore

        Raises
        ------
        DataError
            Naming the first damaged clip (index and source).
        """
        fd = self._fileno()
        for j in range(len(self)):
            n = int(self.lengths[j]) * self._frame_bytes
            data = os.pread(fd, n, int(self._offsets[j]))
            if len(data) != n or zlib.crc32(data) != int(self._crc32[j]):
                raise DataError(
                    f"SpectrogramStore: clip {j} ({self.paths[j]}) in "
                    f"{str(self.path)!r} does not match its checksum (the data file "
                    f"was damaged); {_fix_rebuild(self.path)}"
                )
        return self

    # -- housekeeping -------------------------------------------------------------

    def close(self):
        """Close the data file (it reopens on the next read)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = self._pid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_fd"] = state["_pid"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        gb = self._end / 1e9
        done = "" if self.complete else f", incomplete: {len(self)}/{self.n_inputs}"
        return (
            f"SpectrogramStore({str(self.path)!r}: {len(self)} clips of "
            f"{self.clip_shape} x T, {self.dtype.name}, {gb:.3g} GB{done})"
        )

    # -- building -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path,
        X,
        front_end,
        *,
        n_jobs=None,
        dtype="float32",
        chunk_size=32,
        overwrite=False,
        verbose=1,
    ):
        """Compute the spectrograms of ``X`` through ``front_end`` into a store.

        Clips are processed ``chunk_size`` at a time, so memory while building
        does not depend on the number of clips.  Each chunk is committed
        atomically (module docstring); re-running ``create`` with the same
        arguments after an interruption resumes after the last committed
        chunk, and on a complete store returns it at once.

        Parameters
        ----------
        path : str or path-like
            The store's folder (created if missing).
        X : sequence of path-like or of 1-D array-like
            Audio file paths (e.g. a loader's ``.filenames``) or waveforms.
        front_end : estimator
            A transformer or Pipeline mapping a list of inputs to a list of
            ``(F, T)`` or ``(C, F, T)`` arrays, or a 3-D/4-D array, such as
            ``Pipeline([("load", AudioLoader()), ("mel", MelSpectrogram())])``.
            Fitted or not: an unfitted one is fitted on the first chunk, so it
            should be stateless (put ``BandStandardizer`` after the store; it
            fits on the store in one pass).  It is copied, never modified.
        n_jobs : int or None, default=None
            Sets every ``n_jobs`` parameter of the front end's steps (threads
            decoding and computing spectrograms); None keeps theirs.  Inside
            ``joblib.parallel_config("dask")`` (or another joblib backend
            that runs elsewhere) whole chunks are computed on the cluster's
            workers, which must see the paths in ``X``, and written here in
            order; ``n_jobs=1`` keeps them in this process.
        dtype : {"float32", "float16"}, default="float32"
            Storage dtype; float16 halves the disk and the reads, and reading
            always returns float32.
        chunk_size : int >= 1, default=32
            Clips computed and committed at a time (memory is about
            ``chunk_size`` clips of audio and spectrogram).
        overwrite : bool, default=False
            Delete an existing store at ``path`` built from other inputs or
            parameters, instead of refusing.
        verbose : int, default=1
            Show a progress bar over the clips (tqdm, on stderr); 0 is silent.

        Returns
        -------
        store : SpectrogramStore
            The complete store, opened.

        Raises
        ------
        DataError
            A clip fails in the front end (naming its index and path; the
            clips committed before it are kept, so fixing the input and
            re-running resumes), or ``path`` holds a store of other inputs or
            parameters and ``overwrite`` is False.
        """
        root = Path(path)
        if dtype not in _DTYPES:
            raise ParameterError(
                f"dtype={dtype!r} is not supported; use 'float32' or 'float16'."
            )
        if (
            isinstance(chunk_size, bool)
            or not isinstance(chunk_size, (int, np.integer))
            or chunk_size < 1
        ):
            raise ParameterError(
                f"chunk_size={chunk_size!r} must be an integer >= 1 (clips per "
                "committed chunk)."
            )
        if isinstance(X, (str, os.PathLike)) or not hasattr(X, "__len__"):
            raise ParameterError(
                f"X must be a sequence of file paths or waveforms, not "
                f"{type(X).__name__}; e.g. load_mtg_jamendo(root).filenames."
            )
        X = list(X)
        if not X:
            raise ParameterError(
                "X is empty; a store needs at least one clip (pass file paths or "
                "waveforms)."
            )
        spec = front_end_spec(front_end)
        checksum = _checksum(spec)
        inputs = _inputs_checksum(X)
        identity = {
            "front_end_checksum": checksum,
            "inputs_checksum": inputs,
            "n_inputs": len(X),
            "dtype": dtype,
        }
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / _LOCK, "a+")  # held for the whole build
        try:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataError(
                    f"SpectrogramStore.create: another process is building the "
                    f"store at {str(root)!r} (its lock file {_LOCK} is held); wait "
                    "for it to finish, or build into another folder."
                ) from None
            builder = _Builder(
                root,
                X,
                front_end,
                spec,
                identity,
                n_jobs=n_jobs,
                chunk_size=int(chunk_size),
                verbose=verbose,
            )
            builder.prepare(overwrite=overwrite)
            builder.run()
        finally:
            lock.close()
        return cls(root)


class _Builder:
    """One run of :meth:`SpectrogramStore.create` (holds the folder's lock)."""

    def __init__(
        self, root, X, front_end, spec, identity, *, n_jobs, chunk_size, verbose
    ):
        self.root, self.X, self.spec, self.identity = root, X, spec, identity
        self.chunk_size, self.verbose, self.n_jobs = chunk_size, verbose, n_jobs
        self.dtype = np.dtype(identity["dtype"])
        fe = copy.deepcopy(front_end)
        params = fe.get_params(deep=True)
        quiet = {  # False for a bool parameter (a nested Pipeline's verbose)
            k: False if isinstance(params[k], bool) else 0
            for k in params
            if k.rsplit("__", 1)[-1] == "verbose" and isinstance(params[k], (int, bool))
        }
        if n_jobs is not None:
            quiet.update(
                {k: n_jobs for k in params if k.rsplit("__", 1)[-1] == "n_jobs"}
            )
        if quiet:
            fe.set_params(**quiet)
        self.front_end = fe
        self.fitted = _is_fitted(fe)
        self.manifest = None
        self.index = _Index()

    # -- state on disk ------------------------------------------------------------

    def _store_files(self):
        return [self.root / n for n in (_MANIFEST, _DATA, _INDEX, _CHUNKS)]

    def _clear(self):
        for p in self._store_files():
            if p.is_dir():
                for q in p.iterdir():
                    q.unlink()
                p.rmdir()
            elif p.exists():
                p.unlink()
        _fsync_dir(self.root)

    def prepare(self, *, overwrite):
        root = self.root
        mpath = root / _MANIFEST
        if not mpath.exists():
            foreign = [
                p.name
                for p in root.iterdir()
                if p.name not in {_LOCK, _DATA, _CHUNKS} and not p.name.startswith(".")
            ]
            if foreign:
                raise DataError(
                    f"SpectrogramStore.create: {str(root)!r} is not empty and is not "
                    f"a store (it holds {sorted(foreign)[:5]}); choose a new or "
                    "empty folder."
                )
            self._clear()  # leftovers of a build killed before its first commit
            return
        try:
            manifest = SpectrogramStore._read_manifest(root)
        except DataError:
            if not overwrite:
                raise
            self._clear()
            return
        differs = [
            f"{k}: {manifest.get(k)!r} (store) vs {v!r} (given)"
            for k, v in self.identity.items()
            if manifest.get(k) != v
        ]
        if differs:
            if overwrite:
                self._clear()
                return
            detail = "; ".join(differs)
            if (
                manifest.get("front_end_checksum")
                != self.identity["front_end_checksum"]
            ):
                detail += "; front-end parameters differ: " + _spec_differences(
                    manifest["front_end"], self.spec
                )
            raise DataError(
                f"SpectrogramStore.create: the store at {str(root)!r} was built "
                f"from other inputs or parameters ({detail}). Pass the same X, "
                "front end and dtype to resume it, overwrite=True to replace it, "
                "or build into another folder."
            )
        self.manifest = manifest
        self._recover()

    def _recover(self):
        """Keep the intact committed clips; drop damaged or uncommitted data."""
        root = self.root
        index, problem = _Index.load(root, strict=False)
        data = root / _DATA
        size = data.stat().st_size if data.exists() else 0
        c, f = self.manifest["clip_shape"]
        frame = c * f * self.dtype.itemsize
        keep, end = 0, 0
        for off, n in zip(index.offsets, index.lengths):
            if off != end or off + n * frame > size:
                problem = problem or (
                    f"clip {keep} lies beyond the data file or is misplaced"
                )
                break
            end = off + n * frame
            keep += 1
        if problem and self.verbose:
            print(
                f"SpectrogramStore.create: {problem}; rebuilding from clip {keep}.",
                flush=True,
            )
        if keep < len(index) or problem is not None:
            self._truncate_index(index, keep)
        self.index = index
        for name in ("offsets", "lengths", "crc32", "sources"):
            del getattr(index, name)[keep:]
        # readers never look past the committed end: truncating is safe
        if data.exists() and size > end:
            with open(data, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
        self.index.complete = index.complete and keep == self.identity["n_inputs"]

    def _truncate_index(self, index, keep):
        """Rewrite the index as one chunk file holding the first ``keep`` clips.

        The new file is written (atomically) before the old files go, so a
        crash in between leaves an index that the next run repairs again.
        """
        root = self.root
        folder = root / _CHUNKS
        folder.mkdir(exist_ok=True)
        first = folder / f"{0:012d}.json"
        if keep:
            entry = {
                "start": 0,
                "offsets": index.offsets[:keep],
                "lengths": index.lengths[:keep],
                "crc32": index.crc32[:keep],
                "sources": index.sources[:keep],
            }
            _write_json_atomic(first, entry)
        if (root / _INDEX).exists():
            (root / _INDEX).unlink()
            _fsync_dir(root)
        for p in folder.iterdir():
            if p != first or not keep:
                p.unlink()
        _fsync_dir(folder)
        index.complete = False

    # -- the build loop -----------------------------------------------------------

    def run(self):
        n = self.identity["n_inputs"]
        done = len(self.index)
        if done == n and self.index.complete:
            if self.verbose:
                print(f"SpectrogramStore: {str(self.root)!r} is complete.", flush=True)
            return
        from tqdm.auto import tqdm

        (self.root / _CHUNKS).mkdir(exist_ok=True)
        end = (
            int(self.index.offsets[-1] + self.index.lengths[-1] * self._frame())
            if done
            else 0
        )
        bar = tqdm(
            total=n,
            initial=done,
            desc="SpectrogramStore",
            unit="clip",
            disable=not self.verbose,
            leave=True,
        )
        try:
            with open(self.root / _DATA, "ab") as fh:
                for start, stop, clips in self._chunks(done, n):
                    if self.manifest is None:
                        self._write_manifest(clips[0].shape[:2])
                    end = self._commit(fh, start, clips, end)
                    bar.update(stop - start)
        finally:
            bar.close()
        self._consolidate()

    def _frame(self):
        c, f = self.manifest["clip_shape"]
        return c * f * self.dtype.itemsize

    def _write_manifest(self, clip_shape):
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "layout": "per clip (n_frames, C, F), C order, clips back to back",
            "library_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "clip_shape": [int(v) for v in clip_shape],
            "front_end": self.spec,
            **self.identity,
        }
        manifest["checksum"] = _manifest_checksum(manifest)
        _write_json_atomic(self.root / _MANIFEST, manifest)
        self.manifest = manifest

    def _chunks(self, done, n):
        """Yield ``(start, stop, clips)`` for every chunk from clip ``done`` on.

        With a joblib backend that runs elsewhere (Dask...), whole chunks go
        to its workers: each decodes and transforms its clips there and
        sends back only the spectrograms, while this process writes them in
        order.  An unfitted front end is first fitted here, on the first
        chunk (its own steps still use the cluster).
        """
        from joblib import effective_n_jobs

        chunks = [
            (a, min(a + self.chunk_size, n)) for a in range(done, n, self.chunk_size)
        ]
        remote = distributed_backend() is not None and effective_n_jobs(self.n_jobs) > 1
        if chunks and not (remote and self.fitted):
            # here: every chunk, or (on a cluster) the first, to fit on
            local = chunks if not remote else chunks[:1]
            chunks = chunks[len(local) :]
            for start, stop in local:
                yield start, stop, self._compute(start, stop)
        if not chunks:
            return
        from joblib import Parallel, delayed

        tasks = (
            delayed(_transform_chunk)(self.front_end, self.X[start:stop])
            for start, stop in chunks
        )
        parallel = Parallel(n_jobs=self.n_jobs, batch_size=1, return_as="generator")
        results = parallel(tasks)
        try:
            for (start, stop), (exc, out, caught) in zip(chunks, results):
                for warning in caught:  # the worker's (e.g. truncated WAVs)
                    warnings.warn_explicit(*warning)
                if exc is not None:
                    raise self._failure(exc, start, stop) from exc
                yield start, stop, self._clips(out, start, stop)
        finally:
            close_parallel_generator(results)

    def _labels_of(self, start, stop):
        return [_item_label(x, start + k) for k, x in enumerate(self.X[start:stop])]

    def _compute(self, start, stop):
        items = self.X[start:stop]
        try:
            if self.fitted:
                out = self.front_end.transform(items)
            else:
                out = self.front_end.fit_transform(items)
                self.fitted = True
        except Exception as exc:
            raise self._failure(exc, start, stop) from exc
        return self._clips(out, start, stop)

    def _failure(self, exc, start, stop):
        """The error to raise for ``exc`` raised by the front end on a chunk."""
        labels = self._labels_of(start, stop)
        bad = getattr(exc, "index", None)
        where = (
            f"clip {start + bad} ({labels[bad]})"
            if isinstance(bad, int) and 0 <= bad < len(labels)
            else f"one of clips {start}..{stop - 1}"
        )
        message = (
            f"SpectrogramStore.create: the front end failed on {where} (its "
            f"X[k] is clip {start} + k): "
            f"{type(exc).__name__}: {exc}\nFix or remove that input and re-run "
            f"create with the same path: the {start} clips already committed "
            "are kept."
        )
        if isinstance(exc, AudioDecodeError):
            return AudioDecodeError(
                message,
                path=exc.path,
                index=None if bad is None else start + bad,
            )
        return DataError(message)

    def _clips(self, out, start, stop):
        """Check the front end's output for one chunk; the clips to store."""
        items = self.X[start:stop]
        labels = self._labels_of(start, stop)
        if isinstance(out, np.ndarray) and out.ndim in (3, 4):
            out = list(out)
        if not isinstance(out, (list, tuple)) or len(out) != len(items):
            got = len(out) if hasattr(out, "__len__") else type(out).__name__
            raise DataError(
                f"SpectrogramStore.create: the front end returned {got} outputs "
                f"for the {len(items)} clips {start}..{stop - 1}; it must return one "
                "spectrogram per input (an AudioLoader with on_error='skip' drops "
                "clips: use on_error='raise' and remove bad files from X)."
            )
        clips = []
        expected = None if self.manifest is None else tuple(self.manifest["clip_shape"])
        for k, S in enumerate(out):
            S = np.asarray(S)
            if S.ndim == 2:
                S = S[None]
            label = f"clip {start + k} ({labels[k]})"
            if S.ndim != 3 or S.shape[-1] < 1:
                raise DataError(
                    f"SpectrogramStore.create: the front end turned {label} into an "
                    f"array of shape {S.shape}; a store holds (F, T) or (C, F, T) "
                    "spectrograms with T >= 1 (end the front end with "
                    "MelSpectrogram)."
                )
            if expected is None:
                expected = S.shape[:2]
            if S.shape[:2] != expected:
                raise DataError(
                    f"SpectrogramStore.create: {label} has (C, F) = {S.shape[:2]} "
                    f"but the store holds {expected}; every clip needs the same "
                    "channels and bands (e.g. AudioLoader(mono=True))."
                )
            if not np.isfinite(S).all():
                raise DataError(
                    f"SpectrogramStore.create: {label} has NaN or inf values after "
                    "the front end; clean or remove that input."
                )
            with np.errstate(over="ignore"):
                stored = S.astype(self.dtype)
            if self.dtype == np.float16 and not np.isfinite(stored).all():
                raise DataError(
                    f"SpectrogramStore.create: {label} has values beyond float16's "
                    f"range (max |x| = {float(np.abs(S).max()):.4g} > 65504); use "
                    "dtype='float32', or a dB scale in MelSpectrogram."
                )
            clips.append(stored)
        self._labels = labels
        return clips

    def _commit(self, fh, start, clips, end):
        offsets, lengths, crcs = [], [], []
        for S in clips:
            block = np.ascontiguousarray(S.transpose(2, 0, 1)).tobytes()
            fh.write(block)
            offsets.append(end)
            lengths.append(int(S.shape[-1]))
            crcs.append(zlib.crc32(block))
            end += len(block)
        fh.flush()
        os.fsync(fh.fileno())
        entry = {
            "start": start,
            "offsets": offsets,
            "lengths": lengths,
            "crc32": crcs,
            "sources": self._labels,
        }
        _write_json_atomic(self.root / _CHUNKS / f"{start:012d}.json", entry)
        self.index.extend(entry)
        return end

    def _consolidate(self):
        index = self.index
        doc = {
            "start": 0,
            "complete": True,
            "offsets": index.offsets,
            "lengths": index.lengths,
            "crc32": index.crc32,
            "sources": index.sources,
        }
        _write_json_atomic(self.root / _INDEX, doc)
        folder = self.root / _CHUNKS
        for p in folder.glob("*"):
            p.unlink()
        _fsync_dir(folder)


def _transform_chunk(front_end, items):
    """One chunk on a cluster's worker: ``(error, output, warnings)``.

    The error is returned, not raised, so that the chunks before it are still
    committed in order; the worker's own threads do the work (the cluster's
    backend, which joblib nests into its tasks, would send it back out).
    """
    from joblib import parallel_config

    error = out = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with parallel_config(backend="threading"):
            try:
                out = front_end.transform(items)
            except Exception as exc:
                error = exc
    if isinstance(out, np.ndarray) and out.ndim in (3, 4):
        out = list(out)
    # plain data (a WarningMessage can hold unpicklable objects)
    caught = [(str(w.message), w.category, w.filename, w.lineno) for w in caught]
    return error, out, caught


def _is_fitted(estimator):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    except TypeError:
        return False
    return True
