"""Pretrained models and transfer learning: less data and compute than training from scratch.

``load(name)`` gives an ImageNet network (``"mobilenet_v2"``, ``"efficientnet_lite0/1/2"``) with weights from
an installed package (checksum verified, converted once to a safetensors cache; never downloaded), or one of
pydlr's own trained seed CNNs (``zoo``). ``preprocess`` / ``decode_predictions`` follow each network's
conventions on channels-last arrays; ``embed_images`` gives frozen features (e.g. for k-means or a logistic
regression) and ``fine_tune`` is fastai's recipe: new head, frozen phase, then discriminative learning rates
under a one-cycle schedule. Keras-style constructors live in ``pydlr.applications``.
"""

from pydlr.pretrained.applications import EfficientNetLite, MobileNetV2, ResNet18, load
from pydlr.pretrained.imagenet import class_names, decode_predictions, preprocess
from pydlr.pretrained.registry import REGISTRY, ChecksumError, cache_dir, cache_path, info
from pydlr.pretrained.transfer import embed_images, fine_tune

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "EfficientNetLite",
    "MobileNetV2",
    "ResNet18",
    "cache_dir",
    "cache_path",
    "class_names",
    "decode_predictions",
    "embed_images",
    "fine_tune",
    "info",
    "load",
    "preprocess",
]
