"""Write the saved-model fixtures of this folder (run once, with the release it names).

These files were written by sklearn-rfcnn at commit 57a0102 (format_version 1,
the release whose default ``rho`` was 5), with every model parameter left at
its default, so ``tests/test_estimators_persistence.py`` can check that models
and pipelines saved by that release keep loading with equal outputs after the
defaults change.  Do not regenerate them with a newer release: that would
defeat the test.  Usage (from the repository root)::

    OMP_NUM_THREADS=1 python tests/data/release_0_1/make_release_0_1_fixtures.py
"""

from pathlib import Path

import numpy as np
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import (
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    save_pipeline,
)

HERE = Path(__file__).resolve().parent


def main():
    rng = np.random.default_rng(0)
    sr = 8000
    waves = rng.standard_normal((12, sr)).astype(np.float32) * 0.1
    Y = (rng.random((12, 3)) < 0.4).astype(int)
    Y[0] = 1
    Y[1] = 0
    # every model parameter at its default (rho, rho_f, rho_t, depth, head)
    common = dict(
        width=4,
        max_epochs=2,
        batch_size=4,
        precision="32",
        channels_last=False,
        device="cpu",
        verbose=0,
        random_state=0,
    )
    clf = RFCNNClassifier(**common)
    X = rng.standard_normal((12, 32, 40)).astype(np.float32)
    clf.fit(X, Y)
    clf.save(HERE / "classifier")
    pipe = make_pipeline(
        MelSpectrogram(sr=sr, n_fft=256, hop_length=128, n_mels=32),
        BandStandardizer(),
        RFCNNClassifier(**common),
    ).fit(waves, Y)
    save_pipeline(pipe, HERE / "pipeline", overwrite=True)
    np.savez(
        HERE / "expected.npz",
        X=X[:4],
        waves=waves[:4],
        classifier_proba=clf.predict_proba(X[:4]),
        pipeline_proba=pipe.predict_proba(waves[:4]),
    )


if __name__ == "__main__":
    main()
