"""Training-mode BatchNorm fused with its activation (pydlr.ops.batch_norm_act, pydlr.layers.fusion): values,
gradients and running statistics equal torch's BatchNorm2d + ReLU / ReLU6, and the models that use it train as
the layer-by-layer computation does."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from pydlr import layers, ops
from pydlr.errors import InputError
from pydlr.layers import layer_fusion
from pydlr.models import mobilenet_v2
from pydlr.models.efficientnet_lite import EfficientNetLite

ACT = {"none": lambda t: t, "relu": F.relu, "relu6": F.relu6}


def _input(shape, dtype, channels_last=True):
    torch.manual_seed(0)
    # shifted and scaled per channel so that relu6 has inputs below 0, inside (0, 6) and above 6
    c = shape[1]
    x = torch.randn(shape, dtype=dtype) * torch.linspace(0.5, 4.0, c, dtype=dtype).view(1, c, *([1] * (len(shape) - 2)))
    x = x + torch.linspace(-2.0, 5.0, c, dtype=dtype).view(1, c, *([1] * (len(shape) - 2)))
    if channels_last and len(shape) == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _run(fn, x, w, b, g):
    """Output, input / weight / bias gradients of fn(x, w, b) for upstream gradient g."""
    x, w, b = (t.detach().clone().requires_grad_(True) for t in (x, w, b))
    y = fn(x, w, b)
    y.backward(g)
    return y.detach(), x.grad, w.grad, b.grad


@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
# (9, 32, 128, 128): a tensor larger than the caches, split over several chunks per thread
@pytest.mark.parametrize("shape", [(4, 16, 7, 9), (3, 40, 5, 5), (2, 3, 1, 2), (37, 24), (9, 32, 128, 128)])
def test_batch_norm_act_matches_torch(act, dtype, shape) -> None:
    x = _input(shape, dtype)
    c = shape[1]
    w = torch.linspace(0.5, 1.5, c, dtype=dtype)
    b = torch.linspace(-0.3, 0.6, c, dtype=dtype)
    g = torch.randn(shape, dtype=dtype)
    rm0, rv0 = torch.randn(c, dtype=dtype), torch.rand(c, dtype=dtype) + 0.5
    rm, rv = rm0.clone(), rv0.clone()
    # the reference is torch's in float64: for float32 input the fused operator's float64 sums are closer to it
    # than torch's own float32 computation (whose weight gradient is off by ~4e-3 on the largest shape)
    rm_ref, rv_ref = rm0.double().clone(), rv0.double().clone()
    fused = _run(lambda x_, w_, b_: ops.batch_norm_act(x_, w_, b_, rm, rv, 0.1, 1e-3, act), x, w, b, g)
    ref = _run(lambda x_, w_, b_: ACT[act](F.batch_norm(x_, rm_ref, rv_ref, w_, b_, True, 0.1, 1e-3)),
               x.double(), w.double(), b.double(), g.double())
    tol = {"rtol": 1e-4, "atol": 5e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    for got, want in zip(fused, ref, strict=True):
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), want, **tol)
    torch.testing.assert_close(rm.double(), rm_ref, **tol)
    torch.testing.assert_close(rv.double(), rv_ref, **tol)
    assert not torch.equal(rm, rm0) and not torch.equal(rv, rv0)
    if len(shape) == 4:
        assert fused[0].is_contiguous(memory_format=torch.channels_last)
        assert fused[1].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("act", ["none", "relu6"])
def test_batch_norm_act_gradcheck_float64(act) -> None:
    x = _input((3, 5, 4, 3), torch.float64).requires_grad_(True)
    w = torch.linspace(0.5, 1.5, 5, dtype=torch.float64).requires_grad_(True)
    b = torch.linspace(-0.3, 0.6, 5, dtype=torch.float64).requires_grad_(True)
    rm, rv = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x_, w_, b_: ops.batch_norm_act(x_, w_, b_, rm, rv, 0.1, 1e-5, act), (x, w, b)
    )


def test_batch_norm_act_with_dense_layout_gradient_and_expanded_gradient() -> None:
    x = _input((2, 16, 4, 4), torch.float32)
    w, b = torch.ones(16), torch.zeros(16)
    rm, rv = torch.zeros(16), torch.ones(16)
    xr = x.clone().requires_grad_(True)
    ops.batch_norm_act(xr, w, b, rm, rv, 0.1, 1e-5, "relu6").sum().backward()  # expanded (stride-0) gradient
    xt = x.clone().requires_grad_(True)
    F.relu6(F.batch_norm(xt, torch.zeros(16), torch.ones(16), w, b, True, 0.1, 1e-5)).sum().backward()
    torch.testing.assert_close(xr.grad, xt.grad, rtol=1e-4, atol=1e-5)


def test_batch_norm_act_bumps_running_stat_versions_and_rejects_bad_input() -> None:
    x = _input((2, 8, 3, 3), torch.float32)
    rm, rv = torch.zeros(8), torch.ones(8)
    before = (rm._version, rv._version)
    ops.batch_norm_act(x, None, None, rm, rv, 0.1, 1e-5, "relu")
    assert rm._version > before[0] and rv._version > before[1]
    nchw = x.contiguous()
    assert not ops.batch_norm_act_supported(nchw)
    assert ops.batch_norm_act_supported(x)
    with pytest.raises(RuntimeError, match="channels-last"):
        ops.batch_norm_act(nchw, None, None, rm, rv, 0.1, 1e-5, "relu")
    with pytest.raises(RuntimeError, match="more than 1 value per channel"):
        ops.batch_norm_act(torch.randn(1, 8), None, None, rm, rv, 0.1, 1e-5, "relu")
    with pytest.raises(RuntimeError, match="running_mean"):
        ops.batch_norm_act(x, None, None, torch.zeros(7), rv, 0.1, 1e-5, "relu")
    with pytest.raises(InputError, match="activation"):
        ops.batch_norm_act(x, None, None, rm, rv, 0.1, 1e-5, "gelu")


def assert_same_float64_step(fused, plain, keys):
    """A float64 training step of a fused model and its plain twin: the same loss, gradients and state (running
    statistics included), and the fused model's state-dict keys unchanged. Each side is (loss, grads, model)."""
    (loss_f, grads_f, fused_model), (loss_p, grads_p, plain_model) = fused, plain
    torch.testing.assert_close(loss_f, loss_p, rtol=1e-9, atol=1e-9)
    for name in grads_p:
        torch.testing.assert_close(grads_f[name], grads_p[name], rtol=1e-6, atol=1e-8, msg=name)
    sd_f, sd_p = fused_model.state_dict(), plain_model.state_dict()
    assert list(sd_f) == keys
    for name in sd_p:
        torch.testing.assert_close(sd_f[name], sd_p[name], rtol=1e-9, atol=1e-9, msg=name)


