"""The only module that knows pydlr's operators are native: loads pydlr._C and wraps torch.ops.pydlr.*.

``conv2d`` is the single entry point the layers use. It is backed by ``torch.ops.pydlr.conv2d`` and
``torch.ops.pydlr.conv2d_act`` (C++ CPU kernels, CUDA kernels where compiled), differentiable through a C++
autograd function. Python-level arguments (activation name, tuple lengths) are checked here and raise
:class:`pydlr.errors.InputError`; tensor problems (rank, dtype, device, groups) are checked by the operator
itself with ``TORCH_CHECK`` and raise ``RuntimeError`` with a message naming the operator and the values.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from pydlr.errors import InputError


def _load_native():
    """pydlr._C, or the build named by PYDLR_NATIVE_LIB (a path to another build of the same extension:
    scripts/sanitize.sh runs the tests on one built with AddressSanitizer, its child processes included)."""
    path = os.environ.get("PYDLR_NATIVE_LIB")
    if not path:
        from pydlr import _C

        return _C
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("pydlr._C", path)
    if spec is None or not os.path.isfile(path):
        raise ImportError(f"PYDLR_NATIVE_LIB={path!r} is not a file; unset it to use pydlr's own build")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pydlr._C"] = module
    spec.loader.exec_module(module)
    return module


_C = _load_native()  # importing registers torch.ops.pydlr.*


def set_cpu_cache(enabled: bool) -> None:
    """Serve torch's CPU tensors from pydlr's caching allocator (``True``, the default once pydlr is imported)
    or from torch's own (``False``).

    The caching allocator keeps the blocks of 4 KiB and more that tensors free, by size, and hands them to the
    next requests of that size: a training step reuses the previous step's blocks instead of asking malloc.
    glibc's malloc gives blocks over its mmap threshold back to the system when they are freed and page-faults
    them in again on the next step, unless ``GLIBC_TUNABLES`` was set before the process started (pydlr's
    scripts set it; R and Python sessions started otherwise do not): MobileNetV2 training at 224x224, batch 32,
    took 1.67 s for two steps with the cache against 2.40 s without it (with the tunables, 1.37 against 1.39).
    Inside R it also keeps torch's blocks out of the free memory R's own objects leave in the heap.

    What it keeps is bounded by ``PYDLR_CPU_CACHE_MB`` (read when first switched on; default 1/8 of RAM, at most
    4 GiB); ``PYDLR_CPU_CACHE_MB=0`` in the environment before pydlr is imported leaves torch's allocator in
    place (switched on later, the cache then takes the default bound). Switching it off gives the kept blocks
    back; when malloc runs out, they go back before torch's out-of-memory error is raised.
    """
    if not isinstance(enabled, bool):
        raise InputError("enabled", "True or False", enabled, where="pydlr.ops.set_cpu_cache")
    _C.cpu_cache_use(enabled)


def cpu_cache_info() -> dict[str, int]:
    """The caching allocator's state: ``enabled`` (0/1), ``cached_bytes`` (kept for reuse), ``limit_bytes``,
    ``hits`` and ``misses`` (requests of 4 KiB and more served from kept blocks, and from malloc)."""
    return dict(_C.cpu_cache_stats())


def cpu_cache_clear() -> None:
    """Give the blocks the caching allocator keeps back to malloc (it stays on)."""
    _C.cpu_cache_clear()


if os.environ.get("PYDLR_CPU_CACHE_MB", "").strip() != "0":
    set_cpu_cache(True)

ACTIVATIONS = ("none", "relu", "relu6")

_WHERE = "pydlr.ops.conv2d"


def _pair(value: int | tuple[int, int] | list[int], name: str) -> list[int]:
    """Normalises an int or a pair of ints to a list of two ints, raising InputError otherwise."""
    # (No generator expressions: this runs on every convolution call, where microseconds show on small layers.)
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    if isinstance(value, (tuple, list)) and len(value) == 2:
        first, second = value
        if (
            isinstance(first, int)
            and isinstance(second, int)
            and not isinstance(first, bool)
            and not isinstance(second, bool)
        ):
            return [int(first), int(second)]
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
        Activation fused into the same pass as the convolution and the bias. torch's relu / relu6 bit for
        bit, NaN included, except on shapes handed to oneDNN (``_C.conv2d_cpu_path(...) == "onednn"``),
        whose fused post-op maps NaN to 0, as torch.compile's fused convolution + relu does.

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


def onednn_route() -> bool:
    """Whether :func:`conv2d` hands float32 GEMM-bound shapes to oneDNN (with the activation as a post-op).

    On by default where torch has oneDNN: on those shapes (e.g. 32->64 at 13x13, the NCHW first layer)
    oneDNN's JIT convolution is faster than pydlr's im2col + GEMM. See native/conv_onednn.cpp.
    """
    return bool(_C.onednn_enabled())


def set_onednn_route(enabled: bool) -> None:
    """Switch the oneDNN route on or off (off: pydlr's own kernels for every shape and dtype).

    Raises
    ------
    pydlr.errors.InputError
        If ``enabled`` is not a bool.
    """
    if not isinstance(enabled, bool):
        raise InputError("enabled", "True or False", enabled, where="pydlr.ops.set_onednn_route")
    _C.set_onednn_enabled(enabled)


# Native CPU kernels that beat torch's conv2d (oneDNN) in training, forward + backward (bench/bench_conv.py,
# bench/bench_step.py): the direct kernels for few input channels (the 1->32 first layer: 1.8x with the fused
# ReLU), the depthwise kernels, Winograd F(4x4, 3x3) / F(3x3, 3x3) for 3x3 stride-1 GEMM shapes with <= 64 input
# channels and enough tiles, forward and backward (the seed's 32->64: forward 1.6-1.8x, forward + backward
# 1.4x; its 64->64 at 5x5 -> 3x3: 1.7x / 1.6x), and the channels-last im2col + GEMM path on tiny output planes with
# too few tiles for Winograd (its backward batches whole images into one GEMM). On other GEMM shapes (pointwise at
# 56x56, 3x3 with > 64 input channels) the native op itself hands the work to oneDNN ("onednn": the activation
# as a post-op);
# "auto" takes it there only when an activation is fused (native_wins). float64 has no oneDNN path: native
# everywhere.
_NATIVE_CPU_PATHS = (
    "dense_direct",
    "wide_nchw",
    "direct_nhwc",
    "direct_nchw",
    "depthwise_nhwc",
    "winograd_f43",
    "winograd_f33",
)
# Output positions per image below which pydlr's channels-last GEMM path beats oneDNN (kTinyPlane in native/conv.h).
_TINY_PLANE = int(_C.TINY_PLANE)


def native_wins(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Any = (1, 1),
    padding: Any = (0, 0),
    dilation: Any = (1, 1),
    groups: int = 1,
    activation: str = "none",
) -> bool:
    """Whether :func:`conv2d` is faster than ``torch.nn.functional.conv2d`` for these arguments.

    The rule of the layers' "auto" backend: on the CPU, the native op where its kernel for the shape
    (``_C.conv2d_cpu_path``) is one that measured faster than torch's in training; on CUDA, whichever of the
    native kernel and torch's (cuDNN) is faster for these arguments, measured once per shape in this process
    (see :func:`_cuda_native_wins`); torch's elsewhere. Shapes the native op hands
    to oneDNN ("onednn") are the same oneDNN kernel as torch's: native only when it fuses an activation
    (``activation`` "relu"/"relu6"), which spares the activation's pass (the seed's 32->64 layer: a training
    step 0.7-2.7% faster in three runs of bench_step.py); without one, torch's (no extra dispatch).

    Returns
    -------
    bool
    """
    if x.device.type == "cuda" and x.dim() == 4 and weight.dim() == 4:
        return _cuda_native_wins(x, weight, stride, padding, dilation, groups, activation)
    if x.device.type != "cpu" or x.dim() != 4 or weight.dim() != 4:
        return False
    if x.dtype == torch.float64:
        return True
    if x.dtype != torch.float32:
        return False
    s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    path = _C.conv2d_cpu_path(x, weight, s, p, d, groups)
    if path == "gemm_nhwc":
        oh, ow = (
            (x.shape[i + 2] + 2 * p[i] - d[i] * (weight.shape[i + 2] - 1) - 1) // s[i] + 1 for i in (0, 1)
        )
        return oh * ow < _TINY_PLANE
    if path == "onednn":
        return activation in ACTIVATIONS and activation != "none"
    return path in _NATIVE_CPU_PATHS


# (shape, strides, dtype, device, weight shape, stride, padding, dilation, groups, activation, grad) -> native wins
_CUDA_CHOICE: dict[tuple, bool] = {}


def _cuda_native_wins(x, weight, stride, padding, dilation, groups, activation) -> bool:
    """On CUDA: time the native op and torch's convolution + activation once for these arguments and keep the
    faster (forward + backward when gradients are on, else forward), median of 5 runs each after a warm-up.

    torch's without measuring where the native op cannot run the call: no CUDA kernels in this build, dtypes
    other than float32/float64 (autocast), or inside a CUDA graph capture (nothing may run there; the
    Learner's warm-up steps have measured before it captures).
    """
    if not _C.build_info()["cuda"] or x.dtype not in (torch.float32, torch.float64) or weight.dtype != x.dtype:
        return False
    if torch.is_autocast_enabled("cuda") or torch.cuda.is_current_stream_capturing():
        return False
    s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    grad = torch.is_grad_enabled()
    key = (tuple(x.shape), x.stride(), x.dtype, x.device, tuple(weight.shape), tuple(s), tuple(p), tuple(d),
           groups, activation, grad)
    if key not in _CUDA_CHOICE:
        with torch.inference_mode(False), torch.enable_grad():
            xs = x.detach().clone().requires_grad_(grad)
            ws = weight.detach().clone().requires_grad_(grad)
            act = {"relu": torch.relu, "relu6": torch.nn.functional.relu6}.get(activation, lambda t: t)

            def run(native: bool) -> None:
                y = (conv2d(xs, ws, None, s, p, d, groups, activation=activation) if native
                     else act(torch.nn.functional.conv2d(xs, ws, None, s, p, d, groups)))
                if grad:
                    y.backward(torch.ones_like(y))

            times = {native: _cuda_ms(lambda n=native: run(n)) for native in (False, True)}
        _CUDA_CHOICE[key] = times[True] < times[False]
    return _CUDA_CHOICE[key]


def _cuda_ms(fn, reps: int = 5) -> float:
    """Median milliseconds of fn() on the current CUDA stream (events), after one warm-up call."""
    fn()
    times = cuda_event_ms(fn, reps)
    return sorted(times)[len(times) // 2]


def cuda_event_ms(fn, reps: int) -> list[float]:
    """Milliseconds of each of ``reps`` calls of fn() on the current CUDA stream, timed with CUDA events
    (the device's own clock: no host synchronisation inside the measured span)."""
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def max_pool2d(
    x: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
) -> torch.Tensor:
    """Max pooling without padding (floor mode), torch.nn.functional.max_pool2d's values and gradients.

    Lighter than torch's in training: the forward keeps a one-byte window position per output (torch: an
    int64 index) and, for non-overlapping windows in channels-last, the backward writes each element of the
    input gradient once instead of zero-filling it and scattering.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, H, W), float32 or float64, on the CPU; channels-last is the fast layout and the output
        follows the input's memory format.
    kernel_size : int or (int, int)
        Window height and width.
    stride : int or (int, int) or None
        Step of the window; None means the window size (Keras' and torch's default).

    Returns
    -------
    torch.Tensor
        (N, C, (H - kh) // sh + 1, (W - kw) // sw + 1), differentiable with respect to ``x``. Ties go to the
        first maximum in row-major window order and NaN propagates, as in torch. Windows of at most 255
        elements.
    """
    where = "pydlr.ops.max_pool2d"
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")
    if min(k) < 1:
        raise InputError("kernel_size", "positive ints", kernel_size, where=where)
    if min(s) < 1:
        raise InputError("stride", "positive ints", stride, where=where)
    return torch.ops.pydlr.max_pool2d(x, k, s)


def conv2d_act_pool(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Any = (1, 1),
    padding: Any = (0, 0),
    dilation: Any = (1, 1),
    groups: int = 1,
    activation: str = "relu",
    pool_size: Any = (2, 2),
    pool_strides: Any = None,
) -> torch.Tensor:
    """``max_pool2d(conv2d(x, ..., activation=activation), pool_size, pool_strides)`` in one operator.

    Where :func:`conv_pool_fusable` holds it runs fused and the full-resolution activation is never stored:
    with the dense direct kernel (few input channels, e.g. a CNN's first layer on grey or RGB images;
    non-overlapping windows; CPU float32), whose backward rebuilds its gradient rows in cache from the pooled
    gradient, and with the Winograd F(4x4, 3x3) kernel and 2x2 windows of stride 2 (the seed's 32->64 layer), which
    pools each 4x4 output tile in its output transform (its backward is the unfused pair's). Elsewhere it runs
    the two operators, in training as one autograd node whose backward masks the pooled gradient
    by the activation's derivative (at the pooled values: the activated output at each argmax) and runs the
    convolution's backward unmasked. Values and gradients equal the unfused ones (ties and NaN as torch's
    max pooling). Arguments as :func:`conv2d` and :func:`max_pool2d`.

    Returns
    -------
    torch.Tensor
        The pooled output, in the input's memory format, differentiable with respect to x, weight and bias.
    """
    if activation not in ACTIVATIONS:
        raise InputError("activation", f"one of {ACTIVATIONS}", activation, where="pydlr.ops.conv2d_act_pool")
    s, p, d, k, ps = _conv_pool_geometry(stride, padding, dilation, pool_size, pool_strides)
    return torch.ops.pydlr.conv2d_act_pool(x, weight, bias, s, p, d, groups, activation, k, ps)


def _conv_pool_geometry(stride: Any, padding: Any, dilation: Any, pool_size: Any, pool_strides: Any) -> tuple:
    """(stride, padding, dilation, pool kernel, pool stride) as lists of two ints; pool stride defaults to
    the pool size."""
    s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    k = _pair(pool_size, "pool_size")
    return s, p, d, k, (k if pool_strides is None else _pair(pool_strides, "pool_strides"))


def conv_pool_fusable(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Any = (1, 1),
    padding: Any = (0, 0),
    dilation: Any = (1, 1),
    groups: int = 1,
    activation: str = "relu",
    pool_size: Any = (2, 2),
    pool_strides: Any = None,
) -> bool:
    """Whether :func:`conv2d_act_pool` runs its fused kernel for these arguments (see there)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or weight.dim() != 4:
        return False
    s, p, d, k, ps = _conv_pool_geometry(stride, padding, dilation, pool_size, pool_strides)
    return bool(_C.conv2d_act_pool_fusable(x, weight, s, p, d, groups, activation, k, ps))


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``torch.nn.functional.cross_entropy(logits, target)`` (mean over the batch, class indices) in one autograd
    node: the forward keeps the softmax, the backward is ``(softmax - one_hot(target)) * grad / n``.

    Native for CPU float32 logits of shape (n, k) with int64 targets of shape (n,) inside [0, k); torch's
    ``cross_entropy`` for everything else (its errors for out-of-range targets, its ``ignore_index``), and in
    inference mode. Not twice differentiable on the native path.
    """
    return torch.ops.pydlr.softmax_cross_entropy(logits, target)


def batch_norm_act_supported(x: torch.Tensor) -> bool:
    """Whether :func:`batch_norm_act` takes ``x``: a CPU float32 / float64 tensor, (N, C, H, W) in channels-last
    memory or contiguous (N, C), with more than one value per channel."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    if x.dim() == 4:
        ok = x.is_contiguous(memory_format=torch.channels_last)
    else:
        ok = x.dim() == 2 and x.is_contiguous()
    return ok and x.numel() > x.shape[1]


def batch_norm_act(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    momentum: float,
    eps: float,
    activation: str = "none",
) -> torch.Tensor:
    """Training-mode batch normalization and the activation after it, in one operator (native/batchnorm_cpu.cpp).

    The values and gradients of ``activation(F.batch_norm(x, running_mean, running_var, weight, bias,
    training=True, momentum=momentum, eps=eps))`` up to float rounding, in two passes over ``x`` forward
    (statistics; normalize + activation) and two backward, the activation's mask recomputed from ``x``: the
    normalized tensor before the activation is never stored. ``running_mean`` / ``running_var`` are updated in
    place as torch does (torch's ``momentum``; the unbiased batch variance). Inputs where
    :func:`batch_norm_act_supported` is false raise RuntimeError from the operator's checks.

    Parameters
    ----------
    activation : {"none", "relu", "relu6"}
    """
    if activation not in ACTIVATIONS:
        raise InputError("activation", f"one of {ACTIVATIONS}", activation, where="pydlr.ops.batch_norm_act")
    return torch.ops.pydlr.batch_norm_act(x, weight, bias, running_mean, running_var, momentum, eps, activation)[0]


class _BatchNormActDepthwise(torch.autograd.Function):
    """Autograd for ``pydlr::batch_norm_act_depthwise``: the backward operator returns every gradient at once."""

    @staticmethod
    def forward(ctx, x, bn_weight, bn_bias, running_mean, running_var, momentum, eps, activation, weight, stride,
                padding):
        z, mean, invstd = torch.ops.pydlr.batch_norm_act_depthwise(
            x, bn_weight, bn_bias, running_mean, running_var, momentum, eps, activation, weight, stride, padding
        )
        ctx.save_for_backward(x, bn_weight, bn_bias, mean, invstd, weight)
        ctx.config = (activation, stride, padding)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, bn_weight, bn_bias, mean, invstd, weight = ctx.saved_tensors
        activation, stride, padding = ctx.config
        dx, dgamma, dbeta, dweight = torch.ops.pydlr.batch_norm_act_depthwise_backward(
            grad, x, bn_weight, bn_bias, mean, invstd, activation, weight, stride, padding
        )
        return dx, dgamma, dbeta, None, None, None, None, None, dweight, None, None


def batch_norm_act_depthwise_supported(x: torch.Tensor, kernel_size: tuple[int, int],
                                       stride: tuple[int, int], padding: tuple[int, ...]) -> bool:
    """Whether :func:`batch_norm_act_depthwise` saves work for ``x`` (float32: the tiled depthwise 3x3 shapes,
    channels a multiple of 16, stride 1 or 2, padding <= 2 on every side) or runs it at all (float64, any depthwise
    shape: the reference path for tests)."""
    if not batch_norm_act_supported(x) or x.dim() != 4:
        return False
    if x.dtype == torch.float64:
        return True
    return (tuple(kernel_size) == (3, 3) and x.shape[1] % 16 == 0 and stride[0] == stride[1] in (1, 2)
            and max(padding) <= 2)


def batch_norm_act_depthwise(
    x: torch.Tensor,
    bn_weight: torch.Tensor | None,
    bn_bias: torch.Tensor | None,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    momentum: float,
    eps: float,
    activation: str,
    weight: torch.Tensor,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int] | tuple[int, int, int, int],
) -> torch.Tensor:
    """``conv2d(batch_norm_act(x, ...), weight, stride=stride, padding=padding, groups=C)`` (training-mode
    BatchNorm, activation, depthwise convolution without bias) in one operator (native/bn_depthwise_cpu.cpp) that
    never stores the activated BatchNorm output: the convolution reads it from bands of rows normalized into a
    cache-sized buffer, forward and backward. Same values as the two operators in sequence (running statistics
    updated in place as :func:`batch_norm_act` does); gradients for ``x``, ``bn_weight``, ``bn_bias`` and
    ``weight``. ``padding``: an int, (height, width) for both sides, or (top, bottom, left, right) (Keras' "same"
    at stride 2 pads the bottom and right only). Inputs where :func:`batch_norm_act_depthwise_supported` is false
    raise RuntimeError from the operator's checks or run without the saving.
    """
    if activation not in ACTIVATIONS:
        raise InputError("activation", f"one of {ACTIVATIONS}", activation,
                         where="pydlr.ops.batch_norm_act_depthwise")
    if isinstance(padding, (tuple, list)) and len(padding) == 4 and all(
        isinstance(p, int) and not isinstance(p, bool) for p in padding
    ):
        pads = [int(p) for p in padding]
    else:
        ph, pw = _pair(padding, "padding")
        pads = [ph, ph, pw, pw]
    return _BatchNormActDepthwise.apply(
        x, bn_weight, bn_bias, running_mean, running_var, momentum, eps, activation, weight,
        _pair(stride, "stride"), pads,
    )


def adam_step_(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[torch.Tensor],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    """torch.optim.Adam's update (AdamW's with ``decoupled``) of CPU float32 tensors in place, in one native call.

    Each step counter (a one-element float32 tensor) is incremented first. The caller
    (:class:`pydlr.train.optimizers.NativeAdam`) checks devices, dtypes and layouts.
    """
    _C.adam_step_(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay, decoupled)
    # The native call writes through raw pointers, which torch does not see: bump the versions as an in-place
    # torch op would, so what keys on them (autograd's saved-tensor checks, the Winograd kernels' cache of
    # transformed weights for predict) sees the new values.
    torch.autograd.graph.increment_version(params)


def kmeans_step(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor, min_dist: torch.Tensor,
    accumulate: bool,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One Lloyd assignment step on the CPU, in one read of ``x`` (native/kmeans_cpu.cpp).

    ``x`` (n, d) contiguous float32 or float64, ``x_sq`` its squared row norms, ``centers`` (k, d) of the same
    dtype. Writes the closest center of each row into ``labels`` (int64; read first: the count of changed
    labels) and the squared distance to it into ``min_dist``. With ``accumulate``, returns the per-cluster
    float64 sums (k, d), int64 counts (k) and the number of labels changed; without, empty tensors and 0.
    The caller (:mod:`pydlr.cluster`) checks its input; the operator checks shapes, dtypes and layouts.
    """
    return torch.ops.pydlr.kmeans_step(x, x_sq, centers, labels, min_dist, accumulate)


def kmeans_pp_dists(
    x: torch.Tensor, x_sq: torch.Tensor, points: torch.Tensor, closest: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++'s candidate distances on the CPU, in one read of ``x`` (native/kmeans_cpu.cpp).

    Returns ``min(closest, ||x_i - p_j||^2)`` of shape (m, n) in ``x``'s dtype and its row sums in float64.
    """
    return torch.ops.pydlr.kmeans_pp_dists(x, x_sq, points, closest)


def kmeans_bounded_step(
    x: torch.Tensor, centers: torch.Tensor, shift: torch.Tensor, labels: torch.Tensor, upper: torch.Tensor,
    lower: torch.Tensor, norms: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor,
) -> tuple[int, int]:
    """One Lloyd step with Hamerly's bounds on the CPU (native/kmeans_cpu.cpp): the plain step's labels, reading
    only the rows whose closest center may have changed.

    ``shift`` (k, float64): how far each center moved since the bounds were set. ``labels`` (int64; -1: no
    bounds yet, the row is evaluated), ``upper`` / ``lower`` (float64 bounds on the distance to the row's center
    and to every other one) and ``norms`` (float64 squared row norms, written for rows labelled -1) are updated
    in place, and so are ``sums`` (k, d, float64) and ``counts`` (k, int64) for the rows that change cluster.
    Returns (labels changed, rows whose distances were computed).
    """
    return torch.ops.pydlr.kmeans_bounded_step(x, centers, shift, labels, upper, lower, norms, sums, counts)


def kmeans_own_dists(
    x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor, min_dist: torch.Tensor,
) -> None:
    """Writes into ``min_dist`` the squared distance of each row to its center ``labels[i]`` (int64 in [0, k)),
    the value ``kmeans_step`` computes, bit for bit, reading ``x`` once (native/kmeans_cpu.cpp)."""
    torch.ops.pydlr.kmeans_own_dists(x, x_sq, centers, labels, min_dist)


def build_info() -> dict[str, Any]:
    """Facts about the native build: compiler, SIMD level in use, OpenMP, threads, BLAS route, CUDA compiled.

    Returns
    -------
    dict
        Keys ``compiler``, ``simd``, ``openmp``, ``threads``, ``blas``, ``cuda`` (bool: CUDA kernels compiled
        into this build), ``torch_version`` (the torch the extension was compiled against), ``libpng`` (bool:
        the batched PNG decoder is linked against libpng).
    """
    return dict(_C.build_info())


def png_decoder_available() -> bool:
    """Whether this build decodes PNGs natively (native/image_decode_cpu.cpp, linked against libpng)."""
    return bool(_C.build_info().get("libpng", False))


def decode_png_batch(paths: list[str], channels: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decode the PNG files ``paths`` in one native call, each at its own size with ``channels`` samples a
    pixel (1 grey, 3 RGB, 4 RGBA; conversions as Pillow's ``Image.convert``).

    Returns ``(pixels, meta, errors)``: ``pixels`` uint8, every decoded image's (h, w, channels) samples one
    after the other; ``meta`` int64 (n, 3) of height, width and offset into ``pixels``; ``errors[i]`` ""
    where file i was decoded, else why not (not a plain 8-bit PNG, unreadable, a libpng error): the caller
    decodes those files another way, which decodes them or names the problem.
    """
    if channels not in (1, 3, 4):
        raise InputError("channels", "1, 3 or 4", channels, where="pydlr.ops.decode_png_batch")
    return torch.ops.pydlr.decode_png_batch(list(paths), int(channels))


def decode_png_warp_batch(paths: list[str], channels: int, theta: torch.Tensor, xs: torch.Tensor,
                          ys: torch.Tensor, out: torch.Tensor, interpolation: int, padding: int, fill: float,
                          resize: bool) -> list[str]:
    """Decode the PNG files ``paths`` as `decode_png_batch` does and warp each straight into ``out[i]``
    (float32 NHWC) as ``Augment``'s ``grid_sample`` would: ``theta`` (n, 2, 3) float32, ``xs``/``ys`` the
    output's normalised pixel centres, ``interpolation`` 0 bilinear / 1 nearest, ``padding`` 0 zeros / 1
    border / 2 reflection, ``fill`` the constant fill's value; ``resize``: a source of another size (not below
    half the output's) is resampled onto it, else it must have the output's size.

    Returns ``errors``: ``errors[i]`` "" where ``out[i]`` was written, else why not (the caller then prepares
    the batch the other way, which decodes the file or names the problem).
    """
    if channels not in (1, 3, 4):
        raise InputError("channels", "1, 3 or 4", channels, where="pydlr.ops.decode_png_warp_batch")
    return torch.ops.pydlr.decode_png_warp_batch(list(paths), int(channels), theta, xs, ys, out,
                                                 int(interpolation), int(padding), float(fill), bool(resize))


# The source dtypes pydlr::rows_to_float32 reads.
ROWS_TO_FLOAT32_DTYPES = (torch.float64, torch.float32, torch.int64, torch.int32, torch.int16, torch.uint8)


def float32_rows(src: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Rows ``start:stop`` of the CPU tensor ``src`` as a new C-contiguous float32 tensor, in one pass whatever its
    memory order: `rows_to_float32`'s tiled transpose for R's column-major arrays (and any order but row-major),
    torch's copy for row-major ones (two threads, the blocks of pydlr's CPU cache: the 10,000 Fashion-MNIST test
    images in batches of 256 in 1.5 ms against 3.9 for NumPy's cast into fresh memory, 2026-12-05)."""
    stop = src.shape[0] if stop is None else stop
    if src.dtype in ROWS_TO_FLOAT32_DTYPES and not src.is_contiguous():
        return rows_to_float32(src, start, stop)
    part = src[start:stop]
    return torch.empty(part.shape, dtype=torch.float32).copy_(part)


def float32_rows_checked(src: torch.Tensor, start: int = 0, stop: int | None = None) -> tuple[torch.Tensor, bool]:
    """:func:`float32_rows` (rows ``start:stop`` of ``src`` as a C-contiguous float32 tensor) for a whole input array,
    and whether every value is finite in float32 (no NaN or infinity, nothing beyond float32's range), found in
    the same pass: `rows_to_float32`'s for its dtypes in every memory order (non-temporal stores for outputs past
    16 MiB on CPUs with AVX-512), torch's copy and a check otherwise."""
    stop = src.shape[0] if stop is None else stop
    if src.dtype in ROWS_TO_FLOAT32_DTYPES:
        out, finite = torch.ops.pydlr.rows_to_float32_checked(src, int(start), int(stop))
        return out, bool(finite)
    out = float32_rows(src, start, stop)
    return out, bool(torch.isfinite(out).all())


def rows_to_float32(src: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of ``src`` (CPU; float64, float32, int64, int32, int16 or uint8; any non-negative
    strides) as a C-contiguous float32 tensor: R's column-major arrays are read in tiles and transposed in
    registers (native/convert_cpu.cpp)."""
    return torch.ops.pydlr.rows_to_float32(src, int(start), int(stop))


def __getattr__(name: str) -> Any:
    # `import pydlr as keras` makes Keras 3's keras.ops.expand_dims / .sigmoid land here, in pydlr's native
    # operators: say so instead of a bare "no attribute" (still an AttributeError, so hasattr() works)
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}: pydlr has no keras.ops (pydlr.ops holds "
                         f"its native convolution operators): write NumPy on arrays (np.expand_dims(x, 0)) and "
                         "torch on tensors and inside call() (torch.sigmoid(t))")
