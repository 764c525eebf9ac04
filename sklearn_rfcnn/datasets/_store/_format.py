"""The store's on-disk format: names, front-end identity, manifest and index."""

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.utils._files import read_regular

__all__ = ["front_end_checksum", "front_end_spec", "read_manifest"]

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


def read_manifest(root):
    """The manifest of the store at ``root``, every field checked."""
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
