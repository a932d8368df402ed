"""Fused convolution + activation + max pooling (pydlr.ops.conv2d_act_pool, pydlr.layers.fusion) and
pydlr's one-call Adam (NativeAdam): equal to the unfused / torch computations, used where they apply."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_ops import _layout

from pydlr import _C, layers, ops
from pydlr.errors import InputError
from pydlr.layers import layer_fusion
from pydlr.layers.fusion import conv_then_pool
from pydlr.models import Sequential, seed_cnn
from pydlr.train.optimizers import Adam, AdamW, NativeAdam

ACT = {"none": lambda t: t, "relu": F.relu, "relu6": F.relu6}


def reference(x, w, b, stride, padding, dilation, act, pool, pool_stride):
    """The unfused computation with torch's own operators."""
    y = ACT[act](F.conv2d(x, w, b, stride, padding, dilation))
    return F.max_pool2d(y, pool, pool_stride)


# (N, C, H, W, OC, kernel, stride, padding, dilation, activation, pool, pool_stride): the seed's first layer,
# odd sizes (uncovered last row/column), windows with gaps, RGB input, 3x3 and rectangular pools, strided and
# dilated and padded convolutions, every fused activation, batch 1; the per-cell kernel (3x3, stride 1, C <= 3,
# 2x2 windows of stride 2) with padding reaching past the image, 1 to 3 channels and 16 to 64 outputs.
FUSED_CASES = [
    (4, 1, 28, 28, 32, 3, 1, 0, 1, "relu", (2, 2), (2, 2)),
    (3, 1, 11, 9, 16, 3, 1, 0, 1, "relu6", (2, 2), (2, 2)),
    (2, 3, 10, 13, 48, 3, 1, 0, 1, "none", (3, 3), (3, 3)),
    (2, 2, 9, 9, 16, 3, 1, 0, 1, "relu", (2, 2), (3, 3)),
    (1, 3, 17, 15, 64, 3, 2, 1, 1, "relu", (2, 2), (2, 2)),
    (2, 1, 14, 14, 32, 5, 1, 2, 1, "relu", (2, 3), (2, 3)),
    (2, 1, 16, 16, 16, 3, 1, 0, 2, "relu6", (2, 2), (2, 2)),
    (2, 3, 12, 11, 64, 3, 1, 1, 1, "relu", (2, 2), (2, 2)),
    (3, 2, 9, 10, 48, 3, 1, 1, 1, "none", (2, 2), (2, 2)),
    (1, 1, 7, 8, 16, 3, 1, 2, 1, "relu6", (2, 2), (2, 2)),
]


def _case_id(c):
    return f"{c[0]}x{c[1]}x{c[2]}x{c[3]}-oc{c[4]}-k{c[5]}s{c[6]}p{c[7]}d{c[8]}-{c[9]}-pool{c[10]}s{c[11]}"


@pytest.mark.parametrize("case", FUSED_CASES, ids=_case_id)
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_fused_values_and_gradients_equal_unfused(case, layout):
    n, c, h, w_, oc, k, s, p, d, act, pool, pool_stride = case
    torch.manual_seed(0)
    base = torch.randn(n, c, h, w_)
    weight = torch.randn(oc, c, k, k) * 0.5
    bias = torch.randn(oc) * 0.1
    x = _layout(base.clone(), layout)
    assert ops.conv_pool_fusable(x, weight, s, p, d, 1, act, pool, pool_stride)
    xs, ws, bs = (t.clone().requires_grad_() for t in (x, weight, bias))
    xr, wr, br = (t.clone().requires_grad_() for t in (base, weight, bias))
    y = ops.conv2d_act_pool(xs, ws, bs, s, p, d, 1, act, pool, pool_stride)
    ref = reference(xr, wr, br, s, p, d, act, pool, pool_stride)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    cl = torch.channels_last  # the output's layout is the convolution's (one input channel: ambiguous strides)
    assert y.is_contiguous(memory_format=cl) == ops.conv2d(x, weight, None, s, p, d).is_contiguous(memory_format=cl)
    grad = torch.randn_like(ref)
    y.backward(grad)
    ref.backward(grad)
    for mine, theirs in ((xs.grad, xr.grad), (ws.grad, wr.grad), (bs.grad, br.grad)):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)


