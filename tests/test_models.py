"""Tests for sklearn_rfcnn.models: CP-ResNet, its variants, baselines, registry."""

import copy
import inspect
import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.models import (
    CPResNet,
    ShakeShake,
    TinySafeMaxPool2d,
    create_model,
    frequency_coordinates,
    get_model_entrypoint,
    list_models,
    probe_pooling,
)
from sklearn_rfcnn.models._layers import pad_to_min_size, shake_shake
from sklearn_rfcnn.receptive_field import RF, cp_resnet_layers, receptive_field

#: Every registered architecture (the registry is the one list of models).
ALL_MODELS = [name for name in list_models() if not name.startswith("_")]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def randomize(model, positive=False, generator_seed=0):
    """Non-zero weights everywhere (the reference init zeroes conv2/classifier)."""
    g = torch.Generator().manual_seed(generator_seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan = m.weight[0].numel()
                w = torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype)
                if positive:
                    m.weight.copy_((0.5 + 0.5 * w) / fan)
                else:
                    m.weight.copy_((2 * w - 1) * math.sqrt(3.0 / fan))
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d) and not positive:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model


def gradient_footprint(model, shape):
    """Empirical RF: non-zero input-gradient extent of the centre stage-3 unit.

    float64, eval mode, positive weights and inputs (so no ReLU is ever
    inactive), max-pools turned into average pools.
    """
    model = randomize(model, positive=True).double().eval()
    x = (
        0.5 + torch.rand(1, model.in_channels, *shape, dtype=torch.float64)
    ).requires_grad_()
    with probe_pooling(model):
        fmap = model.forward_features(x)
    fmap[0, :, fmap.shape[2] // 2, fmap.shape[3] // 2].sum().backward()
    hit = x.grad[0].abs().sum(0) > 0
    extents = []
    for axis, size in ((1, shape[0]), (0, shape[1])):
        idx = torch.nonzero(hit.any(axis)).flatten()
        lo, hi = int(idx.min()), int(idx.max())
        assert lo > 0 and hi < size - 1, "footprint clipped: use a larger input"
        assert len(idx) == hi - lo + 1, "footprint not contiguous"
        extents.append(hi - lo + 1)
    return RF(*extents)


# --------------------------------------------------------------------------- #
# receptive field: analytic vs the real module
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "expected", "shape"),
    [
        ({"rho": 0}, RF(23, 23), (64, 64)),
        ({"rho": 2}, RF(39, 39), (80, 80)),
        ({"rho": 5}, RF(87, 87), (128, 128)),
        ({"rho": 7}, RF(135, 135), (176, 176)),
        ({"rho_f": 2, "rho_t": 7}, RF(39, 135), (80, 176)),
        ({"rho": 3, "depth": 8}, RF(119, 119), (152, 152)),
    ],
)
def test_gradient_probe_matches_analytic_rf(kwargs, expected, shape):
    model = CPResNet(width=4, n_classes=2, **kwargs)
    assert model.receptive_field == expected
    assert gradient_footprint(model, shape) == expected


@pytest.mark.parametrize(
    ("name", "shape"), [("vgg_cnn", (112, 112)), ("resnet18", (512, 512))]
)
def test_gradient_probe_baselines(name, shape):
    model = create_model(name, width=2, n_classes=2)
    assert gradient_footprint(model, shape) == model.receptive_field
    assert receptive_field(model) == model.receptive_field


def test_probe_pooling_restores_max_pooling():
    model = CPResNet(width=4, rho=0)
    with probe_pooling(model):
        assert all(p.probe for p in model.modules() if isinstance(p, TinySafeMaxPool2d))
    assert not any(p.probe for p in model.modules() if isinstance(p, TinySafeMaxPool2d))


