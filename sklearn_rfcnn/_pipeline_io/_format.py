"""The pipeline folder's format: names, field encodings and checksums.

Shared by the writer (:mod:`._write`) and the reader (:mod:`._read`); see the
package docstring for the folder's layout.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn._model_card import (
    CARD_FILE,
)
from sklearn_rfcnn.estimators import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram
from sklearn_rfcnn.utils._files import open_regular

__all__ = []

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
