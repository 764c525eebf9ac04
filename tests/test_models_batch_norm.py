"""The wide-row batch norm of channels-last CPU maps (``models._batch_norm``)."""

import copy

import pytest
import torch
from torch import nn

from sklearn_rfcnn.models import _batch_norm, create_model
from sklearn_rfcnn.models._batch_norm import ENV_VAR, wide_row_batch_norm, wide_rows
from sklearn_rfcnn.models._layers import BatchNorm2d

CL = torch.channels_last


@pytest.fixture
def small_maps(monkeypatch):
    """Wide rows for maps of any size, so that the numerics are tested small
    (and on the tests' single thread)."""
    monkeypatch.setattr(_batch_norm, "MIN_VALUES", 0)
    monkeypatch.setattr(_batch_norm, "MIN_THREADS", 1)


@pytest.fixture
def two_threads(monkeypatch):
    """The thread floor met, whatever the tests' thread count."""
    monkeypatch.setattr(_batch_norm, "MIN_THREADS", 1)


def _map(shape, dtype, seed=0, loc=1.5, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    x = loc + scale * torch.randn(shape, generator=g)
    return x.to(dtype).contiguous(memory_format=CL)


def _pair(channels, **kwargs):
    """Ours and a stock ``nn.BatchNorm2d`` with the same random parameters."""
    ours = BatchNorm2d(channels, **kwargs)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if ours.affine:
            ours.weight.copy_(torch.rand(channels, generator=g) * 2 - 0.5)
            ours.bias.copy_(torch.randn(channels, generator=g))
        if ours.track_running_stats:
            ours.running_mean.copy_(torch.randn(channels, generator=g))
            ours.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
    stock = nn.BatchNorm2d(channels, **kwargs)
    stock.load_state_dict(ours.state_dict())
    return ours.train(), stock.train()


def _close(actual, expected, dtype, units=2):
    """Equal to float32 rounding, or within ``units`` bf16/fp16 spacings."""
    actual, expected = actual.detach().float(), expected.detach().float()
    if dtype == torch.float32:
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)
    else:
        ulp = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}[dtype]
        bound = units * ulp * (expected.abs() + expected.abs().mean())
        assert bool(((actual - expected).abs() <= bound).all()), float(
            ((actual - expected).abs() - bound).max()
        )


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [
        (torch.bfloat16, (8, 24, 9, 14)),
        (torch.bfloat16, (4, 40, 6, 7)),
        (torch.bfloat16, (4, 5, 8, 8)),
        (torch.float16, (4, 12, 5, 8)),
        (torch.float32, (8, 8, 9, 14)),
    ],
)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_step_equals_torch_batch_norm(dtype, shape, momentum, small_maps):
    ours, stock = _pair(shape[1], momentum=momentum)
    assert wide_rows(_map(shape, dtype)) is not None
    for step in range(3):  # the running statistics over several batches
        x = _map(shape, dtype, seed=step)
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        grad = _map(shape, dtype, seed=10 + step, loc=0.0, scale=1.0)
        y1, y2 = ours(x1), stock(x2)
        assert type(y1.grad_fn).__name__ == "_WideRowBatchNormBackward"
        assert y1.dtype == dtype and y1.is_contiguous(memory_format=CL)
        y1.backward(grad)
        y2.backward(grad)
        _close(y1, y2, dtype, units=1)
        _close(x1.grad, x2.grad, dtype)
        assert x1.grad.is_contiguous(memory_format=CL)
    torch.testing.assert_close(
        ours.weight.grad, stock.weight.grad, rtol=1e-4, atol=1e-3
    )
    torch.testing.assert_close(ours.bias.grad, stock.bias.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours.running_mean, stock.running_mean)
    torch.testing.assert_close(
        ours.running_var, stock.running_var, rtol=1e-4, atol=1e-6
    )
    assert int(ours.num_batches_tracked) == int(stock.num_batches_tracked) == 3


@pytest.mark.parametrize("kwargs", [{"affine": False}, {"track_running_stats": False}])
def test_without_parameters_or_running_statistics(kwargs, small_maps):
    ours, stock = _pair(24, **kwargs)
    x = _map((4, 24, 6, 8), torch.bfloat16)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), stock(x2)
    assert type(y1.grad_fn).__name__ == "_WideRowBatchNormBackward"
    grad = _map((4, 24, 6, 8), torch.bfloat16, seed=3, loc=0.0, scale=1.0)
    y1.backward(grad)
    y2.backward(grad)
    _close(y1, y2, torch.bfloat16, units=1)
    _close(x1.grad, x2.grad, torch.bfloat16)
    for ours_t, stock_t in zip(ours.state_dict().values(), stock.state_dict().values()):
        torch.testing.assert_close(ours_t, stock_t)


def test_a_constant_channel_has_zero_variance(small_maps):
    ours, stock = _pair(24)
    before = ours.running_var.clone()
    x = _map((4, 24, 6, 8), torch.bfloat16)
    x[:, 3] = 0.75
    torch.testing.assert_close(ours(x), stock(x))
    torch.testing.assert_close(ours.running_var, stock.running_var)
    assert float(ours.running_var[3]) == pytest.approx(0.9 * float(before[3]))


def test_eps_zero_raises_as_torch_does(small_maps):
    ours, stock = _pair(24, eps=0.0)
    x = _map((4, 24, 6, 8), torch.bfloat16)
    with pytest.raises(ValueError, match="eps must be positive"):
        stock(x)
    with pytest.raises(ValueError, match="eps must be positive"):
        ours(x)


