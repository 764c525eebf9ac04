"""RFCNNEmbedder: the trained CNN as a feature extractor for other estimators."""

from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.estimators._base import _FITTED_ATTRIBUTES, _BaseRFCNN
from sklearn_rfcnn.estimators._classifier import RFCNNClassifier
from sklearn_rfcnn.estimators._export import ExportMixin
from sklearn_rfcnn.estimators._params_doc import METHOD_DOCS
from sklearn_rfcnn.estimators._persistence import _PersistenceMixin
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._docstrings import fill_doc

__all__ = ["RFCNNEmbedder"]


class RFCNNEmbedder(
    ExportMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _PersistenceMixin,
    _BaseRFCNN,
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

    %(parameters_and_attributes)s
    classes_ : ndarray of shape (n_classes,)
        Labels of the training targets (``arange(n_tags)`` for tagging).
    n_outputs_ : int
        Number of classes or tags the network was trained on.

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

    _onnx_output = "features"

    @fill_doc(**METHOD_DOCS)
    def transform(self, X):
        """Pooled embeddings of X.

        With ``crop_frames``, each clip's sliding windows (``crop_frames``
        frames every ``window_hop``, as in prediction) are embedded and the
        embeddings averaged per clip (whatever ``aggregate`` says: a mean of
        pooled features is the pooled feature of the windows together);
        without it, each clip is embedded whole.

        %(X_predict)s

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
        for key in ("net_", "history_", *_FITTED_ATTRIBUTES):
            if hasattr(classifier, key):
                setattr(embedder, key, getattr(classifier, key))
        return embedder

    @property
    def _n_features_out(self):
        return self.net_.module_.num_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
