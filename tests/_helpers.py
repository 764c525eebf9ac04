"""Helpers shared by several test modules (imported as ``_helpers``).

Each one builds what more than one test file used to spell out in full: a
search over a logistic regression's ``C``, small random spectrograms, the
band-tag labels, the subprocess check that a module imports nothing heavy.
"""

import subprocess
import sys

import numpy as np


def c_search(estimator=None, c_range=(1e-2, 10), space=None, **kwargs):
    """An unfitted ``RFOptunaSearchCV`` over a logistic regression's ``C``.

    ``estimator`` defaults to ``LogisticRegression(max_iter=300)``; ``space``
    (the search's ``param_distributions``) to a log-uniform ``C`` over
    ``c_range``.  ``kwargs`` go to the search as they are.
    """
    from optuna.distributions import FloatDistribution
    from sklearn.linear_model import LogisticRegression

    from sklearn_rfcnn.search import RFOptunaSearchCV

    if estimator is None:
        estimator = LogisticRegression(max_iter=300)
    if space is None:
        space = {"C": FloatDistribution(*c_range, log=True)}
    return RFOptunaSearchCV(estimator, space, **kwargs)


def random_spectrograms(classes):
    """24 random 8 x 10 spectrograms, 24 labels cycling ``classes``, 3 tags.

    Returns ``(X, y, Y)``; ``Y`` is a random 24 x 3 indicator matrix.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 8, 10)).astype(np.float32)
    y = np.array(list(classes) * (24 // len(classes)))
    Y = (rng.random((24, 3)) < 0.5).astype(int)
    return X, y, Y


def band_labels(Y):
    """One class per row of a 3-tag indicator matrix: its strongest tag or none."""
    return np.array(["none", "low", "mid", "high"])[
        np.argmax(np.c_[np.full(len(Y), 0.5), Y], axis=1)
    ]


def assert_imports_none_of(statements, modules):
    """Run ``statements`` in a fresh interpreter: none of ``modules`` is imported."""
    code = (
        f"import sys; {statements}; "
        f"bad = [m for m in {tuple(modules)!r} if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def cli_front_end(duration):
    """``rfcnn fit`` options of a small front end: 8 kHz clips of ``duration`` s."""
    return (
        f"--sr 8000 --duration {duration} --n-fft 256 --hop-length 64 --n-mels 16"
    ).split()


def cli_tiny_net(epochs):
    """``rfcnn fit`` options of a tiny network trained for ``epochs`` on the CPU."""
    return f"--width 4 --rho 1 --epochs {epochs} --device cpu".split()
