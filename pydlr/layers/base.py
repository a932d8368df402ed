"""The layer base class, Keras-style names, symbolic tensors for the functional API, and layout helpers.

Layout: the public API is channels-last (N, H, W, C) as in Keras. Inside a model, image tensors are
NCHW-shaped torch tensors whose memory is channels-last: ``x.permute(0, 3, 1, 2)`` of an NHWC-contiguous
tensor, which is a view (no copy). Layers receive and return these internal tensors; models convert at
their border. Shapes reported to users (``compute_output_shape``, summaries) are Keras-style, channels-last,
without the batch axis, e.g. ``(26, 26, 32)``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pydlr.errors import InputError, NotSupportedError

Shape = tuple[Any, ...]

_NAME_COUNTS: dict[str, int] = {}
LAYER_CLASSES: dict[str, type[Layer]] = {}


def to_snake_case(name: str) -> str:
    """Keras' class-name-to-layer-name rule: ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix: str) -> str:
    """Keras' automatic names: the first ``conv2d``, then ``conv2d_1``, ``conv2d_2``, ... per session."""
    count = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Reset the automatic layer and model names, as ``keras.backend.clear_session()`` does."""
    _NAME_COUNTS.clear()


def keras_shape(x: torch.Tensor) -> Shape:
    """The Keras-style shape (no batch axis, channels last) of an internal tensor."""
    if x.dim() == 4:
        return (int(x.shape[2]), int(x.shape[3]), int(x.shape[1]))
    return tuple(int(s) for s in x.shape[1:])


def to_internal(x: torch.Tensor) -> torch.Tensor:
    """NHWC -> NCHW-shaped view in channels-last memory (no copy when ``x`` is contiguous)."""
    if x.dim() == 4:
        x = x.contiguous()
        n, h, w, c = x.shape
        if x.stride() != (h * w * c, w * c, c, 1):
            # "Contiguous" ignores the strides of size-1 axes: NumPy's x[..., None] has a 0 stride for the
            # channel axis, and torch then cannot tell channels-last from NCHW, so every kernel downstream
            # took its slower NCHW path (predict on Fashion-MNIST ran at half speed). Canonical strides fix it.
            x = x.as_strided((n, h, w, c), (h * w * c, w * c, c, 1))
        return x.permute(0, 3, 1, 2)
    return x


def to_public(x: torch.Tensor) -> torch.Tensor:
    """Internal NCHW-shaped tensor -> NHWC (a view; contiguous when x is in channels-last memory)."""
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1)
    return x


class _ModelDepth(threading.local):
    depth = 0


_INSIDE = _ModelDepth()


@contextlib.contextmanager
def inside_model() -> Iterator[None]:
    """Layers called in this block take and return internal tensors: models run their layers in it (see
    `inside_model_call`), and so does a layer called on its own while it runs its own sub-layers."""
    _INSIDE.depth += 1
    try:
        yield
    finally:
        _INSIDE.depth -= 1


def inside_model_call(call_internal: Any) -> Any:
    """``call_internal`` run `inside_model` (models wrap theirs with it: `BaseModel.__init_subclass__`)."""

    @functools.wraps(call_internal)
    def run(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        _INSIDE.depth += 1
        try:
            return call_internal(self, x, *args, **kwargs)
        finally:
            _INSIDE.depth -= 1

    run.inside_model = True
    return run


def called_from_user_code(depth: int, through_torch: bool = True) -> bool:
    """Whether the frame ``depth`` levels above this function's caller is user code, not pydlr's or torch's;
    a call from C, such as reticulate's, counts as the user's. ``through_torch``: torch's own frames are
    skipped and the code that called torch decides (``model.eval()`` reaches ``train`` through torch's
    ``eval``); else a call from torch (its containers, running layers on internal tensors) is internal."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return True
    while through_torch and frame is not None and frame.f_globals.get("__name__", "").startswith("torch."):
        frame = frame.f_back
    if frame is None:
        return True
    return not frame.f_globals.get("__name__", "").startswith(_INTERNAL_CALLERS)


