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
(in the memory format ``channels_last`` asks for).  A parameter missing from
an older ``config.json`` (e.g. ``channels_last``, or ``crop_frames``,
``window_hop`` and ``aggregate``, added later) takes its default.
Pickling (``joblib.dump``) works as well; ``save``/``load`` is the format to
share models across machines and library versions.
"""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from sklearn_rfcnn.estimators._base import _FITTED_ATTRIBUTES
from sklearn_rfcnn.exceptions import DataError, ParameterError, RFCNNWarning
from sklearn_rfcnn.receptive_field import RF
from sklearn_rfcnn.utils._torch import resolve_device

__all__ = []

FORMAT_NAME = "sklearn-rfcnn"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"


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
    # recorded for the reader; a loaded model decides afresh (``_build_net``)
    "precision": ("precision_", str, str),
    "channels_last": ("channels_last_", bool, bool),
    # a model fitted on a clip source refuses sources of another front end
    "front_end_checksum": ("front_end_checksum_", str, str),
}
assert sorted(a for a, _, _ in _ENCODERS.values()) == sorted(_FITTED_ATTRIBUTES)


class _PersistenceMixin:
    """``save(path)`` / ``load(path)`` for estimators built on ``_BaseRFCNN``."""

    def save(self, path):
        """Write the fitted estimator to the folder ``path`` (no pickle).

        Parameters
        ----------
        path : str or path-like
            Folder to create (or reuse); it receives ``config.json`` and
            ``weights.pt``.

        Returns
        -------
        path : pathlib.Path
            The folder written.
        """
        check_is_fitted(self)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
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
            "params": _params_to_json(self),
            "fitted": fitted,
        }
        state = {k: v.detach().cpu() for k, v in net.module_.state_dict().items()}
        torch.save(state, path / WEIGHTS_FILE)
        with open(path / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1, default=_json_default)
        return path

    @classmethod
    def load(cls, path):
        """Rebuild an estimator written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            Folder written by ``save``.

        Returns
        -------
        estimator : instance of this class
            Fitted and ready to predict; on a machine without the saved
            device (e.g. CUDA) it runs on the CPU, with a warning.
        """
        path = Path(path)
        config_file = path / CONFIG_FILE
        if not config_file.is_file():
            raise DataError(
                f"{os.fspath(path)!r} holds no {CONFIG_FILE}; pass the folder "
                "written by save()."
            )
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
        if config.get("format") != FORMAT_NAME:
            raise DataError(
                f"{os.fspath(config_file)!r} is not an sklearn-rfcnn model."
            )
        if config.get("format_version", 0) > FORMAT_VERSION:
            raise DataError(
                f"{os.fspath(config_file)!r} has format version "
                f"{config['format_version']}; upgrade sklearn-rfcnn to load it."
            )
        params = dict(config["params"])
        cw = params.get("class_weight")
        if isinstance(cw, dict) and "items" in cw:
            params["class_weight"] = {
                (k if not isinstance(k, list) else tuple(k)): v for k, v in cw["items"]
            }
        estimator = cls(**params)
        fitted = config["fitted"]
        for key, (attr, _, decode) in _ENCODERS.items():
            if fitted.get(key) is not None:
                setattr(estimator, attr, decode(fitted[key]))
        if not hasattr(estimator, "front_end_checksum_"):  # None, or an older file
            estimator.front_end_checksum_ = None

        try:
            device = resolve_device(estimator.device)
        except ParameterError:
            warnings.warn(
                f"the model was saved with device={estimator.device!r}, which is "
                "not available here; loading it on the CPU.",
                RFCNNWarning,
                stacklevel=2,
            )
            device = "cpu"
        module = estimator._create_module(
            estimator._clip_shape[0], estimator.n_outputs_
        )
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
        rng = np.random.default_rng()
        rng.bit_generator.state = fitted["rng_state"]
        class_weight = fitted.get("class_weight")
        if class_weight is not None:
            class_weight = np.asarray(class_weight, dtype=np.float32)
        net = estimator._build_net(module, device, rng, class_weight)
        net.initialize()
        net.history = History(fitted["history"])
        estimator.net_ = net
        estimator.history_ = net.history
        return estimator