def test_parameter_gradients_without_input_gradient(small_maps):
    ours, stock = _pair(24)
    x = _map((4, 24, 6, 8), torch.float32).to(torch.bfloat16)
    grad = _map((4, 24, 6, 8), torch.bfloat16, seed=3, loc=0.0, scale=1.0)
    ours(x).backward(grad)
    stock(x).backward(grad)
    torch.testing.assert_close(
        ours.weight.grad, stock.weight.grad, rtol=1e-4, atol=1e-3
    )
    torch.testing.assert_close(ours.bias.grad, stock.bias.grad, rtol=1e-4, atol=1e-3)


def test_an_nchw_upstream_gradient_is_accepted(small_maps):
    ours, stock = _pair(24)
    x = _map((4, 24, 6, 8), torch.bfloat16)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = _map((4, 24, 6, 8), torch.float32, seed=5).contiguous()  # NCHW
    (ours(x1).float() * w).sum().backward()
    (stock(x2).float() * w).sum().backward()
    _close(x1.grad, x2.grad, torch.bfloat16)


@pytest.mark.parametrize(
    ("case", "x"),
    [
        ("NCHW", torch.zeros(4, 24, 6, 8, dtype=torch.bfloat16)),
        ("16 channels", torch.zeros(4, 32, 6, 8, dtype=torch.bfloat16)),
        ("float32, 24 channels", torch.zeros(4, 24, 6, 8)),
        (
            "positions not a multiple of k",
            torch.zeros(1, 24, 3, 5, dtype=torch.bfloat16),
        ),
        ("1x1 map", torch.zeros(8, 24, 1, 1, dtype=torch.bfloat16)),
        ("3-d", torch.zeros(4, 24, 6, dtype=torch.bfloat16)),
        (
            "fewer values than MIN_VALUES",
            torch.zeros(8, 24, 63, 86, dtype=torch.bfloat16),
        ),
    ],
)
def test_torch_kernel_is_kept_where_it_is_fast_or_the_view_does_not_fit(
    case, x, two_threads
):
    if x.dim() == 4 and case != "NCHW":
        x = x.contiguous(memory_format=CL)
    assert wide_rows(x) is None, case


def test_one_thread_keeps_torch_kernel(monkeypatch):
    x = torch.zeros(8, 24, 64, 86, dtype=torch.bfloat16).contiguous(memory_format=CL)
    monkeypatch.setattr(_batch_norm, "MIN_THREADS", 1)
    assert wide_rows(x) == 4
    monkeypatch.setattr(_batch_norm, "MIN_THREADS", torch.get_num_threads() + 1)
    assert wide_rows(x) is None


def test_maps_of_min_values_take_wide_rows(two_threads):
    x = torch.zeros(8, 24, 64, 86, dtype=torch.bfloat16)  # 1 056 768 values
    assert x.numel() >= _batch_norm.MIN_VALUES
    assert wide_rows(x.contiguous(memory_format=CL)) == 4
    assert wide_rows(x.float().contiguous(memory_format=CL)) is None  # float32, 24
    assert wide_rows(x[:, :8].float().contiguous(memory_format=CL)) is None  # < MIN
    big = torch.zeros(16, 8, 128, 86).contiguous(memory_format=CL)
    assert wide_rows(big) == 4  # float32 below 16 channels


def test_inference_and_the_switch_keep_torch_kernel(monkeypatch, small_maps):
    bn = BatchNorm2d(24)
    x = _map((4, 24, 6, 8), torch.bfloat16).requires_grad_()
    assert type(bn.eval()(x).grad_fn).__name__ == "NativeBatchNormBackward0"
    monkeypatch.setenv(ENV_VAR, "0")
    assert wide_rows(x) is None
    assert type(bn.train()(x).grad_fn).__name__ == "NativeBatchNormBackward0"


def test_a_second_derivative_raises(small_maps):
    bn = BatchNorm2d(24)
    x = _map((4, 24, 6, 8), torch.bfloat16).requires_grad_()
    (g,) = torch.autograd.grad(bn(x).float().square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.float().sum().backward()


def test_function_matches_functional_batch_norm_with_its_arguments():
    x = _map((4, 8, 5, 6), torch.float32)
    mean, var = torch.zeros(8), torch.ones(8)
    ref_mean, ref_var = mean.clone(), var.clone()
    y = wide_row_batch_norm(x, None, None, mean, var, 0.3, 1e-3, k=4)
    ref = torch.nn.functional.batch_norm(
        x, ref_mean, ref_var, None, None, True, 0.3, 1e-3
    )
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(var, ref_var)


def test_cp_resnet_width_24_trains_as_with_torch_kernel(monkeypatch, small_maps):
    """A bf16 channels-last training step of the network, wide rows on and off."""
    torch.manual_seed(0)
    model = create_model("cp_resnet", rho=5, width=24, n_classes=5, head="pooled")
    model = model.to(memory_format=CL).train()
    twin = copy.deepcopy(model)
    x = torch.randn(8, 1, 64, 96).contiguous(memory_format=CL)
    grads = []
    for net, switch in ((model, "1"), (twin, "0")):
        monkeypatch.setenv(ENV_VAR, switch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
        out.float().logsumexp(1).sum().backward()
        grads.append(
            {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        )
    wide = sum(
        type(m).__name__ == "BatchNorm2d" and m.num_features % 16 != 0
        for m in model.modules()
    )
    assert wide >= 3
    for name, grad in grads[1].items():
        ours = grads[0][name]
        # bf16 autocast: the two differ by rounding, well inside the gradient's scale
        err = (ours - grad).norm() / grad.norm().clamp_min(1e-12)
        assert err < 0.05, (name, float(err))
    for (name, a), b in zip(model.named_buffers(), twin.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-3, msg=name)
