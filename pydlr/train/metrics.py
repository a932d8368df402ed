"""Keras' metrics by name, accumulated on the device (no host sync per batch).

Each metric returns the *sum* over a batch of its per-sample value; the Learner keeps running sums as
device tensors and divides by the sample count only when it logs. Keras' metric objects
(``pydlr.train.metric_objects``: AUC, Precision, ...) resolve here too: the means among them use the same
per-sample functions (``PER_SAMPLE``), the others keep a state the Learner updates (``Metric.state``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pydlr.errors import InputError

__all__ = ["Metric", "get_metric", "PER_SAMPLE"]


@dataclass
class Metric:
    """A named metric: ``fn(pred, target) -> tensor`` summing the per-sample values of a batch, or, for a
    metric of the whole epoch, ``state``: an object with ``update_state(y_true, y_pred)``, ``result()``,
    ``reset_state()`` (and ``fn`` None). ``config``: how a model's saved compile settings rebuild a metric
    object (None for a metric named by a string, saved as its name)."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    state: Any = None
    config: dict | None = None

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(pred, target)


def _classes(target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "categorical":
        return target.argmax(dim=-1)
    return target.reshape(-1) if target.dim() == 2 and target.shape[1] == 1 else target


def _binary_hits(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    hit = ((pred > threshold) == (target > 0.5)).float()
    return hit.reshape(hit.shape[0], -1).mean(dim=1)


def _class_hits(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    return pred.argmax(dim=-1) == _classes(target, kind)


def _top_k_hits(pred: torch.Tensor, target: torch.Tensor, k: int, kind: str) -> torch.Tensor:
    top = pred.topk(min(k, pred.shape[-1]), dim=-1).indices
    return (top == _classes(target, kind).unsqueeze(-1)).any(dim=-1)


def _per_row_mean(values: torch.Tensor) -> torch.Tensor:
    return values.float().reshape(values.shape[0], -1).mean(dim=1)


# Per-sample values, shape (n,), of the metrics that are means over samples (one function per metric).
PER_SAMPLE: dict[str, Callable[..., torch.Tensor]] = {
    "equal": lambda p, t: _per_row_mean(p == t.to(p.dtype).reshape(p.shape)),
    "binary": _binary_hits,
    "categorical": lambda p, t: _class_hits(p, t, "categorical"),
    "sparse": lambda p, t: _class_hits(p, t, "sparse"),
    "top_k": _top_k_hits,
    "mae": lambda p, t: _per_row_mean((p - t).abs()),
    "mse": lambda p, t: _per_row_mean((p - t).square()),
}


def _shape_accuracy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' choice of "accuracy" from the shapes (used with a user's loss, whose labels have no kind):
    binary for one output unit, sparse for integer labels of lower rank, categorical otherwise."""
    if pred.shape[-1] == 1:
        return _accuracy("binary", False)(pred, target)
    sparse = target.dim() < pred.dim() or target.shape[-1] == 1
    return _accuracy("sparse" if sparse else "categorical", False)(pred, target.reshape(pred.shape[0])
                                                                 if sparse else target)


def _accuracy(kind: str, from_logits: bool) -> Callable:
    if kind not in ("binary", "categorical", "sparse"):  # a regression or user loss: Keras goes by the shapes
        return _shape_accuracy
    if kind == "binary":
        threshold = 0.0 if from_logits else 0.5
        return lambda pred, target: _binary_hits(pred, target, threshold).sum()
    return lambda pred, target: _class_hits(pred, target, kind).sum()


def _top_k(kind: str, k: int) -> Callable:
    return lambda pred, target: _top_k_hits(pred, target, k, kind).sum()


def get_metric(metric: Any, loss_kind: str, from_logits: bool = False) -> Metric:
    """Resolve a Keras metric for the compiled loss: a name, a Keras metric object
    (``pydlr.metrics.AUC()``, ...), or its saved config.

    "accuracy"/"acc" follow the loss as in Keras (categorical, sparse or binary accuracy);
    a metric named by a string logs under that string, as Keras' (``metrics=["acc"]`` gives the history
    keys ``acc`` / ``val_acc``, which scripts written for it read back);
    "top_k" / "top_k_categorical_accuracy" / "sparse_top_k_categorical_accuracy" use k = 5,
    "top_3" etc. pick k; "mae" / "mse" are regression metrics; a metric class's name ("AUC", "auc",
    "Precision", "f1_score", ...) builds it with its defaults, as Keras does.
    """
    from pydlr.train import metric_objects

    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, metric_objects.KerasMetric):
        return metric.learner_metric(loss_kind)
    if isinstance(metric, dict):
        return metric_objects.metric_from_config(metric).learner_metric(loss_kind)
    if isinstance(metric, type) and issubclass(metric, metric_objects.KerasMetric):
        return metric().learner_metric(loss_kind)
    if not isinstance(metric, str):
        raise InputError("metrics", "a list of metric names such as 'accuracy' or keras.metrics objects",
                         metric, where="compile")
    key = metric.lower()
    if key in ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy",
               "binary_accuracy"):
        return Metric(metric, _accuracy(loss_kind, from_logits))
    if key in ("top_k", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
        if loss_kind not in ("categorical", "sparse"):
            raise InputError("metrics", "top-k accuracy only with a categorical loss", metric,
                             where="compile")
        name = "sparse_top_k_categorical_accuracy" if loss_kind == "sparse" else "top_k_categorical_accuracy"
        return Metric(name, _top_k(loss_kind, 5))
    if key.startswith("top_") and key[4:].isdigit():
        return Metric(key, _top_k(loss_kind, int(key[4:])))
    if key in ("mae", "mean_absolute_error"):
        return Metric(metric, lambda p, t: PER_SAMPLE["mae"](p, t).sum())
    if key in ("mse", "mean_squared_error"):
        return Metric(metric, lambda p, t: PER_SAMPLE["mse"](p, t).sum())
    by_name = {**{n.lower(): n for n in metric_objects.METRIC_CLASSES}, "f1_score": "F1Score"}
    if key in by_name:
        return metric_objects.METRIC_CLASSES[by_name[key]](name=metric).learner_metric(loss_kind)
    raise InputError("metrics", "'accuracy', 'top_k', 'top_<k>', 'mae', 'mse' or a keras.metrics class name "
                     "such as 'AUC', 'Precision', 'Recall', 'F1Score'", metric, where="compile")
