"""The scale of image inputs: what a model was trained on, and a warning when predict() or evaluate() get
images on another one.

Test images left at 0-255 for a model trained on ``x / 255`` (or the reverse, or photos not preprocessed for
an ImageNet network) run without any error and give predictions for other inputs than meant: the silent
wrong result users meet in their first hour. fit() records the largest magnitude of its image inputs
(``Model.input_scale``, saved with the model); predict() and evaluate() warn (`InputScaleWarning`) when
theirs is more than ``RATIO`` times larger or smaller. A darker or brighter image is not another scale;
tables (2-d inputs) are not checked, since a new row may well pass the training range.

From R, the R package's door (`pydlr.api_r.training`) catches this warning and R signals it as an R warning,
its advice in R's syntax.

The scale is the largest finite magnitude among at most ``SAMPLES`` values spread evenly over the array in
its memory order: a few microseconds whatever the array's size or layout (R's column-major arrays
included).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import numpy as np
import torch

from pydlr.errors import InputScaleWarning

__all__ = ["ADVICE", "InputScaleWarning", "PRETRAINED_ADVICE", "RATIO", "SAMPLES", "data_scale", "other_scale",
           "warn_other_scale"]

SAMPLES = 10_000
RATIO = 20.0
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def data_scale(x: Any) -> float | None:
    """The largest finite magnitude among up to ``SAMPLES`` evenly spread values of an image array (3 or more
    axes, the samples' first); None for anything else (tables, lists of inputs, datasets, empty arrays)."""
    if isinstance(x, torch.Tensor):
        if x.ndim < 3 or x.numel() == 0 or x.dtype == torch.bool or x.is_complex():
            return None
        # torch.take reads the positions in row-major order without a copy of the whole tensor
        values = torch.take(x.detach(), _spread(x.numel()).to(x.device)).double().cpu().numpy()
    elif isinstance(x, np.ndarray) and x.dtype.kind in "fiu":
        if x.ndim < 3 or x.size == 0:
            return None
        flat = x.ravel(order="K")  # a view for C- and F-ordered arrays
        values = flat[_spread(flat.size).numpy()].astype(np.float64)
    else:
        return None
    values = np.abs(values[np.isfinite(values)])
    values = values[values <= _FLOAT32_MAX]  # beyond it: refused as non-finite, not another scale
    return float(values.max()) if values.size else 0.0


def _spread(n: int) -> torch.Tensor:
    """Positions of up to ``SAMPLES`` values evenly spread over n (all of them when n is smaller)."""
    if n <= SAMPLES:
        return torch.arange(n)
    return torch.linspace(0, n - 1, SAMPLES, dtype=torch.float64).round().long()


def other_scale(seen: float | None, trained: float | None) -> bool:
    """Whether inputs reaching ``seen`` are on another scale than training inputs that reached ``trained``
    (more than ``RATIO`` times larger or smaller; unknown or all-zero scales are never another)."""
    if seen is None or trained is None or seen <= 0 or trained <= 0:
        return False
    return seen > RATIO * trained or seen < trained / RATIO


ADVICE = "scale it as the training data was (e.g. x / 255 for pixels)"
PRETRAINED_ADVICE = "preprocess it with pydlr.applications.preprocess_inputs(model, x)"


def warn_other_scale(seen: float, trained: float, pretrained: bool = False, name: str = "x") -> None:
    """The `InputScaleWarning` for images reaching ``seen`` where the training images reached ``trained``
    (``pretrained``: the photos an ImageNet network was trained on), shown at the user's line that called
    pydlr."""
    advice = PRETRAINED_ADVICE if pretrained else ADVICE
    message = (f"`{name}` reaches {seen:.3g} but the training data reached {trained:.3g}: {advice}, or the "
               f"predictions are for other inputs than meant")
    warnings.warn(InputScaleWarning(message, seen, trained, advice), stacklevel=_caller_level())


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _caller_level() -> int:
    """``warnings.warn``'s stacklevel for the first frame outside pydlr (predict() reaches the check through
    a varying number of pydlr's own frames: predict_classes, the folded-inference wrapper)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level