# Small builds of the two BatchNorm-heavy models, for fused-versus-plain training-step comparisons.
SMALL_BN_MODELS = [
    lambda: mobilenet_v2(num_classes=5, input_shape=(32, 32, 3)),
    lambda: EfficientNetLite(0, num_classes=5, input_shape=(32, 32, 3)),
]


@pytest.mark.parametrize("build", SMALL_BN_MODELS)
def test_models_train_the_same_with_the_fused_batch_norm(build, monkeypatch, train_step) -> None:
    torch.manual_seed(0)
    # float64: 50 BatchNorms over 4 images amplify float32 rounding differences to ~1e-4 in the loss
    fused_model = build().double().train()
    plain_model = copy.deepcopy(fused_model)
    keys = list(fused_model.state_dict())
    calls = []
    real = ops.batch_norm_act
    monkeypatch.setattr(ops, "batch_norm_act", lambda *a: calls.append(a[-1]) or real(*a))
    x = torch.randn(4, 32, 32, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    loss_f, grads_f = train_step(fused_model, x, y)
    assert calls.count("relu6") >= 10 and "none" in calls  # the fused operator did the BN + ReLU6 pairs
    n_calls = len(calls)
    with layer_fusion(False):
        loss_p, grads_p = train_step(plain_model, x, y)
    with layers.conv_backend("torch"):  # stock torch everywhere: no fused BN either
        train_step(copy.deepcopy(plain_model), x, y)
    assert len(calls) == n_calls
    assert_same_float64_step((loss_f, grads_f, fused_model), (loss_p, grads_p, plain_model), keys)
    # inference (BN folded into the convolutions) is unchanged by the training-time fusion
    fused_model.eval()
    plain_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused_model(x), plain_model(x), rtol=1e-8, atol=1e-8)
