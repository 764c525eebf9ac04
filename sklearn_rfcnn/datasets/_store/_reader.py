"""Reading a store: :class:`SpectrogramStore`, a clip source read lazily."""

import os
import zlib
from pathlib import Path

import numpy as np

from sklearn_rfcnn.datasets._store._builder import create_store
from sklearn_rfcnn.datasets._store._format import (
    _DATA,
    _checksum,
    _fix_rebuild,
    _Index,
    _spec_differences,
    front_end_spec,
    read_manifest,
)
from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.utils._files import open_regular

__all__ = ["SpectrogramStore"]


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

    _read_manifest = staticmethod(read_manifest)

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
            The store, unchanged (for chaining).

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
        root = create_store(
            path,
            X,
            front_end,
            n_jobs=n_jobs,
            dtype=dtype,
            chunk_size=chunk_size,
            overwrite=overwrite,
            verbose=verbose,
        )
        return cls(root)
