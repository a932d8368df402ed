"""The only module that knows pydlr's operators are native: loads pydlr._C and wraps torch.ops.pydlr.*."""

from __future__ import annotations

import torch

from pydlr import _C  # noqa: F401  (importing registers torch.ops.pydlr.*)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> torch.Tensor:
    """2-d convolution with torch.nn.functional.conv2d's semantics, computed by pydlr's native operator."""
    return torch.ops.pydlr.conv2d(x, weight, bias, list(stride), list(padding), list(dilation), groups)
