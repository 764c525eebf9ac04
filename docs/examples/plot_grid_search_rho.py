"""
Grid search over rho, scored against the receptive field in seconds
===================================================================

``rho`` is the one integer that sets CP-ResNet's receptive field (RF).  A
plain :class:`~sklearn.model_selection.GridSearchCV` over it works like over
any scikit-learn hyper-parameter; this example converts each ``rho`` to the
RF it gives along time, in seconds, and plots the cross-validated PR-AUC
against it -- the paper's main figure, in miniature.

The spectrograms are computed once, before the search, so that each fit only
trains the network.  With a handful of tiny clips and four epochs the scores
are noisy; the point is the workflow, not the numbers.
"""

import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import AudioLoader, BandStandardizer, MelSpectrogram, RFCNNClassifier
from sklearn_rfcnn.datasets import make_instrument_mixtures
from sklearn_rfcnn.metrics import get_scorer
from sklearn_rfcnn.search import receptive_field_seconds

torch.set_num_threads(2)

sr, hop = 22050, 512
data = make_instrument_mixtures(
    n_clips=48,
    duration=2.0,
    instruments=["piano", "drums", "violin", "bass"],
    random_state=0,
)
front_end = make_pipeline(
    AudioLoader(sr=sr, duration=2.0), MelSpectrogram(sr=sr, hop_length=hop, n_mels=48)
)
S = front_end.fit_transform(data.filenames)
print(S.shape)

# %%
# The search: the standardiser is inside the pipeline so that it is refitted
# on each training fold.
pipe = make_pipeline(
    BandStandardizer(),
    RFCNNClassifier(width=8, max_epochs=4, batch_size=16, random_state=0, verbose=0),
)
rhos = [1, 3, 5, 7]
search = GridSearchCV(
    pipe,
    {"rfcnnclassifier__rho": rhos},
    scoring=get_scorer("pr_auc_macro"),
    cv=KFold(2, shuffle=True, random_state=0),
)
search.fit(S, data.target)
print("best:", search.best_params_, f"{search.best_score_:.3f}")

# %%
# Score against the receptive field in seconds
# --------------------------------------------
seconds = [receptive_field_seconds({"rho": r}, sr=sr, hop_length=hop)[1] for r in rhos]
mean = search.cv_results_["mean_test_score"]
std = search.cv_results_["std_test_score"]

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.errorbar(seconds, mean, yerr=std, marker="o", capsize=3)
for r, s, m in zip(rhos, seconds, mean):
    ax.annotate(f"rho={r}", (s, m), textcoords="offset points", xytext=(4, 4))
ax.set_xlabel("receptive field along time (s)")
ax.set_ylabel("PR-AUC (macro), 2-fold CV")
ax.set_title("Score against receptive field")
fig.tight_layout()
plt.show()
