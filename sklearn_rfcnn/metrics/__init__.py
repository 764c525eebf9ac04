"""Tagging metrics and scorers for multi-label music auto-tagging.

Macro PR-AUC (MediaEval's definition, i.e. macro average precision), ROC-AUC
and mAP, per-tag reports, masked variants for partially labelled data such as
OpenMIC-2018, and scorers usable by name in scikit-learn searches through
:func:`get_scorer`.
"""

# the public names of _tagging, listed once there
from sklearn_rfcnn.metrics._tagging import *  # noqa: F403
from sklearn_rfcnn.metrics._tagging import __all__  # noqa: F401
