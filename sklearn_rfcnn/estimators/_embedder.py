"""RFCNNEmbedder: the trained CNN as a feature extractor for other estimators."""

from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.estimators._base import _PARAMETERS_DOC, _BaseRFCNN
from sklearn_rfcnn.estimators._classifier import RFCNNClassifier
from sklearn_rfcnn.estimators._persistence import _PersistenceMixin
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._sklearn_compat import _fit_context

__all__ = ["RFCNNEmbedder"]


class RFCNNEmbedder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, _PersistenceMixin, _BaseRFCNN
):
    """Pooled embeddings of a supervised receptive-field regularised CNN.

    ``fit(X, y)`` trains the network exactly as
    :class:`~sklearn_rfcnn.RFCNNClassifier` does (same parameters, labels or a
    tag matrix); ``transform(X)`` returns the globally pooled features of the
    last stage (``4 * width`` of them for CP-ResNet), computed in batches in
    eval mode without gradients.  Put it before a classical estimator, e.g.
    ``make_pipeline(MelSpectrogram(), BandStandardizer(), RFCNNEmbedder(),
    SVC())``, or wrap an already trained classifier with
    :meth:`from_classifier`.

    Parameters
    ----------
    %(parameters)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained private skorch net.
    classes_ : ndarray of shape (n_classes,)
        Labels of the training targets (``arange(n_tags)`` for tagging).
    n_outputs_ : int
        Number of classes or tags the network was trained on.
    n_features_in_ : int
        Number of mel bands of 3-D input (channels of 4-D, columns of 2-D).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when fitted on a DataFrame.
    receptive_field_ : RF
        Maximum receptive field in input pixels ``(freq, time)``.
    history_ : skorch.History
        Per-epoch training record.

    See Also
    --------
    RFCNNClassifier : The same network as a classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rfcnn import RFCNNEmbedder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(16, 8, 20)).astype("float32")
    >>> y = np.array([0, 1] * 8)
    >>> emb = RFCNNEmbedder(width=4, rho=2, max_epochs=1, verbose=0,
    ...                     random_state=0).fit(X, y)
    >>> emb.transform(X).shape
    (16, 16)
    >>> emb.get_feature_names_out()[:2]
    array(['rfcnnembedder0', 'rfcnnembedder1'], dtype=object)
    """

    _parameter_constraints = {**_BaseRFCNN._parameter_constraints}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, mask=None):
        """Train the network supervised on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, F, T), (n, C, F, T) or (n, n_features), \
                or list of arrays of shape (F, T_i)
            Spectrograms.
        y : array-like of shape (n,) or (n, n_tags)
            Class labels or a 0/1 indicator matrix.
        sample_weight : array-like of shape (n,), default=None
            Weight of each clip's loss.
        mask : array-like of shape (n, n_tags), default=None
            Known entries of a multi-label ``y``.

        Returns
        -------
        self : RFCNNEmbedder
            The fitted embedder.
        """
        return self._fit(X, y, sample_weight=sample_weight, mask=mask)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None, mask=None):
        """Train one more epoch (the first call builds the network).

        Each call is one epoch over the given data, with the learning rate the
        schedule assigns to that epoch (the floor after ``max_epochs``); the
        internal hold-out, when ``validation_fraction`` is set, is drawn from
        each call's data.  Early stopping and SWA act within a call, so they
        are meant for :meth:`fit`.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms.
        y : array-like of shape (n,) or (n, n_tags)
            Labels or indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            Every class label, for the first call.
        sample_weight : array-like of shape (n,), default=None
            Weight of each clip's loss.
        mask : array-like of shape (n, n_tags), default=None
            Known entries of a multi-label ``y``.

        Returns
        -------
        self : RFCNNEmbedder
            The updated embedder.
        """
        return self._fit(
            X,
            y,
            sample_weight=sample_weight,
            mask=mask,
            classes=classes,
            incremental=True,
        )

    def transform(self, X):
        """Pooled embeddings of X.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms; clips may differ in length from the training clips.

        Returns
        -------
        X_embedded : ndarray of shape (n, n_embedding), dtype float32
            Output of the network's ``forward_features`` (global pooling of
            the last feature map).
        """
        check_is_fitted(self)
        return self._forward(X, features=True)

    @classmethod
    def from_classifier(cls, classifier):
        """An embedder around an already fitted :class:`RFCNNClassifier`.

        No training happens: the embedder shares the classifier's network
        (``net_``) and fitted attributes and takes its parameters, so
        ``clone`` of the result gives an unfitted embedder configured like the
        classifier.  Use ``copy.deepcopy`` on the result to decouple the two.

        Parameters
        ----------
        classifier : RFCNNClassifier
            A fitted classifier (or embedder).

        Returns
        -------
        embedder : RFCNNEmbedder
            Fitted and ready to ``transform``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
        >>> X = np.random.default_rng(0).normal(size=(8, 4, 10))
        >>> clf = RFCNNClassifier(width=4, rho=2, max_epochs=1, verbose=0,
        ...                       random_state=0).fit(X, [0, 1] * 4)
        >>> RFCNNEmbedder.from_classifier(clf).transform(X).shape
        (8, 16)
        """
        if not isinstance(classifier, (RFCNNClassifier, RFCNNEmbedder)):
            raise ParameterError(
                f"classifier must be a fitted RFCNNClassifier, got "
                f"{type(classifier).__name__}."
            )
        check_is_fitted(classifier)
        embedder = cls(**classifier.get_params(deep=False))
        for key, value in vars(classifier).items():
            if key.startswith("__") or key.startswith("_sklearn"):
                continue
            if key.endswith("_") or key.startswith("_"):
                setattr(embedder, key, value)
        return embedder

    @property
    def _n_features_out(self):
        return self.net_.module_.num_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


RFCNNEmbedder.__doc__ = RFCNNEmbedder.__doc__.replace("%(parameters)s", _PARAMETERS_DOC)
