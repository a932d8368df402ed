"""CUDA kernels of torch.ops.pydlr.* against F.conv2d (runs only where a GPU and a CUDA build are present)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pydlr import ops

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and ops.build_info()["cuda"]),
    reason="needs a GPU and pydlr built with CUDA kernels",
)

# (N, C, H, W, OC, k, stride, padding, dilation, groups): GEMM path, direct path, depthwise, grouped.
CASES = [
    (4, 32, 13, 13, 64, 3, 1, 0, 1, 1),
    (4, 1, 28, 28, 32, 3, 1, 0, 1, 1),
    (2, 16, 15, 17, 16, 3, 2, 1, 1, 16),
    (2, 8, 11, 10, 12, 3, 1, 2, 2, 2),
    (2, 24, 9, 9, 8, 1, 1, 0, 1, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_matches_torch(case, act, channels_last):
    n, c, h, w, oc, k, s, p, d, g = case
    dev = torch.device("cuda")
    x0 = torch.randn(n, c, h, w, device=dev, dtype=torch.float64) * 3
    w0 = torch.randn(oc, c // g, k, k, device=dev, dtype=torch.float64)
    b0 = torch.randn(oc, device=dev, dtype=torch.float64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    grads = []
    outs = []
    for impl in ("torch", "pydlr"):
        x = x0.contiguous(memory_format=fmt).requires_grad_()
        wt = w0.clone().requires_grad_()
        b = b0.clone().requires_grad_()
        if impl == "torch":
            y = F.conv2d(x, wt, b, s, p, d, g)
            y = {"none": y, "relu": torch.relu(y), "relu6": F.relu6(y)}[act]
        else:
            y = ops.conv2d(x, wt, b, (s, s), (p, p), (d, d), g, activation=act)
        y.backward(torch.linspace(-1, 1, y.numel(), device=dev, dtype=y.dtype).view_as(y))
        outs.append(y.detach())
        grads.append((x.grad, wt.grad, b.grad))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for mine, ref in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-9, atol=1e-9)


def test_cuda_gradcheck_small():
    dev = torch.device("cuda")
    x = torch.randn(2, 4, 6, 7, device=dev, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, 3, device=dev, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, device=dev, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, c, e: ops.conv2d(a, c, e, (2, 1), (1, 1), (1, 2), 2),
        (x, w, b),
        eps=1e-6,
        atol=1e-6,
    )
