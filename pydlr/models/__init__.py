"""Models: Sequential, the functional Model, and architectures (seed CNN, MobileNetV2, ResNet18)."""

from pydlr.layers.core import Input
from pydlr.models.architectures import seed_cnn
from pydlr.models.base import BaseModel
from pydlr.models.sequential import Sequential

__all__ = ["BaseModel", "Input", "Sequential", "seed_cnn"]
