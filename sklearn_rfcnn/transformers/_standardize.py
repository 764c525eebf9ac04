"""Per-band standardisation of spectrograms (the reference code's ``normalize``)."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.exceptions import DataError
from sklearn_rfcnn.transformers._validation import (
    ParamValidationMixin,
    check_signals,
)
from sklearn_rfcnn.utils._checks import reject_non_finite
from sklearn_rfcnn.utils._sklearn_compat import _fit_context

__all__ = ["BandStandardizer", "StandardizedClipSource", "is_clip_source"]

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


def is_clip_source(X):
    """Whether ``X`` is a *clip source* (e.g. a ``SpectrogramStore``).

    A clip source has ``__rfcnn_clip_source__ = True``, ``len``,
    ``__getitem__`` returning float32 ``(C, F, T_i)``, ``lengths``,
    ``clip_shape``, ``front_end_checksum`` and ``read(i, start, stop)``.

    Examples
    --------
    >>> is_clip_source([np.zeros((2, 3))])
    False
    """
    return getattr(type(X), "__rfcnn_clip_source__", False) is True


class StandardizedClipSource:
    """A clip source read through a fitted :class:`BandStandardizer`, lazily.

    What ``BandStandardizer.transform(store)`` returns: nothing is loaded;
    every ``[i]`` or ``read(i, start, stop)`` reads from the underlying
    source and standardises the result, so a Pipeline
    ``BandStandardizer() → RFCNNClassifier(crop_frames=...)`` streams from a
    store.  It is itself a clip source (same ``lengths``, ``clip_shape``,
    ``front_end_checksum``, ``paths`` when the source has them) and pickles
    with its source.  Its ``front_end_checksum`` combines the source's with
    the statistics, so an estimator fitted on standardised clips refuses raw
    ones.

    Parameters
    ----------
    source : clip source
        E.g. a :class:`~sklearn_rfcnn.datasets.SpectrogramStore`.
    mean, scale : np.ndarray of shape (C, F)
        Per channel and band statistics.

    Examples
    --------
    >>> class Clips:
    ...     __rfcnn_clip_source__ = True
    ...     clip_shape, front_end_checksum = (1, 2), "0"
    ...     lengths = np.array([3])
    ...     def __len__(self): return 1
    ...     def read(self, i, start=0, stop=None):
    ...         return np.ones((1, 2, 3), np.float32)[..., start:stop]
    ...     def __getitem__(self, i): return self.read(i)
    >>> z = StandardizedClipSource(Clips(), np.ones((1, 2)), 2 * np.ones((1, 2)))
    >>> z[0][0, :, 0], z.read(0, 1, 2).shape
    (array([0., 0.], dtype=float32), (1, 2, 1))
    """

    __rfcnn_clip_source__ = True

    def __init__(self, source, mean, scale):
        self.source = source
        self._mean = np.asarray(mean, dtype=np.float32)[..., None]
        self._inv = (1.0 / np.asarray(scale, dtype=np.float64)).astype(np.float32)[
            ..., None
        ]

    def __len__(self):
        return len(self.source)

    @property
    def lengths(self):
        return self.source.lengths

    @property
    def clip_shape(self):
        return tuple(self.source.clip_shape)

    @property
    def front_end_checksum(self):
        """The source's checksum combined with the statistics applied.

        So an estimator fitted through one standardisation refuses data
        standardised otherwise (or not at all).
        """
        import hashlib

        h = hashlib.sha256(str(self.source.front_end_checksum).encode())
        h.update(self._mean.tobytes())
        h.update(self._inv.tobytes())
        return h.hexdigest()[:16]

    @property
    def paths(self):
        return self.source.paths

    def _standardize(self, S):
        out = np.asarray(S, dtype=np.float32) - self._mean
        out *= self._inv
        return out

    def read(self, i, start=0, stop=None):
        """Frames ``start:stop`` of clip ``i``, standardised (float32 ``(C, F, T)``)."""
        return self._standardize(self.source.read(i, start, stop))

    def __getitem__(self, i):
        return self._standardize(self.source[i])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"StandardizedClipSource({self.source!r})"


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
    A *clip source* such as :class:`~sklearn_rfcnn.datasets.SpectrogramStore`
    is fitted in one streaming pass, clip by clip (never loaded), and gives
    the same statistics as the list of its clips (``mean_`` of shape
    ``(n_channels, n_mels)``); ``transform`` of a clip source returns a
    :class:`StandardizedClipSource` that standardises lazily on every read.

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
n_channels, n_mels, n_frames) or (n_samples, n_features), list of arrays, \
or clip source
            Spectrograms; a clip source (e.g. a ``SpectrogramStore``) is read
            one clip at a time.
        y : None
            Ignored.

        Returns
        -------
        self : BandStandardizer
        """
        if is_clip_source(X):
            return self._fit_clip_source(X)
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

    def _fit_clip_source(self, X):
        """One pass over a clip source: the moments of ``list(X)``, clip by clip."""
        n = len(X)
        if n == 0:
            raise DataError(
                f"BandStandardizer.fit got an empty clip source ({X!r}); fit on a "
                "store or source holding at least one clip."
            )
        expected = tuple(X.clip_shape)
        moments = None
        for i in range(n):
            item = np.asarray(X[i])
            if item.ndim != 3 or item.shape[:2] != expected or item.shape[-1] < 1:
                raise DataError(
                    f"clip {i} of {X!r} has shape {item.shape}, but the source "
                    f"declares clip_shape {expected}; the clip source is damaged "
                    "or not a clip source."
                )
            reject_non_finite(
                item,
                f"clip {i} of {X!r}",
                "rebuild that clip of the source (store.verify() checks a store).",
            )
            moments = _merge(moments, _chunk_moments(item[None], (0, 3)))
        count, mean, m2 = moments
        if hasattr(self, "n_features_in_"):
            del self.n_features_in_
        self.mean_ = mean
        self.scale_ = _safe_scale(m2 / count, mean)
        self._layout = "list3"
        return self

    def transform(self, X):
        """Standardise every band with the statistics learned in ``fit``.

        Parameters
        ----------
        X : array-like, list of arrays or clip source
            Same layout as in ``fit`` (a clip source after fitting on one, or
            on 4-D data / lists of 3-D spectrograms).

        Returns
        -------
        Z : np.ndarray of float32, list of them, or StandardizedClipSource
            ``(X - mean_) / scale_`` per band; for a clip source, a lazy
            clip source applying it on every read.
        """
        check_is_fitted(self)
        if is_clip_source(X):
            bands = tuple(X.clip_shape)
            self._check_layout("list3", bands)
            return StandardizedClipSource(X, self.mean_, self.scale_)
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
