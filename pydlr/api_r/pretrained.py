"""Pretrained models and transfer learning from R: ``pydlr.pretrained``'s functions under their own names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pydlr import pretrained
from pydlr.api_r._convert import c_array, labels, shape

_DEFAULT_SHAPE = (224, 224, 3)


def load(name: str = "mobilenet_v2", include_top: bool = True, pooling: str | None = None,
         input_shape: Any = None, classifier_activation: str | None = "softmax",
         trainable: bool = True) -> Any:
    """``pydlr.pretrained.load`` (R's ``input_shape = NULL`` is 224 x 224 x 3)."""
    return pretrained.load(name, include_top=include_top, pooling=pooling,
                           input_shape=shape(input_shape) or _DEFAULT_SHAPE,
                           classifier_activation=classifier_activation, trainable=trainable)


def MobileNetV2(num_classes: int = 1000, include_top: bool = True,  # noqa: N802 (the Python class)
                pooling: str | None = None, input_shape: Any = None,
                classifier_activation: str | None = "softmax") -> Any:
    """``pydlr.pretrained.MobileNetV2`` with random weights (R's ``weights = NULL``)."""
    return pretrained.MobileNetV2(num_classes=num_classes, include_top=include_top, pooling=pooling,
                                  input_shape=shape(input_shape) or _DEFAULT_SHAPE,
                                  classifier_activation=classifier_activation)


def application(name: str, include_top: bool = True, weights: str | None = "imagenet",
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: str | None = "softmax", trainable: bool = True) -> Any:
    """``pydlr.applications.<Network>(...)`` by registry name (R's ``application_*()``)."""
    from pydlr import applications

    model = applications.get(name)(input_shape=shape(input_shape), include_top=include_top,
                                   weights=weights, pooling=pooling, classes=int(classes),
                                   classifier_activation=classifier_activation)
    if not trainable:
        model.trainable = False
    return model


def preprocess_inputs(model: Any, images: Any) -> np.ndarray:
    """``pydlr.applications.preprocess_inputs`` (R's ``application_preprocess_inputs()``)."""
    from pydlr import applications

    return c_array(applications.preprocess_inputs(model, np.asarray(images)))


def names() -> list[str]:
    """The names ``load`` / ``info`` accept (ImageNet registry and pydlr's own zoo), sorted."""
    return pretrained.registry.known_names()


def info(name: str = "mobilenet_v2") -> dict[str, Any]:
    """``pydlr.pretrained.info``."""
    return pretrained.info(name)


def preprocess(images: Any, size: int = 224, normalize: bool = True, mode: str = "torch") -> np.ndarray:
    """``pydlr.pretrained.preprocess``."""
    return c_array(pretrained.preprocess(np.asarray(images), size=size, normalize=normalize, mode=mode))


def decode_predictions(probs: Any, top: int = 5) -> dict[str, list[Any]]:
    """``pydlr.pretrained.decode_predictions`` as columns for an R data.frame: sample (0-based), rank
    (1-based), class_index (0-based), class_name, score."""
    rows = pretrained.decode_predictions(np.asarray(probs), top=top)
    out: dict[str, list[Any]] = {"sample": [], "rank": [], "class_index": [], "class_name": [], "score": []}
    for i, row in enumerate(rows):
        for rank, (index, name, score) in enumerate(row, start=1):
            for key, value in zip(out, (i, rank, index, name, score), strict=True):
                out[key].append(value)
    return out


def embed_images(model: Any, x: Any, batch_size: int = 32) -> np.ndarray:
    """``pydlr.pretrained.embed_images``."""
    return c_array(pretrained.embed_images(model, x, batch_size=batch_size))


def fine_tune(model: Any, x: Any, y: Any = None, print_fn: Callable[..., Any] | None = None,
              class_names: Any = None, **kwargs: Any) -> Any:
    """``pydlr.pretrained.fine_tune(model, (x, y[, class_names]), **kwargs)``; progress goes through R's
    ``print_fn`` (one line per epoch: R's console), labels arrive as R integers."""
    if print_fn is not None:
        kwargs.update(print_fn=print_fn, dynamic_progress=False)
    if isinstance(kwargs.get("validation_data"), list):
        xv, yv = kwargs["validation_data"]
        kwargs["validation_data"] = (xv, labels(yv))
    if y is None:  # an image dataset: labels and batches come with it
        data = x
    else:
        data = (x, labels(y)) if class_names is None else (x, labels(y), list(class_names))
    return pretrained.fine_tune(model, data, **kwargs)


def fine_tune_history(model: Any) -> dict[str, Any]:
    """{phase: {"metrics": {name: [per epoch]}, "epochs": n}} of a model made by ``fine_tune``."""
    phases = getattr(model, "fine_tune_history", None) or {}
    return {phase: {"metrics": {k: [float(v) for v in vals] for k, vals in h.history.items()},
                    "epochs": len(h.epoch)} for phase, h in phases.items()}
