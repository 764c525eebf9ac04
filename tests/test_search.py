"""RFOptunaSearchCV and rf_search_space: the scikit-learn contract, studies, pruning."""

import importlib.machinery
import pickle
import sys

import numpy as np
import pytest
from _helpers import c_search
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.datasets import load_iris, make_classification
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

optuna = pytest.importorskip("optuna")
from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sklearn_rfcnn.exceptions import ParameterError  # noqa: E402
from sklearn_rfcnn.search import (  # noqa: E402
    DEFAULT_SPACE_NAMES,
    RFOptunaSearchCV,
    find_rf_prefix,
    fitted_search_space,
    rf_search_space,
)


# ---------------------------------------------------------------------------
# rf_search_space
# ---------------------------------------------------------------------------
def test_rf_search_space_defaults_centre_on_the_receptive_field():
    space = rf_search_space()
    assert set(space) == {"clf__" + n for n in DEFAULT_SPACE_NAMES}
    rho = space["clf__rho"]
    assert isinstance(rho, IntDistribution)
    # the papers' best region (5-8) lies well inside the searched range
    assert rho.low <= 5 and rho.high >= 8 and rho.low >= 2 and rho.high <= 12
    lr = space["clf__lr"]
    assert lr.log and lr.low == pytest.approx(1e-4) and lr.high == pytest.approx(3e-3)
    mix = space["clf__mixup_alpha"]
    assert (mix.low, mix.high) == (0.0, 0.5)
    assert space["clf__shake_shake"].choices == (False, True)
    assert space["clf__frequency_aware"].choices == (False, True)


def test_rf_search_space_prefix_axes_include_exclude_overrides():
    bare = rf_search_space("")
    assert "rho" in bare and not any("__" in k for k in bare)
    axes = rf_search_space("", separate_axes=True, rho=(4, 9))
    assert "rho" not in axes
    assert axes["rho_f"] == axes["rho_t"] == IntDistribution(4, 9)
    only = rf_search_space("net__", include=["rho", "lr"])
    assert set(only) == {"net__rho", "net__lr"}
    less = rf_search_space("", exclude=["shake_shake", "frequency_aware"])
    assert "shake_shake" not in less and "rho" in less
    more = rf_search_space(
        "", include="rho", overrides={"depth": [14, 26], "rho": IntDistribution(5, 8)}
    )
    assert more == {
        "rho": IntDistribution(5, 8),
        "depth": CategoricalDistribution((14, 26)),
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rho": (8, 3)}, "low <= high"),
        ({"rho": (2.5, 7)}, "integers"),
        ({"lr": (0.0, 1e-3)}, "log scale"),
        ({"include": ["rh0"]}, "did you mean 'rho'"),
        ({"exclude": ["widht"]}, "did you mean 'width'"),
        ({"overrides": {"depth": 26}}, "Optuna distribution"),
        ({"width": []}, "non-empty"),
    ],
)
def test_rf_search_space_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        rf_search_space(**kwargs)


# ---------------------------------------------------------------------------
# the scikit-learn contract
# ---------------------------------------------------------------------------
def _checked_instances():
    common = dict(
        n_trials=3, cv=2, storage="memory", error_score="raise", random_state=0
    )
    return [
        RFOptunaSearchCV(
            LogisticRegression(), {"C": FloatDistribution(0.1, 10, log=True)}, **common
        ),
        RFOptunaSearchCV(Ridge(), {"alpha": FloatDistribution(0.1, 10)}, **common),
        RFOptunaSearchCV(
            Pipeline([("pca", PCA()), ("lr", LogisticRegression())]),
            {"lr__C": FloatDistribution(0.1, 10, log=True)},
            **common,
        ),
    ]


def _expected_failed_checks(estimator):
    if isinstance(estimator.estimator, Ridge):
        # Same entry as scikit-learn's own GridSearchCV/RandomizedSearchCV:
        # the inner regressor warns inside the search, not at our level.
        return {"check_supervised_y_2d": "DataConversionWarning not caught"}
    return {}


@parametrize_with_checks(
    _checked_instances(), expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_search(estimator, check):
    check(estimator)


def test_param_validation():
    search = _checked_instances()[0]
    check_param_validation("RFOptunaSearchCV", search)


def test_bad_parameters_raise_the_librarys_constraint_error():
    from sklearn_rfcnn.search import run_worker
    from sklearn_rfcnn.utils._validation import ConstraintError

    X, y = load_iris(return_X_y=True)
    search = RFOptunaSearchCV(
        LogisticRegression(), {"C": [1.0]}, n_trials=0, storage="memory"
    )
    with pytest.raises(ConstraintError, match="'n_trials' parameter") as info:
        search.fit(X, y)
    # the CLI and users catch the library's ParameterError (also a ValueError)
    assert isinstance(info.value, ParameterError)
    assert isinstance(info.value, ValueError)
    assert not hasattr(search, "study_")
    search.set_params(n_trials=1, error_score="ignore", study_name="s")
    with pytest.raises(ConstraintError, match="'error_score' parameter"):
        run_worker(search, X, y)


def test_clone_and_pickle_keep_parameters():
    search = _checked_instances()[2]
    cloned = clone(search)
    assert cloned.get_params()["estimator__lr__C"] == 1.0
    assert cloned.param_distributions == search.param_distributions
    X, y = load_iris(return_X_y=True)
    search.fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(X), search.predict(X))
    assert not hasattr(cloned, "study_")


