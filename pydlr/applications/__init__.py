"""Keras' ``keras.applications``: ImageNet networks with offline pretrained weights.

``pydlr.applications.MobileNetV2(weights="imagenet")``, ``EfficientNetLite0/1/2(...)``, each module with the
``preprocess_input`` its weights expect (``pydlr.applications.mobilenet_v2.preprocess_input``,
``pydlr.applications.efficientnet_lite.preprocess_input``) and ``decode_predictions``. Weights come from
installed packages through ``pydlr.pretrained.registry`` (checksum verified, cached as safetensors).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr.applications import efficientnet_lite, mobilenet_v2
from pydlr.applications.efficientnet_lite import (
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
)
from pydlr.applications.mobilenet_v2 import MobileNetV2
from pydlr.errors import InputError
from pydlr.pretrained.imagenet import model_mode, preprocess

__all__ = [
    "APPLICATIONS",
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "MobileNetV2",
    "efficientnet_lite",
    "get",
    "mobilenet_v2",
    "preprocess_inputs",
]

APPLICATIONS = {
    "mobilenet_v2": MobileNetV2,
    "efficientnet_lite0": EfficientNetLite0,
    "efficientnet_lite1": EfficientNetLite1,
    "efficientnet_lite2": EfficientNetLite2,
}


def get(name: str) -> Any:
    """The constructor of the network ``name`` (``"mobilenet_v2"``, ``"efficientnet_lite0"``, ...)."""
    if not isinstance(name, str) or name not in APPLICATIONS:
        raise InputError("name", f"one of {sorted(APPLICATIONS)}", name, "applications.get")
    return APPLICATIONS[name]


def preprocess_inputs(model: Any, x: Any) -> np.ndarray:
    """``x`` prepared as ``model``'s weights expect, at the model's input size (Keras 3's
    ``keras.applications`` preprocessing chosen by the model): EfficientNet-Lite gets TF-Lite's scaling,
    other networks torchvision's ImageNet mean/std."""
    from pydlr.models import BaseModel

    where = "applications.preprocess_inputs"
    shape = getattr(model, "declared_input_shape", None) if isinstance(model, BaseModel) else None
    if shape is None or len(shape) != 3:
        raise InputError("model", "an application model (e.g. applications.MobileNetV2())", model, where)
    try:
        return preprocess(x, size=int(shape[0]), mode=model_mode(model) or "torch")
    except InputError as exc:  # said of this function's own x, not of preprocess's images
        argument = "x" if exc.argument == "images" else exc.argument
        raise InputError(argument, exc.expected, exc.received, where) from None
