"""Batch norms folded into the convolutions before them, for inference.

In eval mode a batch norm is a per-channel affine map, ``y = s * (z - mean) +
beta`` with ``s = gamma / sqrt(var + eps)``; after a convolution ``z = w * x
(+ b)`` it can be computed by the convolution itself, with weights ``s * w``
and bias ``s * (b - mean) + beta`` (``torch.nn.utils.fusion``).  That removes
one pass over every activation map of an inference pass: the batch norm
reads and writes the whole map, memory-bound work that costs more the
faster the convolutions are.  On an AMD EPYC with AVX-512-BF16 (bf16 +
channels-last, ``benchmarks/bench_inference.py``) batch norm is a fifth of
CP-ResNet's inference at width 24 and 4% at width 128.

:func:`folded_for_inference` gives the folded copy of a network (a second
set of its weights in memory), cached per network as long as the network
lives and kept up to date: recomputed in place when its weights or
statistics change (training, ``load_state_dict``), built again when its
structure changes (a layout change, a replaced submodule).
:func:`inference_module` is the policy the estimators' inference passes
(and the benchmarks' bare loops) follow: the folded copy under mixed
precision only.  There the batch norm already computes on rounded
convolution outputs, and the folded pass rounds once less but rounds the
folded weights (its error against float32 is of the same size, see
``tests/test_models_fold.py``).  Float32 inference keeps the network as it
is, so its outputs stay those of earlier releases to the bit.

Which pairs are folded: in an ``nn.Sequential``, a ``Conv2d`` directly
followed by a ``BatchNorm2d`` (the output of one is the input of the next);
in any module, the ``(conv, bn)`` attribute names its class lists in
``conv_bn_pairs`` (its ``forward`` applies ``bn`` directly to ``conv``'s
output and nothing else reads it).  A batch norm without running statistics
(``track_running_stats=False``, which normalises with the batch's own in
eval mode too) is never folded, nor a pair whose folded weights or bias
would not be finite in the inference dtype.  ``RFCNN_FOLD_BATCH_NORM=0``
turns the folding off.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import weakref
from itertools import chain, pairwise

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

__all__ = [
    "ENV_VAR",
    "conv_bn_pairs",
    "fold_batch_norms",
    "folded_for_inference",
    "inference_module",
]

#: Set to ``0`` to run inference through the batch norms as they are.
ENV_VAR = "RFCNN_FOLD_BATCH_NORM"

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """The ``(conv, batch norm)`` child names of ``module`` that can be folded.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    pairs : list of (str, str)
        Names of direct children: in an ``nn.Sequential`` each ``Conv2d``
        followed by a ``BatchNorm2d``, elsewhere the class's
        ``conv_bn_pairs``; only batch norms with running statistics.

    Examples
    --------
    >>> block = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    >>> conv_bn_pairs(block)
    [('0', '1')]
    >>> conv_bn_pairs(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)))
    []
    """
    children = module._modules
    if isinstance(module, nn.Sequential):
        names = list(children)
        candidates = list(pairwise(names))
    else:
        candidates = list(getattr(type(module), "conv_bn_pairs", ()))
    return [
        (c, b)
        for c, b in candidates
        if type(children.get(c)) is nn.Conv2d
        and isinstance(children.get(b), nn.BatchNorm2d)
        and children[b].running_mean is not None
        and children[b].running_var is not None
    ]


def fold_batch_norms(module: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """An eval-mode copy of ``module`` with its batch norms folded.

    Every pair of :func:`conv_bn_pairs` becomes one convolution (weights
    ``s * w``, bias ``s * (b - mean) + beta``, by
    :func:`torch.nn.utils.fusion.fuse_conv_bn_weights`) followed by an
    ``nn.Identity``.  The copy's outputs equal the eval-mode outputs of
    ``module`` up to rounding; its parameters do not require gradients and
    keep the memory format of the originals.

    Parameters
    ----------
    module : torch.nn.Module
        Left unchanged.
    dtype : torch.dtype or None, default=None
        The dtype the copy will compute in (an autocast dtype): a pair whose
        folded weights or bias overflow it is left as it is.

    Returns
    -------
    folded : torch.nn.Module

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[1].running_mean.uniform_(-1, 1, generator=g)
    ...     _ = net[1].running_var.uniform_(0.5, 2, generator=g)
    >>> net = net.eval()
    >>> folded = fold_batch_norms(net)
    >>> folded
    Sequential(
      (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))
      (1): Identity()
      (2): ReLU()
    )
    >>> x = torch.randn(2, 1, 8, 8, generator=g)
    >>> torch.allclose(folded(x), net(x), atol=1e-6)
    True
    """
    return _fold(module, dtype)[0]


def _fold(module, dtype):
    """``(folded copy, [(conv name, batch norm name), ...] folded)``."""
    folded_pairs = []
    with torch.inference_mode(False), torch.no_grad():
        folded = copy.deepcopy(module).eval()
        for prefix, parent in list(folded.named_modules()):
            for conv_name, bn_name in conv_bn_pairs(parent):
                conv = parent._modules[conv_name]
                weight, bias = _fused(conv, parent._modules[bn_name], dtype)
                if weight is None:
                    continue
                conv.weight, conv.bias = nn.Parameter(weight), nn.Parameter(bias)
                parent._modules[bn_name] = nn.Identity()
                dot = f"{prefix}." if prefix else ""
                folded_pairs.append((dot + conv_name, dot + bn_name))
        folded.requires_grad_(False)
    return folded, folded_pairs


def _fused(conv, bn, dtype):
    """A pair's folded ``(weight, bias)``, ``(None, None)`` if not finite in dtype."""
    weight, bias = fuse_conv_bn_weights(
        conv.weight,
        conv.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
    )
    weight, bias = weight.detach(), bias.detach()
    if conv.weight.is_contiguous(memory_format=torch.channels_last):
        weight = weight.contiguous(memory_format=torch.channels_last)
    if dtype is not None and not all(
        bool(torch.isfinite(t.to(dtype)).all()) for t in (weight, bias)
    ):
        return None, None
    return weight, bias


