"""The only module that knows pydlr's operators are native: loads pydlr._C and wraps torch.ops.pydlr.*.

``conv2d`` is the single entry point the layers use. It is backed by ``torch.ops.pydlr.conv2d`` and
``torch.ops.pydlr.conv2d_act`` (C++ CPU kernels, CUDA kernels where compiled), differentiable through a C++
autograd function. Python-level arguments (activation name, tuple lengths) are checked here and raise
:class:`pydlr.errors.InputError`; tensor problems (rank, dtype, device, groups) are checked by the operator
itself with ``TORCH_CHECK`` and raise ``RuntimeError`` with a message naming the operator and the values.
"""

from __future__ import annotations

from typing import Any

import torch

from pydlr import _C  # importing registers torch.ops.pydlr.*
from pydlr.errors import InputError

ACTIVATIONS = ("none", "relu", "relu6")

_WHERE = "pydlr.ops.conv2d"


def _pair(value: int | tuple[int, int] | list[int], name: str) -> list[int]:
    """Normalises an int or a pair of ints to a list of two ints, raising InputError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return [int(value[0]), int(value[1])]
    raise InputError(name, "an int or a pair of ints", value, where=_WHERE)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    activation: str = "none",
) -> torch.Tensor:
    """2-d convolution with torch.nn.functional.conv2d's semantics, optionally fused with an activation.

    Parameters
    ----------
    x : torch.Tensor
        Input of shape (N, C, H, W), float32 or float64. Channels-last memory format is the fast path on
        CPU; the output then is channels-last too (the output follows the input's memory format).
    weight : torch.Tensor
        Kernel of shape (out_channels, C / groups, kH, kW), same dtype and device as ``x``.
    bias : torch.Tensor or None
        Optional bias of shape (out_channels,).
    stride, padding, dilation : tuple of int
        Pairs (height, width); an int means the same value for both. Padding is symmetric zero padding;
        pad asymmetrically with ``torch.nn.functional.pad`` beforehand.
    groups : int
        Number of groups; ``groups == C == out_channels`` is a depthwise convolution.
    activation : {"none", "relu", "relu6"}
        Activation fused into the same pass as the convolution and the bias.

    Returns
    -------
    torch.Tensor
        Output of shape (N, out_channels, H_out, W_out), differentiable with respect to x, weight and bias.

    Raises
    ------
    pydlr.errors.InputError
        For a bad activation name or malformed stride/padding/dilation/groups.
    RuntimeError
        From the operator's checks: wrong rank, dtype or device mismatch, channels not divisible by groups,
        empty batch, kernel larger than the padded input.
    """
    if activation not in ACTIVATIONS:
        raise InputError("activation", f"one of {ACTIVATIONS}", activation, where=_WHERE)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise InputError("groups", "a positive int", groups, where=_WHERE)
    s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if activation == "none":
        return torch.ops.pydlr.conv2d(x, weight, bias, s, p, d, groups)
    return torch.ops.pydlr.conv2d_act(x, weight, bias, s, p, d, groups, activation)


def build_info() -> dict[str, Any]:
    """Facts about the native build: compiler, SIMD level in use, OpenMP, threads, BLAS route, CUDA compiled.

    Returns
    -------
    dict
        Keys ``compiler``, ``simd``, ``openmp``, ``threads``, ``blas``, ``cuda`` (bool: CUDA kernels compiled
        into this build), ``torch_version`` (the torch the extension was compiled against).
    """
    return dict(_C.build_info())