@pytest.mark.parametrize(
    "kwargs",
    [{"rho": r} for r in (0, 1, 6, 7, 15, 22)]
    + [{"rho_f": 1, "rho_t": 9}, {"rho": 10, "depth": 14}, {"rho": 0, "depth": 44}],
)
def test_module_layers_match_analytic_layers(kwargs):
    model = CPResNet(width=1, **kwargs)
    assert [(s.kernel_size, s.stride) for s in model.rf_layers()] == [
        (s.kernel_size, s.stride) for s in cp_resnet_layers(**kwargs)
    ]


# --------------------------------------------------------------------------- #
# parameter counts (method.md §1.7)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rho": 5, "n_classes": 20}, 3_568_552),
        ({"rho": 5, "n_classes": 56}, 3_587_056),
        ({"rho": 5, "n_classes": 56, "frequency_aware": True}, 3_600_368),
        ({"rho": 5, "n_classes": 56, "width": 32}, 233_296),
        ({"rho": 5, "n_classes": 56, "width": 48}, 515_776),
        ({"rho": 5, "n_classes": 56, "width": 64}, 908_848),
        ({"rho": 5, "in_channels": 2, "n_classes": 10}, 3_566_612),
        ({"n_classes": 56, "rho": 7}, 3_980_272),
        ({"n_classes": 56, "rho": 0}, 2_931_696),
        ({"n_classes": 56, "rho": 3}, 3_324_912),
        ({"n_classes": 56, "rho": 8}, 4_504_560),
        ({"n_classes": 56, "rho": 10}, 5_553_136),
        ({"n_classes": 56, "rho": 7, "frequency_aware": True}, 3_996_656),
        ({"in_channels": 2, "n_classes": 10, "rho": 15}, 8_678_420),
    ],
)
def test_parameter_counts_match_reference(kwargs, expected):
    assert n_params(CPResNet(**kwargs)) == expected


def test_frequency_aware_adds_13312_parameters():
    plain = n_params(CPResNet(n_classes=56, rho=5))
    aware = n_params(CPResNet(n_classes=56, rho=5, frequency_aware=True))
    assert aware - plain == 13_312


def test_shake_shake_doubles_the_branches():
    plain = CPResNet(width=8)
    shake = CPResNet(width=8, shake_shake=True)
    extra = sum(n_params(b.branch2) for b in shake.blocks)
    assert extra == sum(n_params(b.branch1) for b in plain.blocks)
    assert n_params(shake) == n_params(plain) + extra
    assert shake.receptive_field == plain.receptive_field


# --------------------------------------------------------------------------- #
# shapes and FLOPs (on the meta device: no compute)
# --------------------------------------------------------------------------- #
def test_reference_shapes_on_meta_device():
    with torch.device("meta"):
        m = CPResNet(n_classes=56)
        x = torch.empty(4, 1, 256, 431)
    stem = m.stem(x)
    assert stem.shape == (4, 128, 127, 215)
    s1 = m.stage1(stem)
    assert s1.shape == (4, 128, 15, 26)
    s3 = m.stage3(m.stage2(s1))
    assert s3.shape == (4, 512, 15, 26)
    assert m.forward_features(x).shape == (4, 512, 15, 26)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (4, 512)
    assert m(x).shape == (4, 56)
    assert m.num_features == 512


@pytest.mark.parametrize(
    ("kwargs", "fwd", "fwd_bwd"),
    [
        ({"rho": 5}, 16.67, 49.84),
        ({"rho": 7}, 17.31, 51.75),
        ({"rho": 5, "frequency_aware": True}, 16.79, 50.20),
    ],
)
def test_flops_match_reference(kwargs, fwd, fwd_bwd):
    with torch.device("meta"):
        m = CPResNet(n_classes=56, **kwargs)
        x = torch.empty(1, 1, 256, 431)
    with FlopCounterMode(display=False) as counter:
        y = m(x)
    assert counter.get_total_flops() / 1e9 == pytest.approx(fwd, abs=0.005)
    with FlopCounterMode(display=False) as counter:
        m(x).sum().backward()
    assert counter.get_total_flops() / 1e9 == pytest.approx(fwd_bwd, abs=0.005)
    assert y.shape == (1, 56)


