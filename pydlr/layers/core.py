"""Core layers: Input, Dense, Flatten, Dropout, Activation, Rescaling, Add, Concatenate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pydlr.errors import InputError, NotSupportedError
from pydlr.layers import activations, initializers
from pydlr.layers.base import (
    Layer,
    Node,
    Shape,
    SymbolicTensor,
    as_int,
    format_shape,
    positive_int,
    reject_unsupported,
    to_internal_all,
    to_public_all,
)


def _check_shape_tuple(shape: Any, where: str) -> tuple[int, ...]:
    try:
        items = tuple(as_int(s) for s in shape)
    except TypeError:
        items = ()
    if not items or any(s is None or s <= 0 for s in items):
        raise InputError(
            "shape",
            "a non-empty tuple of positive integers without the batch axis, e.g. (28, 28, 1)",
            shape,
            where,
        )
    return items


class InputLayer(Layer):
    """The input of a model (Keras' ``InputLayer``); ``Input(shape)`` creates one and returns its tensor."""

    def __init__(
        self,
        shape: Any = None,
        batch_size: int | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(dtype=dtype, **kwargs)
        self.shape = _check_shape_tuple(shape, self.where)
        self.batch_size = batch_size
        self.build_from(self.shape)
        Node(self, [], self.shape)  # its output is this layer's ``output`` (Layer.output)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shape": list(self.shape), "batch_size": self.batch_size}


def Input(
    shape: Any,
    batch_size: int | None = None,
    name: str | None = None,
    dtype: str | None = None,
    **kwargs: Any,
) -> SymbolicTensor:
    """Keras' ``Input``: a symbolic tensor of shape ``(None, *shape)`` to start a model from.

    Parameters
    ----------
    shape : tuple of int
        Shape without the batch axis, channels last, e.g. ``(28, 28, 1)``.
    batch_size, name, dtype
        As in Keras (dtype: float32 only).
    """
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, **kwargs).output


# Under CPU autocast to bfloat16, matrix products below this many multiply-adds run in float32: oneDNN's bf16
# GEMM costs more than MKL's float32 one there (forward + backward, 2 threads, AMX machine: 64 x 576 x 64 1.7x,
# 64 x 64 x 10 3.4x, 32 x 1280 x 1000 (41 M) 0.96x, 256 x 1024 x 512 (134 M) 0.42x; docs/performance.md).
_CPU_BF16_MIN_MACS = 32_000_000


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear, in float32 when CPU autocast would send a small product to bf16's slower GEMM."""
    if (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and x.numel() * weight.shape[0] < _CPU_BF16_MIN_MACS):
        with torch.autocast("cpu", enabled=False):  # x may come bf16 from a layer before; weights are the masters
            return F.linear(x.to(weight.dtype), weight, bias)
    return F.linear(x, weight, bias)


class Dense(Layer):
    """Fully connected layer, Keras' ``Dense``; applies to the last (channel) axis.

    Weights in torch's layout: ``weight`` (units, in), ``bias`` (units,); ``get_weights()`` gives Keras'
    (in, units) kernel.
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = self.where
        reject_unsupported(
            where,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )
        self.units = positive_int(units, "units", where)
        self.activation = activations.normalize_activation(activation, where)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.normalize_initializer(
            kernel_initializer, "kernel_initializer", where
        )
        self.bias_initializer = initializers.normalize_initializer(
            bias_initializer, "bias_initializer", where
        )
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != len(self.input_shape) or input_shape[-1] != self.input_shape[-1]:
            raise InputError(
                "input shape",
                f"{format_shape(self.input_shape)} (last axis {self.input_shape[-1]})",
                format_shape(input_shape),
                self.where,
            )

    def build(self, input_shape: Shape) -> None:
        n_in = input_shape[-1]
        self.weight = nn.Parameter(torch.empty(self.units, n_in))
        initializers.initialize(self.weight.data, self.kernel_initializer, (n_in, self.units))
        if self.use_bias:
            self.bias = nn.Parameter(torch.empty(self.units))
            initializers.initialize(self.bias.data, self.bias_initializer, (self.units,))

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # Keras applies Dense to the last axis: the channels
            y = _linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)
        else:
            y = _linear(x, self.weight, self.bias)
        return y if self.activation == "linear" else activations.get(self.activation)(y)

    @property
    def kernel(self) -> torch.Tensor:
        """Keras' kernel view (in, units) of ``weight`` (no copy)."""
        return self.weight.t()

    def get_weights(self) -> list[np.ndarray]:
        """[kernel (in, units), bias] in Keras' layout."""
        out = [self.weight.detach().t().cpu().numpy().copy()]
        return out + ([self.bias.detach().cpu().numpy().copy()] if self.bias is not None else [])

    def set_weights(self, weights: list[Any]) -> None:
        """Set weights given in Keras' layout."""
        expected = 2 if self.bias is not None else 1
        if not self.built or len(weights) != expected:
            raise InputError(
                "weights", f"a list of {expected} arrays for a built layer", weights, self.where
            )
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(np.asarray(weights[0])).t())
            if self.bias is not None:
                self.bias.copy_(torch.as_tensor(np.asarray(weights[1])))


