"""What the ``make_release_*_fixtures.py`` scripts beside this file share.

Each script trains small models on the same kind of random data (seeded per
release), with every parameter the fixtures do not test at a fast setting, and
saves the inputs and the outputs the loading tests compare with.
"""

import numpy as np

SR = 8000

#: The fast settings every fixture model is trained with.
COMMON = dict(
    width=4,
    max_epochs=2,
    batch_size=4,
    precision="32",
    channels_last=False,
    device="cpu",
    verbose=0,
    random_state=0,
)


def waves_and_tags(seed):
    """``(rng, waves, Y)``: 12 one-second random waves at ``SR``, 3 random tags.

    ``rng`` goes on to draw what the script needs next, in the order the
    committed fixtures were drawn in.
    """
    rng = np.random.default_rng(seed)
    waves = rng.standard_normal((12, SR)).astype(np.float32) * 0.1
    Y = (rng.random((12, 3)) < 0.4).astype(int)
    Y[0] = 1
    Y[1] = 0
    return rng, waves, Y


def fit_pipeline(classifier, waves, Y):
    """A mel front end, band standardisation and ``classifier``, fitted."""
    from sklearn.pipeline import make_pipeline

    from sklearn_rfcnn import BandStandardizer, MelSpectrogram

    return make_pipeline(
        MelSpectrogram(sr=SR, n_fft=256, hop_length=128, n_mels=32),
        BandStandardizer(),
        classifier,
    ).fit(waves, Y)


def save_expected(folder, X, waves, pipe, **outputs):
    """``expected.npz``: the first four inputs and the outputs on them."""
    np.savez(
        folder / "expected.npz",
        X=X[:4],
        waves=waves[:4],
        **outputs,
        pipeline_proba=pipe.predict_proba(waves[:4]),
    )