def test_cv_results_follow_scikit_learn_layout():
    X, y = load_iris(return_X_y=True)
    space = {"C": FloatDistribution(1e-2, 10, log=True), "fit_intercept": [True, False]}
    search = c_search(
        space=space,
        n_trials=5,
        cv=3,
        storage="memory",
        random_state=0,
        return_train_score=True,
    ).fit(X, y)
    grid = GridSearchCV(
        LogisticRegression(max_iter=300),
        {"C": [0.1], "fit_intercept": [True]},
        cv=3,
        return_train_score=True,
    ).fit(X, y)
    res = search.cv_results_
    assert set(grid.cv_results_) <= set(res)
    assert {"trial_number", "state", "n_epochs"} <= set(res)
    assert len(res["params"]) == search.n_trials_ == 5
    assert isinstance(res["param_C"], np.ma.MaskedArray)
    means = np.mean([res[f"split{k}_test_score"] for k in range(3)], axis=0)
    np.testing.assert_allclose(res["mean_test_score"], means)
    assert res["rank_test_score"].dtype == np.int32
    best = search.best_index_
    assert res["rank_test_score"][best] == 1
    assert res["params"][best] == search.best_params_
    assert search.best_score_ == pytest.approx(res["mean_test_score"][best])
    # the best trial's score equals what scikit-learn's own CV computes
    check = GridSearchCV(
        LogisticRegression(max_iter=300),
        {k: [v] for k, v in search.best_params_.items()},
        cv=3,
    ).fit(X, y)
    assert search.best_score_ == pytest.approx(check.best_score_)
    assert search.best_estimator_.get_params()["C"] == search.best_params_["C"]
    assert search.score(X, y) == pytest.approx(search.best_estimator_.score(X, y))
    np.testing.assert_array_equal(search.classes_, [0, 1, 2])
    assert search.predict_proba(X).shape == (150, 3)
    assert search.n_splits_ == 3 and search.refit_time_ > 0


def test_second_fit_starts_a_fresh_study(tmp_path):
    # One journal file for both fits: only a new study keeps them apart
    # (optuna-integration issue 118: OptunaSearchCV reuses its study).
    path = str(tmp_path / "both.journal")
    X, y = load_iris(return_X_y=True)
    search = c_search(n_trials=3, cv=2, storage=path)
    search.fit(X, y)
    first_name = search.study_name_
    first_params = search.cv_results_["params"]
    search.fit(X, y)
    assert search.study_name_ != first_name
    assert search.n_trials_ == 3 and len(search.study_.trials) == 3
    assert len(search.cv_results_["params"]) == 3
    assert search.cv_results_["params"] != first_params
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(path)
    )
    assert len(optuna.get_all_study_names(storage)) == 2


def test_named_study_is_joined_and_n_trials_is_the_total(tmp_path):
    X, y = load_iris(return_X_y=True)
    kwargs = dict(
        param_distributions={"C": FloatDistribution(1e-2, 10, log=True)},
        cv=2,
        storage=str(tmp_path / "shared.journal"),
        study_name="iris",
    )
    RFOptunaSearchCV(LogisticRegression(max_iter=300), n_trials=2, **kwargs).fit(X, y)
    again = RFOptunaSearchCV(LogisticRegression(max_iter=300), n_trials=5, **kwargs)
    again.fit(X, y)
    assert again.n_trials_ == 5  # 2 from before + 3 new
    assert len(again.study_.trials) == 5


def test_default_storage_is_a_journal_file_under_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RFCNN_DATA_HOME", str(tmp_path))
    X, y = load_iris(return_X_y=True)
    search = c_search(n_trials=2, cv=2).fit(X, y)
    path = tmp_path / "optuna" / f"{search.study_name_}.journal"
    assert path.is_file()
    reloaded = optuna.load_study(
        study_name=search.study_name_,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(path))
        ),
    )
    assert len(reloaded.trials) == 2
    # an explicit data_home wins over the environment variable
    other = tmp_path / "other"
    search.set_params(data_home=str(other)).fit(X, y)
    assert (other / "optuna" / f"{search.study_name_}.journal").is_file()


