"""
A pipeline on audio file paths
==============================

The whole chain -- decoding, the paper's perceptually weighted mel
spectrogram, per-band standardisation and the receptive-field regularised
CNN -- is one scikit-learn :class:`~sklearn.pipeline.Pipeline` whose input is
a list of file paths and whose target is a multi-hot instrument matrix.

The clips are rendered from real sampled instruments (a bundled General-MIDI
SoundFont) by :func:`sklearn_rfcnn.datasets.make_instrument_mixtures`; the
network is tiny and trains for a few epochs so that the example runs in
seconds on two CPU cores.  Real models use ``width=64`` or more and tens of
epochs.
"""

import io

import matplotlib.pyplot as plt
import torch
from sklearn.pipeline import Pipeline

from sklearn_rfcnn import (
    AudioLoader,
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    describe_pipeline,
)
from sklearn_rfcnn.datasets import (
    make_instrument_mixtures,
    multilabel_train_test_split,
)
from sklearn_rfcnn.metrics import per_tag_scores, pr_auc_macro, roc_auc_macro
from sklearn_rfcnn.plotting import plot_per_tag_scores, plot_training_curve

torch.set_num_threads(2)


def show(fig):
    """Show a :mod:`sklearn_rfcnn.plotting` figure in the gallery.

    The library's figures are not managed by pyplot (so that scripts and
    servers never open a window); the gallery captures pyplot figures, so the
    PNG is drawn into one.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    buf.seek(0)
    width, height = fig.get_size_inches()
    _, ax = plt.subplots(figsize=(width, height))
    ax.imshow(plt.imread(buf))
    ax.set_axis_off()
    plt.subplots_adjust(0, 0, 1, 1)


# %%
# Data: WAV files on disk and their tags
# --------------------------------------
instruments = ["piano", "drums", "violin", "flute", "bass", "trumpet"]
data = make_instrument_mixtures(
    n_clips=64, duration=2.0, instruments=instruments, random_state=0
)
train, test = multilabel_train_test_split(data.target, test_size=0.25, random_state=0)
X_train, X_test = data.filenames[train], data.filenames[test]
Y_train, Y_test = data.target[train], data.target[test]
print(X_train[:2], Y_train.shape)

# %%
# The pipeline
# ------------
sr = 22050
pipe = Pipeline(
    [
        ("load", AudioLoader(sr=sr, duration=2.0)),
        ("mel", MelSpectrogram(sr=sr, n_mels=64, scale="perceptual")),
        ("norm", BandStandardizer()),
        (
            "clf",
            RFCNNClassifier(
                rho=4,
                width=16,
                max_epochs=20,
                batch_size=16,
                lr=3e-3,
                random_state=0,
                verbose=0,
            ),
        ),
    ]
)
pipe.fit(X_train, Y_train)

# %%
# The fitted pipeline knows its receptive field in pixels, seconds and Hz.
print(describe_pipeline(pipe))

# %%
# Evaluation
# ----------
proba = pipe.predict_proba(X_test)
print(f"PR-AUC (macro) {pr_auc_macro(Y_test, proba):.3f}")
print(f"ROC-AUC (macro) {roc_auc_macro(Y_test, proba):.3f}")

# %%
# The training curve and the per-tag average precision next to chance
# (each tag's share of positive test clips).
show(plot_training_curve(pipe[-1].history_))

# %%
scores = per_tag_scores(Y_test, proba)["average_precision"]
show(plot_per_tag_scores({"CP-ResNet": scores}, instruments, chance=Y_test.mean(0)))
plt.show()
