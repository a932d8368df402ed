"""Conv2D and DepthwiseConv2D with Keras' arguments, computed by pydlr's native operator by default."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pydlr import ops
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers import activations, initializers
from pydlr.layers.base import Layer, Shape, format_shape, pair, positive_int, reject_unsupported
from pydlr.layers.geometry import normalize_padding, op_padding, padding_config, window_output_shape

BACKENDS = ("auto", "native", "torch")
# "auto": per shape, whichever of pydlr's native kernel and torch's conv2d is faster (pydlr.ops.native_wins).
_state = {"backend": "auto"}
# Whether pydlr.ops.conv2d can apply relu/relu6 inside the op (newer native builds).


def _check_backend(backend: Any, where: str) -> None:
    if backend not in BACKENDS:
        raise InputError("backend", f"one of {BACKENDS}", backend, where)


def set_conv_backend(backend: str) -> None:
    """Choose how convolution and max-pooling layers without their own ``backend`` compute.

    "auto" (the default) takes pydlr's native kernel where it is the faster one for the shape and device
    (see ``pydlr.ops.native_wins``) and torch's otherwise; "native" always pydlr.ops; "torch" always torch's
    stock ops (for comparisons).
    """
    _check_backend(backend, "set_conv_backend")
    _state["backend"] = backend


def get_conv_backend() -> str:
    """The global convolution backend ("auto", "native" or "torch")."""
    return _state["backend"]


@contextlib.contextmanager
def conv_backend(backend: str) -> Iterator[None]:
    """Temporarily set the global convolution backend (for comparisons)."""
    previous = get_conv_backend()
    set_conv_backend(backend)
    try:
        yield
    finally:
        _state["backend"] = previous


class _ConvBase(Layer):
    """Shared geometry, activation and backend dispatch of the convolution layers."""

    def __init__(
        self,
        kernel_size: Any,
        strides: Any,
        padding: Any,
        data_format: str | None,
        dilation_rate: Any,
        activation: str | None,
        use_bias: bool,
        bias_initializer: str,
        backend: str | None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = self.where
        if data_format not in (None, "channels_last"):
            raise NotSupportedError(
                f"{where}: data_format={data_format!r} is not supported; pydlr's API is channels_last "
                "(N, H, W, C) and converts to its internal layout itself."
            )
        self.kernel_size = pair(kernel_size, "kernel_size", where)
        self.strides = pair(strides, "strides", where)
        self.padding = normalize_padding(padding, where)
        self.dilation_rate = pair(dilation_rate, "dilation_rate", where)
        self.activation = activations.normalize_activation(activation, where)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.normalize_initializer(
            bias_initializer, "bias_initializer", where
        )
        if backend is not None:
            _check_backend(backend, where)
        self.backend = backend
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        self.in_channels: int | None = None
        # "auto" backend: the choice for the last input layout seen (shape, strides, dtype, device).
        self._auto_choice: dict[tuple[Any, ...], str] = {}
        # How a following MaxPooling2D fuses with this layer (pydlr.layers.fusion), per input layout: the
        # convolution's padding, or None when it does not.
        self._pool_fusion: dict[tuple[Any, ...], tuple[int, int] | None] = {}

    def _common_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": padding_config(self.padding),
            "dilation_rate": list(self.dilation_rate),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "bias_initializer": self.bias_initializer,
            "backend": self.backend,
        }

    def out_channels(self, in_channels: int) -> int:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        h, w = window_output_shape(
            input_shape,
            self.kernel_size,
            self.strides,
            self.dilation_rate,
            self.padding,
            self.where,
        )
        return (h, w, self.out_channels(input_shape[-1]))

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] != self.in_channels:
            raise InputError(
                "input shape",
                f"(None, height, width, {self.in_channels}) (the shape it was built for: "
                f"{format_shape(self.input_shape)})",
                format_shape(input_shape),
                self.where,
            )
        self.compute_output_shape(input_shape)

    def _convolve(self, x: torch.Tensor, groups: int) -> torch.Tensor:
        (sym, asym) = op_padding(
            x.shape[2], x.shape[3], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        if asym is not None:
            x = F.pad(x, asym)
        backend = self._resolve_backend(x, sym, groups)
        if backend == "torch":
            y = F.conv2d(x, self.weight, self.bias, self.strides, sym, self.dilation_rate, groups)
        elif self.activation in activations.FUSABLE:
            return ops.conv2d(
                x,
                self.weight,
                self.bias,
                self.strides,
                sym,
                self.dilation_rate,
                groups,
                activation=self.activation,
            )
        else:
            y = ops.conv2d(x, self.weight, self.bias, self.strides, sym, self.dilation_rate, groups)
        if self.activation == "linear":
            return y
        if self.activation == "relu":
            # In place: the convolution's backward needs its input and weight, not its output, so the fresh
            # output can be overwritten (one pass and one allocation less per layer).
            return torch.relu_(y)
        return activations.get(self.activation)(y)

    def _resolve_backend(self, x: torch.Tensor, padding: tuple[int, int], groups: int) -> str:
        backend = self.backend or _state["backend"]
        if backend != "auto":
            return backend
        key = (x.shape, x.stride(), x.dtype, x.device)
        cache = self._auto_choice
        if key not in cache:
            fused = self.activation if self.activation in activations.FUSABLE else "none"
            wins = ops.native_wins(
                x, self.weight, self.strides, padding, self.dilation_rate, groups, activation=fused
            )
            cache.clear()  # one entry: shapes change rarely (last batch of an epoch, predict)
            cache[key] = "native" if wins else "torch"
        return cache[key]

    def _build_bias(self, n: int) -> None:
        if self.use_bias:
            self.bias = nn.Parameter(torch.empty(n))
            initializers.initialize(self.bias.data, self.bias_initializer, (n,))


class Conv2D(_ConvBase):
    """2-D convolution, Keras' ``Conv2D``.

    Parameters
    ----------
    filters : int
        Number of output channels (> 0).
    kernel_size : int or (int, int)
        Window height and width.
    strides : int or (int, int)
        Step of the window.
    padding : {"valid", "same"} or int or (int, int)
        Keras' rules ("same" pads asymmetrically for even kernels, extra pixel after, as TensorFlow); an
        int or pair is pydlr's explicit symmetric padding as torch's (used by the torchvision architectures).
    data_format : None or "channels_last"
        Only channels-last is offered at the API.
    dilation_rate : int or (int, int)
    groups : int
        Grouped convolution; ``filters`` and the input channels must be divisible by it.
    activation : str or None
        Keras activation name; relu and relu6 are fused into the native op when it supports it.
    use_bias : bool
    kernel_initializer, bias_initializer : str
        Keras initializer names; defaults glorot_uniform and zeros as in Keras.
    backend : {"auto", "native", "torch"} or None
        None follows ``set_conv_backend`` (default "auto": ``pydlr.ops.conv2d`` where its kernel is the faster
        for the shape, torch's otherwise); "native" always ``pydlr.ops.conv2d``; "torch" always
        ``torch.nn.functional.conv2d``.

    Notes
    -----
    Weights are stored in torch's layout: ``weight`` (filters, in/groups, kh, kw) and ``bias`` (filters,);
    ``get_weights()`` returns Keras' layout (kh, kw, in/groups, filters).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        groups: int = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        backend: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            backend,
            **kwargs,
        )
        where = self.where
        reject_unsupported(
            where,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )
        self.filters = positive_int(filters, "filters", where)
        self.groups = positive_int(groups, "groups", where)
        if self.filters % self.groups:
            raise InputError("groups", f"a divisor of filters={self.filters}", groups, where)
        self.kernel_initializer = initializers.normalize_initializer(
            kernel_initializer, "kernel_initializer", where
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **self._common_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": self.kernel_initializer,
        }

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def build(self, input_shape: Shape) -> None:
        channels = input_shape[-1]
        if channels % self.groups:
            raise InputError(
                "groups", f"a divisor of the input channels ({channels})", self.groups, self.where
            )
        self.in_channels = channels
        kh, kw = self.kernel_size
        per_group = channels // self.groups
        self.weight = nn.Parameter(torch.empty(self.filters, per_group, kh, kw))
        initializers.initialize(
            self.weight.data, self.kernel_initializer, (kh, kw, per_group, self.filters)
        )
        self._build_bias(self.filters)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(x, self.groups)

    @property
    def kernel(self) -> torch.Tensor:
        """Keras' kernel view (kh, kw, in/groups, filters) of ``weight`` (no copy)."""
        return self.weight.permute(2, 3, 1, 0)

    def get_weights(self) -> list[np.ndarray]:
        """[kernel (kh, kw, in/groups, filters), bias] in Keras' layout, as NumPy copies."""
        out = [self.weight.detach().permute(2, 3, 1, 0).cpu().numpy().copy()]
        return out + ([self.bias.detach().cpu().numpy().copy()] if self.bias is not None else [])

    def set_weights(self, weights: list[Any]) -> None:
        """Set weights given in Keras' layout (as ``get_weights`` returns them)."""
        _set_from_keras(self, weights, lambda k: torch.as_tensor(np.asarray(k)).permute(3, 2, 0, 1))


