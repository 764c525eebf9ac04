"""Inference speed-ups of ``models``: folded batch norms and strided max-pooling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _helpers import random_spectrograms
from torch import nn

from sklearn_rfcnn import RFCNNClassifier
from sklearn_rfcnn.models import _layers, create_model
from sklearn_rfcnn.models._fold import (
    ENV_VAR,
    conv_bn_pairs,
    fold_batch_norms,
    folded_for_inference,
    inference_module,
)
from sklearn_rfcnn.models._layers import (
    TinySafeMaxPool2d,
    strided_max_pool2x2,
    strided_max_pool_pays,
)
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

CL = torch.channels_last


@pytest.fixture(autouse=True)
def _folding_on(monkeypatch):
    """Whatever the environment says, the folding is on unless a test says."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def _trained_stats(model, x, seed=0):
    """Random affine parameters and running statistics of the data itself.

    A few training-mode passes with ``momentum=None`` give each batch norm
    the mean and variance its input really has (as after training), so the
    folded biases cancel the convolutions' means as they do in use.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.3, generator=g)
                m.momentum = None
                m.reset_running_stats()
        model.train()
        for i in range(3):
            model(x + 0.1 * i)
    return model.eval()


def _batch_norms(module):
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize(
    "name, kwargs, left",
    [
        ("cp_resnet", {"rho": 5}, 1),  # the classifier's batch norm stays
        ("cp_resnet", {"rho": 3, "frequency_aware": True, "shake_shake": True}, 1),
        ("cp_resnet", {"rho": 5, "head": "pooled"}, 1),
        ("resnet18", {}, 0),
        ("vgg_cnn", {}, 0),
    ],
)
def test_folded_network_computes_the_eval_outputs(name, kwargs, left):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 40, 50, generator=g)
    model = _trained_stats(create_model(name, width=8, n_classes=5, **kwargs), x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batch_norms(model)
    assert _batch_norms(model) >= 8
    assert _batch_norms(folded) == left
    with torch.no_grad():
        expected = model(x)
        got = folded(x)
        features = folded.forward_head(folded.forward_features(x), pre_logits=True)
        expected_features = model.forward_head(
            model.forward_features(x), pre_logits=True
        )
    scale = expected.abs().max()
    torch.testing.assert_close(got, expected, atol=1e-5 * scale, rtol=1e-4)
    torch.testing.assert_close(features, expected_features, atol=1e-4, rtol=1e-4)
    # the network itself is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not any(p.requires_grad for p in folded.parameters())


def test_folded_weights_keep_the_channels_last_format():
    model = create_model("cp_resnet", width=8).eval().to(memory_format=CL)
    folded = fold_batch_norms(model)
    conv = folded.stage1.block1.branch1.conv1
    assert conv.bias is not None
    assert conv.weight.is_contiguous(memory_format=CL)


def test_mixed_precision_error_is_that_of_the_network_as_it_is():
    """In bf16 the folded pass rounds differently, not worse, than the original."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 1, 64, 80, generator=g)
    model = _trained_stats(create_model("cp_resnet", width=16, n_classes=6), x)
    folded = fold_batch_norms(model, torch.bfloat16)
    assert _batch_norms(folded) == 1
    xc = x.contiguous(memory_format=CL)
    with torch.no_grad():
        exact = model.double()(x.double())
        model.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            before = model.to(memory_format=CL)(xc).double()
            after = folded.to(memory_format=CL)(xc).double()

    def err(y):
        return float((y - exact).norm() / exact.norm())

    assert 0 < err(after) < 1.5 * err(before) + 1e-3, (err(after), err(before))


def test_pairs_that_cannot_be_folded_are_left():
    untracked = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)
    )
    assert conv_bn_pairs(untracked) == []
    assert _batch_norms(fold_batch_norms(untracked.eval())) == 1
    # a convolution subclass may compute something else
    custom = nn.Sequential(type("MyConv", (nn.Conv2d,), {})(1, 4, 3), nn.BatchNorm2d(4))
    assert conv_bn_pairs(custom) == []
    # a pair whose folded weights overflow float16 stays in float16
    huge = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        huge[1].weight.fill_(1e4)
        huge[1].running_var.fill_(1e-6)
    assert _batch_norms(fold_batch_norms(huge, torch.float16)) == 1
    assert _batch_norms(fold_batch_norms(huge, torch.bfloat16)) == 0


def test_folded_copy_is_cached_and_follows_the_network():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 20, 20, generator=g)
    model = _trained_stats(create_model("cp_resnet", width=4), x)

    def check(folded):
        """The cached copy computes what a copy folded now computes, exactly."""
        assert _batch_norms(folded) == 1
        with torch.no_grad():
            assert torch.equal(folded(x), fold_batch_norms(model, torch.bfloat16)(x))

    first = folded_for_inference(model, torch.bfloat16)
    check(first)
    assert folded_for_inference(model, torch.bfloat16) is first
    # an optimizer step: the folded weights are recomputed into the copy
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    model(x).sum().backward()  # (a training pass: new running statistics)
    opt.step()
    model.eval()
    assert folded_for_inference(model, torch.bfloat16) is first
    check(first)
    # load_state_dict
    model.load_state_dict(
        _trained_stats(create_model("cp_resnet", width=4), x, 7).state_dict()
    )
    assert folded_for_inference(model, torch.bfloat16) is first
    check(first)
    # a new structure (here a layout change) gives a new copy
    model.to(memory_format=CL)
    second = folded_for_inference(model, torch.bfloat16)
    assert second is not first
    assert second.stage1.block1.branch1.conv1.weight.is_contiguous(memory_format=CL)
    check(second)
    # another dtype: rebuilt, and back
    assert folded_for_inference(model, torch.float16) is not second


