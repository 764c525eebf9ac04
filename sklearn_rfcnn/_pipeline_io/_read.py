"""Reading a pipeline folder, all checks first: :func:`load_pipeline`."""

import os
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_rfcnn._pipeline_io._format import (
    _ESTIMATORS,
    _FITTED_FIELDS,
    _SKOPS_TRUSTED,
    _TRANSFORMERS,
    ARRAYS_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    PIPELINE_FILE,
    _content_checksum,
    _decode_value,
    _digests,
    _import_skops,
    _sha256,
)
from sklearn_rfcnn.exceptions import DataError, RFCNNError
from sklearn_rfcnn.utils._atomic import (
    read_consistently,
    read_json_file,
)
from sklearn_rfcnn.utils._files import open_regular

__all__ = ["load_pipeline"]


def _read(description, folder, arrays, trusted, where, prefix=""):
    """Rebuild the Pipeline described by ``description`` (checked on the way)."""

    def bad(field, problem):
        return DataError(f"{where!r}: {field} {problem}; save the pipeline again.")

    if not isinstance(description, dict) or not isinstance(
        description.get("steps"), list
    ):
        raise bad(f"'{prefix}pipeline'", "is missing its list of 'steps'")
    settings = description.get("settings", {})
    if not isinstance(settings, dict):
        raise bad(f"'{prefix}pipeline.settings'", "is not an object")
    steps = []
    for i, entry in enumerate(description["steps"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise bad(f"step {prefix}{i}", "has no name")
        name, kind = entry["name"], entry.get("kind")
        field = f"step {prefix}{name!r}"
        try:
            if kind == "passthrough":
                step = entry.get("value")
            elif kind == "transformer":
                step = _read_transformer(entry, arrays, field, bad)
            elif kind == "estimator":
                cls = _ESTIMATORS.get(entry.get("cls"))
                if cls is None:
                    raise DataError(
                        f"{where!r}: {field} is a {entry.get('cls')!r}, which this "
                        "version of sklearn-rfcnn does not know; upgrade it."
                    )
                step = cls._load_folder(_inside(folder, entry.get("path"), field, bad))
            elif kind == "pipeline":
                step = _read(
                    entry.get("pipeline"),
                    _inside(folder, entry.get("path"), field, bad),
                    arrays,
                    trusted,
                    where,
                    f"{prefix}{name}__",
                )
            elif kind == "skops":
                sio = _import_skops(name, entry.get("cls"))
                file = _inside(folder, entry.get("path"), field, bad)
                open_regular(file, f"{where!r}: {field} file").close()
                allowed = set(_SKOPS_TRUSTED) | set(trusted)
                untrusted = sio.get_untrusted_types(file=file)
                refused = [t for t in untrusted if t not in allowed]
                if refused:
                    raise DataError(
                        f"step {name!r} ({entry.get('cls')}) in "
                        f"{os.fspath(file)!r} holds types that are not trusted: "
                        f"{refused}; if you trust the source, pass them as "
                        "load_pipeline(..., trusted=[...])."
                    )
                step = sio.load(file, trusted=untrusted)
            else:
                raise DataError(
                    f"{where!r}: {field} has unknown kind {kind!r}; upgrade "
                    "sklearn-rfcnn."
                )
        except (RFCNNError, ImportError):
            raise
        except Exception as exc:
            raise bad(field, f"cannot be read ({type(exc).__name__}: {exc})") from None
        steps.append((name, step))
    try:
        return Pipeline(steps, **settings)
    except TypeError as exc:
        raise bad(f"'{prefix}pipeline.settings'", f"are invalid ({exc})") from None


def _inside(folder, rel, field, bad):
    """``folder / rel``, refusing paths that leave the model folder."""
    if not isinstance(rel, str) or not rel:
        raise bad(field, "has no 'path'")
    target = (folder / rel).resolve()
    if not target.is_relative_to(Path(folder).resolve()):
        raise bad(field, f"has 'path' {rel!r} outside the model folder")
    return folder / rel


def _read_transformer(entry, arrays, field, bad):
    cls = _TRANSFORMERS.get(entry.get("cls"))
    if cls is None:
        raise bad(
            field,
            f"is a {entry.get('cls')!r}, which this version of sklearn-rfcnn "
            "does not know (upgrade it)",
        )
    params = entry.get("params")
    fitted = entry.get("fitted")
    if not isinstance(params, dict) or not isinstance(fitted, dict):
        raise bad(field, "lacks its 'params' or 'fitted' object")
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise bad(f"{field} params {unknown}", f"are not parameters of {cls.__name__}")
    try:
        decoded = {k: _decode_value(v, arrays) for k, v in params.items()}
    except KeyError as exc:
        raise bad(field, f"names the missing array {exc}") from None
    step = cls(**decoded)
    if hasattr(step, "_validate_params"):
        try:
            step._validate_params()
        except InvalidParameterError as exc:
            raise bad(f"{field} params", f"are invalid: {exc}") from None
    allowed = _FITTED_FIELDS[cls.__name__]
    for attr, value in fitted.items():
        if attr not in allowed:
            raise bad(
                f"{field} fitted field {attr!r}",
                f"is not a fitted attribute of {cls.__name__} (it has "
                f"{sorted(allowed)})",
            )
        try:
            value = _decode_value(value, arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(
                f"{field} fitted field {attr!r}", f"is malformed or names missing {exc}"
            ) from None
        problem = allowed[attr](value)
        if problem:
            raise bad(f"{field} fitted field {attr!r}", problem)
        setattr(step, attr, value)
    return step


def _check_content(config, where):
    """Version 2: ``pipeline.json`` matches the checksum it carries."""
    version = config.get("format_version", 0)
    stored = config.get("checksum")
    if version >= 2 and stored is None:
        raise DataError(
            f"{where!r}: field 'checksum' is missing, but format version "
            f"{version} always writes it; the file was edited after "
            "save_pipeline(). Save the pipeline again."
        )
    if stored is not None and stored != _content_checksum(config):
        raise DataError(
            f"{where!r} does not match its checksum: its parameters, fitted "
            "fields, metadata (e.g. the order of 'target_names') or file list "
            "were edited after save_pipeline(); save the pipeline again, or get "
            "the folder again from its source."
        )


def _check_listing(config, where):
    """``files`` maps names to SHA-256 digests; ``sizes`` names to byte counts."""
    files, sizes = config.get("files"), config.get("sizes")
    if files is not None and not (
        isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
    ):
        raise DataError(f"{where!r}: field 'files' is not an object of digests.")
    if sizes is not None and not (
        isinstance(sizes, dict)
        and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for v in sizes.values()
        )
    ):
        raise DataError(f"{where!r}: field 'sizes' is not an object of byte counts.")
    return files, sizes or {}


def _verify_file(path, rel, files, sizes, shown):
    """Check ``path / rel`` against its recorded size and digest before it is read."""
    file, name = path / rel, os.fspath(Path(shown) / rel)
    if files is None or rel not in files:
        return file
    with open_regular(file, name) as f:
        actual = os.fstat(f.fileno()).st_size
    if rel in sizes and actual != sizes[rel]:
        raise DataError(
            f"{name!r} holds {actual} bytes but {sizes[rel]} were saved: it does "
            "not match its checksum (the file was changed after "
            "save_pipeline()); save the pipeline again."
        )
    if _sha256(file, name) != files[rel]:
        raise DataError(
            f"{name!r} does not match its checksum: the file was changed after "
            "save_pipeline(); save the pipeline again."
        )
    return file


def _array_keys(obj, found):
    """The ``arrays.npz`` keys that the JSON ``obj`` refers to."""
    if isinstance(obj, dict):
        if obj.get("__kind__") in ("array", "object_str_array") and isinstance(
            obj.get("key"), str
        ):
            found.add(obj["key"])
        for value in obj.values():
            _array_keys(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _array_keys(value, found)
    return found


def _read_arrays(file, shown, expected):
    """The arrays of ``arrays.npz``, checked member by member before inflating.

    ``save_pipeline`` writes the file with :func:`numpy.savez`: uncompressed
    members, one ``KEY.npy`` per array that ``pipeline.json`` refers to.  A
    member of another name, a compressed member, or one larger than the
    archive are refused before any member is read.
    """
    import zipfile

    where = os.fspath(Path(shown) / ARRAYS_FILE)
    with open_regular(file, where) as f:
        total = os.fstat(f.fileno()).st_size
        try:
            with zipfile.ZipFile(f) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise DataError(
                f"{where!r} cannot be read ({type(exc).__name__}: {exc}); the file "
                "is truncated or damaged."
            ) from None
        names = [info.filename for info in infos]
        wanted = {f"{key}.npy" for key in expected}
        extra = sorted(set(names) - wanted)
        if extra or len(set(names)) != len(names):
            raise DataError(
                f"{where!r} holds members {extra[:3] or names[:3]} that "
                f"{PIPELINE_FILE} does not refer to (or repeated ones); the file "
                "is not the one save_pipeline wrote."
            )
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > total:
                raise DataError(
                    f"{where!r}: member {info.filename!r} is compressed or "
                    f"declares {info.file_size} bytes in a {total}-byte file; "
                    "save_pipeline writes plain members. The file is not the one "
                    "it wrote."
                )
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}
        except Exception as exc:
            raise DataError(
                f"{where!r} cannot be read ({type(exc).__name__}: {exc}); the file "
                "is truncated or damaged."
            ) from None


def _read_checked(path, shown, trusted):
    """Load the pipeline in ``path`` (a folder); every part is checked."""
    try:
        return _read_checked_inner(path, shown, trusted)
    except RecursionError:
        raise DataError(
            f"{os.fspath(Path(shown) / PIPELINE_FILE)!r} is nested too deeply to "
            "be a file save_pipeline wrote; it is damaged or was crafted."
        ) from None


def _read_checked_inner(path, shown, trusted):
    config_file = path / PIPELINE_FILE
    where = os.fspath(Path(shown) / PIPELINE_FILE)
    if not os.path.lexists(config_file):
        raise DataError(
            f"{os.fspath(shown)!r} is not a model folder written by "
            f"save_pipeline() or 'rfcnn fit': it has no {PIPELINE_FILE}."
        )
    config = read_json_file(config_file, where)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise DataError(f"{where!r} is not a saved sklearn-rfcnn pipeline.")
    version = config.get("format_version", 0)
    if not isinstance(version, int):
        raise DataError(f"{where!r}: 'format_version' {version!r} is not an int.")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{where!r} has format version {version}; upgrade sklearn-rfcnn to load it."
        )
    # first of all: the file's own checksum, then each file's size and digest
    # before the file is read
    _check_content(config, where)
    files, sizes = _check_listing(config, where)
    arrays = {}
    if os.path.lexists(path / ARRAYS_FILE):
        file = _verify_file(path, ARRAYS_FILE, files, sizes, shown)
        expected = _array_keys(config.get("pipeline"), set())
        arrays = _read_arrays(file, shown, expected)
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DataError(f"{where!r}: 'metadata' is not an object.")
    pipe = _read(config.get("pipeline"), path, arrays, trusted, where)
    # last, so that the checks above name the field they find wrong; this
    # one catches every other change (e.g. a file added or removed)
    if files is not None:
        present = _digests(path)
        present.pop(PIPELINE_FILE, None)
        missing = sorted(set(files) - set(present))
        if missing:
            raise DataError(
                f"{where!r}: the folder lacks {missing[:3]} that save_pipeline "
                "wrote; the model folder is incomplete, save it again."
            )
        changed = sorted(k for k, v in files.items() if present[k] != v)
        if changed:
            raise DataError(
                f"{where!r}: {changed[:3]} do not match their checksums: the "
                "files were changed after save_pipeline(); save the pipeline again."
            )
    return pipe, dict(metadata)


def load_pipeline(path, *, return_metadata=False, trusted=None):
    """Load a pipeline written by :func:`save_pipeline`.

    Parameters
    ----------
    path : str or path-like
        The folder ``save_pipeline`` wrote.
    return_metadata : bool, default=False
        Also return the ``metadata`` dict given to ``save_pipeline``.
    trusted : sequence of str, default=None
        Extra fully qualified type names to trust in skops-stored steps
        (beyond scikit-learn's own); see :func:`skops.io.get_untrusted_types`.

    Returns
    -------
    pipe : sklearn.pipeline.Pipeline
        Fitted and ready to ``predict``/``transform``; CNN steps saved on a GPU
        load on a CPU-only machine.
    metadata : dict
        Only with ``return_metadata=True``.

    Raises
    ------
    DataError
        ``path`` is not a saved pipeline folder, was written by a newer
        version, is truncated, tampered with or inconsistent (a file does
        not match its checksum, a parameter breaks the constraints ``fit``
        uses, weights do not fit the configuration or are not finite; the
        message names the file and the field), or a skops step holds
        untrusted types.

    See Also
    --------
    save_pipeline : Write the folder.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_rfcnn import (MelSpectrogram, RFCNNClassifier,
    ...                            load_pipeline, save_pipeline)
    >>> waves = np.random.default_rng(0).normal(size=(8, 4000)).astype("float32")
    >>> pipe = make_pipeline(
    ...     MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=16),
    ...     RFCNNClassifier(width=4, rho=2, max_epochs=1, verbose=0, device="cpu",
    ...                     precision="32", random_state=0),
    ... ).fit(waves, [0, 1] * 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load_pipeline(save_pipeline(pipe, os.path.join(tmp, "m")))
    >>> bool(np.array_equal(loaded.predict_proba(waves), pipe.predict_proba(waves)))
    True
    """
    path = Path(os.fspath(path)).expanduser()
    trusted = list(trusted or ())
    pipe, metadata = read_consistently(
        path, lambda folder: _read_checked(folder, path, trusted)
    )
    if return_metadata:
        return pipe, metadata
    return pipe
