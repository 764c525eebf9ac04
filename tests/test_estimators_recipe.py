"""The training recipe: schedules, optimizers, class weights, hold-out, baselines."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.estimators.callbacks import LRSchedule
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.models import CPResNet
from sklearn_rfcnn.models._baselines import VGGCNN, ResNet
from sklearn_rfcnn.utils._stratify import multilabel_holdout
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, make_band_tags

FAST = dict(FAST_CNN_PARAMS)


make_bands = make_band_tags


@pytest.fixture(scope="module")
def bands():
    return make_bands(40)


class _CountTraining(Callback):
    """Record how many clips each training epoch saw, and the lr of each batch."""

    def initialize(self):
        self.seen_, self.lrs_ = [], []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.seen_.append(0)

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.seen_[-1] += len(batch[0])
            self.lrs_.append(net.optimizer_.param_groups[0]["lr"])


def _spy(est):
    return dict(est.net_.callbacks_)["spy"]


# ---------------------------------------------------------------------------
# no data withheld
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("Est", [RFCNNClassifier, RFCNNEmbedder])
def test_default_fit_trains_on_every_clip(bands, Est):
    X, Y = bands
    params = {k: v for k, v in FAST.items() if k != "validation_fraction"}
    spy = _CountTraining()
    est = Est(**params, callbacks=[("spy", spy)]).fit(X, Y)
    seen = _spy(est).seen_
    assert seen == [len(X)] * params["max_epochs"]
    assert "valid_loss" not in est.history_[-1]


def test_early_stopping_holds_out_a_tenth_only_when_used(bands):
    X, Y = bands
    params = {k: v for k, v in FAST.items() if k != "validation_fraction"}
    est = RFCNNClassifier(
        **params, early_stopping=True, callbacks=[("spy", _CountTraining())]
    ).fit(X, Y)
    seen = _spy(est).seen_
    assert seen[0] == len(X) - int(np.ceil(0.1 * len(X)))
    assert all(v is not None for v in est.history_[:, "valid_loss"])


def test_multilabel_holdout_keeps_every_tag_on_both_sides():
    rng = np.random.default_rng(0)
    Y = (rng.random((200, 8)) < 0.15).astype(int)
    Y[:, 0] = 0
    Y[[3, 50], 0] = 1  # a tag with only two positives
    for seed in range(5):
        train, test = multilabel_holdout(Y, 20, random_state=seed)
        assert len(test) == 20 and len(train) == 180
        assert np.intersect1d(train, test).size == 0
        assert (Y[test].sum(0) > 0).all() and (Y[train].sum(0) > 0).all()
    # a plain random split loses the rare tag on one side most of the time
    lost = 0
    for seed in range(20):
        test = np.random.default_rng(seed).permutation(200)[:20]
        lost += Y[test, 0].sum() == 0
    assert lost > 10


def test_multilabel_validation_split_is_stratified(monkeypatch, bands):
    import sklearn_rfcnn.estimators._recipe as base

    calls = []
    real = base.multilabel_holdout

    def spy(Y, n_test, random_state=None):
        calls.append(n_test)
        return real(Y, n_test, random_state=random_state)

    monkeypatch.setattr(base, "multilabel_holdout", spy)
    X, Y = bands
    RFCNNClassifier(**{**FAST, "validation_fraction": 0.25}).fit(X, Y)
    assert calls == [10]


# ---------------------------------------------------------------------------
# class weights
# ---------------------------------------------------------------------------
def _loss_of(clf, X, y_enc, net_weights):
    """The net's loss on X with its class_weight set to ``net_weights``."""
    net = clf.net_
    saved = net.class_weight
    net.class_weight = net_weights
    try:
        with torch.no_grad():
            logits = net.module_(torch.from_numpy(X[:, None]))
            yi = {"y": torch.as_tensor(y_enc), "w": torch.ones(len(X))}
            return float(net.mixed_loss(logits, yi))
    finally:
        net.class_weight = saved


def test_balanced_tag_weights_are_pos_weight_and_reach_the_loss(bands):
    X, Y = bands
    clf = RFCNNClassifier(**FAST, class_weight="balanced").fit(X, Y)
    pos, neg = Y.sum(0), (1 - Y).sum(0)
    np.testing.assert_allclose(clf.net_.class_weight, neg / pos, rtol=1e-6)
    # the loss is the pos_weight-weighted BCE, normalised by the weights
    with torch.no_grad():
        logits = clf.net_.module_(torch.from_numpy(X[:, None])).float()
    t = torch.as_tensor(Y, dtype=torch.float32)
    cw = torch.as_tensor(neg / pos, dtype=torch.float32)
    w = torch.where(t > 0.5, cw, torch.ones_like(cw))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, t, reduction="none"
    )
    expected = float((w * bce).sum() / w.sum())
    got = _loss_of(clf, X, Y.astype(np.float32), clf.net_.class_weight)
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != pytest.approx(_loss_of(clf, X, Y.astype(np.float32), None))


