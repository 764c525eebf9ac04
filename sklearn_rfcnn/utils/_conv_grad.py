"""Convolution weight gradients computed in NCHW during channels-last training.

On an x86 CPU where oneDNN has AVX2 but not AVX-512, its weight-gradient
kernel for channels-last (NHWC) convolutions is several times slower than the
one for the blocked layout it reorders NCHW tensors into: for CP-ResNet's
first stage at the paper's width (128 to 128 channels, 3x3, 8x127x215) it
measured 1042-1777 ms against 463-474 ms, while the forward pass and the
input gradient ran 1.2-1.3x *faster* in channels-last
(``benchmarks/bench_conv_grad.py``).  That one kernel is why channels-last
training used to lose to the default layout on such CPUs at the paper's
width (0.65-0.9x) although it won at width 24 (1.2-1.5x).

:class:`nchw_weight_grads` is a :class:`~torch.overrides.TorchFunctionMode`:
inside it, every 2-D convolution of a channels-last input with at least
:data:`MIN_IN_CHANNELS` channels that autograd records runs as
:class:`_Conv2dNCHWWeightGrad`, whose backward computes the input gradient in
channels-last and the weight (and bias) gradient from NCHW copies of the
input and of the output's gradient.  The results are the convolution's
gradients, summed in another order (float32 rounding apart).  The estimators'
net enters it around the training forward pass where
:func:`nchw_weight_grads_pay` says so and the network :func:`has_wide_convs`;
it changes no module, so any network
of the registry, and a user's own, gets it.
"""

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from sklearn_rfcnn.utils._torch import cpu_avx2, cpu_avx512

__all__ = [
    "MIN_IN_CHANNELS",
    "has_wide_convs",
    "nchw_weight_grads",
    "nchw_weight_grads_pay",
]

#: Narrower convolutions keep oneDNN's channels-last weight gradient: at
#: 24-48 input channels it was as fast as the NCHW one or faster, and the
#: two copies then cost more than they save.
MIN_IN_CHANNELS = 64

_convolution_backward = torch.ops.aten.convolution_backward


def nchw_weight_grads_pay(device, precision, channels_last):
    """Whether a training pass should run in :class:`nchw_weight_grads`.

    True on a CPU whose oneDNN has AVX2 but not AVX-512
    (:func:`~sklearn_rfcnn.utils._torch.cpu_avx2`,
    :func:`~sklearn_rfcnn.utils._torch.cpu_avx512`), in float32, with the
    module in channels-last: the one case where oneDNN's channels-last weight
    gradient was measured slow.  With AVX-512 the same copies made a training
    step 1.2x slower; under autocast (bf16, float16) the saved input and the
    gradient differ in dtype, and such CPUs train in float32 anyway.

    Parameters
    ----------
    device : str
        A concrete device.
    precision : {"32", "bf16", "16"}
        The resolved precision.
    channels_last : bool
        The resolved training layout.

    Returns
    -------
    pay : bool

    Examples
    --------
    >>> nchw_weight_grads_pay("cpu", "bf16", True)
    False
    >>> nchw_weight_grads_pay("cpu", "32", False)
    False
    """
    return (
        torch.device(device).type == "cpu"
        and precision == "32"
        and bool(channels_last)
        and torch.backends.mkldnn.is_available()
        and cpu_avx2()
        and not cpu_avx512()
    )


def has_wide_convs(module, min_in_channels=None):
    """Whether ``module`` has a 2-D convolution :class:`nchw_weight_grads` re-routes.

    The mode costs a Python call for every torch function a forward pass
    makes (about 1 ms a training step of a width-8 CP-ResNet); a network
    without a convolution of ``min_in_channels`` input channels or more has
    nothing to gain from it.

    Parameters
    ----------
    module : torch.nn.Module
    min_in_channels : int, default=None
        :data:`MIN_IN_CHANNELS` when None.

    Examples
    --------
    >>> import torch
    >>> has_wide_convs(torch.nn.Conv2d(64, 8, 3))
    True
    >>> has_wide_convs(torch.nn.Sequential(torch.nn.Conv2d(8, 64, 3)))
    False
    """
    if min_in_channels is None:
        min_in_channels = MIN_IN_CHANNELS
    return any(
        isinstance(m, torch.nn.Conv2d) and m.in_channels >= min_in_channels
        for m in module.modules()
    )


