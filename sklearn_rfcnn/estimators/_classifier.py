"""RFCNNClassifier: receptive-field regularised CNN for classification and tagging."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.estimators._base import _BaseRFCNN
from sklearn_rfcnn.estimators._persistence import _PersistenceMixin

__all__ = ["RFCNNClassifier"]


class RFCNNClassifier(ClassifierMixin, _PersistenceMixin, _BaseRFCNN):
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
    ``(n_bands, n_frames_i)`` clips of different lengths, or a 2-D
    ``(n, n_features)`` array treated as a one-band input.  The network is
    fully convolutional, so clips at prediction may be longer or shorter than
    at training; clips are batched by length and always seen whole.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained private skorch net; the torch network is ``net_.module_``.
    classes_ : ndarray of shape (n_classes,)
        Class labels, or ``arange(n_tags)`` for an indicator ``y``.
    n_outputs_ : int
        Number of classes or tags (network outputs).
    n_features_in_ : int
        Number of mel bands of 3-D input (channels of 4-D input, columns of
        2-D input).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when fitted on a DataFrame.
    receptive_field_ : RF
        Maximum receptive field of the network in input pixels, a named pair
        ``(freq, time)``; see :func:`sklearn_rfcnn.inspection.describe_pipeline`
        for seconds and Hz.
    history_ : skorch.History
        Per-epoch training record (``train_loss``, ``valid_loss``, ``lr``,
        ``dur``, ...).

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

    def predict_proba(self, X):
        """Class probabilities, or per-tag probabilities for tagging.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms; clips may differ in length from the training clips.

        Returns
        -------
        proba : ndarray of shape (n, n_outputs_), dtype float64
            Softmax probabilities (rows sum to 1) in the order of ``classes_``,
            or independent sigmoid probabilities strictly inside (0, 1).
        """
        check_is_fitted(self)
        return self._proba_from_logits(self._forward(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms.

        Returns
        -------
        log_proba : ndarray of shape (n, n_outputs_), dtype float64
        """
        check_is_fitted(self)
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted labels, or a 0/1 indicator matrix for tagging.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms.

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