def test_class_weight_dict_for_classes_reaches_the_loss_and_the_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8, 12)).astype(np.float32)
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 60)]
    params = {
        **FAST,
        "max_epochs": 6,
        "lr": 3e-2,
        "mixup_alpha": 0.0,
        "lr_schedule": "constant",
        "warmup": 0.0,
    }
    heavy = RFCNNClassifier(**params, class_weight={"c": 50.0}).fit(X, y)
    np.testing.assert_allclose(heavy.net_.class_weight, [1, 1, 50])
    plain = RFCNNClassifier(**params).fit(X, y)
    # pure noise: a 50x weight on "c" makes "c" the answer for most clips
    assert (heavy.predict(X) == "c").mean() > (plain.predict(X) == "c").mean()
    assert (heavy.predict(X) == "c").mean() > 0.8


def test_balanced_class_weight_matches_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 4, 6)).astype(np.float32)
    y = np.array([0] * 20 + [1] * 7 + [2] * 3)
    clf = RFCNNClassifier(**{**FAST, "max_epochs": 1}, class_weight="balanced")
    clf.fit(X, y)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(clf.net_.class_weight, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "class_weight, match",
    [({"zzz": 2.0}, "not among"), ([1.0, 2.0], "one weight per"), ([1, -1, 1], "non")],
)
def test_bad_class_weight(class_weight, match):
    X = np.zeros((12, 4, 6), dtype=np.float32)
    y = np.array([0, 1, 2] * 4)
    with pytest.raises(ParameterError, match=match):
        RFCNNClassifier(**FAST, class_weight=class_weight).fit(X, y)


# ---------------------------------------------------------------------------
# schedules and optimizers
# ---------------------------------------------------------------------------
def test_cosine_schedule_with_warmup_is_applied_per_batch(bands):
    X, Y = bands
    params = {**FAST, "max_epochs": 4, "batch_size": 10}
    clf = RFCNNClassifier(
        **params,
        lr_schedule="cosine",
        warmup=0.25,
        callbacks=[("spy", _CountTraining())],
    ).fit(X, Y)
    lrs = np.array(_spy(clf).lrs_)
    assert len(lrs) == 16  # 4 batches x 4 epochs
    sched = LRSchedule(4, kind="cosine", warmup=0.25, floor=0.0)
    expected = [FAST["lr"] * sched.factor_at(i / 16) for i in range(16)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    assert lrs[:4].tolist() == sorted(lrs[:4])  # warm-up rises
    assert np.all(np.diff(lrs[4:]) < 0)  # cosine falls every batch
    assert lrs.max() == pytest.approx(FAST["lr"])


@pytest.mark.parametrize(
    "name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_optimizer_choice(bands, name, cls):
    X, Y = bands
    clf = RFCNNClassifier(**FAST, optimizer=name, weight_decay=0.1).fit(X, Y)
    assert type(clf.net_.optimizer_) is cls
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 0.1


# ---------------------------------------------------------------------------
# honest baselines
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arch, cls, width",
    [("vgg_cnn", VGGCNN, 64), ("resnet18", ResNet, 64), ("cp_resnet", CPResNet, 128)],
)
def test_each_architecture_keeps_its_standard_width(arch, cls, width):
    est = RFCNNClassifier(arch=arch)
    module = est._create_module(1, 5)
    assert type(module) is cls and module.width == width


def test_resnet18_has_its_standard_size():
    module = RFCNNClassifier(arch="resnet18")._create_module(1, 10)
    n = sum(p.numel() for p in module.parameters())
    assert 11.0e6 < n < 11.4e6


@pytest.mark.parametrize(
    "param",
    [
        {"rho": 3},
        {"rho_f": 2},
        {"rho_t": 4},
        {"frequency_aware": True},
        {"shake_shake": True},
        {"depth": 14},
    ],
)
@pytest.mark.parametrize("arch", ["vgg_cnn", "resnet34"])
def test_baseline_refuses_cp_resnet_parameters(arch, param):
    X = np.zeros((8, 8, 8), dtype=np.float32)
    y = np.array([0, 1] * 4)
    name = next(iter(param))
    with pytest.raises(ParameterError, match=rf"arch='{arch}' cannot use {name}="):
        RFCNNClassifier(**{**FAST, "rho": None, **param}, arch=arch).fit(X, y)


def test_unknown_arch_gets_the_registry_suggestion():
    X = np.zeros((8, 8, 8), dtype=np.float32)
    y = np.array([0, 1] * 4)
    with pytest.raises(ParameterError, match="resnet18"):
        RFCNNClassifier(**FAST, arch="resnet_18").fit(X, y)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 2.0, 2: 0.5}, [1, 2, 3]])
def test_class_weight_survives_save_and_load(bands, tmp_path, class_weight):
    X, Y = bands
    clf = RFCNNClassifier(**FAST, class_weight=class_weight).fit(X, Y)
    loaded = RFCNNClassifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.net_.class_weight, clf.net_.class_weight)
    assert loaded.get_params()["class_weight"] == clf.get_params()["class_weight"]
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_output_bias_prior_starts_at_the_label_prior(bands):
    X, Y = bands
    # float32: the check is exact arithmetic, bf16 would round the logits
    params = {**FAST, "lr": 0.0, "max_epochs": 1, "precision": "32"}
    prior = RFCNNClassifier(**params, output_bias="prior").fit(X, Y)
    expected = (Y.sum(axis=0) + 0.5) / (len(Y) + 1.0)
    np.testing.assert_allclose(prior.predict_proba(X[:3]), [expected] * 3, rtol=1e-4)
    zero = RFCNNClassifier(**params, output_bias="zero").fit(X, Y)
    np.testing.assert_allclose(zero.predict_proba(X[:3]), 0.5, rtol=1e-6)
