"""RFCNNClassifier: receptive-field regularised CNN for classification and tagging."""

import numbers

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.estimators._base import _BaseRFCNN
from sklearn_rfcnn.estimators._export import ExportMixin
from sklearn_rfcnn.estimators._params_doc import METHOD_DOCS
from sklearn_rfcnn.estimators._persistence import _PersistenceMixin
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._docstrings import fill_doc

__all__ = ["RFCNNClassifier"]


class RFCNNClassifier(ClassifierMixin, ExportMixin, _PersistenceMixin, _BaseRFCNN):
    """Receptive-field regularised CNN (CP-ResNet) classifier and tagger.

    Multi-class classification with a 1-D ``y`` of labels (any labels,
    strings included; softmax cross-entropy), or multi-label tagging with a 0/1
    indicator matrix ``y`` (sigmoid + binary cross-entropy), decided from ``y``
    as :class:`~sklearn.neural_network.MLPClassifier` does.  The estimator
    owns a skorch net built in ``fit`` (``net_``), trained with the paper's
    regularisers (mixup of inputs and losses, a random time roll, optional
    stochastic weight averaging) under a recipe measured for short runs
    (AdamW, warm-up and cosine decay, the classifier's batch norm after
    pooling); the paper's values are one parameter away (user guide, "The
    training recipe").

    ``X`` is a batch of spectrograms ``(n, n_bands, n_frames)``, a
    multi-channel batch ``(n, n_channels, n_bands, n_frames)``, a list of
    ``(n_bands, n_frames_i)`` clips of different lengths, a clip source
    (e.g. :class:`~sklearn_rfcnn.datasets.SpectrogramStore`, read one clip at
    a time), or a 2-D ``(n, n_features)`` array treated as a one-band input.
    The network is fully convolutional, so clips at prediction may be longer
    or shorter than at training.  Without ``crop_frames`` clips are batched
    by length and seen whole at prediction; with it, the network trains on
    random crops and predicts by sliding windows of ``crop_frames`` frames,
    aggregated per clip (``aggregate``), and :meth:`predict_proba_frames`
    returns the per-window probabilities (a taggram).

    %(parameters_and_attributes)s
    classes_ : ndarray of shape (n_classes,)
        Class labels, or ``arange(n_tags)`` for an indicator ``y``.
    n_outputs_ : int
        Number of classes or tags (network outputs).

    See Also
    --------
    RFCNNEmbedder : The same network as a feature extractor.
    sklearn.neural_network.MLPClassifier : The multi-label convention followed.

    Notes
    -----
    A single class in ``y`` raises an error (as ``LogisticRegression`` does).
    ``sample_weight`` weights the loss of each clip; ``mask`` marks the known
    entries of a partially labelled tag matrix (OpenMIC), and unknown entries
    do not contribute to the loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rfcnn import RFCNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(16, 8, 20)).astype("float32")
    >>> y = np.array(["rock", "jazz"] * 8)
    >>> clf = RFCNNClassifier(width=4, rho=2, max_epochs=1, verbose=0,
    ...                       random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.classes_
    array(['jazz', 'rock'], dtype='<U4')
    >>> clf.receptive_field_
    RF(freq=39, time=39)
    """

    _onnx_output = "proba"

    @fill_doc(**METHOD_DOCS)
    def predict_proba(self, X):
        """Class probabilities, or per-tag probabilities for tagging.

        With ``crop_frames``, each clip's windows (see ``window_hop``) are
        run through the network and their logits aggregated (``aggregate``:
        mean or max) before the softmax/sigmoid; a clip of at most
        ``crop_frames`` frames is one window (tiled up to it when shorter).

        %(X_predict)s

        Returns
        -------
        proba : ndarray of shape (n, n_outputs_), dtype float64
            Softmax probabilities (rows sum to 1) in the order of ``classes_``,
            or independent sigmoid probabilities strictly inside (0, 1).
        """
        check_is_fitted(self)
        return self._proba_from_logits(self._forward(X))

    def predict_proba_frames(self, X, sr=22050, hop_length=512, window_frames=None):
        """Per-window probabilities over time (a taggram) and window times.

        Each clip is cut into windows of ``window_frames`` frames (default:
        ``crop_frames``) every ``window_hop`` frames (None: half a window),
        with one more window aligned to the clip's end when the hop does not
        reach it; a clip of at most one window is one window (tiled when
        shorter).  Each window's probabilities are those :meth:`predict_proba`
        gives that window alone; :meth:`predict_proba` with ``crop_frames``
        is their ``aggregate`` (of the logits).

        Times follow librosa's centred frames, the convention of
        :class:`~sklearn_rfcnn.MelSpectrogram` (``center=True``): frame ``k``
        is centred on sample ``k * hop_length``, i.e. at
        ``librosa.frames_to_time(k, sr=sr, hop_length=hop_length)``.  A window
        of frames ``start .. start + W - 1`` is centred on frame
        ``start + (W - 1) / 2``, so its time is
        ``(start + (W - 1) / 2) * hop_length / sr`` seconds.

        Parameters
        ----------
        X : array-like, list of arrays or clip source
            Spectrograms.
        sr : float > 0, default=22050
            Sampling rate of the audio the spectrograms were computed from.
        hop_length : int > 0, default=512
            Hop length of the spectrograms, in samples.
        window_frames : int >= 1 or None, default=None
            Window length in frames; None uses ``crop_frames``, and is an
            error for a model fitted without it.

        Returns
        -------
        frames : list of (proba, times) tuples, one per clip
            ``proba``: float64 ndarray of shape (n_windows, n_outputs_), the
            per-window probabilities in the order of ``classes_``;
            ``times``: float64 ndarray of shape (n_windows,), the window
            centres in seconds.  ``n_windows`` differs between clips of
            different lengths.

        Raises
        ------
        ParameterError
            If neither ``window_frames`` nor ``crop_frames`` gives a window,
            or ``sr`` / ``hop_length`` are not positive.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_rfcnn import RFCNNClassifier
        >>> X = np.random.default_rng(0).normal(size=(16, 8, 20)).astype("float32")
        >>> clf = RFCNNClassifier(width=4, rho=2, max_epochs=1, crop_frames=16,
        ...                       verbose=0, random_state=0).fit(X, [0, 1] * 8)
        >>> long_clip = np.random.default_rng(1).normal(size=(8, 64)).astype("float32")
        >>> [(proba, times)] = clf.predict_proba_frames([long_clip], sr=22050,
        ...                                             hop_length=512)
        >>> proba.shape
        (7, 2)
        >>> np.round(times[:2], 3)
        array([0.174, 0.36 ])
        """
        check_is_fitted(self)
        for name, value in (("sr", sr), ("hop_length", hop_length)):
            if isinstance(value, bool) or not (
                isinstance(value, numbers.Real) and value > 0
            ):
                raise ParameterError(f"{name}={value!r} must be a positive number.")
        outputs, offsets, starts, window = self._forward_frames(X, window_frames)
        proba = self._proba_from_logits(outputs)
        result = []
        for i, first in enumerate(starts):
            times = (first + (window - 1) / 2.0) * (float(hop_length) / float(sr))
            result.append((proba[offsets[i] : offsets[i + 1]], times))
        return result

    @fill_doc(**METHOD_DOCS)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        %(X_predict)s

        Returns
        -------
        log_proba : ndarray of shape (n, n_outputs_), dtype float64
        """
        check_is_fitted(self)
        return np.log(self.predict_proba(X))

    @fill_doc(**METHOD_DOCS)
    def predict(self, X):
        """Predicted labels, or a 0/1 indicator matrix for tagging.

        %(X_predict)s

        Returns
        -------
        y_pred : ndarray of shape (n,) or (n, n_tags)
            Labels from ``classes_``; for tagging, 1 where the probability
            exceeds ``threshold``, with the dtype of the training ``y``.
        """
        check_is_fitted(self)
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > self._threshold_array()).astype(self._indicator_dtype)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
