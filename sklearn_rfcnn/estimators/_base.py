"""Shared machinery of the estimators that own a skorch net.

:class:`_BaseRFCNN` holds the common hyper-parameters and their constraints,
validates clips and targets, seeds every random draw from ``random_state``,
resolves the device and precision, builds the network and the private skorch
net (:class:`~sklearn_rfcnn.estimators._net._RFCNNNet`), trains it and runs
batched inference.  :class:`~sklearn_rfcnn.RFCNNClassifier` and
:class:`~sklearn_rfcnn.RFCNNEmbedder` add only their public faces (``predict*``
and ``transform``).

Input layouts accepted everywhere (``X``):

* 4-D ``(n, C, F, T)``: clips with ``C`` channels, ``F`` mel bands, ``T`` frames;
* 3-D ``(n, F, T)``: single-channel clips;
* 2-D ``(n, n_features)``: a one-band input ``(n, 1, 1, n_features)`` (so that
  ordinary tabular data and scikit-learn's common checks work); the time roll
  is not applied to it;
* a list of ``(F, T_i)`` or ``(C, F, T_i)`` arrays of different lengths
  (``MelSpectrogram`` on clips of different durations);
* a *clip source* (``__rfcnn_clip_source__ = True``, ``len``, ``src[i]`` ->
  ``(C, F, T_i)``, ``lengths``, ``clip_shape``, optional
  ``front_end_checksum``), e.g. :class:`sklearn_rfcnn.datasets.SpectrogramStore`:
  read one clip (or crop) at a time, never whole.

Length policy (the user guide, "Long recordings: crops, windows and
taggrams"):

* ``crop_frames=None``, every clip of one length: batches of whole clips, as
  the fully convolutional network was always trained;
* ``crop_frames=None``, clips of different lengths: training batches of
  ``batch_size`` clips sorted by length (within shuffled pools), each clip
  cropped at a random start to the shortest clip of its batch (fresh offsets
  every epoch, so no frame is left out for good); validation and inference
  see whole clips, batched by length;
* ``crop_frames=W``: training batches of ``batch_size`` random crops of ``W``
  frames; validation and inference slide windows of ``W`` frames every
  ``window_hop`` frames and aggregate each clip's window logits
  (``aggregate``; embeddings always by the mean);
* a clip shorter than the crop or the window is tiled (repeated end to
  start) up to it.
"""

import copy
import inspect
import math
import numbers
import warnings

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    column_or_1d,
)
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split

from sklearn_rfcnn.estimators._data import (
    _ClipDataset,
    _is_clip_source,
    _train_loader,
    _valid_loader,
)
from sklearn_rfcnn.estimators._length import check_crop, reduce_windows, window_hop
from sklearn_rfcnn.estimators._net import _RFCNNNet
from sklearn_rfcnn.estimators.callbacks import (
    PAPER_DECAY_END,
    LRSchedule,
    StochasticWeightAveraging,
    _ceil_fraction,
)
from sklearn_rfcnn.exceptions import (
    DataError,
    ParameterError,
    RFCNNWarning,
)
from sklearn_rfcnn.models import check_model_args, create_model, get_model_entrypoint
from sklearn_rfcnn.receptive_field import receptive_field
from sklearn_rfcnn.utils._checks import _is_ragged, _reject_strings
from sklearn_rfcnn.utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    validate_data,
)
from sklearn_rfcnn.utils._stratify import multilabel_holdout
from sklearn_rfcnn.utils._torch import (
    AMP_DTYPES,
    cpu_native_bf16,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
    seeded_torch,
)
from sklearn_rfcnn.utils._validation import ParamValidationMixin

__all__ = []

#: Smallest probability returned for multi-label output (strictly inside (0, 1)).
_PROBA_EPS = np.finfo(np.float64).eps

#: Patience of the internal early stopping (epochs without a better
#: validation loss); change it with
#: ``net_params={"callbacks__early_stopping__patience": k}``.
_EARLY_STOPPING_PATIENCE = 5

#: Model parameters whose estimator default (None) differs from the network's
#: own default, where the network takes them (chosen in
#: ``benchmarks/recipe_study.py``; the paper's values stay reachable).
_RECIPE_MODEL_DEFAULTS = {"head": "pooled"}

#: ``optimizer`` parameter -> torch optimizer.
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

#: Hold-out used by ``early_stopping=True`` when ``validation_fraction`` is None.
_EARLY_STOPPING_FRACTION = 0.1

#: Keyword arguments a registered network may take from the estimator.
_MODEL_PARAMS = (
    "rho",
    "rho_f",
    "rho_t",
    "width",
    "depth",
    "frequency_aware",
    "shake_shake",
    "head",
)


#: Fitted state of every RF-CNN estimator besides ``net_`` and ``history_``:
#: what :meth:`RFCNNEmbedder.from_classifier` shares and ``save``/``load``
#: persist (``_persistence._ENCODERS`` has one entry per name).
_FITTED_ATTRIBUTES = (
    "classes_",
    "n_outputs_",
    "n_features_in_",
    "feature_names_in_",
    "receptive_field_",
    "_multilabel",
    "_indicator_dtype",
    "_clip_shape",
    "_two_d",
    "precision_",
    "channels_last_",
    "front_end_checksum_",
)


def _reject_missing_labels(y):
    """Raise a DataError naming the rows of ``y`` that hold None or NaN."""
    y = np.asarray(y, dtype=object if np.asarray(y).dtype == object else None)
    if y.dtype == object:
        missing = np.array([v is None or v != v for v in y.ravel()]).reshape(y.shape)
    elif y.dtype.kind == "f":
        missing = np.isnan(y)
    else:
        return
    if missing.ndim > 1:
        missing = missing.any(axis=tuple(range(1, missing.ndim)))
    rows = np.flatnonzero(missing)
    if rows.size:
        raise DataError(
            f"y has no label at index {rows[:5].tolist()}"
            f"{' (and more)' if rows.size > 5 else ''} (None or NaN); give every "
            "clip a label, or drop those clips (for partly labelled tags, use "
            "mask)."
        )


