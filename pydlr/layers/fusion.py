"""Layer fusion: a Conv2D and the MaxPooling2D right after it computed by one native operator.

A CNN's first convolution (few input channels, e.g. Conv2D(32, 3, relu) on grey images) writes the largest
activation of the model, which the pooling after it reads once and the backward passes write and read again.
``pydlr.ops.conv2d_act_pool`` computes convolution, bias, activation and pooling in one pass and never stores
that activation (bench/bench_step.py measures what it saves in a training step). Models that run layers in a
chain (Sequential) ask :func:`conv_then_pool` for each adjacent pair; it returns None whenever the pair must
run layer by layer, so fusion never changes results, only speed:

- the layers are exactly Conv2D (groups 1) and MaxPooling2D with "valid" pooling;
- the convolution's backend resolves to the native op for this input (``set_conv_backend`` / the layer's
  ``backend``: "torch" never fuses), and its activation is linear, relu or relu6;
- the pooling runs natively for the input (``MaxPooling2D._native_ok``: CPU, float32/float64). Where the fused
  kernel exists (``pydlr.ops.conv_pool_fusable``: CPU, float32, few input channels) the activation is never
  stored; elsewhere the operator runs the convolution then the pooling as one autograd node, whose backward
  masks the pooled gradient (a quarter of the elements for 2x2 windows) instead of the full-resolution one;
- no forward or backward hook is registered on either layer or globally: hooks (pydlr.interpret's activation
  maps and Grad-CAM, summaries) must see the convolution's own output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.nn.modules import module as _module

from pydlr import ops
from pydlr.errors import InputError
from pydlr.layers.base import keras_shape
from pydlr.layers.conv import Conv2D, get_conv_backend
from pydlr.layers.geometry import op_padding
from pydlr.layers.pooling import MaxPooling2D

_OP_ACTIVATION = {"linear": "none", "relu": "relu", "relu6": "relu6"}
_state = {"enabled": True}


def set_layer_fusion(enabled: bool) -> None:
    """Turn layer fusion on (the default) or off, e.g. to compare speed or to debug layer by layer."""
    if not isinstance(enabled, bool):
        raise InputError("enabled", "True or False", enabled, where="set_layer_fusion")
    _state["enabled"] = enabled


@contextlib.contextmanager
def layer_fusion(enabled: bool) -> Iterator[None]:
    """Temporarily turn layer fusion on or off."""
    previous = _state["enabled"]
    set_layer_fusion(enabled)
    try:
        yield
    finally:
        _state["enabled"] = previous


def _hooked(layer: torch.nn.Module) -> bool:
    return bool(
        layer._forward_hooks
        or layer._forward_pre_hooks
        or layer._backward_hooks
        or layer._backward_pre_hooks
    )


# torch keeps the hooks registered with register_module_forward_hook & co. in these module globals; read
# defensively (private names): a torch without one of them simply has no such hooks.
_GLOBAL_HOOK_TABLES = (
    "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks", "_global_backward_pre_hooks",
)


def _global_hooks() -> bool:
    return any(getattr(_module, name, None) for name in _GLOBAL_HOOK_TABLES)


def conv_then_pool(conv: object, pool: object, x: torch.Tensor) -> torch.Tensor | None:
    """``pool(conv(x))`` through the fused operator, or None when this pair must run layer by layer."""
    if not _state["enabled"] or type(conv) is not Conv2D or type(pool) is not MaxPooling2D:
        return None
    if not (conv.built and pool.built) or _hooked(conv) or _hooked(pool) or _global_hooks():
        return None
    # The plan depends only on the input's layout and the switches that pick the ops: decided once per layout
    # (one entry, as the backend choice: shapes change rarely), so a pair that does not fuse costs a lookup.
    key = (x.shape, x.stride(), x.dtype, x.device, conv.backend, get_conv_backend(), MaxPooling2D._native_ok(x))
    cache = conv._pool_fusion
    if key not in cache:
        padding = _plan(conv, pool, x)
        cache.clear()
        cache[key] = padding
    padding = cache[key]
    if padding is None:
        return None
    return ops.conv2d_act_pool(
        x, conv.weight, conv.bias, conv.strides, padding, conv.dilation_rate, 1,
        _OP_ACTIVATION[conv.activation], pool.pool_size, pool.strides,
    )


def _plan(conv: Conv2D, pool: MaxPooling2D, x: torch.Tensor) -> tuple[int, int] | None:
    """The convolution's symmetric padding when the pair fuses for inputs laid out as ``x``, else None."""
    if conv.groups != 1 or conv.activation not in _OP_ACTIVATION or pool.padding != "valid":
        return None
    # The checks the layers' own forward would make, with the same errors, before anything reads x (a fused
    # layout was checked when first seen; the same layout passes them again).
    shape = keras_shape(x)
    conv.check_input_shape(shape)
    pool.check_input_shape(conv.compute_output_shape(shape))
    sym, asym = op_padding(
        x.shape[2], x.shape[3], conv.kernel_size, conv.strides, conv.dilation_rate, conv.padding
    )
    if asym is not None or not MaxPooling2D._native_ok(x) or conv._resolve_backend(x, sym, 1) != "native":
        return None
    # Without a fused kernel for the shape (ops.conv_pool_fusable) the operator still runs both as one autograd
    # node, whose backward masks the pooled gradient instead of the full-resolution one.
    return tuple(sym)
