"""Looking inside a model from R: ``pydlr.interpret``'s functions under their own names (R draws the plots)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr import interpret
from pydlr.api_r._convert import c_array, labels


def filters(model: Any, layer: str | None = None, grid: bool = True) -> np.ndarray:
    """``pydlr.interpret.filters``."""
    return c_array(interpret.filters(model, layer, grid=grid))


def activations(model: Any, x: Any, layer: str) -> np.ndarray:
    """``pydlr.interpret.activations``."""
    return c_array(interpret.activations(model, x, layer))


def grad_cam(model: Any, x: Any, class_index: Any = None, layer: str | None = None) -> np.ndarray:
    """``pydlr.interpret.grad_cam``; ``class_index`` arrives as an R integer (a number or a list)."""
    if class_index is not None:
        class_index = labels(class_index)
    return c_array(interpret.grad_cam(model, x, class_index, layer))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """``pydlr.interpret.confusion_matrix`` as int32 (R's integer)."""
    return c_array(interpret.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), num_classes), np.int32)


def top_losses(model: Any, x: Any, y: Any, k: int = 9) -> dict[str, list[Any]]:
    """``pydlr.interpret.top_losses`` as columns for an R data.frame."""
    top = interpret.top_losses(model, x, labels(y), k=k)
    return {key: value.tolist() for key, value in top.items()}
