"""MobileNetV2 and ResNet18 built from pydlr layers, with torchvision's module tree and state-dict keys.

Real torchvision weight files (e.g. ``mobilenet_v2-b0353104.pth`` converted to safetensors) load with
``load_state_dict(strict=True)`` / ``io.load_weights``. BatchNormalization uses torch's settings
(momentum 0.9 in Keras terms = torch's 0.1, epsilon 1e-5) and convolutions torch's symmetric padding, so
outputs match torchvision's for the same weights. Inputs are channels-last (N, 224, 224, 3).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    MaxPooling2D,
)
from pydlr.layers.base import Shape, positive_int, to_public, unique_name
from pydlr.layers.fusion import (
    BatchNormActSequential,
    batch_norm_act,
    batch_norm_act_depthwise,
    hooked,
)
from pydlr.models.base import ModuleTreeModel


def _bn() -> BatchNormalization:
    return BatchNormalization(momentum=0.9, epsilon=1e-5)


def _conv(filters: int, kernel: int, stride: int = 1, padding: int | None = None) -> Conv2D:
    pad = (kernel - 1) // 2 if padding is None else padding
    return Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=pad,
        use_bias=False,
        kernel_initializer="kaiming_normal_fan_out",
    )


def _conv_bn_act(
    filters: int, kernel: int = 3, stride: int = 1, depthwise: bool = False
) -> nn.Sequential:
    """torchvision's Conv2dNormActivation(..., activation_layer=ReLU6): keys 0 (conv), 1 (bn); BN and ReLU6 fused in
    training (``BatchNormActSequential``)."""
    conv = (
        DepthwiseConv2D(
            kernel,
            strides=stride,
            padding=(kernel - 1) // 2,
            use_bias=False,
            depthwise_initializer="kaiming_normal_fan_out",
        )
        if depthwise
        else _conv(filters, kernel, stride)
    )
    return BatchNormActSequential(conv, _bn(), Activation("relu6"))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding for width multipliers."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class InvertedResidual(nn.Module):
    """MobileNetV2's block: (expand 1x1) -> depthwise 3x3 -> project 1x1 (+ identity when shapes allow)."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        blocks: list[nn.Module] = []
        if expand_ratio != 1:
            blocks.append(_conv_bn_act(hidden, 1))
        blocks += [_conv_bn_act(hidden, 3, stride, depthwise=True), _conv(oup, 1), _bn()]
        self.conv = BatchNormActSequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._expanded(x)
        if y is None:
            y = self.conv(x)
        return x + y if self.use_res_connect else y

    def _expanded(self, x: torch.Tensor) -> torch.Tensor | None:
        """The branch with the expand BatchNorm + ReLU6 and the depthwise convolution as one operator where it
        applies (``fusion.batch_norm_act_depthwise``), or None when it must run module by module (hooks)."""
        if len(self.conv) != 4 or hooked(self.conv, *self.conv[:2]):
            return None
        expand, depthwise, project, project_bn = self.conv
        z = batch_norm_act_depthwise(expand[1], expand[2], depthwise[0], expand[0](x))
        y = batch_norm_act(depthwise[1], depthwise[2], z)
        return batch_norm_act(project_bn, None, project(y))


