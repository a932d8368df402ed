"""pydlr.ops.max_pool2d / torch.ops.pydlr.max_pool2d: values and gradients against torch, layouts, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_ops import _layout

from pydlr import layers, ops
from pydlr.errors import InputError
from pydlr.layers.base import inside_model

# (N, C, H, W, kernel, stride): Keras' default 2/2 on even and odd sizes (uncovered last row/column), the
# seed CNN's shapes, windows with gaps (stride > kernel), overlapping windows (stride < kernel), channel counts
# that are and are not multiples of the vector width, rectangular windows.
CASES = [
    (3, 32, 26, 26, (2, 2), (2, 2)),
    (3, 64, 11, 11, (2, 2), (2, 2)),
    (2, 5, 7, 9, (2, 2), (2, 2)),
    (2, 16, 9, 8, (2, 3), (3, 2)),
    (2, 17, 10, 10, (2, 2), (3, 3)),
    (2, 8, 9, 9, (3, 3), (2, 2)),
    (1, 3, 5, 6, (3, 2), (1, 1)),
    (2, 48, 6, 6, (1, 1), (2, 2)),
]
LAYOUTS = ["contiguous", "channels_last", "strided"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-k{c[4]}-s{c[5]}")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_values_and_gradients_equal_torch(case, layout):
    n, c, h, w, kernel, stride = case
    torch.manual_seed(0)
    base = torch.randn(n, c, h, w)
    x = _layout(base.clone(), layout).requires_grad_()
    ref_x = base.clone().requires_grad_()
    y = ops.max_pool2d(x, kernel, stride)
    ref = F.max_pool2d(ref_x, kernel, stride)
    assert y.shape == ref.shape
    assert torch.equal(y, ref)  # a max is exact
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(ref)
    y.backward(grad)
    ref.backward(grad)
    assert torch.equal(x.grad, ref_x.grad)  # each window's gradient lands on one element, unchanged


def test_argmax_is_one_byte_per_output_and_only_kept_for_training():
    x = torch.randn(2, 32, 6, 6).contiguous(memory_format=torch.channels_last)
    y, argmax = torch.ops.pydlr.max_pool2d_with_argmax(x, [2, 2], [2, 2])
    assert argmax.dtype == torch.uint8 and argmax.shape == y.shape
    assert argmax.is_contiguous(memory_format=torch.channels_last)
    _, ref_idx = F.max_pool2d(x, 2, return_indices=True)  # flat indices into each H x W plane
    window_row, window_col = ref_idx // 6 % 2, ref_idx % 6 % 2
    assert torch.equal(argmax.long(), window_row * 2 + window_col)
    with torch.no_grad():
        assert ops.max_pool2d(x.requires_grad_(), 2).grad_fn is None  # inference: the plain kernel


def test_ties_go_to_the_first_maximum_as_in_torch():
    x = torch.zeros(1, 16, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    ref_x = torch.zeros(1, 16, 4, 4).requires_grad_()
    ops.max_pool2d(x, 2).sum().backward()
    F.max_pool2d(ref_x, 2).sum().backward()
    assert torch.equal(x.grad, ref_x.grad)
    assert x.grad.sum().item() == 16 * 4  # one element per window


def test_nan_propagates_and_gets_the_gradient():
    base = torch.arange(16 * 4 * 4, dtype=torch.float32).reshape(1, 16, 4, 4)
    base[0, 3, 1, 0] = float("nan")
    for layout in ("contiguous", "channels_last"):
        x = _layout(base.clone(), layout).requires_grad_()
        y = ops.max_pool2d(x, 2)
        assert torch.isnan(y[0, 3, 0, 0]) and not torch.isnan(y[0, 3, 0, 1])
        assert torch.equal(torch.isnan(y), torch.isnan(F.max_pool2d(base, 2)))
        y.sum().backward()
        assert x.grad[0, 3, 1, 0] == 1 and x.grad[0, 3, :2, :2].sum() == 1


@pytest.mark.parametrize("kernel,stride", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 2), (3, 3))])
def test_gradcheck_float64(kernel, stride):
    torch.manual_seed(1)
    # Distinct values so that the max is not a tie under gradcheck's perturbations.
    x = (torch.randperm(2 * 3 * 7 * 8).double().reshape(2, 3, 7, 8) / 10).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ops.max_pool2d(t, kernel, stride), (x,), eps=1e-3)
    xc = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ops.max_pool2d(t, kernel, stride), (xc,), eps=1e-3)


def test_layer_uses_the_native_op_and_follows_the_backend_switch():
    pool = layers.MaxPooling2D(2)
    pool.build((8, 8, 4))
    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    with inside_model():  # the internal layout, as a model calls its layers
        assert pool(x).grad_fn.name().endswith("MaxPool2dFunction>")
        with layers.conv_backend("torch"):
            assert "MaxPool2D" in pool(x).grad_fn.name()
        same = layers.MaxPooling2D(2, padding="same")  # padded windows: torch's kernel
        same.build((7, 7, 4))
        y = same(torch.randn(2, 4, 7, 7))
    assert y.shape == (2, 4, 4, 4)


def test_bad_input_raises_clear_errors():
    with pytest.raises(RuntimeError, match=r"pydlr::max_pool2d: input must be a 4-d"):
        torch.ops.pydlr.max_pool2d(torch.randn(3, 4, 4), [2, 2], [2, 2])
    with pytest.raises(RuntimeError, match=r"float32 or float64; got Int"):
        torch.ops.pydlr.max_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int32), [2, 2], [2, 2])
    with pytest.raises(RuntimeError, match=r"smaller than the window"):
        torch.ops.pydlr.max_pool2d(torch.randn(1, 1, 2, 2), [3, 3], [1, 1])
    with pytest.raises(RuntimeError, match=r"batch and channels must be non-empty"):
        torch.ops.pydlr.max_pool2d(torch.randn(0, 1, 4, 4), [2, 2], [2, 2])
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match=r"grad_output and argmax must have shape \[1, 1, 2, 2\]"):
        torch.ops.pydlr.max_pool2d_backward(
            torch.randn(1, 1, 3, 3), torch.zeros(1, 1, 2, 2, dtype=torch.uint8), x, [2, 2], [2, 2]
        )
    with pytest.raises(RuntimeError, match=r"argmax must be uint8; got Long"):
        torch.ops.pydlr.max_pool2d_backward(
            torch.randn(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.int64), x, [2, 2], [2, 2]
        )
    with pytest.raises(RuntimeError, match=r"at most 255 elements"):
        torch.ops.pydlr.max_pool2d(torch.randn(1, 1, 20, 20), [16, 16], [16, 16])
    with pytest.raises(InputError, match="kernel_size"):
        ops.max_pool2d(torch.randn(1, 1, 4, 4), 0)
    with pytest.raises(InputError, match="stride"):
        ops.max_pool2d(torch.randn(1, 1, 4, 4), 2, (1, 2, 3))
