"""Pretrained models and transfer learning: less data and compute than training from scratch.

``load("mobilenet_v2")`` gives MobileNetV2 with ImageNet weights from an installed package (checksum
verified, converted once to a safetensors cache; never downloaded). ``preprocess`` / ``decode_predictions``
follow torchvision's ImageNet conventions on channels-last arrays; ``embed`` gives frozen features (e.g. for
a logistic regression) and ``fine_tune`` trains a new head, then the unfrozen network at a lower LR.
"""

from pydlr.pretrained.applications import EfficientNetLite, MobileNetV2, load
from pydlr.pretrained.imagenet import class_names, decode_predictions, preprocess
from pydlr.pretrained.registry import REGISTRY, ChecksumError, cache_dir, cache_path, info
from pydlr.pretrained.transfer import embed, fine_tune

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "EfficientNetLite",
    "MobileNetV2",
    "cache_dir",
    "cache_path",
    "class_names",
    "decode_predictions",
    "embed",
    "fine_tune",
    "info",
    "load",
    "preprocess",
]
