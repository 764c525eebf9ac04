"""Building blocks shared by the networks.

Pooling that tolerates tiny inputs, the batch norm of every network (see
``_batch_norm`` for its channels-last CPU path), the frequency coordinate
channel, the Shake-Shake autograd function, a probe switch for RF
measurements, and the conversion of torch layers to
:class:`~sklearn_rfcnn.receptive_field.LayerSpec`.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from sklearn_rfcnn.models._batch_norm import wide_row_batch_norm, wide_rows
from sklearn_rfcnn.receptive_field import LayerSpec
from sklearn_rfcnn.utils._arith_checks import check_int

__all__ = [
    "BatchNorm2d",
    "FeatureMapAliasMixin",
    "ShakeShake",
    "TinySafeMaxPool2d",
    "check_model_int",
    "conv_spec",
    "frequency_coordinates",
    "pad_to_min_size",
    "pool_spec",
    "probe_pooling",
    "same_padding",
    "shake_shake",
    "strided_max_pool2x2",
    "strided_max_pool_pays",
]


def check_model_int(name: str, value, minimum: int = 1) -> int:
    """Validate an integer constructor argument (``name=value must be ...``).

    The networks' name for :func:`sklearn_rfcnn.utils._arith_checks.check_int`
    with only a lower bound.

    Examples
    --------
    >>> check_model_int("width", 8)
    8
    >>> check_model_int("width", 0)
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: width=0 is out of range: it must lie in [1, inf].
    """  # noqa: E501
    return check_int(name, value, minimum=minimum)


def same_padding(kernel_size: tuple[int, int]) -> tuple[int, int]:
    """CP-ResNet padding rule, ``k // 3`` per axis (3 -> 1, 1 -> 0).

    Examples
    --------
    >>> same_padding((3, 1))
    (1, 0)
    """
    return tuple(k // 3 for k in kernel_size)


def pad_to_min_size(x: torch.Tensor, min_size: tuple[int, int]) -> torch.Tensor:
    """Edge-replicate the last two axes of ``x`` up to ``min_size`` if smaller.

    Tensors that are already large enough are returned unchanged (same
    object), so normal-sized inputs take exactly the reference path.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, C, F, T)]
    min_size : (int, int)
        Minimum ``(F, T)``.

    Returns
    -------
    x : torch.Tensor [shape=(B, C, max(F, min_f), max(T, min_t))]

    Examples
    --------
    >>> pad_to_min_size(torch.arange(2.0).view(1, 1, 1, 2), (2, 3)).tolist()
    [[[[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]]]
    """
    pf = max(0, min_size[0] - x.shape[-2])
    pt = max(0, min_size[1] - x.shape[-1])
    if not (pf or pt):
        return x
    # replicate padding needs every padded axis to be at least 1 (always true
    # here) and pads (left, right, top, bottom): put the extra at the end.
    return F.pad(x, (0, pt, 0, pf), mode="replicate")


class FeatureMapAliasMixin:
    """``forward_feature_map``: the pre-0.3 name of ``forward_features``.

    Every registered model follows timm's convention (``forward_features``
    returns the last feature map); this keeps code written against release
    0.2, where the map had its own name, working.
    """

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Alias of ``forward_features`` (the last feature map ``(B, C, F', T')``)."""
        return self.forward_features(x)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that tolerates one value per channel in training.

    A training batch with a single value per channel (batch size 1 on a 1x1
    map, e.g. the last mini-batch of a tiny input) has no variance, and
    ``nn.BatchNorm2d`` raises.  Here such a batch is normalised with the
    running statistics instead (as in eval mode) and leaves them unchanged;
    every other batch behaves exactly like ``nn.BatchNorm2d``.  In training,
    channels-last CPU maps with a channel count torch's kernel runs slowly
    (:func:`~sklearn_rfcnn.models._batch_norm.wide_rows`) are normalised by
    :func:`~sklearn_rfcnn.models._batch_norm.wide_row_batch_norm`, the same
    function computed faster.

    Examples
    --------
    >>> bn = BatchNorm2d(3).train()
    >>> bn(torch.ones(1, 3, 1, 1)).shape
    torch.Size([1, 3, 1, 1])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            if x.numel() <= x.shape[1]:
                return F.batch_norm(
                    x,
                    self.running_mean,
                    self.running_var,
                    self.weight,
                    self.bias,
                    False,
                    0.0,
                    self.eps,
                )
            k = wide_rows(x)
            if k is not None:
                return self._wide_row_forward(x, k)
        return super().forward(x)

    def _wide_row_forward(self, x, k):
        """``nn.BatchNorm2d.forward`` in training, by :func:`wide_row_batch_norm`."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        track = self.track_running_stats
        return wide_row_batch_norm(
            x,
            self.weight,
            self.bias,
            self.running_mean if track else None,
            self.running_var if track else None,
            factor,
            self.eps,
            k,
        )


def strided_max_pool_pays(x: torch.Tensor) -> bool:
    """Whether :func:`strided_max_pool2x2` replaces ``F.max_pool2d(x, 2)``.

    For channels-last CPU maps that need no gradient (inference), in bf16 or
    float16, or in float32 with fewer than 64 channels: torch's
    channels-last max-pool kernel steps through the channels a whole vector
    at a time, and measured 1.3-3.5x slower than the two element-wise
    maxima on an AMD EPYC with AVX-512 and with oneDNN capped at AVX2, on
    one and two threads; only float32 maps of 128 channels were as fast or
    faster (``benchmarks/bench_inference.py``, ``pool`` section).

    Examples
    --------
    >>> x = torch.zeros(2, 24, 8, 8).contiguous(memory_format=torch.channels_last)
    >>> strided_max_pool_pays(x), strided_max_pool_pays(x.contiguous())
    (True, False)
    >>> strided_max_pool_pays(x.requires_grad_())
    False
    """
    if x.dim() != 4 or x.device.type != "cpu" or min(x.shape[2:]) < 2:
        return False
    if x.requires_grad and torch.is_grad_enabled():
        return False
    if not x.is_contiguous(memory_format=torch.channels_last) or x.shape[1] == 1:
        return False
    if torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    half = x.dtype in (torch.bfloat16, torch.float16)
    return half or (x.dtype == torch.float32 and x.shape[1] < 64)


def strided_max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of a channels-last map, as two element-wise maxima.

    The map's memory is ``(N, H, W, C)``: the maximum of its even and odd
    rows, then of the even and odd column halves of each ``2C``-value row;
    every operand is a strided view whose innermost ``C`` values are
    contiguous.  Same values (maxima are exact, NaNs propagate) and
    channels-last result; no gradient (see :func:`strided_max_pool_pays`).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(2, 3, 7, 9, generator=g).contiguous(
    ...     memory_format=torch.channels_last)
    >>> torch.equal(strided_max_pool2x2(x), F.max_pool2d(x, 2))
    True
    """
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    nhwc = x.permute(0, 2, 3, 1)
    even, odd = nhwc[:, 0 : 2 * h2 : 2, : 2 * w2], nhwc[:, 1 : 2 * h2 : 2, : 2 * w2]
    pairs = torch.maximum(even, odd).reshape(n, h2, w2, 2 * c)
    return torch.maximum(pairs[..., :c], pairs[..., c:]).permute(0, 3, 1, 2)


