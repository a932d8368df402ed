"""Data for models with several inputs or outputs, and batches drawn from Python iterables.

Keras' rules, checked before any work starts:

- Several inputs: x is a list/tuple of arrays in the order of ``model.inputs``, or a dict keyed by the
  ``Input`` names. Several outputs: y is a list in output order, or a dict keyed by the output layers'
  names (``model.output_names``). Each array is checked as a single one is (`pydlr.data.prepare`).
- ``sample_weight`` weighs every output's loss; ``class_weight`` is refused for several outputs (Keras
  refuses it too).
- An iterable (a generator, a torch ``DataLoader``, anything iterable that is not an array, or a Keras
  ``PyDataset``-style object with ``__getitem__``, ``__len__`` and ``on_epoch_end``) yields ``(x, y)`` or
  ``(x, y, sample_weight)`` batches, x and y as above. A one-shot iterator (a generator)
  goes on across epochs and needs ``steps_per_epoch``; a re-iterable source (a DataLoader) starts again
  each epoch and has ``len(source)`` batches unless ``steps_per_epoch`` is given.

The single-array fit keeps its own path (`pydlr.data.batching.ArrayBatches`); this module is the path for
everything else. Losses are taken by their ``kind``/``name`` and, for several outputs, their ``parts`` and
``names`` (`pydlr.train.losses.MultiOutputLoss`), so nothing of pydlr.train is imported.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from pydlr.data.arrays import as_x_tensor, check_lengths
from pydlr.data.batching import epoch_batches
from pydlr.data.prepare import (
    Prepared,
    check_loss_fits_model,
    output_shape,
    prepare_x,
    prepare_y,
    sample_weights,
    with_class_weight,
)
from pydlr.errors import InputError
from pydlr.layers.base import TensorList

__all__ = ["TensorList", "input_names", "output_names", "has_several_inputs", "is_iterable_source",
           "prepare_inputs", "prepare_structured", "ListBatches", "IterableBatches", "split_batch",
           "to_device", "rows"]


def rows(t: Any, index: Any) -> Any:
    """Rows ``index`` (a slice or an index tensor) of a tensor or of each tensor of a TensorList."""
    if t is None:
        return None
    if isinstance(t, TensorList):
        return TensorList(rows(v, index) for v in t)
    return t[index] if isinstance(index, slice) else t.index_select(0, index)


def to_device(t: Any, device: torch.device) -> Any:
    if t is None or device.type == "cpu" and t.device.type == "cpu":
        return t
    return t.to(device, non_blocking=True)


def _symbolic_names(tensors: Any) -> list[str] | None:
    if isinstance(tensors, list) and tensors and all(hasattr(t, "node") for t in tensors):
        return [t.layer.name for t in tensors]
    return None


def input_names(model: Any) -> list[str] | None:
    """The names of a functional model's ``Input`` layers, in order (None for other models)."""
    return _symbolic_names(getattr(model, "inputs", None))


def output_names(model: Any) -> list[str] | None:
    """Keras' ``model.output_names``: the layers that produce a functional model's outputs, in order."""
    return _symbolic_names(getattr(model, "outputs", None))


def _array_like(value: Any) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor)) or hasattr(value, "to_numpy")


def has_several_inputs(model: Any, x: Any) -> bool:
    """Whether ``x`` holds several input arrays: a dict, or a list/tuple for a model with several inputs
    (a model of unknown inputs, a subclassed one, takes a list of arrays as several inputs, as Keras'). A
    list for a one-input model stays an array (``np.asarray`` of its items)."""
    if isinstance(x, dict):
        return True
    if not isinstance(x, (list, tuple)):
        return False
    names = input_names(model)
    if names is not None:
        return len(names) > 1
    return (getattr(model, "input_spec", None) is None and getattr(model, "subclassed", False)
            and len(x) > 1 and all(_array_like(v) for v in x))


def is_iterable_source(x: Any) -> bool:
    """A generator, DataLoader or other iterable of batches (not an array, list, dict or table)."""
    if x is None or isinstance(x, (np.ndarray, torch.Tensor, list, tuple, dict, str, bytes)):
        return False
    if hasattr(x, "to_numpy") or hasattr(x, "__array__") or hasattr(x, "image_shape"):
        return False
    if hasattr(x, "on_epoch_end") and hasattr(x, "__getitem__") and hasattr(x, "__len__"):
        return True  # Keras' PyDataset / Sequence: batch i is x[i]
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def _by_name(value: Any, names: list[str] | None, argument: str, what: str, where: str) -> list[Any]:
    """The items of a list, or of a dict in ``names``' order, checked to be one per name."""
    if isinstance(value, dict):
        if names is None:
            raise InputError(argument, f"a list (this model's {what}s have no names)", value, where=where)
        if sorted(value) != sorted(names):
            raise InputError(argument, f"a dict with one array per model {what}: keys {names}",
                             f"keys {sorted(value)}", where=where)
        return [value[n] for n in names]
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if names is not None and len(items) != len(names):
        raise InputError(argument, f"{len(names)} arrays, one per model {what} ({', '.join(names)}), as a "
                         "list or a dict", f"{len(items)} array(s)", where=where)
    return items


