"""The R package's door to `pydlr.pretrained` and `pydlr.interpret` (plain arguments in, plain results out).

As `pydlr.api_r`: arguments are scalars, lists and arrays handed over by the R bridge (NumPy views with R's
dims, samples first, channels last); results are dicts of plain values and C-ordered NumPy arrays that the
bridge returns to R. Labels are 0-based here; R converts. Errors are pydlr's InputError etc., which R
re-signals as classed conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pydlr import interpret, pretrained
from pydlr.errors import InputError
from pydlr.models import BaseModel


def _model(model: Any, argument: str = "model") -> BaseModel:
    if not isinstance(model, BaseModel):
        raise InputError(argument, "a pydlr model", model)
    return model


def _shape(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


def _out(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a))


def load_pretrained(name: str = "mobilenet_v2", include_top: bool = True, pooling: str | None = None,
                    input_shape: Any = None, classifier_activation: str | None = "softmax",
                    trainable: bool = True) -> Any:
    """`pretrained.load` with R's arguments (input_shape NULL: 224 x 224 x 3)."""
    shape = _shape(input_shape) or (224, 224, 3)
    return pretrained.load(name, include_top=bool(include_top), pooling=pooling, input_shape=shape,
                           classifier_activation=classifier_activation, trainable=bool(trainable))


def pretrained_info(name: str = "mobilenet_v2") -> dict[str, Any]:
    return pretrained.info(name)


def pretrained_names() -> list[str]:
    return sorted(pretrained.REGISTRY)


def preprocess(images: Any, size: int = 224, normalize: bool = True) -> np.ndarray:
    return pretrained.preprocess(np.asarray(images), size=int(size), normalize=bool(normalize))


def decode_predictions(probs: Any, top: int = 5) -> dict[str, Any]:
    """Columns for an R data.frame: sample (0-based), rank (1-based), class_index (0-based), name, score."""
    rows = pretrained.decode_predictions(np.asarray(probs), top=int(top))
    out: dict[str, list[Any]] = {"sample": [], "rank": [], "class_index": [], "class_name": [], "score": []}
    for i, row in enumerate(rows):
        for rank, (index, name, score) in enumerate(row, start=1):
            out["sample"].append(i)
            out["rank"].append(rank)
            out["class_index"].append(index)
            out["class_name"].append(name)
            out["score"].append(score)
    return out


def embed(model: Any, x: Any, batch_size: int = 32) -> np.ndarray:
    return pretrained.embed(_model(model), x, batch_size=int(batch_size))


def fine_tune(base: Any, num_classes: int, x: Any, y: Any, epochs: int = 1, freeze_epochs: int = 1,
              learning_rate: float = 1e-3, unfrozen_lr_factor: float = 0.01, batch_size: int = 32,
              seed: int | None = 0, verbose: int = 0,
              print_fn: Callable[..., Any] | None = None) -> Any:
    """`pretrained.fine_tune`; progress (``verbose``) printed through R's ``print_fn``."""
    y = np.asarray(y).reshape(-1).astype(np.int64)
    kwargs: dict[str, Any] = {}
    if print_fn is not None and verbose:
        kwargs.update(print_fn=print_fn, dynamic_progress=False)
    return pretrained.fine_tune(_model(base, "base"), int(num_classes), x, y, epochs=int(epochs),
                                freeze_epochs=int(freeze_epochs), learning_rate=float(learning_rate),
                                unfrozen_lr_factor=float(unfrozen_lr_factor),
                                batch_size=int(batch_size), seed=None if seed is None else int(seed),
                                verbose=int(verbose), **kwargs)


def fine_tune_history(model: Any) -> dict[str, Any]:
    """{phase: {"metrics": {name: [per epoch]}, "epochs": n}} of a model made by `fine_tune`."""
    phases = getattr(model, "fine_tune_history", None) or {}
    return {phase: {"metrics": {k: [float(v) for v in vals] for k, vals in h.history.items()},
                    "epochs": len(h.epoch)} for phase, h in phases.items()}


def filters(model: Any, layer: str | None = None, grid: bool = True) -> np.ndarray:
    return _out(interpret.filters(_model(model), layer, grid=bool(grid)))


def activations(model: Any, x: Any, layer: str) -> np.ndarray:
    return _out(interpret.activations(_model(model), x, layer))


def grad_cam(model: Any, x: Any, class_index: Sequence[int] | int | None = None,
             layer: str | None = None) -> np.ndarray:
    if class_index is not None:
        class_index = np.asarray(class_index, dtype=np.int64).reshape(-1)
    return _out(interpret.grad_cam(_model(model), x, class_index, layer))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    cm = interpret.confusion_matrix(np.asarray(y_true), np.asarray(y_pred),
                                    None if num_classes is None else int(num_classes))
    return _out(cm.astype(np.int32))


def top_losses(model: Any, x: Any, y: Any, k: int = 9) -> dict[str, Any]:
    top = interpret.top_losses(_model(model), x, np.asarray(y).reshape(-1).astype(np.int64), k=int(k))
    return {key: value.tolist() for key, value in top.items()}


SAMPLE_IMAGES: tuple[str, ...] = ("chelsea", "coffee", "astronaut")


def sample_image(name: str) -> np.ndarray:
    """One of scikit-image's sample photos (offline) as int32 (H, W, 3), values 0-255."""
    if name not in SAMPLE_IMAGES:
        raise InputError("name", f"one of {', '.join(SAMPLE_IMAGES)}", name, "example_image")
    from skimage import data

    return _out(getattr(data, name)().astype(np.int32))


def lfw_subset() -> dict[str, np.ndarray]:
    """scikit-image's lfw_subset: x (200, 25, 25) float64 in [0, 1]; y 0 = face (first 100), 1 = not."""
    from skimage import data

    return {"x": _out(data.lfw_subset()), "y": _out((np.arange(200) >= 100).astype(np.int32))}


def random_mobilenet_v2(num_classes: int = 1000, include_top: bool = True, pooling: str | None = None,
                        input_shape: Any = None, classifier_activation: str | None = "softmax") -> Any:
    """MobileNetV2 with random weights (R's ``weights = NULL``), with the training API."""
    return pretrained.MobileNetV2(num_classes=int(num_classes), include_top=bool(include_top),
                                  pooling=pooling, input_shape=_shape(input_shape) or (224, 224, 3),
                                  classifier_activation=classifier_activation)
