"""Keras-applications-style models with pretrained weights: ``load("mobilenet_v2")``.

The architectures are pydlr.models' (torchvision key names); here they get the engine's
compile/fit/evaluate/predict and Keras' ``classifier_activation`` ("softmax": ``predict`` returns
probabilities, as ``keras.applications``), and are filled with the registry's weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pydlr import models
from pydlr.engine import TrainingMixin
from pydlr.errors import InputError
from pydlr.layers.base import Layer
from pydlr.models.efficientnet_lite import EfficientNetLite as _EfficientNetLite
from pydlr.models.inference import FoldedInference
from pydlr.pretrained import registry

__all__ = ["EfficientNetLite", "MobileNetV2", "ResNet18", "load"]


class _Application(FoldedInference):
    """Mixin: optional softmax on the classifier, ``layers`` (for the R API), config round trip, and
    ``predict`` on the folded inference copy (``FoldedInference``)."""

    classifier_activation: str | None = None  # set after the parent's build pass

    def _set_activation(self, activation: str | None) -> None:
        if activation not in (None, "softmax"):
            raise InputError("classifier_activation", '"softmax" or None', activation, self.where)
        self.classifier_activation = activation
        self.config["classifier_activation"] = activation

    def call_internal(self, x: torch.Tensor) -> torch.Tensor:
        out = super().call_internal(x)
        if self.include_top and self.classifier_activation == "softmax":
            return torch.softmax(out, dim=-1)
        return out

    def get_config(self) -> dict[str, Any]:
        """The architecture's config plus the module paths of frozen layers (restored on load, so a
        saved optimizer state matches the trainable weights again)."""
        config = dict(self.config)
        config["frozen"] = [path for path, m in self.named_modules()
                            if isinstance(m, Layer) and not m.trainable]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> nn.Module:
        config = dict(config)
        frozen = set(config.pop("frozen", []))
        model = cls(**config)
        for path, m in model.named_modules():
            if path in frozen:
                m.trainable = False
        return model

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """ImageNet's class names for a model with its 1000-class top (plots name the classes), else None."""
        if not self.include_top or self.config.get("num_classes") != 1000:
            return None
        from pydlr.pretrained.imagenet import class_names

        return class_names()

    @property
    def layers(self) -> list[nn.Module]:
        """The pydlr layers in module order (Keras' ``model.layers``, flattened)."""
        return [m for m in self.modules() if isinstance(m, Layer)]


class MobileNetV2(_Application, TrainingMixin, models.MobileNetV2):
    """MobileNetV2 with Keras' training API and ``classifier_activation`` (default "softmax")."""

    def __init__(self, *args: Any, classifier_activation: str | None = "softmax", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._set_activation(classifier_activation)


class EfficientNetLite(_Application, TrainingMixin, _EfficientNetLite):
    """EfficientNet-Lite0/1/2 with Keras' training API and ``classifier_activation`` (default "softmax")."""

    def __init__(self, *args: Any, classifier_activation: str | None = "softmax", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._set_activation(classifier_activation)


class ResNet18(_Application, TrainingMixin, models.ResNet18):
    """ResNet-18 with Keras' training API and ``classifier_activation`` (default "softmax"); random
    weights (no ResNet weights are shipped)."""

    def __init__(self, *args: Any, classifier_activation: str | None = "softmax", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._set_activation(classifier_activation)

    @property
    def class_names(self) -> None:
        """None: a 1000-class top here is not ImageNet's (the weights are random)."""
        return None


def _efficientnet_lite(variant: int) -> Any:
    def build(**kwargs: Any) -> EfficientNetLite:
        return EfficientNetLite(variant, **kwargs)

    return build


ARCHITECTURES: dict[str, Any] = {
    "mobilenet_v2": MobileNetV2,
    **{f"efficientnet_lite{v}": _efficientnet_lite(v) for v in (0, 1, 2)},
}


def load(
    name: str = "mobilenet_v2",
    include_top: bool = True,
    pooling: str | None = None,
    input_shape: Any = None,
    classifier_activation: str | None = "softmax",
    trainable: bool = True,
) -> nn.Module:
    """A model with pretrained weights (never downloaded; see `registry`).

    Parameters
    ----------
    name : str
        Registry key: ``"mobilenet_v2"``, ``"efficientnet_lite0"``, ``"efficientnet_lite1"`` or
        ``"efficientnet_lite2"`` (ImageNet-1k; ``registry.REGISTRY`` lists them), or pydlr's own
        ``"seed_cnn_fashion_mnist"`` / ``"seed_cnn_mnist"`` (``zoo.ZOO``; the other arguments then
        do not apply: the trained seed CNN with its head comes back as shipped).
    include_top : bool
        Keep the 1000-class classifier; without it the model returns the feature map
        (N, h, w, 1280), or pooled features with ``pooling``.
    pooling : {None, "avg", "max"}
        Global pooling when ``include_top=False``.
    input_shape : tuple, optional
        Channels-last shape for summaries and enclosing models (default the weights' resolution, e.g.
        (224, 224, 3)), e.g. (96, 96, 3) for fine-tuning small images; the network accepts any size >= 32
        (weights do not depend on it).
    classifier_activation : {"softmax", None}
        "softmax": outputs are probabilities (Keras' default); None: logits.
    trainable : bool
        False freezes every weight (BatchNormalization then runs in inference mode).

    Returns
    -------
    MobileNetV2 or EfficientNetLite
        In inference mode (``eval()``), with compile/fit/predict; ``model.pretrained_name`` is ``name``.
    """
    from pydlr.pretrained import zoo

    if isinstance(name, str) and name in zoo.ZOO:
        return zoo.load(name)
    spec = registry.spec(name, "pretrained.load")
    if not isinstance(include_top, bool):
        raise InputError("include_top", "True or False", include_top, "pretrained.load")
    model = ARCHITECTURES[name](
        num_classes=spec.num_classes,
        include_top=include_top,
        pooling=pooling,
        input_shape=input_shape or (spec.image_size, spec.image_size, 3),
        classifier_activation=classifier_activation,
    )
    state = registry.state_dict(name)
    if not include_top:
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(state, strict=True)
    model.trainable = bool(trainable)
    model.pretrained_name = name
    return model.eval()
