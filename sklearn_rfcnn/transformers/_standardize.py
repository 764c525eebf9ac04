"""Per-band standardisation of spectrograms (the reference code's ``normalize``)."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.exceptions import DataError
from sklearn_rfcnn.transformers._validation import (
    ParamValidationMixin,
    check_signals,
)
from sklearn_rfcnn.utils._sklearn_compat import _fit_context

__all__ = ["BandStandardizer"]

#: Clips reduced at once when accumulating statistics (bounds float64 temporaries).
_CHUNK_CLIPS = 64


def _chunk_moments(chunk, axes):
    """Count, mean and sum of squared deviations over ``axes``, in float64."""
    count = np.prod([chunk.shape[a] for a in axes])
    mean = chunk.mean(axis=axes, dtype=np.float64)
    dev = chunk - np.expand_dims(mean, axes).astype(chunk.dtype)
    m2 = np.square(dev, dtype=np.float64).sum(axis=axes)
    return count, mean, m2


def _merge(a, b):
    """Chan et al.'s pairwise update of (count, mean, M2)."""
    if a is None:
        return b
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta**2 * (n_a * n_b / n)
    return n, mean, m2


def _safe_scale(var, mean):
    """Standard deviation with zero (or round-off level) variance mapped to 1.

    As scikit-learn's ``StandardScaler``: a constant band is only centred.
    """
    scale = np.sqrt(var)
    eps = np.finfo(np.float64).eps
    constant = scale < 10 * eps * np.maximum(1.0, np.abs(mean))
    scale[constant] = 1.0
    return scale


def _check_same_bands(items):
    """Every spectrogram of a list: same rank (2 or 3) and same bands."""
    ranks = {item.ndim for item in items}
    if len(ranks) > 1 or ranks == {1}:
        raise DataError(
            "every item of a list of spectrograms must be (n_mels, n_frames) or "
            f"(n_channels, n_mels, n_frames) alike; got ranks {sorted(ranks)}."
        )
    first = items[0].shape[:-1]
    bad = next((i for i, it in enumerate(items) if it.shape[:-1] != first), None)
    if bad is not None:
        raise DataError(
            f"X[{bad}] has bands {items[bad].shape[:-1]} but X[0] has {first}; all "
            "spectrograms must have the same bands."
        )


