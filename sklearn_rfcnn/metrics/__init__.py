"""Tagging metrics and scorers for multi-label music auto-tagging.

Macro PR-AUC (MediaEval's definition, i.e. macro average precision), ROC-AUC
and mAP, per-tag reports, masked variants for partially labelled data such as
OpenMIC-2018, and scorers usable by name in scikit-learn searches through
:func:`get_scorer`.
"""

from sklearn_rfcnn.metrics._tagging import (
    SCORERS,
    get_scorer,
    get_scorer_names,
    mean_average_precision,
    per_tag_report,
    per_tag_scores,
    pr_auc_macro,
    roc_auc_macro,
)

__all__ = [
    "SCORERS",
    "get_scorer",
    "get_scorer_names",
    "mean_average_precision",
    "per_tag_report",
    "per_tag_scores",
    "pr_auc_macro",
    "roc_auc_macro",
]
