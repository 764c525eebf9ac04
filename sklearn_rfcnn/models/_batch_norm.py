"""Training-mode batch norm of channels-last CPU maps with few channels.

torch's CPU kernel for a channels-last map (torch 2.x,
``batch_norm_kernel.cpp``) runs its vector loop along the channels in
steps of a whole vector (32 bf16 values with AVX-512), the rest element by
element, and accumulates each thread's sums in a row of ``C`` floats of
one buffer: unless ``4 * C`` bytes is a multiple of the 64-byte cache line
(``C`` a multiple of 16), neighbouring threads' rows share a line, which
every position's update then passes back and forth between the cores.  For
CP-ResNet's width-24 first stage in bf16 (32x24x63x107) the forward and
backward pass took 11.5 ms on two threads, more than on one (8.7 ms),
against 7.4 ms here (4.3 against 17.1 ms with an AVX2 torch), with the freed
buffers kept as the estimators train (``benchmarks/bench_batch_norm.py``).
Counts that are multiples of 16 keep torch's kernel, which is faster there,
and so does a single thread, where it was not slow.

The memory of a channels-last map ``(N, C, H, W)`` is a row-major
``(N*H*W, C)`` matrix, viewed here without a copy as ``(N*H*W/k, k*C)``
rows of ``k`` consecutive positions (``k*C`` a multiple of 32).  On that
view the native kernel runs vectorised: it gives each of its ``k*C``
columns' mean and variance, combined exactly into the ``C`` channels'
(equal counts: the pooled mean, the mean of the variances plus the
variance of the means), and then normalises, and in the backward pass
reduces and scales, with those per-channel statistics repeated ``k`` times
(its inference mode, i.e. given statistics).  The results are batch
norm's, summed in another order; in bf16 the input gradient is rounded
three times instead of once (``a * dy``, ``b * (x - mean) + c``, their
sum), within two bf16 units in the last place of the native one.

:class:`~sklearn_rfcnn.models._layers.BatchNorm2d`, the batch norm of every
registered network, calls :func:`wide_row_batch_norm` where
:func:`wide_rows` gives a row width; ``RFCNN_WIDE_ROW_BATCH_NORM=0`` turns
it off.  A second derivative through it (``create_graph=True``) raises.
"""

from __future__ import annotations

import math
import os

import torch
from torch.autograd.function import once_differentiable

__all__ = [
    "ENV_VAR",
    "MIN_THREADS",
    "MIN_VALUES",
    "positions_per_row",
    "wide_row_batch_norm",
    "wide_rows",
]

#: Set to "0" to keep torch's kernel for every batch norm.
ENV_VAR = "RFCNN_WIDE_ROW_BATCH_NORM"

#: Smaller maps (N*C*H*W values) keep torch's kernel: the view's dozen small
#: calls cost about 0.3 ms, which maps of 0.3-0.5 M values did not win back
#: (CP-ResNet's width-24 maps of 15x26 at batch 32); from 1.3 M on wide rows
#: measured 1.3-2.1x in bf16.
MIN_VALUES = 2**20
#: With fewer torch threads torch's kernel is kept: on one thread it ran
#: these maps about as fast as the wide rows (x1.05 at 24 channels in bf16,
#: x0.85 at 40), and the step did not change (x0.99); the slow case is its
#: parallel run, 11.5 ms on two threads against 8.7 ms on one.
MIN_THREADS = 2
#: Channel counts that are multiples of this run fast in torch's kernel.
_FAST_MULTIPLE = 16
#: Each view row holds a multiple of this many values.
_ROW_MULTIPLE = 32

_aten = torch.ops.aten


def positions_per_row(channels: int) -> int:
    """The fewest map positions ``k`` per row with ``k * channels`` a multiple of 32.

    Examples
    --------
    >>> positions_per_row(24), positions_per_row(40), positions_per_row(5)
    (4, 4, 32)
    """
    return _ROW_MULTIPLE // math.gcd(channels, _ROW_MULTIPLE)


def wide_rows(x: torch.Tensor) -> int | None:
    """The positions per view row for a training batch norm of ``x``, or None.

    None (torch's kernel) unless torch runs on at least :data:`MIN_THREADS`
    threads and ``x`` is a 4-d channels-last CPU map of at least
    :data:`MIN_VALUES` values, in bf16 or float16 with a channel count
    that is not a multiple of 16, or in float32 with fewer than 16 channels,
    whose ``N*H*W`` positions split into rows of ``k`` (``k*C`` a multiple
    of 32).  Also None with ``RFCNN_WIDE_ROW_BATCH_NORM=0``, under
    ``torch.compile`` and in TorchScript.

    Parameters
    ----------
    x : torch.Tensor
        The batch norm's input.

    Returns
    -------
    k : int or None

    Examples
    --------
    >>> x = torch.zeros(32, 24, 63, 107, dtype=torch.bfloat16)
    >>> cl = x.contiguous(memory_format=torch.channels_last)
    >>> wide_rows(cl) == (4 if torch.get_num_threads() >= MIN_THREADS else None)
    True
    >>> wide_rows(x) is None  # NCHW: torch's kernel
    True
    >>> small = x[:4, :, :16].contiguous(memory_format=torch.channels_last)
    >>> wide_rows(small) is None  # fewer than MIN_VALUES values
    True
    """
    if x.dim() != 4 or x.device.type != "cpu":
        return None
    n, c, h, w = x.shape
    if c % _FAST_MULTIPLE == 0 or h * w == 1 or x.numel() < MIN_VALUES:
        return None
    if torch.get_num_threads() < MIN_THREADS:
        return None
    if x.dtype not in (torch.bfloat16, torch.float16) and not (
        x.dtype == torch.float32 and c < _FAST_MULTIPLE
    ):
        return None
    if not x.is_contiguous(memory_format=torch.channels_last):
        return None
    k = positions_per_row(c)
    if (n * h * w) % k or n * h * w < 2 * k:
        return None
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return None
    if torch.jit.is_scripting() or torch.compiler.is_compiling():
        return None
    return k