def test_a_refresh_that_would_overflow_builds_the_copy_again():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    first = folded_for_inference(model, torch.float16)
    assert isinstance(first[1], nn.Identity)
    with torch.no_grad():
        model[1].weight.fill_(1e4)
        model[1].running_var.fill_(1e-6)
    second = folded_for_inference(model, torch.float16)
    assert second is not first
    assert isinstance(second[1], nn.BatchNorm2d)  # left unfolded


def test_nothing_is_folded_when_switched_off_or_hooked(monkeypatch):
    model = create_model("cp_resnet", width=4).eval()
    handle = model.stage1.block1.branch1.bn1.register_forward_hook(lambda *args: None)
    assert folded_for_inference(model, torch.bfloat16) is model
    handle.remove()
    monkeypatch.setenv(ENV_VAR, "0")
    assert folded_for_inference(model, torch.bfloat16) is model
    monkeypatch.setenv(ENV_VAR, "1")
    assert folded_for_inference(model, torch.bfloat16) is not model
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert folded_for_inference(plain) is plain
    with torch.inference_mode():  # inference tensors have no version counter
        made_inside = create_model("cp_resnet", width=4).eval()
        assert folded_for_inference(made_inside, torch.bfloat16) is made_inside
        made_inside(torch.randn(1, 1, 20, 20))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch._dynamo's import
def test_inference_module_folds_under_mixed_precision_only():
    model = create_model("cp_resnet", width=4).eval()
    assert inference_module(model, None) is model  # float32: as it is
    for dtype in (torch.bfloat16, torch.float16):
        assert inference_module(model, dtype) is folded_for_inference(model, dtype)
        assert _batch_norms(inference_module(model, dtype)) == 1
    compiled = torch.compile(model)  # compiles lazily: nothing runs here
    assert inference_module(compiled, torch.bfloat16) is compiled
    wrapped = nn.DataParallel(model)  # (on the CPU it only wraps)
    assert inference_module(wrapped, torch.bfloat16) is wrapped


# -- the estimators ----------------------------------------------------------


@pytest.fixture(scope="module")
def clips():
    X, y, _ = random_spectrograms(["bass", "drums", "voice"])
    return X, y


def test_mixed_precision_predictions_run_the_folded_network(clips, monkeypatch):
    X, y = clips
    clf = RFCNNClassifier(**{**FAST_CNN_PARAMS, "precision": "bf16"}).fit(X, y)
    module = clf.net_._inference_module()
    assert module is not clf.net_.module_
    assert _batch_norms(module) == 1 < _batch_norms(clf.net_.module_)
    folded = clf.predict_proba(X)
    monkeypatch.setenv(ENV_VAR, "0")
    assert clf.net_._inference_module() is clf.net_.module_
    unfolded = clf.predict_proba(X)
    # bf16 rounding apart, the same predictions
    np.testing.assert_allclose(folded, unfolded, atol=0.05)
    assert not np.array_equal(folded, unfolded)


def test_float32_predictions_run_the_network_as_it_is(clips):
    X, y = clips
    clf = RFCNNClassifier(**{**FAST_CNN_PARAMS, "precision": "32"}).fit(X, y)
    assert clf.net_._inference_module() is clf.net_.module_


# -- strided max-pooling -----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1, 2, 2, 2), (2, 5, 7, 9), (3, 24, 16, 11)])
def test_strided_max_pool_equals_torch(dtype, shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g).to(dtype).contiguous(memory_format=CL)
    x[torch.rand(shape, generator=g) < 0.05] = float("nan")
    got, expected = strided_max_pool2x2(x), F.max_pool2d(x, 2)
    assert got.is_contiguous(memory_format=CL)
    assert torch.equal(got.isnan(), expected.isnan())
    assert torch.equal(got.nan_to_num(0.0), expected.nan_to_num(0.0))


def test_strided_max_pool_takes_what_it_should():
    x = torch.randn(2, 24, 8, 8).contiguous(memory_format=CL)
    assert strided_max_pool_pays(x)
    assert strided_max_pool_pays(x.to(torch.bfloat16))
    assert not strided_max_pool_pays(x.contiguous())  # NCHW
    wide = torch.randn(2, 64, 4, 4).contiguous(memory_format=CL)
    assert not strided_max_pool_pays(wide)  # float32, 64 channels
    assert strided_max_pool_pays(wide.to(torch.bfloat16))
    assert not strided_max_pool_pays(x.clone().requires_grad_())  # training
    with torch.no_grad():
        assert strided_max_pool_pays(x.clone().requires_grad_())
    assert not strided_max_pool_pays(x[:, :, :1])  # a row only


def test_pool_layer_uses_the_strided_maxima_at_inference(monkeypatch):
    calls = []
    real = _layers.strided_max_pool2x2

    def spy(x):
        calls.append(x.shape)
        return real(x)

    monkeypatch.setattr(_layers, "strided_max_pool2x2", spy)
    pool = TinySafeMaxPool2d(2)
    x = torch.randn(2, 8, 9, 7).contiguous(memory_format=CL)
    with torch.inference_mode():
        assert torch.equal(pool(x), F.max_pool2d(x, 2))
    assert calls == [x.shape]
    # training (gradient wanted), another window, or the probe: torch's kernels
    y = pool(x.clone().requires_grad_())
    y.sum().backward()
    with torch.inference_mode():
        TinySafeMaxPool2d(3, stride=2, padding=1)(x)
    assert calls == [x.shape]