def keep_user_mode(module: nn.Module) -> None:
    """``module`` and everything in it were put in train() or eval() by user code: their direct calls keep that
    mode (torch's meaning, for hand-written training loops) instead of Keras' default (`keras_default_applies`)."""
    for m in module.modules():
        m._mode_set_by_user = True


def keras_default_applies(module: nn.Module) -> bool:
    """A direct call without ``training=`` of a module left in torch's initial training mode by its user runs
    in Keras' default: Dropout and BatchNormalization in inference, the random augmentation layers random."""
    return module.training and not getattr(module, "_mode_set_by_user", False)


def _is_public_images(args: tuple) -> bool:
    """A layer called on its own from user code (not from pydlr's or torch's), outside any model, on a batch
    of images as users hold them: NHWC (a torch tensor or a NumPy array), as Keras' ``layer(images)``."""
    if _INSIDE.depth or _LAYOUT or len(args) != 1:
        return False
    x = args[0]
    if not isinstance(x, (torch.Tensor, np.ndarray)) or x.ndim != 4:
        return False
    return called_from_user_code(2, through_torch=False)  # 1: Layer.__call__, 2: its caller


# Code that calls layers on internal tensors: pydlr's models, blocks and fusions, torch's containers.
_INTERNAL_CALLERS = ("pydlr.", "torch.")


@functools.lru_cache(maxsize=512)
def takes_training(call: Any) -> bool:
    """Whether a user's ``call`` takes Keras' ``training`` argument (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def to_public_all(x: Any) -> Any:
    """`to_public` of a tensor or of each tensor of a list."""
    if isinstance(x, (list, tuple)):
        return TensorList(to_public(t) for t in x)
    return to_public(x)


def to_internal_all(x: Any) -> Any:
    """`to_internal` of a tensor or of each tensor of a list."""
    if isinstance(x, (list, tuple)):
        return TensorList(to_internal(t) for t in x)
    return to_internal(x)


def format_shape(shape: Shape | None) -> str:
    """Keras' output-shape text: ``(None, 26, 26, 32)``."""
    if shape is None:
        return "?"
    return "(" + ", ".join(str(s) for s in (None, *shape)) + ")"


def as_int(value: Any) -> int | None:
    """``value`` as an int if it is integral (Python/NumPy ints, or floats such as R's 32 or 3.0)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


def pair(value: Any, argument: str, where: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a tuple of two ints (Keras' kernel_size/strides rule)."""
    items = (value, value) if as_int(value) is not None else value
    try:
        items = tuple(as_int(v) for v in items)
    except TypeError:
        items = ()
    if len(items) != 2 or any(v is None or v < minimum for v in items):
        raise InputError(argument, f"an integer >= {minimum} or a pair of them", value, where)
    return (items[0], items[1])


def positive_int(value: Any, argument: str, where: str) -> int:
    """Check a positive integer argument (integral floats, as R passes numbers, are accepted)."""
    number = as_int(value)
    if number is None or number <= 0:
        raise InputError(argument, "a positive integer", value, where)
    return number


def reject_unsupported(where: str, **features: Any) -> None:
    """Keras arguments outside pydlr's subset: name them instead of silently ignoring them."""
    for argument, value in features.items():
        if value is not None:
            raise NotSupportedError(
                f"{where}: argument `{argument}` is not supported by pydlr (received {value!r}); "
                "leave it at None (use weight_decay in the optimizer for regularization)."
            )


