"""scikit-learn estimators that own a skorch net: classifier/tagger and embedder."""

from sklearn_rfcnn.estimators._classifier import RFCNNClassifier
from sklearn_rfcnn.estimators._embedder import RFCNNEmbedder

__all__ = ["RFCNNClassifier", "RFCNNEmbedder"]
