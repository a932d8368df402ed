"""Output sizes and padding for convolution and pooling windows, with Keras' "valid"/"same" rules."""

from __future__ import annotations

import math
from typing import Any

from pydlr.errors import InputError
from pydlr.layers.base import pair

Padding = str | tuple[int, int]


def normalize_padding(padding: Any, where: str) -> Padding:
    """Keras' "valid"/"same" (case-insensitive), or pydlr's explicit symmetric (ph, pw) as torch uses it."""
    if isinstance(padding, str) and padding.lower() in ("valid", "same"):
        return padding.lower()
    if not isinstance(padding, str):
        try:
            return pair(padding, "padding", where, minimum=0)
        except InputError:
            pass
    raise InputError(
        "padding", '"valid", "same", or explicit symmetric padding (ph, pw) >= 0', padding, where
    )


def padding_config(padding: Padding) -> str | list[int]:
    """JSON-safe form of a normalized padding."""
    return padding if isinstance(padding, str) else list(padding)


def output_length(
    size: int, kernel: int, stride: int, dilation: int, padding: Padding, axis: int
) -> int:
    """Output length along one spatial axis (axis 0 = height, 1 = width)."""
    effective = dilation * (kernel - 1) + 1
    if padding == "same":
        return math.ceil(size / stride)
    pad = 0 if padding == "valid" else 2 * padding[axis]
    return (size + pad - effective) // stride + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow/Keras "same" padding (before, after): the extra pixel of an odd total goes after."""
    effective = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def window_output_shape(
    input_shape: tuple,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int],
    padding: Padding,
    where: str,
    argument: str = "kernel_size",
) -> tuple[int, int]:
    """(out_h, out_w) for a window op on a Keras-style (H, W, C) shape; InputError if an output size <= 0."""
    if len(input_shape) != 3:
        raise InputError(
            "input shape", "(height, width, channels) (a 4-d batch)", _fmt(input_shape), where
        )
    out = []
    for axis in (0, 1):
        size = input_shape[axis]
        if size is None:
            out.append(None)
            continue
        n = output_length(size, kernel[axis], strides[axis], dilation[axis], padding, axis)
        if n <= 0:
            raise InputError(
                argument,
                f"no larger than the input (padding {padding!r}, dilation {dilation}) so that every "
                "output size is >= 1",
                f"{kernel} on input {_fmt(input_shape)}: output size {n}",
                where,
            )
        out.append(n)
    return out[0], out[1]


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in (None, *shape)) + ")"


def op_padding(
    height: int,
    width: int,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int],
    padding: Padding,
) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """Symmetric padding for the op, and an asymmetric F.pad spec (left, right, top, bottom) or None."""
    if padding == "valid":
        return (0, 0), None
    if padding != "same":
        return padding, None
    top, bottom = same_pads(height, kernel[0], strides[0], dilation[0])
    left, right = same_pads(width, kernel[1], strides[1], dilation[1])
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), (left, right, top, bottom)
