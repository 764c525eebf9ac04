"""Saving and loading fitted estimators without pickle.

``est.save(path)`` writes a folder with two files:

* ``config.json`` -- the estimator class, its parameters, the classes (their
  type preserved: strings stay strings, integers integers) and the fitted
  metadata (shapes, receptive field, training history, RNG state);
* ``weights.pt`` -- the network's ``state_dict`` as CPU tensors, written with
  :func:`torch.save` and read back with ``torch.load(weights_only=True)``, so
  loading runs no pickled code.

``Estimator.load(path)`` rebuilds the network from the parameters, loads the
weights with ``map_location="cpu"`` (a model trained on a GPU loads on a
CPU-only machine) and moves it to the device the parameters resolve to here
(in the memory format ``channels_last`` asks for).

``save`` also writes ``README.md``, a model card for people (task and labels
in output order, architecture, receptive field in pixels, training recipe,
held-out ``metrics`` when given, how to load; :mod:`sklearn_rfcnn._model_card`).
``load`` never reads it and no checksum covers it: a folder without a card
(saved before cards existed) or with an edited card loads the same.

``save`` writes the folder whole under a scratch name beside ``path`` and
renames it into place (:mod:`sklearn_rfcnn.utils._atomic`), so a reader sees
the old model or the new one, never a mix, even if the writer is killed.

``load`` trusts nothing in the folder.  It checks, and reports as a
:class:`~sklearn_rfcnn.exceptions.DataError` naming the file and the field:

* the parameters, with the constraints ``fit`` uses (``_validate_params``);
* the fitted fields and their agreement (``n_outputs`` against the classes,
  ``multilabel`` against the classes and ``indicator_dtype``, classes sorted
  and unique as ``fit`` stores them, the input shape, ``class_weight`` and
  ``threshold`` lengths);
* the weights: the same tensor names and shapes as the network the
  configuration builds (so the output layer must have ``n_outputs``
  features), and finite values;
* a SHA-256 checksum, written by ``save``, over the configuration and the
  weights file: any edit of ``config.json`` or ``weights.pt`` that the other
  checks cannot see (a reordered ``classes`` list, changed weights of the
  right shape, another parameter value within its constraints) is reported
  as a checksum mismatch.

Both files are read only if they are regular files (not a FIFO, a device
such as ``/dev/zero`` or a socket, also behind a symbolic link), the weights
within the size ``config.json`` records (``weights_size``).  The order is
checks before work: the cheap field checks, then the checksums, then the
network's declared ``width``, ``depth`` and outputs against the numbers and
tensors the weights file holds, then every tensor shape against a network
built on torch's ``meta`` device (no memory), and only then the network.

What is not caught: a folder whose both files were rewritten consistently,
checksum included (the checksum detects accidents and edits, it is not a
signature), and files written before checksums existed (they are checked
field by field only).  A parameter missing from
an older ``config.json`` (e.g. ``channels_last``, or ``crop_frames``,
``window_hop`` and ``aggregate``, added later) takes its default, except
the training recipe's ``freq_mask`` and ``time_mask``, which take 0, the
value such a model was trained with (``_PREDATING_VALUES``).
Pickling (``joblib.dump``) works as well (not after ``distributed="accelerate"``
training: use ``save``); ``save``/``load`` is the format to
share models across machines and library versions.
"""

import hashlib
import inspect
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from sklearn_rfcnn._model_card import CARD_YAML_DOC, estimator_card, write_card
from sklearn_rfcnn.estimators._base import _FITTED_ATTRIBUTES
from sklearn_rfcnn.exceptions import (
    DataError,
    ParameterError,
    RFCNNError,
    RFCNNWarning,
)
from sklearn_rfcnn.models import get_model_entrypoint
from sklearn_rfcnn.receptive_field import DEFAULT_RHO, RELEASE_0_1_DEFAULT_RHO, RF
from sklearn_rfcnn.utils._atomic import (
    atomic_folder,
    read_consistently,
    read_json_file,
)
from sklearn_rfcnn.utils._docstrings import fill_doc
from sklearn_rfcnn.utils._files import read_regular
from sklearn_rfcnn.utils._torch import resolve_device

