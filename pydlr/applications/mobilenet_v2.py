"""``keras.applications.mobilenet_v2``: MobileNetV2 with torchvision's ImageNet weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pydlr.applications._build import build
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers import Rescaling, SymbolicTensor
from pydlr.pretrained import applications
from pydlr.pretrained.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_not_preprocessed,
    decode_predictions,
    preprocess,
)

__all__ = ["MobileNetV2", "decode_predictions", "preprocess_input"]


def MobileNetV2(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    alpha: float = 1.0,
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
) -> nn.Module:
    """MobileNetV2 (3.5 M parameters, 71.9% ImageNet top-1), Keras' arguments in Keras' order.

    ``input_shape`` defaults to (224, 224, 3); any size >= 32 runs. ``weights``: "imagenet" or None.
    ``pooling`` ("avg", "max", None) applies without the top. Inputs: ``preprocess_input`` of this module.
    ``alpha`` is 1.0 only (the width of the shipped weights); ``input_tensor`` is None (call the model on
    a tensor instead: ``x = base_model(inputs)``).
    """
    where = "applications.MobileNetV2"
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise InputError("alpha", "a positive width multiplier (1.0)", alpha, where)
    if alpha != 1.0:
        raise NotSupportedError(f"{where}(alpha={alpha}) is not supported: pydlr ships MobileNetV2 at width 1.0 "
                                "only (alpha=1.0); for a smaller network use pydlr.applications.EfficientNetLite0 "
                                "or a model of your own")
    if input_tensor is not None:
        raise NotSupportedError(f"{where}(input_tensor=...) is not supported: build the model without it and "
                                "call it on the tensor, x = base_model(inputs, training=False)")
    if name is not None and not isinstance(name, str):
        raise InputError("name", "a string or None", name, where)
    model = build("mobilenet_v2", where, include_top, weights, input_shape, pooling,
                  classes, classifier_activation, applications.MobileNetV2)
    if name is not None:
        model.name = name
    return model


def preprocess_input(x: Any, data_format: str | None = None, size: int | None = None) -> Any:
    """Keras' ``preprocess_input``: 0-255 pixels (channels last, one image or a batch) scaled as the
    weights expect, same shape. pydlr's weights are torchvision's, so the scaling is ImageNet's mean/std
    (``(x / 255 - mean) / std``) where Keras' own weights take ``x / 127.5 - 1``.

    On a symbolic tensor (``preprocess_input(inputs)`` inside a functional model) it adds the same scaling
    as a ``Rescaling`` layer. ``size`` (pydlr's addition) also resizes (shorter side 256 for 224) and
    centre-crops to ``size`` x ``size``, torchvision's evaluation transform.
    """
    if data_format not in (None, "channels_last"):
        raise InputError("data_format", '"channels_last" (pydlr\'s API is channels last)', data_format,
                         "mobilenet_v2.preprocess_input")
    if isinstance(x, SymbolicTensor):
        std = [255.0 * s for s in IMAGENET_STD]
        return Rescaling([1.0 / s for s in std], [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD,
                                                                         strict=True)])(x)
    if size is not None:
        return preprocess(x, size=size, mode="torch")
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    if arr.ndim < 3 or arr.shape[-1] != 3:
        raise InputError("x", "RGB images with 0-255 pixels, channels last: (height, width, 3) or "
                         "(n, height, width, 3)", arr, "mobilenet_v2.preprocess_input")
    check_not_preprocessed(float(arr.min()) if arr.size else 0.0, "x", "mobilenet_v2.preprocess_input")
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    return ((arr / 255.0 - mean) / std).astype(np.float32)
