"""Write the saved-model fixtures of this folder (run once, with the release it names).

These files were written by sklearn-rfcnn at commit 57a0102 (format_version 1,
the release whose default ``rho`` was 5), with every model parameter left at
its default, so ``tests/test_estimators_persistence.py`` can check that models
and pipelines saved by that release keep loading with equal outputs after the
defaults change.  Do not regenerate them with a newer release: that would
defeat the test.  Usage (from the repository root)::

    OMP_NUM_THREADS=1 python tests/data/release_0_1/make_release_0_1_fixtures.py
"""

import sys
from pathlib import Path

import numpy as np

from sklearn_rfcnn import RFCNNClassifier, save_pipeline

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import _release_fixtures as shared  # noqa: E402


def main():
    rng, waves, Y = shared.waves_and_tags(seed=0)
    # every model parameter at its default (rho, rho_f, rho_t, depth, head)
    clf = RFCNNClassifier(**shared.COMMON)
    X = rng.standard_normal((12, 32, 40)).astype(np.float32)
    clf.fit(X, Y)
    clf.save(HERE / "classifier")
    pipe = shared.fit_pipeline(RFCNNClassifier(**shared.COMMON), waves, Y)
    save_pipeline(pipe, HERE / "pipeline", overwrite=True)
    shared.save_expected(
        HERE, X, waves, pipe, classifier_proba=clf.predict_proba(X[:4])
    )


if __name__ == "__main__":
    main()