def test_thread_workers_on_memory_storage_finish_exactly_n_trials(monkeypatch):
    import threading

    # The first two fits must overlap in time (a two-party barrier): with one
    # worker instead of two threads the first fit times out and fails.
    barrier, lock, threads = threading.Barrier(2, timeout=20), threading.Lock(), []
    real_fit = LogisticRegression.fit

    def meeting_fit(self, X, y, sample_weight=None):
        with lock:
            threads.append(threading.get_ident())
            wait = len(threads) <= 2
        if wait:
            barrier.wait()
        return real_fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(LogisticRegression, "fit", meeting_fit)
    X, y = load_iris(return_X_y=True)
    search = c_search(n_trials=7, cv=2, storage="memory", n_jobs=2, random_state=0)
    search.fit(X, y)
    states = [t.state for t in search.study_.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 7
    assert search.n_trials_ == 7
    assert len(set(threads[:2])) == 2


def test_refit_false_hides_prediction_methods():
    X, y = load_iris(return_X_y=True)
    search = c_search(n_trials=2, cv=2, storage="memory", refit=False).fit(X, y)
    assert not hasattr(search, "predict")
    assert not hasattr(search, "best_estimator_")
    assert search.best_params_


def test_errors_are_clear():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ParameterError, match="not a parameter of LogisticRegression"):
        RFOptunaSearchCV(
            LogisticRegression(), {"CC": [1.0]}, storage="memory", n_trials=1
        ).fit(X, y)
    with pytest.raises(ParameterError, match="'rho' parameter"):
        RFOptunaSearchCV(LogisticRegression(), storage="memory").fit(X, y)
    with pytest.raises(ParameterError, match="unknown URL scheme"):
        RFOptunaSearchCV(
            LogisticRegression(), {"C": [1.0]}, storage="redis://x", n_trials=1
        ).fit(X, y)


def test_failed_fits_count_and_are_reported():
    X, y = load_iris(return_X_y=True)
    search = c_search(
        space={"C": [-1.0, 1.0]},  # C=-1 is rejected by LogisticRegression
        n_trials=6,
        cv=2,
        storage="memory",
        random_state=0,
        pruning=False,
    )
    with pytest.warns(Warning, match="failed to fit"):
        search.fit(X, y)
    res = search.cv_results_
    failed = res["state"] == "FAIL"
    assert failed.any() and (~failed).any()
    assert np.isnan(res["mean_test_score"][failed]).all()
    assert (
        res["rank_test_score"][failed] > res["rank_test_score"][~failed].max()
    ).all()
    assert search.best_params_ == {"C": 1.0}
    assert search.n_trials_ == 6


# ---------------------------------------------------------------------------
# an RF-like estimator: param_distributions=None finds the RF-CNN's prefix
# ---------------------------------------------------------------------------
class _ToyRF(ClassifierMixin, BaseEstimator):
    """Logistic regression dressed with the RF-CNN's parameter names."""

    def __init__(self, rho=7, width=8, lr=1e-3, mixup_alpha=0.3, weight_decay=0.0):
        self.rho = rho
        self.width = width
        self.lr = lr
        self.mixup_alpha = mixup_alpha
        self.weight_decay = weight_decay

    def fit(self, X, y):
        self.model_ = LogisticRegression(C=self.rho / 10).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def test_default_space_targets_the_rf_step_of_a_pipeline():
    X, y = load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("net", _ToyRF())])
    assert find_rf_prefix(pipe) == "net__"
    search = RFOptunaSearchCV(
        pipe, n_trials=3, cv=2, storage="memory", random_state=0
    ).fit(X, y)
    # the fitted default space: the receptive field only, the rest as given
    assert set(search.best_params_) == {"net__rho"}
    assert 3 <= search.best_params_["net__rho"] <= 12
    # the estimator's own rho is the first trial
    assert search.study_.trials[0].params == {"net__rho": 7}
    assert find_rf_prefix(_ToyRF()) == ""


# ---------------------------------------------------------------------------
# pruning
# ---------------------------------------------------------------------------
def test_pruning_per_epoch_prunes_hopeless_configurations():
    X, y = make_classification(
        n_samples=300, n_features=10, n_informative=5, random_state=0
    )
    sgd = SGDClassifier(
        loss="log_loss", learning_rate="constant", max_iter=8, random_state=0
    )
    # half the space is hopeless: a learning rate that leaves the weights at
    # ~0, so every probability stays ~0.5 (log-loss is not scale-invariant)
    search = RFOptunaSearchCV(
        sgd,
        {"eta0": [1e-9, 1e-9, 0.05, 0.1], "alpha": FloatDistribution(1e-5, 1e-3)},
        n_trials=14,
        cv=3,
        scoring="neg_log_loss",
        storage="memory",
        pruning=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        random_state=0,
        sampler=optuna.samplers.RandomSampler(seed=0),
    ).fit(X, y)
    res = search.cv_results_
    pruned = res["state"] == "PRUNED"
    assert pruned.sum() >= 2, res["state"]
    etas = np.array([p["eta0"] for p in res["params"]])
    hopeless = etas == 1e-9
    # mostly hopeless ones were pruned (a median rule may also cut the weaker
    # of two good rates), and most hopeless ones were cut short
    assert (hopeless[pruned]).mean() >= 0.75
    assert pruned[hopeless].mean() >= 0.5
    assert (res["n_epochs"][pruned] < 8).all()
    assert (res["n_epochs"][~pruned] == 8).all()
    assert search.best_params_["eta0"] > 1e-3
    # every step was reported: one intermediate value per epoch
    best = search.study_.best_trial
    assert sorted(best.intermediate_values) == list(range(8))


