"""Keras' functional API: ``Model(inputs, outputs)`` over a graph of layer calls (branches, residuals)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.layers.base import (
    Layer,
    Node,
    SymbolicTensor,
    TensorList,
    to_public,
    to_snake_case,
    training_mode,
    unique_name,
)
from pydlr.layers.core import InputLayer
from pydlr.models.base import BaseModel, apply_layer
from pydlr.models.sequential import layer_config, layer_from_config
from pydlr.models.subclassed import SUBCLASS_METHODS, SubclassedModel


def _as_list(value: Any, argument: str, where: str) -> list[SymbolicTensor]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise InputError(
            argument, "a symbolic tensor from Input()/a layer call, or a list of them", value, where
        )
    return items


class Model(BaseModel):
    """A model defined by calling layers on symbolic tensors, Keras' functional ``Model``.

    Examples
    --------
    >>> inputs = Input(shape=(32, 32, 16))
    >>> x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    >>> outputs = Add()([inputs, x])
    >>> model = Model(inputs, outputs)

    ``model.layers`` lists the layers in execution order, input layers first (as Keras); state-dict keys
    are ``layers.<index>.<name>``. Several inputs/outputs are given as lists; the model then takes and
    returns lists.
    """

    @property
    def connected_summary(self) -> bool:  # type: ignore[override]
        """Keras adds the "Connected to" column unless the graph is a plain chain."""
        chain = all(
            len(node.inputs) == (0 if i == 0 else 1)
            and (i == 0 or node.inputs[0] is self.nodes[i - 1].output)
            for i, node in enumerate(self.nodes)
        )
        return not chain or len({id(n.layer) for n in self.nodes}) != len(self.nodes)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "call" in cls.__dict__:  # Keras' model subclassing: see pydlr.models.subclassed
            cls.subclassed = True
            for name in SUBCLASS_METHODS:
                setattr(cls, name, SubclassedModel.__dict__[name])

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None,
                 trainable: bool = True):
        if inputs is None and outputs is None and self.subclassed:
            super().__init__(name or unique_name(to_snake_case(type(self).__name__)))
            self._multi_in = self._multi_out = False
            return
        super().__init__(name or unique_name("functional"))
        where = self.where
        if inputs is None or outputs is None:
            raise InputError("inputs, outputs", "the Input tensors and the output tensors of a functional "
                             "model, or a subclass of Model that defines call()", (inputs, outputs), where)
        self._multi_in = isinstance(inputs, (list, tuple))
        self._multi_out = isinstance(outputs, (list, tuple))
        self.inputs = _as_list(inputs, "inputs", where)
        self.outputs = _as_list(outputs, "outputs", where)
        for t in self.inputs:
            if not isinstance(t.layer, InputLayer):
                raise InputError("inputs", "tensors returned by Input()", t, where)
        self.nodes = self._topological_nodes()
        ordered: list[Layer] = []
        for node in self.nodes:
            if all(node.layer is not layer for layer in ordered):
                ordered.append(node.layer)
        names = [layer.name for layer in ordered]
        if len(set(names)) != len(names):
            raise InputError("layers", "layers with unique names", names, where)
        self.layers = nn.ModuleList(ordered)
        self.input_spec = self.inputs[0].shape[1:] if len(self.inputs) == 1 else None
        if not trainable:
            self.trainable = False

    @property
    def input_names(self) -> list[str]:
        """The names of the ``Input`` layers, in order (the keys of a dict of inputs)."""
        return [t.layer.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Keras' ``output_names``: the layers that produce the outputs, in order (the keys of dicts of
        targets, losses, loss weights and metrics, and the prefixes of the history's per-output entries)."""
        return [t.layer.name for t in self.outputs]

    @property
    def output_shape(self) -> Any:
        """Keras' ``output_shape`` (a list for several outputs)."""
        shapes = [t.shape for t in self.outputs]
        return shapes if self._multi_out else shapes[0]

    def _topological_nodes(self) -> list[Node]:
        order: list[Node] = []
        state: dict[int, str] = {}
        inputs = {id(t.node) for t in self.inputs}

        def visit(node: Node) -> None:
            if state.get(id(node)) == "done":
                return
            if id(node) not in inputs and isinstance(node.layer, InputLayer):
                raise InputError(
                    "inputs",
                    f"every Input the outputs depend on (missing '{node.layer.name}')",
                    [t.layer.name for t in self.inputs],
                    self.where,
                )
            state[id(node)] = "visiting"
            for t in node.inputs:
                visit(t.node)
            state[id(node)] = "done"
            order.append(node)

        for t in self.inputs:
            visit(t.node)
        for t in self.outputs:
            visit(t.node)
        return order

    # ---- running --------------------------------------------------------------------------------
    def run_public(self, x: Any) -> Any:
        """Run on channels-last data; a list of arrays for several inputs, a list back for several outputs."""
        # a model built on [one_input] (e.g. Model(other.inputs, ...)) takes the bare array too, as Keras'
        xs = list(x) if self._multi_in and isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self.inputs):
            raise InputError("x", f"{len(self.inputs)} input arrays", f"{len(xs)}", self.where)
        prepared = []
        try:
            for value, spec in zip(xs, self.inputs, strict=True):
                self.input_spec = spec.shape[1:]
                prepared.append(self.prepare_input(value))
        finally:  # also when an input is refused: input_spec is the model's, not the last input's
            self.input_spec = self.inputs[0].shape[1:] if len(self.inputs) == 1 else None
        outs = self.run_graph(prepared)
        outs = TensorList(to_public(o) for o in outs)
        return outs if self._multi_out else outs[0]

    def call_internal(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_graph([x])[0]

    def run_graph(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Evaluate the graph on internal tensors."""
        values: dict[int, torch.Tensor] = {id(t): v for t, v in zip(self.inputs, xs, strict=True)}
        for node in self.nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args = [values[id(t)] for t in node.inputs]
            x = args if node.layer.multi_input else args[0]
            if node.training is None:
                values[id(node.output)] = apply_layer(node.layer, x)
                continue
            # a call-time `training` (base(x, training=False)) wins over the model's mode, as in Keras
            with training_mode(node.layer, node.training):
                values[id(node.output)] = apply_layer(node.layer, x)
        return [values[id(t)] for t in self.outputs]

    # ---- description ----------------------------------------------------------------------------
    def _model_node_index(self, node: Node) -> int:
        return [n for n in self.nodes if n.layer is node.layer].index(node)

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per layer, as Keras: a shared layer lists the inputs of all its calls."""
        rows: dict[int, dict[str, Any]] = {}
        for node in self.nodes:
            layer = node.layer
            inputs = [f"{t.layer.name}[{self._model_node_index(t.node)}][0]" for t in node.inputs]
            if id(layer) in rows:
                rows[id(layer)]["inputs"] += inputs
                continue
            rows[id(layer)] = {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": node.output.shape[1:],
                "params": layer.count_params(),
                "trainable": layer.trainable,
                "built": True,
                "inputs": inputs,
            }
        for row in rows.values():
            row["connected_to"] = ", ".join(row.pop("inputs")) or "-"
        return list(rows.values())

    def get_config(self) -> dict[str, Any]:
        def ref(t: SymbolicTensor) -> list[Any]:
            return [t.layer.name, self._model_node_index(t.node)]

        return {
            "name": self.name,
            "layers": [layer_config(layer) for layer in self.layers],
            "nodes": [
                {
                    "layer": n.layer.name,
                    "inputs": [ref(t) for t in n.inputs],
                    **({} if n.training is None else {"training": n.training}),
                }
                for n in self.nodes
                if not isinstance(n.layer, InputLayer)
            ],
            "input_layers": [ref(t) for t in self.inputs],
            "output_layers": [ref(t) for t in self.outputs],
            "multi_input": self._multi_in,
            "multi_output": self._multi_out,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        """Recreate the graph (fresh weights) from ``get_config()``'s result."""
        by_name = {}
        outputs: dict[tuple[str, int], SymbolicTensor] = {}
        for entry in config["layers"]:
            layer = layer_from_config(entry)
            by_name[layer.name] = layer
            if isinstance(layer, InputLayer):
                outputs[(layer.name, 0)] = layer.output
        counts: dict[str, int] = {}
        for node in config["nodes"]:
            layer = by_name[node["layer"]]
            args = [outputs[(name, index)] for name, index in node["inputs"]]
            result = layer(args if layer.multi_input else args[0], training=node.get("training"))
            outputs[(layer.name, counts.get(layer.name, 0))] = result
            counts[layer.name] = counts.get(layer.name, 0) + 1
        ins = [outputs[tuple(r)] for r in config["input_layers"]]
        outs = [outputs[tuple(r)] for r in config["output_layers"]]
        return cls(
            ins if config.get("multi_input") else ins[0],
            outs if config.get("multi_output") else outs[0],
            name=config.get("name"),
        )


__all__ = ["Model"]