def _tag_counts(Y, mask):
    """Known positive and negative entries of each tag: ``(pos, neg)``."""
    known = np.ones_like(Y) if mask is None else mask
    return (known * (Y > 0.5)).sum(axis=0), (known * (Y <= 0.5)).sum(axis=0)


class _BaseRFCNN(ParamValidationMixin, BaseEstimator):
    """Common parameters and training of the RF-CNN estimators (private).

    See :class:`~sklearn_rfcnn.RFCNNClassifier` for the parameters.  A
    subclass docstring's ``%(parameters)s`` is replaced by the shared
    ``Parameters`` section.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "%(parameters)s" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("%(parameters)s", _PARAMETERS_DOC)

    _parameter_constraints = {
        "arch": [str],
        "rho": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "rho_f": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "rho_t": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "width": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "depth": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "frequency_aware": ["boolean"],
        "shake_shake": ["boolean"],
        "head": [StrOptions({"map", "pooled"}), None],
        "mixup_alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "roll": [Interval(numbers.Integral, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"adam", "adamw"})],
        "lr_schedule": [StrOptions({"cosine", "linear", "constant"})],
        "warmup": [Interval(numbers.Real, 0, 1, closed="left")],
        "swa": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "early_stopping": ["boolean"],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both"), "array-like"],
        "class_weight": [StrOptions({"balanced"}), dict, "array-like", None],
        "output_bias": [StrOptions({"prior", "zero"})],
        "crop_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "window_hop": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "aggregate": [StrOptions({"mean", "max"})],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "32", "bf16", "16"})],
        "channels_last": ["boolean", StrOptions({"auto"})],
        "distributed": [StrOptions({"accelerate"}), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "net_params": [dict, None],
    }

    def __init__(
        self,
        *,
        arch="cp_resnet",
        rho=None,
        rho_f=None,
        rho_t=None,
        width=None,
        depth=None,
        frequency_aware=False,
        shake_shake=False,
        head=None,
        mixup_alpha=0.3,
        roll=50,
        lr=1e-3,
        weight_decay=1e-2,
        max_epochs=100,
        batch_size=32,
        optimizer="adamw",
        lr_schedule="cosine",
        warmup=0.05,
        swa=False,
        validation_fraction=None,
        early_stopping=False,
        threshold=0.5,
        class_weight=None,
        output_bias="zero",
        crop_frames=None,
        window_hop=None,
        aggregate="mean",
        device="auto",
        precision="auto",
        channels_last="auto",
        distributed=None,
        random_state=None,
        verbose=1,
        callbacks=None,
        net_params=None,
    ):
        self.arch = arch
        self.rho = rho
        self.rho_f = rho_f
        self.rho_t = rho_t
        self.width = width
        self.depth = depth
        self.frequency_aware = frequency_aware
        self.shake_shake = shake_shake
        self.head = head
        self.mixup_alpha = mixup_alpha
        self.roll = roll
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.warmup = warmup
        self.swa = swa
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.threshold = threshold
        self.class_weight = class_weight
        self.output_bias = output_bias
        self.crop_frames = crop_frames
        self.window_hop = window_hop
        self.aggregate = aggregate
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.net_params = net_params

    # ------------------------------------------------------------------
    # training (public)
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, mask=None):
        """Train the network from scratch for ``max_epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n, F, T), (n, C, F, T) or (n, n_features), \
                or list of arrays of shape (F, T_i)
            Spectrograms.
        y : array-like of shape (n,) or (n, n_tags)
            Class labels, or a 0/1 indicator matrix for multi-label tagging.
        sample_weight : array-like of shape (n,), default=None
            Non-negative weight of each clip's loss.
        mask : array-like of shape (n, n_tags), default=None
            Multi-label only: 1 where the tag of a clip is known, 0 where it is
            unknown (excluded from the loss).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, mask=mask)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None, mask=None):
        """Train one more epoch (the first call builds the network).

        Each call is one epoch over the given data, with the learning rate the
        schedule assigns to that point of training (the floor after
        ``max_epochs``); the internal hold-out, when ``validation_fraction``
        is set, is drawn from each call's data.  Early stopping and SWA act
        within a call, so they are meant for :meth:`fit`.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms, as in :meth:`fit`.
        y : array-like of shape (n,) or (n, n_tags)
            Labels or indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            Every class label, needed on the first call when ``y`` of that
            call does not contain them all; ignored afterwards.
        sample_weight : array-like of shape (n,), default=None
            Weight of each clip's loss.
        mask : array-like of shape (n, n_tags), default=None
            Known entries of a multi-label ``y``.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(
            X,
            y,
            sample_weight=sample_weight,
            mask=mask,
            classes=classes,
            incremental=True,
        )

    def _check_params_extra(self):
        """Cross-parameter checks that need no data (run before every fit)."""
        # parameters the chosen architecture cannot use, and values (rho
        # against depth) it rejects, without building the network
        check_model_args(self.arch, **self._model_kwargs())
        if self.crop_frames is not None:
            self._window_hop(self.crop_frames)

    # ------------------------------------------------------------------
    # data validation
    # ------------------------------------------------------------------
    def _check_source(self, X, *, reset, y):
        """Validate a clip source's cheap metadata (nothing is read)."""
        name = type(self).__name__
        n = len(X)
        clip_shape = getattr(X, "clip_shape", None)
        try:
            clip_shape = tuple(int(v) for v in clip_shape)
        except TypeError:
            clip_shape = None
        if clip_shape is None or len(clip_shape) != 2 or min(clip_shape) < 1:
            raise DataError(
                f"the clip source X has clip_shape={getattr(X, 'clip_shape', None)!r}"
                "; a source must announce (n_channels, n_bands) of its clips."
            )
        lengths = np.asarray(getattr(X, "lengths", None))
        if lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.integer):
            raise DataError(
                f"the clip source X has {n} clips but lengths of shape "
                f"{lengths.shape} and dtype {lengths.dtype}; lengths must be an "
                f"integer array of shape ({n},), the frames of each clip."
            )
        if n == 0:
            raise DataError(f"the clip source X is empty; {name} needs clips.")
        if lengths.min() < 1:
            bad = int(np.flatnonzero(lengths < 1)[0])
            raise DataError(
                f"clip {bad} of the clip source X has {int(lengths[bad])} frames; "
                "every clip needs at least one frame (rebuild the source "
                "without empty clips)."
            )
        if not isinstance(y, str):
            if y is None:
                raise ValueError(
                    f"{name} requires y to be passed, but the target y is None."
                )
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
            if len(y) != n:
                raise DataError(
                    f"y has {len(y)} rows but the clip source X holds {n} clips; "
                    "give one target per clip, in the source's order."
                )
        checksum = getattr(X, "front_end_checksum", None)
        checksum = None if checksum is None else str(checksum)
        n_features = clip_shape[1] if clip_shape[0] == 1 else clip_shape[0]
        if reset:
            self.n_features_in_ = n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self.front_end_checksum_ = checksum
        else:
            fitted = getattr(self, "front_end_checksum_", None)
            if fitted is not None and checksum is not None and checksum != fitted:
                raise DataError(
                    f"the clip source X was built with the front end {checksum!r}, "
                    f"but {name} was fitted on spectrograms of the front end "
                    f"{fitted!r}; rebuild the store with the training front end "
                    "(the same AudioLoader/MelSpectrogram/BandStandardizer "
                    "settings) and pass that store instead."
                )
        return X, y

    def _check_clips(self, X, *, reset, y="no_validation"):
        """Validate X (and y in fit) and return ``(clips, y, two_d)``.

        ``clips`` is a float32 ndarray ``(n, C, F, T)``, for variable-length
        input a list of float32 ``(C, F, T_i)`` arrays, or a clip source
        (validated by its metadata only).
        """
        name = type(self).__name__
        if _is_clip_source(X):
            clips, y = self._check_source(X, reset=reset, y=y)
            shape = tuple(int(v) for v in clips.clip_shape)
            two_d = False
            if reset:
                self._clip_shape = shape
                self._two_d = False
            elif shape != self._clip_shape:
                raise DataError(
                    f"the clip source X has clips of {shape[0]} channel(s) x "
                    f"{shape[1]} band(s), but {name} was fitted on "
                    f"{self._clip_shape[0]} channel(s) x {self._clip_shape[1]} "
                    "band(s); build the source with the training front end."
                )
            return clips, y, two_d
        _reject_strings(X, name)
        if (
            isinstance(X, np.ndarray)
            and X.dtype == object
            and X.ndim == 1
            and len(X)
            and all(hasattr(x, "shape") for x in X)
        ):
            X = list(X)  # an object array of clips, as a list of clips
        if _is_ragged(X):
            clips = self._check_ragged(X, reset=reset)
            two_d = False
            if y is None:
                raise ValueError(
                    f"{name} requires y to be passed, but the target y is None."
                )
            if not isinstance(y, str):
                y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
                check_consistent_length(clips, y)
        else:
            kwargs = dict(dtype=np.float32, allow_nd=True, reset=reset)
            if isinstance(y, str):
                X = validate_data(self, X, **kwargs)
            else:
                X, y = validate_data(self, X, y, multi_output=True, **kwargs)
            if X.ndim > 4:
                raise DataError(
                    f"X has {X.ndim} dimensions; {name} takes (n, n_features), "
                    "(n, n_bands, n_frames) or (n, n_channels, n_bands, n_frames)."
                )
            two_d = X.ndim == 2
            if two_d:
                clips = X[:, None, None, :]
            elif X.ndim == 3:
                clips = X[:, None]
            else:
                clips = X
            clips = np.ascontiguousarray(clips, dtype=np.float32)
        shape = (clips[0].shape[0], clips[0].shape[1]) if len(clips) else None
        if reset:
            self._clip_shape = shape
            self._two_d = two_d
            self.front_end_checksum_ = None
        elif shape != self._clip_shape:
            raise DataError(
                f"X has clips of {shape[0]} channel(s) x {shape[1]} band(s), but "
                f"{name} was fitted on {self._clip_shape[0]} channel(s) x "
                f"{self._clip_shape[1]} band(s); use the same MelSpectrogram "
                "settings (n_mels) at fit and predict time."
            )
        return clips, y, two_d

    def _check_ragged(self, X, *, reset):
        """Validate a list of clips of different lengths."""
        clips = []
        for i, x in enumerate(X):
            ndim = np.ndim(x)
            if ndim not in (2, 3):
                raise DataError(
                    f"X[{i}] has {ndim} dimension(s) (shape {np.shape(x)}); clips "
                    "in a list must be (n_bands, n_frames) or (n_channels, "
                    "n_bands, n_frames)."
                )
            x = check_array(
                x,
                dtype=np.float32,
                allow_nd=True,
                ensure_min_samples=1,
                ensure_min_features=1,
                input_name=f"X[{i}]",
            )
            if x.ndim not in (2, 3):
                raise DataError(
                    f"X[{i}] has shape {x.shape}; clips in a list must be "
                    "(n_bands, n_frames) or (n_channels, n_bands, n_frames)."
                )
            clips.append(np.ascontiguousarray(x if x.ndim == 3 else x[None]))
        if len({c.shape[:2] for c in clips}) > 1:
            shapes = sorted({c.shape[:2] for c in clips})
            raise DataError(
                f"the clips in X differ in channels x bands ({shapes}); only the "
                "number of frames may vary between clips."
            )
        n_features = X[0].shape[0]
        if reset:
            # validate_data cannot take a ragged list: record what it would.
            self.n_features_in_ = n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif n_features != self.n_features_in_:
            raise DataError(
                f"X has {n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return clips

    def _encode_targets(self, y, *, reset, classes=None):
        """Return encoded targets: int64 indices or a float32 indicator matrix."""
        if reset:
            if y.ndim == 2 and y.shape[1] == 1:
                warnings.warn(
                    "A column-vector y was passed when a 1d array was expected. "
                    "Please change the shape of y to (n_samples,), for example "
                    "using ravel().",
                    DataConversionWarning,
                    stacklevel=3,
                )
                y = column_or_1d(y)
            _reject_missing_labels(y)
            check_classification_targets(y)
            self._multilabel = type_of_target(y) == "multilabel-indicator"
            if self._multilabel:
                y = np.asarray(y)
                self._indicator_dtype = y.dtype
                self.classes_ = np.arange(y.shape[1])
                empty = np.flatnonzero(y.sum(axis=0) == 0)
                if empty.size:
                    warnings.warn(
                        f"the tag column(s) {empty.tolist()} of y have no positive "
                        "example; the network will learn to predict them absent.",
                        RFCNNWarning,
                        stacklevel=3,
                    )
            else:
                y = column_or_1d(y)
                labels = np.unique(y) if classes is None else np.unique(classes)
                if labels.size < 2:
                    raise DataError(
                        f"y contains only one class ({labels.tolist()}); "
                        f"{type(self).__name__} needs samples of at least 2 "
                        "classes (or an indicator matrix for tagging)."
                    )
                self.classes_ = labels
            self.n_outputs_ = len(self.classes_)
        if self._multilabel:
            y = np.asarray(y)
            if y.ndim != 2 or y.shape[1] != self.n_outputs_:
                raise DataError(
                    f"y has shape {y.shape}; {type(self).__name__} was fitted on "
                    f"an indicator matrix of {self.n_outputs_} tags."
                )
            return y.astype(np.float32)
        y = column_or_1d(y, warn=True)
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise DataError(
                f"y contains labels {unseen.tolist()} not among the classes "
                f"{self.classes_.tolist()}; pass classes= on the first partial_fit."
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _check_mask(self, mask, n_samples):
        if mask is None:
            return None
        if not self._multilabel:
            raise DataError(
                "mask is only for multi-label (indicator matrix) targets; for "
                "class labels use sample_weight."
            )
        mask = check_array(mask, dtype=np.float32, input_name="mask")
        if mask.shape != (n_samples, self.n_outputs_):
            raise DataError(
                f"mask has shape {mask.shape}; it must match y, "
                f"({n_samples}, {self.n_outputs_}), with 1 for known entries."
            )
        mask = (mask != 0).astype(np.float32)
        if not mask.any():
            warnings.warn(
                "mask marks no entry of y as known: nothing contributes to the "
                "loss and the network will not learn; pass 1 for the known "
                "(clip, tag) entries.",
                RFCNNWarning,
                stacklevel=4,
            )
        else:
            unknown_rows = np.flatnonzero(~mask.any(axis=1))
            if unknown_rows.size:
                warnings.warn(
                    f"{unknown_rows.size} clip(s) have no known tag in mask "
                    f"(first rows: {unknown_rows[:5].tolist()}); they do not "
                    "contribute to the loss.",
                    RFCNNWarning,
                    stacklevel=4,
                )
        return mask

    # ------------------------------------------------------------------
    # network and net
    # ------------------------------------------------------------------
    def _model_kwargs(self):
        """The model parameters the user set, checked against ``arch``.

        A parameter left at its default (None, or False for the switches)
        lets the architecture use its own standard value; a parameter the
        architecture cannot take raises instead of being silently ignored.
        """
        entrypoint = get_model_entrypoint(self.arch)  # "did you mean" on typos
        accepted = inspect.signature(entrypoint).parameters
        kwargs, unusable = {}, []
        for name in _MODEL_PARAMS:
            value = getattr(self, name)
            if value is None and name in _RECIPE_MODEL_DEFAULTS and name in accepted:
                value = _RECIPE_MODEL_DEFAULTS[name]
            if value is None or value is False:
                continue
            if name in accepted:
                kwargs[name] = value
            else:
                unusable.append(f"{name}={value!r}")
        if unusable:
            raise ParameterError(
                f"arch={self.arch!r} cannot use {', '.join(unusable)}; its "
                f"parameters are {', '.join(p for p in accepted if p in _MODEL_PARAMS)}"
                ". Leave the others at None/False (the receptive-field parameters "
                "rho, rho_f, rho_t and the variants frequency_aware, shake_shake "
                'are for arch="cp_resnet").'
            )
        return kwargs

    def _create_module(self, in_channels, n_outputs):
        return create_model(
            self.arch,
            in_channels=in_channels,
            n_classes=n_outputs,
            **self._model_kwargs(),
        )

    def _accelerator(self):
        """``(accelerator, device)`` of this process (``distributed="accelerate"``)."""
        from sklearn_rfcnn.estimators._accelerate import make_accelerator

        accelerator, device = make_accelerator(self.device)
        if self.swa and accelerator.num_processes > 1:
            raise ParameterError(
                "swa=True is not supported with distributed='accelerate' over "
                f"{accelerator.num_processes} processes (the weight average and its "
                "batch-norm refresh are not sharded); set swa=False, or train "
                "in one process."
            )
        return accelerator, device

    def _resolve_execution(self, device):
        """``(precision, channels_last)`` on ``device``: "auto" decided from it.

        See :func:`~sklearn_rfcnn.utils._torch.resolve_precision` and
        :func:`~sklearn_rfcnn.utils._torch.resolve_channels_last`.
        """
        precision = resolve_precision(self.precision, device)
        return precision, resolve_channels_last(self.channels_last, device, precision)

    def _execution_summary(self, device):
        """One line saying how the net runs on ``device`` and why (``fit``)."""
        name = {"32": "float32", "bf16": "bf16 autocast", "16": "float16 autocast"}
        text = f"{type(self).__name__}: {device}, {name[self.precision_]}"
        if self.precision == "auto" and device.startswith("cpu"):
            flags = cpu_native_bf16()
            text += (
                f" (native bf16: {', '.join(flags)})"
                if flags
                else " (no native bf16 on this CPU)"
            )
        layout = "channels-last" if self.channels_last_ else "contiguous (NCHW)"
        text += f", {layout} memory format"
        auto = [p for p in ("precision", "channels_last") if getattr(self, p) == "auto"]
        if auto:
            text += f"; chosen by {' and '.join(f'{p}=auto' for p in auto)}"
        return text

    def _class_weight_vector(self, y_enc, mask):
        """``class_weight`` as one float32 weight per class or per tag, or None.

        Classes: the weight of every clip of that class (``"balanced"``:
        ``n / (n_classes * count)``, as :func:`sklearn.utils.compute_class_weight`).
        Tags: the weight of a *positive* entry relative to a negative one, as
        ``pos_weight`` of :class:`torch.nn.BCEWithLogitsLoss` (``"balanced"``:
        ``n_negative / n_positive`` over the known entries of each tag, so
        that a tag's positives and negatives weigh the same in total; 1 for a
        tag without positives).
        """
        cw = self.class_weight
        if cw is None:
            return None
        n_out = self.n_outputs_
        if isinstance(cw, str):  # "balanced"
            if self._multilabel:
                pos, neg = _tag_counts(y_enc, mask)
                weights = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
            else:
                counts = np.bincount(y_enc, minlength=n_out).astype(np.float64)
                present = counts > 0
                weights = np.ones(n_out)
                weights[present] = len(y_enc) / (present.sum() * counts[present])
        elif isinstance(cw, dict):
            keys = list(self.classes_)
            weights = np.ones(n_out)
            for label, w in cw.items():
                if label not in keys:
                    raise ParameterError(
                        f"class_weight has the key {label!r}, which is not among "
                        f"the {'tag indices' if self._multilabel else 'classes'} "
                        f"{np.asarray(keys).tolist()}."
                    )
                weights[keys.index(label)] = w
        else:
            weights = np.asarray(cw, dtype=np.float64)
            if weights.shape != (n_out,):
                raise ParameterError(
                    f"class_weight has shape {weights.shape}; give one weight per "
                    f"{'tag' if self._multilabel else 'class'}, shape ({n_out},), "
                    "in the order of classes_."
                )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ParameterError(
                "class_weight must be finite and non-negative; got "
                f"{np.asarray(weights).tolist()}."
            )
        return np.asarray(weights, dtype=np.float32)

    def _init_output_bias(self, module, y_enc, mask, class_weight):
        """Start the logits at the (class-weighted) label prior of the training data.

        Tags: the log-odds of each tag's share of positive entries; classes:
        the log of each class's share.  The loss then starts at the entropy
        of the labels instead of that of a coin flip (``output_bias="prior"``;
        measured in ``benchmarks/recipe_study.py``).
        """
        init = getattr(module, "init_output_bias", None)
        if init is None:  # a network without the hook keeps its own init
            return
        n_out = self.n_outputs_
        cw = np.ones(n_out) if class_weight is None else class_weight
        if self._multilabel:
            pos, neg = _tag_counts(y_enc, mask)
            pos = cw * pos
            p = np.clip((pos + 0.5) / (pos + neg + 1.0), 1e-3, 1 - 1e-3)
            bias = np.log(p) - np.log1p(-p)
        else:
            counts = cw * np.bincount(y_enc, minlength=n_out)
            p = (counts + 0.5) / (counts.sum() + 0.5 * n_out)
            bias = np.log(p) - np.log(p).mean()
        ref = next(module.parameters())
        init(torch.as_tensor(bias, dtype=ref.dtype, device=ref.device))

    def _build_net(self, module, device, rng, class_weight=None, accelerator=None):
        """The skorch net for ``module`` on ``device``.

        Also decides (and records as ``precision_`` / ``channels_last_``) how
        the net runs on this device: a loaded model decides afresh for the
        machine it is loaded on.  With an ``accelerator`` (``fit`` with
        ``distributed="accelerate"``) the net trains data-parallel
        (:class:`~._accelerate._AcceleratedRFCNNNet`); without one (and
        always in ``load``) it is a plain :class:`_RFCNNNet`.
        """
        cuda = device.startswith("cuda")
        self.precision_, self.channels_last_ = self._resolve_execution(device)
        callbacks = [
            (
                "lr_schedule",
                LRSchedule(
                    self.max_epochs,
                    kind=self.lr_schedule,
                    warmup=self.warmup,
                    floor=0.0 if self.lr_schedule == "cosine" else 0.01,
                ),
            )
        ]
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=_EARLY_STOPPING_PATIENCE,
                        load_best=True,
                    ),
                )
            )
        if self.swa:
            start = _ceil_fraction(PAPER_DECAY_END, self.max_epochs)
            callbacks.append(("swa", StochasticWeightAveraging(start)))
        callbacks.extend(copy.deepcopy(self.callbacks or []))
        criterion = (
            torch.nn.BCEWithLogitsLoss
            if self._multilabel
            else torch.nn.CrossEntropyLoss
        )
        kwargs = dict(
            criterion=criterion,
            optimizer=_OPTIMIZERS[self.optimizer],
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=_train_loader,
            iterator_valid=_valid_loader,
            iterator_train__shuffle=True,
            iterator_train__crop_frames=self.crop_frames,
            iterator_valid__window=self.crop_frames,
            iterator_valid__hop=(
                None if self.crop_frames is None else self._window_hop(self.crop_frames)
            ),
            iterator_train__pin_memory=cuda,
            iterator_valid__pin_memory=cuda,
            train_split=None,
            callbacks=callbacks,
            verbose=self.verbose,
            device=device,
            multilabel=self._multilabel,
            mixup_alpha=self.mixup_alpha,
            roll=0 if self._two_d else self.roll,
            rng=rng,
            amp_dtype=AMP_DTYPES[self.precision_],
            class_weight=class_weight,
            channels_last=self.channels_last_,
            aggregate=self.aggregate,
        )
        if accelerator is not None:
            from sklearn_rfcnn.estimators._accelerate import _print_sink

            # the epoch table from the main process only, and only when verbose
            kwargs["callbacks__print_log__sink"] = _print_sink(
                accelerator, self.verbose
            )
        kwargs.update(self.net_params or {})
        if accelerator is not None:
            from sklearn_rfcnn.estimators._accelerate import _AcceleratedRFCNNNet

            return _AcceleratedRFCNNNet(module, accelerator=accelerator, **kwargs)
        return _RFCNNNet(module, **kwargs)

    def _window_hop(self, window):
        """Frames between window starts (:func:`._length.window_hop`)."""
        return window_hop(window, self.window_hop)

    def _check_crop(self, dataset, two_d):
        """``crop_frames`` against the training clips (:func:`._length.check_crop`)."""
        check_crop(self.crop_frames, dataset.lengths, two_d, type(self).__name__)

    def _validation_fraction(self):
        """The hold-out actually used: None unless something uses one."""
        if self.validation_fraction:
            return self.validation_fraction
        if self.early_stopping:
            return _EARLY_STOPPING_FRACTION
        return None

    def _split(self, dataset, y_enc, seed):
        """Internal hold-out: (train, valid) datasets; valid is None when off."""
        fraction = self._validation_fraction()
        n = len(dataset)
        n_valid = math.ceil(fraction * n) if fraction else 0
        if n_valid == 0 or n - n_valid < 2:
            if fraction:
                warnings.warn(
                    f"validation_fraction={fraction} leaves no usable hold-out with "
                    f"{n} samples; training without internal validation.",
                    RFCNNWarning,
                    stacklevel=4,
                )
            return dataset, None
        if self._multilabel:
            train, valid = multilabel_holdout(y_enc, n_valid, random_state=seed)
            return dataset.subset(train), dataset.subset(valid)
        splitter = ShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
        counts = np.bincount(y_enc, minlength=self.n_outputs_)
        if counts.min() >= 2 and min(n_valid, n - n_valid) >= self.n_outputs_:
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=n_valid, random_state=seed
            )
        train, valid = next(splitter.split(np.zeros(n), y_enc))
        return dataset.subset(train), dataset.subset(valid)

    def _fit(self, X, y, *, sample_weight, mask, classes=None, incremental=False):
        """Fit from scratch, or train one more epoch when ``incremental``."""
        first = not (incremental and hasattr(self, "net_"))
        clips, y, two_d = self._check_clips(X, reset=first, y=y)
        y_enc = self._encode_targets(y, reset=first, classes=classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight,
                np.zeros((len(clips), 1), dtype=np.float32),
                dtype=np.float32,
                ensure_non_negative=True,
            )
        mask = self._check_mask(mask, len(clips))
        if self._multilabel:
            self._threshold_array()
        dataset = _ClipDataset(clips, y_enc, sample_weight, mask)
        self._check_crop(dataset, two_d)

        if first:
            accelerator = None
            if self.distributed == "accelerate":
                accelerator, device = self._accelerator()
            else:
                device = resolve_device(self.device)
            random_state = check_random_state(self.random_state)
            torch_seed, np_seed = random_state.randint(np.iinfo(np.int32).max, size=2)
            rng = np.random.default_rng(int(np_seed))
            in_channels = self._clip_shape[0]
            with seeded_torch(int(torch_seed), device):
                module = self._create_module(in_channels, self.n_outputs_)
                class_weight = self._class_weight_vector(y_enc, mask)
                net = self._build_net(module, device, rng, class_weight, accelerator)
                net.initialize()
                if self.output_bias == "prior":
                    self._init_output_bias(net.module_, y_enc, mask, class_weight)
            self.receptive_field_ = receptive_field(module)
            if self.verbose and (accelerator is None or accelerator.is_main_process):
                summary = self._execution_summary(device)
                if accelerator is not None:
                    summary += (
                        f"; data parallel over {accelerator.num_processes} "
                        f"process(es) (Accelerate), batch_size={self.batch_size} "
                        "in all"
                    )
                print(summary, flush=True)
        else:
            net = self.net_
        epochs = 1 if incremental else self.max_epochs
        torch_seed = int(net.rng.integers(np.iinfo(np.int32).max))
        split_seed = int(net.rng.integers(np.iinfo(np.int32).max))
        train, valid = self._split(dataset, y_enc, split_seed)
        net.train_split = None if valid is None else predefined_split(valid)
        net.max_epochs = epochs
        try:
            with seeded_torch(torch_seed, net.device):
                net.partial_fit(train)
        finally:
            # the hold-out is not kept inside the fitted estimator
            net.train_split = None
        self.net_ = net
        self.history_ = net.history
        return self

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _forward(self, X, *, features=False):
        """Logits (or pooled embeddings) for X as a float32 ndarray.

        With ``crop_frames``: the windows' logits aggregated per clip by
        ``aggregate`` (embeddings by the mean); else each clip whole.
        """
        clips, _, _ = self._check_clips(X, reset=False)
        dataset = _ClipDataset(clips)
        if self.crop_frames is None:
            return self.net_.forward_clips(dataset, self.batch_size, features=features)
        window = self.crop_frames
        outputs, offsets, _ = self.net_.forward_windows(
            dataset, self.batch_size, window, self._window_hop(window), features
        )
        return reduce_windows(outputs, offsets, "mean" if features else self.aggregate)

    def _forward_frames(self, X, window_frames):
        """Per-window logits of every clip: ``(outputs, offsets, starts, window)``."""
        window = self.crop_frames if window_frames is None else window_frames
        if window is None:
            raise ParameterError(
                f"{type(self).__name__} was fitted with crop_frames=None, so it "
                "has no window length; pass window_frames=<frames> (e.g. the "
                "length of the training clips), or fit with crop_frames."
            )
        if (
            isinstance(window, bool | np.bool_)
            or not isinstance(window, numbers.Integral)
            or window < 1
        ):
            raise ParameterError(
                f"window_frames={window!r} must be an int >= 1 (frames), or None "
                "for crop_frames."
            )
        window = int(window)
        clips, _, _ = self._check_clips(X, reset=False)
        outputs, offsets, starts = self.net_.forward_windows(
            _ClipDataset(clips), self.batch_size, window, self._window_hop(window)
        )
        return outputs, offsets, starts, window

    def _proba_from_logits(self, logits):
        logits = logits.astype(np.float64)
        if self._multilabel:
            return np.clip(expit(logits), _PROBA_EPS, 1.0 - _PROBA_EPS)
        return softmax(logits, axis=1)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.target_tags.required = True
        device = str(self.device)
        tags.non_deterministic = device.startswith("cuda") or (
            device == "auto" and torch.cuda.is_available()
        )
        return tags

    def _threshold_array(self):
        threshold = np.asarray(self.threshold, dtype=np.float64)
        if threshold.ndim == 0:
            return threshold
        if threshold.shape != (self.n_outputs_,):
            raise ParameterError(
                f"threshold has shape {threshold.shape}; give a scalar or one "
                f"value per tag, shape ({self.n_outputs_},)."
            )
        return threshold


