"""CP-ResNet: the receptive-field regularised ResNet of Koutini et al. (2019, 2020).

Koutini, Eghbal-zadeh, Dorfer, Widmer, "The Receptive Field as a Regularizer
in Deep CNNs for Acoustic Scene Classification" (EUSIPCO 2019); Koutini et
al., "Receptive-Field Regularized CNNs for Music Classification and Tagging"
(arXiv 2007.13503, 2020).  Re-implemented from the published description;
the frequency-aware blocks follow Koutini et al., DCASE 2019, and the
Shake-Shake variant Gastaldi (2017).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.models._layers import (
    BatchNorm2d,
    FeatureMapAliasMixin,
    TinySafeMaxPool2d,
    check_model_int,
    conv_spec,
    frequency_coordinates,
    pad_to_min_size,
    pool_spec,
    same_padding,
    shake_shake,
)
from sklearn_rfcnn.models._registry import register_model
from sklearn_rfcnn.receptive_field import (
    RF,
    LayerSpec,
    block_kernels,
    pool_positions,
    resolve_rho,
)
from sklearn_rfcnn.receptive_field import (
    receptive_field as _receptive_field,
)
from sklearn_rfcnn.utils._arith_checks import check_bool

__all__ = ["BasicBlock", "CPResNet", "ResidualBranch"]

#: Smallest (F, T) the 5x5 / stride 2 / padding 1 stem accepts; smaller
#: inputs are edge-replicated up to it.
STEM_MIN_SIZE = (3, 3)


def _same_conv(in_channels, out_channels, kernel):
    """A bias-free convolution with ``same_padding(kernel)`` (the block's convs)."""
    return nn.Conv2d(
        in_channels, out_channels, kernel, padding=same_padding(kernel), bias=False
    )


class ResidualBranch(nn.Module):
    """conv1 -> BN -> ReLU -> conv2 -> BN, optionally frequency-aware.

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    kernels : ((int, int), (int, int))
        ``(freq, time)`` kernel sizes of conv1 and conv2; padding ``k // 3``.
    frequency_aware : bool, default=False
        Concatenate the coordinate channel ``2 i / F - 1`` to the input of
        both convolutions (their ``in_channels`` grow by one).

    Examples
    --------
    >>> import torch
    >>> b = ResidualBranch(4, 8, ((3, 3), (1, 1)), frequency_aware=True)
    >>> b(torch.randn(2, 4, 6, 5)).shape
    torch.Size([2, 8, 6, 5])
    >>> b.conv1.in_channels, b.conv2.in_channels
    (5, 9)
    """

    #: each batch norm reads only its convolution's output (see ``models._fold``)
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernels: tuple[tuple[int, int], tuple[int, int]],
        frequency_aware: bool = False,
    ) -> None:
        super().__init__()
        kernel1, kernel2 = kernels
        extra = int(frequency_aware)
        self.frequency_aware = frequency_aware
        self.conv1 = _same_conv(in_channels + extra, out_channels, kernel1)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = _same_conv(out_channels + extra, out_channels, kernel2)
        self.bn2 = BatchNorm2d(out_channels)

    def _with_coords(self, x):
        if not self.frequency_aware:
            return x
        return torch.cat([x, frequency_coordinates(x)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(self._with_coords(x))), inplace=True)
        return self.bn2(self.conv2(self._with_coords(y)))