class DepthwiseConv2D(_ConvBase):
    """Depthwise 2-D convolution, Keras' ``DepthwiseConv2D`` (one filter set per input channel).

    Output channel ``c * depth_multiplier + m`` comes from input channel ``c``, as in Keras. Arguments as
    ``Conv2D`` plus ``depth_multiplier`` and ``depthwise_initializer``.
    """

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        activation: str | None = None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        backend: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            backend,
            **kwargs,
        )
        where = self.where
        reject_unsupported(
            where,
            depthwise_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint,
            bias_constraint=bias_constraint,
        )
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", where)
        self.depthwise_initializer = initializers.normalize_initializer(
            depthwise_initializer, "depthwise_initializer", where
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **self._common_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": self.depthwise_initializer,
        }

    def out_channels(self, in_channels: int) -> int:
        return in_channels * self.depth_multiplier

    def build(self, input_shape: Shape) -> None:
        channels = input_shape[-1]
        self.in_channels = channels
        kh, kw = self.kernel_size
        out = channels * self.depth_multiplier
        self.weight = nn.Parameter(torch.empty(out, 1, kh, kw))
        initializers.initialize(
            self.weight.data, self.depthwise_initializer, (kh, kw, channels, self.depth_multiplier)
        )
        self._build_bias(out)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(x, self.in_channels)

    @property
    def depthwise_kernel(self) -> torch.Tensor:
        """Keras' depthwise kernel view (kh, kw, channels, depth_multiplier) of ``weight`` (no copy)."""
        kh, kw = self.kernel_size
        return self.weight.reshape(self.in_channels, self.depth_multiplier, kh, kw).permute(
            2, 3, 0, 1
        )

    def get_weights(self) -> list[np.ndarray]:
        """[depthwise_kernel (kh, kw, channels, depth_multiplier), bias] in Keras' layout."""
        kh, kw = self.kernel_size
        kernel = self.weight.detach().reshape(self.in_channels, self.depth_multiplier, kh, kw)
        out = [kernel.permute(2, 3, 0, 1).cpu().numpy().copy()]
        return out + ([self.bias.detach().cpu().numpy().copy()] if self.bias is not None else [])

    def set_weights(self, weights: list[Any]) -> None:
        """Set weights given in Keras' layout (as ``get_weights`` returns them)."""

        def convert(k: Any) -> torch.Tensor:
            t = torch.as_tensor(np.asarray(k)).permute(2, 3, 0, 1)
            return t.reshape(-1, 1, *self.kernel_size)

        _set_from_keras(self, weights, convert)


