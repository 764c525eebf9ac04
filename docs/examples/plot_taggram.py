"""
A taggram of a long recording
=============================

The network is fully convolutional, so it takes clips of any length.  With
``crop_frames`` the classifier trains on random crops of that many frames and
predicts by sliding windows of the same length over each clip;
:meth:`~sklearn_rfcnn.RFCNNClassifier.predict_proba_frames` returns the
per-window probabilities and the window centre times -- a *taggram*.

Here the model trains on 2-second mixtures and the long "recording" is six of
them, unseen in training, joined end to end: the taggram should follow the
instruments from one segment to the next.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import AudioLoader, BandStandardizer, MelSpectrogram, RFCNNClassifier
from sklearn_rfcnn.datasets import make_instrument_mixtures

torch.set_num_threads(2)

sr, hop = 22050, 512
instruments = ["piano", "drums", "violin", "bass"]
data = make_instrument_mixtures(
    n_clips=120,
    duration=2.0,
    instruments=instruments,
    max_polyphony=2,
    random_state=1,
)
waves = AudioLoader(sr=sr, duration=2.0).fit_transform(data.filenames)
train, held_out = np.arange(114), np.arange(114, 120)

# %%
# Training on crops of one second
# -------------------------------
crop = 43  # frames: 43 * 512 / 22050 = 1.0 s
model = make_pipeline(
    MelSpectrogram(sr=sr, hop_length=hop, n_mels=48),
    BandStandardizer(),
    RFCNNClassifier(
        rho=3,
        width=16,
        max_epochs=30,
        batch_size=16,
        lr=3e-3,
        crop_frames=crop,
        random_state=0,
        verbose=0,
    ),
)
model.fit(waves[train], data.target[train])

# %%
# The long clip and its taggram
# -----------------------------
# A spectrogram of the 12-second waveform (a new ``MelSpectrogram`` with the
# same settings: the fitted one checks the length it was fitted on), the
# fitted standardiser, and the classifier's 1-second window sliding over it.
long_clip = waves[held_out].reshape(1, -1)
S_long = MelSpectrogram(sr=sr, hop_length=hop, n_mels=48).fit_transform(long_clip)
S_long = model[1].transform(S_long)
((proba, times),) = model[-1].predict_proba_frames(S_long, sr=sr, hop_length=hop)
print(proba.shape, times[:3])

fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
duration = long_clip.shape[1] / sr
ax0.imshow(S_long[0], origin="lower", aspect="auto", extent=(0, duration, 0, 48))
ax0.set_ylabel("mel band")
ax0.set_title("Six held-out mixtures joined end to end")
ax1.imshow(
    proba.T,
    origin="lower",
    aspect="auto",
    vmin=0,
    vmax=1,
    cmap="magma",
    extent=(times[0], times[-1], -0.5, len(instruments) - 0.5),
)
ax1.set_yticks(range(len(instruments)), instruments)
# the true tags of each 2-second segment, as white marks
for i, tags in enumerate(data.target[held_out]):
    for k in np.flatnonzero(tags):
        ax1.plot([2 * i + 0.1, 2 * i + 1.9], [k, k], color="white", lw=1, ls="--")
ax1.set_xlabel("time (s)")
ax1.set_title("Taggram (dashed: true tags of each segment)")
fig.tight_layout()
plt.show()
