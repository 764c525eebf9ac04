"""The ``channels_last`` option of the estimators (torch memory format).

What must hold: the module's 4-D weights and every batch reaching the network
(training, validation, prediction, embedding, fixed and variable length, bf16
autocast, SWA) are in ``torch.channels_last`` format when the option is on and
not when it is off; results equal the default format's up to rounding; save and
load keep the option.

Training itself is not compared across formats: Adam amplifies the rounding
differences of the two layouts' backward kernels (as it amplifies any other
perturbation, e.g. of the learning rate in the 5th digit), so one network is
trained and then run in both formats instead.
"""

import json

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._torch import resolve_channels_last

CL = torch.channels_last

FAST = dict(
    width=4,
    rho=2,
    max_epochs=2,
    batch_size=8,
    lr=1e-2,
    verbose=0,
    device="cpu",
    random_state=0,
)


class InputSpy(Callback):
    """Record the layout of every batch entering the network's first conv."""

    def initialize(self):
        self.records = []  # (training, is channels_last, is contiguous)
        return self

    def on_train_begin(self, net, **kwargs):
        first_conv = next(
            m for m in net.module_.modules() if isinstance(m, torch.nn.Conv2d)
        )
        if getattr(first_conv, "_spy_hooked", False):
            return

        def hook(module, args):
            x = args[0]
            self.records.append(
                (
                    module.training,
                    x.is_contiguous(memory_format=CL),
                    x.is_contiguous(),
                )
            )

        first_conv.register_forward_pre_hook(hook)
        first_conv._spy_hooked = True


def _spy(est):
    return dict(est.net_.callbacks_)["spy"]


def _conv_weights(est):
    """4-D conv weights whose two layouts differ (>1 in/out channels, k > 1)."""
    weights = [
        m.weight
        for m in est.net_.module_.modules()
        if isinstance(m, torch.nn.Conv2d)
        and m.in_channels > 1
        and m.out_channels > 1
        and max(m.kernel_size) > 1
    ]
    assert weights
    return weights


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # two input channels: with a single one both layouts have the same strides
    X = rng.normal(size=(24, 2, 8, 12)).astype(np.float32)
    y = np.array(["bass", "drums", "voice"] * 8)
    return X, y


def test_default_is_auto_and_value_is_validated(data):
    assert RFCNNClassifier().channels_last == "auto"
    assert RFCNNEmbedder().get_params()["channels_last"] == "auto"
    X, y = data
    with pytest.raises(ParameterError, match="channels_last"):
        RFCNNClassifier(**FAST, channels_last="yes").fit(X, y)


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_fit_predict_run_in_channels_last(data, precision):
    X, y = data
    clf = RFCNNClassifier(
        **FAST,
        precision=precision,
        validation_fraction=0.25,
        channels_last=True,
        callbacks=[("spy", InputSpy())],
    ).fit(X, y)
    assert all(w.is_contiguous(memory_format=CL) for w in _conv_weights(clf))
    assert not any(w.is_contiguous() for w in _conv_weights(clf))
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 3) and np.isfinite(proba).all()
    records = _spy(clf).records
    # training batches, validation batches and the prediction batches
    assert {training for training, _, _ in records} == {True, False}
    assert len(records) > 3 * 2
    assert all(cl and not contiguous for _, cl, contiguous in records)


def test_off_keeps_the_default_format(data):
    X, y = data
    clf = RFCNNClassifier(
        **FAST,
        validation_fraction=0.25,
        channels_last=False,
        callbacks=[("spy", InputSpy())],
    ).fit(X, y)
    clf.predict(X)
    assert clf.channels_last_ is False
    assert all(w.is_contiguous() for w in _conv_weights(clf))
    assert not any(w.is_contiguous(memory_format=CL) for w in _conv_weights(clf))
    records = _spy(clf).records
    assert records and all(contiguous and not cl for _, cl, contiguous in records)