def wide_row_batch_norm(
    x, weight, bias, running_mean, running_var, momentum, eps, k
) -> torch.Tensor:
    """Training-mode ``F.batch_norm`` of a channels-last map over wide rows.

    Same arguments and result as ``F.batch_norm(x, running_mean,
    running_var, weight, bias, training=True, momentum=momentum, eps=eps)``
    (the running statistics, if given, are updated in place with the
    unbiased variance), computed on the ``(N*H*W/k, k*C)`` view of ``x``;
    ``k`` from :func:`wide_rows`.

    Parameters
    ----------
    x : torch.Tensor of shape (N, C, H, W), channels-last
    weight, bias : torch.Tensor of shape (C,) or None
    running_mean, running_var : torch.Tensor of shape (C,) or None
    momentum : float
        The running statistics' update factor.
    eps : float
    k : int
        Positions per view row; ``N*H*W`` a multiple of it.

    Returns
    -------
    y : torch.Tensor
        Like ``x`` (channels-last, its dtype).

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(4, 24, 5, 6, generator=g).to(memory_format=torch.channels_last)
    >>> w, b = torch.rand(24, generator=g), torch.randn(24, generator=g)
    >>> y = wide_row_batch_norm(x, w, b, None, None, 0.1, 1e-5, k=4)
    >>> torch.allclose(y, F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5), atol=1e-5)
    True
    """
    if not eps > 0:
        raise ValueError(
            f"batch_norm eps must be positive during training, but got {eps}"
        )
    return _WideRowBatchNorm.apply(
        x, weight, bias, running_mean, running_var, momentum, eps, k
    )


def _rows(t, k):
    """The ``(N*H*W/k, k*C)`` view of a channels-last map."""
    n, c, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(n * h * w // k, k * c)


class _WideRowBatchNorm(torch.autograd.Function):
    """Batch norm's forward and backward on the wide-row view (see module)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, k):
        n, c, h, w = x.shape
        count = n * h * w
        rows = _rows(x, k)
        ones = torch.ones(k * c, dtype=torch.float32)
        # per-column statistics (float32 for every input dtype; the output is
        # not used); 1/invstd^2 - eps is the variance to float32 rounding
        # relative to var + eps, the denominator it is used in
        _, col_mean, col_invstd = torch.native_batch_norm(
            rows, ones, None, None, None, True, 0.0, eps
        )
        col_mean = col_mean.float().view(k, c)
        col_var = col_invstd.float().view(k, c).pow(-2).sub_(eps).clamp_min_(0.0)
        mean = col_mean.mean(0)
        var = (col_var + (col_mean - mean).square()).mean(0)
        if running_mean is not None:
            with torch.no_grad():
                running_mean.lerp_(mean.to(running_mean.dtype), momentum)
                running_var.lerp_(
                    (var * (count / (count - 1))).to(running_var.dtype), momentum
                )
        y = torch.empty_like(x, memory_format=torch.channels_last)
        _aten.native_batch_norm.out(
            rows,
            None if weight is None else weight.float().repeat(k),
            None if bias is None else bias.float().repeat(k),
            mean.repeat(k),
            var.repeat(k),
            False,
            0.0,
            eps,
            out=_rows(y, k),
            save_mean=mean.new_empty(0),
            save_invstd=mean.new_empty(0),
        )
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.k = eps, k
        ctx.param_dtypes = (
            None if weight is None else weight.dtype,
            None if bias is None else bias.dtype,
        )
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, mean, var = ctx.saved_tensors
        eps, k = ctx.eps, ctx.k
        n, c, h, w = x.shape
        count = n * h * w
        dy = dy.contiguous(memory_format=torch.channels_last)
        rows, dy_rows = _rows(x, k), _rows(dy, k)
        scale = torch.ones_like(mean) if weight is None else weight.float()
        mean_k, var_k = mean.repeat(k), var.repeat(k)
        need_x = ctx.needs_input_grad[0]
        # inference-mode backward with the batch statistics: the input
        # gradient's dy term, a * dy with a = weight * invstd, and the column
        # sums of dy * xhat and of dy
        a_dy, col_dxhat, col_dy = _aten.native_batch_norm_backward(
            dy_rows,
            rows,
            scale.repeat(k),
            mean_k,
            var_k,
            None,
            None,
            False,
            eps,
            [need_x, True, True],
        )
        sum_dxhat = col_dxhat.view(k, c).sum(0)
        sum_dy = col_dy.view(k, c).sum(0)
        dx = None
        if need_x:
            # dx = a*dy + b*(x - mean) + c with b*(x - mean) = xhat*(-a*sum_dxhat/M)
            # and c = -a*sum_dy/M: the last two as an inference-mode batch norm
            a = scale * torch.rsqrt(var + eps)
            other = torch.native_batch_norm(
                rows,
                (-a * sum_dxhat / count).repeat(k),
                (-a * sum_dy / count).repeat(k),
                mean_k,
                var_k,
                False,
                0.0,
                eps,
            )[0]
            dx = torch.empty_like(x, memory_format=torch.channels_last)
            torch.add(other, a_dy, out=_rows(dx, k))
        weight_dtype, bias_dtype = ctx.param_dtypes
        grad_weight = None if weight_dtype is None else sum_dxhat.to(weight_dtype)
        grad_bias = None if bias_dtype is None else sum_dy.to(bias_dtype)
        return dx, grad_weight, grad_bias, None, None, None, None, None