class Flatten(Layer):
    """Flattens each sample in Keras' (H, W, C) order, so Dense weights match Keras' layout."""

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise NotSupportedError(f"{self.where}: data_format={data_format!r} is not supported.")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(s is None for s in input_shape):
            return (None,)
        return (math.prod(input_shape),)

    def check_input_shape(self, input_shape: Shape) -> None:
        if self.input_shape is not None and tuple(input_shape) != tuple(self.input_shape):
            raise InputError(
                "input shape", format_shape(self.input_shape), format_shape(input_shape), self.where
            )

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # NCHW-shaped, channels-last memory: this permute is a contiguous view
            x = x.permute(0, 2, 3, 1)
        return x.reshape(x.shape[0], -1)


class Dropout(Layer):
    """Keras' ``Dropout(rate)``: zeroes a fraction ``rate`` of inputs during training, scales the rest.

    ``seed`` is kept in the config for Keras compatibility, but the mask is drawn from torch's global
    generator (seed it with ``torch.manual_seed`` or ``fit(seed=...)``); ``noise_shape`` is not supported.
    """

    def __init__(
        self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        reject_unsupported(self.where, noise_shape=noise_shape)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise InputError("rate", "a number in [0, 1)", rate, self.where)
        self.rate = float(rate)
        self.seed = seed

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.rate, self.training) if self.rate > 0 else x