# --------------------------------------------------------------------------- #
# initialisation
# --------------------------------------------------------------------------- #
def test_initial_logits_are_exactly_zero():
    torch.manual_seed(0)
    m = CPResNet(width=8, n_classes=5, rho=7)
    x = torch.randn(3, 1, 40, 36)
    assert torch.equal(m.train()(x), torch.zeros(3, 5))
    assert torch.equal(m.eval()(x), torch.zeros(3, 5))
    assert m.forward_features(x).abs().sum() > 0


def test_reference_init_statistics():
    torch.manual_seed(0)
    m = CPResNet(n_classes=20)  # width 128, 12 blocks
    assert torch.count_nonzero(m.classifier.weight) == 0
    for block in m.blocks:
        assert torch.count_nonzero(block.branch1.conv2.weight) == 0
    # conv1 ~ N(0, 2 / (k k C_out) / L)
    w = m.stage1.block2.branch1.conv1.weight
    assert w.std().item() == pytest.approx(
        math.sqrt(2 / (9 * 128)) / math.sqrt(12), rel=0.02
    )
    w = m.stage3.block2.branch1.conv1.weight  # 1x1, 512 out
    assert w.std().item() == pytest.approx(math.sqrt(2 / 512) / math.sqrt(12), rel=0.02)
    # projection ~ N(0, 2 / C_out)
    w = m.stage2.block1.shortcut.conv.weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    # stem: Kaiming normal, fan_in = 25
    assert m.stem.conv.weight.std().item() == pytest.approx(math.sqrt(2 / 25), rel=0.15)
    bn = m.stage1.block1.branch1.bn1
    assert torch.equal(bn.weight, torch.ones(128)) and torch.equal(
        bn.bias, torch.zeros(128)
    )


def test_init_uses_block_count_of_this_model():
    torch.manual_seed(0)
    shallow = CPResNet(depth=8, rho=2)  # 3 blocks
    w = shallow.stage1.block1.branch1.conv1.weight
    assert w.std().item() == pytest.approx(
        math.sqrt(2 / (9 * 128)) / math.sqrt(3), rel=0.03
    )


# --------------------------------------------------------------------------- #
# head / features protocol
# --------------------------------------------------------------------------- #
def test_features_and_head_compose_to_forward():
    torch.manual_seed(0)
    m = randomize(CPResNet(width=8, n_classes=4, rho=5)).eval()
    x = torch.randn(3, 1, 48, 40)
    fmap = m.forward_features(x)
    feats = m.forward_head(fmap, pre_logits=True)
    assert feats.shape == (3, 32)
    torch.testing.assert_close(feats, fmap.mean(dim=(2, 3)))
    # a pooled input gives the same logits in eval mode (pooling commutes)
    torch.testing.assert_close(m.forward_head(feats), m(x))
    torch.testing.assert_close(m.forward_head(feats, pre_logits=True), feats)
    m.train()
    # in training mode the 4-D head is exactly the reference forward
    torch.testing.assert_close(m.forward_head(m.forward_features(x)), m(x))


def test_reset_classifier():
    m = CPResNet(width=4, n_classes=3)
    m.reset_classifier(7)
    assert m(torch.randn(2, 1, 20, 20)).shape == (2, 7)
    assert m.get_classifier().out_channels == 7
    for name in ("vgg_cnn", "resnet18"):
        b = create_model(name, width=2, n_classes=3)
        b.reset_classifier(5)
        assert b(torch.randn(2, 1, 20, 20)).shape == (2, 5)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_common_protocol(name):
    m = create_model(name, in_channels=2, n_classes=3, width=4).eval()
    x = torch.randn(2, 2, 24, 30)
    # timm's convention: forward_features is the last 4-D map, forward_head
    # pools it (pre_logits=True: the embedding) and classifies it
    fmap = m.forward_features(x)
    assert fmap.dim() == 4 and fmap.shape[:2] == (2, m.num_features)
    feats = m.forward_head(fmap, pre_logits=True)
    assert feats.shape == (2, m.num_features)
    torch.testing.assert_close(feats, fmap.mean(dim=(2, 3)))
    assert torch.equal(m.forward_head(fmap), m(x))
    assert torch.equal(m.forward_feature_map(x), fmap)  # the pre-0.3 alias
    assert m(x).shape == (2, 3)
    assert isinstance(m.receptive_field, RF)