def test_variable_length_swa_and_early_stopping(data):
    X, y = data
    rng = np.random.default_rng(1)
    clips = [rng.normal(size=(2, 8, t)).astype(np.float32) for t in (10, 12, 14) * 8]
    clf = RFCNNClassifier(
        **{**FAST, "max_epochs": 3},
        channels_last=True,
        swa=True,
        early_stopping=True,
        validation_fraction=0.25,
        callbacks=[("spy", InputSpy())],
    ).fit(clips, y)
    # SWA and early stopping load weights into the module: the format stays
    assert all(w.is_contiguous(memory_format=CL) for w in _conv_weights(clf))
    proba = clf.predict_proba([*clips[:5], X[0]])
    assert proba.shape == (6, 3)
    records = _spy(clf).records
    assert records and all(cl and not contiguous for _, cl, contiguous in records)


def test_embedder_transform(data):
    X, y = data
    emb = RFCNNEmbedder(
        **FAST, channels_last=True, callbacks=[("spy", InputSpy())]
    ).fit(X, y)
    n_fit = len(_spy(emb).records)
    Z = emb.transform(X)
    assert Z.shape == (24, 16) and Z.dtype == np.float32
    new = _spy(emb).records[n_fit:]
    assert new and all(cl and not contiguous for _, cl, contiguous in new)


def test_same_predictions_as_default_format(data, tmp_path):
    """One trained network run in both formats gives the same numbers."""
    X, y = data
    clf = RFCNNClassifier(**FAST, validation_fraction=None, channels_last=False)
    clf.fit(X, y)
    assert clf.channels_last_ is False
    clf.save(tmp_path / "model")
    config_file = tmp_path / "model" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["params"]["channels_last"] is False
    config["params"]["channels_last"] = True
    del config["checksum"]  # a hand-edited file, as written before checksums
    config_file.write_text(json.dumps(config))

    switched = RFCNNClassifier.load(tmp_path / "model")
    assert switched.channels_last is True and switched.channels_last_ is True
    assert all(w.is_contiguous(memory_format=CL) for w in _conv_weights(switched))
    np.testing.assert_allclose(
        switched.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-4
    )
    emb = RFCNNEmbedder.from_classifier(switched)
    np.testing.assert_allclose(
        emb.transform(X),
        RFCNNEmbedder.from_classifier(clf).transform(X),
        rtol=0,
        atol=1e-4,
    )


