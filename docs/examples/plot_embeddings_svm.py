"""
The CNN as a feature extractor: embeddings and an SVM
=====================================================

:class:`~sklearn_rfcnn.RFCNNEmbedder` trains the same receptive-field
regularised network as the classifier, supervised, and its ``transform``
returns the pooled ``4 * width`` embedding of each clip.  Any scikit-learn
model can sit on top; here a one-vs-rest linear SVM per instrument tag, and
a 2-D PCA view of the embedding.
"""

import matplotlib.pyplot as plt
import torch
from sklearn.decomposition import PCA
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sklearn_rfcnn import AudioLoader, BandStandardizer, MelSpectrogram, RFCNNEmbedder
from sklearn_rfcnn.datasets import make_instrument_mixtures, multilabel_train_test_split
from sklearn_rfcnn.metrics import pr_auc_macro

torch.set_num_threads(2)

instruments = ["piano", "drums", "violin", "bass"]
data = make_instrument_mixtures(
    n_clips=48, duration=2.0, instruments=instruments, random_state=0
)
train, test = multilabel_train_test_split(data.target, test_size=0.25, random_state=0)

# %%
# Embedder and SVM in one pipeline
# --------------------------------
pipe = make_pipeline(
    AudioLoader(sr=22050, duration=2.0),
    MelSpectrogram(sr=22050, n_mels=48),
    BandStandardizer(),
    RFCNNEmbedder(
        rho=4,
        width=16,
        max_epochs=15,
        batch_size=16,
        lr=3e-3,
        random_state=0,
        verbose=0,
    ),
    StandardScaler(),
    OneVsRestClassifier(SVC(kernel="linear", C=0.1)),
)
pipe.fit(data.filenames[train], data.target[train])
scores = pipe.decision_function(data.filenames[test])
print(f"test PR-AUC (macro): {pr_auc_macro(data.target[test], scores):.3f}")

# %%
# The embedding itself
# --------------------
# ``pipe[:4]`` is the front end and the fitted embedder; its output has
# ``4 * width`` named features.
emb = pipe[:4].transform(data.filenames)
print(emb.shape, pipe[3].get_feature_names_out()[:3])

xy = PCA(n_components=2).fit_transform(StandardScaler().fit_transform(emb))
has_drums = data.target[:, instruments.index("drums")].astype(bool)
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(*xy[~has_drums].T, label="no drums", alpha=0.7)
ax.scatter(*xy[has_drums].T, label="drums", alpha=0.7)
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
ax.set_title("CNN embeddings (PCA)")
ax.legend()
fig.tight_layout()
plt.show()