def test_pruning_per_fold_without_partial_fit():
    X, y = load_iris(return_X_y=True)
    search = c_search(
        space={"C": [1e-6, 1e-6, 10.0]},  # tiny C predicts one class
        n_trials=12,
        cv=KFold(4, shuffle=True, random_state=0),
        storage="memory",
        pruning=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        sampler=optuna.samplers.RandomSampler(seed=1),
    ).fit(X, y)
    res = search.cv_results_
    pruned = res["state"] == "PRUNED"
    assert pruned.any()
    assert all(p["C"] == 1e-6 for p, pr in zip(res["params"], pruned) if pr)
    assert search.best_params_ == {"C": 10.0}


# Leakage probe: every fold model records what it trains on and is scored on.
_SEEN = []


class _IdRecorder(TransformerMixin, BaseEstimator):
    """Records the sample ids (column 0) it is fitted on."""

    def fit(self, X, y=None):
        _SEEN.append(("transformer_fit", id(self), set(X[:, 0].astype(int))))
        self.n_fitted_ = len(X)
        return self

    def transform(self, X):
        return X


class _RecordingSGD(ClassifierMixin, BaseEstimator):
    """SGD on X[:, 1:] that records the ids in X[:, 0] at partial_fit/predict."""

    def __init__(self, max_iter=4, eta0=0.1):
        self.max_iter = max_iter
        self.eta0 = eta0

    def partial_fit(self, X, y, classes=None):
        if not hasattr(self, "sgd_"):
            self.sgd_ = SGDClassifier(learning_rate="constant", eta0=self.eta0)
            self.token_ = len(_SEEN)  # unique per model (ids of dead objects recur)
        _SEEN.append(("train", self.token_, set(X[:, 0].astype(int))))
        self.sgd_.partial_fit(X[:, 1:], y, classes=classes)
        self.classes_ = self.sgd_.classes_
        return self

    def fit(self, X, y):
        for _ in range(self.max_iter):
            self.partial_fit(X, y, classes=np.unique(y))
        return self

    def predict(self, X):
        _SEEN.append(("score", self.token_, set(X[:, 0].astype(int))))
        return self.sgd_.predict(X[:, 1:])


def test_pruning_never_scores_a_fold_model_on_its_training_samples():
    X, y = make_classification(n_samples=90, n_features=4, random_state=0)
    X = np.column_stack([np.arange(len(X)), X])
    _SEEN.clear()
    pipe = Pipeline([("ids", _IdRecorder()), ("clf", _RecordingSGD())])
    # A shuffling splitter without a seed draws new folds on every split():
    # the search must draw them once, or fold models would see their
    # validation samples in a later epoch (optuna-integration issue 317).
    search = RFOptunaSearchCV(
        pipe,
        {"clf__eta0": FloatDistribution(0.01, 1.0, log=True)},
        n_trials=4,
        cv=KFold(3, shuffle=True),
        storage="memory",
        pruning=optuna.pruners.NopPruner(),
        refit=False,
    ).fit(X, y)
    trained, scored = {}, {}
    for kind, owner, ids in _SEEN:
        if kind == "train":
            trained.setdefault(owner, []).append(ids)
        elif kind == "score":
            scored.setdefault(owner, set()).update(ids)
    assert len(trained) == 4 * 3  # one model per trial and fold
    for owner, epochs in trained.items():
        assert len(epochs) == 4  # max_iter epochs of partial_fit
        assert all(e == epochs[0] for e in epochs)  # same fold every epoch
        assert not (epochs[0] & scored[owner]), "validation samples were trained on"
        assert len(epochs[0]) + len(scored[owner]) == 90
    # the Pipeline's transformers were fitted on the fold's training part only
    fits = [ids for kind, _, ids in _SEEN if kind == "transformer_fit"]
    assert all(len(ids) == 60 for ids in fits)
    assert search.n_trials_ == 4


# ---------------------------------------------------------------------------
# with the library's RF-CNN
# ---------------------------------------------------------------------------
def _tiny_rfcnn(**kw):
    from sklearn_rfcnn.estimators import RFCNNClassifier

    params = dict(
        width=4,
        rho=2,
        depth=8,
        max_epochs=3,
        batch_size=16,
        verbose=0,
        device="cpu",
        random_state=0,
    )
    params.update(kw)
    return RFCNNClassifier(**params)


