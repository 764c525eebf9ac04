"""Torch networks: CP-ResNet and baselines, behind a small model registry.

Every model takes ``in_channels``, ``n_classes`` and ``width``; accepts input
``(B, in_channels, F, T)`` with any F, T >= 1; and exposes

- ``forward(x)`` -> logits ``(B, n_classes)``,
- ``forward_features(x)`` -> the last feature map ``(B, num_features, F', T')``
  (timm's convention; ``forward_feature_map`` is its pre-0.3 alias),
- ``forward_head(fmap, pre_logits=False)`` -> pooled and classified: the logits,
  or with ``pre_logits=True`` the pooled embedding ``(B, num_features)``, so
  ``forward(x) == forward_head(forward_features(x))``,
- ``num_features``, ``init_weights()``, ``reset_classifier(n_classes)``,
- ``rf_layers()`` (for :func:`sklearn_rfcnn.receptive_field.receptive_field`)
  and the ``receptive_field`` property.

This package imports torch but never scikit-learn.

Examples
--------
>>> from sklearn_rfcnn.models import create_model, list_models
>>> list_models()
['cp_resnet', 'resnet18', 'resnet34', 'vgg_cnn']
>>> create_model("cp_resnet", rho=7, width=4).receptive_field
RF(freq=135, time=135)
"""

from sklearn_rfcnn.models._baselines import VGGCNN, ResNet, resnet18, resnet34
from sklearn_rfcnn.models._cp_resnet import BasicBlock, CPResNet
from sklearn_rfcnn.models._layers import (
    ShakeShake,
    TinySafeMaxPool2d,
    frequency_coordinates,
    probe_pooling,
)
from sklearn_rfcnn.models._registry import (
    check_model_args,
    create_model,
    get_model_entrypoint,
    list_models,
    register_model,
)

__all__ = [
    "VGGCNN",
    "BasicBlock",
    "CPResNet",
    "ResNet",
    "ShakeShake",
    "TinySafeMaxPool2d",
    "check_model_args",
    "create_model",
    "frequency_coordinates",
    "get_model_entrypoint",
    "list_models",
    "probe_pooling",
    "register_model",
    "resnet18",
    "resnet34",
]