def test_training_forward_keeps_only_pooled_output_and_one_byte_argmax():
    x = torch.rand(2, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(32, 1, 3, 3), torch.zeros(32)
    y, argmax = torch.ops.pydlr.conv2d_act_pool_with_argmax(x, w, b, [1, 1], [0, 0], [1, 1], 1, "relu", [2, 2], [2, 2])
    assert y.shape == (2, 32, 13, 13) and argmax.dtype == torch.uint8 and argmax.shape == y.shape
    conv = F.relu(F.conv2d(x, w, b))
    _, ref_idx = F.max_pool2d(conv, 2, return_indices=True)  # flat indices into each 26 x 26 plane
    assert torch.equal(argmax.long(), ref_idx // 26 % 2 * 2 + ref_idx % 26 % 2)
    with torch.no_grad():  # inference: no autograd node, the same values
        assert torch.equal(ops.conv2d_act_pool(x, w.requires_grad_(), b, 1, 0, 1, 1, "relu", 2), y)


# (N, C, H, OC, activation, padding): shapes the Winograd F(4x4, 3x3) kernel runs (enough tiles), pooled 2x2 in its
# output transform, the input gradient scattered from the pooled gradient. The seed's 32->64 at 13x13 (odd 11x11
# output: its last row and column are in no window), an even output (12x12 -> 10x10), 48 output channels (a 3-vector
# column chunk), every activation, 16 to 64 input channels (1 to 4 vectors), zero padding.
WINOGRAD_POOL_CASES = [
    (8, 32, 13, 64, "relu", 0),
    (8, 16, 12, 48, "relu6", 0),
    (4, 32, 18, 32, "none", 0),
    (8, 48, 13, 16, "relu", 0),
    (8, 64, 11, 32, "relu", 1),
]


def _conv_pool_close_to_reference(inputs, ref_inputs, pad, act, pool, pool_stride, out_tol, grad_atol):
    """ops.conv2d_act_pool on ``inputs`` against the composed reference on ``ref_inputs`` (the same values,
    maybe another layout): outputs close, and the three gradients close for one random upstream gradient.
    Returns the op's leaf tensors (with their gradients) and that upstream gradient."""
    mine = [t.clone().requires_grad_() for t in inputs]
    theirs = [t.clone().requires_grad_() for t in ref_inputs]
    out = ops.conv2d_act_pool(*mine, 1, pad, 1, 1, act, pool, pool_stride)
    ref = reference(*theirs, 1, pad, 1, act, pool, pool_stride)
    torch.testing.assert_close(out, ref, rtol=out_tol, atol=out_tol)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=grad_atol)
    return (*mine, grad)

@pytest.mark.parametrize("case", WINOGRAD_POOL_CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}-oc{c[3]}-{c[4]}-p{c[5]}")
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_winograd_conv_pooled_in_its_output_transform_equals_the_two_ops(case, layout):
    n, c, h, oc, act, pad = case
    torch.manual_seed(3)
    base = torch.randn(n, c, h, h)
    weight, bias = torch.randn(oc, c, 3, 3) * 0.2, torch.randn(oc) * 0.1
    x = _layout(base.clone(), layout)
    assert _C.conv2d_cpu_path(x, weight, [1, 1], [pad, pad], [1, 1], 1) == "winograd_f43"
    assert ops.conv_pool_fusable(x, weight, 1, pad, 1, 1, act, 2, 2)
    y, argmax = torch.ops.pydlr.conv2d_act_pool_with_argmax(x, weight, bias, [1, 1], [pad, pad], [1, 1], 1, act,
                                                            [2, 2], [2, 2])
    # The same Winograd arithmetic as the convolution alone: values and window positions bit for bit.
    conv = ops.conv2d(x, weight, bias, padding=pad, activation=act)
    ref_y, ref_a = torch.ops.pydlr.max_pool2d_with_argmax(conv, [2, 2], [2, 2])
    assert torch.equal(y, ref_y) and torch.equal(argmax, ref_a)
    with torch.no_grad():
        assert torch.equal(ops.conv2d_act_pool(x, weight, bias, 1, pad, 1, 1, act, 2), ref_y)
    xs, ws, bs, grad = _conv_pool_close_to_reference((x, weight, bias), (base, weight, bias), pad, act, 2, 2,
                                                     out_tol=1e-4, grad_atol=2e-3)
    # The input gradient alone (frozen weights) and the weight gradients alone are the same values.
    xa = x.clone().requires_grad_()
    ops.conv2d_act_pool(xa, weight, bias, 1, pad, 1, 1, act, 2).backward(grad)
    assert torch.equal(xa.grad, xs.grad)
    wa = weight.clone().requires_grad_()
    ops.conv2d_act_pool(x, wa, bias, 1, pad, 1, 1, act, 2).backward(grad)
    assert torch.equal(wa.grad, ws.grad)


def _winograd_conv_relu(x, w, b):
    return ops.conv2d(x, w, b, activation="relu")  # the same Winograd rounding at every tile: the same ties


def _torch_conv_relu(x, w, b):
    return F.relu(F.conv2d(x, w, b))  # NaN stays NaN (oneDNN's fused conv + ReLU, which ops.conv2d may take, zeroes it)


@pytest.mark.parametrize("c,oc,size,conv", [(32, 64, 13, _winograd_conv_relu), (1, 32, 28, _torch_conv_relu),
                                            (3, 16, 9, _torch_conv_relu)], ids=["winograd", "cell", "cell-rgb"])
def test_pooled_ties_and_nan_follow_max_pool2d(c, oc, size, conv):
    # A constant image ties every window (the first tap wins); a NaN input pixel makes the windows it reaches NaN
    # (the last NaN tap wins): the window positions of max_pool2d_with_argmax on the unfused convolution.
    weight, bias = torch.full((oc, c, 3, 3), 0.01), torch.zeros(oc)
    for fill_nan in (False, True):
        x = torch.ones(8, c, size, size)
        if fill_nan:
            x[1, c - 1, 6, 6] = float("nan")
        x = x.contiguous(memory_format=torch.channels_last)
        y, argmax = torch.ops.pydlr.conv2d_act_pool_with_argmax(x, weight, bias, [1, 1], [0, 0], [1, 1], 1, "relu",
                                                                [2, 2], [2, 2])
        ref_y, ref_a = torch.ops.pydlr.max_pool2d_with_argmax(conv(x, weight, bias), [2, 2], [2, 2])
        assert torch.equal(argmax, ref_a)
        torch.testing.assert_close(y, ref_y, equal_nan=True, rtol=0, atol=0)
        assert y.isnan().any() == fill_nan


def test_ties_and_all_negative_windows_give_torchs_gradient():
    # A constant image: every window ties; a negative bias: every ReLU output is 0 (no gradient at all).
    x = torch.ones(2, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    for bias_value in (0.5, -100.0):
        w = torch.full((16, 1, 3, 3), 0.1, requires_grad=True)
        b = torch.full((16,), bias_value, requires_grad=True)
        w2, b2 = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        ops.conv2d_act_pool(x, w, b, 1, 0, 1, 1, "relu", 2).sum().backward()
        reference(x, w2, b2, 1, 0, 1, "relu", 2, 2).sum().backward()
        torch.testing.assert_close(w.grad, w2.grad)
        torch.testing.assert_close(b.grad, b2.grad)


def test_unfusable_arguments_still_compute_the_composition():
    # One autograd node that masks the pooled gradient: values and all three gradients equal torch's conv2d +
    # activation + max_pool2d.
    torch.manual_seed(1)
    cl = torch.channels_last
    cases = [  # (x, weight, activation, pool, pool_stride): why it cannot fuse
        (torch.randn(2, 32, 13, 13), torch.randn(64, 32, 3, 3), "relu", 2, 2),  # too many input channels
        (torch.randn(3, 32, 13, 13).contiguous(memory_format=cl), torch.randn(64, 32, 3, 3) * 0.2, "relu", 2, 2),
        (torch.randn(2, 32, 12, 12).contiguous(memory_format=cl), torch.randn(64, 32, 3, 3), "relu6", 2, 2),
        (torch.randn(2, 1, 12, 12), torch.randn(32, 1, 3, 3), "relu", 3, 2),  # overlapping windows
        (torch.randn(2, 1, 12, 12).double(), torch.randn(32, 1, 3, 3).double(), "relu", 2, 2),  # float64
        (torch.randn(2, 1, 12, 12), torch.randn(24, 1, 3, 3), "none", 2, 2),  # 24 channels: no vector kernel
        (torch.randn(2, 16, 9, 9), torch.randn(16, 16, 3, 3), "relu6", (2, 3), (3, 2)),  # gaps and overlaps
    ]
    for x, w, act, pool, ps in cases:
        assert not ops.conv_pool_fusable(x, w, 1, 0, 1, 1, act, pool, ps)
        b = torch.randn(w.shape[0], dtype=w.dtype)
        _conv_pool_close_to_reference((x, w, b), (x, w, b), 0, act, pool, ps, out_tol=1e-5, grad_atol=1e-3)


def test_unfusable_pair_masks_like_the_activation_with_nan_and_clipped_values():
    # A pooled value of 0 (relu), of 6 (relu6) or NaN (a NaN bias: its channel is NaN everywhere) decides the
    # gradient of its window as the activation's derivative at the argmax does (threshold_backward /
    # hardtanh_backward, NaN passing): the same gradients as the convolution and the pooling layer by layer, and
    # torch's where no NaN is involved.
    torch.manual_seed(2)
    x = torch.rand(2, 32, 6, 6)
    x[0, 1, 2, 2] = 50.0
    x[:, 2] = -4.0
    w = torch.zeros(16, 32, 3, 3)
    w[:, :3, 1, 1] = 1.0
    for act in ("relu", "relu6"):
        for nan in (False, True):
            b = torch.zeros(16)
            b[3] = float("nan") if nan else 0.0
            assert not ops.conv_pool_fusable(x, w, 1, 1, 1, 1, act, 2, 2)
            ws, bs = w.clone().requires_grad_(), b.clone().requires_grad_()
            wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
            grad = torch.randn(2, 16, 3, 3)
            ops.conv2d_act_pool(x, ws, bs, 1, 1, 1, 1, act, 2).backward(grad)
            ref = (ops.max_pool2d(ops.conv2d(x, wr, br, 1, 1, 1, 1, act), 2) if nan
                   else reference(x, wr, br, 1, 1, 1, act, 2, 2))
            ref.backward(grad)
            torch.testing.assert_close(ws.grad, wr.grad, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(bs.grad, br.grad, rtol=1e-4, atol=1e-4)
            assert bs.grad.isfinite().all()


def test_gradcheck_float64_through_the_composed_path(one_thread):
    x = torch.randn(2, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(16, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: ops.conv2d_act_pool(*t, 1, 0, 1, 1, "none", 2), (x, w, b))


def test_bad_input_is_refused_with_a_clear_message():
    x, w = torch.randn(2, 1, 8, 8), torch.randn(16, 1, 3, 3)
    with pytest.raises(InputError, match="activation"):
        ops.conv2d_act_pool(x, w, None, activation="gelu")
    with pytest.raises(InputError, match="pool_size"):
        ops.conv2d_act_pool(x, w, None, pool_size=(2, 2, 2))
    with pytest.raises(RuntimeError, match="smaller than the pooling window"):
        ops.conv2d_act_pool(x, w, None, pool_size=7)
    with pytest.raises(RuntimeError, match="pool_kernel and pool_stride must be 2 positive values"):
        torch.ops.pydlr.conv2d_act_pool(x, w, None, [1, 1], [0, 0], [1, 1], 1, "relu", [0, 2], [2, 2])
    with pytest.raises(RuntimeError, match="dtype mismatch"):
        ops.conv2d_act_pool(x, w.double(), None)
    with pytest.raises(RuntimeError, match="no fused kernel"):
        torch.ops.pydlr.conv2d_act_pool_with_argmax(x, w, None, [1, 1], [0, 0], [1, 1], 1, "relu", [3, 3], [1, 1])


# ---------------------------------------------------------------------------------------------- layers
def _seed_pair(backend=None):
    torch.manual_seed(0)
    return Sequential([layers.Input((28, 28, 1)),
                       layers.Conv2D(32, 3, activation="relu", backend=backend), layers.MaxPooling2D(2),
                       layers.Conv2D(16, 3, activation="relu"), layers.Flatten(), layers.Dense(10)])


def test_sequential_fuses_conv_then_pool_with_the_same_results():
    model = _seed_pair()
    conv, pool = model.layers[0], model.layers[1]
    x = torch.rand(4, 28, 28, 1)
    internal = model.prepare_input(x)
    assert conv_then_pool(conv, pool, internal) is not None  # this pair fuses
    assert conv_then_pool(pool, model.layers[2], internal) is None  # other pairs do not
    out = model(x)
    out.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with layer_fusion(False):
        ref = model(x)
        ref.sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-4)


def test_fusion_steps_aside_for_hooks_and_the_torch_backend():
    model = _seed_pair()
    conv, pool = model.layers[0], model.layers[1]
    internal = model.prepare_input(torch.rand(2, 28, 28, 1))
    seen = []
    handle = conv.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    assert conv_then_pool(conv, pool, internal) is None
    model(torch.rand(2, 28, 28, 1))
    assert seen == [torch.Size([2, 32, 26, 26])]  # the hook saw the convolution's own output
    handle.remove()
    assert conv_then_pool(conv, pool, internal) is not None
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: None)  # a global hook
    assert conv_then_pool(conv, pool, internal) is None
    handle.remove()
    with layers.conv_backend("torch"):
        assert conv_then_pool(conv, pool, internal) is None
    assert conv_then_pool(_seed_pair(backend="torch").layers[0], pool, internal) is None


def test_fused_layers_check_their_input_shape():
    model = _seed_pair()
    with pytest.raises(InputError, match="input shape"):
        conv_then_pool(model.layers[0], model.layers[1], torch.rand(2, 3, 28, 28))


def test_seed_cnn_trains_to_the_same_losses_fused_and_unfused():
    from pydlr.data import load_fashion_mnist

    (x, y), _ = load_fashion_mnist()
    x = torch.from_numpy(x[:640]).float().div_(255).unsqueeze(-1)
    y = torch.from_numpy(y[:640]).long()

    def losses(fused: bool) -> list[float]:
        torch.manual_seed(0)
        model = seed_cnn(head=True)
        opt = Adam().build(list(model.parameters()))
        out = []
        with layer_fusion(fused):
            for i in range(0, 640, 64):
                loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
                opt.zero_grad()
                loss.backward()
                opt.step()
                out.append(loss.item())
        return out

    fused, unfused = losses(True), losses(False)
    assert fused[-1] < fused[0]  # it learns
    torch.testing.assert_close(torch.tensor(fused), torch.tensor(unfused), rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------- Adam
def _twin_params(dtype=torch.float32):
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(37, 5, dtype=dtype)), torch.nn.Parameter(torch.randn(7, dtype=dtype))]
    return a, [torch.nn.Parameter(p.detach().clone()) for p in a]


def _step_both_and_compare(mine, theirs, opt, ref):
    """One step of both optimizers on the same random gradients; the parameters must stay equal."""
    for p, q in zip(mine, theirs, strict=True):
        g = torch.randn_like(p)
        p.grad, q.grad = g.clone(), g.clone()
    opt.step()
    ref.step()
    for p, q in zip(mine, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (0.01, False), (0.004, True)])
