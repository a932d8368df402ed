"""The model base class: input handling at the channels-last border, counting, configs (the summary's
text and accounting are pydlr.models.summary's)."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import importlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pydlr.errors import CHANNELS_FIRST_FIX, InputError
from pydlr.layers.base import (
    Layer,
    Node,
    Shape,
    SymbolicTensor,
    called_from_user_code,
    check_training,
    format_shape,
    inside_model_call,
    keep_user_mode,
    keras_default_applies,
    keras_shape,
    to_internal,
    to_public,
)
from pydlr.models import summary as summary_mod
from pydlr.models.modes import evaluating

MODEL_CLASSES: dict[str, type[BaseModel]] = {}


def class_key(cls: type) -> str:
    """How a model class is recorded in saved configs: ``module.QualName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_model_class(key: str) -> type[BaseModel]:
    """The model class recorded as ``key``; only pydlr's own modules are ever imported for it."""
    if key not in MODEL_CLASSES:
        module = key.rsplit(".", 1)[0]
        if module == "pydlr" or module.startswith("pydlr."):
            importlib.import_module(module)
    if key not in MODEL_CLASSES:
        raise InputError("config class_name", "a pydlr model class", key, "load_model")
    return MODEL_CLASSES[key]


class BaseModel(nn.Module):
    """What every pydlr model offers: NHWC in/out, ``summary()``, ``count_params()``, configs.

    Subclasses implement ``call_internal(x)`` on internal tensors (NCHW-shaped, channels-last memory),
    ``summary_rows()``, ``get_config()`` and ``from_config()``; they set ``self.input_spec`` (the Keras
    shape without batch) when known.
    """

    connected_summary: ClassVar[bool] = False
    multi_input: ClassVar[bool] = False  # as a layer inside another model, it takes one tensor
    layout_role: ClassVar[str] = "model"  # takes Keras' layout itself (pydlr.layers.base.keras_layout)
    subclassed: ClassVar[bool] = False  # Keras' model subclassing (pydlr.models.subclassed)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[class_key(cls)] = cls
        _mark_entries(cls)

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.input_spec: Shape | None = None
        # Used when this model is a layer of another model (Keras allows Sequential([base_model, ...])).
        self.inbound_nodes: list[Node] = []
        self.nested_output_shape: Shape | None = None

    # ---- the border between the public (NHWC) and internal layouts -------------------------------
    @property
    def where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def _reference_tensor(self) -> torch.Tensor | None:
        for t in self.parameters():
            return t
        return None

    def dummy_batch(self, shape: Shape) -> torch.Tensor:
        """A zero batch of one sample (internal layout) on the weights' device and dtype, for tracing."""
        ref = self._reference_tensor()
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        device = ref.device if ref is not None else None
        return to_internal(torch.zeros((1, *shape), dtype=dtype, device=device))

    def prepare_input(self, x: Any) -> torch.Tensor:
        """Validate ``x`` against the input shape and convert it to the internal layout.

        Accepts tensors and NumPy arrays; integer data are cast to the weights' float dtype, as Keras casts
        inputs to float32. When the input shape is (H, W, 1), a 3-d batch (N, H, W) is taken as one channel
        (R's n x 28 x 28 arrays work as they are).
        """
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise InputError("x", "a torch tensor or NumPy array", x, self.where)
        x = self.conform_input(x)
        ref = self._reference_tensor()
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        if not x.is_floating_point() or x.dtype != dtype:
            x = x.to(dtype)
        if ref is not None and x.device != ref.device:
            x = x.to(ref.device)
        return to_internal(x)

    def conform_input(self, x: torch.Tensor, name: str = "x", where: str | None = None,
                      spec: Shape | None = None) -> torch.Tensor:
        """``x`` (batch first, channels last) checked against the input shape (``spec``, one input's shape
        of a model with several, or the model's), where one is known.

        The one-channel rule: when the input shape is (H, W, 1), an (N, H, W) batch is taken as one
        channel, so R's n x 28 x 28 arrays work as they are. fit/evaluate/predict check their data with
        this same method before any work starts.
        """
        spec = self.input_spec if spec is None else spec
        if spec is None:
            return x
        if x.dim() == len(spec) and len(spec) == 3 and spec[-1] == 1 and tuple(x.shape[1:]) == spec[:2]:
            x = x.unsqueeze(-1)
        got = tuple(int(d) for d in x.shape[1:])
        if len(got) != len(spec) or any(s is not None and s != g for s, g in zip(spec, got, strict=False)):
            raise InputError(name, f"data of shape {format_shape(spec)} (the model's input shape: "
                             "batch first, channels last)" + _one_sample_hint(tuple(x.shape), spec)
                             + _channels_first_hint(tuple(x.shape), spec),
                             f"data of shape {tuple(x.shape)}", where or self.where)
        return x

    def forward(self, x: Any, training: bool | None = None) -> Any:
        """Run the model on channels-last data (N, H, W, C) or (N, features); returns channels-last.

        ``training`` (Keras' call argument) runs this call in training (True) or inference (False) mode,
        e.g. for Dropout and BatchNormalization, whatever ``model.train()``/``eval()`` set. None: Keras'
        default (Dropout and BatchNormalization in inference, augmentation layers random), unless the model
        was put in ``train()`` or ``eval()`` by user code (torch's way, for hand-written training loops: the
        mode set is kept, models inside it included) or fit's loop runs it (the mode the loop set).
        """
        if training is None and keras_default_applies(self) and not _IN_LOOP.get():
            return self._run_keras_default(x)
        if training is None or bool(training) == self.training:
            return self.run_public(x)
        previous = self.training
        self.train(bool(training))
        try:
            return self.run_public(x)
        finally:
            self.train(previous)

    def train(self, mode: bool = True) -> BaseModel:
        """torch's ``train``; called from user code (``model.train()``, ``model.eval()``), it also makes direct
        calls keep the mode set, as torch users expect of their own training loops (see `forward`)."""
        if called_from_user_code(1):
            keep_user_mode(self)
        return super().train(mode)

    def _run_keras_default(self, x: Any) -> Any:
        """A direct call without ``training=`` (``model(x)``) in Keras' default: Dropout and
        BatchNormalization in inference (torch's mode would leave a fresh or just-fitted model in training:
        random outputs, and BatchNormalization's statistics moved by the call), the random augmentation
        layers random, as their Keras ``call(training=True)``."""
        modules = list(self.modules())
        saved = [m.training for m in modules]
        for m in modules:
            m.training = bool(getattr(m, "keras_default_training", False))
        try:
            return self.run_public(x)
        finally:
            for m, mode in zip(modules, saved, strict=True):
                m.training = mode

    def run_public(self, x: Any) -> Any:
        """Public layout in, internal computation, public layout out."""
        return to_public(self.call_internal(self.prepare_input(x)))

    def call_internal(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- a model used as a layer of another model --------------------------------------------------
    @property
    def built(self) -> bool:
        return True

    @property
    def declared_input_shape(self) -> Shape | None:
        """The input shape an enclosing Sequential may adopt (when fully known)."""
        spec = self.input_spec
        return spec if spec is not None and all(s is not None for s in spec) else None

    def check_nested_input(self, input_shape: Shape) -> None:
        """InputError unless ``input_shape`` fits this model's input shape (None matches any size)."""
        spec = self.input_spec
        if spec is not None and (
            len(spec) != len(input_shape)
            or any(s is not None and s != t for s, t in zip(spec, input_shape, strict=True))
        ):
            raise InputError(
                "input shape", format_shape(spec), format_shape(input_shape), self.where
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape (no batch axis) for an input shape, found by one dummy forward pass."""
        self.check_nested_input(tuple(input_shape))
        with evaluating(self), torch.no_grad():
            out = self.call_internal(self.dummy_batch(input_shape))
        return keras_shape(out)

    def build_from(self, input_shape: Shape) -> Shape:
        """The layer protocol: check/build for ``input_shape`` and record the output shape."""
        self.nested_output_shape = tuple(self.compute_output_shape(tuple(input_shape)))
        return self.nested_output_shape

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], SymbolicTensor):  # functional API: model(inputs, training=...)
            training = check_training(kwargs.get("training"), self.where)
            return Node(self, [args[0]], self.build_from(args[0].shape[1:]), training).output
        return super().__call__(*args, **kwargs)

    # ---- Keras conveniences ------------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape | None:
        """Keras' ``input_shape`` with the batch axis as None, e.g. (None, 28, 28, 1)."""
        return None if self.input_spec is None else (None, *self.input_spec)

    @property
    def trainable(self) -> bool:
        """False once every weight is frozen; setting it freezes/unfreezes all layers (Keras' rule)."""
        return any(p.requires_grad for p in self.parameters()) or not any(
            True for _ in self.parameters()
        )

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for module in self.modules():
            if isinstance(module, Layer):
                module.trainable = bool(value)
        for p in self.parameters():
            p.requires_grad_(bool(value))

    @property
    def weights(self) -> list[torch.Tensor]:
        """Keras' ``weights``: every parameter and float buffer once."""
        return [t for t, _ in self.weight_tensors()]

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        return [t for t, trainable in self.weight_tensors() if trainable]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        return [t for t, trainable in self.weight_tensors() if not trainable]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name (or module path for torchvision-style models) or by index, as Keras'."""
        if index is not None and hasattr(self, "layers"):
            try:
                return self.layers[index]
            except (IndexError, TypeError):
                raise InputError(
                    "index", f"an index below {len(self.layers)}", index, self.where
                ) from None
        for path, module in self.named_modules():
            if isinstance(module, Layer) and name in (module.name, path):
                return module
        raise InputError("name", "the name of one of the model's layers", name, self.where)

    # ---- counting ---------------------------------------------------------------------------------
    def weight_tensors(self) -> list[tuple[torch.Tensor, bool]]:
        """(tensor, trainable) for parameters and floating buffers, each once."""
        seen: set[int] = set()
        out = []
        for p in self.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append((p, p.requires_grad))
        for b in self.buffers():
            if b.is_floating_point() and id(b) not in seen:
                seen.add(id(b))
                out.append((b, False))
        return out

    def count_params(self) -> int:
        """All weights, Keras-style (BatchNormalization's moving statistics included)."""
        return sum(t.numel() for t, _ in self.weight_tensors())

    # ---- summary (text and accounting in pydlr.models.summary) -------------------------------------
    def summary_rows(self) -> list[dict[str, Any]]:
        """One dict per layer: layer, type, output_shape (tuple or None), params, trainable, connected_to."""
        raise NotImplementedError

    def summary_table(self) -> list[dict[str, Any]]:
        """Rows for R's data.frame (see `pydlr.models.summary.summary_table`)."""
        return summary_mod.summary_table(self)

    def summary_string(self, line_length: int | None = None) -> str:
        """The text ``summary()`` prints (see `pydlr.models.summary.summary_string`)."""
        return summary_mod.summary_string(self, line_length)

    def summary(
        self,
        line_length: int | None = None,
        print_fn: Callable[[str], Any] | None = print,
        **kwargs: Any,
    ) -> None:
        """Print Keras 3's summary table, the weights' memory at their dtype and the saved file size.

        Parameters
        ----------
        line_length : int, optional
            Total width; Keras' default ``min(88, terminal columns - 4)`` (108 with "Connected to").
        print_fn : callable
            Receives the whole text once (Keras passes it the captured text too).
        """
        for key in kwargs:
            if key not in ("positions", "expand_nested", "show_trainable", "layer_range"):
                raise InputError(key, "an argument of summary()", key, self.where)
        (print_fn or print)(self.summary_string(line_length))

    # ---- configs ----------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseModel:
        raise NotImplementedError

    def get_weights(self) -> list[np.ndarray]:
        """All weights as NumPy arrays in Keras' layouts, layer by layer (Keras' ``get_weights``)."""
        out = []
        for m in outer_layers(self):
            if m.built:
                out += m.get_weights()
        return out

    def set_weights(self, weights: list[Any]) -> None:
        """Keras' ``set_weights``: the inverse of ``get_weights`` (same order, Keras' layouts). Every
        array's shape is checked before any weight changes."""
        if not isinstance(weights, (list, tuple)):
            raise InputError("weights", "a list of arrays (as get_weights() returns)", weights, self.where)
        arrays = [np.asarray(w) for w in weights]
        built = [m for m in outer_layers(self) if m.built]
        current = [(m, w.shape) for m in built for w in m.get_weights()]
        if len(arrays) != len(current):
            raise InputError("weights", f"a list of {len(current)} arrays (as get_weights() returns)",
                             f"{len(arrays)} arrays", self.where)
        for i, ((layer, shape), array) in enumerate(zip(current, arrays, strict=True)):
            if array.shape != shape:
                raise InputError(f"weights[{i}]", f"an array of shape {shape} for layer '{layer.name}'",
                                 f"shape {array.shape}", self.where)
        start = 0
        for m in built:
            n = len(m.get_weights())
            m.set_weights(arrays[start:start + n])
            start += n


@contextlib.contextmanager
def undo_on_error(module: nn.Module) -> Iterator[None]:
    """Make a build all or nothing: when the block raises, ``module`` and every module in it get back the
    attributes, weights, buffers and submodules they had before it (those a failed build created are
    dropped, those it replaced restored), so a shape that failed is not recorded anywhere."""
    saved = []
    for m in module.modules():
        attrs = dict(m.__dict__)
        containers = {k: copy.copy(v) for k, v in attrs.items() if type(v) in _CONTAINERS}
        saved.append((m, attrs, containers))
    try:
        yield
    except BaseException:
        for m, attrs, containers in saved:
            m.__dict__.clear()
            m.__dict__.update(attrs)
            for key, old in containers.items():  # torch's _parameters, _buffers, _modules, ... in place
                current = attrs[key]
                if isinstance(current, list):
                    current[:] = old
                else:
                    current.clear()
                    current.update(old)
        raise


_CONTAINERS = (dict, OrderedDict, list, set)


# True while fit / evaluate / predict's loop calls the model: it has set train() or eval() itself
_IN_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("pydlr_in_loop", default=False)


@contextlib.contextmanager
def loop_call() -> Iterator[None]:
    """Marks a forward pass of the training loop: the model runs in the mode the loop set, where a user's
    direct ``model(x)`` runs in Keras' default (see `BaseModel._run_keras_default`)."""
    token = _IN_LOOP.set(True)
    try:
        yield
    finally:
        _IN_LOOP.reset(token)


def outer_layers(module: nn.Module) -> list[Layer]:
    """The pydlr layers in ``module``, in definition order, without the layers inside a layer (a
    SeparableConv2D's two convolutions): each weight is reported once, by the layer users see."""
    out: list[Layer] = []
    for child in module.children():
        if isinstance(child, Layer):
            out.append(child)
        else:
            out += outer_layers(child)
    return out


def _one_sample_hint(shape: tuple, spec: Shape) -> str:
    """The likely mistake when ``shape`` is one sample's (no batch axis, or neither batch nor channel axis
    of a one-channel input): what to pass instead, in Python and in R (where x[i, , , ] drops both)."""
    one = all(s is not None for s in spec) and (shape == tuple(spec) or (spec[-1] == 1 and shape == tuple(spec[:-1])))
    if not one:
        return ""
    # R's index needs one slot per axis of the data the sample came from: n x h x w x c data, or grey
    # n x h x w data (x[i, , , ] of the first also drops the channel: both are possible then)
    take = "x[i, , , , drop = FALSE]"
    if len(shape) < len(spec):
        take = "x[i, , , drop = FALSE] (x[i, , , , drop = FALSE] for data with a channel axis)"
    return f"; for one sample, a batch of one: x[None] in Python, {take} or array(x, c(1, dim(x))) in R"


def _channels_first_hint(shape: tuple, spec: Shape) -> str:
    """The fix when ``shape`` is the model's input with the channel axis first (a torch or R layout)."""
    if len(spec) != 3 or len(shape) != 4 or spec[2] is None or shape[1] == shape[3]:
        return ""
    moved = (shape[2], shape[3], shape[1])
    if all(s is None or s == m for s, m in zip(spec, moved, strict=True)):
        return "; " + CHANNELS_FIRST_FIX
    return ""


def apply_layer(layer: Layer | BaseModel, x: Any) -> Any:
    """Run a layer, or a nested model, on internal tensors."""
    return layer.call_internal(x) if isinstance(layer, BaseModel) else layer(x)


def layer_output_rows(model: BaseModel, layers: list[Layer]) -> list[dict[str, Any]]:
    """Summary rows for layers whose output shapes were recorded when they were built."""
    rows = []
    for layer in layers:
        params = layer.count_params() if layer.built else 0
        trainable = layer.trainable
        nested = isinstance(layer, BaseModel)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": layer.nested_output_shape if nested else layer.output_shape,
                "params": params,
                "trainable": trainable,
                "built": layer.built,
            }
        )
    return rows


