"""What a filter responds to most: the input found by gradient ascent (Chollet, "Deep Learning with
Python", the convnet chapter: "visualizing convnet filters").

Start from a grey image with a little noise and climb the gradient of the filter's mean activation with
respect to the input; the image it ends at shows the pattern the filter detects. All requested filters
climb together as one batch (image i maximises filter i), and the forward pass stops at the layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.interpret.inside import check_image_model, find_layer
from pydlr.models.modes import evaluating

__all__ = ["filter_patterns", "pattern_bounds", "patterns_as_pixels"]


class _Reached(Exception):
    """Raised by the hook to stop the forward pass once the layer has run."""


def pattern_bounds(model: Any, channels: int) -> tuple[torch.Tensor, torch.Tensor, str | None]:
    """The range of valid inputs per channel, shape (1, C, 1, 1): the model's own preprocessing of pixels
    0 and 255 for the ImageNet networks (their scaling), else [0, 1]; and that preprocessing's mode."""
    from pydlr.pretrained.imagenet import input_bounds, model_mode

    mode = model_mode(model)
    lo, hi = input_bounds(mode, channels)
    return lo.view(1, -1, 1, 1), hi.view(1, -1, 1, 1), mode


def _layer_output(model: Any, module: nn.Module, xt: torch.Tensor) -> torch.Tensor:
    box: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        box["out"] = out
        raise _Reached

    handle = module.register_forward_hook(hook)
    try:
        model.call_internal(xt)
    except _Reached:
        pass
    finally:
        handle.remove()
    return box.get("out")


def _restart_dead(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Image i climbs filter i; where filter i is silent on it (a ReLU at zero everywhere: no gradient, the
    climb cannot start) it starts again from the image that activates filter i most, if any does.
    ``means[j, i]``: filter i's mean activation on image j."""
    own = means.diagonal()
    best = means.argmax(dim=0)
    dead = (own <= 0) & (means.amax(dim=0) > 0)
    if bool(dead.any()):
        x = x.clone()
        x[dead] = x[best[dead]]
    return x


def _checked_filters(filters: Any, channels: int, where: str) -> list[int]:
    if filters is None:
        return list(range(min(16, channels)))
    idx = np.atleast_1d(np.asarray(filters))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= channels:
        raise InputError("filters", f"filter numbers in 0..{channels - 1} (the layer has {channels})",
                         filters, where)
    return [int(i) for i in idx]


def _checked_size(size: Any, height: int, width: int, where: str) -> tuple[int, int]:
    if size is None:
        return height, width
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= size <= 1024:
        raise InputError("size", "an integer side in 8..1024 (pixels)", size, where)
    return int(size), int(size)


def filter_patterns(model: Any, layer: Any, filters: Any = None, steps: int = 30,
                    learning_rate: float | None = None, size: int | None = None,
                    seed: int = 0) -> np.ndarray:
    """The input each filter of ``layer`` responds to most, by gradient ascent on its mean activation.

    Parameters
    ----------
    model : BaseModel
        An image model (pretrained ones included: the search stays within the inputs their own
        preprocessing can produce).
    layer : str or module
        A layer with feature maps (a convolution, a block of MobileNetV2 such as ``"features.6"``).
    filters : int or sequence of int, optional
        0-based filter (channel) numbers; default the first 16.
    steps : int
        Gradient-ascent steps.
    learning_rate : float, optional
        Step per pixel in units of the input's range: each step moves the image by ``learning_rate``
        times the range along the gradient scaled to unit root-mean-square; default 0.05.
    size : int, optional
        Side of the square pattern; default the model's input height and width. Layers before a
        Flatten work at any size.
    seed : int
        Seed of the starting noise.

    Returns
    -------
    numpy.ndarray
        float32 (len(filters), height, width, channels) inputs in the model's input space (e.g. ImageNet-
        normalized for MobileNetV2); `plot_filter_patterns` draws them.
    """
    where = "filter_patterns"
    height, width, channels = check_image_model(model, where)
    module = find_layer(model, layer, where)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 10_000:
        raise InputError("steps", "an integer in 1..10000", steps, where)
    if learning_rate is None:
        learning_rate = 0.05
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
            or not 0 < learning_rate <= 10:
        raise InputError("learning_rate", "a number in (0, 10]", learning_rate, where)
    h, w = _checked_size(size, height, width, where)
    lo, hi, _mode = pattern_bounds(model, channels)
    ref = next(model.parameters(), None)
    dtype = ref.dtype if ref is not None else torch.float32
    device = ref.device if ref is not None else torch.device("cpu")
    lo, hi = lo.to(device, dtype), hi.to(device, dtype)
    with evaluating(model):
        probe = _layer_output(model, module, torch.zeros((1, channels, h, w), dtype=dtype, device=device))
        if not isinstance(probe, torch.Tensor) or probe.dim() != 4:
            raise InputError("layer", "a layer with feature maps (a 4-d output) the forward pass runs",
                             layer, where)
        picked = _checked_filters(filters, int(probe.shape[1]), where)
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.rand((len(picked), channels, h, w), generator=gen).to(device, dtype)
        x = (lo + (hi - lo) * noise).contiguous(memory_format=torch.channels_last)
        rows = torch.arange(len(picked), device=device)
        cols = torch.tensor(picked, device=device)
        for _ in range(int(steps)):
            x.requires_grad_(True)
            with torch.enable_grad():
                out = _layer_output(model, module, x)
                loss = out[rows, cols].mean(dim=(1, 2)).sum()
                (grad,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x = _restart_dead(x, out.detach()[:, cols].mean(dim=(2, 3)))
                rms = grad.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
                x = torch.max(torch.min(x + learning_rate * (hi - lo) * grad / rms, hi), lo).detach()
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).float().cpu().numpy())


def patterns_as_pixels(model: Any, patterns: Any) -> np.ndarray:
    """Patterns from `filter_patterns` mapped back to [0, 1] pixels through the model's input range (the
    ImageNet networks' scaling undone), for display."""
    arr = np.asarray(patterns, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise InputError("patterns", "filter_patterns' result (n, height, width, 1 or 3)", arr, "plot_filter_patterns")
    lo, hi, _mode = pattern_bounds(model, arr.shape[-1])
    lo, hi = lo.numpy().reshape(1, 1, 1, -1), hi.numpy().reshape(1, 1, 1, -1)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
