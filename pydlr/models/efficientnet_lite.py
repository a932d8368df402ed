"""EfficientNet-Lite0/1/2 (Tan & Le 2019, the TF-Lite variants) built from pydlr layers.

The Lite variants drop squeeze-and-excitation, use ReLU6 and keep the stem (32 channels) and head (1280)
fixed, so every block is expand 1x1 -> depthwise k x k -> project 1x1, which pydlr's native depthwise and
pointwise kernels serve. Module names follow the efficientnet_pytorch project (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_project_conv`` / ``_bn0-2``, ``_conv_head``,
``_bn1``, ``_fc``), the naming of the published .pth files, so they load with ``strict=True`` key for key.
Convolutions use TensorFlow's "same" padding (an extra pixel after for stride 2), as the weights were
trained with; BatchNormalization has TF's epsilon 1e-3.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.layers import Activation, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Dropout
from pydlr.layers.base import unique_name
from pydlr.layers.fusion import batch_norm_act, batch_norm_act_depthwise
from pydlr.models.torchvision_arch import _Classifier, make_divisible

__all__ = ["EFFICIENTNET_LITE_PARAMS", "EfficientNetLite", "MBConvBlock"]

# variant -> (width coefficient, depth coefficient, native resolution, dropout), efficientnet_lite_builder.py
EFFICIENTNET_LITE_PARAMS: dict[int, tuple[float, float, int, float]] = {
    0: (1.0, 1.0, 224, 0.2),
    1: (1.0, 1.1, 240, 0.2),
    2: (1.1, 1.2, 260, 0.3),
    3: (1.2, 1.4, 280, 0.3),
    4: (1.4, 1.8, 300, 0.3),
}

# (repeats, kernel, stride, expansion, input channels, output channels): EfficientNet-B0's stages
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def _bn() -> BatchNormalization:
    # TF's BatchNormalization(momentum=0.99, epsilon=1e-3): Keras' momentum convention, as pydlr's layer
    return BatchNormalization(momentum=0.99, epsilon=1e-3)


def _pointwise(filters: int) -> Conv2D:
    return Conv2D(filters, 1, use_bias=False, kernel_initializer="kaiming_normal_fan_out")


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excitation: (expand 1x1, BN, ReLU6) -> depthwise, BN, ReLU6 ->
    project 1x1, BN (+ identity when stride 1 and channels equal)."""

    def __init__(self, inp: int, oup: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_residual = stride == 1 and inp == oup
        if expand_ratio != 1:
            self._expand_conv = _pointwise(hidden)
            self._bn0 = _bn()
        else:
            self._expand_conv = None
        self._depthwise_conv = DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False,
            depthwise_initializer="kaiming_normal_fan_out",
        )
        self._bn1 = _bn()
        self._project_conv = _pointwise(oup)
        self._bn2 = _bn()
        self._relu6 = Activation("relu6")

    # (convolution, its BatchNormalization, the activation after them): models.inference folds these
    conv_bn_act = (("_expand_conv", "_bn0", "_relu6"), ("_depthwise_conv", "_bn1", "_relu6"),
                   ("_project_conv", "_bn2", None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._expand_conv is not None:
            # expand BatchNorm + ReLU6 + depthwise as one operator where it applies (never stores the widest tensor)
            y = batch_norm_act_depthwise(self._bn0, self._relu6, self._depthwise_conv, self._expand_conv(x))
        else:
            y = self._depthwise_conv(x)
        y = batch_norm_act(self._bn1, self._relu6, y)
        y = batch_norm_act(self._bn2, None, self._project_conv(y))
        return x + y if self.use_residual else y


def _round_filters(filters: int, width: float) -> int:
    """EfficientNet's channel rounding (multiples of 8, never more than 10% below)."""
    return make_divisible(filters * width, 8) if width != 1.0 else filters


def stage_layout(variant: int) -> list[tuple[int, int, int, int, int, int]]:
    """Per stage (repeats, kernel, stride, expansion, in, out) of Lite``variant``: the first and last
    stages keep their repeats and the stem's 32 channels (the Lite rule), the others scale with depth."""
    width, depth, _, _ = EFFICIENTNET_LITE_PARAMS[variant]
    out = []
    for i, (r, k, s, e, cin, cout) in enumerate(_STAGES):
        fixed = i in (0, len(_STAGES) - 1)
        repeats = r if fixed else int(math.ceil(depth * r))
        cin = 32 if i == 0 else _round_filters(cin, width)
        out.append((repeats, k, s, e, cin, _round_filters(cout, width)))
    return out


class EfficientNetLite(_Classifier):
    """EfficientNet-Lite``variant`` (0-4) with the efficientnet_pytorch module names.

    Parameters
    ----------
    variant : int
        0, 1, 2 (ImageNet weights in the registry) or 3, 4 (architecture only).
    num_classes : int
        Outputs of the classifier ``_fc`` (1000 for ImageNet weights).
    dropout : float, optional
        Dropout before the classifier (default: the variant's, 0.2 or 0.3).
    input_shape : tuple
        Channels-last input shape for summaries (default the variant's native resolution, e.g.
        (224, 224, 3) for Lite0); any height and width >= 32 run.
    include_top, pooling
        As ``MobileNetV2``: the classifier, or the feature map (N, h, w, 1280) / pooled features.
    """

    def __init__(
        self,
        variant: int = 0,
        num_classes: int = 1000,
        dropout: float | None = None,
        input_shape: Any = None,
        include_top: bool = True,
        pooling: str | None = None,
        name: str | None = None,
    ):
        super().__init__(name or unique_name(f"efficientnet_lite{variant}"))
        if isinstance(variant, bool) or variant not in EFFICIENTNET_LITE_PARAMS:
            raise InputError("variant", f"one of {sorted(EFFICIENTNET_LITE_PARAMS)}", variant, self.where)
        _, _, size, default_dropout = EFFICIENTNET_LITE_PARAMS[variant]
        dropout = default_dropout if dropout is None else float(dropout)
        shape = self._check_common(num_classes, input_shape or (size, size, 3), include_top, pooling)
        self.variant = variant
        self.config = {
            "variant": variant,
            "num_classes": num_classes,
            "dropout": dropout,
            "input_shape": list(shape),
            "include_top": self.include_top,
            "pooling": pooling,
            "name": self.name,
        }
        self._conv_stem = Conv2D(32, 3, strides=2, padding="same", use_bias=False,
                                 kernel_initializer="kaiming_normal_fan_out")
        self._bn0 = _bn()
        blocks: list[nn.Module] = []
        for repeats, k, s, e, cin, cout in stage_layout(variant):
            for i in range(repeats):
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self.feature_channels = 1280
        self._conv_head = _pointwise(self.feature_channels)
        self._bn1 = _bn()
        self._relu6 = Activation("relu6")
        if self.include_top:
            self._dropout = Dropout(dropout)
            self._fc = Dense(num_classes)
        self.finish_init(shape, build_size=32)

    head_modules = ("_dropout", "_fc")
    conv_bn_act = (("_conv_stem", "_bn0", "_relu6"), ("_conv_head", "_bn1", "_relu6"))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = batch_norm_act(self._bn0, self._relu6, self._conv_stem(x))
        for block in self._blocks:
            x = block(x)
        return batch_norm_act(self._bn1, self._relu6, self._conv_head(x))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(features))
