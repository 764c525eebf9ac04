"""Write the saved-model fixtures of this folder (run once, with the release it names).

These files were written by sklearn-rfcnn at commit 063a992 (estimator
``config.json`` format 2, pipeline format 2, default ``rho`` 9), just before
the architecture step of issue 23 (estimator core split by concern, timm-style
``forward_features`` / ``forward_head``), so that
``tests/test_estimators_persistence.py`` can check that what that release saved
keeps loading with equal outputs: a classifier trained on crops and predicting
with windows, an embedder, a VGG-style baseline and a whole pipeline.  Do not
regenerate them with a newer release: that would defeat the test.  Usage (from
the repository root)::

    OMP_NUM_THREADS=1 python tests/data/release_0_2/make_release_0_2_fixtures.py
"""

import sys
from pathlib import Path

import numpy as np

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder, save_pipeline

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import _release_fixtures as shared  # noqa: E402


def main():
    rng, waves, Y = shared.waves_and_tags(seed=1)
    y = np.arange(12) % 3
    X = rng.standard_normal((12, 32, 40)).astype(np.float32)
    windowed = RFCNNClassifier(rho=3, crop_frames=16, **shared.COMMON).fit(X, Y)
    windowed.save(HERE / "windowed_classifier")
    embedder = RFCNNEmbedder(rho=3, **shared.COMMON).fit(X, y)
    embedder.save(HERE / "embedder")
    vgg = RFCNNClassifier(arch="vgg_cnn", **shared.COMMON).fit(X, y)
    vgg.save(HERE / "vgg_classifier")
    pipe = shared.fit_pipeline(
        RFCNNClassifier(rho=3, crop_frames=24, **shared.COMMON), waves, Y
    )
    save_pipeline(pipe, HERE / "pipeline", overwrite=True)
    shared.save_expected(
        HERE,
        X,
        waves,
        pipe,
        windowed_proba=windowed.predict_proba(X[:4]),
        embedding=embedder.transform(X[:4]),
        vgg_proba=vgg.predict_proba(X[:4]),
    )


if __name__ == "__main__":
    main()
