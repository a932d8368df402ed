"""pydlr.ops.conv2d / torch.ops.pydlr.*: values against F.conv2d, gradients (gradcheck), layouts, bad input."""

from __future__ import annotations

import importlib
import random

import pytest
import torch
import torch.nn.functional as F

from pydlr import ops
from pydlr.errors import InputError

ACT_REF = {"none": lambda t: t, "relu": torch.relu, "relu6": F.relu6}


def _reference(x, w, b, stride, padding, dilation, groups, act="none"):
    return ACT_REF[act](F.conv2d(x, w, b, stride, padding, dilation, groups))


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values as x in another memory layout."""
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if (
        layout == "strided"
    ):  # a non-contiguous view: every other column of a wider tensor, H/W transposed
        n, c, h, w = x.shape
        wide = torch.zeros(n, c, w, 2 * h, dtype=x.dtype)
        wide[:, :, :, ::2] = x.transpose(2, 3)
        view = wide[:, :, :, ::2].transpose(2, 3)
        assert not view.is_contiguous() and not view.is_contiguous(
            memory_format=torch.channels_last
        )
        return view
    return x.contiguous()


@pytest.fixture(params=["auto", "own"])
def route(request):
    """Runs a test with the oneDNN route on (the default) and off (pydlr's own kernels on every shape)."""
    before = ops.onednn_route()
    ops.set_onednn_route(request.param == "auto")
    yield request.param
    ops.set_onednn_route(before)


# (N, C, H, W, OC, kH, kW, stride, padding, dilation, groups)
FORWARD_CASES = [
    (4, 1, 28, 28, 32, 3, 3, (1, 1), (0, 0), (1, 1), 1),  # seed layer 1 (direct kernel)
    (3, 32, 13, 13, 64, 3, 3, (1, 1), (0, 0), (1, 1), 1),  # seed layer 2 (im2col + GEMM)
    (2, 64, 5, 5, 64, 3, 3, (1, 1), (0, 0), (1, 1), 1),  # seed layer 3
    (2, 3, 17, 15, 8, 3, 3, (2, 2), (1, 1), (1, 1), 1),  # RGB stem, stride 2
    (2, 16, 15, 17, 16, 3, 3, (1, 1), (1, 1), (1, 1), 16),  # depthwise
    (2, 24, 16, 15, 24, 3, 3, (2, 2), (1, 1), (1, 1), 24),  # depthwise stride 2
    (2, 12, 9, 11, 6, 1, 1, (1, 1), (0, 0), (1, 1), 1),  # pointwise
    (2, 12, 9, 11, 6, 1, 1, (2, 2), (0, 0), (1, 1), 2),  # 1x1 stride 2, groups 2
    (2, 8, 11, 10, 12, 3, 2, (1, 2), (2, 1), (2, 1), 2),  # asymmetric everything, groups 2
    (1, 8, 9, 9, 16, 3, 3, (1, 1), (2, 2), (2, 2), 8),  # depthwise multiplier 2 (grouped GEMM path)
    (2, 4, 7, 7, 8, 5, 5, (1, 1), (2, 2), (1, 1), 1),  # 5x5 "same"
]


@pytest.mark.parametrize("case", FORWARD_CASES, ids=lambda c: "x".join(map(str, c[:7])))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
def test_forward_matches_torch_float32(case, layout, act, route):
    n, c, h, w, oc, kh, kw, stride, padding, dilation, groups = case
    x = torch.randn(n, c, h, w) * 3
    weight = torch.randn(oc, c // groups, kh, kw)
    bias = torch.randn(oc)
    ref = _reference(x, weight, bias, stride, padding, dilation, groups, act)
    y = ops.conv2d(
        _layout(x, layout), weight, bias, stride, padding, dilation, groups, activation=act
    )
    assert y.shape == ref.shape and y.dtype == torch.float32
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    if layout == "channels_last" and c > 1:
        assert y.is_contiguous(
            memory_format=torch.channels_last
        )  # output follows the input's format
    if layout == "contiguous":
        assert y.is_contiguous()


def test_forward_without_bias_and_float64():
    x = torch.randn(2, 6, 9, 9, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    y = ops.conv2d(x, weight, None, (1, 2), (1, 0), (1, 1), 2)
    ref = F.conv2d(x, weight, None, (1, 2), (1, 0), (1, 1), 2)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def _random_config(rng: random.Random) -> dict:
    groups_kind = rng.choice(["one", "two", "depthwise"])
    cin_per = rng.choice([1, 2, 3])
    groups = {"one": 1, "two": 2, "depthwise": rng.choice([2, 3, 4])}[groups_kind]
    cin = cin_per * groups if groups_kind != "depthwise" else groups
    cout = groups * (rng.choice([1, 2]) if groups_kind != "depthwise" else 1)
    k = (rng.choice([1, 2, 3]), rng.choice([1, 2, 3]))
    return {
        "n": rng.choice([1, 2]),
        "cin": cin,
        "cout": cout if groups_kind != "one" else rng.choice([1, 3, 4]),
        "h": rng.choice([5, 6, 7]),
        "w": rng.choice([5, 7, 8]),
        "k": k,
        "stride": (rng.choice([1, 2]), rng.choice([1, 2])),
        "padding": (rng.choice([0, 1, 2]), rng.choice([0, 1])),
        "dilation": (rng.choice([1, 2]), rng.choice([1, 2])),
        "groups": groups,
        "bias": rng.random() < 0.8,
        "layout": rng.choice(["contiguous", "channels_last"]),
    }


def _inputs_away_from_kinks(cfg: dict, act: str, seed: int):
    """Float64 inputs whose pre-activations stay >= 1e-3 away from relu's / relu6's kinks."""
    for attempt in range(50):
        gen = torch.Generator().manual_seed(seed * 100 + attempt)
        x = (
            torch.randn(
                cfg["n"], cfg["cin"], cfg["h"], cfg["w"], generator=gen, dtype=torch.float64
            )
            * 2
        )
        weight = (
            torch.randn(
                cfg["cout"],
                cfg["cin"] // cfg["groups"],
                *cfg["k"],
                generator=gen,
                dtype=torch.float64,
            )
            * 2
        )
        bias = torch.randn(cfg["cout"], generator=gen, dtype=torch.float64) if cfg["bias"] else None
        pre = F.conv2d(
            x, weight, bias, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"]
        )
        kinks = {"none": [], "relu": [0.0], "relu6": [0.0, 6.0]}[act]
        if all((pre - kink).abs().min().item() > 1e-3 for kink in kinks):
            return _layout(x, cfg["layout"]), weight, bias
    raise AssertionError("could not draw inputs away from the activation's kinks")


@pytest.mark.parametrize("seed", range(36))
def test_gradcheck_random_shapes(seed, one_thread):
    rng = random.Random(seed)
    cfg = _random_config(rng)
    h_eff = cfg["h"] + 2 * cfg["padding"][0] - cfg["dilation"][0] * (cfg["k"][0] - 1)
    w_eff = cfg["w"] + 2 * cfg["padding"][1] - cfg["dilation"][1] * (cfg["k"][1] - 1)
    if h_eff < 1 or w_eff < 1:
        cfg["padding"] = (2, 1)
        cfg["dilation"] = (1, 1)
    act = ["none", "relu", "relu6"][seed % 3]
    if (
        act != "none"
    ):  # outputs that only see padding equal the bias: without one they sit on relu's kink
        cfg["bias"] = True
    x, weight, bias = _inputs_away_from_kinks(cfg, act, seed)
    x.requires_grad_()
    weight.requires_grad_()
    inputs = (x, weight) + ((bias.requires_grad_(),) if bias is not None else ())

    def fn(*args):
        b = args[2] if len(args) > 2 else None
        return ops.conv2d(
            args[0], args[1], b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], act
        )

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "spec",
    [
        # (N, C, H, W, OC, k, stride, padding, dilation, groups, layout)
        (1, 1, 8, 7, 4, 3, 1, 0, 1, 1, "channels_last"),  # direct NHWC kernel, batch 1
        (2, 1, 8, 7, 4, 3, 2, 1, 1, 1, "contiguous"),  # direct NCHW kernel, stride 2
        (2, 4, 9, 8, 4, 3, 2, 1, 1, 4, "channels_last"),  # depthwise NHWC stride 2
        (2, 4, 9, 8, 4, 3, 1, 2, 2, 4, "contiguous"),  # depthwise NCHW dilation 2
        (2, 6, 7, 7, 4, 1, 1, 0, 1, 2, "channels_last"),  # pointwise groups 2
        (1, 6, 7, 7, 4, 1, 1, 0, 1, 1, "contiguous"),  # pointwise NCHW
        (2, 4, 7, 8, 4, 3, 2, 2, 2, 2, "contiguous"),  # GEMM NCHW all options
        (2, 4, 7, 8, 4, 3, 2, 2, 2, 2, "channels_last"),  # GEMM NHWC all options
    ],
)
def test_gradcheck_each_kernel_path(spec, one_thread):
    n, c, h, w, oc, k, s, p, d, g, layout = spec
    x = _layout(torch.randn(n, c, h, w, dtype=torch.float64), layout).requires_grad_()
    weight = torch.randn(oc, c // g, k, k, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(oc, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b_, c_: ops.conv2d(a, b_, c_, (s, s), (p, p), (d, d), g),
        (x, weight, bias),
        eps=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("kernel", [(2, 2), (4, 4), (2, 3)])
def test_gradcheck_same_padding_even_kernel(kernel, one_thread):
    """Keras' "same" with even kernels pads asymmetrically; layers do that with F.pad before the op."""
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, *kernel, dtype=torch.float64, requires_grad=True)
    pad_h, pad_w = kernel[0] - 1, kernel[1] - 1
    pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)

    def fn(a, b):
        return ops.conv2d(F.pad(a, pads), b)

    assert fn(x, weight).shape[2:] == x.shape[2:]
    assert torch.autograd.gradcheck(fn, (x, weight), eps=1e-6, atol=1e-6)


