"""RFCNNClassifier: targets, inputs, training recipe, determinism and bad input."""

import numpy as np
import pytest
import torch
from _helpers import band_labels
from sklearn.metrics import average_precision_score
from skorch.callbacks import Callback

from sklearn_rfcnn import RFCNNClassifier
from sklearn_rfcnn.estimators._augment import _mix_inputs, _roll_time
from sklearn_rfcnn.estimators._data import _BucketBatchSampler
from sklearn_rfcnn.estimators.callbacks import LRSchedule
from sklearn_rfcnn.exceptions import (
    DataError,
    InputTypeError,
    ParameterError,
    RFCNNWarning,
)
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, make_band_tags

FAST = dict(FAST_CNN_PARAMS)


make_bands = make_band_tags


@pytest.fixture(scope="module")
def bands():
    return make_bands(48)


@pytest.fixture(scope="module")
def multiclass(bands):
    X, Y = bands
    return X, band_labels(Y)


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------
def test_multiclass_string_labels(multiclass):
    X, y = multiclass
    clf = RFCNNClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == sorted(set(y))
    assert clf.n_outputs_ == len(clf.classes_)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (len(X), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = clf.predict(X)
    assert set(pred) <= set(clf.classes_)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.n_features_in_ == X.shape[1]
    assert tuple(clf.receptive_field_) == (39, 39)


def test_multilabel_indicator(bands):
    X, Y = bands
    clf = RFCNNClassifier(**FAST).fit(X, Y)
    np.testing.assert_array_equal(clf.classes_, np.arange(Y.shape[1]))
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == Y.shape
    assert np.all((proba > 0) & (proba < 1))
    pred = clf.predict(X)
    assert pred.shape == Y.shape and pred.dtype == Y.dtype
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert clf.net_.multilabel


def test_threshold_per_tag(bands):
    X, Y = bands
    clf = RFCNNClassifier(**FAST, threshold=[0.0, 1.0, 0.5]).fit(X, Y)
    pred = clf.predict(X)
    assert pred[:, 0].all() and not pred[:, 1].any()
    clf.set_params(threshold=[0.5, 0.5])
    with pytest.raises(ParameterError, match="threshold"):
        clf.predict(X)


# ---------------------------------------------------------------------------
# input layouts
# ---------------------------------------------------------------------------
def test_two_d_input_is_one_band_and_not_rolled():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6))
    y = (X[:, 0] > 0).astype(int)
    clf = RFCNNClassifier(**FAST, roll=10).fit(X, y)
    assert clf.n_features_in_ == 6
    assert clf._clip_shape == (1, 1)
    assert clf.net_.roll == 0
    assert clf.predict(X).shape == (20,)


def test_four_d_multichannel_input(multiclass):
    X, y = multiclass
    X4 = np.stack([X, -X], axis=1)
    clf = RFCNNClassifier(**FAST).fit(X4, y)
    assert clf._clip_shape == (2, X.shape[1])
    first_conv = next(
        m for m in clf.net_.module_.modules() if isinstance(m, torch.nn.Conv2d)
    )
    assert first_conv.in_channels == 2
    assert clf.predict_proba(X4).shape == (len(X), 4)


def test_longer_and_shorter_clips_at_predict(multiclass):
    X, y = multiclass
    clf = RFCNNClassifier(**FAST).fit(X, y)
    longer = np.concatenate([X, X], axis=-1)
    assert clf.predict_proba(longer).shape == (len(X), 4)
    assert clf.predict_proba(X[..., :5]).shape == (len(X), 4)


def test_variable_length_list(bands):
    X, Y = bands
    lengths = [16, 12, 20, 16, 12, 9] * 8
    clips = [x[:, :t] if t <= 16 else np.tile(x, 2)[:, :t] for x, t in zip(X, lengths)]
    clf = RFCNNClassifier(**FAST).fit(clips, Y)
    assert clf.n_features_in_ == X.shape[1]
    proba = clf.predict_proba(clips)
    assert proba.shape == Y.shape
    # the policy: clips are batched by length and seen whole, so a clip's output
    # equals its output when predicted alone
    for i in (0, 1, 5):
        alone = clf.predict_proba(clips[i][None])
        np.testing.assert_allclose(proba[i], alone[0], rtol=1e-5)