class TinySafeMaxPool2d(nn.Module):
    """Max-pool that never fails on an axis shorter than its window.

    An axis for which ``size + 2 * padding`` is smaller than the window is
    edge-replicated up to the window first (for a 2x2 pool this equals
    ``ceil_mode`` pooling there); larger inputs are pooled exactly like
    ``nn.MaxPool2d(kernel_size, stride, padding)``.  Inside
    :func:`probe_pooling` it average-pools instead, so that every position of
    each window receives gradient.

    Parameters
    ----------
    kernel_size : int >= 1, default=2
    stride : int >= 1 or None, default=None
        None means ``kernel_size``.
    padding : int >= 0, default=0

    Examples
    --------
    >>> TinySafeMaxPool2d()(torch.ones(1, 1, 1, 5)).shape
    torch.Size([1, 1, 1, 2])
    """

    def __init__(
        self, kernel_size: int = 2, stride: int | None = None, padding: int = 0
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size
        self.padding = padding
        self.probe = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        need = self.kernel_size - 2 * self.padding
        x = pad_to_min_size(x, (need, need))
        if self.probe:
            return F.avg_pool2d(
                x, self.kernel_size, self.stride, self.padding, count_include_pad=False
            )
        if (self.kernel_size, self.stride, self.padding) == (2, 2, 0) and (
            strided_max_pool_pays(x)
        ):
            return strided_max_pool2x2(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
        )


@contextlib.contextmanager
def probe_pooling(model: nn.Module):
    """Temporarily turn every tiny-safe max-pool of ``model`` into an average pool.

    Used to measure the receptive field empirically: with max-pooling only
    one position per window receives gradient, with average pooling all do,
    so the non-zero input-gradient footprint of one output unit equals the
    analytic RF.

    Examples
    --------
    >>> pool = TinySafeMaxPool2d()
    >>> with probe_pooling(pool):
    ...     pool(torch.tensor([[[[0.0, 2.0]]]])).item()
    1.0
    """
    pools = [m for m in model.modules() if isinstance(m, TinySafeMaxPool2d)]
    old = [p.probe for p in pools]
    try:
        for p in pools:
            p.probe = True
        yield model
    finally:
        for p, o in zip(pools, old):
            p.probe = o


def frequency_coordinates(x: torch.Tensor) -> torch.Tensor:
    """The frequency-aware coordinate channel for a feature map ``x``.

    Holds ``2 i / F - 1`` for row ``i`` of the ``F`` rows, constant along
    time; same dtype, device and memory format as ``x``.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, C, F, T)]

    Returns
    -------
    coords : torch.Tensor [shape=(B, 1, F, T)]

    Examples
    --------
    >>> frequency_coordinates(torch.zeros(1, 3, 4, 2))[0, 0, :, 0].tolist()
    [-1.0, -0.5, 0.0, 0.5]
    """
    b, _, f, t = x.shape
    col = torch.arange(f, device=x.device, dtype=torch.float32).mul_(2.0 / f).sub_(1.0)
    coords = col.to(x.dtype).view(1, 1, f, 1).expand(b, 1, f, t)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return coords.contiguous(memory_format=torch.channels_last)
    return coords


class ShakeShake(torch.autograd.Function):
    """Shake-Shake mixing: forward weight ``alpha``, backward weight ``beta``.

    ``forward(b1, b2, alpha, beta) = alpha * b1 + (1 - alpha) * b2``; the
    backward pass sends ``beta * grad`` to ``b1`` and ``(1 - beta) * grad``
    to ``b2`` (Gastaldi 2017, "Shake-Shake" forward/backward).

    Examples
    --------
    >>> b1 = torch.ones(2, 1, requires_grad=True)
    >>> b2 = torch.zeros(2, 1, requires_grad=True)
    >>> a, b = torch.tensor([[0.2], [0.9]]), torch.tensor([[0.7], [0.1]])
    >>> ShakeShake.apply(b1, b2, a, b).sum().backward()
    >>> b1.grad.flatten().tolist()
    [0.699999988079071, 0.10000000149011612]
    """

    @staticmethod
    def forward(ctx, b1, b2, alpha, beta):
        ctx.save_for_backward(beta)
        return alpha * b1 + (1.0 - alpha) * b2

    @staticmethod
    def backward(ctx, grad):
        (beta,) = ctx.saved_tensors
        return beta * grad, (1.0 - beta) * grad, None, None


def shake_shake(b1: torch.Tensor, b2: torch.Tensor, training: bool) -> torch.Tensor:
    """Mix two residual branches: random per sample when training, halves in eval.

    ``alpha`` and ``beta`` are drawn per sample from U(0, 1) with torch's
    global RNG (seed it with ``torch.random.fork_rng`` + ``manual_seed``),
    broadcast over channels, frequency and time.

    Examples
    --------
    >>> shake_shake(torch.ones(1, 2), torch.zeros(1, 2), training=False).tolist()
    [[0.5, 0.5]]
    """
    if not training:
        return 0.5 * (b1 + b2)
    shape = (b1.shape[0],) + (1,) * (b1.dim() - 1)
    alpha = torch.rand(shape, device=b1.device, dtype=torch.float32).to(b1.dtype)
    beta = torch.rand(shape, device=b1.device, dtype=torch.float32).to(b1.dtype)
    return ShakeShake.apply(b1, b2, alpha, beta)


def conv_spec(conv: nn.Conv2d, name: str = "") -> LayerSpec:
    """A :class:`LayerSpec` from a ``Conv2d`` (kernel, stride, dilation).

    Examples
    --------
    >>> conv_spec(nn.Conv2d(1, 1, (3, 1), stride=2)).kernel_size
    (3, 1)
    """
    return LayerSpec(conv.kernel_size, conv.stride, conv.dilation, "conv", name)


def pool_spec(pool: nn.Module, name: str = "") -> LayerSpec:
    """A :class:`LayerSpec` from a pooling layer.

    Examples
    --------
    >>> pool_spec(TinySafeMaxPool2d(2)).stride
    (2, 2)
    """
    k = pool.kernel_size
    s = getattr(pool, "stride", None) or k
    return LayerSpec(k, s, 1, "pool", name)