class BandStandardizer(ParamValidationMixin, TransformerMixin, BaseEstimator):
    """Per-band z-score of spectrograms, with statistics learned in ``fit``.

    The reference code's ``normalize`` step: the mean and standard deviation
    of every mel band over all training clips and frames, applied unchanged
    to later data.

    Attributes
    ----------
    mean_ : np.ndarray of float64
        Per-band means: shape ``(n_mels,)`` for 3-D input or lists of 2-D
        spectrograms; ``(n_channels, n_mels)`` for 4-D input or lists of 3-D
        spectrograms (each channel and band its own statistics); ``(n_features,)``
        for 2-D input (per column, as :class:`~sklearn.preprocessing.StandardScaler`).
    scale_ : np.ndarray of float64, same shape as ``mean_``
        Per-band standard deviations (population, ``ddof=0``); 1 where a band is
        constant, so such a band is only centred.
    n_features_in_ : int
        ``X.shape[1]`` of array input (bands for 3-D, channels for 4-D,
        columns for 2-D); absent after fitting on a list.

    See Also
    --------
    MelSpectrogram : Produces the spectrograms.
    sklearn.preprocessing.StandardScaler : The 2-D, per-column special case.

    Notes
    -----
    Accepted input: ``(n_clips, n_mels, n_frames)``,
    ``(n_clips, n_channels, n_mels, n_frames)``, ``(n_samples, n_features)``,
    or a list of ``(n_mels, n_frames_i)`` (or ``(n_channels, n_mels,
    n_frames_i)``) arrays of varying length, which gives a list back.
    ``transform`` requires the same layout as ``fit``. Statistics are
    accumulated in float64 chunk by chunk, so fitting does not copy the data;
    the output is float32.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rfcnn.transformers import BandStandardizer
    >>> X = np.random.default_rng(0).normal(5.0, 2.0, size=(4, 3, 10))
    >>> Z = BandStandardizer().fit_transform(X)
    >>> Z.shape, Z.dtype
    ((4, 3, 10), dtype('float32'))
    >>> np.round(Z.mean(axis=(0, 2)), 6) + 0.0
    array([0., 0., 0.], dtype=float32)
    """

    _parameter_constraints = {}

    def __init__(self):
        pass

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the per-band mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_mels, n_frames), (n_clips, \
n_channels, n_mels, n_frames) or (n_samples, n_features), or list of arrays
            Spectrograms.
        y : None
            Ignored.

        Returns
        -------
        self : BandStandardizer
        """
        kind, data = self._check_input(X, reset=True)
        moments = None
        if kind == "list":
            for item in data:
                moments = _merge(moments, _chunk_moments(item[None], (0, item.ndim)))
            self._layout = f"list{data[0].ndim}"
        else:
            axes = (0,) if data.ndim == 2 else (0, data.ndim - 1)
            for start in range(0, data.shape[0], _CHUNK_CLIPS):
                chunk = data[start : start + _CHUNK_CLIPS]
                moments = _merge(moments, _chunk_moments(chunk, axes))
            self._layout = f"array{data.ndim}"
        count, mean, m2 = moments
        self.mean_ = mean
        self.scale_ = _safe_scale(m2 / count, mean)
        return self

    def transform(self, X):
        """Standardise every band with the statistics learned in ``fit``.

        Parameters
        ----------
        X : array-like or list of arrays
            Same layout as in ``fit``.

        Returns
        -------
        Z : np.ndarray of float32, or list of them
            ``(X - mean_) / scale_`` per band.
        """
        check_is_fitted(self)
        kind, data = self._check_input(X, reset=False)
        mean = self.mean_.astype(np.float32)
        inv = (1.0 / self.scale_).astype(np.float32)
        if kind == "list":
            mean, inv = mean[..., None], inv[..., None]
            return [(item - mean) * inv for item in data]
        if data.ndim > 2:
            mean, inv = mean[..., None], inv[..., None]
        out = data - mean
        out *= inv
        return out

    # -- helpers -----------------------------------------------------------------

    def _check_input(self, X, *, reset):
        kind, data = check_signals(
            self,
            X,
            reset=reset,
            what="spectrogram",
            strings_hint="put AudioLoader and MelSpectrogram before it.",
            max_item_ndim=3,
            max_ndim=4,
            accepted="2-D, 3-D or 4-D arrays or a list of spectrograms",
            check_items=_check_same_bands,
        )
        if not reset:
            if kind == "list":
                layout, bands = f"list{data[0].ndim}", data[0].shape[:-1]
            else:
                layout = f"array{data.ndim}"
                bands = data.shape[1:2] if data.ndim == 2 else data.shape[1:-1]
            self._check_layout(layout, bands)
        return kind, data

    def _check_layout(self, layout, bands):
        compatible = {
            "array2": {"array2"},
            "array3": {"array3", "list2"},
            "list2": {"array3", "list2"},
            "array4": {"array4", "list3"},
            "list3": {"array4", "list3"},
        }
        if layout not in compatible[self._layout]:
            raise DataError(
                f"BandStandardizer was fitted on {self._describe(self._layout)} but "
                f"transform got {self._describe(layout)}; pass data of the fitted "
                "layout or refit."
            )
        if tuple(bands) != self.mean_.shape:
            raise DataError(
                f"X has {bands} bands per frame but BandStandardizer was fitted "
                f"with {self.mean_.shape}; use the same MelSpectrogram settings as "
                "in fit, or refit."
            )

    @staticmethod
    def _describe(layout):
        return {
            "array2": "2-D (n_samples, n_features) data",
            "array3": "3-D (n_clips, n_mels, n_frames) spectrograms",
            "list2": "a list of (n_mels, n_frames) spectrograms",
            "array4": "4-D (n_clips, n_channels, n_mels, n_frames) spectrograms",
            "list3": "a list of (n_channels, n_mels, n_frames) spectrograms",
        }[layout]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
