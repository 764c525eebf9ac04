"""Baselines: a VGG-style MIR CNN and un-regularised deep ResNets (18/34).

The VGG-style network is the usual music-tagging baseline (stacks of 3x3
conv-BN-ReLU with 2x2 max-pooling, e.g. Choi et al. 2016; Won et al. 2020);
the ResNets are He et al. (2016) BasicBlock ResNets in the torchvision
layout with a configurable input channel count.  Their receptive fields are
not regularised; a ResNet-18 sees 435 px, far beyond the rho range that works
for spectrograms (Koutini et al. 2019), which is the point of comparing.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from sklearn_rfcnn.models._layers import (
    BatchNorm2d,
    FeatureMapAliasMixin,
    TinySafeMaxPool2d,
    check_model_int,
    conv_spec,
    pool_spec,
)
from sklearn_rfcnn.models._registry import register_model
from sklearn_rfcnn.receptive_field import RF, LayerSpec
from sklearn_rfcnn.receptive_field import receptive_field as _receptive_field

__all__ = ["VGGCNN", "ResNet", "ResNetBlock", "resnet18", "resnet34"]


class _BaselineMixin(FeatureMapAliasMixin):
    """Shared head protocol of the baselines (global pool -> linear)."""

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling of the last map, then the linear classifier.

        ``pre_logits=True`` returns the pooled embedding ``(B, num_features)``;
        an already pooled 2-D input is taken as it is.
        """
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for ``x`` of shape ``(B, in_channels, F, T)``."""
        return self.forward_head(self.forward_features(x))

    def _init_convs_and_norms(self) -> None:
        """torchvision's init: Kaiming-normal (fan_out) convs, BN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        """The final linear layer."""
        return self.fc

    @torch.no_grad()
    def init_output_bias(self, bias: torch.Tensor) -> None:
        """Set the bias of the final linear layer (e.g. the label prior's log-odds).

        Parameters
        ----------
        bias : torch.Tensor [shape=(n_classes,)]
        """
        self.fc.bias.copy_(torch.as_tensor(bias))

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the final linear layer for ``n_classes`` outputs."""
        n_classes = check_model_int("n_classes", n_classes)
        ref = self.fc.weight
        self.fc = nn.Linear(
            self.num_features, n_classes, device=ref.device, dtype=ref.dtype
        )
        self.n_classes = n_classes

    @property
    def receptive_field(self) -> RF:
        """Exact maximum receptive field ``RF(freq, time)`` in input pixels."""
        return _receptive_field(self)


def _conv_bn_relu(cin, cout):
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            bn=BatchNorm2d(cout),
            relu=nn.ReLU(inplace=True),
        )
    )


@register_model(name="vgg_cnn")
class VGGCNN(_BaselineMixin, nn.Module):
    """VGG-style CNN: 4 blocks of 2x(3x3 conv-BN-ReLU) + 2x2 max-pool.

    Channels ``width``, ``2 width``, ``4 width``, ``8 width``; then global
    average pooling and a linear layer.  Receptive field 76 px per axis.

    Parameters
    ----------
    in_channels : int >= 1, default=1
    n_classes : int >= 1, default=10
    width : int >= 1, default=64
        Channels of the first block.

    Attributes
    ----------
    num_features : int
        ``8 * width``.

    Examples
    --------
    >>> import torch
    >>> m = VGGCNN(n_classes=3, width=4)
    >>> m(torch.randn(2, 1, 32, 20)).shape, m.num_features, m.receptive_field.time
    (torch.Size([2, 3]), 32, 76)
    """

    def __init__(
        self, in_channels: int = 1, n_classes: int = 10, width: int = 64
    ) -> None:
        super().__init__()
        self.in_channels = check_model_int("in_channels", in_channels)
        self.n_classes = check_model_int("n_classes", n_classes)
        self.width = check_model_int("width", width)
        blocks = OrderedDict()
        cin = in_channels
        for i, mult in enumerate((1, 2, 4, 8), start=1):
            cout = width * mult
            blocks[f"block{i}"] = nn.Sequential(
                OrderedDict(
                    conv1=_conv_bn_relu(cin, cout),
                    conv2=_conv_bn_relu(cout, cout),
                    pool=TinySafeMaxPool2d(2),
                )
            )
            cin = cout
        self.features = nn.Sequential(blocks)
        self.num_features = cin
        self.fc = nn.Linear(cin, n_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) convs, BN 1/0, linear N(0, 0.01²) with zero bias."""
        self._init_convs_and_norms()
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(B, 8 width, F/16, T/16)``; any F, T >= 1."""
        return self.features(x)

    def rf_layers(self) -> list[LayerSpec]:
        """Longest-path layer specs (all convs and pools)."""
        layers = []
        for name, block in self.features.named_children():
            layers.append(conv_spec(block.conv1.conv, f"{name}.conv1"))
            layers.append(conv_spec(block.conv2.conv, f"{name}.conv2"))
            layers.append(pool_spec(block.pool, f"{name}.pool"))
        return layers


class ResNetBlock(nn.Module):
    """torchvision-style BasicBlock: 3x3 (stride s) -> 3x3, projection when needed.

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    stride : int >= 1, default=1

    Examples
    --------
    >>> import torch
    >>> ResNetBlock(4, 8, stride=2)(torch.randn(1, 4, 9, 9)).shape
    torch.Size([1, 8, 5, 5])
    """

    #: each batch norm reads only its convolution's output (see ``models._fold``)
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(
                        in_channels, out_channels, 1, stride=stride, bias=False
                    ),
                    bn=BatchNorm2d(out_channels),
                )
            )
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.downsample(x), inplace=True)


class ResNet(_BaselineMixin, nn.Module):
    """Un-regularised BasicBlock ResNet (He et al. 2016, torchvision layout).

    7x7 stride-2 stem, 3x3 stride-2 max-pool, four stages of
    :class:`ResNetBlock` with ``width * (1, 2, 4, 8)`` channels (stages 2-4
    start with stride 2), global average pooling, linear head.  Works for any
    F, T >= 1 (strided 3x3 convs with padding 1 never shrink below 1).

    Parameters
    ----------
    layers : sequence of 4 int >= 1
        Blocks per stage, ``(2, 2, 2, 2)`` for ResNet-18, ``(3, 4, 6, 3)`` for 34.
    in_channels : int >= 1, default=1
    n_classes : int >= 1, default=10
    width : int >= 1, default=64
        Channels of the first stage (doubled at each of the next three).

    Attributes
    ----------
    num_features : int
        ``8 * width``: the channels of the last stage, the embedding size.

    Examples
    --------
    >>> import torch
    >>> m = ResNet((1, 1, 1, 1), n_classes=2, width=4)
    >>> m(torch.randn(1, 1, 1, 1)).shape, m.num_features
    (torch.Size([1, 2]), 32)
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        in_channels: int = 1,
        n_classes: int = 10,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.in_channels = check_model_int("in_channels", in_channels)
        self.n_classes = check_model_int("n_classes", n_classes)
        self.width = check_model_int("width", width)
        layers = tuple(check_model_int("layers[i]", n) for n in layers)
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                bn=BatchNorm2d(width),
                relu=nn.ReLU(inplace=True),
                pool=TinySafeMaxPool2d(3, stride=2, padding=1),
            )
        )
        cin = width
        stages = []
        for i, n in enumerate(layers):
            cout = width * 2**i
            blocks = [ResNetBlock(cin, cout, stride=1 if i == 0 else 2)]
            blocks += [ResNetBlock(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = cin
        self.fc = nn.Linear(cin, n_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's init: Kaiming-normal (fan_out) convs, BN 1/0."""
        self._init_convs_and_norms()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(B, 8 width, ~F/32, ~T/32)``."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def rf_layers(self) -> list[LayerSpec]:
        """Longest-path layer specs: stem, pool, both convs of every block."""
        layers = [
            conv_spec(self.stem.conv, "stem.conv"),
            pool_spec(self.stem.pool, "stem.pool"),
        ]
        for s in range(1, 5):
            for i, block in enumerate(getattr(self, f"layer{s}")):
                layers.append(conv_spec(block.conv1, f"layer{s}.{i}.conv1"))
                layers.append(conv_spec(block.conv2, f"layer{s}.{i}.conv2"))
        return layers


@register_model
def resnet18(in_channels: int = 1, n_classes: int = 10, width: int = 64) -> ResNet:
    """ResNet-18 (BasicBlocks ``[2, 2, 2, 2]``), receptive field 435 px.

    Examples
    --------
    >>> resnet18(width=4).receptive_field
    RF(freq=435, time=435)
    """
    return ResNet(
        (2, 2, 2, 2), in_channels=in_channels, n_classes=n_classes, width=width
    )


@register_model
def resnet34(in_channels: int = 1, n_classes: int = 10, width: int = 64) -> ResNet:
    """ResNet-34 (BasicBlocks ``[3, 4, 6, 3]``), receptive field 899 px.

    Examples
    --------
    >>> net = resnet34(width=4)
    >>> [len(getattr(net, f"layer{s}")) for s in (1, 2, 3, 4)], net.receptive_field
    ([3, 4, 6, 3], RF(freq=899, time=899))
    """
    return ResNet(
        (3, 4, 6, 3), in_channels=in_channels, n_classes=n_classes, width=width
    )
