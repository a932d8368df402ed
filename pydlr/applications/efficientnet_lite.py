"""EfficientNet-Lite0/1/2 with TensorFlow's ImageNet weights (no squeeze-excitation, ReLU6)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from pydlr.applications._build import build
from pydlr.pretrained import applications
from pydlr.pretrained.imagenet import decode_predictions, preprocess

__all__ = ["EfficientNetLite0", "EfficientNetLite1", "EfficientNetLite2", "decode_predictions",
           "preprocess_input"]


def _make(variant: int, size: int, params: str, top1: float) -> Any:
    name = f"efficientnet_lite{variant}"

    def constructor(
        input_shape: Any = None,
        include_top: bool = True,
        weights: str | None = "imagenet",
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: str | None = "softmax",
    ) -> nn.Module:
        return build(name, f"applications.EfficientNetLite{variant}", include_top, weights, input_shape,
                     pooling, classes, classifier_activation,
                     lambda **kw: applications.EfficientNetLite(variant, **kw))

    constructor.__name__ = constructor.__qualname__ = f"EfficientNetLite{variant}"
    constructor.__doc__ = (
        f"EfficientNet-Lite{variant} ({params} parameters, {top1}% ImageNet top-1), Keras' arguments.\n\n"
        f"``input_shape`` defaults to ({size}, {size}, 3), the weights' resolution; any size >= 32 runs.\n"
        f"Inputs: ``preprocess_input(x, size={size})`` of this module."
    )
    return constructor


EfficientNetLite0 = _make(0, 224, "4.7 M", 75.1)
EfficientNetLite1 = _make(1, 240, "5.4 M", 76.7)
EfficientNetLite2 = _make(2, 260, "6.1 M", 77.6)


def preprocess_input(x: Any, size: int = 224) -> np.ndarray:
    """What the weights expect: resize the shorter side to ``size + 32``, centre crop ``size`` (224 for
    Lite0, 240 for Lite1, 260 for Lite2) and scale 0-255 pixels to ``(x - 127) / 128``."""
    return preprocess(x, size=size, mode="tflite")