__all__ = []

FORMAT_NAME = "sklearn-rfcnn"
#: 2: the file records ``model_defaults`` (the values a parameter left at None
#: was built with), so a later change of a library default cannot change it.
FORMAT_VERSION = 2
#: ``model_defaults`` of a version-1 file (release 0.1: the default rho was 5).
_V1_MODEL_DEFAULTS = {"rho": RELEASE_0_1_DEFAULT_RHO}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
#: A weights file larger than this is refused before it is read (the file of
#: a saved model records its exact size; this bounds files that do not).
MAX_WEIGHTS_BYTES = 16 << 30


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.device):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _encode_array(values):
    values = np.asarray(values)
    return {"values": values.tolist(), "dtype": values.dtype.str}


def _decode_array(obj):
    return np.array(obj["values"], dtype=np.dtype(obj["dtype"]))


def _params_to_json(estimator):
    params = estimator.get_params(deep=False)
    if params["callbacks"]:
        raise ParameterError(
            "callbacks=[...] cannot be stored as JSON; save() keeps plain "
            "parameters only. Set callbacks=None before saving, or use "
            "joblib.dump for the whole estimator."
        )
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState instance: its role is over
    params["device"] = str(params["device"])
    params["threshold"] = np.asarray(params["threshold"]).tolist()
    cw = params.get("class_weight")
    if isinstance(cw, dict):  # keys may be ints: keep their type through JSON
        params["class_weight"] = {"items": [[k, v] for k, v in cw.items()]}
    elif cw is not None and not isinstance(cw, str):
        params["class_weight"] = np.asarray(cw, dtype=np.float64).tolist()
    try:
        json.dumps(params, default=_json_default)
    except TypeError as exc:
        raise ParameterError(
            f"a parameter cannot be stored as JSON ({exc}); net_params must hold "
            "plain values (numbers, strings, lists). Use joblib.dump instead."
        ) from None
    return params


def _dtype_str(dtype):
    return None if dtype is None else np.dtype(dtype).str


#: ``config.json`` key -> (attribute, encode, decode), one per entry of
#: :data:`~sklearn_rfcnn.estimators._base._FITTED_ATTRIBUTES`.
_ENCODERS = {
    "classes": ("classes_", _encode_array, _decode_array),
    "n_outputs": ("n_outputs_", int, int),
    "n_features_in": ("n_features_in_", int, int),
    "feature_names_in": ("feature_names_in_", _encode_array, _decode_array),
    "receptive_field": ("receptive_field_", list, lambda v: RF(*v)),
    "multilabel": ("_multilabel", bool, bool),
    "indicator_dtype": (
        "_indicator_dtype",
        _dtype_str,
        lambda v: None if v is None else np.dtype(v),
    ),
    "clip_shape": ("_clip_shape", list, tuple),
    "two_d": ("_two_d", bool, bool),
    "precision": ("precision_", str, str),  # this and the next two: redecided on load
    "channels_last": ("channels_last_", bool, bool),
    "inference_channels_last": ("inference_channels_last_", bool, bool),
    # a model fitted on a clip source refuses sources of another front end
    "front_end_checksum": ("front_end_checksum_", str, str),
}
assert sorted(a for a, _, _ in _ENCODERS.values()) == sorted(_FITTED_ATTRIBUTES)


