"""Convolution weight gradients computed in NCHW during channels-last training.

On an x86 CPU where oneDNN has AVX2 but not AVX-512, its weight-gradient
kernel for channels-last (NHWC) convolutions is several times slower than the
one for the blocked layout it reorders NCHW tensors into: for CP-ResNet's
first stage at the paper's width (128 to 128 channels, 3x3, 8x127x215) it
measured about 3x the NCHW time (1121-1428 ms against 392-394 ms with the
freed buffers kept, as the estimators train), while the forward pass and
the input gradient ran as fast or faster in channels-last
(``benchmarks/bench_conv_grad.py``).  That one kernel is why channels-last
training used to lose to the default layout on such CPUs at the paper's
width (0.65-0.9x) although it won at width 24 (1.2-1.5x).

:class:`nchw_weight_grads` is a context manager over a network: inside
it, each of its ``nn.Conv2d`` layers with at least :data:`MIN_IN_CHANNELS`
input channels runs a channels-last input of at least :data:`MIN_PIXELS`
positions, when autograd records it, as :class:`_Conv2dNCHWWeightGrad`,
whose backward computes the input gradient in channels-last and the weight
(and bias) gradient from NCHW copies of the input and of the output's
gradient.  The results are the convolution's gradients, summed in another
order (float32 rounding apart).  The estimators' net enters it around the
training forward pass where :func:`nchw_weight_grads_pay` says so; the
layers are given an instance ``forward`` for the block only, so the network
is unchanged outside it and any network of the registry, or a user's own,
gets it.  (A :class:`~torch.overrides.TorchFunctionMode` catching every
``conv2d`` call did the same, but its Python call on every torch function
of the forward pass cost about 5 ms, 4%, of a width-24 training step.)
"""

import functools

import torch
import torch.nn.functional as F

from sklearn_rfcnn.utils._torch import cpu_avx2, cpu_avx512

__all__ = [
    "MIN_IN_CHANNELS",
    "MIN_PIXELS",
    "has_wide_convs",
    "nchw_weight_grads",
    "nchw_weight_grads_pay",
]

#: Narrower convolutions keep oneDNN's channels-last weight gradient: at
#: 24-48 input channels it was as fast as the NCHW one or faster, and the
#: two copies then cost more than they save.
MIN_IN_CHANNELS = 64
#: ... and so do convolutions of smaller maps (height x width of the input):
#: at 15x26 (CP-ResNet's last stage on 128x216 or 256x431 input) the NHWC
#: kernel was within 1 ms of the re-routed one, 96 channels or 256.
MIN_PIXELS = 1024

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

    A network without a convolution of ``min_in_channels`` input channels or
    more has nothing to gain from :class:`nchw_weight_grads`.

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
    return any(_reroutable(m, min_in_channels) for m in module.modules())


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


def _reroutable(module, min_in_channels):
    """Whether ``module`` is a plain, zero-padded ``nn.Conv2d`` wide enough.

    Subclasses that compute the convolution themselves (their own
    ``forward`` or ``_conv_forward``) are left alone.
    """
    return (
        isinstance(module, torch.nn.Conv2d)
        and type(module).forward is torch.nn.Conv2d.forward
        and type(module)._conv_forward is torch.nn.Conv2d._conv_forward
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
        and module.in_channels >= min_in_channels
    )


def _rerouted_forward(conv, min_pixels, x):
    """``conv(x)``, as :class:`_Conv2dNCHWWeightGrad` where it is re-routed."""
    if (
        torch.is_grad_enabled()
        and x.ndim == 4
        and x.shape[2] * x.shape[3] >= min_pixels
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and (x.requires_grad or conv.weight.requires_grad)
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
        and not _autocast_on(x.device.type)
    ):
        return _Conv2dNCHWWeightGrad.apply(
            x,
            conv.weight,
            conv.bias,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
        )
    return torch.nn.Conv2d.forward(conv, x)


class nchw_weight_grads:
    """Compute the weight gradients of a network's wide convolutions in NCHW.

    A context manager over ``module``: inside it, each of its
    :class:`torch.nn.Conv2d` layers with at least ``min_in_channels`` input
    channels (zero padding, torch's own ``forward``) runs a 4-D float32
    channels-last input of at least ``min_pixels`` positions, with autograd
    recording and no autocast, as a convolution whose backward computes the
    weight gradient from NCHW copies (see the module's notes); every other
    call runs as usual.  The layers get an instance ``forward`` on entry that
    is removed on exit, so the network is unchanged outside the block (and
    in a pickle).  Only the forward pass needs to run inside it.

    Parameters
    ----------
    module : torch.nn.Module
        The network (or one layer).
    min_in_channels : int, default=None
        Narrowest input (channels) that is re-routed; :data:`MIN_IN_CHANNELS`
        when None.
    min_pixels : int, default=None
        Smallest input map (height x width) that is re-routed;
        :data:`MIN_PIXELS` when None.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(64, 8, 3).to(memory_format=torch.channels_last)
    >>> x = torch.randn(2, 64, 32, 32).contiguous(memory_format=torch.channels_last)
    >>> with nchw_weight_grads(conv):
    ...     out = conv(x)
    >>> type(out.grad_fn).__name__
    '_Conv2dNCHWWeightGradBackward'
    >>> out.sum().backward()
    >>> conv.weight.grad.shape
    torch.Size([8, 64, 3, 3])
    >>> "forward" in vars(conv)  # nothing left on the layer
    False
    """

    def __init__(self, module, min_in_channels=None, min_pixels=None):
        self.module = module
        self.min_in_channels = (
            MIN_IN_CHANNELS if min_in_channels is None else min_in_channels
        )
        self.min_pixels = MIN_PIXELS if min_pixels is None else min_pixels
        self._convs = []

    def __enter__(self):
        self._convs = [
            m for m in self.module.modules() if _reroutable(m, self.min_in_channels)
        ]
        for conv in self._convs:
            # an instance attribute: nn.Module.__call__ runs it, hooks included
            object.__setattr__(
                conv,
                "forward",
                functools.partial(_rerouted_forward, conv, self.min_pixels),
            )
        return self

    def __exit__(self, *exc):
        for conv in self._convs:
            conv.__dict__.pop("forward", None)
        self._convs = []
        return False