# --------------------------------------------------------------------------- #
# tiny inputs, padding, reference equivalence
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("size", [(1, 1), (1, 5), (3, 3), (5, 1)])
def test_tiny_inputs(name, size):
    m = create_model(name, n_classes=3, width=4)
    x = torch.randn(2, 1, *size, requires_grad=True)
    m.train()(x).sum().backward()
    assert x.grad.shape == x.shape
    assert torch.isfinite(m.eval()(x[:1])).all()
    # a training batch of one sample on a 1x1 map (last mini-batch) must not fail
    assert m.train()(torch.randn(1, 1, *size)).shape == (1, 3)


def test_normal_sizes_match_plain_max_pooling():
    torch.manual_seed(0)
    m = randomize(CPResNet(width=4, n_classes=3, rho=5)).eval()
    ref = copy.deepcopy(m)
    for stage in (ref.stage1,):
        for name, mod in list(stage.named_children()):
            if isinstance(mod, TinySafeMaxPool2d):
                setattr(stage, name, nn.MaxPool2d(2))
    x = torch.randn(2, 1, 33, 47)
    torch.testing.assert_close(m(x), ref(x), rtol=0, atol=0)
    big = torch.randn(1, 1, 20, 20)
    assert pad_to_min_size(big, (3, 3)) is big


def test_tiny_safe_pool_edge_replicates():
    x = torch.tensor([[[[1.0, 5.0, 2.0]]]])
    assert TinySafeMaxPool2d(2)(x).tolist() == [[[[5.0]]]]
    assert TinySafeMaxPool2d(2)(torch.ones(1, 1, 1, 1)).shape == (1, 1, 1, 1)


# --------------------------------------------------------------------------- #
# frequency-aware variant
# --------------------------------------------------------------------------- #
def test_frequency_coordinates_values():
    c = frequency_coordinates(torch.zeros(2, 5, 8, 3, dtype=torch.float64))
    assert c.shape == (2, 1, 8, 3) and c.dtype == torch.float64
    expected = torch.tensor([2 * i / 8 - 1 for i in range(8)], dtype=torch.float64)
    assert torch.equal(c[1, 0, :, 2], expected)
    assert torch.equal(c[0, 0, :, 0], c[0, 0, :, 1])  # constant along time


def test_frequency_aware_block_inputs():
    m = CPResNet(width=4, rho=5, frequency_aware=True).eval()
    seen = {}

    def grab(name):
        def hook(mod, args):
            seen[name] = args[0]

        return hook

    b = m.stage2.block1
    b.branch1.conv1.register_forward_pre_hook(grab("conv1"))
    b.branch1.conv2.register_forward_pre_hook(grab("conv2"))
    b.shortcut.conv.register_forward_pre_hook(grab("shortcut"))
    m(torch.randn(2, 1, 100, 60))
    for name, c in (("conv1", 4), ("conv2", 8)):
        t = seen[name]
        assert t.shape[1] == c + 1
        f = t.shape[2]
        expected = torch.tensor([2 * i / f - 1 for i in range(f)])
        torch.testing.assert_close(t[0, -1, :, 0], expected)
    assert seen["shortcut"].shape[1] == 4  # shortcut never sees the coordinate
    assert m.stem.conv.in_channels == 1
    assert m.classifier.in_channels == 16


