"""Saving and loading whole fitted pipelines without pickle.

:func:`save_pipeline` writes a folder::

    PATH/pipeline.json     format, Pipeline parameters, one entry per step
                           (class, parameters, JSON-able fitted attributes),
                           user metadata
    PATH/arrays.npz        fitted arrays of the front-end steps (e.g. the
                           BandStandardizer's mean_ and scale_), read back with
                           numpy's allow_pickle=False
    PATH/steps/stepN/      an RFCNNClassifier/RFCNNEmbedder written by its own
                           save() (JSON + weights read with weights_only=True),
                           or a nested Pipeline in this same layout
    PATH/steps/stepN.skops another scikit-learn step, stored with skops.io
                           (optional dependency) and loaded only when every
                           type it holds is trusted

    PATH/README.md         a model card for people (sklearn_rfcnn._model_card):
                           labels in output order, every step's parameters,
                           architecture, receptive field in px, s and Hz,
                           training recipe, metrics; never read by load

Nothing is pickled, so a folder from an untrusted source cannot run code when
loaded.  The folder is written beside the target under a temporary name and
renamed into place (:mod:`sklearn_rfcnn.utils._atomic`), so a reader -- or a
writer killed at any point -- sees the complete old or the complete new
pipeline, never a mix.

``pipeline.json`` records the SHA-256 of every other file in the folder, and
each CNN step's ``config.json`` the checksum of its own configuration and
weights; :func:`load_pipeline` verifies them and checks every step's
parameters with the constraints ``fit`` uses, so a truncated, tampered or
mixed-up folder raises a :class:`~sklearn_rfcnn.exceptions.DataError` naming
the file and the field instead of loading a model that predicts wrongly.
Since format 2, ``pipeline.json`` also carries a checksum of its own
canonical content (every parameter, fitted field, metadata entry such as the
order of ``target_names``, and file digest) and the size of every file; it is
checked first, and each file's size and digest before the file is read.
Every file must be a regular one; ``arrays.npz`` may hold only the plain
members ``pipeline.json`` refers to (checked before any is inflated), and a
front-end step only its own fitted fields (``_FITTED_FIELDS``).  Format 1
folders (no checksum of ``pipeline.json``) still load with equal outputs.
Folders written before checksums existed are checked field by field only.
Checksums catch corruption and careless edits, not a determined attacker
(who can rewrite a file and its checksum together; that needs a signature).
The card ``README.md`` is deliberately outside the checksums (it is written
after them and :func:`_digests` skips it): it is documentation a user may
edit, and a folder without one (saved before cards existed) loads the same.
"""

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn._model_card import (
    CARD_FILE,
    check_card_info,
    check_metrics,
    pipeline_card,
    write_card,
)
from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.estimators import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.exceptions import DataError, ParameterError, RFCNNError
from sklearn_rfcnn.inspection import describe_pipeline
from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram
from sklearn_rfcnn.utils._atomic import (
    atomic_folder,
    read_consistently,
    read_json_file,
)
from sklearn_rfcnn.utils._files import open_regular

__all__ = ["load_pipeline", "save_pipeline"]

FORMAT_NAME = "sklearn-rfcnn-pipeline"
#: 2: ``pipeline.json`` carries a ``checksum`` of its own canonical content
#: and the ``sizes`` of the files; version 1 folders (no checksum) still load.
FORMAT_VERSION = 2
PIPELINE_FILE = "pipeline.json"
ARRAYS_FILE = "arrays.npz"
STEPS_DIR = "steps"

#: The library's front-end transformers: parameters and fitted attributes are
#: stored as JSON and arrays.
_TRANSFORMERS = {
    cls.__name__: cls for cls in (AudioLoader, MelSpectrogram, BandStandardizer)
}
#: The library's CNN estimators: stored with their own ``save``/``load``.
_ESTIMATORS = {cls.__name__: cls for cls in (RFCNNClassifier, RFCNNEmbedder)}
#: Types skops does not trust by default that a saved scikit-learn step may
#: hold and that load_pipeline trusts (scikit-learn's own compiled types).
_SKOPS_TRUSTED = ("sklearn.tree._tree.Tree",)