def test_native_adam_matches_torch_adam_step_by_step(weight_decay, decoupled):
    mine, theirs = _twin_params()
    kwargs = {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-7, "weight_decay": weight_decay}
    opt = NativeAdam(mine, decoupled_weight_decay=decoupled, **kwargs)
    ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)(theirs, **kwargs)
    for _ in range(6):
        _step_both_and_compare(mine, theirs, opt, ref)
    assert float(opt.state[mine[0]]["step"]) == 6.0


def test_native_adam_state_dict_is_torchs():
    mine, theirs = _twin_params()
    opt = NativeAdam(mine, lr=1e-2)
    for p in mine:
        p.grad = torch.ones_like(p)
    opt.step()
    ref = torch.optim.Adam(theirs, lr=1e-2, foreach=False)
    # A NativeAdam checkpoint loads into torch's Adam (deep copy: load_state_dict keeps the tensors it is given).
    ref.load_state_dict(copy.deepcopy(opt.state_dict()))
    for p, q in zip(mine, theirs, strict=True):
        q.data.copy_(p.data)
    _step_both_and_compare(mine, theirs, opt, ref)


def test_native_adam_leaves_other_cases_to_torch():
    params64, _ = _twin_params(torch.float64)
    opt = NativeAdam(params64, lr=1e-2)
    for p in params64:
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in params64]
    opt.step()  # float64: torch's own step
    assert all(not torch.equal(p, b) for p, b in zip(params64, before, strict=True))
    f32 = [torch.nn.Parameter(torch.zeros(3))]
    # built optimizers are subclasses of these with Keras' learning_rate property: isinstance
    assert isinstance(Adam().build(f32), NativeAdam)
    assert isinstance(Adam(amsgrad=True).build(f32), NativeAdam)  # amsgrad groups: torch's step inside
    adamw = AdamW().build(f32)
    assert isinstance(adamw, NativeAdam) and adamw.param_groups[0]["decoupled_weight_decay"]
    torch_adam = Adam().build([torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))])
    assert isinstance(torch_adam, torch.optim.Adam) and not isinstance(torch_adam, NativeAdam)


