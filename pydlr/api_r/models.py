"""Building models from R: ``Sequential``, layers from the core's registry, ``add``, summaries, weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pydlr.api_r._convert import int_tuple, plain, shape
from pydlr.engine import Sequential as _Sequential
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import LAYER_CLASSES

# Keras' "an int or a tuple of ints" arguments, which R sends as lists.
_TUPLE_ARGS = ("kernel_size", "strides", "pool_size", "dilation_rate", "input_shape")
# Registered classes that are not one-input layers a Sequential model can hold.
_NOT_SEQUENTIAL = ("InputLayer", "Add", "Concatenate", "Lambda")  # Lambda holds Python code


def Sequential(input_shape: Any = None, name: str | None = None) -> Any:  # noqa: N802 (Keras' name)
    """``pydlr.Sequential(input_shape=, name=)``: a new, empty trainable model."""
    return _Sequential(input_shape=shape(input_shape), name=name)


def layer_names() -> list[str]:
    """The layer classes R may build: the core's layer registry (``pydlr.layers``), one-input ones."""
    return sorted(name for name, cls in LAYER_CLASSES.items()
                  if name not in _NOT_SEQUENTIAL and not name.startswith("_")
                  and cls.__module__.startswith("pydlr."))  # not a Python user's own Layer subclass


def layer(class_name: str, config: Mapping[str, Any] | None = None) -> Any:
    """``pydlr.layers.<class_name>(**config)``: a layer from its Keras class name and Keras arguments."""
    return build_layer(class_name, config, layer_names())


def build_layer(class_name: str, config: Mapping[str, Any] | None, allowed: list[str]) -> Any:
    """A layer of one of the ``allowed`` classes from R's arguments (lists for Keras' tuples)."""
    if class_name not in allowed:
        raise NotSupportedError(
            f"layer type {class_name!r} is not in pydlr's supported subset here; pydlr offers: "
            f"{', '.join(allowed)}."
        )
    cfg = {k: v for k, v in dict(config or {}).items() if v is not None}
    for key in _TUPLE_ARGS:
        if isinstance(cfg.get(key), list):
            cfg[key] = int_tuple(cfg[key])
    return LAYER_CLASSES[class_name](**cfg)


def add(model: Any, layer: Any) -> Any:
    """``model.add(layer)`` (a layer, or a model such as a pretrained backbone); returns the model.

    keras3's R verbs take ``input_shape`` on a layer (Keras 2 style); Keras uses it on the first layer only,
    so a later one is an error here rather than silently ignored.
    """
    if getattr(layer, "declared_input_shape", None) is not None and len(model.layers) > 0:
        raise InputError("input_shape", "given only on the first layer of a model",
                         layer.declared_input_shape, where=type(layer).__name__)
    model.add(layer)
    return model


def summary(model: Any) -> str:
    """``model.summary()``: Keras' table (plus weight bytes and saved-file size) as one string."""
    return str(model.summary_string())


def summary_table(model: Any) -> dict[str, list[Any]]:
    """``model.summary_table()`` as columns: layer, type, output_shape (Keras' text), params, trainable."""
    rows = model.summary_table()
    keys = ("layer", "type", "output_shape", "params", "trainable")
    return {key: [plain(row[key]) for row in rows] for key in keys}


def count_params(model: Any) -> int:
    """``model.count_params()``: all parameters, trainable or not."""
    return int(model.count_params())


def model_info(model: Any) -> dict[str, Any]:
    """What R's print method shows: name, class, number of layers, built/compiled state, parameters."""
    built = bool(getattr(model, "built", False))
    spec = getattr(model, "input_spec", None)
    return {
        "name": str(getattr(model, "name", None) or type(model).__name__),
        "class": type(model).__name__,
        "n_layers": len(model.layers),
        "built": built,
        "compiled": bool(getattr(model, "compiled", False)),
        "params": int(model.count_params()) if built else None,
        "input_shape": None if spec is None else [int(v) for v in spec if v is not None] or None,
    }


def get_weights(model: Any) -> list[np.ndarray]:
    """``model.get_weights()``: the weights in Keras' layouts and order, as C-ordered copies."""
    return [np.ascontiguousarray(w) for w in model.get_weights()]