def _label(argument: str, names: list[str] | None, i: int) -> str:
    return f"{argument}['{names[i]}']" if names is not None else f"{argument}[{i}]"


def _same_length(tensors: list[torch.Tensor], labels: list[str], where: str) -> None:
    for t, label in zip(tensors[1:], labels[1:], strict=True):
        if t.shape[0] != tensors[0].shape[0]:
            raise InputError(label, f"{tensors[0].shape[0]} samples, as many as {labels[0]}",
                             f"{t.shape[0]} samples", where=where)


def prepare_inputs(model: Any, x: Any, where: str, name: str = "x") -> torch.Tensor | TensorList:
    """x as one float32 tensor, or a TensorList in the order of the model's inputs (see the module
    docstring), each checked against its input's shape."""
    if not has_several_inputs(model, x):
        if isinstance(x, (list, tuple)) and len(x) == 1 and input_names(model) is not None:
            x = x[0]  # Keras takes [array] for a one-input functional model
        return prepare_x(model, x, where, name)
    names = input_names(model)
    items = _by_name(x, names, name, "input", where)
    if names is not None and len(names) == 1:  # {"image": array} for a one-input model
        return prepare_x(model, items[0], where, name)
    specs = [t.shape[1:] for t in model.inputs] if names is not None else [None] * len(items)
    labels = [_label(name, names, i) for i in range(len(items))]
    tensors = []
    for item, spec, label in zip(items, specs, labels, strict=True):
        t = as_x_tensor(item, where=where, name=label)
        if spec is not None:
            t = model.conform_input(t, name=label, where=where, spec=spec)
        tensors.append(t)
    _same_length(tensors, labels, where)
    return TensorList(tensors)


def _output_shapes(model: Any, x: torch.Tensor | TensorList) -> list[tuple | None]:
    symbolic = getattr(model, "outputs", None)
    if output_names(model) is not None:
        return [tuple(t.shape[1:]) for t in symbolic]
    if isinstance(x, TensorList) and getattr(model, "subclassed", False):
        shape = model.compute_output_shape([tuple(t.shape[1:]) for t in x])  # builds the layers too
        return [None if isinstance(shape, list) else tuple(shape)]
    return [output_shape(model, tuple(x.shape[1:])) if isinstance(x, torch.Tensor) else None]


def prepare_targets(model: Any, loss: Any, y: Any, x: torch.Tensor | TensorList, where: str,
                    name: str = "y") -> torch.Tensor | TensorList:
    """y for the loss: one tensor, or (several outputs) a TensorList in output order, each checked
    against its output's shape and loss."""
    shapes = _output_shapes(model, x)
    parts = getattr(loss, "parts", None)
    if parts is None:
        if isinstance(y, dict):  # {"output_layer": labels} for a one-output model
            y = _by_name(y, output_names(model), name, "output", where)[0]
        check_loss_fits_model(model, loss, where, shapes[0])
        return prepare_y(y, loss, shapes[0], where, name)
    names = list(loss.names)
    if y is None:
        raise InputError(name, f"targets for the outputs {names}", None, where=where)
    items = _by_name(y, names, name, "output", where)
    labels = [_label(name, names, i) for i in range(len(items))]
    symbolic = getattr(model, "outputs", [None] * len(items))
    tensors = []
    for item, part, shape, out, label in zip(items, parts, shapes, symbolic, labels, strict=True):
        # each output is checked as a one-output model ending in that output's layer
        check_loss_fits_model(types.SimpleNamespace(outputs=[out]), part, where, shape)
        tensors.append(prepare_y(item, part, shape, where, label))
    _same_length(tensors, labels, where)
    return TensorList(tensors)