def _spectrograms(n=36, multilabel=False, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 8, 16).astype(np.float32)
    if multilabel:
        Y = (rng.rand(n, 3) < 0.5).astype(int)
        Y[Y.sum(1) == 0, 0] = 1
        for tag in range(3):
            X[Y[:, tag] == 1, 2 * tag : 2 * tag + 2] += 2.0
        return X, Y
    y = np.repeat([0, 1], n // 2)
    X[y == 1, :4] += 1.5
    return X, y


def test_default_space_for_an_rfcnn_pipeline_is_clipped_to_its_depth():
    from sklearn_rfcnn.transformers import BandStandardizer

    pipe = Pipeline([("norm", BandStandardizer()), ("clf", _tiny_rfcnn())])
    space = RFOptunaSearchCV(pipe)._distributions()
    assert set(space) == {"clf__rho"}
    # max_rho(depth=8) caps it; the estimator's own rho=2 widens it
    assert (space["clf__rho"].low, space["clf__rho"].high) == (2, 4)
    deep = RFOptunaSearchCV(_tiny_rfcnn(depth=26))._distributions()
    assert (deep["rho"].low, deep["rho"].high) == (2, 12)
    deep = RFOptunaSearchCV(_tiny_rfcnn(depth=26, rho=7))._distributions()
    assert (deep["rho"].low, deep["rho"].high) == (3, 12)


def test_search_an_rfcnn_pipeline_with_per_epoch_pruning():
    from sklearn_rfcnn.transformers import BandStandardizer

    X, y = _spectrograms()
    pipe = Pipeline([("norm", BandStandardizer()), ("clf", _tiny_rfcnn())])
    search = RFOptunaSearchCV(
        pipe,
        rf_search_space("clf__", rho=(1, 3), width=(4,), include=["rho", "lr"]),
        n_trials=3,
        cv=2,
        storage="memory",
        random_state=0,
    ).fit(X, y)
    res = search.cv_results_
    assert (res["n_epochs"] == 3).all()  # partial_fit epoch by epoch
    assert all(len(t.intermediate_values) == 3 for t in search.study_.trials)
    assert 1 <= search.best_params_["clf__rho"] <= 3
    proba = search.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (36, 2)
    assert search.best_estimator_[-1].rho == search.best_params_["clf__rho"]


def test_search_multilabel_rfcnn_with_a_tagging_scorer_by_name():
    X, Y = _spectrograms(multilabel=True)
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=2),
        rf_search_space("", rho=(1, 2), width=(4,), include=["rho", "lr"]),
        n_trials=2,
        cv=KFold(2),
        scoring="pr_auc_macro",
        storage="memory",
        random_state=0,
    ).fit(X, Y)
    assert 0.0 <= search.best_score_ <= 1.0
    assert search.predict_proba(X).shape == (36, 3)
    # the named tagging metric scores every fold (not the estimator's own
    # subset accuracy): the same fold models, rebuilt epoch by epoch, give
    # the recorded split scores
    from sklearn_rfcnn.metrics import pr_auc_macro

    for k, (tr, te) in enumerate(KFold(2).split(X, Y)):
        model = clone(search.estimator).set_params(**search.best_params_)
        for _ in range(2):
            model.partial_fit(X[tr], Y[tr])
        expected = pr_auc_macro(Y[te], model.predict_proba(X[te]))
        recorded = search.cv_results_[f"split{k}_test_score"][search.best_index_]
        assert recorded == pytest.approx(expected)
        assert recorded != pytest.approx(model.score(X[te], Y[te]))
    best = search.best_estimator_
    assert search.score(X, Y) == pytest.approx(pr_auc_macro(Y, best.predict_proba(X)))


def test_nested_cross_validation_and_a_single_split():
    # optuna-integration issues 173 (cross_val_predict) and 123 (one split)
    from sklearn.model_selection import ShuffleSplit, cross_val_predict

    X, y = load_iris(return_X_y=True)
    one_split = ShuffleSplit(n_splits=1, test_size=0.3, random_state=0)
    search = c_search(n_trials=2, cv=one_split, storage="memory", random_state=0)
    pred = cross_val_predict(search, X, y, cv=3)
    assert pred.shape == (150,) and (pred == y).mean() > 0.8
    search.fit(X, y)
    assert search.n_splits_ == 1 and "split0_test_score" in search.cv_results_


def test_a_search_fitted_on_the_default_journal_storage_pickles(tmp_path):
    X, y = load_iris(return_X_y=True)
    search = c_search(n_trials=2, cv=2, data_home=str(tmp_path)).fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    assert len(restored.study_.trials) == 2
    assert restored.study_.study_name == search.study_name_


def test_timeout_stops_starting_trials():
    X, y = load_iris(return_X_y=True)
    search = c_search(n_trials=500, cv=2, storage="memory", timeout=0.3).fit(X, y)
    assert 1 <= search.n_trials_ < 500


def test_missing_optuna_gives_an_install_hint(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-rfcnn\[tune\]'"):
        rf_search_space()
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ImportError, match="sklearn-rfcnn"):
        RFOptunaSearchCV(LogisticRegression(), {"C": [1.0]}).fit(X, y)


