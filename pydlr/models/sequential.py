"""Keras' Sequential model on torch: a stack of pydlr layers, built as soon as the input shape is known."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.layers.base import LAYER_CLASSES, Layer, Shape, SymbolicTensor, keras_shape, unique_name
from pydlr.layers.core import InputLayer, _check_shape_tuple
from pydlr.layers.fusion import conv_then_pool
from pydlr.models.base import (
    BaseModel,
    apply_layer,
    class_key,
    layer_output_rows,
    resolve_model_class,
    undo_on_error,
)


class Sequential(BaseModel):
    """A linear stack of layers, Keras' ``Sequential``.

    Parameters
    ----------
    layers : list, optional
        Layers, optionally starting with ``Input(shape)`` (or an ``InputLayer``): a list or any other
        iterable of them, e.g. ``other_model.layers[:5]`` (the same layer objects, weights shared).
    input_shape : tuple, optional
        Shape of one sample without the batch axis, channels last, e.g. ``(28, 28, 1)``; the same as
        starting with ``Input(shape=...)``. When known, the model builds on every ``add``, so shape errors
        (e.g. a kernel larger than its input) surface at once, naming the layer.
    name : str, optional
        Keras' automatic name (``sequential``, ``sequential_1``, ...) when omitted.

    Notes
    -----
    ``forward`` takes channels-last data (N, H, W, C) or (N, features) and returns channels-last outputs;
    when the input shape is (H, W, 1), (N, H, W) batches are accepted as one channel. Weights live in
    ``self.layers`` (state-dict keys ``layers.<index>.<name>``).
    """

    def __init__(
        self,
        layers: list[Any] | None = None,
        input_shape: Any = None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name or unique_name("sequential"))
        self.layers = nn.ModuleList()
        self.input_layer_name: str | None = None
        if input_shape is not None:
            self.input_spec = _check_shape_tuple(input_shape, self.where)
        if layers is not None:
            # any iterable of layers: a list, a tuple, another model's ``layers`` (a ModuleList) or a slice
            # of it (Keras' Sequential(model.layers[:5]), sharing the layer objects and their weights)
            if isinstance(layers, (str, bytes, dict, Layer, BaseModel)) or not isinstance(layers, Iterable):
                raise InputError("layers", "a list of layers", layers, self.where)
            for layer in list(layers):
                self.add(layer)
        if not trainable:
            self.trainable = False

    @property
    def built(self) -> bool:
        return self.input_spec is not None and all(layer.built for layer in self.layers)

    @property
    def output_shape(self) -> Shape | None:
        """Keras' ``output_shape``: (None, ...) of the last layer once built."""
        if not self.layers:
            return self.input_shape
        last = self.layers[-1]  # a nested model records its shape (no batch axis) as nested_output_shape
        shape = last.nested_output_shape if isinstance(last, BaseModel) else last.output_shape
        return None if shape is None else (None, *shape)

    def add(self, layer: Any) -> Sequential:
        """Append a layer (or set the input with ``Input(shape)``); builds it when the input shape is known."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if len(self.layers):
                raise InputError(
                    "layer", "an Input only as the first element", layer.name, self.where
                )
            self.input_spec, self.input_layer_name = layer.shape, layer.name
            return self
        if not isinstance(layer, (Layer, BaseModel)) or layer.multi_input or layer is self:
            raise InputError(
                "layer",
                "a single-input pydlr layer (pydlr.layers.*) or pydlr model",
                layer,
                self.where,
            )
        if any(existing.name == layer.name for existing in self.layers):
            raise InputError(
                "layer", "a layer with a name unique in the model", layer.name, self.where
            )
        previous_spec = self.input_spec
        if (
            not len(self.layers)
            and self.input_spec is None
            and layer.declared_input_shape is not None
        ):
            self.input_spec = _check_shape_tuple(layer.declared_input_shape, layer.where)
        self.layers.append(layer)
        if self.input_spec is not None:
            try:
                self.build()
            except Exception:
                del self.layers[-1]
                self.input_spec = previous_spec
                raise
        return self

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not len(self.layers):
            raise InputError(
                "model", "a model with at least one layer", "an empty model", self.where
            )
        layer = self.layers[-1]
        del self.layers[-1]
        return layer

    def build(self, input_shape: Any = None) -> Sequential:
        """Build every layer for ``input_shape`` (or the declared one), recording output shapes.

        All or nothing: when a layer refuses the shape, the model and its layers are left as they were (an
        unbuilt model stays unbuilt, so the first batch of the right shape still builds it)."""
        with undo_on_error(self):
            if input_shape is not None:
                shape = tuple(input_shape)
                shape = shape[1:] if len(shape) and shape[0] is None else shape
                self.input_spec = _check_shape_tuple(shape, self.where)
            if self.input_spec is None:
                raise InputError(
                    "input_shape",
                    "known before build (pass input_shape or start with Input)",
                    None,
                    self.where,
                )
            shape: Shape = self.input_spec
            for layer in self.layers:
                shape = layer.build_from(shape)
        return self

    def call_internal(self, x: torch.Tensor) -> torch.Tensor:
        layers, i = self.layers, 0
        while i < len(layers):
            # A Conv2D followed by MaxPooling2D may run as one fused native op (None: layer by layer).
            fused = conv_then_pool(layers[i], layers[i + 1], x) if i + 1 < len(layers) else None
            if fused is not None:
                x, i = fused, i + 2
            else:
                x, i = apply_layer(layers[i], x), i + 1
        return x

    def prepare_input(self, x: Any) -> torch.Tensor:
        if self.input_spec is None:  # Keras builds an input-less Sequential from its first batch
            x = super().prepare_input(x)
            self.build(keras_shape(x))
            return x
        return super().prepare_input(x)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """As a layer of another model: build for ``input_shape`` (or check it) and give the output shape."""
        shape = tuple(input_shape)
        if self.input_spec is None:
            self.build(shape)
        self.check_nested_input(shape)
        for layer in self.layers:
            shape = layer.build_from(shape)
        return shape

    def summary_rows(self) -> list[dict[str, Any]]:
        return layer_output_rows(self, list(self.layers))

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_spec) if self.input_spec is not None else None,
            "layers": [layer_config(layer) for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """Recreate the architecture (fresh weights) from ``get_config()``'s result."""
        layers = [layer_from_config(entry) for entry in config.get("layers", [])]
        return cls(layers, input_shape=config.get("input_shape"), name=config.get("name"))


def layer_config(layer: Layer | BaseModel) -> dict[str, Any]:
    """``{"class_name", "config"}`` for a layer; nested models are marked and named by module path."""
    if isinstance(layer, BaseModel):
        return {
            "class_name": class_key(type(layer)),
            "config": layer.get_config(),
            "is_model": True,
        }
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def layer_from_config(entry: dict[str, Any]) -> Layer | BaseModel:
    """A layer from ``{"class_name": ..., "config": {...}}``; only pydlr's registered classes."""
    if isinstance(entry, dict) and entry.get("is_model"):
        return resolve_model_class(str(entry.get("class_name"))).from_config(dict(entry["config"]))
    name = entry.get("class_name") if isinstance(entry, dict) else None
    if name not in LAYER_CLASSES:
        raise InputError("class_name", "a pydlr layer class", name, "layer_from_config")
    return LAYER_CLASSES[name].from_config(dict(entry.get("config", {})))