def test_object_array_of_clips(bands):
    X, Y = bands
    clf = RFCNNClassifier(**FAST).fit(X, Y)
    as_objects = np.empty(len(X), dtype=object)
    as_objects[:] = list(X)
    np.testing.assert_array_equal(clf.predict_proba(as_objects), clf.predict_proba(X))
    ragged = np.empty(3, dtype=object)
    ragged[:] = [X[0], X[1][:, :10], X[2][:, :7]]
    assert clf.predict_proba(ragged).shape == (3, Y.shape[1])


def test_bucket_sampler_groups_equal_lengths_and_keeps_all():
    lengths = np.array([5, 7, 5, 5, 7, 9, 5])
    batches = list(_BucketBatchSampler(lengths, batch_size=2))
    assert sorted(i for b in batches for i in b) == list(range(7))
    for b in batches:
        assert len(set(lengths[b])) == 1
    merged = list(_BucketBatchSampler(lengths, batch_size=3, merge_singletons=True))
    assert all(len(b) > 1 or lengths[b[0]] in (7, 9) for b in merged)


# ---------------------------------------------------------------------------
# learning and determinism
# ---------------------------------------------------------------------------
def test_learns_a_tagging_task_and_lr0_does_not():
    X, Y = make_bands(144, seed=0)
    Xt, Yt = make_bands(72, seed=1)
    params = {**FAST, "width": 8, "max_epochs": 10, "lr": 3e-3, "batch_size": 16}
    prior = Yt.mean()
    trained = RFCNNClassifier(**params).fit(X, Y)
    ap = average_precision_score(Yt, trained.predict_proba(Xt), average="macro")
    frozen = RFCNNClassifier(**{**params, "lr": 0.0}).fit(X, Y)
    ap0 = average_precision_score(Yt, frozen.predict_proba(Xt), average="macro")
    assert ap > prior + 0.3, (ap, prior)
    assert ap0 < prior + 0.1, (ap0, prior)


