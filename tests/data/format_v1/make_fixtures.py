"""How the folders beside this file were written (at commit 57a0102, before issue #28).

``python make_fixtures.py OUT`` writes ``v1_pipeline`` (a saved pipeline,
format version 1, without a checksum of ``pipeline.json``), its expected
``predict_proba`` on the waves below, and ``v1_store`` (a SpectrogramStore
whose manifest has no checksum).  They are kept as written, so that
``tests/test_hostile_files.py`` can check that files saved by earlier
releases keep loading with equal outputs.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.pipeline import make_pipeline


def waves():
    return list(np.random.default_rng(0).normal(size=(8, 2000)).astype(np.float32))


def classifier():
    """The pipeline's tiny classifier (``tests/test_hostile_files.py`` fits it too)."""
    from sklearn_rfcnn import RFCNNClassifier

    tiny = dict(width=2, rho=1, depth=8, max_epochs=1, verbose=0)
    return RFCNNClassifier(**tiny, device="cpu", precision="32", random_state=0)


def main(out):
    from sklearn_rfcnn import (
        AudioLoader,
        BandStandardizer,
        MelSpectrogram,
        save_pipeline,
    )
    from sklearn_rfcnn.datasets import SpectrogramStore

    out = Path(out)
    X, y = waves(), ["bass", "drums"] * 4
    pipe = make_pipeline(
        AudioLoader(sr=8000),
        MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=8),
        BandStandardizer(),
        classifier(),
    ).fit(X, y)
    save_pipeline(
        pipe,
        out / "v1_pipeline",
        metadata={"target_names": ["bass", "drums"], "multilabel": False},
    )
    np.save(out / "v1_pipeline_expected_proba.npy", pipe.predict_proba(X))
    front = make_pipeline(
        AudioLoader(sr=8000),
        MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=8),
    )
    store = SpectrogramStore.create(out / "v1_store", X[:3], front, verbose=0)
    np.savez(out / "v1_store_expected.npz", *[store[i] for i in range(len(store))])


if __name__ == "__main__":
    main(sys.argv[1])