def check_training(value: Any, where: str) -> bool | None:
    """Keras' call-time ``training`` argument: None (follow the model's mode), True or False."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputError("training", "None, True or False", value, where)


@contextlib.contextmanager
def training_mode(module: nn.Module, training: bool | None) -> Iterator[None]:
    """Run ``module`` and everything inside it in training (True) or inference (False) mode for one call.

    Keras' contract: a ``training`` argument given at call time wins over the mode the enclosing model runs
    in (``fit`` / ``predict``). None leaves the modes alone. Each submodule's own mode is restored afterwards,
    so a model whose parts were set to different modes by hand keeps them.
    """
    if training is None:
        yield
        return
    saved = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for m, mode in saved:
            m.training = mode


_LAYOUT: list[tuple[str, bool]] = []  # (mode, output converted) of the calls under way; see keras_layout
_LAYOUT_HOOKS: list[Any] = []


def _layout_pre_hook(module: nn.Module, args: tuple) -> tuple | None:
    role = getattr(type(module), "layout_role", None)
    if role is None:
        return None
    convert = _LAYOUT[-1][0] == "public" and role == "layer"
    _LAYOUT.append(("internal", convert))
    if convert and args:
        return (to_internal_all(args[0]), *args[1:])
    return None


def _layout_post_hook(module: nn.Module, args: tuple, output: Any) -> Any:
    if getattr(type(module), "layout_role", None) is None or len(_LAYOUT) < 2:
        return None
    _, convert = _LAYOUT.pop()
    return to_public_all(output) if convert else None


@contextlib.contextmanager
def keras_layout() -> Iterator[None]:
    """Inside, pydlr layers called on tensors take and return Keras' layout (channels last), as in a
    subclassed model's ``call()`` or a user layer's ``call()``.

    Layers work on pydlr's internal layout (NCHW-shaped views of channels-last memory). While user code
    runs, torch's global module hooks convert at each call from user code into a pydlr layer (both are
    views, no copy) and leave the calls between pydlr's own modules alone. The hooks exist only inside
    this context, so models without user code run without them.
    """
    depth = len(_LAYOUT)
    if not _LAYOUT_HOOKS:
        _LAYOUT_HOOKS.append(nn.modules.module.register_module_forward_pre_hook(_layout_pre_hook))
        _LAYOUT_HOOKS.append(nn.modules.module.register_module_forward_hook(_layout_post_hook))
    _LAYOUT.append(("public", False))
    try:
        yield
    finally:
        del _LAYOUT[depth:]  # a call that raised left its entries
        if not _LAYOUT:
            for handle in _LAYOUT_HOOKS:
                handle.remove()
            _LAYOUT_HOOKS.clear()


class TensorList(list):
    """Several tensors of one batch: the inputs of a model with several inputs, the outputs of one with
    several outputs, or their targets. A list (as Keras passes and returns them) whose ``shape`` is the
    first tensor's, so the training loop counts the samples of a batch as it does for one tensor."""

    @property
    def shape(self) -> torch.Size:
        return self[0].shape

    @property
    def device(self) -> torch.device:
        return self[0].device

    def to(self, *args: Any, **kwargs: Any) -> TensorList:
        return TensorList(t.to(*args, **kwargs) for t in self)

    def detach(self) -> TensorList:
        return TensorList(t.detach() for t in self)

    def float(self) -> TensorList:
        return TensorList(t.float() for t in self)


class NoSingleCallError(NotSupportedError, AttributeError):
    """``layer.input`` / ``layer.output`` of a layer not called exactly once in a functional graph. An
    AttributeError too, as Keras': ``hasattr(layer, "output")`` is False, and torch's tracer (which reads
    every attribute of a module) goes on."""


class SymbolicTensor:
    """A placeholder for a layer's output in the functional API (Keras' KerasTensor).

    ``shape`` includes the batch axis as None, as in Keras.
    """

    def __init__(self, shape: Shape, node: Node | None, index: int = 0):
        self.shape = shape
        self.node = node
        self.index = index

    @property
    def layer(self) -> Layer:
        assert self.node is not None
        return self.node.layer

    def __repr__(self) -> str:
        name = self.node.layer.name if self.node is not None else "?"
        return f"<SymbolicTensor shape={self.shape} from {name}>"


class Node:
    """One call of a layer on symbolic inputs: records the graph of a functional model.

    ``training`` is the call's Keras ``training`` argument (None: follow the model's mode); the functional
    model replays it every time it runs the graph.
    """

    def __init__(
        self,
        layer: Layer,
        inputs: list[SymbolicTensor],
        output_shape: Shape,
        training: bool | None = None,
    ):
        self.layer = layer
        self.inputs = inputs
        self.training = training
        self.output = SymbolicTensor((None, *output_shape), self)
        layer.inbound_nodes.append(self)

    @property
    def node_index(self) -> int:
        return self.layer.inbound_nodes.index(self)