def _refresh(folded, folded_pairs, module, dtype) -> bool:
    """Copy ``module``'s current weights into its folded copy, in place.

    False (nothing usable) when a pair's new folded weights are not finite in
    ``dtype``: the copy must then be built again.
    """
    with torch.inference_mode(False), torch.no_grad():
        fused = [
            _fused(module.get_submodule(c), module.get_submodule(b), dtype)
            for c, b in folded_pairs
        ]
        if any(weight is None for weight, _ in fused):
            return False
        folded_names = set()
        for (conv_name, _), (weight, bias) in zip(folded_pairs, fused):
            target = folded.get_submodule(conv_name)
            target.weight.copy_(weight)
            target.bias.copy_(bias)
            folded_names.update((f"{conv_name}.weight", f"{conv_name}.bias"))
        source = dict(chain(module.named_parameters(), module.named_buffers()))
        for name, tensor in chain(folded.named_parameters(), folded.named_buffers()):
            if name not in folded_names:
                tensor.copy_(source[name])
    return True


def _has_hooks(module: nn.Module) -> bool:
    """Whether a submodule has forward hooks (they must see the module itself)."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def _state_key(module: nn.Module, dtype) -> tuple | None:
    """What a folded copy's values depend on: every tensor's storage and version.

    None when a tensor was made in ``torch.inference_mode`` (a network built
    or loaded inside it): such tensors have no version to follow.
    """
    tensors = list(chain(module.parameters(), module.buffers()))
    if any(t.is_inference() for t in tensors):
        return None
    return (dtype, tuple((t.data_ptr(), t._version) for t in tensors))


def _structure_key(module: nn.Module, dtype) -> tuple:
    """What a folded copy's structure depends on: modules, tensor shapes, layouts."""
    modules = tuple((name, type(m)) for name, m in module.named_modules())
    tensors = tuple(
        (name, t.shape, t.dtype, t.device, t.stride())
        for name, t in chain(module.named_parameters(), module.named_buffers())
    )
    return dtype, modules, tensors


