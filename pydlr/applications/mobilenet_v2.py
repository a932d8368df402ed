"""``keras.applications.mobilenet_v2``: MobileNetV2 with torchvision's ImageNet weights."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from pydlr.applications._build import build
from pydlr.pretrained import applications
from pydlr.pretrained.imagenet import decode_predictions, preprocess

__all__ = ["MobileNetV2", "decode_predictions", "preprocess_input"]


def MobileNetV2(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    include_top: bool = True,
    weights: str | None = "imagenet",
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
) -> nn.Module:
    """MobileNetV2 (3.5 M parameters, 71.9% ImageNet top-1), Keras' arguments in Keras' order.

    ``input_shape`` defaults to (224, 224, 3); any size >= 32 runs. ``weights``: "imagenet" or None.
    ``pooling`` ("avg", "max", None) applies without the top. Inputs: ``preprocess_input`` of this module.
    """
    return build("mobilenet_v2", "applications.MobileNetV2", include_top, weights, input_shape, pooling,
                 classes, classifier_activation, applications.MobileNetV2)


def preprocess_input(x: Any, size: int = 224) -> np.ndarray:
    """What the weights expect: resize (shorter side 256 for 224), centre crop ``size``, ImageNet mean/std.

    ``x``: uint8 (0-255) or float pixels, one image (H, W, C) or a batch (N, H, W, C), channels last.
    Unlike Keras' version (which only rescales), it also resizes, as torchvision's evaluation transform.
    """
    return preprocess(x, size=size, mode="torch")