# --------------------------------------------------------------------------- #
# Shake-Shake
# --------------------------------------------------------------------------- #
def test_shake_shake_function_splits_gradient_differently():
    b1 = torch.randn(3, 2, 4, 4, requires_grad=True)
    b2 = torch.randn(3, 2, 4, 4, requires_grad=True)
    alpha = torch.tensor([0.1, 0.5, 0.9]).view(3, 1, 1, 1)
    beta = torch.tensor([0.8, 0.3, 0.2]).view(3, 1, 1, 1)
    out = ShakeShake.apply(b1, b2, alpha, beta)
    torch.testing.assert_close(out, alpha * b1 + (1 - alpha) * b2)
    out.sum().backward()
    torch.testing.assert_close(b1.grad, beta.expand_as(b1))
    torch.testing.assert_close(b2.grad, (1 - beta).expand_as(b2))
    assert not torch.allclose(b1.grad, alpha.expand_as(b1))


def test_shake_shake_draws_per_sample_from_torch_rng():
    b1 = torch.randn(4, 3, 2, 2, requires_grad=True)
    b2 = torch.randn(4, 3, 2, 2, requires_grad=True)
    with torch.random.fork_rng():
        torch.manual_seed(123)
        alpha = torch.rand(4, 1, 1, 1)
        beta = torch.rand(4, 1, 1, 1)
        torch.manual_seed(123)
        out = shake_shake(b1, b2, training=True)
    torch.testing.assert_close(out, alpha * b1 + (1 - alpha) * b2)
    out.sum().backward()
    torch.testing.assert_close(b1.grad, beta.expand_as(b1))
    assert len(set(alpha.flatten().tolist())) == 4  # one draw per sample


def test_shake_shake_block_eval_and_train():
    torch.manual_seed(0)
    m = randomize(CPResNet(width=4, rho=7, shake_shake=True))
    block = m.stage2.block1
    x = torch.randn(2, 4, 9, 7)
    block.eval()
    expected = torch.relu(
        block.shortcut(x) + 0.5 * (block.branch1(x) + block.branch2(x))
    )
    torch.testing.assert_close(block(x), expected)
    torch.testing.assert_close(block(x), block(x))
    # training: two identical samples get different mixing weights
    block.train()
    twin = torch.cat([x[:1], x[:1]])
    out = block(twin)
    assert not torch.allclose(out[0], out[1])
    # seeding through a forked RNG reproduces training outputs
    outs = []
    for _ in range(2):
        with torch.random.fork_rng():
            torch.manual_seed(7)
            outs.append(m.train()(torch.ones(2, 1, 24, 24)))
    torch.testing.assert_close(outs[0], outs[1])
    m.eval()
    torch.testing.assert_close(m(twin[:, :1]), m(twin[:, :1]))