def test_backward_matches_torch_float32_fused_and_layouts(route):
    for layout in ["contiguous", "channels_last"]:
        for act in ["relu", "relu6"]:
            x0 = torch.randn(4, 16, 12, 12) * 3
            w0 = torch.randn(24, 16, 3, 3) * 0.3
            b0 = torch.randn(24)
            grads = []
            for impl in ["torch", "pydlr"]:
                x = _layout(x0, layout).requires_grad_()
                w = w0.clone().requires_grad_()
                b = b0.clone().requires_grad_()
                if impl == "torch":
                    y = _reference(x, w, b, 1, 1, 1, 1, act)
                else:
                    y = ops.conv2d(x, w, b, (1, 1), (1, 1), activation=act)
                (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
                grads.append((x.grad, w.grad, b.grad))
            for mine, ref in zip(grads[1], grads[0], strict=True):
                torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_onednn_route_takes_gemm_shapes_and_fuses_the_activation():
    """float32 GEMM-bound shapes go to oneDNN (activation as post-op); switched off, pydlr's own GEMM runs."""
    if "absent" in ops.build_info()["onednn"]:
        pytest.skip("this torch has no oneDNN")
    x = torch.randn(3, 32, 13, 13).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(64, 32, 3, 3) * 0.1, torch.randn(64)
    geometry = (x, w, [1, 1], [0, 0], [1, 1], 1)
    before = ops.onednn_route()
    try:
        ops.set_onednn_route(True)
        assert ops._C.conv2d_cpu_path(*geometry) == "onednn"
        assert ops._C.conv2d_cpu_path(x.double(), w.double(), *geometry[2:]) == "gemm_nhwc"  # no float64
        assert ops._C.conv2d_cpu_path(x[:, :1], w[:, :1], *geometry[2:]) == "dense_direct"  # own kernel wins
        for act in ["relu", "relu6"]:
            y = ops.conv2d(x * 4, w, b, activation=act)
            torch.testing.assert_close(y, ACT_REF[act](F.conv2d(x * 4, w, b)), rtol=1e-5, atol=1e-4)
            assert y.is_contiguous(memory_format=torch.channels_last)
            assert (y == 0).any() and (act == "relu" or (y == 6).any())  # the clip is applied
        ops.set_onednn_route(False)
        assert not ops.onednn_route() and ops._C.conv2d_cpu_path(*geometry) == "gemm_nhwc"
        assert "switched off" in ops.build_info()["onednn"]
        with pytest.raises(InputError, match="enabled"):
            ops.set_onednn_route("yes")
    finally:
        ops.set_onednn_route(before)


@pytest.mark.parametrize(
    "shape",
    # (C, H, W, stride, padding): the tiled channels-last depthwise 3x3 kernels (float32, C % 16 == 0), with
    # rows shorter than a tile, odd sizes, and every padding they take
    [
        (16, 7, 9, 1, 1),
        (32, 10, 11, 2, 1),
        (48, 13, 12, 1, 0),
        (16, 9, 8, 2, 0),
        (32, 5, 5, 1, 2),
        (16, 12, 17, 2, 2),
        (16, 3, 3, 2, 1),
        (16, 2, 2, 1, 1),
        (32, 1, 1, 2, 1),
        (64, 23, 19, 2, 1),
    ],
)
@pytest.mark.parametrize("act", ["none", "relu6"])
def test_depthwise3x3_tiled_matches_torch_float32(shape, act):
    c, h, w, s, p = shape
    x = torch.randn(3, h, w, c).permute(0, 3, 1, 2)  # channels-last memory, as the layers pass it
    weight = torch.randn(c, 1, 3, 3)
    assert ops._C.conv2d_cpu_path(x, weight, [s, s], [p, p], [1, 1], c) == "depthwise_nhwc"
    y = _depthwise_matches_torch(x, weight, s, p, act)
    assert y.is_contiguous(memory_format=torch.channels_last)


def _depthwise_matches_torch(x, weight, s, p, act):
    """pydlr's depthwise conv2d (value and the three gradients) against torch's in float32; returns pydlr's y."""
    c = x.shape[1]
    bias = torch.randn(c)
    results = []
    for impl in ["torch", "pydlr"]:
        xi, wi, bi = (t.clone().requires_grad_() for t in (x, weight, bias))
        if impl == "torch":
            y = _reference(xi, wi, bi, s, p, 1, c, act)
        else:
            y = ops.conv2d(xi, wi, bi, (s, s), (p, p), (1, 1), c, act)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        results.append((y.detach(), xi.grad, wi.grad, bi.grad))
    for mine, ref in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4 * max(1.0, ref.abs().max().item()))
    return results[1][0]


