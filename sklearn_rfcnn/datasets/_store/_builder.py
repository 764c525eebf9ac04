"""Building a store chunk by chunk, resumably (locally or on a cluster)."""

import copy
import fcntl
import os
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.datasets._store._format import (
    _CHUNKS,
    _DATA,
    _DTYPES,
    _INDEX,
    _LOCK,
    _MANIFEST,
    FORMAT,
    FORMAT_VERSION,
    _checksum,
    _fsync_dir,
    _Index,
    _inputs_checksum,
    _item_label,
    _manifest_checksum,
    _spec_differences,
    _write_json_atomic,
    front_end_spec,
    read_manifest,
)
from sklearn_rfcnn.exceptions import AudioDecodeError, DataError, ParameterError
from sklearn_rfcnn.utils._checks import reject_non_finite
from sklearn_rfcnn.utils._parallel import (
    close_parallel_generator,
    distributed_backend,
)

__all__ = ["create_store"]


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
            manifest = read_manifest(root)
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
            reject_non_finite(
                S,
                f"SpectrogramStore.create: {label} after the front end",
                "clean or remove that input.",
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


def _check_create_args(X, dtype, chunk_size):
    """The arguments of :meth:`SpectrogramStore.create`, before any work."""
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


def create_store(path, X, front_end, *, n_jobs, dtype, chunk_size, overwrite, verbose):
    """Build (or resume, or find complete) the store at ``path``; returns its root.

    The body of :meth:`SpectrogramStore.create`: the checks, the folder's
    lock, then one :class:`_Builder` run.
    """
    root = Path(path)
    _check_create_args(X, dtype, chunk_size)
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
    return root
