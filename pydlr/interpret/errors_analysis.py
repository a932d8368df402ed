"""Where a classifier goes wrong: the confusion matrix and the samples with the largest losses."""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr.errors import InputError

__all__ = ["confusion_matrix", "top_losses"]


def _labels(y: Any, name: str, where: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] > 1:  # one-hot / probabilities -> classes
        a = a.argmax(axis=1)
    a = a.reshape(-1) if a.ndim == 2 and a.shape[1] == 1 else a
    if a.ndim != 1 or a.size == 0:
        raise InputError(name, "a vector of class labels", y, where)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise InputError(name, "whole-number class labels", y, where)
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu" or a.min() < 0:
        raise InputError(name, "non-negative integer class labels (0-based)", y, where)
    return a.astype(np.int64)


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class (scikit-learn's).

    ``y_pred`` may be labels or per-class scores (argmax taken). ``num_classes`` defaults to the largest
    label + 1.
    """
    where = "confusion_matrix"
    t, p = _labels(y_true, "y_true", where), _labels(y_pred, "y_pred", where)
    if t.shape != p.shape:
        raise InputError("y_pred", f"{t.size} labels (as y_true)", y_pred, where)
    k = int(max(t.max(), p.max())) + 1
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < k:
            raise InputError("num_classes", f"an integer >= {k} (the largest label + 1)", num_classes,
                             where)
        k = int(num_classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def top_losses(model: Any, x: Any, y: Any, k: int = 9, batch_size: int = 32) -> dict[str, np.ndarray]:
    """The ``k`` samples the model gets most wrong (fastai's ``top_losses``): largest cross-entropy.

    Parameters
    ----------
    model : a pydlr model with ``predict`` (softmax outputs; logits are accepted and softmaxed)
    x, y : inputs and integer labels

    Returns
    -------
    dict
        ``index`` (int64 sample indices, worst first), ``loss``, ``actual``, ``predicted``,
        ``probability`` (of the predicted class), ``probability_actual`` (of the true class, as fastai's
        plot shows it).
    """
    where = "top_losses"
    if not hasattr(model, "predict"):
        raise InputError("model", "a pydlr model with predict()", model, where)
    labels = _labels(y, "y", where)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError("k", "a positive integer", k, where)
    probs = np.asarray(model.predict(x, batch_size=batch_size), dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != labels.size or labels.max() >= probs.shape[1]:
        raise InputError("y", f"{probs.shape[0]} labels below {probs.shape[1]}", y, where)
    if not (np.all(probs >= 0) and np.allclose(probs.sum(1), 1.0, atol=1e-3)):
        z = probs - probs.max(1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.log(np.clip(probs[np.arange(labels.size), labels], 1e-12, None))
    order = np.argsort(-loss, kind="stable")[: int(k)]
    pred = probs.argmax(1)
    return {
        "index": order.astype(np.int64),
        "loss": loss[order],
        "actual": labels[order],
        "predicted": pred[order].astype(np.int64),
        "probability": probs[order, pred[order]],
        "probability_actual": probs[order, labels[order]],
    }