def test_same_random_state_same_predictions_and_globals_untouched(multiclass):
    X, y = multiclass
    params = {**FAST, "mixup_alpha": 0.3, "roll": 4, "validation_fraction": 0.2}
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    a = RFCNNClassifier(**params).fit(X, y).predict_proba(X)
    b = RFCNNClassifier(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(torch_state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])  # noqa: NPY002
    c = RFCNNClassifier(**{**params, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.allclose(a, c)


# ---------------------------------------------------------------------------
# training recipe
# ---------------------------------------------------------------------------
def _weights(clf):
    return torch.cat([p.detach().flatten() for p in clf.net_.module_.parameters()])


def test_mixup_changes_training_and_mixes_losses(bands):
    X, Y = bands
    no_masks = {"freq_mask": 0, "time_mask": 0}
    plain = RFCNNClassifier(**FAST, mixup_alpha=0.0, roll=0, **no_masks).fit(X, Y)
    mixed = RFCNNClassifier(**FAST, mixup_alpha=0.3, roll=0, **no_masks).fit(X, Y)
    assert not torch.allclose(_weights(plain), _weights(mixed))

    net = mixed.net_
    net.rng = np.random.default_rng(0)
    Xb = torch.randn(4, 1, 3, 5)
    Xm, lam, perm = net.augment(Xb)
    assert lam is not None and np.all(lam >= 0.5) and np.all(lam <= 1)
    np.testing.assert_allclose(Xm.numpy(), _mix_inputs(Xb, lam, perm).numpy())
    # mixing the loss: sum(lam L(y) + (1-lam) L(y_perm)) / n, not L(mixed label)
    logits = torch.randn(4, 3)
    yi = {"y": torch.tensor(Y[:4], dtype=torch.float32), "w": torch.ones(4)}
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    own = bce(logits, yi["y"], reduction="none").mean(1)
    other = bce(logits, yi["y"][perm], reduction="none").mean(1)
    expected = (torch.tensor(lam) * own + (1 - torch.tensor(lam)) * other).mean()
    got = net.mixed_loss(logits, yi, lam, perm)
    torch.testing.assert_close(got, expected)


def test_roll_shifts_each_example_circularly(bands):
    Xb = torch.arange(2 * 1 * 2 * 5, dtype=torch.float32).reshape(2, 1, 2, 5)
    out = _roll_time(Xb, [1, -2])
    torch.testing.assert_close(out[0], torch.roll(Xb[0], 1, dims=-1))
    torch.testing.assert_close(out[1], torch.roll(Xb[1], -2, dims=-1))
    X, Y = bands
    no_aug = {"mixup_alpha": 0.0, "freq_mask": 0, "time_mask": 0}
    a = RFCNNClassifier(**FAST, **no_aug, roll=0).fit(X, Y)
    b = RFCNNClassifier(**FAST, **no_aug, roll=5).fit(X, Y)
    assert not torch.allclose(_weights(a), _weights(b))


@pytest.mark.parametrize("width", [3, 0.375], ids=["bins", "share"])
@pytest.mark.parametrize("axis, param", [(2, "freq_mask"), (3, "time_mask")])
def test_spec_masks_zero_one_band_per_example(bands, axis, param, width):
    X, Y = bands
    off = {"freq_mask": 0, "time_mask": 0, param: width}
    clf = RFCNNClassifier(**FAST, mixup_alpha=0.0, roll=0, **off).fit(X, Y)
    assert getattr(clf.net_, param) == width
    net = clf.net_
    net.rng = np.random.default_rng(0)
    Xb = torch.rand(64, 1, 8, 9) + 1.0  # no zeros of its own
    out, lam, _ = net.augment(Xb)
    assert lam is None
    zero = (out == 0).numpy()
    # a masked entry is masked across the whole other axis and every channel
    other = 3 if axis == 2 else 2
    lines = zero.all(axis=(1, other))
    np.testing.assert_array_equal(zero.any(axis=(1, other)), lines)
    np.testing.assert_array_equal(out.numpy()[~zero], Xb.numpy()[~zero])
    widths = lines.sum(axis=1)
    # uniform in 0..3: 3 entries, or 0.375 of 8 bands / 9 frames
    assert widths.max() == 3 and widths.min() == 0
    for row, width in zip(lines, widths):  # one contiguous band
        if width:
            first = int(np.argmax(row))
            assert row[first : first + width].all()
    plain = RFCNNClassifier(**FAST, mixup_alpha=0.0, roll=0, **{**off, param: 0})
    assert not torch.allclose(_weights(plain.fit(X, Y)), _weights(clf))


def test_auto_masks_from_50_epochs(bands):
    X, Y = bands
    X, Y = X[:16], Y[:16]
    fast = {**FAST, "batch_size": 16}
    short = RFCNNClassifier(**{**fast, "max_epochs": 49}).fit(X, Y)
    long = RFCNNClassifier(**{**fast, "max_epochs": 50}).fit(X, Y)
    assert (short.freq_mask, short.time_mask) == ("auto", "auto")
    assert (short.net_.freq_mask, short.net_.time_mask) == (0, 0)
    assert (long.net_.freq_mask, long.net_.time_mask) == (0.25, 0.2)
    # an explicit value is kept whatever the budget
    clf = RFCNNClassifier(**fast, freq_mask=2, time_mask=0).fit(X, Y)
    assert (clf.net_.freq_mask, clf.net_.time_mask) == (2, 0)


def test_spec_masks_off_for_two_d_input():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 30)).astype(np.float32)
    y = np.arange(24) % 2
    clf = RFCNNClassifier(**FAST, freq_mask=4, time_mask=4).fit(X, y)
    assert (clf.net_.freq_mask, clf.net_.time_mask) == (0, 0)
    for bad in (-1, 1.0, 1.5):
        with pytest.raises(ParameterError, match="freq_mask"):
            RFCNNClassifier(freq_mask=bad).fit(X, y)


def test_linear_lr_schedule_recorded_in_history(bands):
    X, Y = bands
    linear = {"lr_schedule": "linear", "warmup": 0.0}
    clf = RFCNNClassifier(**{**FAST, **linear, "max_epochs": 7}).fit(X, Y)
    sched = LRSchedule(7)
    expected = [FAST["lr"] * sched.factor(e) for e in range(7)]
    np.testing.assert_allclose(clf.history_[:, "lr"], expected)
    assert expected[0] == FAST["lr"] and expected[-1] == pytest.approx(FAST["lr"] / 100)
    const = RFCNNClassifier(**{**FAST, "lr_schedule": "constant", "warmup": 0.0})
    const.fit(X, Y)
    np.testing.assert_allclose(const.history_[:, "lr"], FAST["lr"])