def test_save_load_keeps_the_option(data, tmp_path):
    X, y = data
    clf = RFCNNClassifier(**FAST, channels_last=True).fit(X, y)
    clf.save(tmp_path / "cl")
    config = json.loads((tmp_path / "cl" / "config.json").read_text())
    assert config["params"]["channels_last"] is True
    loaded = RFCNNClassifier.load(tmp_path / "cl")
    assert loaded.channels_last is True
    assert loaded.net_.channels_last is True
    assert all(w.is_contiguous(memory_format=CL) for w in _conv_weights(loaded))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_file_without_the_key_loads_with_default(data, tmp_path):
    """Models saved before the option existed load with the default ("auto")."""
    X, y = data
    clf = RFCNNClassifier(**FAST).fit(X, y)
    auto = resolve_channels_last("auto", "cpu", clf.precision_)  # this CPU's
    assert clf.channels_last_ is auto
    clf.save(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    del config["params"]["channels_last"]
    del config["checksum"]  # files that old had no checksum either
    config_file.write_text(json.dumps(config))
    loaded = RFCNNClassifier.load(tmp_path / "old")
    assert loaded.channels_last == "auto" and loaded.channels_last_ is auto
    layout = CL if auto else torch.contiguous_format
    assert all(w.is_contiguous(memory_format=layout) for w in _conv_weights(loaded))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


#: ``torch.cpu.get_capabilities()`` of a CPU without AVX2 (not x86: ARM, say).
NO_AVX2 = {"avx2": False, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False}
#: ... and of an AVX2-only x86 CPU.
AVX2_ONLY = {**NO_AVX2, "avx2": True}


@pytest.fixture
def no_avx2(monkeypatch):
    """This CPU as one without AVX2 (float32, per-phase layouts under "auto")."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(NO_AVX2))


def _weights_layout(est):
    weights = _conv_weights(est)
    if all(w.is_contiguous(memory_format=CL) for w in weights):
        return "cl"
    assert all(w.is_contiguous() for w in weights)
    return "nchw"


@pytest.mark.parametrize(
    "channels_last, precision, expected",
    [
        ("auto", "32", (False, True)),
        ("auto", "bf16", (True, True)),
        (False, "32", (False, False)),
        (True, "32", (True, True)),
    ],
)
def test_auto_layout_per_phase_on_a_cpu_without_avx2(
    data, no_avx2, channels_last, precision, expected
):
    X, y = data
    clf = RFCNNClassifier(**FAST, precision=precision, channels_last=channels_last).fit(
        X, y
    )
    assert (clf.channels_last_, clf.inference_channels_last_) == expected
    assert clf.net_.inference_channels_last is expected[1]


def test_trains_in_one_layout_and_predicts_in_the_other(data, no_avx2):
    """auto on a CPU without AVX2, float32: batches and weights follow the phase."""
    X, y = data
    clf = RFCNNClassifier(
        **FAST,
        precision="32",
        validation_fraction=0.25,
        callbacks=[("spy", InputSpy())],
    ).fit(X, y)
    spy = _spy(clf)
    assert _weights_layout(clf) == "nchw"
    assert spy.records and all(c and not cl for _, cl, c in spy.records)
    n_fit = len(spy.records)

    proba = clf.predict_proba(X)
    assert _weights_layout(clf) == "cl"
    new = spy.records[n_fit:]
    assert new and all(cl and not c for _, cl, c in new)
    Z = RFCNNEmbedder.from_classifier(clf).transform(X)
    assert Z.shape == (24, 16)

    # ordinary tensors (converted outside the inference mode of predict),
    # still the parameters the optimizer updates
    assert not any(p.is_inference() for p in clf.net_.module_.parameters())
    params = {id(p) for p in clf.net_.module_.parameters()}
    opt = {id(p) for g in clf.net_.optimizer_.param_groups for p in g["params"]}
    assert params == opt

    n_pred = len(spy.records)
    clf.partial_fit(X, y)
    assert _weights_layout(clf) == "nchw"
    again = spy.records[n_pred:]
    assert again and all(c and not cl for _, cl, c in again)

    # the same numbers as a network that only ever ran in the default layout
    ref = RFCNNClassifier(
        **FAST, precision="32", validation_fraction=0.25, channels_last=False
    )
    ref.fit(X, y)
    ref.partial_fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-4)
    assert proba.shape == (24, 3)


def test_inference_in_between_leaves_training_unchanged(data, no_avx2):
    """The round trip of the weights' layout copies them exactly: a partial_fit
    after predictions trains exactly as one without them."""
    X, y = data
    params = dict(**FAST, precision="32", validation_fraction=None)
    a = RFCNNClassifier(**params).fit(X, y)
    b = RFCNNClassifier(**params).fit(X, y)
    a.predict_proba(X)
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    for (name, wa), wb in zip(
        a.net_.module_.state_dict().items(), b.net_.module_.state_dict().values()
    ):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=name)


def test_per_phase_layout_survives_pickle_and_save(data, no_avx2, tmp_path):
    import pickle

    X, y = data
    clf = RFCNNClassifier(**FAST, precision="32").fit(X, y)
    proba = clf.predict_proba(X)  # the module is now in the inference layout
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), proba)
    copy.partial_fit(X, y)
    assert _weights_layout(copy) == "nchw"

    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["fitted"]["inference_channels_last"] is True
    loaded = RFCNNClassifier.load(tmp_path / "m")
    assert (loaded.channels_last_, loaded.inference_channels_last_) == (False, True)
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-6)


def test_net_pickled_before_per_phase_layouts_still_predicts(data):
    """A net without the layout record (pickled by 0.2) runs in its one layout."""
    X, y = data
    clf = RFCNNClassifier(**FAST, channels_last=True).fit(X, y)
    proba = clf.predict_proba(X)
    del clf.net_._module_channels_last
    del clf.net_.inference_channels_last
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert _weights_layout(clf) == "cl"


@pytest.fixture
def rerouted(monkeypatch):
    """Shapes of the inputs of the convolutions ``nchw_weight_grads`` re-routes.

    The thresholds are lowered to 4 channels and 1 position so that FAST's
    width-4 network on ``data``'s small maps has wide convolutions (its stem,
    on 2 channels, stays narrow).
    """
    from sklearn_rfcnn.utils import _conv_grad

    monkeypatch.setattr(_conv_grad, "MIN_IN_CHANNELS", 4)
    monkeypatch.setattr(_conv_grad, "MIN_PIXELS", 1)
    shapes = []
    apply = _conv_grad._Conv2dNCHWWeightGrad.apply

    def spy(x, *args):
        shapes.append(tuple(x.shape))
        return apply(x, *args)

    monkeypatch.setattr(_conv_grad._Conv2dNCHWWeightGrad, "apply", spy)
    return shapes


@pytest.mark.parametrize(
    "caps, precision, expected_layout, expected_rerouted",
    [
        (AVX2_ONLY, "32", True, True),
        (AVX2_ONLY, "bf16", True, False),  # autocast: oneDNN's own gradients
        ({**AVX2_ONLY, "avx512_f": True}, "32", True, False),
        (NO_AVX2, "32", False, False),
    ],
)
def test_avx2_cpu_trains_in_channels_last_with_nchw_weight_grads(
    data, monkeypatch, rerouted, caps, precision, expected_layout, expected_rerouted
):
    """On an AVX2 oneDNN without AVX-512, "auto" trains float32 in channels-last
    and the wide convolutions' weight gradients are computed in NCHW; the
    network's first epoch is the one it trains without the re-routing (up to
    rounding; the gradients themselves are compared in ``test_utils``)."""
    X, y = data
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))
    params = dict(**FAST, precision=precision, validation_fraction=None)
    clf = RFCNNClassifier(**params).fit(X, y)
    assert clf.channels_last_ is expected_layout and clf.inference_channels_last_
    assert bool(rerouted) is expected_rerouted
    if not expected_rerouted:
        return
    n_fit = len(rerouted)
    assert {s[1] for s in rerouted} == {4}  # not the 2-channel stem
    clf.predict_proba(X)
    assert len(rerouted) == n_fit  # inference is not re-routed
    clf.partial_fit(X, y)
    assert len(rerouted) > n_fit  # nor is it only the first fit

    from sklearn_rfcnn.utils import _conv_grad

    n_before = len(rerouted)
    monkeypatch.setattr(_conv_grad, "MIN_IN_CHANNELS", 10**6)  # nothing re-routed
    ref = RFCNNClassifier(**params).fit(X, y)
    assert len(rerouted) == n_before
    # the first epoch's batches train on the same gradients up to rounding
    # (later ones drift apart: Adam amplifies rounding, see the module notes)
    np.testing.assert_allclose(
        clf.history_[0]["train_loss"], ref.history_[0]["train_loss"], rtol=1e-5
    )


@pytest.mark.parametrize(
    "caps, said", [(AVX2_ONLY, True), ({**AVX2_ONLY, "avx512_f": True}, False)]
)
def test_verbose_fit_says_when_weight_gradients_go_through_nchw(
    data, monkeypatch, rerouted, capsys, caps, said
):
    X, y = data
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))
    RFCNNClassifier(**{**FAST, "verbose": 1, "max_epochs": 1}, precision="32").fit(X, y)
    first = capsys.readouterr().out.splitlines()[0]
    assert "channels-last memory format" in first
    assert ("weight gradients of wide convolutions in NCHW" in first) is said