@pytest.mark.parametrize(
    "shape",
    # (C, H, W, kernel, stride, padding): NCHW float32 depthwise, the phase-plane kernels (backward; forward at
    # stride 1 with rows that are not whole vectors) and the direct forward
    [
        (3, 7, 9, 3, 1, 1),
        (5, 10, 11, 3, 2, 1),
        (4, 13, 12, 3, 1, 0),
        (3, 5, 5, 3, 1, 2),
        (2, 12, 17, 5, 2, 2),
        (2, 3, 3, 3, 2, 1),
        (3, 1, 1, 3, 2, 1),
        (4, 23, 19, 5, 1, 2),
        (6, 8, 8, 1, 1, 0),
        (3, 6, 7, 2, 2, 0),
    ],
)
@pytest.mark.parametrize("act", ["none", "relu6"])
def test_depthwise_nchw_matches_torch_float32(shape, act):
    c, h, w, k, s, p = shape
    y = _depthwise_matches_torch(torch.randn(3, c, h, w), torch.randn(c, 1, k, k), s, p, act)
    assert y.is_contiguous()


ACT_GRAD_MASK = {
    "none": lambda y: torch.ones_like(y),
    "relu": lambda y: (y > 0).to(y.dtype),
    "relu6": lambda y: ((y > 0) & (y < 6)).to(y.dtype),
}


