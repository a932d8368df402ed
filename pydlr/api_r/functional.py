"""Keras' functional API from R: ``Input``, layers called on symbolic tensors, ``Model(inputs, outputs)``,
and the architectures the core builds (the seed CNN, ResNet-18)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydlr import models
from pydlr.api_r._convert import shape
from pydlr.api_r.models import build_layer
from pydlr.engine import Model as _Model
from pydlr.engine import Sequential as _Sequential
from pydlr.layers import Activation
from pydlr.layers import Input as _Input
from pydlr.layers.base import LAYER_CLASSES, SymbolicTensor


def Input(shape_: Any = None, name: str | None = None, batch_size: int | None = None) -> Any:  # noqa: N802
    """``pydlr.layers.Input(shape, batch_size, name)``: a symbolic tensor to start a functional model."""
    return _Input(shape=shape(shape_), batch_size=batch_size, name=name)


# Every registered layer but the input layer, multi-input ones (Add, Concatenate) included.
def functional_layer_names() -> list[str]:
    return sorted(n for n in LAYER_CLASSES if n != "InputLayer" and not n.startswith("_"))


def call_layer(class_name: str, config: Mapping[str, Any] | None, inputs: Any) -> Any:
    """``pydlr.layers.<class_name>(**config)(inputs)``: the layer called on a symbolic tensor (a list of
    them for Add/Concatenate); returns the output tensor."""
    layer = build_layer(class_name, config, functional_layer_names())
    return layer(list(inputs) if isinstance(inputs, (list, tuple)) else inputs)


def call_model(model: Any, inputs: Any) -> Any:
    """``model(inputs)``: a model (e.g. a pretrained backbone) used as a layer of a functional model."""
    return model(inputs)


def Model(inputs: Any, outputs: Any, name: str | None = None) -> Any:  # noqa: N802 (Keras' name)
    """``pydlr.Model(inputs, outputs, name)``: the functional model, with compile/fit."""
    return _Model(inputs, outputs, name=name)


def tensor_info(t: SymbolicTensor) -> dict[str, Any]:
    """What R's print method shows of a symbolic tensor: its Keras shape and the layer that made it."""
    return {"shape": [None if d is None else int(d) for d in t.shape], "layer": t.layer.name}


def seed_cnn(padding: str = "valid", head: bool = True, input_shape: Any = None, num_classes: int = 10,
             name: str | None = None, classifier_activation: str | None = "softmax") -> Any:
    """``pydlr.models.seed_cnn(...)`` as a trainable ``pydlr.Sequential``; with a head and
    ``classifier_activation="softmax"`` a softmax follows the logits (R compiles losses by name, which
    expect probabilities, as Keras' applications)."""
    model = models.seed_cnn(padding=padding, head=head, input_shape=shape(input_shape) or (28, 28, 1),
                            num_classes=num_classes, model_class=_Sequential, name=name)
    if head and classifier_activation == "softmax":
        model.add(Activation("softmax"))
    return model


def ResNet18(num_classes: int = 1000, include_top: bool = True,  # noqa: N802 (the Python class)
             pooling: str | None = None, input_shape: Any = None,
             classifier_activation: str | None = "softmax") -> Any:
    """``pydlr.pretrained.ResNet18`` with random weights (pydlr ships no ResNet weights)."""
    from pydlr.pretrained.applications import ResNet18 as _ResNet18

    return _ResNet18(num_classes=num_classes, include_top=include_top, pooling=pooling,
                     input_shape=shape(input_shape) or (224, 224, 3),
                     classifier_activation=classifier_activation)