class Activation(Layer):
    """Applies a Keras activation by name (relu, relu6, sigmoid, tanh, softmax, leaky_relu, gelu, ...)."""

    def __init__(self, activation: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations.normalize_activation(activation, self.where)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return activations.get(self.activation)(x)


class ReLU(Activation):
    """Keras' ``ReLU`` layer (max_value=6 gives relu6)."""

    def __init__(self, max_value: float | None = None, **kwargs: Any):
        kwargs.pop("activation", None)
        if max_value not in (None, 6, 6.0):
            raise NotSupportedError("ReLU: only max_value=None or 6 are supported.")
        super().__init__("relu6" if max_value is not None else "relu", **kwargs)
        self.max_value = max_value

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("activation")
        return {**config, "max_value": self.max_value}


class Rescaling(Layer):
    """Keras' ``Rescaling(scale, offset=0.0)``: ``x * scale + offset`` (e.g. 1/255 for pixel values).
    ``scale`` and ``offset`` are numbers, or lists of one number per channel (the last axis)."""

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        for argument, value in (("scale", scale), ("offset", offset)):
            items = value if isinstance(value, (list, tuple)) else [value]
            if not items or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
                raise InputError(argument, "a number or a list of numbers (one per channel)", value, self.where)
        self.scale = [float(v) for v in scale] if isinstance(scale, (list, tuple)) else float(scale)
        self.offset = [float(v) for v in offset] if isinstance(offset, (list, tuple)) else float(offset)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    def _per_channel(self, value: Any, x: torch.Tensor) -> Any:
        if not isinstance(value, list):
            return value
        shape = [1] * x.dim()
        shape[1 if x.dim() == 4 else -1] = len(value)  # internal images are NCHW-shaped
        return torch.tensor(value, dtype=x.dtype, device=x.device).view(shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.scale, float) and isinstance(self.offset, float):
            return x * self.scale + self.offset
        return x * self._per_channel(self.scale, x) + self._per_channel(self.offset, x)


class Add(Layer):
    """Sums a list of tensors of the same shape (residual connections)."""

    multi_input = True

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise InputError(
                "inputs",
                "two or more tensors of the same shape",
                ", ".join(format_shape(s) for s in shapes),
                self.where,
            )
        return shapes[0]

    def check_input_shape(self, input_shape: list[Shape]) -> None:
        self.compute_output_shape(input_shape)

    def call(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concatenate(Layer):
    """Concatenates a list of tensors along a Keras axis (default -1: channels)."""

    multi_input = True

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise InputError(
                "axis",
                "a non-zero integer axis (the batch axis cannot be concatenated)",
                axis,
                self.where,
            )
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

    def _keras_axis(self, rank: int) -> int:
        axis = self.axis if self.axis > 0 else rank + 1 + self.axis  # rank excludes the batch axis
        if not 1 <= axis <= rank:
            raise InputError("axis", f"an axis of a rank-{rank + 1} tensor", self.axis, self.where)
        return axis

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        shapes = [tuple(s) for s in input_shape]
        axis = self._keras_axis(len(shapes[0])) - 1
        rest = [s[:axis] + s[axis + 1 :] for s in shapes]
        if (
            len(shapes) < 2
            or any(len(s) != len(shapes[0]) for s in shapes)
            or any(r != rest[0] for r in rest)
        ):
            raise InputError(
                "inputs",
                f"two or more tensors equal in shape except on axis {self.axis}",
                ", ".join(format_shape(s) for s in shapes),
                self.where,
            )
        size = None if any(s[axis] is None for s in shapes) else sum(s[axis] for s in shapes)
        return shapes[0][:axis] + (size,) + shapes[0][axis + 1 :]

    def check_input_shape(self, input_shape: list[Shape]) -> None:
        self.compute_output_shape(input_shape)

    def call(self, xs: list[torch.Tensor]) -> torch.Tensor:
        axis = self._keras_axis(xs[0].dim() - 1)
        if xs[0].dim() == 4:  # Keras (N, H, W, C) axes 1, 2, 3 are internal dims 2, 3, 1
            axis = {1: 2, 2: 3, 3: 1}[axis]
        return torch.cat(xs, dim=axis)


class Lambda(Layer):
    """Keras' ``Lambda(function, output_shape=None, arguments=None)``: ``function(inputs, **arguments)``
    as a layer, on channels-last tensors (Keras' layout; a list of them when called on a list). The output
    shape is ``output_shape`` (without the batch axis) or found by one call on a zero batch.

    A Lambda holds Python code, which pydlr's files never store (JSON and safetensors only): a model with
    one saves its weights (``save_weights``) but not its architecture; write a ``keras.layers.Layer``
    subclass, or rebuild the model in code and load the weights.
    """

    def __init__(self, function: Any, output_shape: Any = None, mask: Any = None, arguments: dict | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if not callable(function):
            raise InputError("function", "a callable", function, self.where)
        reject_unsupported(self.where, mask=mask)
        self.function = function
        self.arguments = dict(arguments or {})
        self.declared_output_shape = None if output_shape is None else tuple(output_shape)
        self.multi_input = False

    def _call_symbolic(self, inputs: Any, training: bool | None = None) -> Any:
        self.multi_input = isinstance(inputs, (list, tuple))  # Keras' Lambda takes a tensor or a list
        return super()._call_symbolic(inputs, training)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.declared_output_shape is not None:
            return self.declared_output_shape
        multi = isinstance(input_shape, list)
        zeros = [torch.zeros((2, *s)) for s in input_shape] if multi else torch.zeros((2, *input_shape))
        with torch.no_grad():
            out = self.function(zeros, **self.arguments)
        return tuple(int(d) for d in out.shape[1:])

    def call(self, x: Any) -> Any:
        return to_internal_all(self.function(to_public_all(x), **self.arguments))

    def get_config(self) -> dict[str, Any]:
        raise NotSupportedError(
            f"{self.where}: a Lambda layer holds Python code, which pydlr does not write to files (JSON and "
            "safetensors only). Save the weights with model.save_weights(path) and rebuild the model in code, "
            "or write the computation as a keras.layers.Layer subclass.")


def add(inputs: Any, **kwargs: Any) -> Any:
    """Keras' functional form ``keras.layers.add([a, b])``: ``Add(**kwargs)(inputs)``."""
    _check_merge_inputs(inputs, "add")
    return Add(**kwargs)(inputs)


def concatenate(inputs: Any, axis: int = -1, **kwargs: Any) -> Any:
    """Keras' functional form ``keras.layers.concatenate([a, b], axis=-1)``: ``Concatenate(axis)(inputs)``."""
    _check_merge_inputs(inputs, "concatenate")
    return Concatenate(axis=axis, **kwargs)(inputs)


def _check_merge_inputs(inputs: Any, where: str) -> None:
    # a single tensor or a string otherwise failed deep in the layer with an AttributeError
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise InputError("inputs", "a list of tensors, e.g. [a, b]", inputs, where=where)