@pytest.mark.parametrize(
    "shape",
    # (N, C, OC, H, W, padding, tile): 3x3 stride-1 shapes with >= 64 output tiles, partial tiles, OC not a
    # multiple of 64 (48, 80: the register tiles' remainder columns), C at the Winograd limit (64); tile 4 is
    # F(4x4, 3x3), tile 3 F(3x3, 3x3) (planes that 3x3 tiles cover with fewer multiplies: 3x3, 5x6, 9x9)
    [
        (16, 32, 32, 13, 13, 0, 4),
        (8, 16, 48, 17, 15, 1, 4),
        (16, 32, 16, 10, 10, 2, 4),
        (64, 32, 64, 13, 13, 0, 4),
        (4, 64, 80, 30, 20, 1, 4),
        (64, 64, 64, 5, 5, 0, 3),
        (16, 16, 32, 9, 9, 1, 3),
        (16, 32, 48, 7, 8, 0, 3),
    ],
)
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "strided"])
def test_winograd_matches_float64_reference(shape, act, layout, route):
    """These shapes run Winograd for the forward and the weight and bias gradients, in inference and training
    alike (the input gradient is oneDNN's, or pydlr's GEMM path on tiny planes and with the route off)."""
    n, c, oc, h, w, p, tile = shape
    x = torch.randn(n, h, w, c).permute(0, 3, 1, 2)  # channels-last memory, as the layers pass it
    x = x if layout == "channels_last" else _layout(x, layout)
    weight, bias = torch.randn(oc, c, 3, 3) * 0.2, torch.randn(oc)
    assert ops._C.conv2d_cpu_path(x, weight, [1, 1], [p, p], [1, 1], 1) == f"winograd_f{tile}3"
    xi, wi, bi = (t.clone().requires_grad_() for t in (x, weight, bias))
    y = ops.conv2d(xi, wi, bi, (1, 1), (p, p), (1, 1), 1, act)
    assert y.is_contiguous(
        memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format
    )
    gy = torch.linspace(-1, 1, y.numel()).view_as(y)
    y.backward(gy)
    with torch.no_grad():
        y_inference = ops.conv2d(x, weight, bias, (1, 1), (p, p), (1, 1), 1, act)
    assert torch.equal(y_inference, y)  # one kernel for inference and training
    # The reference in float64, masked where pydlr's own output says (a value within rounding of 0 or 6 may fall
    # on the other side of the activation's kink in a float32 kernel).
    x64, w64, b64 = (t.double().requires_grad_() for t in (x, weight, bias))
    z64 = F.conv2d(x64, w64, b64, 1, p)
    scale = z64.abs().max().item()
    # The accuracy bar: 1e-5 relative to the convolution's magnitude (before relu6 clips it to 6).
    torch.testing.assert_close(y.double(), ACT_REF[act](z64).detach(), rtol=1e-5, atol=1e-5 * scale)
    z64.backward(gy.double() * ACT_GRAD_MASK[act](y.detach().double()))
    for got, want in [(xi.grad, x64.grad), (wi.grad, w64.grad), (bi.grad, b64.grad)]:
        torch.testing.assert_close(got.double(), want, rtol=2e-5, atol=2e-5 * want.abs().max().item())
    # The weight gradient comes in the weight's own layout: autograd keeps it without a copy.
    _, gw, _ = torch.ops.pydlr.conv2d_backward(gy, x, weight, y.detach(), [1, 1], [p, p], [1, 1], 1, act,
                                               [False, True, True])
    assert gw.is_contiguous() and torch.equal(gw, wi.grad)