# --------------------------------------------------------------------------- #
# mixed precision and memory format
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("name", "variant"),
    [(name, {}) for name in ALL_MODELS]
    + [("cp_resnet", {"frequency_aware": True, "shake_shake": True})],
)
def test_bf16_autocast_and_channels_last(name, variant):
    torch.manual_seed(0)
    m = randomize(create_model(name, n_classes=4, width=4, **variant)).eval()
    x = torch.randn(2, 1, 40, 44)
    ref = m(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m(x)
    assert low.dtype == torch.bfloat16
    err = (low.float() - ref).norm() / ref.norm()
    assert err < 0.05
    m_cl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(m_cl(x_cl), ref, rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low_cl = m_cl(x_cl)
    assert (low_cl.float() - ref).norm() / ref.norm() < 0.05


def test_frequency_coordinates_follow_memory_format_and_dtype():
    x = torch.zeros(2, 3, 6, 5, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last
    )
    c = frequency_coordinates(x)
    assert c.dtype == torch.bfloat16
    assert c.is_contiguous(memory_format=torch.channels_last)


# --------------------------------------------------------------------------- #
# registry and validation
# --------------------------------------------------------------------------- #
def test_registry():
    assert {"cp_resnet", "resnet18", "resnet34", "vgg_cnn"} <= set(list_models())
    assert list_models("resnet*") == ["resnet18", "resnet34"]
    m = create_model(
        "cp_resnet",
        in_channels=1,
        n_classes=3,
        rho=4,
        rho_f=None,
        rho_t=None,
        width=4,
        depth=26,
        frequency_aware=False,
        shake_shake=False,
    )
    assert isinstance(m, CPResNet) and m.receptive_field == RF(71, 71)
    params = inspect.signature(get_model_entrypoint("cp_resnet")).parameters
    assert list(params) == [
        "in_channels",
        "n_classes",
        "rho",
        "rho_f",
        "rho_t",
        "width",
        "depth",
        "frequency_aware",
        "shake_shake",
        "head",
    ]
    for name in ALL_MODELS:
        sig = inspect.signature(get_model_entrypoint(name)).parameters
        assert {"in_channels", "n_classes", "width"} <= set(sig)


def test_create_model_errors():
    with pytest.raises(ParameterError, match="Did you mean 'resnet18'"):
        create_model("resnet_18")
    with pytest.raises(ParameterError, match="Available: cp_resnet, resnet18"):
        create_model("alexnet")
    with pytest.raises(ParameterError, match="does not take rho"):
        create_model("vgg_cnn", rho=3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 0}, "width=0"),
        ({"n_classes": 1.5}, "n_classes=1.5"),
        ({"in_channels": 0}, "in_channels=0"),
        ({"rho": 23}, "rho=23"),
        ({"rho_t": -1}, "rho_t=-1"),
        ({"depth": 25}, "depth=25"),
        ({"frequency_aware": "yes"}, "frequency_aware='yes'"),
        ({"shake_shake": 1}, "shake_shake=1"),
    ],
)
def test_cp_resnet_validates(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        CPResNet(**kwargs)


def test_depth_generalises():
    for depth, n_blocks in ((8, 3), (14, 6), (20, 9)):
        m = CPResNet(width=2, depth=depth, rho=2)
        assert len(m.blocks) == n_blocks
        pools = [x for x in m.stage1 if isinstance(x, TinySafeMaxPool2d)]
        assert len(pools) == 3
        assert m(torch.randn(2, 1, 64, 64)).shape == (2, 10)
        assert m.forward_features(torch.randn(1, 1, 256, 431)).shape[2:] == (15, 26)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_training_step_under_autocast_with_all_variants(dtype):
    torch.manual_seed(0)
    m = randomize(
        CPResNet(width=4, n_classes=3, frequency_aware=True, shake_shake=True)
    )
    m = m.to(memory_format=torch.channels_last).train()
    x = torch.randn(3, 1, 32, 30).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=dtype):
        out = m(x)
        loss = out.float().pow(2).mean()
    assert out.dtype == dtype
    loss.backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert m.stage1.block1.branch2.conv1.weight.grad.abs().sum() > 0


def test_numpy_scalars_from_parameter_grids_are_accepted():
    import numpy as np

    m = CPResNet(
        rho=np.int64(3), width=np.int64(2), n_classes=np.int32(4),
        frequency_aware=np.bool_(True),
    )  # fmt: skip
    assert m.rho == 3 and m.width == 2 and m.frequency_aware is True
    assert m(torch.randn(2, 1, 20, 20)).shape == (2, 4)


def test_check_model_args_runs_the_constructor_checks_without_building():
    from sklearn_rfcnn.models import CPResNet, check_model_args

    check_model_args("cp_resnet", rho=22, depth=26)
    with pytest.raises(ParameterError, match=r"rho=22 is out of range.*\[0, 10\]"):
        check_model_args("cp_resnet", rho=22, depth=14)
    with pytest.raises(ParameterError, match="rho_f=5"):
        check_model_args("cp_resnet", rho=2, rho_f=5, depth=8)
    with pytest.raises(ParameterError, match="depth=13 must have the form"):
        check_model_args("cp_resnet", depth=13)
    with pytest.raises(ParameterError, match="head='nope'"):
        check_model_args("cp_resnet", head="nope")
    with pytest.raises(ParameterError, match="does not take rho"):
        check_model_args("vgg_cnn", rho=3)
    check_model_args("vgg_cnn", width=8)  # no check_args: the names only
    # the constructor runs the same checks
    with pytest.raises(ParameterError, match="rho=22 is out of range"):
        CPResNet(rho=22, depth=14, width=2)
