"""pydlr.ops.batch_norm_act_depthwise (training BatchNorm + activation + depthwise convolution as one operator)
against torch's batch_norm, activation and conv2d, and the models that use it."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_ops_batchnorm import SMALL_BN_MODELS, assert_same_float64_step

from pydlr import layers, ops
from pydlr.errors import InputError
from pydlr.layers import layer_fusion
from pydlr.models import mobilenet_v2

ACT = {"none": lambda t: t, "relu": F.relu, "relu6": F.relu6}


def _inputs(shape, dtype, k=3):
    torch.manual_seed(0)
    n, c, h, w = shape
    # shifted and scaled per channel so that relu6 sees inputs below 0, inside (0, 6) and above 6
    x = torch.randn(shape, dtype=dtype) * torch.linspace(0.5, 4.0, c, dtype=dtype).view(1, c, 1, 1)
    x = (x + torch.linspace(-2.0, 5.0, c, dtype=dtype).view(1, c, 1, 1)).contiguous(memory_format=torch.channels_last)
    gamma = torch.rand(c, dtype=dtype) + 0.5
    beta = torch.randn(c, dtype=dtype)
    weight = torch.randn(c, 1, k, k, dtype=dtype)
    return x, gamma, beta, weight


def _reference(x, gamma, beta, weight, act, stride, padding, rm, rv):
    """torch's batch_norm, activation and conv2d; padding (top, bottom, left, right) applied by F.pad."""
    y = ACT[act](F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5))
    top, bottom, left, right = padding
    return F.conv2d(F.pad(y, (left, right, top, bottom)), weight, None, stride, 0, 1, x.shape[1])


def _run(fn, tensors, grad_seed=1):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    rm = torch.zeros(tensors[0].shape[1], dtype=tensors[0].dtype)
    rv = torch.ones_like(rm)
    out = fn(*leaves, rm, rv)
    torch.manual_seed(grad_seed)
    out.backward(torch.randn_like(out))
    return [out.detach(), rm, rv] + [t.grad for t in leaves]


@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride", [1, 2])
# (2, 64, 41, 64): several row bands per image (the buffer holds 16 rows of 64 x 64), odd height at stride 2
@pytest.mark.parametrize("shape", [(3, 16, 9, 7), (2, 64, 41, 64), (2, 32, 5, 6)])
# symmetric, and Keras' "same" at stride 2 on even sizes (bottom and right only)
@pytest.mark.parametrize("padding", [(1, 1, 1, 1), (0, 1, 0, 1)])
def test_matches_torch(act, dtype, stride, shape, padding) -> None:
    tensors = _inputs(shape, dtype)

    def fused(x, gamma, beta, weight, rm, rv):
        pad = padding[0::2] if padding[0] == padding[1] else padding  # the (height, width) form too
        return ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, act, weight, stride, pad)

    def reference(x, gamma, beta, weight, rm, rv):
        return _reference(x, gamma, beta, weight, act, stride, padding, rm, rv)

    got = _run(fused, tensors)
    # float32 is compared with the float64 reference: both are roundings of it
    want = _run(reference, [t.double() for t in tensors])
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-4)
    names = ["output", "running_mean", "running_var", "grad_x", "grad_gamma", "grad_beta", "grad_weight"]
    for name, g, w in zip(names, got, want, strict=True):
        assert g.dtype == dtype
        scale = max(1.0, w.abs().max().item()) if dtype == torch.float32 else 1.0
        torch.testing.assert_close(g.double() / scale, w / scale, msg=name, **tol)
    assert got[0].is_contiguous(memory_format=torch.channels_last)


def test_float32_band_path_equals_the_unfused_float32_ops() -> None:
    # same float32 arithmetic for the normalization (batch_norm_act's kernel) as the unfused pydlr path
    x, gamma, beta, weight = _inputs((2, 32, 24, 20), torch.float32)
    rm, rv = torch.zeros(32), torch.ones(32)
    z = ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, "relu6", weight, 1, 1)
    y = ops.batch_norm_act(x, gamma, beta, torch.zeros(32), torch.ones(32), 0.1, 1e-5, "relu6")
    torch.testing.assert_close(z, ops.conv2d(y, weight, None, 1, 1, 1, 32), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_gradcheck_float64(stride) -> None:
    x, gamma, beta, weight = _inputs((2, 4, 5, 6), torch.float64)
    x = x * 0.3  # relu6 kinks away from the sample points

    def fn(x, gamma, beta, weight):
        rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
        return ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, "relu6", weight, stride, 1)

    args = [t.detach().clone().requires_grad_(True) for t in (x, gamma, beta, weight)]
    assert torch.autograd.gradcheck(fn, args)


