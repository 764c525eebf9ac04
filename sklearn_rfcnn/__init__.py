"""sklearn-rfcnn: receptive-field regularised CNNs for music, the scikit-learn way.

The public names are re-exported here and imported lazily, so that
``import sklearn_rfcnn`` (and ``rfcnn --version``) stays cheap and torch is
only imported when a network or an estimator is first used.

Examples
--------
>>> import sklearn_rfcnn
>>> sklearn_rfcnn.kernel_schedule(5)[:4]
[(3, 1), (3, 3), (3, 3), (3, 1)]
"""

import importlib

from sklearn_rfcnn._version import __version__

_LAZY = {
    # front end
    "AudioLoader": "sklearn_rfcnn.transformers",
    "MelSpectrogram": "sklearn_rfcnn.transformers",
    "BandStandardizer": "sklearn_rfcnn.transformers",
    # estimators
    "RFCNNClassifier": "sklearn_rfcnn.estimators",
    "RFCNNEmbedder": "sklearn_rfcnn.estimators",
    # receptive field
    "kernel_schedule": "sklearn_rfcnn.receptive_field",
    "receptive_field": "sklearn_rfcnn.receptive_field",
    "describe_receptive_field": "sklearn_rfcnn.receptive_field",
    # inspection and persistence of whole pipelines
    "describe_pipeline": "sklearn_rfcnn.inspection",
    "save_pipeline": "sklearn_rfcnn._pipeline_io",
    "load_pipeline": "sklearn_rfcnn._pipeline_io",
    # pre-flight validation of every parameter of a composite estimator
    "check_params": "sklearn_rfcnn.utils._validation",
    # networks
    "CPResNet": "sklearn_rfcnn.models",
    "create_model": "sklearn_rfcnn.models",
    "list_models": "sklearn_rfcnn.models",
    # tuning
    "rf_search_space": "sklearn_rfcnn.search",
    "RFOptunaSearchCV": "sklearn_rfcnn.search",
}

_SUBMODULES = {
    "cli",
    "datasets",
    "estimators",
    "exceptions",
    "inspection",
    "metrics",
    "models",
    "plotting",
    "receptive_field",
    "search",
    "transformers",
    "utils",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"sklearn_rfcnn.{name}")
    raise AttributeError(f"module 'sklearn_rfcnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