#: The shared ``Parameters`` section of the public estimators' docstrings.
_PARAMETERS_DOC = """arch : str, default="cp_resnet"
        Registered network (:func:`sklearn_rfcnn.models.list_models`):
        ``"cp_resnet"``, or the baselines ``"vgg_cnn"``, ``"resnet18"``,
        ``"resnet34"``.  A model parameter below that the network cannot take
        (``rho`` for a baseline, say) raises a :class:`ParameterError` when
        set; left at None/False it does not reach the network.
    rho : int >= 0 or None, default=None
        Receptive-field regulariser of CP-ResNet: the number of 3x3
        convolutions after the first block (0..``depth - 4``); None is the
        library's default, :data:`sklearn_rfcnn.receptive_field.DEFAULT_RHO`
        (chosen by measurement, see the user guide's defaults table).  The
        fitted receptive field in pixels is ``receptive_field_``.
    rho_f, rho_t : int >= 0 or None, default=None
        Separate rho along frequency / time (None: ``rho``).
    width : int >= 1 or None, default=None
        Base channel count; None is the architecture's standard width (128
        for CP-ResNet as in the paper, 64 for VGG-style and ResNet-18/34).
        CP-ResNet's pooled embedding has ``4 * width`` features.
    depth : int or None, default=None
        CP-ResNet depth, of the form ``6 n + 2`` (None: 26).
    frequency_aware : bool, default=False
        Add the frequency-coordinate channel in every block (CP-FAResNet).
    shake_shake : bool, default=False
        Two residual branches mixed with Shake-Shake regularisation.
    head : {"pooled", "map"} or None, default=None
        Where CP-ResNet's classifier batch norm sits: ``"map"`` is the
        paper's head (BN on the class map, then pooling), ``"pooled"`` pools
        first (see :class:`~sklearn_rfcnn.models.CPResNet`); None is
        ``"pooled"`` for CP-ResNet, which trains much faster in short runs
        (``benchmarks/README.md``).
    mixup_alpha : float >= 0, default=0.3
        Mixup: each training example gets ``lam ~ Beta(alpha, alpha)``,
        ``lam = max(lam, 1 - lam)``, and is mixed with a random partner of its
        batch; inputs and *losses* are mixed.  0 switches mixup off.
    roll : int >= 0, default=50
        Random circular shift of each training clip along time by up to
        ``roll`` frames.  0 switches it off; never applied to 2-D ``X``.
    lr : float >= 0, default=1e-3
        Peak learning rate (the paper: 1e-4 over 350 epochs).
    weight_decay : float >= 0, default=1e-2
        Weight decay: decoupled (AdamW) with ``optimizer="adamw"``, an L2
        penalty in the gradient with ``"adam"`` (the paper: 0).
    max_epochs : int >= 1, default=100
        Epochs of ``fit``.
    batch_size : int >= 1, default=32
        Mini-batch size for training and inference.
    optimizer : {"adam", "adamw"}, default="adamw"
        AdamW (decoupled weight decay) or Adam (the paper's).
    lr_schedule : {"cosine", "linear", "constant"}, default="cosine"
        ``"cosine"``: after the warm-up, a half cosine from ``lr`` to 0 over
        the remaining training, updated every batch.  ``"linear"``: the
        paper's schedule scaled to ``max_epochs`` -- flat for the first 1/7
        of the epochs, then a linear decay that reaches the floor ``lr / 100``
        at 5/7, then the floor (the reference trains 350 epochs with corners
        at 50 and 250).  The rate at the start of every epoch is in
        ``history_[:, "lr"]``.
    warmup : float in [0, 1), default=0.05
        Fraction of ``max_epochs`` over which the learning rate rises
        linearly (per batch) from ~0 to ``lr`` (the paper: 0).  The defaults
        and the paper's values side by side, with the measured effect of
        each: the user guide, "The training recipe".
    swa : bool, default=False
        Stochastic weight averaging over the epochs from 5/7 of training on
        (the reference starts at epoch 250 of 350); the averaged weights
        replace the final ones and batch-norm statistics are recomputed on
        the training data.
    validation_fraction : float in [0, 1) or None, default=None
        Internal hold-out whose loss is reported as ``valid_loss``: stratified
        for class labels, and for tags by iterative stratification (every
        tag with two or more positive clips lands on both sides).  None (or
        0) trains on every clip -- unless ``early_stopping`` needs a hold-out,
        which is then 0.1.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for 5 epochs and
        restore the best weights (holds out ``validation_fraction``, or a
        tenth of the clips when that is None).
    threshold : float in [0, 1] or array-like of shape (n_tags,), default=0.5
        Multi-label decision threshold(s) of ``predict``.
    class_weight : "balanced", dict, array-like of shape (n_outputs,) or None, \
            default=None
        Classes: the weight of every clip of a class in the loss, as in
        scikit-learn (``"balanced"``: ``n_samples / (n_classes * count)``; a
        dict maps labels to weights; an array is in ``classes_`` order).
        Tags: the weight of a tag's *positive* entries relative to its
        negatives (``pos_weight`` of :class:`torch.nn.BCEWithLogitsLoss`;
        ``"balanced"``: ``n_negative / n_positive`` per tag, so both sides
        weigh the same; a dict maps tag indices to weights).  Multiplies
        ``sample_weight``.
    output_bias : {"zero", "prior"}, default="zero"
        Initial bias of the logits: ``"zero"`` as the paper does, or
        ``"prior"``: the label prior of the training data (log-odds per tag,
        log-share per class, class-weighted).  ``"prior"`` lowers the
        training loss but measured 0.02-0.06 mAP *worse* on held-out clips in
        25-epoch runs (``benchmarks/README.md``), hence not the default.
    crop_frames : int >= 1 or None, default=None
        Train on random crops of this many frames: every training batch
        holds ``batch_size`` crops (one per clip, at a start drawn afresh
        every epoch from the seeded RNG), whatever the clips' lengths, so
        mixup and batch normalisation always see full batches; only the last
        batch of an epoch may be smaller (a last batch of one clip joins the
        one before).  A clip shorter than the crop is *tiled* (repeated end
        to start) up to it, the same wrap as the circular ``roll`` -- zero
        padding would add a block of "average energy" (0 after
        :class:`~sklearn_rfcnn.BandStandardizer`) with a hard edge that the
        network only ever meets on short clips, and global pooling would
        average it into the clip's evidence; a fit warns which clips are
        tiled, and a ``crop_frames`` longer than *every* training clip is an
        error.  Validation (the internal hold-out, early stopping) and
        prediction then slide windows of ``crop_frames`` frames over each
        clip (``window_hop``) and aggregate them (``aggregate``).  None
        trains on whole clips: batches of one length; clips of different
        lengths are sorted by length within shuffled pools of 8 batches and
        each batch is cropped at random starts to its shortest clip (a few
        frames of the longer clips are left out of that epoch, different ones
        every epoch); validation and prediction then see whole clips.  Not for
        2-D ``X``.  Crops shorter than the receptive field (``receptive_field_``)
        train, but give the network less context than it can use; inputs
        smaller than a network's minimum size are edge-replicated inside the
        network.
    window_hop : int >= 1 or None, default=None
        Frames between the starts of consecutive prediction/validation
        windows (at most the window length); None is half a window.  Windows
        start at 0, ``window_hop``, ...; when the last one does not reach the
        clip's end one more is aligned to the end, so every frame is seen.
    aggregate : {"mean", "max"}, default="mean"
        How the windows' logits are combined per clip (with ``crop_frames``):
        ``"mean"`` (the default) suits classes and clip-level tags (genre,
        mood: a property of the whole recording, every window votes);
        ``"max"`` suits tags of events that may sound in one part of a
        recording only (an instrument solo): a tag is as probable as in its
        most confident window.  Embeddings
        (:meth:`RFCNNEmbedder.transform`) are always averaged.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when present, else the CPU.
    precision : {"auto", "32", "bf16", "16"}, default="auto"
        Autocast precision of the forward passes (convolutions and linear
        layers; weights, batch-norm statistics, the loss, the optimizer state
        and the returned probabilities stay float32).  ``"auto"`` decides
        from the hardware: on a CPU, bf16 where it has native bf16 arithmetic
        (AMX or AVX-512-BF16, as :func:`torch.cpu.get_capabilities` reports)
        and float32 where bf16 would be emulated (AVX2 only: ~10x slower); on
        CUDA, bf16 where supported, else float16 with a gradient scaler.  The
        choice is ``precision_``.  bf16 and float32 reach the same held-out
        mAP within the seed-to-seed spread (``benchmarks/README.md``).
    channels_last : bool or "auto", default="auto"
        Run the network in the ``torch.channels_last`` memory format: the
        module's weights are converted after it is built (and after loading)
        and every input batch is made channels-last before the forward pass.
        ``"auto"`` is True on CPUs where it was measured faster
        (``benchmarks/speed.py``): with bf16, and in float32 on AVX-512
        CPUs; False on AVX2-only CPUs (slower training at width 128 there);
        True on CUDA with mixed precision.  The choice is ``channels_last_``.
        A trained network predicts the
        same in both layouts up to floating-point rounding; training takes a
        slightly different numerical path (as on other hardware), so the same
        ``random_state`` gives identical models only in the same layout.
    distributed : {"accelerate"} or None, default=None
        ``"accelerate"``: data-parallel training of one model over the
        processes of a Hugging Face Accelerate (or ``torchrun``) launch --
        GPUs in production, CPU processes (gloo) for tests -- through skorch's
        ``AccelerateMixin``; needs the extra ``pip install
        sklearn-rfcnn[accelerate]``.  Every process runs the same script and
        calls ``fit`` with the same full data::

            $ accelerate launch --multi_gpu --num_processes 4 train.py  # 4 GPUs
            $ torchrun --standalone --nproc_per_node 2 train.py  # or 2 CPU procs

        (on one machine ``accelerate launch --cpu --num_processes 2`` starts a
        single process: Accelerate's multi-CPU launch goes through ``mpirun``
        with ``--mpirun_hostfile``; use ``torchrun``, or ``accelerate launch
        --multi_gpu`` on a machine without GPUs, for local CPU processes).

        ``batch_size`` is then the *global* batch: process 0 draws the batches
        a one-process fit would draw and each process trains on its
        contiguous part of each (``batch_size / n_processes`` clips, the parts
        differing by at most one); gradients are averaged so that a step is
        the one-process step on the whole batch, except for batch
        normalisation, which normalises with each process's own part (no
        SyncBatchNorm).  ``history_`` holds the global training loss on every
        process (``train_process_batch_size``: the clips of this process);
        validation is not sharded (every process evaluates the whole
        hold-out).  Each process runs on its ``accelerator.device``
        (``device="auto"``; ``"cpu"`` forces CPU processes); the
        ``precision`` autocast stays in charge (Accelerate's own
        ``mixed_precision`` is off).  After ``fit`` every process holds the
        same weights and predicts locally; ``save`` writes from the main
        process only, and ``load`` gives a plain single-process estimator.
        A fitted estimator cannot be pickled (use ``save``), and ``swa`` is
        not supported over several processes.  Without a launcher the fit
        runs in one process and equals the fit with None (same draws, same
        weights).  Details: :mod:`sklearn_rfcnn.estimators._accelerate`.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, mixup, roll and the hold-out
        through a forked torch RNG and a numpy Generator; the global RNGs are
        never touched.  On CPU the same integer gives identical predictions.
    verbose : int, default=1
        Print skorch's per-epoch table when > 0.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks (``(name, callback)`` tuples or instances), deep-copied
        into the net at each fit.
    net_params : dict or None, default=None
        Advanced: keyword arguments for the skorch net, e.g.
        ``{"callbacks__early_stopping__patience": 10}`` or
        ``{"iterator_train__num_workers": 2}``."""