# ---------------------------------------------------------------------------
# RDB URLs: the documented postgresql:// form and missing-driver messages
# (issue #14 item 9; no server needed: only URL parsing and dialect loading)
# ---------------------------------------------------------------------------
def test_storage_postgresql_url_resolves_to_the_installed_driver(monkeypatch):
    pytest.importorskip("psycopg2")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sklearn_rfcnn.search._storage import resolve_rdb_url

    for url in (
        "postgresql://u:p%40ss@db.example:5432/rf",
        "postgres://u:p%40ss@db.example:5432/rf",
    ):
        resolved = resolve_rdb_url(url)
        assert resolved == "postgresql+psycopg2://u:p%40ss@db.example:5432/rf"
        engine = sqlalchemy.create_engine(resolved)  # loads the dialect, no connect
        assert engine.dialect.driver == "psycopg2"
        assert engine.url.password == "p@ss"
        engine.dispose()
    # an explicit driver and other back ends are left as they are
    explicit = "postgresql+psycopg2://u@h/db"
    assert resolve_rdb_url(explicit) == explicit
    assert resolve_rdb_url("sqlite:///x.db") == "sqlite:///x.db"


def test_storage_postgresql_url_falls_back_to_psycopg3(monkeypatch):
    import types

    from sklearn_rfcnn.search import _storage

    monkeypatch.setitem(sys.modules, "psycopg2", None)  # not installed
    fake = types.ModuleType("psycopg")
    fake.__spec__ = importlib.machinery.ModuleSpec("psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg", fake)
    monkeypatch.setattr(_storage, "_check_driver", lambda url, shown: None)
    assert (
        _storage.resolve_rdb_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    )


def test_storage_missing_postgres_driver_names_the_package(monkeypatch):
    from sklearn_rfcnn.search import make_storage

    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    for url in ("postgresql://u:secret@h/db", "postgresql+psycopg2://u:secret@h/db"):
        with pytest.raises(ImportError, match="psycopg2") as info:
            make_storage(url)
        message = str(info.value)
        assert "pip install 'sklearn-rfcnn[postgres]'" in message
        assert "psycopg2-binary" in message
        assert "secret" not in message and "u:***@h/db" in message
    with pytest.raises(ImportError, match=r"psycopg\[binary\]"):
        make_storage("postgresql+psycopg://u@h/db")


def test_storage_missing_mysql_driver_names_the_package(monkeypatch):
    from sklearn_rfcnn.search import make_storage

    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    monkeypatch.setitem(sys.modules, "pymysql", None)
    with pytest.raises(ImportError, match="pip install mysqlclient"):
        make_storage("mysql://u@h/db")
    with pytest.raises(ImportError, match="pip install PyMySQL"):
        make_storage("mysql+pymysql://u@h/db")


def test_storage_unknown_driver_is_a_parameter_error():
    from sklearn_rfcnn.search import make_storage

    with pytest.raises(ParameterError, match="no driver 'nosuch'"):
        make_storage("postgresql+nosuch://u@h/db")


def test_fit_checks_the_estimators_parameters_before_any_trial():
    """The pre-flight judges the estimator with the space's first candidate."""
    from sklearn.preprocessing import FunctionTransformer

    calls = []
    spy = FunctionTransformer(lambda X: calls.append(1) or X)
    X, y = _spectrograms()
    bad = Pipeline([("spy", spy), ("clf", _tiny_rfcnn(max_epochs=0))])
    search = RFOptunaSearchCV(
        bad, {"clf__rho": [1, 2]}, n_trials=1, cv=2, storage="memory"
    )
    with pytest.raises(ParameterError, match=r"^step 'clf' .*max_epochs"):
        search.fit(X, y)
    # rho=40 beside depth=8 is no error where the space sets rho
    search.set_params(estimator=bad.set_params(clf__max_epochs=1, clf__rho=40))
    search._validate_params()
    # one candidate within max_rho(8) = 4 is enough; none is an error
    search.set_params(param_distributions={"clf__rho": [5, 2]})
    search._validate_params()
    search.set_params(param_distributions={"clf__rho": (5, 9)})
    with pytest.raises(ParameterError, match="rho=5 is out of range"):
        search.fit(X, y)
    assert calls == []


