"""The keras.applications constructor contract, shared by every network of ``pydlr.applications``."""

from __future__ import annotations

from typing import Any

from torch import nn

from pydlr.errors import InputError
from pydlr.pretrained import applications, registry


def build(
    name: str,
    where: str,
    include_top: bool,
    weights: str | None,
    input_shape: Any,
    pooling: str | None,
    classes: int,
    classifier_activation: str | None,
    random: Any,
) -> nn.Module:
    """Keras' checks, then the registry's weights (``weights="imagenet"``) or ``random(**kwargs)``.

    ``classes`` other than 1000 with ImageNet weights and the top is refused, as Keras does (a 1000-class
    classifier cannot be loaded into another width); without the top ``classes`` is unused.
    """
    spec = registry.spec(name, where)
    if weights not in ("imagenet", None):
        raise InputError("weights", '"imagenet" or None (random initialization)', weights, where)
    if not isinstance(include_top, bool):
        raise InputError("include_top", "True or False", include_top, where)
    if weights == "imagenet" and include_top and classes != spec.num_classes:
        raise InputError("classes", f"{spec.num_classes} with weights='imagenet' and include_top=True "
                         "(use include_top=False and pretrained.fine_tune for other classes)", classes, where)
    shape = tuple(input_shape) if input_shape is not None else (spec.image_size, spec.image_size, 3)
    if weights == "imagenet":
        return applications.load(name, include_top=include_top, pooling=pooling, input_shape=shape,
                                 classifier_activation=classifier_activation)
    return random(num_classes=classes, include_top=include_top, pooling=pooling, input_shape=shape,
                  classifier_activation=classifier_activation)