class _Conv2dNCHWWeightGrad(torch.autograd.Function):
    """``F.conv2d`` whose weight gradient is computed from NCHW copies."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        pair = torch.nn.modules.utils._pair
        ctx.conv = (
            list(pair(stride)),
            list(pair(padding)),
            list(pair(dilation)),
            int(groups),
            None if bias is None else list(bias.shape),
        )
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups, bias_sizes = ctx.conv
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        conv = (bias_sizes, stride, padding, dilation, False, [0, 0], groups)
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = _convolution_backward(
                grad, x, weight, *conv, [True, False, False]
            )[0]
        if need_w or need_b:
            _, grad_w, grad_b = _convolution_backward(
                grad.contiguous(),
                x.contiguous(),
                weight.contiguous(),
                *conv,
                [False, need_w, need_b],
            )
        return grad_x, grad_w, grad_b, None, None, None, None


def _autocast_on(device_type):
    """Whether autocast is on for ``device_type`` (torch < 2.4 has no argument)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def _conv2d_args(args, kwargs):
    """``(x, weight, bias, stride, padding, dilation, groups)`` of a conv2d call."""
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    defaults = (None, None, None, 1, 0, 1, 1)
    values = list(args) + list(defaults[len(args) :])
    for i, name in enumerate(names):
        if name in kwargs:
            values[i] = kwargs[name]
    return values


class nchw_weight_grads(TorchFunctionMode):
    """Compute the weight gradients of wide channels-last convolutions in NCHW.

    A context manager (:class:`~torch.overrides.TorchFunctionMode`): a
    ``torch.conv2d`` / ``F.conv2d`` call inside it whose input is a 4-D
    float32 channels-last tensor with at least ``min_in_channels`` channels,
    with autograd recording and no autocast, runs as a convolution whose
    backward computes the weight gradient from NCHW copies (see the module's
    notes); every other call runs unchanged.  Only the forward pass needs to
    run inside it.

    Parameters
    ----------
    min_in_channels : int, default=None
        Narrowest input (channels) that is re-routed; :data:`MIN_IN_CHANNELS`
        when None.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(64, 8, 3).to(memory_format=torch.channels_last)
    >>> x = torch.randn(2, 64, 9, 9).contiguous(memory_format=torch.channels_last)
    >>> with nchw_weight_grads():
    ...     out = conv(x)
    >>> type(out.grad_fn).__name__
    '_Conv2dNCHWWeightGradBackward'
    >>> out.sum().backward()
    >>> conv.weight.grad.shape
    torch.Size([8, 64, 3, 3])
    """

    def __init__(self, min_in_channels=None):
        super().__init__()
        self.min_in_channels = (
            MIN_IN_CHANNELS if min_in_channels is None else min_in_channels
        )

    def _reroutes(self, x, weight, padding):
        return (
            torch.is_grad_enabled()
            and isinstance(x, torch.Tensor)
            and isinstance(weight, torch.Tensor)
            and (x.requires_grad or weight.requires_grad)
            and x.ndim == 4
            and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and x.shape[1] >= self.min_in_channels
            and not isinstance(padding, str)
            and not _autocast_on(x.device.type)
            and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous()
        )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.conv2d:
            call = _conv2d_args(args, kwargs)
            if self._reroutes(call[0], call[1], call[4]):
                return _Conv2dNCHWWeightGrad.apply(*call)
        return func(*args, **kwargs)