def _is_symbolic(value: Any) -> bool:
    if isinstance(value, SymbolicTensor):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, SymbolicTensor) for v in value)
    )


class Layer(nn.Module):
    """Base of pydlr's Keras-style layers: an nn.Module that builds lazily from its input shape.

    Parameters
    ----------
    name : str, optional
        The layer's name; Keras' automatic name (``conv2d``, ``conv2d_1``, ...) when omitted.
    trainable : bool
        Whether the layer's weights are trained (Keras' ``trainable``).
    input_shape : tuple, optional
        Keras 2 style input shape (no batch axis) for the first layer of a Sequential model.
    dtype : str, optional
        Accepted for Keras compatibility; only None or "float32" (the model follows torch's default dtype).
    """

    multi_input: ClassVar[bool] = False
    layout_role: ClassVar[str] = "layer"  # converted at calls from user code (keras_layout)
    keras_default_training: ClassVar[bool] = False  # the mode of a direct call without training=, as Keras'

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__module__.startswith("pydlr.")
        if own or cls.__name__ not in LAYER_CLASSES:  # a user's class never shadows one of pydlr's
            LAYER_CLASSES[cls.__name__] = cls
        if not own and "call" in cls.__dict__:
            # A user's layer (Keras' subclassing) works in Keras' terms: build() gets the shape with the
            # batch axis, call() channels-last tensors. pydlr's own layers keep the internal path.
            cls.forward = Layer._user_forward
            cls.build_from = Layer._user_build_from
            if "weight_tensors" not in cls.__dict__:
                cls.weight_tensors = Layer._nested_weight_tensors

    def __init__(
        self,
        name: str | None = None,
        trainable: bool = True,
        input_shape: Shape | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ):
        super().__init__()
        where = type(self).__name__
        if kwargs:
            unknown = sorted(kwargs)[0]
            raise InputError(
                unknown, f"one of {where}'s arguments", f"unknown argument `{unknown}`", where
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise InputError("name", "a non-empty string", name, where)
        if dtype not in (None, "float32"):
            raise NotSupportedError(
                f"{where}: dtype={dtype!r} is not supported; layers use float32."
            )
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self.built = False
        self.declared_input_shape = tuple(input_shape) if input_shape is not None else None
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.inbound_nodes: list[Node] = []
        self._trainable = bool(trainable)

    # ---- the functional graph: Keras' layer.input / layer.output ----------------------------------
    def _only_node(self, what: str) -> Node:
        if len(self.inbound_nodes) != 1:
            raise NoSingleCallError(
                f"{self.where}.{what}: the layer was called {len(self.inbound_nodes)} times in functional "
                "graphs; layer.input and layer.output exist for a layer called once (build the model with "
                "keras.Model(inputs, outputs) to read them)")
        return self.inbound_nodes[0]

    def __getattr__(self, name: str) -> Any:
        # `input`/`output` are properties whose error is an AttributeError (Keras': hasattr() is False and
        # torch's tracer, which reads every attribute, goes on); Python then asks __getattr__, whose
        # nn.Module version would replace pydlr's message with "no attribute". One extra call on each
        # parameter lookup (~0.1 us; a seed CNN step makes ~10 of them).
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("input", "output"):
                self._only_node(name)
            raise

    @property
    def output(self) -> SymbolicTensor:
        """Keras' ``layer.output``: the symbolic output of the layer's one call in a functional graph, e.g.
        for a feature extractor ``Model(model.inputs, model.get_layer("conv").output)``."""
        return self._only_node("output").output

    @property
    def input(self) -> SymbolicTensor | list[SymbolicTensor]:
        """Keras' ``layer.input``: the symbolic input(s) of the layer's one call in a functional graph."""
        inputs = self._only_node("input").inputs
        return inputs[0] if len(inputs) == 1 else list(inputs)

    # ---- Keras-style description -------------------------------------------------------------------
    @property
    def where(self) -> str:
        """How error messages name this layer: ``Conv2D 'conv2d_1'``."""
        return f"{type(self).__name__} '{self.name}'"

    def get_config(self) -> dict[str, Any]:
        """The layer's constructor arguments, JSON-safe (Keras' ``get_config``)."""
        return {"name": self.name, "trainable": self._trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Recreate a layer from ``get_config()``'s result."""
        return cls(**config)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in self.parameters():
            p.requires_grad_(self._trainable)

    def count_params(self) -> int:
        """Number of weights, Keras-style: parameters plus float state (BatchNormalization's moving stats)."""
        return sum(t.numel() for t in self.weight_tensors())

    @property
    def weights(self) -> list[torch.Tensor]:
        """Keras' ``weights``: parameters, then BatchNormalization-style float state."""
        return self.weight_tensors()

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        return [t for t in self.weight_tensors() if isinstance(t, nn.Parameter) and t.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        trainable = {id(t) for t in self.trainable_weights}
        return [t for t in self.weight_tensors() if id(t) not in trainable]

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy copies (layers with a Keras layout of their own override this)."""
        return [t.detach().cpu().numpy().copy() for t in self.weight_tensors()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set the weights from arrays in ``get_weights``' order and layout (layers with a Keras layout of
        their own override this)."""
        tensors = self.weight_tensors()
        arrays = [np.asarray(w) for w in weights] if isinstance(weights, (list, tuple)) else None
        if arrays is None or len(arrays) != len(tensors) or any(
                a.shape != tuple(t.shape) for a, t in zip(arrays, tensors, strict=True)):
            raise InputError("weights", "arrays of shapes " + str([tuple(t.shape) for t in tensors]),
                             weights, self.where)
        with torch.no_grad():
            for t, a in zip(tensors, arrays, strict=True):
                t.copy_(torch.as_tensor(a))

    def weight_tensors(self) -> list[torch.Tensor]:
        """Parameters and floating-point buffers (what Keras counts as weights), in definition order."""
        tensors = list(self.parameters(recurse=False))
        tensors += [b for b in self.buffers(recurse=False) if b.is_floating_point()]
        return tensors

    # ---- building ----------------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create the weights for an input of Keras-style shape ``input_shape`` (no batch axis)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Keras-style output shape for a Keras-style input shape (no batch axis)."""
        return tuple(input_shape)

    def check_input_shape(self, input_shape: Shape) -> None:
        """Raise InputError if an input of this shape does not fit the built layer (default: same rank)."""
        if self.input_shape is not None and len(input_shape) != len(self.input_shape):
            raise InputError(
                "input shape",
                f"rank {len(self.input_shape) + 1} like {format_shape(self.input_shape)}",
                format_shape(input_shape),
                self.where,
            )

    def build_from(self, input_shape: Shape) -> Shape:
        """Build (once) and record shapes; return the output shape. Errors name the layer and shapes."""
        input_shape = tuple(input_shape)
        if self.built:
            self.check_input_shape(input_shape)
        output_shape = self.compute_output_shape(input_shape)
        if not self.built:
            self.build(input_shape)
            if not self._trainable:
                self.trainable = False
            self.built = True
        self.input_shape, self.output_shape = input_shape, tuple(output_shape)
        return self.output_shape

    # ---- calling -----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """torch's ``train``; called from user code, direct calls keep the mode set (`keep_user_mode`)."""
        if called_from_user_code(1):
            keep_user_mode(self)
        return super().train(mode)

    def __call__(self, *args: Any, training: Any = None, **kwargs: Any) -> Any:
        """Call on symbolic tensors (functional API) or on internal tensors.

        ``training`` (Keras' call argument) runs this call in training (True) or inference (False) mode
        whatever mode the model is in; in a functional graph it is recorded and applies at every run.
        """
        if (training is None and not _INSIDE.depth and args and not _is_symbolic(args[0])
                and keras_default_applies(self) and called_from_user_code(1)):
            training = self.keras_default_training  # layers.Dropout(0.5)(x) from user code: as Keras'
        if _is_public_images(args):
            return self._call_public(args[0], training, **kwargs)
        if training is None and not (args and _is_symbolic(args[0])):
            return super().__call__(*args, **kwargs)  # the hot path: no mode to switch
        training = check_training(training, self.where)
        if args and _is_symbolic(args[0]):
            return self._call_symbolic(args[0], training)
        with training_mode(self, training):
            return super().__call__(*args, **kwargs)

    def _call_public(self, x: Any, training: Any, **kwargs: Any) -> Any:
        """A call from user code on NHWC images (Keras' ``RandomFlip("horizontal")(images)``): converted to
        the internal layout and back, so the layer sees the channels where models put them."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        with inside_model():
            return to_public_all(self(to_internal(x), training=training, **kwargs))

    def _call_symbolic(
        self, inputs: SymbolicTensor | list[SymbolicTensor], training: bool | None = None
    ) -> SymbolicTensor:
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.multi_input != isinstance(inputs, (list, tuple)):
            expected = "a list of tensors" if self.multi_input else "a single tensor"
            raise InputError("inputs", expected, inputs, self.where)
        shapes = [t.shape[1:] for t in items]
        output_shape = self.build_from(shapes if self.multi_input else shapes[0])
        return Node(self, items, output_shape, training).output

    def forward(self, x: Any) -> Any:
        shape = [keras_shape(t) for t in x] if self.multi_input else keras_shape(x)
        if not self.built:
            self.build_from(shape)
        else:
            self.check_input_shape(shape)
        return self.call(x)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        """The computation on internal tensors (image tensors NCHW-shaped, channels-last memory)."""
        return x

    # ---- a user's layer (Keras' subclassing: build(input_shape), call(inputs), add_weight) ---------
    def add_weight(self, shape: Any = None, initializer: Any = "glorot_uniform", dtype: Any = None,
                   trainable: bool = True, name: str | None = None, **unused: Any) -> nn.Parameter:
        """Keras' ``add_weight``: a new weight of Keras ``shape``, initialized by name ("glorot_uniform",
        "zeros", "random_normal", ...). Assign it to an attribute (``self.w = self.add_weight(...)``, as
        Keras code does): that registers it with the layer."""
        from pydlr.layers import initializers

        where = self.where
        dims = tuple(int(d) for d in (shape or ()))
        init = initializers.normalize_initializer(initializer, "initializer", where)
        if dtype not in (None, "float32"):
            raise NotSupportedError(f"{where}.add_weight: dtype={dtype!r} is not supported; weights are float32.")
        ref = next(iter(self.parameters()), None)
        t = torch.empty(dims, device=ref.device if ref is not None else None)
        initializers.initialize(t, init, dims)
        return nn.Parameter(t, requires_grad=bool(trainable) and self._trainable)

    def _nested_weight_tensors(self) -> list[torch.Tensor]:
        """A user's layer's weights include those of the layers it holds (Keras counts them with it)."""
        tensors = list(self.parameters())
        return tensors + [b for b in self.buffers() if b.is_floating_point()]

    def _user_output_shape(self, input_shape: Shape) -> Shape:
        """A user's layer's output shape: its own ``compute_output_shape`` (Keras' shapes, batch axis
        included) when it has one, else one call on a zero batch of two samples."""
        if type(self).compute_output_shape is not Layer.compute_output_shape:
            return tuple(self.compute_output_shape((None, *input_shape)))[1:]
        ref = next(iter(self.parameters()), None)
        zeros = torch.zeros((2, *input_shape), device=ref.device if ref is not None else None)
        with torch.no_grad(), keras_layout():
            out = self.call(zeros)
        return tuple(int(d) for d in out.shape[1:])

    def _user_build_from(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        if not self.built:
            self.build((None, *input_shape))
            if not self._trainable:
                self.trainable = False
            self.built = True
        self.input_shape = input_shape
        self.output_shape = self._user_output_shape(input_shape)
        return self.output_shape

    def _user_forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.built:
            self._user_build_from(keras_shape(x))
        if takes_training(type(self).call):  # Keras passes the call's mode to a call() that takes it
            kwargs.setdefault("training", self.training)
        with keras_layout():
            out = self.call(to_public_all(x), *args, **kwargs)
        return to_internal_all(out)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