def test_trials_print_one_line_each_and_no_epoch_tables_unless_verbose(capsys):
    from sklearn_rfcnn.transformers import BandStandardizer

    X, y = _spectrograms()
    pipe = Pipeline([("norm", BandStandardizer()), ("clf", _tiny_rfcnn(verbose=1))])
    space = rf_search_space("clf__", rho=(1, 2), width=(4,), include=["rho"])

    import logging

    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())

    def run(verbose):
        records.clear()
        RFOptunaSearchCV(
            pipe,
            space,
            n_trials=2,
            cv=2,
            storage="memory",
            random_state=0,
            refit=False,
            verbose=verbose,
        ).fit(X, y)
        return capsys.readouterr()

    logging.getLogger("optuna").addHandler(handler)
    try:
        quiet = run(0)
        assert "train_loss" not in quiet.out and records == []
        one_line = run(1)
        assert "train_loss" not in one_line.out
        assert sum(m.startswith("Trial ") for m in records) == 2  # one per trial
        loud = run(2)
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert loud.out.count("train_loss") == 4  # each fold's epoch table
    assert pipe[-1].verbose == 1  # the user's estimator is left as it was


class _Warns(LogisticRegression):
    """Warns on every fit with fold-dependent text, as a tag warning does."""

    def fit(self, X, y):
        import warnings

        from sklearn_rfcnn.exceptions import RFCNNWarning

        text = f"fit on {len(X)} rows (first {X[0, 0]:.3f})"
        warnings.warn(text, RFCNNWarning, stacklevel=1)
        return super().fit(X, y)


def test_warnings_repeated_by_the_fits_are_shown_once():
    import warnings

    from sklearn_rfcnn.exceptions import RFCNNWarning

    X, y = load_iris(return_X_y=True)
    search = c_search(
        _Warns(max_iter=300),
        space={"C": [0.5, 1.0]},
        n_trials=3,
        cv=3,
        storage="memory",
        random_state=0,
        refit=False,
    )
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        search.fit(X, y)
    ours = [w for w in shown if issubclass(w.category, RFCNNWarning)]
    assert len(ours) == 1  # 9 fits, one warning
    assert "(and 8 similar warnings in these trials)" in str(ours[0].message)


# ---------------------------------------------------------------------------
# at equal compute: fitted space, one hold-out, successive halving, timeout
# ---------------------------------------------------------------------------
def test_fitted_space_keeps_the_estimators_budget_and_searches_rho():
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.receptive_field import DEFAULT_RHO

    space, own = fitted_search_space(RFCNNClassifier(width=24, max_epochs=25))
    assert set(space) == {"rho"} and (space["rho"].low, space["rho"].high) == (3, 12)
    assert own == {"rho": DEFAULT_RHO}  # the library's default rho
    space, own = fitted_search_space(RFCNNClassifier(rho=6, rho_t=9))
    assert set(space) == {"rho_f", "rho_t"} and own == {"rho_f": 6, "rho_t": 9}
    with pytest.raises(ParameterError, match="param_distributions"):
        fitted_search_space(RFCNNClassifier(arch="vgg_cnn"))

    X, y = _spectrograms()
    search = RFOptunaSearchCV(
        _tiny_rfcnn(), n_trials=3, storage="memory", random_state=0
    ).fit(X, y)
    assert {k for p in search.cv_results_["params"] for k in p} == {"rho"}
    assert search.best_estimator_.width == 4  # the user's width, not swapped
    assert search.best_estimator_.max_epochs == 3
    # own rho first, then every other value once, coarse to fine
    assert [t.params["rho"] for t in search.study_.trials] == [2, 3, 4]


def test_own_configuration_is_enqueued_first_in_a_given_space():
    X, y = load_iris(return_X_y=True)
    search = c_search(
        LogisticRegression(C=1.0, max_iter=300),
        c_range=(1e-2, 1e2),
        n_trials=3,
        cv=2,
        storage="memory",
        random_state=0,
    ).fit(X, y)
    assert search.study_.trials[0].params == {"C": 1.0}
    assert len({t.params["C"] for t in search.study_.trials}) == 3  # then sampled


def test_coarse_to_fine_order_covers_every_value_once():
    from sklearn_rfcnn.search._study import _coarse_to_fine

    values = [3, 4, 6, 7, 8, 9, 10, 11, 12]
    order = _coarse_to_fine(values)
    assert sorted(order) == values
    assert order[:3] == [8, 12, 3]  # middle, then both ends


def test_default_cv_is_one_stratified_holdout_for_epoch_trained_estimators():
    X, Y = _spectrograms(n=40, multilabel=True)
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=2), n_trials=1, storage="memory", random_state=0
    ).fit(X, Y)
    assert search.n_splits_ == 1 and "split1_test_score" not in search.cv_results_
    ((train, valid),), _ = search._splits(X, Y, None, np.random.RandomState(0))
    assert len(valid) == 8 and len(set(train) | set(valid)) == 40
    assert (Y[valid].sum(0) > 0).all() and (Y[train].sum(0) > 0).all()
    # a user cv is honoured; estimators trained in one go keep 3-fold CV
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=2), n_trials=1, cv=2, storage="memory"
    ).fit(*_spectrograms())
    assert search.n_splits_ == 2
    X, y = load_iris(return_X_y=True)
    search = c_search(c_range=(1e-2, 1e2), n_trials=1, storage="memory").fit(X, y)
    assert search.n_splits_ == 3