def _mark_entries(cls: type) -> None:
    """Run a model's entry points `inside_model`: the layers a model runs take internal tensors, while a
    layer called on its own from user code takes NHWC images (`Layer._call_public`)."""
    for name in _ENTRIES:
        own = cls.__dict__.get(name)
        if own is not None and not getattr(own, "inside_model", False):
            setattr(cls, name, inside_model_call(own))


_ENTRIES = ("forward", "run_public", "call_internal", "run_graph")
_mark_entries(BaseModel)


class ModuleTreeModel(BaseModel):
    """A model written as a tree of nn.Modules holding pydlr layers (torchvision-style key names).

    Subclasses create their modules in ``__init__``, implement ``call_internal`` and then call
    ``self.finish_init(input_shape)``, which builds every lazy layer with a small dummy batch. The summary
    traces one forward pass at ``input_spec`` and lists every pydlr layer call by its module path.
    """

    def finish_init(self, input_shape: Shape, build_size: int | None = None) -> None:
        """Record the input shape and build all layers (on ``build_size`` x ``build_size`` if given)."""
        self.summary_input_shape = tuple(input_shape)
        # Fully convolutional up to global pooling: any height and width are accepted.
        self.input_spec = (None, None, self.summary_input_shape[-1])
        shape = (
            self.summary_input_shape
            if build_size is None
            else (build_size, build_size, self.input_spec[-1])
        )
        with evaluating(self), torch.no_grad():
            self.call_internal(self.dummy_batch(shape))

    @property
    def declared_input_shape(self) -> Shape | None:
        """The shape given at construction, adopted by an enclosing Sequential (as Keras does)."""
        return getattr(self, "summary_input_shape", None)

    def summary_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        paths = {id(m): path for path, m in self.named_modules()}

        def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            rows.append(
                {
                    "layer": paths[id(module)],
                    "type": type(module).__name__,
                    "output_shape": tuple(output.shape[1:])
                    if output.dim() != 4
                    else (output.shape[2], output.shape[3], output.shape[1]),
                    "params": module.count_params(),
                    "trainable": module.trainable,
                    "built": True,
                }
            )

        handles = [m.register_forward_hook(hook) for m in self.modules() if isinstance(m, Layer)]
        try:
            with evaluating(self), torch.no_grad():
                self.call_internal(self.dummy_batch(self.summary_input_shape))
        finally:
            for h in handles:
                h.remove()
        for r in rows:
            r["output_shape"] = tuple(int(s) for s in r["output_shape"])
        return rows