def _set_from_keras(layer: _ConvBase, weights: list[Any], convert_kernel: Any) -> None:
    expected = 2 if layer.bias is not None else 1
    if not layer.built or len(weights) != expected:
        raise InputError(
            "weights", f"a list of {expected} arrays for a built layer", weights, layer.where
        )
    kernel = convert_kernel(weights[0])
    if tuple(kernel.shape) != tuple(layer.weight.shape):
        raise InputError(
            "weights[0]",
            f"a kernel of torch shape {tuple(layer.weight.shape)}",
            tuple(kernel.shape),
            layer.where,
        )
    with torch.no_grad():
        layer.weight.copy_(kernel)
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(np.asarray(weights[1])))


class SeparableConv2D(Layer):
    """Depthwise-separable 2-D convolution, Keras' ``SeparableConv2D``: a depthwise convolution
    (``depth_multiplier`` filters of ``kernel_size`` per input channel, with ``strides``, ``padding`` and
    ``dilation_rate``) followed by a 1 x 1 pointwise convolution to ``filters`` channels, then the bias and
    ``activation``. The two steps are a `DepthwiseConv2D` and a `Conv2D` inside, so pydlr's convolution
    kernels serve both. Weights as Keras': ``[depthwise_kernel (kh, kw, in, depth_multiplier),
    pointwise_kernel (1, 1, in * depth_multiplier, filters), bias]``, i.e. ``kh * kw * in * dm + in * dm *
    filters + filters`` parameters.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        depth_multiplier: int = 1,
        activation: str | None = None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        pointwise_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        backend: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        reject_unsupported(
            self.where, depthwise_regularizer=depthwise_regularizer, pointwise_regularizer=pointwise_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint, pointwise_constraint=pointwise_constraint,
            bias_constraint=bias_constraint,
        )
        self.depthwise = DepthwiseConv2D(
            kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, None, False,
            depthwise_initializer, backend=backend, name=f"{self.name}_depthwise",
        )
        self.pointwise = Conv2D(
            filters, 1, activation=activation, use_bias=use_bias, kernel_initializer=pointwise_initializer,
            bias_initializer=bias_initializer, backend=backend, name=f"{self.name}_pointwise",
        )

    def get_config(self) -> dict[str, Any]:
        dw, pw = self.depthwise.get_config(), self.pointwise.get_config()
        keep = ("kernel_size", "strides", "padding", "dilation_rate", "depth_multiplier", "depthwise_initializer",
                "backend")
        return {
            **super().get_config(), **{k: dw[k] for k in keep}, "filters": pw["filters"],
            "activation": pw["activation"], "use_bias": pw["use_bias"],
            "pointwise_initializer": pw["kernel_initializer"], "bias_initializer": pw["bias_initializer"],
        }

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        h, w, _ = self.depthwise.compute_output_shape(input_shape)
        return (h, w, self.pointwise.filters)

    def check_input_shape(self, input_shape: Shape) -> None:
        self.depthwise.check_input_shape(input_shape)

    def build(self, input_shape: Shape) -> None:
        self.pointwise.build_from(self.depthwise.build_from(input_shape))

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))

    def weight_tensors(self) -> list[torch.Tensor]:
        return self.depthwise.weight_tensors() + self.pointwise.weight_tensors()

    def get_weights(self) -> list[np.ndarray]:
        """[depthwise_kernel, pointwise_kernel, bias] in Keras' layouts."""
        return self.depthwise.get_weights() + self.pointwise.get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        """Set weights given in Keras' layout (as ``get_weights`` returns them)."""
        if not isinstance(weights, (list, tuple)) or len(weights) != 2 + self.pointwise.use_bias:
            raise InputError("weights", f"a list of {2 + self.pointwise.use_bias} arrays (depthwise kernel, "
                             "pointwise kernel, bias)", weights, self.where)
        self.depthwise.set_weights([weights[0]])
        self.pointwise.set_weights(list(weights[1:]))
