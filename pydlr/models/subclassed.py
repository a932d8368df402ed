"""Keras' model subclassing: layers made in ``__init__``, the computation written in ``call()``.

::

    class MyModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense1 = keras.layers.Dense(32, activation="relu")
            self.dense2 = keras.layers.Dense(10, activation="softmax")

        def call(self, inputs, training=False):
            return self.dense2(self.dense1(inputs))

``call()`` sees Keras' layout (channels last) and pydlr's layers take it there (`keras_layout`); the
layers build on the first call, which compile/fit/predict make on the data's shape. ``training`` is passed
when ``call`` takes it. The architecture is Python code, which pydlr's files do not hold: such a model saves
its weights (``save_weights``), not a whole-model file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import (
    Layer,
    Shape,
    TensorList,
    keras_layout,
    takes_training,
    to_internal_all,
    to_public_all,
)
from pydlr.models.base import BaseModel, layer_output_rows
from pydlr.models.modes import evaluating

__all__ = ["SubclassedModel", "SUBCLASS_METHODS"]


class SubclassedModel:
    """The methods a subclass of ``Model`` that defines ``call()`` runs with (set on the class by
    ``Model.__init_subclass__``, so functional models keep theirs)."""

    call: Any

    @property
    def layers(self) -> list[Any]:
        """Keras' ``model.layers`` of a subclassed model: the layers and models it holds, in order made."""
        found: list[Any] = []

        def walk(module: torch.nn.Module) -> None:
            for child in module.children():
                if isinstance(child, (Layer, BaseModel)):
                    found.append(child)
                else:
                    walk(child)

        walk(self)
        return found

    def _as_tensor(self, x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return TensorList(self._as_tensor(v) for v in x)
        if isinstance(x, dict):
            return {k: self._as_tensor(v) for k, v in x.items()}
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise InputError("x", "a torch tensor or NumPy array", x, self.where)
        ref = next(iter(self.parameters()), None)
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        return x.to(device=ref.device if ref is not None else x.device, dtype=dtype)

    def run_public(self, x: Any) -> Any:
        kwargs = {"training": self.training} if takes_training(type(self).call) else {}
        with keras_layout():
            out = self.call(self._as_tensor(x), **kwargs)
        return TensorList(out) if isinstance(out, (list, tuple)) else out

    def call_internal(self, x: Any) -> Any:
        return to_internal_all(self.run_public(to_public_all(x)))

    def compute_output_shape(self, input_shape: Shape) -> Any:
        """The output shape (no batch axis) from one call on a zero batch; builds the layers."""
        with evaluating(self), torch.no_grad():
            out = self.run_public(_zeros(input_shape, self))
        shapes = [tuple(int(d) for d in o.shape[1:]) for o in out] if isinstance(out, list) else \
            tuple(int(d) for d in out.shape[1:])
        self._subclass_shapes = (_shape_key(input_shape), shapes)
        return shapes

    def build(self, input_shape: Any) -> None:
        """Keras' ``model.build((None, ...))``: create the weights for inputs of this shape."""
        shape = list(input_shape) if isinstance(input_shape, list) else [input_shape]
        shape = [tuple(s)[1:] if len(s) and s[0] is None else tuple(s) for s in shape]
        self.compute_output_shape(shape if isinstance(input_shape, list) else shape[0])

    @property
    def output_shape(self) -> Any:
        known = getattr(self, "_subclass_shapes", None)
        if known is None:
            return None
        shapes = known[1]
        return [(None, *s) for s in shapes] if isinstance(shapes, list) else (None, *shapes)

    @property
    def connected_summary(self) -> bool:
        return False

    def summary_rows(self) -> list[dict[str, Any]]:
        return layer_output_rows(self, self.layers)

    def get_config(self) -> dict[str, Any]:
        raise NotSupportedError(
            f"{self.where}: a subclassed model's architecture is its Python code, which pydlr does not write "
            "to files (JSON and safetensors only). Save the weights with model.save_weights(path) and load "
            "them into a new instance with model.load_weights(path) after one call (or model.build(shape)).")


SUBCLASS_METHODS = ("layers", "run_public", "call_internal", "compute_output_shape", "build", "output_shape",
                    "connected_summary", "summary_rows", "get_config", "_as_tensor")


def _zeros(input_shape: Any, model: torch.nn.Module) -> Any:
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else None
    if isinstance(input_shape, list):
        return [torch.zeros((2, *s), device=device) for s in input_shape]
    return torch.zeros((2, *input_shape), device=device)


def _shape_key(input_shape: Any) -> Any:
    return [tuple(s) for s in input_shape] if isinstance(input_shape, list) else tuple(input_shape)