_SCALARS = (bool, int, float, str, type(None))


def _count(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return f"is {value!r}, not a positive integer"
    return None


def _names(value):
    if not (
        isinstance(value, np.ndarray)
        and value.ndim == 1
        and all(isinstance(v, str) for v in value)
    ):
        return "is not a 1-D array of column names"
    return None


def _finite_floats(value):
    if not (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
        return "is not an array of floats"
    if value.ndim > 2 or not np.all(np.isfinite(value)):
        return "holds NaN or inf, or has more than 2 dimensions"
    return None


def _layout(value):
    if value not in ("array2", "array3", "array4", "list2", "list3"):
        return f"is {value!r}, not one of the layouts BandStandardizer records"
    return None


#: The fitted attributes each front-end step may carry, with a check of
#: each value (None when it is fine): anything else in ``pipeline.json``
#: (e.g. a field named like a method) is refused.
_FITTED_FIELDS = {
    "AudioLoader": {"n_features_in_": _count, "feature_names_in_": _names},
    "MelSpectrogram": {"n_features_in_": _count, "feature_names_in_": _names},
    "BandStandardizer": {
        "n_features_in_": _count,
        "feature_names_in_": _names,
        "_layout": _layout,
        "mean_": _finite_floats,
        "scale_": _finite_floats,
    },
}
assert set(_FITTED_FIELDS) == set(_TRANSFORMERS)


def _import_skops(step_name, class_name):
    try:
        import skops.io as sio
    except ImportError:
        raise ImportError(
            f"step {step_name!r} ({class_name}) is not one of "
            "sklearn-rfcnn's own; save_pipeline stores such scikit-learn steps "
            "with skops, which is not installed. Install it (pip install skops) "
            "or save the pipeline with joblib (pickle) instead."
        ) from None
    return sio


# --------------------------------------------------------------------------
# encoding of front-end state
# --------------------------------------------------------------------------


def _encode_value(value, where, arrays):
    """JSON for ``value``; arrays go to ``arrays`` under the key ``where``."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        array = np.asarray(value)
        kind = "array"
        if array.dtype.hasobject:
            if not all(isinstance(v, str) for v in array.ravel()):
                raise ParameterError(
                    f"{where} is an object array that does not hold only strings; "
                    "save_pipeline stores only numeric and string arrays."
                )
            array, kind = array.astype(str), "object_str_array"
        arrays[where] = array
        return {"__kind__": kind, "key": where}
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not np.isfinite(value):
            return {"__kind__": "float", "repr": repr(value)}
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode_value(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)]
        return {"__kind__": type(value).__name__, "items": items}
    raise ParameterError(
        f"{where} is a {type(value).__name__}, which save_pipeline cannot store "
        "without pickle (it stores numbers, strings, lists and arrays)."
    )


def _decode_value(obj, arrays):
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("__kind__")
    if kind == "array":
        return arrays[obj["key"]]
    if kind == "object_str_array":
        return arrays[obj["key"]].astype(object)
    if kind == "float":
        return float(obj["repr"])
    if kind in ("list", "tuple"):
        items = [_decode_value(v, arrays) for v in obj["items"]]
        return items if kind == "list" else tuple(items)
    raise DataError(f"unknown stored value {obj!r}; upgrade sklearn-rfcnn.")


def _check_fitted(name, step):
    try:
        check_is_fitted(step)
    except NotFittedError:
        raise NotFittedError(
            f"step {name!r} ({type(step).__name__}) is not fitted; fit the "
            "pipeline before save_pipeline."
        ) from None


def _json_params(name, step):
    params = step.get_params(deep=False)
    out = {}
    for key, value in params.items():
        arrays = {}
        encoded = _encode_value(value, f"step {name!r} parameter {key!r}", arrays)
        if arrays:
            encoded = np.asarray(value).tolist()
        out[key] = encoded
    return out


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------


def _write(pipe, folder, arrays, prefix):
    """Write ``pipe``'s steps into ``folder``; returns the JSON description."""
    if not isinstance(pipe, Pipeline):
        raise ParameterError(
            f"pipe must be a sklearn.pipeline.Pipeline, got {type(pipe).__name__}; "
            "wrap a single estimator with make_pipeline(...), or use the "
            "estimator's own save(path)."
        )
    params = pipe.get_params(deep=False)
    memory = params.get("memory")
    if not (memory is None or isinstance(memory, str)):
        raise ParameterError(
            f"Pipeline memory={memory!r} cannot be stored; set memory=None (or a "
            "cache folder path) before save_pipeline."
        )
    settings = {k: v for k, v in params.items() if k != "steps"}
    try:
        json.dumps(settings)
    except TypeError as exc:
        raise ParameterError(
            f"a Pipeline parameter cannot be stored as JSON ({exc})."
        ) from None
    steps = []
    for i, (name, step) in enumerate(pipe.steps):
        where = f"{prefix}{name}"
        entry = {"name": name}
        rel = f"{STEPS_DIR}/step{i}"
        if step is None or (isinstance(step, str) and step == "passthrough"):
            entry.update(kind="passthrough", value=step)
        elif type(step) in _TRANSFORMERS.values():
            _check_fitted(where, step)
            params = _json_params(where, step)
            fitted = {
                attr: _encode_value(value, f"{where}.{attr}", arrays)
                for attr, value in vars(step).items()
                if attr not in params
            }
            entry.update(
                kind="transformer",
                cls=type(step).__name__,
                params=params,
                fitted=fitted,
            )
        elif type(step) in _ESTIMATORS.values():
            _check_fitted(where, step)
            step._write_files(folder / rel)
            entry.update(kind="estimator", cls=type(step).__name__, path=rel)
        elif type(step) is Pipeline:
            sub = folder / rel
            sub.mkdir(parents=True)
            entry.update(
                kind="pipeline",
                path=rel,
                pipeline=_write(step, sub, arrays, f"{where}__"),
            )
        elif isinstance(step, BaseEstimator):
            _check_fitted(where, step)
            sio = _import_skops(where, type(step).__name__)
            data = sio.dumps(step)
            untrusted = [
                t for t in sio.get_untrusted_types(data=data) if t not in _SKOPS_TRUSTED
            ]
            if untrusted:
                raise ParameterError(
                    f"step {where!r} ({type(step).__name__}) holds types that "
                    f"cannot be loaded safely without pickle: {untrusted}; replace "
                    "the step with a scikit-learn or sklearn-rfcnn one, or save the "
                    "pipeline with joblib (pickle) instead."
                )
            (folder / STEPS_DIR).mkdir(exist_ok=True)
            (folder / (rel + ".skops")).write_bytes(data)
            entry.update(
                kind="skops",
                cls=f"{type(step).__module__}.{type(step).__qualname__}",
                path=rel + ".skops",
            )
        else:
            raise ParameterError(
                f"step {where!r} is a {type(step).__name__}, not an estimator; "
                "save_pipeline stores scikit-learn and sklearn-rfcnn steps only."
            )
        steps.append(entry)
    return {"settings": settings, "steps": steps}


def _check_target(path, overwrite):
    if path.exists():
        if not path.is_dir():
            raise ParameterError(
                f"path={os.fspath(path)!r} exists and is a file; choose a folder "
                "path for the pipeline."
            )
        if any(path.iterdir()):
            if not (path / PIPELINE_FILE).is_file():
                raise ParameterError(
                    f"path={os.fspath(path)!r} exists and is not a saved pipeline "
                    "folder; choose a new path (save_pipeline never replaces other "
                    "folders)."
                )
            if not overwrite:
                raise ParameterError(
                    f"path={os.fspath(path)!r} already holds a saved pipeline; pass "
                    "overwrite=True to replace it."
                )


def _flat_steps(pipe, prefix=""):
    """``[(name, step)]`` of ``pipe`` with nested Pipelines flattened."""
    out = []
    for name, step in pipe.steps:
        if type(step) is Pipeline:
            out += _flat_steps(step, f"{prefix}{name}__")
        else:
            out.append((f"{prefix}{name}", step))
    return out


def _card(pipe, folder_name, metadata, metrics, license=None, datasets=None):
    """The model card of ``pipe`` (see :mod:`sklearn_rfcnn._model_card`)."""
    flat = _flat_steps(pipe)
    rows, cnn = [], None
    for name, step in flat:
        if step is None or isinstance(step, str):
            rows.append((name, "passthrough", {}))
        elif type(step) in _ESTIMATORS.values():
            rows.append((name, type(step).__name__, None))
            cnn = step
        else:
            rows.append((name, type(step).__name__, step.get_params(deep=False)))
    try:
        description = describe_pipeline(SimpleNamespace(steps=flat))
    except (ParameterError, NotFittedError):  # no spectrogram step, or no CNN
        description = None
    first = next((s for _, s in flat if s is not None and not isinstance(s, str)), None)
    return pipeline_card(
        folder_name,
        rows,
        cnn,
        flat[-1][1] if flat else None,
        description,
        metadata=metadata,
        metrics=metrics,
        first_step=None if first is None else type(first).__name__,
        license=license,
        datasets=datasets,
    )


def save_pipeline(
    pipe,
    path,
    *,
    metadata=None,
    overwrite=False,
    metrics=None,
    license=None,
    datasets=None,
):
    """Save a fitted pipeline (front end and estimators) to a folder, without pickle.

    The library's transformers (:class:`~sklearn_rfcnn.AudioLoader`,
    :class:`~sklearn_rfcnn.MelSpectrogram`,
    :class:`~sklearn_rfcnn.BandStandardizer`) are stored as their
    ``get_params()`` and fitted attributes (JSON numbers and ``.npz`` arrays);
    the CNN estimators through their own ``save`` (JSON plus weight tensors);
    nested Pipelines in the same layout; any other scikit-learn step (e.g.
    :class:`~sklearn.preprocessing.StandardScaler`, :class:`~sklearn.svm.SVC`)
    with `skops <https://skops.readthedocs.io>`_ (an optional dependency),
    refusing a step that holds types skops cannot load safely.

    The folder is written under a temporary name beside ``path`` and renamed
    into place, so readers see either the old or the new pipeline.

    Parameters
    ----------
    pipe : sklearn.pipeline.Pipeline
        A fitted pipeline.
    path : str or path-like
        Folder to create.  An existing saved pipeline there is replaced only
        with ``overwrite=True``; any other non-empty folder is never replaced.
    metadata : dict, default=None
        JSON-serialisable information to keep beside the pipeline (e.g. tag
        names); read it back with ``load_pipeline(path, return_metadata=True)``.
    overwrite : bool, default=False
        Replace a pipeline saved at ``path`` before.
    metrics : dict of str to float, default=None
        Held-out scores to record in the model card ``README.md`` (e.g.
        ``{"pr_auc_macro": 0.81}``).  The card also lists the labels in
        output order (``metadata["target_names"]`` names them when it has
        one name per output), each step's parameters, the architecture, the
        receptive field in pixels, seconds and Hz and the training recipe;
        :func:`load_pipeline` never reads it and no checksum covers it.  The
        metrics also go to the ``model-index`` of the card's YAML front
        matter, where the Hub (and ``huggingface_hub.ModelCard``) reads
        evaluation results; the YAML's ``pipeline_tag`` is
        ``audio-classification``, or ``feature-extraction`` when the last
        step only transforms.
    license : str, default=None
        License identifier for the card's YAML (e.g. ``"mit"``, the Hub's
        ids).
    datasets : str or list of str, default=None
        Data set id(s) for the card's YAML; the first also names the data of
        the ``model-index`` results.

    Returns
    -------
    path : pathlib.Path
        The folder written.

    Raises
    ------
    ParameterError
        ``pipe`` is not a Pipeline, ``path`` is taken, ``metadata`` or a step
        cannot be stored without pickle (the message names the step), or
        ``metrics`` is not a dict of names to numbers.
    sklearn.exceptions.NotFittedError
        A step is not fitted (the message names it).
    ImportError
        A plain scikit-learn step needs skops, which is not installed.

    See Also
    --------
    load_pipeline : Read the folder back.
    RFCNNClassifier.save : The format of a single estimator.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_rfcnn import (BandStandardizer, MelSpectrogram,
    ...                            RFCNNClassifier, load_pipeline, save_pipeline)
    >>> waves = np.random.default_rng(0).normal(size=(8, 4000)).astype("float32")
    >>> pipe = make_pipeline(
    ...     MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=16),
    ...     BandStandardizer(),
    ...     RFCNNClassifier(width=4, rho=2, max_epochs=1, verbose=0, device="cpu",
    ...                     random_state=0),
    ... ).fit(waves, [0, 1] * 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_pipeline(pipe, os.path.join(tmp, "model"),
    ...                            metadata={"note": "demo"})
    ...     loaded, meta = load_pipeline(folder, return_metadata=True)
    >>> meta
    {'note': 'demo'}
    >>> np.array_equal(loaded.predict_proba(waves), pipe.predict_proba(waves))
    True
    """
    path = Path(os.fspath(path)).expanduser()
    try:
        metadata = json.loads(json.dumps({} if metadata is None else dict(metadata)))
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"metadata must be a JSON-serialisable dict ({exc})."
        ) from None
    metrics = check_metrics(metrics)
    check_card_info(license, datasets)  # fail before anything is written
    _check_target(path, overwrite)

    def write():
        with atomic_folder(path, check=lambda p: _check_target(p, overwrite)) as tmp:
            arrays = {}
            description = _write(pipe, tmp, arrays, "")
            if arrays:
                with open(tmp / ARRAYS_FILE, "wb") as f:
                    np.savez(f, **arrays)
            files = _digests(tmp)
            config = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "sklearn_rfcnn_version": __version__,
                "pipeline": description,
                "metadata": metadata,
                "files": files,
                "sizes": {rel: (tmp / rel).stat().st_size for rel in files},
            }
            # through JSON once, so the checksum is over exactly what load reads
            config = json.loads(json.dumps(config))
            config["checksum"] = _content_checksum(config)
            (tmp / PIPELINE_FILE).write_text(json.dumps(config, indent=1))
            # after the checksums, which do not cover it: the card is documentation
            card = _card(pipe, path.name, metadata, metrics, license, datasets)
            write_card(tmp, card)

    accelerator = _accelerator_of(pipe)
    if accelerator is None:
        write()
    else:
        from sklearn_rfcnn.estimators._accelerate import write_on_main_process

        # a step trained data-parallel (distributed="accelerate"): every
        # process calls save_pipeline, the main process writes
        write_on_main_process(accelerator, write)
    return path


def _accelerator_of(pipe):
    """The accelerator of a step trained with ``distributed="accelerate"``, or None."""
    for _, step in getattr(pipe, "steps", []):
        if isinstance(step, Pipeline):
            found = _accelerator_of(step)
        else:
            found = getattr(getattr(step, "net_", None), "accelerator", None)
        if found is not None:
            return found
    return None


def _sha256(file, where=None):
    h = hashlib.sha256()
    with open_regular(file, where) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _content_checksum(config):
    """SHA-256 of ``pipeline.json``'s canonical content, its checksum excluded.

    Canonical: keys sorted, no spaces, so re-indenting the file changes
    nothing while any edit of a parameter, fitted field, metadata entry
    (e.g. the order of ``target_names``) or file digest does.
    """
    body = {k: v for k, v in config.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digests(folder):
    """``{relative path: sha256}`` of every file under ``folder`` but the card."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            file = Path(root) / name
            rel = file.relative_to(folder).as_posix()
            if rel != CARD_FILE:
                out[rel] = _sha256(file)
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------


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
