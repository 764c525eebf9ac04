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

from pathlib import Path

import numpy as np
from sklearn.pipeline import make_pipeline

from sklearn_rfcnn import (
    BandStandardizer,
    MelSpectrogram,
    RFCNNClassifier,
    RFCNNEmbedder,
    save_pipeline,
)

HERE = Path(__file__).resolve().parent


def main():
    rng = np.random.default_rng(1)
    sr = 8000
    waves = rng.standard_normal((12, sr)).astype(np.float32) * 0.1
    Y = (rng.random((12, 3)) < 0.4).astype(int)
    Y[0] = 1
    Y[1] = 0
    y = np.arange(12) % 3
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
    X = rng.standard_normal((12, 32, 40)).astype(np.float32)
    windowed = RFCNNClassifier(rho=3, crop_frames=16, **common).fit(X, Y)
    windowed.save(HERE / "windowed_classifier")
    embedder = RFCNNEmbedder(rho=3, **common).fit(X, y)
    embedder.save(HERE / "embedder")
    vgg = RFCNNClassifier(arch="vgg_cnn", **common).fit(X, y)
    vgg.save(HERE / "vgg_classifier")
    pipe = make_pipeline(
        MelSpectrogram(sr=sr, n_fft=256, hop_length=128, n_mels=32),
        BandStandardizer(),
        RFCNNClassifier(rho=3, crop_frames=24, **common),
    ).fit(waves, Y)
    save_pipeline(pipe, HERE / "pipeline", overwrite=True)
    np.savez(
        HERE / "expected.npz",
        X=X[:4],
        waves=waves[:4],
        windowed_proba=windowed.predict_proba(X[:4]),
        embedding=embedder.transform(X[:4]),
        vgg_proba=vgg.predict_proba(X[:4]),
        pipeline_proba=pipe.predict_proba(waves[:4]),
    )


if __name__ == "__main__":
    main()