def _canonical(obj):
    """The bytes the checksum is computed over (key order and spacing fixed)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), default=_json_default
    ).encode("utf-8")


def _config_checksum(config, weights_digest):
    body = {k: v for k, v in config.items() if k != "checksum"}
    h = hashlib.sha256(_canonical(body))
    h.update(weights_digest.encode("ascii"))
    return h.hexdigest()


#: Parameters added after files were first written, with the value a file
#: without them was trained with (their defaults at their release may differ).
_PREDATING_VALUES = {"freq_mask": 0, "time_mask": 0}


def _with_model_defaults(params, config, version, bad):
    """``params`` as the saved model was built and trained.

    A model saved with ``rho=None`` was built with the library's default rho of
    its release; setting it explicitly keeps the network (and its outputs)
    the same after :data:`~sklearn_rfcnn.receptive_field.DEFAULT_RHO` changes.
    A parameter the file predates (:data:`_PREDATING_VALUES`) gets the value
    the model was trained with, not today's default, so a refit of a loaded
    model repeats its recipe.
    """
    for name, value in _PREDATING_VALUES.items():
        params.setdefault(name, value)
    defaults = config.get("model_defaults", _V1_MODEL_DEFAULTS if version < 2 else None)
    if not isinstance(defaults, dict) or not isinstance(defaults.get("rho"), int):
        raise bad("'model_defaults'", "is missing or has no integer 'rho'")
    if params.get("rho") is None and _arch_takes_rho(params.get("arch", "cp_resnet")):
        params["rho"] = defaults["rho"]
    return params


def _arch_takes_rho(arch):
    try:
        entrypoint = get_model_entrypoint(arch)
    except (RFCNNError, TypeError):  # an unknown arch fails later, with its message
        return False
    return "rho" in inspect.signature(entrypoint).parameters


def _check_target(path):
    """``save`` replaces an estimator folder or an empty one, nothing else."""
    if os.path.lexists(path) and not path.is_dir():
        raise ParameterError(
            f"path={os.fspath(path)!r} exists and is not a folder; choose a "
            "folder path for the model."
        )
    if path.is_dir() and any(path.iterdir()):
        if not (path / CONFIG_FILE).is_file():
            raise ParameterError(
                f"path={os.fspath(path)!r} is a folder that holds no saved model "
                f"({CONFIG_FILE}); choose a new path (save never replaces other "
                "folders)."
            )


class _PersistenceMixin:
    """``save(path)`` / ``load(path)`` for estimators built on ``_BaseRFCNN``."""

    @fill_doc(card_yaml=CARD_YAML_DOC)
    def save(self, path, *, metrics=None, license=None, datasets=None):
        """Write the fitted estimator to the folder ``path`` (no pickle).

        The folder is written whole under a scratch name beside ``path`` and
        renamed into place, so a reader (or a crash) sees the old model or
        the new one, never a mix.  Besides ``config.json`` and ``weights.pt``
        it holds ``README.md``, a model card (labels in output order,
        architecture, receptive field in pixels, training recipe, metrics);
        :meth:`load` ignores the card.

        Parameters
        ----------
        path : str or path-like
            Folder to create, or a folder written by ``save`` before (it is
            replaced, card included).
        metrics : dict of str to float, default=None
            Held-out scores to record in the card (e.g.
            ``{"pr_auc_macro": 0.81}``), in its Markdown and in the
            ``model-index`` of its YAML front matter (the Hub's evaluation
            results); the card says none were given otherwise.
        %(card_yaml)s

        Returns
        -------
        path : pathlib.Path
            The folder written.

        Raises
        ------
        ParameterError
            ``path`` is a file or a folder that is not a saved model, a
            parameter cannot be stored as JSON, ``metrics`` is not a dict
            of names to numbers, or ``license`` / ``datasets`` are not
            strings.

        Notes
        -----
        After data-parallel training (``distributed="accelerate"`` over
        several processes) every process must call ``save``; only the main
        process writes and the others wait until it has (the folder is
        complete on return everywhere).  The saved model loads as a plain
        single-process estimator.
        """
        check_is_fitted(self)
        path = Path(os.fspath(path)).expanduser()
        _check_target(path)
        params = _params_to_json(self)  # fail before anything is written
        card = estimator_card(
            self, path.name, metrics, license=license, datasets=datasets
        )
        accelerator = getattr(self.net_, "accelerator", None)
        if accelerator is None:
            self._write_folder(path, params, card)
            return path
        from sklearn_rfcnn.estimators._accelerate import write_on_main_process

        # data-parallel training (distributed="accelerate"): every process
        # holds the same model; the main process writes, the others wait
        write_on_main_process(
            accelerator, lambda: self._write_folder(path, params, card)
        )
        return path

    def _write_folder(self, path, params, card):
        with atomic_folder(path, check=_check_target) as tmp:
            self._write_files(tmp, params)
            write_card(tmp, card)

    def _write_files(self, folder, params=None):
        """Write ``config.json`` and ``weights.pt`` into the existing ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        net = self.net_
        fitted = {
            key: encode(getattr(self, attr))
            for key, (attr, encode, _) in _ENCODERS.items()
            if getattr(self, attr, None) is not None
        }
        fitted.update(
            {
                "history": net.history.to_list(),
                "rng_state": net.rng.bit_generator.state,
                "class_weight": (
                    None if net.class_weight is None else np.asarray(net.class_weight)
                ),
            }
        )
        config = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "estimator": type(self).__name__,
            "params": _params_to_json(self) if params is None else params,
            "model_defaults": {"rho": DEFAULT_RHO},
            "fitted": fitted,
        }
        # through JSON once, so the checksum is over exactly what load reads
        config = json.loads(json.dumps(config, default=_json_default))
        state = {k: v.detach().cpu() for k, v in net.module_.state_dict().items()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        weights = buffer.getvalue()
        digest = hashlib.sha256(weights).hexdigest()
        config["weights_sha256"] = digest
        config["weights_size"] = len(weights)
        config["checksum"] = _config_checksum(config, digest)
        (folder / WEIGHTS_FILE).write_bytes(weights)
        with open(folder / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
        return folder

    @classmethod
    def load(cls, path):
        """Rebuild an estimator written by :meth:`save`, checking every part.

        Parameters
        ----------
        path : str or path-like
            Folder written by ``save``.

        Returns
        -------
        estimator : instance of this class
            Fitted and ready to predict; on a machine without the saved
            device (e.g. CUDA) it runs on the CPU, with a warning.

        Raises
        ------
        DataError
            The folder is missing, truncated, tampered with or inconsistent;
            the message names the file and the field (see the module
            docstring for what is checked).
        """
        path = Path(os.fspath(path)).expanduser()
        return read_consistently(path, lambda folder: cls._load_folder(folder, path))

    @classmethod
    def _load_folder(cls, folder, shown=None):
        shown = os.fspath(folder if shown is None else shown)
        config_file = Path(folder) / CONFIG_FILE
        if not os.path.lexists(config_file):
            raise DataError(
                f"{shown!r} holds no {CONFIG_FILE}; pass the folder written by save()."
            )
        try:
            return cls._load_checked(Path(folder), config_file)
        except (RFCNNError, NotFittedError):
            raise
        except Exception as exc:  # a file the checks did not foresee
            raise DataError(
                f"{os.fspath(config_file)!r} and {WEIGHTS_FILE} do not make a "
                f"loadable model ({type(exc).__name__}: {exc}); save the model "
                "again."
            ) from exc

    @classmethod
    def _load_checked(cls, folder, config_file):
        """Every check of the model file, in order, then the estimator.

        Field checks (:data:`_CONFIG_CHECKS`, :data:`_FITTED_CHECKS`), the
        checksums, the declared sizes against the weights, every tensor shape
        on a network built on torch's ``meta`` device, and only then the real
        network.
        """
        where = os.fspath(config_file)

        def bad(field, problem):
            return DataError(f"{where!r}: {field} {problem}; save the model again.")

        config, version = _read_config(cls, config_file, where, bad)
        weights_file = folder / WEIGHTS_FILE
        weights = _read_weights(weights_file, config.get("weights_size"))
        digest = hashlib.sha256(weights).hexdigest()
        estimator = _estimator_from_params(cls, config, version, where, bad)
        fitted = config["fitted"]
        _check_table(fitted, _FITTED_CHECKS, bad)
        _set_fitted(estimator, fitted, bad)
        _check_checksums(config, digest, weights_file, where)
        state = _read_state(weights, weights_file)
        _check_declared_sizes(estimator, state, bad)
        try:
            with torch.device("meta"), _SkipInitOnMeta():
                shapes = estimator._create_module(
                    estimator._clip_shape[0], estimator.n_outputs_
                )
        except (RFCNNError, TypeError, ValueError, KeyError) as exc:
            raise bad("'params'", f"do not build a network ({exc})") from None
        _check_weights(state, shapes, weights_file)
        module = estimator._create_module(
            estimator._clip_shape[0], estimator.n_outputs_
        )
        module.load_state_dict(state)
        _attach_net(estimator, module, fitted, bad)
        return estimator


def _is_byte_count(value):
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    )


def _is_epoch_records(value):
    return isinstance(value, list) and all(isinstance(row, dict) for row in value)


#: Checks of ``config.json``'s own fields: (field, as shown, check, problem).
#: A problem may name the value as ``{value!r}``.
_CONFIG_CHECKS = (
    (
        "format_version",
        "format_version",
        lambda v: isinstance(v, int),
        "is {value!r}, not an integer",
    ),
    (
        "params",
        "'params'",
        lambda v: isinstance(v, dict),
        "is missing or not an object",
    ),
    (
        "fitted",
        "'fitted'",
        lambda v: isinstance(v, dict),
        "is missing or not an object",
    ),
    (
        "weights_size",
        "'weights_size'",
        _is_byte_count,
        "is {value!r}, not a byte count",
    ),
)

#: Checks of the ``fitted`` fields before any is decoded (the decoders of
#: :data:`_ENCODERS` and :func:`_check_fitted_fields` check the rest).
_FITTED_CHECKS = (
    *(
        (key, f"fitted field {key!r}", lambda v: v is not None, "is missing")
        for key in ("classes", "n_outputs", "clip_shape", "multilabel", "rng_state")
    ),
    (
        "history",
        "fitted field 'history'",
        lambda v: v is None or _is_epoch_records(v),
        "is not a list of epoch records",
    ),
)


def _check_table(record, table, bad):
    """Walk a table of field checks over ``record``; raise on the first failure."""
    for field, shown, check, problem in table:
        value = record.get(field)
        if not check(value):
            raise bad(shown, problem.format(value=value))


def _read_config(cls, config_file, where, bad):
    """``config.json``: an sklearn-rfcnn model of a known version for ``cls``."""
    config = read_json_file(config_file, where)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise DataError(f"{where!r} is not an sklearn-rfcnn model.")
    # the file without format_version is version 0; the config itself is left
    # as read, since its checksum covers exactly what was saved
    version = config.get("format_version", 0)
    _check_table({**config, "format_version": version}, _CONFIG_CHECKS, bad)
    if version > FORMAT_VERSION:
        raise DataError(
            f"{where!r} has format version {version}; upgrade sklearn-rfcnn to load it."
        )
    name = config.get("estimator")
    if name is not None and name != cls.__name__:
        raise DataError(
            f"{where!r} holds a {name}, not a {cls.__name__}; load it with "
            f"{name}.load()."
        )
    return config, version


def _read_weights(weights_file, size):
    """The weights file's bytes: a regular file of the recorded size, read once."""
    try:
        return read_regular(weights_file, max_bytes=MAX_WEIGHTS_BYTES, size=size)
    except DataError as exc:
        raise DataError(f"{exc} The model folder is incomplete or damaged.") from None


def _estimator_from_params(cls, config, version, where, bad):
    """An unfitted estimator from ``params``, with the constraints fit uses."""
    params = _with_model_defaults(dict(config["params"]), config, version, bad)
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise bad(f"params {unknown}", f"are not parameters of {cls.__name__}")
    cw = params.get("class_weight")
    if isinstance(cw, dict) and "items" in cw:
        try:
            params["class_weight"] = {
                (k if not isinstance(k, list) else tuple(k)): v for k, v in cw["items"]
            }
        except (TypeError, ValueError):
            raise bad("params 'class_weight'", "is not a list of pairs") from None
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise DataError(f"{where!r}: field 'params': {exc}") from None
    return estimator


def _set_fitted(estimator, fitted, bad):
    """Decode the fitted fields onto ``estimator`` and check them together."""
    for key, (attr, _, decode) in _ENCODERS.items():
        if fitted.get(key) is not None:
            try:
                value = decode(fitted[key])
            except (TypeError, ValueError, KeyError) as exc:
                raise bad(f"fitted field {key!r}", f"is malformed ({exc})") from None
            setattr(estimator, attr, value)
    if not hasattr(estimator, "front_end_checksum_"):  # None, or an older file
        estimator.front_end_checksum_ = None
    _check_fitted_fields(estimator, fitted, bad)


def _check_checksums(config, digest, weights_file, where):
    """The weights' and the configuration's checksums, before any tensor is built."""
    stored_digest = config.get("weights_sha256")
    if stored_digest is not None and stored_digest != digest:
        raise DataError(
            f"{os.fspath(weights_file)!r} does not match its checksum in "
            f"{where!r}: the weights were changed after save(); save the "
            "model again."
        )
    stored = config.get("checksum")
    if stored is not None and stored != _config_checksum(config, digest):
        raise DataError(
            f"{where!r} does not match its checksum: the configuration (e.g. "
            "the order of 'classes') was edited after save(); save the model "
            "again."
        )


def _read_state(weights, weights_file):
    """The state dict in the weights' bytes: tensors only (``weights_only``)."""
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"{os.fspath(weights_file)!r} is not a weights file written by "
            f"save() ({type(exc).__name__}: {exc}); the file is truncated or "
            "damaged."
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise DataError(
            f"{os.fspath(weights_file)!r} does not hold a dict of tensors; "
            "save the model again."
        )
    return state


def _attach_net(estimator, module, fitted, bad):
    """The skorch net around the loaded ``module``, on this machine's device."""
    try:
        device = resolve_device(estimator.device)
    except ParameterError:
        warnings.warn(
            f"the model was saved with device={estimator.device!r}, which is "
            "not available here; loading it on the CPU.",
            RFCNNWarning,
            stacklevel=6,
        )
        device = "cpu"
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = fitted["rng_state"]
    except (TypeError, ValueError, KeyError) as exc:
        raise bad("fitted field 'rng_state'", f"is malformed ({exc})") from None
    class_weight = fitted.get("class_weight")
    if class_weight is not None:
        class_weight = np.asarray(class_weight, dtype=np.float32)
    net = estimator._build_net(module, device, rng, class_weight)
    net.initialize()
    net.history = History(fitted.get("history") or [])
    estimator.net_ = net
    estimator.history_ = net.history


def _check_fitted_fields(est, fitted, bad):
    """The fitted fields agree with each other as ``fit`` leaves them."""
    classes = np.asarray(est.classes_)
    n_outputs = est.n_outputs_
    if classes.ndim != 1:
        raise bad("fitted field 'classes'", f"has shape {classes.shape}, not 1-D")
    if n_outputs != len(classes):
        raise bad(
            "fitted field 'n_outputs'",
            f"is {n_outputs} but 'classes' lists {len(classes)} labels",
        )
    if est._multilabel:
        if n_outputs < 1:
            raise bad("fitted field 'n_outputs'", f"is {n_outputs}; tags need >= 1")
        if getattr(est, "_indicator_dtype", None) is None:
            raise bad(
                "fitted field 'multilabel'",
                "is true but no 'indicator_dtype' is stored (a multi-class model?)",
            )
        if not np.array_equal(classes, np.arange(n_outputs)):
            raise bad(
                "fitted field 'multilabel'",
                "is true but 'classes' are not the tag columns 0..n_outputs-1 "
                "(a multi-class model?)",
            )
    else:
        if getattr(est, "_indicator_dtype", None) is not None:
            raise bad(
                "fitted field 'multilabel'",
                "is false but an 'indicator_dtype' is stored (a tagging model?)",
            )
        if n_outputs < 2:
            raise bad("fitted field 'n_outputs'", f"is {n_outputs}; classes need >= 2")
        try:
            ordered = np.unique(classes)
        except TypeError:
            raise bad("fitted field 'classes'", "mixes label types") from None
        if len(ordered) != len(classes) or not np.array_equal(ordered, classes):
            raise bad(
                "fitted field 'classes'",
                "is not sorted and unique as fit() stores it (reordered or "
                "repeated labels)",
            )
    shape = est._clip_shape
    if len(shape) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
        for s in shape
    ):
        raise bad("fitted field 'clip_shape'", f"is {list(shape)}, not 2 positive ints")
    n_in = getattr(est, "n_features_in_", None)
    if n_in is not None and n_in < 1:
        raise bad("fitted field 'n_features_in'", f"is {n_in}, not >= 1")
    cw = fitted.get("class_weight")
    if cw is not None:
        weights = np.asarray(cw, dtype=np.float64)
        if weights.shape != (n_outputs,) or not np.all(np.isfinite(weights)):
            raise bad(
                "fitted field 'class_weight'",
                f"must be {n_outputs} finite numbers (got shape {weights.shape})",
            )
    threshold = np.asarray(est.threshold, dtype=np.float64)
    if threshold.ndim == 1 and threshold.shape != (n_outputs,):
        raise bad(
            "params 'threshold'",
            f"lists {threshold.size} values for {n_outputs} outputs",
        )


