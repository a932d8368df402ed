"""A model's layers from R: keras3's ``model$layers``, ``get_layer()``, ``freeze_weights()`` and
``unfreeze_weights()`` (Python: ``model.layers``, ``model.get_layer(name, index)``, ``layer.trainable``)."""

from __future__ import annotations

from typing import Any

from pydlr.errors import InputError


def layer_info(layer: Any) -> dict[str, Any]:
    """Name, Keras class, trainable flag and weight count of one layer (or nested model)."""
    return {"name": str(layer.name), "class": type(layer).__name__, "trainable": bool(layer.trainable),
            "params": int(layer.count_params())}


def count_layers(model: Any) -> int:
    """``len(model.layers)`` (R builds ``model$layers`` from ``get_layer`` by index)."""
    return len(model.layers)


def get_layer(model: Any, name: str | None = None, index: int | None = None) -> Any:
    """``model.get_layer(name=, index=)`` (``index`` 0-based; R sends its 1-based position minus one)."""
    if name is None and index is None:
        raise InputError("name", "a layer name, or an index", None, "get_layer")
    return model.get_layer(name=name, index=index)


def _position(model: Any, ref: Any, argument: str) -> int:
    """A layer's position from its name or its 0-based (negative: from the end) index."""
    items = list(model.layers)
    if isinstance(ref, str):
        for i, layer in enumerate(items):
            if layer.name == ref:
                return i
        raise InputError(argument, "the name of one of the model's layers", ref, "freeze_weights")
    if not -len(items) <= ref < len(items):
        raise InputError(argument, f"a layer position within the model's {len(items)} layers", ref,
                         "freeze_weights")
    return ref % len(items)


def set_trainable(model: Any, trainable: bool, from_: Any = None, to: Any = None, whole: bool = False) -> Any:
    """keras3's rule: ``whole``: the model's ``trainable``; else the model becomes trainable, the layers from
    ``from_`` to ``to`` (inclusive; None: the first / the last) get ``trainable``, the others its opposite."""
    if whole:
        model.trainable = bool(trainable)
        return model
    model.trainable = True
    items = list(model.layers)
    start = 0 if from_ is None else _position(model, from_, "from")
    stop = len(items) - 1 if to is None else _position(model, to, "to")
    for i, layer in enumerate(items):
        layer.trainable = bool(trainable) if start <= i <= stop else not trainable
    return model


def set_layer_trainable(layer: Any, trainable: bool) -> Any:
    """``layer.trainable = trainable``."""
    layer.trainable = bool(trainable)
    return layer