def folded_for_inference(
    module: nn.Module, dtype: torch.dtype | None = None
) -> nn.Module:
    """:func:`fold_batch_norms` of ``module``, cached and kept up to date.

    The copy is kept (weakly keyed by ``module``) and updated when a
    parameter or buffer of ``module`` changed in place since the last call
    (an optimizer step, a training pass's running statistics,
    ``load_state_dict``): the folded weights are recomputed into the copy,
    which costs a few milliseconds, or, when the structure changed (a
    replaced submodule, ``module.to(...)``), built again.  Checking costs
    about 1 µs per tensor.  With ``RFCNN_FOLD_BATCH_NORM=0``, when
    ``module`` has no pair to fold, when a submodule has forward hooks
    (which must see the modules they were registered on, batch norms
    included), and when its tensors were made in ``torch.inference_mode``
    (they have no version to follow), ``module`` itself is returned.

    Parameters
    ----------
    module : torch.nn.Module
    dtype : torch.dtype or None, default=None
        As in :func:`fold_batch_norms`.

    Returns
    -------
    module : torch.nn.Module
        In eval mode, to be used without gradients.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).eval()
    >>> folded = folded_for_inference(net)
    >>> folded is folded_for_inference(net)  # the cached copy
    True
    >>> x = torch.randn(1, 1, 5, 5)
    >>> with torch.no_grad():
    ...     _ = net[0].weight.mul_(2)
    ...     torch.allclose(folded_for_inference(net)(x), net(x), atol=1e-6)
    True
    """
    if os.environ.get(ENV_VAR, "1").strip() == "0" or _has_hooks(module):
        return module
    key = _state_key(module, dtype)
    if key is None:
        return module
    with _cache_lock:
        cached = _cache.get(module)
        if cached is not None and cached[0] == key:
            return cached[2]
        if not any(conv_bn_pairs(m) for m in module.modules()):
            return module
        structure = _structure_key(module, dtype)
        if (
            cached is not None
            and cached[1] == structure
            and _refresh(cached[2], cached[3], module, dtype)
        ):
            folded, folded_pairs = cached[2], cached[3]
        else:
            folded, folded_pairs = _fold(module, dtype)
        _cache[module] = (key, structure, folded, folded_pairs)
    return folded


def inference_module(module: nn.Module, amp_dtype: torch.dtype | None) -> nn.Module:
    """The network an inference pass under ``amp_dtype`` autocast runs.

    :func:`folded_for_inference` under mixed precision (``amp_dtype``
    ``torch.bfloat16`` or ``torch.float16``); ``module`` itself in float32
    (``amp_dtype=None``), whose outputs stay those of earlier releases to
    the bit, when ``module`` is compiled (``torch.compile``: its graph is
    the module's), and when it is wrapped for data parallelism
    (``DataParallel``, ``DistributedDataParallel``, which must run itself).

    Parameters
    ----------
    module : torch.nn.Module
    amp_dtype : torch.dtype or None

    Returns
    -------
    module : torch.nn.Module

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).eval()
    >>> inference_module(net, None) is net
    True
    >>> inference_module(net, torch.bfloat16)[1]
    Identity()
    """
    wrapped = isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel))
    if amp_dtype is None or wrapped or _compiled(module):
        return module
    return folded_for_inference(module, amp_dtype)


def _compiled(module: nn.Module) -> bool:
    """Whether ``module`` is a ``torch.compile`` wrapper (dynamo never loaded: no)."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return eval_frame is not None and isinstance(module, eval_frame.OptimizedModule)
