"""
An Optuna search centred on the receptive field
===============================================

:class:`~sklearn_rfcnn.search.RFOptunaSearchCV` is a scikit-learn
meta-estimator over an Optuna study.  Its default search space
(:func:`~sklearn_rfcnn.search.rf_search_space`) puts the receptive field
first: ``rho`` together with the width, the learning rate, mixup and weight
decay.  Here the space is narrowed to ``rho`` and the learning rate, and five
trials of a tiny network run on precomputed spectrograms.

``storage=None`` keeps the study in a journal file under the data home; an
RDB URL (``postgresql://...``) lets workers on many machines join one study
(see the tuning page of the user guide).  After the search,
:func:`~sklearn_rfcnn.search.report_study` summarises the study and writes
its plots: the optimisation history, the parameter importances and the score
against the receptive field in seconds.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import torch
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import AudioLoader, BandStandardizer, MelSpectrogram, RFCNNClassifier
from sklearn_rfcnn.datasets import make_instrument_mixtures
from sklearn_rfcnn.search import RFOptunaSearchCV, report_study, rf_search_space

torch.set_num_threads(2)
optuna.logging.set_verbosity(optuna.logging.WARNING)

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

# %%
# The search space and the search
# -------------------------------
space = rf_search_space(prefix="rfcnnclassifier__", rho=(1, 7), include=["rho", "lr"])
print(space)

pipe = make_pipeline(
    BandStandardizer(),
    RFCNNClassifier(width=8, max_epochs=4, batch_size=16, random_state=0, verbose=0),
)
search = RFOptunaSearchCV(
    pipe,
    space,
    n_trials=5,
    cv=2,
    scoring="pr_auc_macro",
    study_name="gallery-rho-lr",
    data_home=tempfile.mkdtemp(),
    random_state=0,
)
search.fit(S, data.target)
print("best:", search.best_params_, f"{search.best_score_:.3f}")

# %%
# The study's report and plots
# ----------------------------
out = Path(tempfile.mkdtemp())
summary = report_study(search.study_, out, sr=sr, hop_length=hop)
for row in summary["top"]:
    print(row)

# %%
# The plots :func:`~sklearn_rfcnn.search.report_study` wrote:
fig, axes = plt.subplots(1, len(summary["plots"]), figsize=(12, 4))
for ax, path in zip(axes, summary["plots"]):
    ax.imshow(plt.imread(path))
    ax.set_title(Path(path).stem)
    ax.axis("off")
fig.tight_layout()
plt.show()