def test_native_adam_step_refuses_mismatched_lists():
    p = torch.zeros(4)
    with pytest.raises(RuntimeError, match="same length"):
        _C.adam_step_([p], [], [p], [p], [torch.tensor(0.0)], 1e-3, 0.9, 0.999, 1e-7, 0.0, False)
    with pytest.raises(RuntimeError, match="contiguous CPU float32"):
        _C.adam_step_([p], [torch.zeros(5)], [p], [p], [torch.tensor(0.0)], 1e-3, 0.9, 0.999, 1e-7, 0.0, False)


@pytest.mark.parametrize("x_grad", [False, True])
def test_expanded_upstream_gradient_gives_the_dense_gradients(x_grad):
    """``out.sum().backward()`` hands the fused backward a stride-0 (expanded) gradient: the input, weight
    and bias gradients must be those of the same gradient made dense."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28).contiguous(memory_format=torch.channels_last).requires_grad_(x_grad)
    w = torch.randn(32, 1, 3, 3, requires_grad=True)
    b = torch.randn(32, requires_grad=True)
    grads = []
    for dense in (True, False):
        out = ops.conv2d_act_pool(x, w, b, 1, 0, 1, 1, "relu", 2)
        if dense:
            out.backward(torch.ones_like(out))
        else:
            out.sum().backward()
        grads.append([t.grad for t in (x, w, b) if t.grad is not None])
        for t in (x, w, b):
            t.grad = None
    assert len(grads[1]) == (3 if x_grad else 2)
    assert all(torch.equal(g, h) for g, h in zip(grads[0], grads[1], strict=True))


# ---------------------------------------------------------------------------------------------- loss
@pytest.mark.parametrize("n,k", [(64, 10), (1, 2), (7, 1000), (3000, 40)])  # 3000 x 40: rows in parallel
def test_softmax_cross_entropy_equals_torchs_values_and_gradients(n, k):
    torch.manual_seed(n)
    logits = torch.randn(n, k) * 4
    logits[0, 0] = 80.0  # large logits: the max is subtracted before exp
    target = torch.randint(0, k, (n,))
    mine, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    loss = ops.softmax_cross_entropy(mine, target)
    expected = F.cross_entropy(ref, target)
    assert loss.shape == () and "SoftmaxCrossEntropy" in loss.grad_fn.name()  # the native node
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    (loss * 3).backward()
    (expected * 3).backward()
    torch.testing.assert_close(mine.grad, ref.grad, rtol=1e-5, atol=1e-7)


def test_softmax_cross_entropy_outside_the_native_path_is_torchs():
    torch.manual_seed(0)
    logits, target = torch.randn(5, 4), torch.tensor([0, 3, 1, 2, 2])
    with pytest.raises((IndexError, RuntimeError), match="out of bounds"):
        ops.softmax_cross_entropy(logits, torch.tensor([0, 4, 1, 2, 2]))
    ignored = torch.tensor([0, -100, 1, 2, 2])  # torch's ignore_index
    torch.testing.assert_close(ops.softmax_cross_entropy(logits, ignored), F.cross_entropy(logits, ignored))
    x64 = logits.double().requires_grad_()
    ops.softmax_cross_entropy(x64, target).backward()
    ref = logits.double().requires_grad_()
    F.cross_entropy(ref, target).backward()
    torch.testing.assert_close(x64.grad, ref.grad)
    with torch.inference_mode():
        torch.testing.assert_close(ops.softmax_cross_entropy(logits, target), F.cross_entropy(logits, target))
    with torch.no_grad():
        torch.testing.assert_close(ops.softmax_cross_entropy(logits, target), F.cross_entropy(logits, target))
    nan = logits.clone()
    nan[1, 2] = float("nan")
    assert ops.softmax_cross_entropy(nan, target).isnan()


def test_sparse_loss_from_logits_runs_the_native_node():
    from pydlr.train.losses import get_loss

    torch.manual_seed(0)
    pred, target = torch.randn(8, 10, requires_grad=True), torch.randint(0, 10, (8,))
    loss = get_loss("sparse_categorical_crossentropy", from_logits=True)(pred, target)
    assert "SoftmaxCrossEntropy" in loss.grad_fn.name()
    torch.testing.assert_close(loss, F.cross_entropy(pred, target))