def test_lr_schedule_matches_the_paper_at_350_epochs():
    sched = LRSchedule(350)
    assert sched.factor(0) == sched.factor(49) == 1.0
    assert sched.factor(150) == pytest.approx(0.5)
    assert sched.factor(250) == sched.factor(349) == 0.01


def test_validation_fraction_and_early_stopping(multiclass):
    X, y = multiclass
    clf = RFCNNClassifier(**{**FAST, "validation_fraction": 0.25}).fit(X, y)
    assert all(v is not None for v in clf.history_[:, "valid_loss"])
    assert clf.net_.train_split is None  # the hold-out is not kept
    es = RFCNNClassifier(
        **{**FAST, "validation_fraction": 0.25, "max_epochs": 40, "lr": 0.3},
        early_stopping=True,
        net_params={"callbacks__early_stopping__patience": 1},
    ).fit(X, y)
    assert len(es.history_) < 40


class _RecordWeights(Callback):
    """Test helper: keep a copy of the weights after every epoch."""

    def initialize(self):
        self.snapshots_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.snapshots_.append(_weights_of(net.module_).clone())


def _weights_of(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_early_stopping_restores_the_best_epoch(multiclass):
    X, y = multiclass
    clf = RFCNNClassifier(
        **{**FAST, "validation_fraction": 0.25, "max_epochs": 12, "lr": 0.05},
        early_stopping=True,
        net_params={"callbacks__early_stopping__patience": 2},
        callbacks=[("record", _RecordWeights())],
    ).fit(X, y)
    record = dict(clf.net_.callbacks_)["record"]
    best = int(np.argmin(clf.history_[:, "valid_loss"]))
    assert best < len(clf.history_) - 1  # stopped after a worse epoch
    torch.testing.assert_close(_weights_of(clf.net_.module_), record.snapshots_[best])


def test_sample_weight(multiclass):
    X, y = multiclass
    base = RFCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    ones = RFCNNClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(base, ones.predict_proba(X))
    w = np.where(y == "none", 0.0, 3.0)
    weighted = RFCNNClassifier(**FAST).fit(X, y, sample_weight=w)
    assert not np.allclose(base, weighted.predict_proba(X))
    with pytest.raises(ValueError, match=r"(?i)negative"):
        RFCNNClassifier(**FAST).fit(X, y, sample_weight=-np.ones(len(y)))


def test_masked_entries_do_not_contribute(bands):
    X, Y = bands
    rng = np.random.default_rng(0)
    mask = (rng.random(Y.shape) < 0.7).astype(int)
    corrupted = np.where(mask == 1, Y, 1 - Y)  # garbage where unknown
    a = RFCNNClassifier(**FAST).fit(X, Y, mask=mask)
    b = RFCNNClassifier(**FAST).fit(X, corrupted, mask=mask)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = RFCNNClassifier(**FAST).fit(X, corrupted)
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))
    with pytest.raises(DataError, match="mask has shape"):
        RFCNNClassifier(**FAST).fit(X, Y, mask=mask[:, :2])


def test_partial_fit_one_epoch_per_call(multiclass):
    X, y = multiclass
    clf = RFCNNClassifier(**FAST)
    present = y != "high"
    clf.partial_fit(X[present], y[present], classes=np.unique(y))
    assert len(clf.history_) == 1 and len(clf.classes_) == 4
    before = _weights(clf).clone()
    clf.partial_fit(X, y)
    assert len(clf.history_) == 2
    assert not torch.equal(before, _weights(clf))
    with pytest.raises(DataError, match="not among the classes"):
        clf.partial_fit(X, np.where(y == "low", "new", y))


def test_verbose_prints_epoch_table_and_zero_is_silent(multiclass, capsys):
    X, y = multiclass
    RFCNNClassifier(**{**FAST, "verbose": 1}).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out
    RFCNNClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().out == ""