def test_winograd_limits():
    """Winograd only where it is accurate to 1e-5 and fast: C <= 64, 3x3 stride 1, C and OC multiples of 16,
    >= 64 tiles, float32."""
    x = torch.randn(16, 13, 13, 128).permute(0, 3, 1, 2)

    def path(x, oc=64, stride=1):
        w = torch.randn(oc, x.shape[1], 3, 3, dtype=x.dtype)
        return ops._C.conv2d_cpu_path(x, w, [stride, stride], [0, 0], [1, 1], 1)

    assert path(x[:, :64]) == "winograd_f43"  # 11x11 outputs: 9 tiles of 4x4 (16 of 3x3) an image
    seed_conv3_input = torch.randn(64, 5, 5, 64).permute(0, 3, 1, 2)
    assert path(seed_conv3_input) == "winograd_f33"  # 3x3 outputs: one tile of 3x3 an image
    assert not path(x).startswith("winograd")  # C = 128
    assert not path(x[:, :64], stride=2).startswith("winograd")
    assert not path(x[:, :24]).startswith("winograd")  # C % 16
    assert not path(x[:, :64], oc=24).startswith("winograd")  # OC % 16
    assert not path(x[:7, :64]).startswith("winograd")  # 63 tiles
    assert not path(x[:, :64].double()).startswith("winograd")