# (expansion t, channels c, repeats n, first stride s), torchvision's table
MOBILENET_V2_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class _Classifier(ModuleTreeModel):
    """Shared by the torchvision-style classifiers: Keras applications' include_top / pooling."""

    def _check_common(
        self, num_classes: int, input_shape: Any, include_top: bool, pooling: str | None
    ) -> tuple[int, ...]:
        positive_int(num_classes, "num_classes", self.where)
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[-1] != 3 or min(shape[:2]) < 32:
            raise InputError(
                "input_shape",
                "(height, width, 3) with height, width >= 32",
                input_shape,
                self.where,
            )
        if pooling not in (None, "avg", "max"):
            raise InputError("pooling", 'None, "avg" or "max"', pooling, self.where)
        self.include_top, self.pooling = bool(include_top), pooling
        return shape

    feature_channels: int  # channels of the last feature map (the pooled features' width)

    @property
    def output_shape(self) -> Shape | None:
        """Keras' ``output_shape`` where the configuration fixes it: (None, classes) with the top,
        (None, channels) when pooled; None for the feature map, whose size follows the input's."""
        if self.include_top:
            return (None, int(self.config["num_classes"]))
        return (None, self.feature_channels) if self.pooling is not None else None

    head_modules: tuple[str, ...] = ()  # the classifier's submodules, removed by drop_top

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map (internal layout)."""
        raise NotImplementedError

    def drop_top(self) -> None:
        """Remove the classifier in place: the model then returns its feature map (include_top=False)."""
        for name in self.head_modules:
            if hasattr(self, name):
                delattr(self, name)
        self.include_top = False
        self.config["include_top"] = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled features (N, channels) from internal input."""
        return self.feature_map(x).mean(dim=(2, 3))

    def embed(self, x: Any) -> torch.Tensor:
        """Pooled features before the classifier (N, features) for channels-last images (N, H, W, 3)."""
        return to_public(self.forward_features(self.prepare_input(x)))

    def call_internal(self, x: torch.Tensor) -> torch.Tensor:
        if self.include_top:
            return self.head(self.forward_features(x))
        fmap = self.feature_map(x)
        if self.pooling == "avg":
            return fmap.mean(dim=(2, 3))
        if self.pooling == "max":
            return fmap.amax(dim=(2, 3))
        return fmap

    def get_config(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Classifier:
        return cls(**config)


class MobileNetV2(_Classifier):
    """MobileNetV2 (Sandler et al. 2018) with torchvision's module names (``features.*``, ``classifier.1``).

    Parameters
    ----------
    num_classes : int
        Outputs of the classifier (1000 for ImageNet weights).
    width_mult : float
        Channel multiplier.
    dropout : float
        Dropout before the classifier (torchvision: 0.2).
    input_shape : tuple
        Channels-last input shape for summaries (default (224, 224, 3)); any height and width >= 32 run.
    include_top : bool
        Keep the classifier (``classifier.1``); without it the model returns the feature map
        (N, h, w, 1280), or pooled features with ``pooling``.
    pooling : {None, "avg", "max"}
        Global pooling of the feature map when ``include_top=False`` (Keras applications' argument).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        input_shape: Any = (224, 224, 3),
        include_top: bool = True,
        pooling: str | None = None,
        name: str | None = None,
    ):
        super().__init__(name or unique_name("mobilenet_v2"))
        shape = self._check_common(num_classes, input_shape, include_top, pooling)
        self.config = {
            "num_classes": num_classes,
            "width_mult": width_mult,
            "dropout": dropout,
            "input_shape": list(shape),
            "include_top": self.include_top,
            "pooling": pooling,
            "name": self.name,
        }
        channels = make_divisible(32 * width_mult)
        self.last_channel = self.feature_channels = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [_conv_bn_act(channels, 3, 2)]
        for t, c, n, s in MOBILENET_V2_SETTING:
            out = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        features.append(_conv_bn_act(self.last_channel, 1))
        self.features = nn.Sequential(*features)
        if self.include_top:
            self.classifier = nn.Sequential(Dropout(dropout), Dense(num_classes))
        self.finish_init(shape, build_size=32)

    head_modules = ("classifier",)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


class BasicBlock(nn.Module):
    """ResNet's basic block with torchvision's names: conv1, bn1, conv2, bn2, downsample.{0,1}."""

    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = _conv(planes, 3, stride)
        self.bn1 = _bn()
        self.relu = Activation("relu")
        self.conv2 = _conv(planes, 3)
        self.bn2 = _bn()
        self.downsample = (
            nn.Sequential(_conv(planes, 1, stride, padding=0), _bn())
            if stride != 1 or inplanes != planes
            else None
        )

    # models.inference folds these; the ReLU stays apart (its second use follows the residual addition)
    conv_bn_act = (("conv1", "bn1", None), ("conv2", "bn2", None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(_Classifier):
    """ResNet-18 (He et al. 2016) with torchvision's module names (conv1, bn1, layer1-4, fc).

    Parameters as ``MobileNetV2`` (no width multiplier or dropout); the feature map has 512 channels.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        input_shape: Any = (224, 224, 3),
        include_top: bool = True,
        pooling: str | None = None,
        name: str | None = None,
    ):
        super().__init__(name or unique_name("resnet18"))
        shape = self._check_common(num_classes, input_shape, include_top, pooling)
        self.config = {
            "num_classes": num_classes,
            "input_shape": list(shape),
            "include_top": self.include_top,
            "pooling": pooling,
            "name": self.name,
        }
        self.conv1 = _conv(64, 7, 2, padding=3)
        self.bn1 = _bn()
        self.relu = Activation("relu")
        self.maxpool = MaxPooling2D(3, strides=2, padding=1)
        inplanes = 64
        for index, (planes, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
            blocks = nn.Sequential(
                BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1)
            )
            self.add_module(f"layer{index}", blocks)
            inplanes = planes
        self.feature_channels = 512
        if self.include_top:
            self.fc = Dense(num_classes)
        self.finish_init(shape, build_size=32)

    head_modules = ("fc",)
    # models.inference folds the stem's BN into its convolution and fuses the ReLU (used only there)
    conv_bn_act = (("conv1", "bn1", "relu"),)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


def mobilenet_v2(num_classes: int = 1000, **kwargs: Any) -> MobileNetV2:
    """A MobileNetV2 with random weights and torchvision's state-dict keys."""
    return MobileNetV2(num_classes=num_classes, **kwargs)


def resnet18(num_classes: int = 1000, **kwargs: Any) -> ResNet18:
    """A ResNet18 with random weights and torchvision's state-dict keys."""
    return ResNet18(num_classes=num_classes, **kwargs)