def test_epoch_table_prints_late_learning_rate_legibly(multiclass, capsys):
    # late in the linear schedule lr is lr / 100 = 1e-4: skorch's default
    # ".4f" would print it as 0.0000
    X, y = multiclass
    linear = {"lr_schedule": "linear", "warmup": 0.0}
    clf = RFCNNClassifier(**{**FAST, **linear, "max_epochs": 7, "verbose": 1})
    clf.fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("RFCNNClassifier: cpu, ")  # how it runs, once
    header, rows = lines[1].split(), [line.split() for line in lines[3:]]
    assert header[:2] == ["epoch", "lr"] and len(rows) == 7
    printed = [row[header.index("lr")] for row in rows]
    assert printed[0] == "1.00e-02" and printed[-1] == "1.00e-04"
    np.testing.assert_allclose([float(v) for v in printed], clf.history_[:, "lr"])
    assert clf.history_[-1, "lr"] == pytest.approx(FAST["lr"] / 100)  # unchanged


@pytest.mark.parametrize("arch", ["vgg_cnn", "resnet18", "cp_resnet"])
def test_baseline_architecture(multiclass, arch):
    from sklearn_rfcnn.models import get_model_entrypoint

    X, y = multiclass
    params = {**FAST, "rho": None}
    clf = RFCNNClassifier(**params, arch=arch).fit(X, y)
    assert clf.predict(X).shape == y.shape
    module = clf.net_.module_
    entry = get_model_entrypoint(arch)
    expected = entry if isinstance(entry, type) else type(entry(width=2))
    assert type(module) is expected and module.width == FAST["width"]


def test_tags():
    tags = RFCNNClassifier().__sklearn_tags__()
    assert tags.classifier_tags.multi_label
    assert tags.input_tags.three_d_array and tags.input_tags.two_d_array


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
def test_y_length_mismatch(multiclass):
    X, y = multiclass
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RFCNNClassifier(**FAST).fit(X, y[:-1])


def test_single_class_raises(multiclass):
    X, _ = multiclass
    with pytest.raises(DataError, match="only one class"):
        RFCNNClassifier(**FAST).fit(X, np.full(len(X), "rock"))


def test_all_zero_tag_column_warns_and_fits(bands):
    X, Y = bands
    Y = Y.copy()
    Y[:, 1] = 0
    with pytest.warns(RFCNNWarning, match=r"tag column\(s\) \[1\]"):
        clf = RFCNNClassifier(**FAST).fit(X, Y)
    assert clf.predict(X).shape == Y.shape


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_in_X(multiclass, bad):
    X, y = multiclass
    X = X.copy()
    X[3, 2, 1] = bad
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        RFCNNClassifier(**FAST).fit(X, y)


def test_nan_in_a_listed_clip_names_the_item(bands):
    X, Y = bands
    clips = [x[:, : 8 + i % 3] for i, x in enumerate(X)]
    clips[5] = clips[5].copy()
    clips[5][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[5\]"):
        RFCNNClassifier(**FAST).fit(clips, Y)


def test_different_number_of_bands_at_predict(multiclass):
    X, y = multiclass
    clf = RFCNNClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :-2])
    clf4 = RFCNNClassifier(**FAST).fit(X[:, None], y)
    with pytest.raises(DataError, match="band"):
        clf4.predict(X[:, None, :-2])


def test_string_X_is_a_type_error(multiclass):
    _, y = multiclass
    with pytest.raises(InputTypeError, match="AudioLoader"):
        RFCNNClassifier(**FAST).fit([f"clip{i}.wav" for i in range(len(y))], y)


def test_negative_rho_and_rho_beyond_depth(multiclass):
    X, y = multiclass
    with pytest.raises(ParameterError, match="rho"):
        RFCNNClassifier(**{**FAST, "rho": -1}).fit(X, y)
    with pytest.raises(ParameterError, match=r"rho"):
        RFCNNClassifier(**{**FAST, "rho": 23}).fit(X, y)


def test_unknown_arch_lists_available(multiclass):
    X, y = multiclass
    with pytest.raises(ParameterError, match="cp_resnet"):
        RFCNNClassifier(**FAST, arch="alexnet").fit(X, y)


