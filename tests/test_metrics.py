"""Tagging metrics against scikit-learn's own, masks, reports and scorers."""

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier

from sklearn_rfcnn.exceptions import DataError, ParameterError
from sklearn_rfcnn.metrics import (
    SCORERS,
    get_scorer,
    get_scorer_names,
    mean_average_precision,
    per_tag_report,
    per_tag_scores,
    pr_auc_macro,
    roc_auc_macro,
)


@pytest.fixture
def tagging_data():
    rng = np.random.RandomState(0)
    y_true = (rng.rand(60, 5) < 0.35).astype(int)
    y_true[0] = 1  # every tag has a positive
    y_true[1] = 0  # and a negative
    y_score = 0.6 * y_true + rng.rand(60, 5)
    return y_true, y_score


def test_against_sklearn(tagging_data):
    y_true, y_score = tagging_data
    ap = skm.average_precision_score(y_true, y_score, average="macro")
    roc = skm.roc_auc_score(y_true, y_score, average="macro")
    assert pr_auc_macro(y_true, y_score) == pytest.approx(ap, abs=1e-12)
    assert mean_average_precision(y_true, y_score) == pytest.approx(ap, abs=1e-12)
    assert roc_auc_macro(y_true, y_score) == pytest.approx(roc, abs=1e-12)
    trapezoid = np.mean(
        [
            skm.auc(*skm.precision_recall_curve(y_true[:, j], y_score[:, j])[1::-1])
            for j in range(5)
        ]
    )
    assert pr_auc_macro(y_true, y_score, method="trapezoid") == pytest.approx(trapezoid)
    # not the same number as AP in general
    assert pr_auc_macro(y_true, y_score, method="trapezoid") != pytest.approx(ap)


def test_single_tag_1d(tagging_data):
    y_true, y_score = tagging_data
    assert roc_auc_macro(y_true[:, 2], y_score[:, 2]) == pytest.approx(
        skm.roc_auc_score(y_true[:, 2], y_score[:, 2])
    )


def test_mask_uses_known_entries_only(tagging_data):
    y_true, y_score = tagging_data
    rng = np.random.RandomState(1)
    mask = rng.rand(*y_true.shape) < 0.7
    mask[:2] = True
    # garbage at unknown entries must not matter
    y_true_garbage = np.where(mask, y_true, 1 - y_true)
    expected = np.mean(
        [
            skm.average_precision_score(y_true[mask[:, j], j], y_score[mask[:, j], j])
            for j in range(5)
        ]
    )
    assert pr_auc_macro(y_true_garbage, y_score, mask=mask) == pytest.approx(expected)
    expected_roc = np.mean(
        [
            skm.roc_auc_score(y_true[mask[:, j], j], y_score[mask[:, j], j])
            for j in range(5)
        ]
    )
    assert roc_auc_macro(y_true_garbage, y_score, mask=mask) == pytest.approx(
        expected_roc
    )


def test_soft_labels_threshold_at_half(tagging_data):
    y_true, y_score = tagging_data
    soft = np.where(y_true == 1, 0.75, 0.25)
    assert pr_auc_macro(soft, y_score) == pr_auc_macro(y_true, y_score)


def test_undefined_tags_are_skipped_with_warning(tagging_data):
    y_true, y_score = tagging_data
    y = y_true.copy()
    y[:, 3] = 0  # no positive
    with pytest.warns(UndefinedMetricWarning, match=r"\[3\]"):
        value = mean_average_precision(y, y_score)
    expected = np.mean(
        [skm.average_precision_score(y[:, j], y_score[:, j]) for j in (0, 1, 2, 4)]
    )
    assert value == pytest.approx(expected)
    # a mask that hides every negative of tag 0 also skips it
    mask = np.ones_like(y_true, dtype=bool)
    mask[:, 0] = y_true[:, 0] == 1
    with pytest.warns(UndefinedMetricWarning, match=r"\[0\]"):
        roc_auc_macro(y_true, y_score, mask=mask)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.isnan(roc_auc_macro(np.zeros((4, 2)), np.ones((4, 2))))
    assert any("every tag" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("y_true", "y_score", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "shape"),
        (np.zeros(3), np.zeros((3, 2)), "label_binarize"),
        (np.full((3, 2), 2.0), np.zeros((3, 2)), r"0/1 labels"),
        (np.zeros((3, 2)), np.full((3, 2), np.nan), "NaN"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "empty"),
    ],
)
def test_bad_input(y_true, y_score, match):
    with pytest.raises(DataError, match=match):
        pr_auc_macro(y_true, y_score)


