"""Models: Sequential, the functional Model, and architectures (seed CNN, MobileNetV2, ResNet18)."""

from pydlr.layers.core import Input
from pydlr.models.architectures import seed_cnn
from pydlr.models.base import BaseModel, ModuleTreeModel
from pydlr.models.functional import Model
from pydlr.models.sequential import Sequential
from pydlr.models.torchvision_arch import MobileNetV2, ResNet18, mobilenet_v2, resnet18

__all__ = [
    "BaseModel",
    "Input",
    "MobileNetV2",
    "Model",
    "ModuleTreeModel",
    "ResNet18",
    "Sequential",
    "mobilenet_v2",
    "resnet18",
    "seed_cnn",
]
