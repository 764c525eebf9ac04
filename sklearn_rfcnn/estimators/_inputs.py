"""Input validation of the RF-CNN estimators: clips, clip sources, targets, masks.

The layouts accepted for ``X`` are listed in :mod:`._base`; everything here
runs before any network is built.
"""

import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    column_or_1d,
)

from sklearn_rfcnn.estimators._data import (
    _is_clip_source,
)
from sklearn_rfcnn.exceptions import DataError, RFCNNWarning
from sklearn_rfcnn.utils._checks import _is_ragged, _reject_strings
from sklearn_rfcnn.utils._sklearn_compat import validate_data

__all__ = []


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


class _InputsMixin:
    """Checks of ``X``, ``y``, ``mask`` (and the fitted state they set)."""

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

    def _record_clip_shape(self, shape, two_d, *, reset, what, fix):
        """At fit record the clips' ``(C, F)``; later, raise unless it matches."""
        if reset:
            self._clip_shape = shape
            self._two_d = two_d
            return
        if shape != self._clip_shape:
            fitted = self._clip_shape
            raise DataError(
                f"{what} has clips of {shape[0]} channel(s) x {shape[1]} band(s), "
                f"but {type(self).__name__} was fitted on {fitted[0]} channel(s) x "
                f"{fitted[1]} band(s); {fix}"
            )

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
            self._record_clip_shape(
                shape,
                False,
                reset=reset,
                what="the clip source X",
                fix="build the source with the training front end.",
            )
            return clips, y, False
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
            self.front_end_checksum_ = None
        self._record_clip_shape(
            shape,
            two_d,
            reset=reset,
            what="X",
            fix="use the same MelSpectrogram settings (n_mels) at fit and predict "
            "time.",
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