def test_bad_mask_and_method(tagging_data):
    y_true, y_score = tagging_data
    with pytest.raises(DataError, match="mask has shape"):
        pr_auc_macro(y_true, y_score, mask=np.ones((2, 2), bool))
    with pytest.raises(ParameterError, match="method="):
        pr_auc_macro(y_true, y_score, method="interp")


def test_per_tag_scores_and_report(tagging_data):
    y_true, y_score = tagging_data
    names = [f"tag{j}" for j in range(5)]
    table = per_tag_scores(y_true, y_score / 1.6, target_names=names)
    assert table["tag"].tolist() == names
    for j in range(5):
        assert table["average_precision"][j] == pytest.approx(
            skm.average_precision_score(y_true[:, j], y_score[:, j])
        )
        assert table["roc_auc"][j] == pytest.approx(
            skm.roc_auc_score(y_true[:, j], y_score[:, j])
        )
        assert table["f1"][j] == pytest.approx(
            skm.f1_score(y_true[:, j], (y_score[:, j] / 1.6 >= 0.5).astype(int))
        )
    assert table["n_positive"].tolist() == y_true.sum(axis=0).tolist()
    text = per_tag_report(y_true, y_score, target_names=names)
    assert text.splitlines()[0].split()[:3] == ["tag", "known", "pos"]
    assert "macro avg" in text and all(n in text for n in names)
    report = per_tag_report(y_true, y_score, target_names=names, output_dict=True)
    assert report["macro avg"]["average_precision"] == pytest.approx(
        pr_auc_macro(y_true, y_score)
    )
    json.dumps(report)  # plain numbers, serialisable
    with pytest.raises(ParameterError, match="target_names"):
        per_tag_scores(y_true, y_score, target_names=["a"])


def test_scorers_in_grid_search():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 4)
    Y = np.c_[X[:, 0] > 0, X[:, 1] + 0.3 * rng.randn(80) > 0].astype(int)
    clf = OneVsRestClassifier(LogisticRegression())
    assert set(SCORERS) <= set(get_scorer_names())
    search = GridSearchCV(
        clf,
        {"estimator__C": [0.01, 1.0]},
        scoring={
            "pr": get_scorer("pr_auc_macro"),
            "roc": get_scorer("roc_auc_macro"),
            "map": get_scorer("mean_average_precision"),
        },
        refit="pr",
        cv=3,
    ).fit(X, Y)
    assert search.best_score_ > 0.8
    fitted = clf.fit(X, Y)
    # two tags: scikit-learn's make_scorer would keep only one column here
    expected = skm.average_precision_score(Y, fitted.predict_proba(X))
    assert get_scorer("pr_auc_macro")(fitted, X, Y) == pytest.approx(expected)
    mask = np.ones_like(Y, dtype=bool)
    mask[::2, 0] = False
    assert get_scorer("roc_auc_macro")(fitted, X, Y, mask=mask) == pytest.approx(
        roc_auc_macro(Y, fitted.predict_proba(X), mask=mask)
    )
    assert repr(get_scorer("accuracy")) == repr(skm.get_scorer("accuracy"))
    with pytest.raises(ParameterError, match="not a known scorer"):
        get_scorer("pr_auc_makro")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repr(get_scorer("pr_auc_macro"))


def test_scorer_with_an_rfcnn_tagger():
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.utils._testing import TINY_PARAMS

    rng = np.random.RandomState(0)
    X = rng.randn(24, 4, 10).astype(np.float32)
    Y = np.c_[X[:, 0].mean(1) > 0, X[:, 1].mean(1) > 0].astype(int)
    clf = RFCNNClassifier(**{**TINY_PARAMS["RFCNNClassifier"], "max_epochs": 1})
    clf.fit(X, Y)
    for name, func in [
        ("pr_auc_macro", pr_auc_macro),
        ("roc_auc_macro", roc_auc_macro),
        ("mean_average_precision", mean_average_precision),
    ]:
        assert get_scorer(name)(clf, X, Y) == pytest.approx(
            func(Y, clf.predict_proba(X))
        )