def test_mask_with_class_labels_is_an_error(multiclass):
    X, y = multiclass
    with pytest.raises(DataError, match="multi-label"):
        RFCNNClassifier(**FAST).fit(X, y, mask=np.ones((len(y), 4)))


# ---------------------------------------------------------------------------
# model parameters reach the network
# ---------------------------------------------------------------------------
def test_model_parameters_reach_the_network(multiclass):
    X, y = multiclass
    narrow_time = RFCNNClassifier(**FAST, rho_f=4, rho_t=1).fit(X, y)
    assert narrow_time.receptive_field_.freq > narrow_time.receptive_field_.time
    plain = RFCNNClassifier(**FAST).fit(X, y).net_.module_
    assert not plain.frequency_aware and not plain.shake_shake
    assert plain.depth == 26 and plain.head == "pooled"  # the recipe default
    variant = RFCNNClassifier(
        **{**FAST, "width": 6}, frequency_aware=True, shake_shake=True, head="map"
    ).fit(X, y)
    module = variant.net_.module_
    assert module.num_features == 24 and module.width == 6
    assert module.frequency_aware and module.shake_shake and module.head == "map"
    assert all(b.branch2 is not None for b in module.blocks)  # two branches
    assert all(b.branch1.frequency_aware for b in module.blocks)
    assert variant.predict(X).shape == y.shape
    deeper = RFCNNClassifier(**{**FAST, "depth": 14, "rho": 9}).fit(X, y)
    assert deeper.net_.module_.depth == 14 and len(deeper.net_.module_.blocks) == 6
    assert deeper.receptive_field_ != narrow_time.receptive_field_


@pytest.mark.gpu
def test_cuda_training_bf16_and_cpu_reload(multiclass, tmp_path):
    X, y = multiclass
    clf = RFCNNClassifier(**{**FAST, "device": "auto"}).fit(X, y)
    assert str(clf.net_.device).startswith("cuda")
    assert clf.net_.amp_dtype in (torch.bfloat16, torch.float16)
    proba = clf.predict_proba(X)
    loaded = RFCNNClassifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-2)


def test_tagging_in_a_search_scored_by_average_precision(bands):
    from sklearn.model_selection import GridSearchCV

    X, Y = bands
    search = GridSearchCV(
        RFCNNClassifier(**{**FAST, "max_epochs": 1}),
        {"rho": [1, 2]},
        scoring="average_precision",
        cv=2,
        error_score="raise",
    ).fit(X, Y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize("y", [[0, None, 1, 0, 1, 0], ["a", None, "b", "a", "b", "a"]])
def test_a_missing_label_names_its_index(y):
    X = np.random.default_rng(0).normal(size=(6, 8, 12)).astype(np.float32)
    with pytest.raises(DataError, match=r"no label at index \[1\]"):
        RFCNNClassifier(**FAST).fit(X, y)


def test_a_ragged_item_of_the_wrong_rank_names_its_index():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(8, 12)), rng.normal(size=(8, 7)), np.zeros(5)]
    with pytest.raises(DataError, match=r"X\[2\] has 1 dimension"):
        RFCNNClassifier(**FAST).fit(X, [0, 1, 0])


def test_a_bogus_device_is_a_parameter_error():
    X = np.random.default_rng(0).normal(size=(6, 8, 12)).astype(np.float32)
    with pytest.raises(ParameterError, match="device='bogus' is not a torch device"):
        RFCNNClassifier(**{**FAST, "device": "bogus"}).fit(X, [0, 1] * 3)


def test_an_all_zero_mask_warns():
    X = np.random.default_rng(0).normal(size=(6, 8, 12)).astype(np.float32)
    Y = np.eye(3, dtype=int)[[0, 1, 2, 0, 1, 2]]
    with pytest.warns(RFCNNWarning, match="mask marks no entry"):
        RFCNNClassifier(**FAST).fit(X, Y, mask=np.zeros_like(Y))
    mask = np.ones_like(Y)
    mask[2] = 0
    with pytest.warns(RFCNNWarning, match=r"first rows: \[2\]"):
        RFCNNClassifier(**FAST).fit(X, Y, mask=mask)
