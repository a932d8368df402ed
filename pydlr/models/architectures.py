"""Ready-made architectures: the seed CNN (Keras layers), MobileNetV2 and ResNet18 (torchvision keys)."""

from __future__ import annotations

from typing import Any

from pydlr.errors import InputError
from pydlr.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from pydlr.models.sequential import Sequential


def seed_cnn(
    padding: str = "valid",
    head: bool = True,
    input_shape: Any = (28, 28, 1),
    num_classes: int = 10,
    model_class: type[Sequential] = Sequential,
    name: str | None = None,
) -> Sequential:
    """The seed's Keras CNN.

    Conv2D(32, 3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3, relu),
    and with ``head``: Flatten -> Dense(64, relu) -> Dense(num_classes) (logits, no softmax).
    On (28, 28, 1) with "valid" padding: 55,744 parameters without the head, 93,322 with it.

    Parameters
    ----------
    padding : {"valid", "same"}
        Padding of the three convolutions.
    head : bool
        Add the classifier head.
    input_shape : tuple
        One sample's shape, channels last.
    num_classes : int
        Units of the last Dense layer.
    model_class : type
        The Sequential class to build (e.g. ``pydlr.engine.Sequential`` to get compile/fit).
    """
    if not (isinstance(model_class, type) and issubclass(model_class, Sequential)):
        raise InputError(
            "model_class", "a subclass of pydlr.models.Sequential", model_class, "seed_cnn"
        )
    model = model_class([Input(shape=input_shape)], name=name)
    model.add(Conv2D(32, (3, 3), padding=padding, activation="relu"))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), padding=padding, activation="relu"))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), padding=padding, activation="relu"))
    if head:
        model.add(Flatten())
        model.add(Dense(64, activation="relu"))
        model.add(Dense(num_classes))
    return model
