"""Looking inside a model from R: ``pydlr.interpret``'s functions under their own names (R draws the plots)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr import interpret
from pydlr.api_r._convert import c_array, labels


def filters(model: Any, layer: str | None = None, grid: bool = True) -> np.ndarray:
    """``pydlr.interpret.filters``."""
    return c_array(interpret.filters(model, layer, grid=grid))


def activations(model: Any, x: Any, layer: str, preprocess: bool = False) -> np.ndarray:
    """``pydlr.interpret.activations``."""
    return c_array(interpret.activations(model, x, layer, preprocess=preprocess))


def grad_cam(model: Any, x: Any, class_index: Any = None, layer: str | None = None,
             preprocess: bool = False) -> np.ndarray:
    """``pydlr.interpret.grad_cam``; ``class_index`` arrives as an R integer (a number or a list)."""
    if class_index is not None:
        class_index = labels(class_index)
    return c_array(interpret.grad_cam(model, x, class_index, layer, preprocess=preprocess))


def model_input(model: Any, x: Any, preprocess: bool) -> np.ndarray:
    """What the model takes for ``x`` (the model's own preprocessing with ``preprocess``), as R draws it."""
    from pydlr.interpret.inside import model_input as prepared

    return c_array(np.asarray(prepared(model, x, preprocess, "plot_grad_cam"), dtype=np.float32))


def original_image(x: Any, size: int) -> np.ndarray:
    """The unnormalized centre crop a preprocessed photo came from ([0, 1] pixels), to draw under Grad-CAM."""
    from pydlr.pretrained.imagenet import preprocess

    return c_array(preprocess(x, size=int(size), normalize=False))


def filter_patterns(model: Any, layer: str, filters: Any = None, steps: int = 30,
                    learning_rate: float | None = None, size: int | None = None) -> np.ndarray:
    """``pydlr.interpret.filter_patterns``; ``filters`` arrives as an R integer (a number or a list)."""
    if filters is not None:
        filters = labels(filters)
    return c_array(interpret.filter_patterns(model, layer, filters, steps, learning_rate, size))


def filter_patterns_grid(model: Any, patterns: Any, ncol: int | None = None) -> np.ndarray:
    """Patterns as one image (``interpret.filter_grid`` of their pixels), as R's plot draws it."""
    from pydlr.interpret.patterns import patterns_as_pixels

    return c_array(interpret.filter_grid(patterns_as_pixels(model, patterns), ncol=ncol, pad=2))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """``pydlr.interpret.confusion_matrix`` as int32 (R's integer)."""
    return c_array(interpret.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), num_classes), np.int32)


def top_losses(model: Any, x: Any, y: Any, k: int = 9) -> dict[str, list[Any]]:
    """``pydlr.interpret.top_losses`` as columns for an R data.frame."""
    top = interpret.top_losses(model, x, labels(y), k=k)
    return {key: value.tolist() for key, value in top.items()}


def plot_model(model: Any, to_file: str, **options: Any) -> None:
    """``pydlr.interpret.model_plot.plot_model`` (R's ``plot()`` of a model draws the file it writes)."""
    from pydlr.interpret.model_plot import plot_model as draw

    draw(model, to_file, **options)
