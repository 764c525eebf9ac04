"""scikit-learn estimators that own a skorch net: classifier/tagger and embedder."""

from sklearn_rfcnn.estimators._classifier import RFCNNClassifier
from sklearn_rfcnn.estimators._embedder import RFCNNEmbedder

# the length policy, for sklearn_rfcnn.hear (package-level, not in __all__)
from sklearn_rfcnn.estimators._length import (  # noqa: F401
    aggregate_windows,
    sliding_windows,
    window_hop,
)

__all__ = ["RFCNNClassifier", "RFCNNEmbedder"]