def test_successive_halving_prunes_per_epoch_and_pruned_trials_are_reported():
    X, y = _spectrograms(n=48)
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=8, lr=1e-2),
        {"lr": [1e-2, 1e-9, 1e-10]},
        n_trials=3,
        scoring="neg_log_loss",
        storage="memory",
        random_state=0,
    ).fit(X, y)
    assert type(search.study_.pruner).__name__ == "SuccessiveHalvingPruner"
    res = search.cv_results_
    pruned = res["state"] == "PRUNED"
    assert search.best_params_ == {"lr": 1e-2} and pruned.sum() == 2
    assert (res["n_epochs"][pruned] < 8).all()
    assert np.isnan(res["mean_test_score"][pruned]).all()
    states = [t.state.name for t in search.study_.trials]
    assert states.count("PRUNED") == 2


def test_n_trials_none_runs_until_the_timeout_and_keeps_it_refit_included():
    X, y = _spectrograms(n=48)
    timeout = 8.0
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=4),
        {"lr": FloatDistribution(1e-3, 1e-2, log=True)},  # not finite
        n_trials=None,
        timeout=timeout,
        storage="memory",
        random_state=0,
    ).fit(X, y)
    # the search's own record: trials and refit within the timeout (a
    # tolerance for the estimates), and it used the time rather than
    # stopping after a fixed number of trials
    assert search.search_time_ <= 1.25 * timeout
    assert search.search_time_ >= 0.5 * timeout
    assert search.refit_time_ > 0 and search.n_trials_ >= 3


def test_n_trials_none_stops_when_a_finite_space_is_exhausted():
    X, y = _spectrograms()
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=2),
        n_trials=None,
        timeout=600,
        storage="memory",
        random_state=0,
    ).fit(X, y)
    assert sorted(p["rho"] for p in search.cv_results_["params"]) == [2, 3, 4]
    assert search.search_time_ < 600


def test_n_trials_none_needs_a_timeout_or_a_finite_space():
    X, y = _spectrograms()
    space = {"lr": FloatDistribution(1e-3, 1e-2, log=True)}
    with pytest.raises(ParameterError, match="timeout"):
        RFOptunaSearchCV(_tiny_rfcnn(), space, n_trials=None).fit(X, y)
    search = RFOptunaSearchCV(
        _tiny_rfcnn(max_epochs=1), n_trials=None, storage="memory"
    ).fit(X, y)
    assert search.n_trials_ == 3  # rho 2, 3, 4 once each


def _study_with_trial(fit_times, score_times, n_epochs, value=0.5):
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"rho": 3},
            distributions={"rho": IntDistribution(1, 5)},
            value=value,
            user_attrs={
                "rfcnn:fit_times": fit_times,
                "rfcnn:score_times": score_times,
                "rfcnn:n_epochs": n_epochs,
            },
        )
    )
    return study


def test_budget_keeps_time_for_the_refit_scaled_to_all_the_data():
    import time

    from sklearn_rfcnn.search._scheduler import _Budget

    # one trial of 10 epochs on 80% of the data: 1 s training per epoch
    study = _study_with_trial([10.0], [1.0], 10)
    budget = _Budget(
        30.0, start=time.time(), refit_scale=1.25, n_epochs=10, first_epochs=3
    )
    assert budget.refit_estimate(study) == pytest.approx(12.5)
    # 30 s left: 3 epochs (3.3 s) + refit (12.5 s) fit; at 14 s left they do not
    assert budget.can_start(study)
    budget.start = time.time() - 16.0
    assert not budget.can_start(study)
    # a running trial stops before an epoch that would eat the refit's time
    assert budget.next_epoch_fits(study, 1.0, 1.0)
    budget.start = time.time() - 17.0
    assert not budget.next_epoch_fits(study, 1.0, 1.0)
    # ... but never while no trial has completed (one is needed to refit)
    assert budget.next_epoch_fits(optuna.create_study(), 1.0, 1.0)
    # without refit nothing is kept
    assert _Budget(30.0, refit_scale=0.0).refit_estimate(study) == 0.0


def test_a_trial_past_the_deadline_stops_before_its_next_epoch_as_pruned():
    import time

    from sklearn_rfcnn.search._scheduler import _Budget

    X, y = _spectrograms()
    study = _study_with_trial([3.0], [0.3], 3)  # a complete trial to refit
    budget = _Budget(
        10.0, start=time.time() - 60.0, refit_scale=1.25, n_epochs=3, first_epochs=1
    )
    search = RFOptunaSearchCV(_tiny_rfcnn(), {"lr": [1e-3]}, storage="memory")
    splits, _ = search._splits(X, y, None)
    objective = search._make_objective(X, y, splits, {}, budget)
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="timeout"):
        objective(trial)
    attrs = study.trials[-1].user_attrs
    assert attrs["rfcnn:stopped_by_timeout"] is True
    assert attrs["rfcnn:n_epochs"] == 1  # the first epoch ran, no more