class _SkipInitOnMeta(torch.overrides.TorchFunctionMode):
    """In-place initialisers (``normal_``, ``zero_``...) on meta tensors do nothing.

    A network built on torch's ``meta`` device has shapes and no data, so its
    ``init_weights`` has nothing to fill; skipping it avoids torch's meta
    kernels for random initialisers, whose first use imports
    ``torch._dynamo`` (about 5 s).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__"):
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def _check_declared_sizes(est, state, bad):
    """The network's declared sizes fit in the weights file's numbers.

    Every registered network maps ``width`` channels to ``width`` channels
    at least once (so it holds at least ``width**2`` numbers), its first
    layer reads ``clip_shape[0]`` channels into ``width`` ones, and each of
    its ``depth`` layers stores at least one tensor: a configuration that
    declares more than the weights file holds is refused before a network
    of that size is built.
    """
    n_tensors = len(state)
    n_numbers = sum(int(v.numel()) for v in state.values())
    width, depth = getattr(est, "width", None), getattr(est, "depth", None)
    if isinstance(width, int) and width * width > n_numbers:
        raise bad(
            "params 'width'",
            f"is {width}, but {WEIGHTS_FILE} holds only {n_numbers} numbers (a "
            f"network that wide holds at least {width * width})",
        )
    if isinstance(width, int) and est._clip_shape[0] * width > n_numbers:
        raise bad(
            "fitted field 'clip_shape'",
            f"declares {est._clip_shape[0]} input channels, more than "
            f"{WEIGHTS_FILE} holds numbers for",
        )
    if isinstance(depth, int) and depth > n_tensors:
        raise bad(
            "params 'depth'",
            f"is {depth}, but {WEIGHTS_FILE} holds only {n_tensors} tensors (a "
            "network that deep stores at least one per layer)",
        )
    if est.n_outputs_ > n_numbers:
        raise bad(
            "fitted field 'n_outputs'",
            f"is {est.n_outputs_}, more than {WEIGHTS_FILE} holds numbers for",
        )


def _check_weights(state, module, weights_file):
    """Same tensor names and shapes as ``module``, and finite values."""
    where = os.fspath(weights_file)
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise DataError(f"{where!r} does not hold a dict of tensors; save again.")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise DataError(
            f"{where!r} does not fit the network in config.json: "
            + (f"missing tensors {missing[:3]}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected tensors {extra[:3]}" if extra else "")
            + "; the weights belong to another model."
        )
    for key, ref in expected.items():
        value = state[key]
        if tuple(value.shape) != tuple(ref.shape):
            raise DataError(
                f"{where!r}: tensor {key!r} has shape {tuple(value.shape)}, but "
                f"config.json builds {tuple(ref.shape)} (e.g. a different number "
                "of outputs or width); the weights belong to another model."
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise DataError(
                f"{where!r}: tensor {key!r} holds NaN or infinite values; the "
                "model diverged or the file is damaged. Train and save it again."
            )
