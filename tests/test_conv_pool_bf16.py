"""The bfloat16 convolution (+ activation, + 2x2 max pooling) kernels on AMX tiles (pydlr::conv2d_act_bf16,
pydlr::conv2d_act_pool_bf16 and their backwards), which CPU autocast to bfloat16 runs for pydlr's conv2d_act and
conv2d_act_pool: values and gradients equal, to float32 summation order, to a float64 reference computed from the
same bf16-rounded operands; float32 wherever the kernels do not run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pydlr import _C

AMX = bool(_C.build_info()["amx_bf16"])
needs_amx = pytest.mark.skipif(not AMX, reason="the bfloat16 kernel needs AMX-BF16 (Intel Sapphire Rapids or later)")
ACT = {"relu": F.relu, "relu6": F.relu6, "none": lambda t: t}


def _bf16(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.bfloat16).double()


def _args(pad: int, act: str) -> tuple:
    return ([1, 1], [pad, pad], [1, 1], 1, act, [2, 2], [2, 2])


def _inputs(n, c, h, w, oc, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(oc, c, 3, 3, generator=g) * (2.0 / (9 * c)) ** 0.5
    bias = torch.randn(oc, generator=g) * 0.1
    return x, weight, bias


def _reference(x, weight, bias, pad, act, grad):
    """float64 forward and backward from bf16-rounded x, weight and (masked, scattered) output gradient, as the
    kernel defines them: the products of bf16 values summed exactly, the results float32-comparable."""
    xr, wr = _bf16(x).requires_grad_(), _bf16(weight).requires_grad_()
    br = bias.detach().double().requires_grad_()
    z = F.conv2d(xr, wr, br, padding=pad)
    za = ACT[act](z)
    pooled, idx = F.max_pool2d(za, 2, return_indices=True)
    gz = torch.zeros_like(za).flatten(2).scatter(2, idx.flatten(2), grad.double().flatten(2)).view_as(za)
    keep = {"relu": za > 0, "relu6": (za > 0) & (za < 6), "none": torch.ones_like(za, dtype=torch.bool)}[act]
    gz = gz * keep
    gx, gw = torch.autograd.grad(z, (xr, wr), _bf16(gz.float()))
    return pooled, gx, gw, gz.sum((0, 2, 3))


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 2e-6) -> None:
    scale = b.abs().max().item() or 1.0
    assert a.shape == b.shape
    assert (a.double() - b).abs().max().item() <= rel * scale * 8, (a.double() - b).abs().max().item() / scale


@needs_amx
@pytest.mark.parametrize(
    "n, c, h, w, oc, pad, act",
    [
        (6, 32, 13, 13, 64, 0, "relu"),  # the seed CNN's second layer
        (3, 64, 12, 10, 32, 1, "none"),  # "same" padding, a wide-rectangular image, even sizes
        (2, 32, 9, 11, 96, 0, "relu6"),  # three output tiles (a group of 3), odd sizes (a row and column unpooled)
        (5, 96, 7, 7, 64, 1, "relu"),  # three input blocks; batch not a multiple of the threads
        (1, 32, 4, 4, 32, 0, "relu"),  # the smallest: one pooled cell
        (4, 64, 64, 64, 64, 1, "relu"),  # ~1 MB of weight-gradient scratch an image: one image a pass
    ],
)
def test_values_and_gradients_equal_a_float64_reference_on_the_same_bf16_operands(n, c, h, w, oc, pad, act):
    x, weight, bias = _inputs(n, c, h, w, oc)
    x.requires_grad_()
    weight.requires_grad_()
    bias.requires_grad_()
    assert _C.conv2d_act_pool_bf16_fusable(x, weight, *_args(pad, act))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.ops.pydlr.conv2d_act_pool(x, weight, bias, *_args(pad, act))
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(y)
    y.backward(grad)
    ref, gx, gw, gb = _reference(x, weight, bias, pad, act, grad)
    _close(y, ref)
    _close(x.grad, gx)
    _close(weight.grad, gw)
    _close(bias.grad, gb)
    assert x.grad.dtype == weight.grad.dtype == bias.grad.dtype == torch.float32


@needs_amx
def test_the_argmax_is_the_windows_maximum_and_the_inference_output_equals_the_training_one():
    x, weight, bias = _inputs(4, 32, 13, 13, 64, seed=1)
    y, argmax = torch.ops.pydlr.conv2d_act_pool_bf16_with_argmax(x, weight, bias, *_args(0, "none"))
    z = F.conv2d(_bf16(x), _bf16(weight), bias.double())
    _, idx = F.max_pool2d(z, 2, return_indices=True)
    # torch's flat index in the 11 x 11 plane -> the window position (row * 2 + column) the kernel keeps
    oh, ow = idx // 11, idx % 11
    assert torch.equal(argmax.long(), (oh % 2) * 2 + ow % 2)
    assert torch.equal(torch.ops.pydlr.conv2d_act_pool_bf16(x, weight, bias, *_args(0, "none")), y)


@needs_amx
def test_nan_in_the_input_reaches_the_outputs_it_touches():
    x, weight, bias = _inputs(2, 32, 9, 9, 32)
    x[1, 5, 4, 4] = float("nan")
    y = torch.ops.pydlr.conv2d_act_pool_bf16(x, weight, bias, *_args(0, "relu"))
    assert y[0].isfinite().all()
    # input (4, 4) feeds outputs 2..4 in each direction: pooled cells 1..2
    assert y[1, :, 1:3, 1:3].isnan().all() and y[1, :, 0, 0].isfinite().all()


@needs_amx
def test_autocast_routes_the_fused_op_to_the_bf16_kernel_only_under_bfloat16():
    x, weight, bias = _inputs(2, 32, 13, 13, 64)
    args = _args(0, "relu")
    plain = torch.ops.pydlr.conv2d_act_pool(x, weight, bias, *args)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.profiler.profile() as prof:
        amx = torch.ops.pydlr.conv2d_act_pool(x, weight, bias, *args)
    assert any(e.name == "pydlr::conv2d_act_pool_bf16" for e in prof.events())
    assert torch.equal(amx, torch.ops.pydlr.conv2d_act_pool_bf16(x, weight, bias, *args))
    assert not torch.equal(amx, plain)  # bf16 operands round differently
    assert _rel(amx, plain) < 1e-2
    with torch.autocast("cpu", dtype=torch.float16):  # no float16 kernel: float32 as outside autocast
        assert torch.equal(torch.ops.pydlr.conv2d_act_pool(x, weight, bias, *args), plain)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_shapes_without_the_kernel_run_float32_under_bf16_autocast_bit_for_bit():
    """16 input channels (not a multiple of 32) and the seed's first layer (1 channel) keep the float32 kernels, as
    on a CPU without AMX."""
    for c, h, oc in ((16, 13, 64), (1, 28, 32)):
        x, weight, bias = _inputs(2, c, h, h, oc)
        args = _args(0, "relu")
        assert not _C.conv2d_act_pool_bf16_fusable(x, weight, *args)
        plain = torch.ops.pydlr.conv2d_act_pool(x, weight, bias, *args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(torch.ops.pydlr.conv2d_act_pool(x, weight, bias, *args), plain)


def test_the_bf16_operators_refuse_arguments_they_have_no_kernel_for():
    x, weight, bias = _inputs(2, 16, 13, 13, 64)
    with pytest.raises(RuntimeError, match="no bfloat16 kernel"):
        torch.ops.pydlr.conv2d_act_pool_bf16(x, weight, bias, *_args(0, "relu"))
    x, weight, bias = _inputs(2, 32, 13, 13, 64)
    with pytest.raises(RuntimeError, match="no bfloat16 kernel"):  # 3x3 windows
        torch.ops.pydlr.conv2d_act_pool_bf16(x, weight, bias, [1, 1], [0, 0], [1, 1], 1, "relu", [3, 3], [3, 3])
    if AMX:
        y, argmax = torch.ops.pydlr.conv2d_act_pool_bf16_with_argmax(x, weight, bias, *_args(0, "relu"))
        with pytest.raises(RuntimeError, match="must have shape"):
            torch.ops.pydlr.conv2d_act_pool_bf16_backward(
                y[:1], argmax, y, x, weight, *_args(0, "relu"), [True, True, True])


@needs_amx
@pytest.mark.parametrize(
    "n, c, h, w, oc, pad, act",
    [
        (6, 64, 5, 5, 64, 0, "relu"),  # the seed CNN's third layer
        (3, 32, 10, 7, 96, 1, "relu6"),
        (2, 96, 6, 6, 32, 0, "none"),
    ],
)
def test_the_unpooled_convolution_equals_a_float64_reference_on_the_same_bf16_operands(n, c, h, w, oc, pad, act):
    x, weight, bias = _inputs(n, c, h, w, oc, seed=2)
    x.requires_grad_()
    weight.requires_grad_()
    bias.requires_grad_()
    args = ([1, 1], [pad, pad], [1, 1], 1)
    assert _C.conv2d_act_bf16_fusable(x, weight, *args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.ops.pydlr.conv2d_act(x, weight, bias, *args, act)
    assert y.dtype == torch.float32
    grad = torch.randn_like(y)
    y.backward(grad)
    xr, wr = _bf16(x).requires_grad_(), _bf16(weight).requires_grad_()
    z = F.conv2d(xr, wr, bias.detach().double(), padding=pad)
    ref = ACT[act](z)
    keep = {"relu": ref > 0, "relu6": (ref > 0) & (ref < 6), "none": torch.ones_like(ref, dtype=torch.bool)}[act]
    gz = grad.double() * keep
    gx, gw = torch.autograd.grad(z, (xr, wr), _bf16(gz.float()))
    _close(y, ref)
    _close(x.grad, gx)
    _close(weight.grad, gw)
    _close(bias.grad, gz.sum((0, 2, 3)))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():  # inference: the same values
        assert torch.equal(torch.ops.pydlr.conv2d_act(x, weight, bias, *args, act), y)


@needs_amx
def test_without_bias_and_with_frozen_weights_only_the_asked_gradients_come_back():
    x, weight, _ = _inputs(3, 32, 11, 11, 32, seed=3)
    x.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.ops.pydlr.conv2d_act_pool(x, weight, None, *_args(1, "relu"))
    grad = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, (x,), grad)
    _, ref_gx, _, _ = _reference(x, weight, torch.zeros(32), 1, "relu", grad)
    _close(gx, ref_gx)
    x2 = x.detach().clone()  # an input without gradient, weights that want one
    w2 = weight.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y2 = torch.ops.pydlr.conv2d_act(x2, w2, None, [1, 1], [0, 0], [1, 1], 1, "none")
    y2.backward(torch.ones_like(y2))
    wr = _bf16(w2).requires_grad_()
    ref = F.conv2d(_bf16(x2), wr)
    (ref_gw,) = torch.autograd.grad(ref, (wr,), torch.ones_like(ref))
    _close(w2.grad, ref_gw)