def prepare_structured(model: Any, loss: Any, x: Any, y: Any, sample_weight: Any = None,
                       class_weight: Any = None, where: str = "fit",
                       names: tuple[str, str] = ("x", "y")) -> Prepared:
    """x, y and sample weights of a model with several inputs or outputs, checked and converted."""
    xt = prepare_inputs(model, x, where, names[0])
    yt = prepare_targets(model, loss, y, xt, where, names[1])
    first_y = yt[0] if isinstance(yt, TensorList) else yt
    check_lengths(xt[0] if isinstance(xt, TensorList) else xt, first_y, where, names[1])
    if isinstance(yt, TensorList):
        if isinstance(sample_weight, dict):
            raise InputError("sample_weight", "one array of per-sample weights for all outputs",
                             "a dict of weights per output", where=where)
        w = sample_weights(first_y, "regression", None, sample_weight, where)
    else:
        w = sample_weights(yt, loss.kind, None, sample_weight, where)
    return with_class_weight(Prepared(xt, yt, w), getattr(loss, "kind", None), class_weight, where)


class ListBatches:
    """Mini-batches of in-memory data of a model with several inputs or outputs, with
    `pydlr.data.batching`'s rules (``epoch_batches``: the same order as a one-input fit for the same
    seed)."""

    # no CUDA graph: its capture holds one tensor per batch, and these batches are lists
    batch_size = None

    def __init__(self, data: Prepared, batch_size: int, steps_per_epoch: int | None = None,
                 shuffle: bool = True, seed: int = 0, device: torch.device | str = "cpu",
                 rank: int = 0, world_size: int = 1):
        self.device = torch.device(device)
        self.x, self.y, self.w = data.x, data.y, data.w
        self.n = int(self.x.shape[0])
        self.rows_per_batch, self.steps_per_epoch = int(batch_size), steps_per_epoch
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, int(seed), rank, world_size

    @property
    def steps(self) -> int:
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        return math.ceil(math.ceil(self.n / self.world_size) / self.rows_per_batch)

    def epoch(self, epoch: int) -> Iterator[tuple[Any, Any, Any]]:
        for idx in epoch_batches(self.n, self.rows_per_batch, self.steps_per_epoch, self.shuffle, self.seed,
                                 epoch, self.rank, self.world_size):
            yield tuple(to_device(rows(t, idx), self.device) for t in (self.x, self.y, self.w))

    def close(self) -> None:
        pass


def split_batch(batch: Any) -> tuple[Any, Any, Any]:
    """Keras' unpacking of one batch: a tuple or list of 1-3 items is (x, y, sample_weight), anything
    else is x alone."""
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        items = list(batch) + [None] * (3 - len(batch))
        return items[0], items[1], items[2]
    return batch, None, None


class IterableBatches:
    """Batches from a Python iterable, each converted by ``convert(batch) -> (x, y, w)`` (the checks and
    conversions of arrays) and moved to ``device``. See the module docstring for epochs and steps."""

    batch_size = None  # unknown ahead (and no CUDA graph for them)

    def __init__(self, source: Any, steps: int | None, convert: Any, device: torch.device | str = "cpu",
                 argument: str = "x", where: str = "fit"):
        self.source, self.convert, self.device = source, convert, torch.device(device)
        self.argument, self.where, self.seed = argument, where, 0
        self.one_shot = isinstance(source, Iterator)  # a generator; a DataLoader makes a new iterator each time
        if steps is None and not hasattr(source, "__len__"):
            raise InputError("steps_per_epoch" if argument == "x" else "validation_steps",
                             f"the number of batches an epoch takes from a generator (given as {argument})",
                             None, where=where)
        self._steps = steps
        self._iter: Iterator[Any] | None = None
        self._peeked: list[Any] = []
        self.first = self._next_converted(0)  # fails now, before any training, if the batches do not fit
        if self.one_shot:
            self._peeked.append(self.first)

    @property
    def steps(self) -> int:
        return int(self._steps) if self._steps is not None else len(self.source)

    def _next_converted(self, epoch: int) -> tuple[Any, Any, Any]:
        if self._iter is None:
            self._iter = iter(self.source)
        try:
            batch = next(self._iter)
        except StopIteration:
            raise InputError(self.argument, f"a source of at least {self.steps} batches per epoch (steps_per_"
                             "epoch / validation_steps / steps, times the epochs for a generator)",
                             f"a source that ran out of data in epoch {epoch + 1}", where=self.where) from None
        return self.convert(batch)

    def epoch(self, epoch: int) -> Iterator[tuple[Any, Any, Any]]:
        if not self.one_shot:
            self._iter = iter(self.source)  # a DataLoader starts again (and reshuffles) each epoch
        for _ in range(self.steps):
            item = self._peeked.pop() if self._peeked else self._next_converted(epoch)
            yield tuple(to_device(t, self.device) for t in item)
        if callable(getattr(self.source, "on_epoch_end", None)):
            self.source.on_epoch_end()  # Keras' PyDataset hook (reshuffles its index, say)

    def close(self) -> None:
        self._iter = None