@pytest.mark.parametrize("width", [5, 16, 17, 28, 40])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("groups", [1, 4])  # dense (direct / wide / GEMM kernels) and depthwise
def test_fused_activation_keeps_torch_semantics_on_every_row_length(width, layout, groups, route):
    """relu / relu6 fused into pydlr's kernels equal torch's bit for bit: NaN propagates, 0 and 6 clamp exactly,
    on rows shorter than, equal to and longer than a vector of 16 (the last vector overlaps the one before).
    Shapes on the oneDNN route get oneDNN's post-op, which maps NaN to 0 (as torch.compile's fused conv + relu)."""
    x = torch.randn(2, 4, 3, width) * 8
    x[0, 1, 1, width // 2] = float("nan")
    x = _layout(x, layout)
    w = torch.zeros(4, 4 // groups, 1, 1)
    for c in range(4):  # identity 1x1 kernel: the output is the input (NaN * 0 spreads the NaN when dense)
        w[c, c % (4 // groups), 0, 0] = 1.0
    onednn = ops._C.conv2d_cpu_path(x, w, [1, 1], [0, 0], [1, 1], groups) == "onednn"
    for act in ["relu", "relu6"]:
        y = ops.conv2d(x, w, None, (1, 1), (0, 0), (1, 1), groups, act)
        ref = ACT_REF[act](F.conv2d(x, w, None, 1, 0, 1, groups))
        assert torch.isnan(ref).any()
        if onednn:
            ref = torch.nan_to_num(ref, nan=0.0)
        assert torch.equal(torch.isnan(y), torch.isnan(ref))
        ok = ~torch.isnan(ref)
        assert torch.equal(y[ok], ref[ok])


def test_gradients_only_where_required():
    x = torch.randn(2, 3, 8, 8)
    w = torch.randn(5, 3, 3, 3, requires_grad=True)
    b = torch.randn(5)  # not requiring grad
    ops.conv2d(x, w, b, activation="relu").sum().backward()
    assert x.grad is None and b.grad is None
    ref_w = w.detach().clone().requires_grad_()
    torch.relu(F.conv2d(x, ref_w, b)).sum().backward()
    torch.testing.assert_close(w.grad, ref_w.grad, rtol=1e-4, atol=1e-4)


def test_native_wins_reads_the_tiny_plane_threshold_from_the_extension(monkeypatch):
    """native_wins' rule for channels-last GEMM shapes flips at the extension's kTinyPlane (_C.TINY_PLANE), which
    pydlr.ops reads from the extension rather than keeping a copy."""
    tiny = ops._C.TINY_PLANE
    assert isinstance(tiny, int) and tiny > 1 and ops._TINY_PLANE == tiny
    w = torch.randn(32, 96, 3, 3)  # 96 input channels: neither Winograd nor a direct kernel
    before = ops.onednn_route()
    try:
        ops.set_onednn_route(False)  # channels-last GEMM shapes of every plane size then run gemm_nhwc
        for ow, wins in ((tiny - 1, True), (tiny, False)):
            x = torch.randn(2, 96, 3, ow + 2).contiguous(memory_format=torch.channels_last)  # output 1 x ow
            assert ops._C.conv2d_cpu_path(x, w, [1, 1], [0, 0], [1, 1], 1) == "gemm_nhwc"
            assert ops.native_wins(x, w) is wins
    finally:
        ops.set_onednn_route(before)
    try:
        monkeypatch.setattr(ops._C, "TINY_PLANE", tiny + 7)
        importlib.reload(ops)
        assert ops._TINY_PLANE == tiny + 7
    finally:
        monkeypatch.undo()
        importlib.reload(ops)
    assert ops._TINY_PLANE == tiny


def test_registered_ops_and_build_info():
    x = torch.randn(1, 2, 5, 5)
    w = torch.randn(3, 2, 3, 3)
    direct = torch.ops.pydlr.conv2d(x, w, None, [1, 1], [1, 1], [1, 1], 1)
    fused = torch.ops.pydlr.conv2d_act(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu6")
    torch.testing.assert_close(direct, F.conv2d(x, w, None, 1, 1))
    torch.testing.assert_close(fused, F.relu6(direct))
    info = ops.build_info()
    assert set(info) >= {"compiler", "simd", "openmp", "threads", "cuda", "blas"}
    assert isinstance(info["cuda"], bool) and info["threads"] >= 1 and info["compiler"]


def test_seed_cnn_trains_same_with_native_and_torch_ops():
    """Seed CNN (conv-relu-pool x2, conv-relu, dense head): same loss curve with the native op and F.conv2d."""

    def make(seed: int):
        gen = torch.Generator().manual_seed(seed)
        shapes = [(32, 1, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
        convs = [
            (torch.randn(s, generator=gen) * (2 / (s[1] * 9)) ** 0.5, torch.zeros(s[0]))
            for s in shapes
        ]
        dense = torch.randn(10, 64 * 3 * 3, generator=gen) * 0.05
        return [t.requires_grad_() for pair in convs for t in pair] + [dense.requires_grad_()]

    def forward(params, x, native: bool):
        for i in range(3):
            w, b = params[2 * i], params[2 * i + 1]
            x = ops.conv2d(x, w, b, activation="relu") if native else torch.relu(F.conv2d(x, w, b))
            if i < 2:
                x = F.max_pool2d(x, 2)
        return x.flatten(1) @ params[6].t()

    gen = torch.Generator().manual_seed(1)
    data = torch.rand(64, 28, 28, 1, generator=gen).permute(
        0, 3, 1, 2
    )  # NHWC -> channels_last NCHW
    labels = torch.randint(0, 10, (64,), generator=gen)
    curves = {}
    for native in (True, False):
        params = make(0)
        opt = torch.optim.Adam(params, lr=1e-3)
        losses = []
        for step in range(8):
            batch = slice(16 * (step % 4), 16 * (step % 4 + 1))
            loss = F.cross_entropy(forward(params, data[batch], native), labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curves[native] = losses
    assert curves[True][-1] < curves[True][0]  # it learns
    for a, b in zip(curves[True], curves[False], strict=True):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b))


# ------------------------------------------------------------------------------------------- bad input
def _good():
    return torch.randn(2, 4, 6, 6), torch.randn(8, 4, 3, 3), torch.randn(8)


@pytest.mark.parametrize("op", ["ops", "torch.ops"])
def test_bad_input_raises_clear_errors(op):
    def call(x, w, b=None, groups=1, act="none"):
        if op == "ops":
            return ops.conv2d(x, w, b, groups=groups, activation=act)
        return torch.ops.pydlr.conv2d_act(x, w, b, [1, 1], [0, 0], [1, 1], groups, act)

    x, w, b = _good()
    with pytest.raises(RuntimeError, match=r"input must be a 4-d \(N, C, H, W\) tensor; got a 3-d"):
        call(x[0], w, b)
    with pytest.raises(RuntimeError, match=r"weight must be a 4-d"):
        call(x, w[0], b)
    with pytest.raises(RuntimeError, match=r"dtype mismatch: input is Float but weight is Double"):
        call(x, w.double(), b)
    with pytest.raises(RuntimeError, match=r"dtype mismatch: input is Float but bias is Double"):
        call(x, w, b.double())
    with pytest.raises(RuntimeError, match=r"input dtype must be float32 or float64; got Long"):
        call(x.long(), w.long())
    with pytest.raises(
        RuntimeError, match=r"input channels \(4\) must be divisible by groups \(3\)"
    ):
        call(x, torch.randn(6, 1, 3, 3), None, groups=3)
    with pytest.raises(
        RuntimeError, match=r"weight expects 8 input channels .* but input has 4 channels"
    ):
        call(x, torch.randn(8, 8, 3, 3))
    with pytest.raises(
        RuntimeError, match=r"device mismatch: input is on meta but weight is on cpu"
    ):
        call(x.to("meta"), w)
    with pytest.raises(
        RuntimeError, match=r"device mismatch: input is on cpu but weight is on meta"
    ):
        call(x, w.to("meta"))
    with pytest.raises(RuntimeError, match=r"empty batch: input has batch size 0"):
        call(x[:0], w, b)
    with pytest.raises(RuntimeError, match=r"bias must be 1-d with 8 elements"):
        call(x, w, torch.randn(7))
    with pytest.raises(RuntimeError, match=r"smaller than the dilated kernel"):
        call(torch.randn(1, 4, 2, 2), w)


def test_bad_python_arguments_raise_input_error():
    x, w, b = _good()
    with pytest.raises(InputError, match="activation"):
        ops.conv2d(x, w, b, activation="gelu")
    with pytest.raises(InputError, match="stride"):
        ops.conv2d(x, w, b, stride=(1, 1, 1))
    with pytest.raises(InputError, match="groups"):
        ops.conv2d(x, w, b, groups=0)
    with pytest.raises(RuntimeError, match=r"activation must be one of"):
        torch.ops.pydlr.conv2d_act(x, w, b, [1, 1], [0, 0], [1, 1], 1, "gelu")
    with pytest.raises(RuntimeError, match=r"stride must be positive"):
        torch.ops.pydlr.conv2d(x, w, b, [0, 1], [0, 0], [1, 1], 1)


def test_native_lib_override_loads_that_build_or_says_why_not(tmp_path):
    """PYDLR_NATIVE_LIB (the sanitizer run's switch) loads the named build, in child processes too."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import pydlr.ops as o, torch; print(o._C.__file__); print(torch.ops.pydlr.conv2d is not None)"
    env = dict(os.environ, PYTHONPATH=root, PYDLR_NATIVE_LIB=ops._C.__file__)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [ops._C.__file__, "True"]
    env["PYDLR_NATIVE_LIB"] = str(tmp_path / "missing.so")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "missing.so' is not a file; unset it" in out.stderr


def test_keras_ops_names_say_pydlr_has_no_keras_ops():
    # Keras 3 tutorials call keras.ops.expand_dims(img, 0); under `import pydlr as keras` that is pydlr.ops
    import pydlr as keras

    with pytest.raises(AttributeError, match="pydlr has no keras.ops.*np.expand_dims"):
        keras.ops.expand_dims  # noqa: B018 (the attribute access is the test)
    assert hasattr(keras.ops, "conv2d") and not hasattr(keras.ops, "sigmoid") and not hasattr(keras.ops, "_x")