def test_rejects_bad_input() -> None:
    x, gamma, beta, weight = _inputs((2, 16, 6, 6), torch.float32)
    rm, rv = torch.zeros(16), torch.ones(16)
    with pytest.raises(InputError, match="activation"):
        ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, "gelu", weight, 1, 1)
    with pytest.raises(InputError, match="padding"):
        ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, "relu6", weight, 1, (1, 1, 1))
    with pytest.raises(RuntimeError, match="padding"):
        ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, "relu6", weight, 1, (1, -1, 1, 1))
    with pytest.raises(RuntimeError, match="depthwise"):
        ops.batch_norm_act_depthwise(x, gamma, beta, rm, rv, 0.1, 1e-5, "relu6", torch.randn(16, 2, 3, 3), 1, 1)
    with pytest.raises(RuntimeError, match="channels-last"):
        ops.batch_norm_act_depthwise(x.contiguous(), gamma, beta, rm, rv, 0.1, 1e-5, "relu6", weight, 1, 1)


@pytest.mark.parametrize("build", SMALL_BN_MODELS)
def test_models_train_the_same_with_the_fused_expand_depthwise(build, monkeypatch, train_step) -> None:
    torch.manual_seed(0)
    fused_model = build().double().train()
    plain_model = copy.deepcopy(fused_model)
    f32_model, f32_plain = copy.deepcopy(fused_model).float(), copy.deepcopy(fused_model).float()
    keys = list(fused_model.state_dict())
    calls = []
    real = ops.batch_norm_act_depthwise
    monkeypatch.setattr(ops, "batch_norm_act_depthwise", lambda *a: calls.append(a[0].dtype) or real(*a))
    x = torch.randn(4, 32, 32, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    loss_f, grads_f = train_step(fused_model, x, y)
    n64 = len(calls)
    assert n64 >= 3  # the expand BN + ReLU6 + depthwise of several blocks ran as one operator
    with layer_fusion(False):
        loss_p, grads_p = train_step(plain_model, x, y)
    assert len(calls) == n64  # none while fusion was off
    assert_same_float64_step((loss_f, grads_f, fused_model), (loss_p, grads_p, plain_model), keys)
    # float32 at 64x64 (the tiled band path in the blocks whose channels are a multiple of 16) against the same
    # model with only this fusion off: the same kernels on the same values (the "native" backend, so that no
    # per-shape timing choice differs between the runs) but for the order of the BatchNorm backward's sums (per
    # row band instead of per chunk), a float32 rounding difference the 50 BatchNorms over 4 images carry on
    x32 = torch.randn(4, 64, 64, 3)
    with layers.conv_backend("native"):
        loss_32, grads_32 = train_step(f32_model, x32, y)
        assert calls[n64:].count(torch.float32) >= 3
        monkeypatch.setattr(ops, "batch_norm_act_depthwise_supported", lambda *a: False)
        loss_32p, grads_32p = train_step(f32_plain, x32, y)
    torch.testing.assert_close(loss_32, loss_32p, rtol=1e-6, atol=1e-6)
    got = torch.cat([g.flatten() for g in grads_32.values()])
    want = torch.cat([g.flatten() for g in grads_32p.values()])
    assert (got - want).norm() <= 1e-5 * want.norm()  # measured 1.3e-6
    # per parameter, those whose gradient is not ~0 by construction (a BatchNorm's bias before a convolution and
    # another BatchNorm gets only rounding noise): measured <= 2.1e-6
    typical = want.norm() / len(grads_32p) ** 0.5
    for name, g in grads_32p.items():
        if g.norm() > 1e-2 * typical:
            assert (grads_32[name] - g).norm() <= 1e-4 * g.norm(), name


def test_a_hook_on_the_bypassed_container_turns_the_fusion_off(monkeypatch) -> None:
    model = mobilenet_v2(num_classes=5, input_shape=(32, 32, 3)).train()
    seen = []
    model.features[2].conv[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    calls = []
    real = ops.batch_norm_act_depthwise
    monkeypatch.setattr(ops, "batch_norm_act_depthwise", lambda *a: calls.append(1) or real(*a))
    model(torch.randn(2, 32, 32, 3))
    assert seen == [torch.Size([2, 96, 16, 16])]  # the hooked block ran module by module
    assert len(calls) >= 3  # the other blocks fused