class BasicBlock(nn.Module):
    """Post-activation residual block: ``ReLU(shortcut(x) + branch(x))``.

    With ``shake_shake=True`` it holds two identical branches mixed by
    :func:`~sklearn_rfcnn.models._layers.shake_shake`.  The shortcut is the
    identity, or a 1x1 convolution + BN when the channel count changes; it
    never sees the coordinate channel.

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    kernel1, kernel2 : (int, int)
    frequency_aware : bool, default=False
    shake_shake : bool, default=False

    Examples
    --------
    >>> import torch
    >>> block = BasicBlock(4, 8, (3, 1), (1, 1), shake_shake=True).eval()
    >>> len(block.branches), type(block.shortcut).__name__
    (2, 'Sequential')
    >>> block(torch.randn(2, 4, 6, 5)).shape
    torch.Size([2, 8, 6, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel1: tuple[int, int],
        kernel2: tuple[int, int],
        frequency_aware: bool = False,
        shake_shake: bool = False,
    ) -> None:
        super().__init__()
        args = (in_channels, out_channels, (kernel1, kernel2), frequency_aware)
        self.branch1 = ResidualBranch(*args)
        self.branch2 = ResidualBranch(*args) if shake_shake else None
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
                    bn=BatchNorm2d(out_channels),
                )
            )
        else:
            self.shortcut = nn.Identity()

    @property
    def branches(self) -> list[ResidualBranch]:
        """The residual branch(es) of this block."""
        return [b for b in (self.branch1, self.branch2) if b is not None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.branch1(x)
        if self.branch2 is not None:
            r = shake_shake(r, self.branch2(x), self.training)
        # in place, as in the reference: no second activation-sized tensor
        # (the branch ends in a batch norm, whose backward needs its input,
        # not its output); the sum is the same, bit for bit
        r += self.shortcut(x)
        return F.relu(r, inplace=True)


@register_model(name="cp_resnet")
class CPResNet(FeatureMapAliasMixin, nn.Module):
    """Receptive-field regularised ResNet (CP-ResNet) for spectrograms.

    Stem (5x5 conv, stride 2, padding 1, BN, ReLU), three stages of
    ``(depth - 2) / 6`` post-activation BasicBlocks with ``width``, ``2 *
    width`` and ``4 * width`` channels, 2x2 max-pools after blocks 1, 2 and 4
    of stage 1 (for fewer blocks per stage the missing positions move to the
    last block of stage 1, see
    :func:`~sklearn_rfcnn.receptive_field.pool_positions`), then a 1x1
    classifier convolution (no bias), BN and global average pooling.  The
    block kernels follow the rho rule
    (:func:`~sklearn_rfcnn.receptive_field.block_kernels`), which fixes the
    receptive field: rho = 5 -> 87 px, rho = 7 -> 135 px.

    Parameters
    ----------
    in_channels : int >= 1, default=1
        Spectrogram channels (1 mono, 2 stereo).
    n_classes : int >= 1, default=10
        Number of logits.
    rho : int, 0 <= rho <= 2 * n_blocks - 2, or None, default=None
        Receptive-field knob (22 is the maximum at depth 26); None means
        :data:`~sklearn_rfcnn.receptive_field.DEFAULT_RHO`.
    rho_f, rho_t : int or None, default=None
        Separate rho along frequency and time; None means ``rho``.
    width : int >= 1, default=128
        Base channels; the stages have ``width``, ``2 width``, ``4 width``.
    depth : int, 6 * n + 2 >= 8, default=26
        ``n = (depth - 2) / 6`` blocks per stage.
    frequency_aware : bool, default=False
        CP-FAResNet: a frequency-coordinate channel is concatenated to the
        input of every block convolution.
    shake_shake : bool, default=False
        Two residual branches per block mixed with Shake-Shake (random per
        sample in training, 0.5/0.5 in eval).  Draws use torch's global RNG.
    head : {"map", "pooled"}, default="map"
        Where the classifier's batch norm sits.  ``"map"`` is the reference
        head: 1x1 conv, BN over the class *map*, then global average pooling,
        so in training each logit map has unit variance over batch and
        positions and the pooled logits start out with a small spread (the
        spatial noise averages out).  ``"pooled"`` pools first and normalises
        the pooled logits (BN over the batch), so their spread across clips
        starts at ``gamma = 1``; same parameters, same receptive field.

    Attributes
    ----------
    num_features : int
        Size of the pooled embedding, ``4 * width``.
    kernels : list of ((int, int), (int, int))
        ``((kf1, kt1), (kf2, kt2))`` per block.

    Notes
    -----
    timm's convention: ``forward_features`` returns the stage-3 feature map
    ``(B, 4 * width, F', T')``; ``forward_head(fmap)`` is the reference head
    (1x1 conv and BN on the map, then global average pooling, or pooling
    first with ``head="pooled"``) and gives the logits, so
    ``forward(x) == forward_head(forward_features(x))``;
    ``forward_head(fmap, pre_logits=True)`` is the pooled embedding
    ``(B, 4 * width)`` (what :class:`~sklearn_rfcnn.RFCNNEmbedder` returns).
    ``forward_head`` also takes an already pooled ``(B, 4 * width)`` input;
    pooling commutes with the 1x1 conv and with BN in eval mode, so it then
    gives the same logits in eval mode.  Before release 0.3
    ``forward_features`` returned the pooled embedding;
    ``forward_feature_map`` is kept as an alias of ``forward_features``.

    Inputs smaller than the stem's 3x3 minimum, or that reach a pool with a
    size-1 axis, are edge-replicated up to the window; from F, T >= 17 on
    the network is exactly the reference.

    Examples
    --------
    >>> import torch
    >>> m = CPResNet(n_classes=3, rho=2, width=4).eval()
    >>> m(torch.randn(2, 1, 64, 40)).shape
    torch.Size([2, 3])
    >>> fmap = m.forward_features(torch.randn(2, 1, 64, 40))
    >>> fmap.shape
    torch.Size([2, 16, 3, 2])
    >>> m.forward_head(fmap, pre_logits=True).shape
    torch.Size([2, 16])
    >>> m.receptive_field
    RF(freq=39, time=39)
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        rho: int | None = None,
        rho_f: int | None = None,
        rho_t: int | None = None,
        width: int = 128,
        depth: int = 26,
        frequency_aware: bool = False,
        shake_shake: bool = False,
        head: str = "map",
    ) -> None:
        super().__init__()
        self.check_args(rho=rho, rho_f=rho_f, rho_t=rho_t, depth=depth, head=head)
        self.head = head
        in_channels = check_model_int("in_channels", in_channels)
        n_classes = check_model_int("n_classes", n_classes)
        width = check_model_int("width", width)
        self.frequency_aware = check_bool("frequency_aware", frequency_aware)
        self.shake_shake = check_bool("shake_shake", shake_shake)
        self.kernels = block_kernels(rho, rho_f, rho_t, depth)
        self.rho, self.rho_f, self.rho_t = map(int, resolve_rho(rho, rho_f, rho_t))
        self.depth = int(depth)
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.width = width
        self.num_features = 4 * width

        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, width, 5, stride=2, padding=1, bias=False),
                bn=BatchNorm2d(width),
                relu=nn.ReLU(inplace=True),
            )
        )
        n = (depth - 2) // 6
        pools = pool_positions(depth)
        stages = []
        channels = width
        for s, out_c in enumerate((width, 2 * width, 4 * width)):
            layers = OrderedDict()
            for i in range(n):
                k1, k2 = self.kernels[s * n + i]
                layers[f"block{i + 1}"] = BasicBlock(
                    channels, out_c, k1, k2, frequency_aware, shake_shake
                )
                channels = out_c
                if s == 0:
                    for j in range(pools.count(i + 1)):
                        suffix = "" if j == 0 else f"_{j + 1}"
                        layers[f"pool{i + 1}{suffix}"] = TinySafeMaxPool2d(2)
            stages.append(nn.Sequential(layers))
        self.stage1, self.stage2, self.stage3 = stages
        self.classifier = nn.Conv2d(4 * width, n_classes, 1, bias=False)
        self.classifier_bn = BatchNorm2d(n_classes)
        self.init_weights()

    @staticmethod
    def check_args(
        *, rho=None, rho_f=None, rho_t=None, depth=26, head="map", **_others
    ) -> None:
        """Check ``head`` and ``rho`` / ``rho_f`` / ``rho_t`` against ``depth``.

        The checks of the constructor that involve several arguments, run
        without building anything (see
        :func:`~sklearn_rfcnn.models.check_model_args`); the other
        arguments are checked by the constructor.

        Examples
        --------
        >>> CPResNet.check_args(rho=22, depth=26)
        >>> CPResNet.check_args(rho=22, depth=14)
        Traceback (most recent call last):
        ...
        sklearn_rfcnn.exceptions.ParameterError: rho=22 is out of range: it must
        lie in [0, 10]. ...
        """
        if head not in ("map", "pooled"):
            raise ParameterError(
                f"head={head!r} is not one of 'map' (the paper's: BN on the "
                "class map, then pooling) or 'pooled' (pooling, then BN)."
            )
        block_kernels(rho, rho_f, rho_t, depth)

    # ------------------------------------------------------------------ #
    @property
    def blocks(self) -> list[BasicBlock]:
        """All BasicBlocks in forward order."""
        return [m for m in self.modules() if isinstance(m, BasicBlock)]

    def init_weights(self) -> None:
        """Reference initialisation (Fixup-style scaling with BatchNorm kept).

        Kaiming-normal (fan_in, ReLU) for every conv; BN weight 1, bias 0;
        classifier conv zero (initial logits are exactly 0); per block,
        conv1 ~ N(0, sigma^2) with ``sigma = sqrt(2 / (kf kt C_out)) / sqrt(L)``
        (``L`` = number of blocks in this model), conv2 zero (each branch
        starts at zero, the block as identity + ReLU), projection conv
        ~ N(0, 2 / C_out).
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        n_blocks = len(self.blocks)
        for block in self.blocks:
            for branch in block.branches:
                c1 = branch.conv1
                fan = c1.kernel_size[0] * c1.kernel_size[1] * c1.out_channels
                nn.init.normal_(
                    c1.weight, 0.0, math.sqrt(2.0 / fan) / math.sqrt(n_blocks)
                )
                nn.init.zeros_(branch.conv2.weight)
            if isinstance(block.shortcut, nn.Sequential):
                conv = block.shortcut.conv
                nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / conv.out_channels))
        nn.init.zeros_(self.classifier.weight)

    # ------------------------------------------------------------------ #
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stage-3 feature map (timm's ``forward_features``).

        Parameters
        ----------
        x : torch.Tensor [shape=(B, in_channels, F, T)], F, T >= 1

        Returns
        -------
        fmap : torch.Tensor [shape=(B, 4 * width, F', T')]
            ``F' = floor((floor((F - 3) / 2) + 1) / 8)`` for F >= 17 (15 for 256).
        """
        x = pad_to_min_size(x, STEM_MIN_SIZE)
        x = self.stem(x)
        x = self.stage1(x)
        x = self.stage2(x)
        return self.stage3(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Classifier (1x1 conv + BN + global average pool) on the feature map.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, num_features, F', T')] or [shape=(B, num_features)]
            The stage-3 map of :meth:`forward_features` (then this is exactly
            the reference head), or already pooled features.
        pre_logits : bool, default=False
            Return the pooled embedding instead of the logits.

        Returns
        -------
        out : torch.Tensor [shape=(B, n_classes)] or [shape=(B, num_features)]
        """
        if x.dim() == 4:
            if pre_logits:
                return x.mean(dim=(2, 3))
            if self.head == "pooled":
                x = x.mean(dim=(2, 3), keepdim=True)
            return self.classifier_bn(self.classifier(x)).mean(dim=(2, 3))
        if pre_logits:
            return x
        y = self.classifier(x[:, :, None, None])
        return self.classifier_bn(y).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: ``forward_head(forward_features(x))``.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, in_channels, F, T)], F, T >= 1
            Spectrograms, as for :meth:`forward_features`.

        Returns
        -------
        logits : torch.Tensor [shape=(B, n_classes)]
        """
        return self.forward_head(self.forward_features(x))

    # ------------------------------------------------------------------ #
    def get_classifier(self) -> nn.Module:
        """The 1x1 classifier convolution."""
        return self.classifier

    @torch.no_grad()
    def init_output_bias(self, bias: torch.Tensor) -> None:
        """Set the bias of the logits, e.g. to the log-odds of the label prior.

        The logits are ``classifier_bn(classifier(x))`` pooled; with the
        classifier at zero (its initialisation) they equal the BN bias, which
        this sets.

        Parameters
        ----------
        bias : torch.Tensor [shape=(n_classes,)]
        """
        self.classifier_bn.bias.copy_(torch.as_tensor(bias))

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the classifier (zero-initialised) for ``n_classes`` outputs."""
        n_classes = check_model_int("n_classes", n_classes)
        ref = self.classifier.weight
        self.classifier = nn.Conv2d(
            self.num_features,
            n_classes,
            1,
            bias=False,
            device=ref.device,
            dtype=ref.dtype,
        )
        nn.init.zeros_(self.classifier.weight)
        self.classifier_bn = BatchNorm2d(n_classes, device=ref.device, dtype=ref.dtype)
        self.n_classes = n_classes

    def rf_layers(self) -> list[LayerSpec]:
        """Longest-path layer specs, read from the modules themselves.

        Returns
        -------
        layers : list of LayerSpec
            Stem conv, conv1/conv2 of each block's first branch, the pools,
            the classifier conv; input for
            :func:`~sklearn_rfcnn.receptive_field.receptive_field`.
        """
        layers = [conv_spec(self.stem.conv, "stem.conv")]
        for s, stage in enumerate((self.stage1, self.stage2, self.stage3), start=1):
            for name, mod in stage.named_children():
                prefix = f"stage{s}.{name}"
                if isinstance(mod, BasicBlock):
                    layers.append(conv_spec(mod.branch1.conv1, f"{prefix}.conv1"))
                    layers.append(conv_spec(mod.branch1.conv2, f"{prefix}.conv2"))
                else:
                    layers.append(pool_spec(mod, prefix))
        layers.append(conv_spec(self.classifier, "classifier"))
        return layers

    @property
    def receptive_field(self) -> RF:
        """Exact maximum receptive field ``RF(freq, time)`` in input pixels."""
        return _receptive_field(self)
