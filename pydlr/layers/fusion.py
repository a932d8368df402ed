"""Layer fusion: a Conv2D and the MaxPooling2D right after it, or a BatchNormalization in training and the ReLU /
ReLU6 after it, computed by one native operator.

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
  kernel exists (``pydlr.ops.conv_pool_fusable``: CPU, float32, few input channels, or a Winograd F(4x4, 3x3)
  convolution with 2x2 windows of stride 2) the activation is never stored; elsewhere the operator runs the
  convolution then the pooling as one autograd node, whose backward masks the pooled gradient (a quarter of the
  elements for 2x2 windows) instead of the full-resolution one;
- no forward or backward hook is registered on either layer or globally: hooks (pydlr.interpret's activation
  maps and Grad-CAM, summaries) must see the convolution's own output.

BatchNormalization in training mode and the activation after it (MobileNetV2's and EfficientNet-Lite's
conv -> BN -> ReLU6, and BN alone) go through :func:`batch_norm_act`, which runs ``pydlr.ops.batch_norm_act``
(statistics, normalization and activation in two passes forward and two backward, no intermediate tensor) when:
the BN is exactly ``BatchNormalization`` in training mode, the activation exactly ``Activation`` / ``ReLU`` with
relu, relu6 or linear (or none); the global backend is not "torch" (stock torch ops, for comparisons); no hooks;
and the input is one the operator takes (CPU float32 / float64, channels-last). Inference-mode BN is left to
torch (``pydlr.models.inference`` folds it into the convolution).

When such a BatchNormalization + activation feeds a DepthwiseConv2D (the inverted residual blocks' expand ->
depthwise), :func:`batch_norm_act_depthwise` runs all three as ``pydlr.ops.batch_norm_act_depthwise``, which
never stores the activated tensor (the block's widest), under the conditions above and: the convolution is exactly
``DepthwiseConv2D`` (depth multiplier 1, no bias, linear activation, dilation 1) built, unhooked,
not forced to torch, and the shape is one the operator saves work on (``ops.batch_norm_act_depthwise_supported``;
float64 always, the tests' reference dtype).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.nn.modules import module as _module

from pydlr import ops
from pydlr.errors import InputError
from pydlr.layers.base import keras_shape
from pydlr.layers.conv import Conv2D, DepthwiseConv2D, get_conv_backend
from pydlr.layers.core import Activation, ReLU
from pydlr.layers.geometry import op_padding
from pydlr.layers.normalization import BatchNormalization
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


def batch_norm_act(bn: torch.nn.Module, act: torch.nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """``act(bn(x))`` (``bn(x)`` when ``act`` is None), through the fused operator where it applies (see the
    module docstring). Either module may be anything callable (``nn.Identity`` once folded for inference)."""
    y = bn_then_act(bn, act, x)
    if y is not None:
        return y
    y = bn(x)
    return y if act is None else act(y)


def _bn_act_name(bn: object, act: object | None, x: torch.Tensor) -> str | None:
    """The operator's activation name when ``act(bn(x))`` may run fused, else None."""
    if not _state["enabled"] or type(bn) is not BatchNormalization or not bn.uses_batch_statistics:
        return None
    if act is None:
        name = "none"
    elif type(act) in (Activation, ReLU) and act.activation in _OP_ACTIVATION:
        name = _OP_ACTIVATION[act.activation]
    else:
        return None
    if get_conv_backend() == "torch" or not bn.built or _hooked(bn) or (act is not None and _hooked(act)):
        return None
    if _global_hooks() or not ops.batch_norm_act_supported(x) or x.dtype != bn.running_mean.dtype:
        return None
    return name


def bn_then_act(bn: object, act: object | None, x: torch.Tensor) -> torch.Tensor | None:
    """``act(bn(x))`` by ``pydlr.ops.batch_norm_act``, or None when this pair must run layer by layer."""
    name = _bn_act_name(bn, act, x)
    if name is None:
        return None
    bn.check_input_shape(keras_shape(x))  # the layer's own error for a wrong channel count
    bn.num_batches_tracked.add_(1)
    return ops.batch_norm_act(
        x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.torch_momentum, bn.epsilon, name
    )


class BatchNormActSequential(torch.nn.Sequential):
    """``nn.Sequential`` whose BatchNormalization + activation pairs run through :func:`batch_norm_act`: the same
    children, keys and results as ``nn.Sequential``, fewer passes over memory in training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mods = list(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            mod = mods[i]
            if type(mod) is BatchNormalization:
                nxt = mods[i + 1] if i + 1 < n else None
                act = nxt if type(nxt) in (Activation, ReLU) else None
                y = bn_then_act(mod, act, x)
                if y is not None:
                    x = y
                    i += 1 if act is None else 2
                    continue
            x = mod(x)
            i += 1
        return x


def hooked(*modules: torch.nn.Module) -> bool:
    """Whether any of ``modules`` (containers a fused path would bypass, too) or the global tables has a hook."""
    return _global_hooks() or any(_hooked(m) for m in modules)


def batch_norm_act_depthwise(bn: torch.nn.Module, act: torch.nn.Module | None, conv: torch.nn.Module,
                             x: torch.Tensor) -> torch.Tensor:
    """``conv(act(bn(x)))``, through the fused operator where it applies (see the module docstring), else
    ``conv(batch_norm_act(bn, act, x))``."""
    z = bn_act_depthwise(bn, act, conv, x)
    return conv(batch_norm_act(bn, act, x)) if z is None else z


def bn_act_depthwise(bn: object, act: object | None, conv: object, x: torch.Tensor) -> torch.Tensor | None:
    """``conv(act(bn(x)))`` by ``pydlr.ops.batch_norm_act_depthwise``, or None when the three must run layer by
    layer (see the module docstring)."""
    if type(conv) is not DepthwiseConv2D or not conv.built or _hooked(conv) or conv.backend == "torch":
        return None
    if conv.depth_multiplier != 1 or conv.bias is not None or conv.activation != "linear":
        return None
    if tuple(conv.dilation_rate) != (1, 1) or x.dim() != 4 or conv.weight.dtype != x.dtype:
        return None
    name = _bn_act_name(bn, act, x)
    if name is None:
        return None
    sym, asym = op_padding(x.shape[2], x.shape[3], conv.kernel_size, conv.strides, conv.dilation_rate, conv.padding)
    # (top, bottom, left, right); op_padding gives either symmetric padding or an F.pad spec (left, right, top, bottom)
    pads = (sym[0], sym[0], sym[1], sym[1]) if asym is None else (asym[2], asym[3], asym[0], asym[1])
    if not ops.batch_norm_act_depthwise_supported(x, conv.kernel_size, conv.strides, pads):
        return None
    shape = keras_shape(x)
    bn.check_input_shape(shape)
    conv.check_input_shape(shape)
    bn.num_batches_tracked.add_(1)
    return ops.batch_norm_act_depthwise(
        x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.torch_momentum, bn.epsilon, name,
        conv.weight, conv.strides, pads,
    )
