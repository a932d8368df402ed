"""Keras' metrics by name, accumulated on the device (no host sync per batch).

Each metric returns the *sum* over a batch of its per-sample value; the Learner keeps running sums as
device tensors and divides by the sample count only when it logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pydlr.errors import InputError

__all__ = ["Metric", "get_metric"]


@dataclass
class Metric:
    """A named metric: ``fn(pred, target) -> tensor`` summing the per-sample values of a batch."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(pred, target)


def _classes(target: torch.Tensor, kind: str) -> torch.Tensor:
    return target.argmax(dim=-1) if kind == "categorical" else target


def _shape_accuracy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' choice of "accuracy" from the shapes (used with a user's loss, whose labels have no kind):
    binary for one output unit, sparse for integer labels of lower rank, categorical otherwise."""
    if pred.shape[-1] == 1:
        return _accuracy("binary", False)(pred, target)
    sparse = target.dim() < pred.dim() or target.shape[-1] == 1
    return _accuracy("sparse" if sparse else "categorical", False)(pred, target.reshape(pred.shape[0])
                                                                 if sparse else target)


def _accuracy(kind: str, from_logits: bool) -> Callable:
    if kind == "custom":
        return _shape_accuracy
    if kind == "binary":
        threshold = 0.0 if from_logits else 0.5

        def binary(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            hit = ((pred > threshold) == (target > 0.5)).float()
            return hit.reshape(hit.shape[0], -1).mean(dim=1).sum()

        return binary

    def categorical(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred.argmax(dim=-1) == _classes(target, kind)).sum()

    return categorical


def _top_k(kind: str, k: int) -> Callable:
    def top_k(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kk = min(k, pred.shape[-1])
        top = pred.topk(kk, dim=-1).indices
        return (top == _classes(target, kind).unsqueeze(-1)).any(dim=-1).sum()

    return top_k


def get_metric(metric: str | Metric, loss_kind: str, from_logits: bool = False) -> Metric:
    """Resolve a Keras metric name for the compiled loss.

    "accuracy"/"acc" follow the loss as in Keras (categorical, sparse or binary accuracy);
    "top_k" / "top_k_categorical_accuracy" / "sparse_top_k_categorical_accuracy" use k = 5,
    "top_3" etc. pick k; "mae" / "mse" are regression metrics.
    """
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str):
        raise InputError("metrics", "a list of metric names such as 'accuracy'", metric, where="compile")
    key = metric.lower()
    if key in ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy",
               "binary_accuracy"):
        name = "accuracy" if key in ("accuracy", "acc") else key
        return Metric(name, _accuracy(loss_kind, from_logits))
    if key in ("top_k", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
        if loss_kind not in ("categorical", "sparse"):
            raise InputError("metrics", "top-k accuracy only with a categorical loss", metric,
                             where="compile")
        name = "sparse_top_k_categorical_accuracy" if loss_kind == "sparse" else "top_k_categorical_accuracy"
        return Metric(name, _top_k(loss_kind, 5))
    if key.startswith("top_") and key[4:].isdigit():
        return Metric(key, _top_k(loss_kind, int(key[4:])))
    if key in ("mae", "mean_absolute_error"):
        return Metric("mae", lambda p, t: (p - t).abs().reshape(p.shape[0], -1).mean(dim=1).sum())
    if key in ("mse", "mean_squared_error"):
        return Metric("mse", lambda p, t: (p - t).square().reshape(p.shape[0], -1).mean(dim=1).sum())
    raise InputError("metrics", "'accuracy', 'top_k', 'top_<k>', 'mae' or 'mse'", metric,
                     where="compile")
