"""Keras' ``keras.applications``: ImageNet networks with offline pretrained weights.

``pydlr.applications.MobileNetV2(weights="imagenet")``, ``EfficientNetLite0/1/2(...)``, each module with the
``preprocess_input`` its weights expect (``pydlr.applications.mobilenet_v2.preprocess_input``,
``pydlr.applications.efficientnet_lite.preprocess_input``) and ``decode_predictions``. Weights come from
installed packages through ``pydlr.pretrained.registry`` (checksum verified, cached as safetensors).
"""

from pydlr.applications import efficientnet_lite, mobilenet_v2
from pydlr.applications.efficientnet_lite import EfficientNetLite0, EfficientNetLite1, EfficientNetLite2
from pydlr.applications.mobilenet_v2 import MobileNetV2

__all__ = [
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "MobileNetV2",
    "efficientnet_lite",
    "mobilenet_v2",
]
