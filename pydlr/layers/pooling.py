"""Pooling layers with Keras' arguments and "valid"/"same" rules."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from pydlr import ops
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import Layer, Shape, format_shape, pair
from pydlr.layers.conv import get_conv_backend
from pydlr.layers.geometry import normalize_padding, op_padding, padding_config, window_output_shape


def _channels_last_only(data_format: str | None, where: str) -> None:
    if data_format not in (None, "channels_last"):
        raise NotSupportedError(
            f"{where}: data_format={data_format!r} is not supported; use channels_last."
        )


def _check_image_shape(input_shape: Shape, where: str) -> None:
    if len(input_shape) != 3:
        raise InputError(
            "input shape", "(None, height, width, channels)", format_shape(input_shape), where
        )


class _Pooling2D(Layer):
    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: Any = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = self.where
        _channels_last_only(data_format, where)
        self.pool_size = pair(pool_size, "pool_size", where)
        self.strides = self.pool_size if strides is None else pair(strides, "strides", where)
        self.padding = normalize_padding(padding, where)
        if not isinstance(self.padding, str) and any(
            p > k // 2 for p, k in zip(self.padding, self.pool_size, strict=False)
        ):
            raise InputError("padding", "at most half the pool size", padding, where)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": padding_config(self.padding),
        }

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        h, w = window_output_shape(
            input_shape, self.pool_size, self.strides, (1, 1), self.padding, self.where, "pool_size"
        )
        return (h, w, input_shape[-1])

    def check_input_shape(self, input_shape: Shape) -> None:
        _check_image_shape(input_shape, self.where)
        self.compute_output_shape(input_shape)

    def _pads(self, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
        return op_padding(
            x.shape[2], x.shape[3], self.pool_size, self.strides, (1, 1), self.padding
        )


class MaxPooling2D(_Pooling2D):
    """Max pooling, Keras' ``MaxPooling2D(pool_size=(2, 2), strides=None, padding="valid")``."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        sym, asym = self._pads(x)
        if asym is None and tuple(sym) == (0, 0) and self._native_ok(x):
            return ops.max_pool2d(x, self.pool_size, self.strides)
        if asym is not None:
            x = F.pad(x, asym, value=float("-inf"))
        return F.max_pool2d(x, self.pool_size, self.strides, sym)

    @staticmethod
    def _native_ok(x: torch.Tensor) -> bool:
        # The native kernel (no indices, one-pass backward) is CPU-only; the switch that picks native or
        # stock convolutions (set_conv_backend) picks the pooling too, so "torch" stays all-stock.
        return (
            get_conv_backend() != "torch"
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
        )


class AveragePooling2D(_Pooling2D):
    """Average pooling, Keras' ``AveragePooling2D``; with "same", padded cells are left out of the mean."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        sym, asym = self._pads(x)
        if asym is None:
            return F.avg_pool2d(x, self.pool_size, self.strides, sym, count_include_pad=False)
        ones = torch.ones((1, 1, x.shape[2], x.shape[3]), dtype=x.dtype, device=x.device)
        total = F.avg_pool2d(F.pad(x, asym), self.pool_size, self.strides, divisor_override=1)
        count = F.avg_pool2d(F.pad(ones, asym), self.pool_size, self.strides, divisor_override=1)
        return total / count


class _GlobalPooling2D(Layer):
    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        _channels_last_only(data_format, self.where)
        self.keepdims = bool(keepdims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "keepdims": self.keepdims}

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _check_image_shape(input_shape, self.where)
        return (1, 1, input_shape[-1]) if self.keepdims else (input_shape[-1],)

    def check_input_shape(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with ``keepdims=True``."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=self.keepdims)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Maximum over height and width: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with ``keepdims=True``."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=self.keepdims)
