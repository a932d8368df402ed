"""Keras' losses by name, computed per sample (the Learner applies class weights and the mean).

Like Keras, each loss takes ``from_logits``: False (the default) means the model ends in a softmax /
sigmoid and outputs probabilities, which are clipped to ``[eps, 1 - eps]`` (Keras' epsilon 1e-7) before
the log; True means the model outputs logits and the loss applies log-softmax / log-sigmoid itself
(numerically safer and slightly faster).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pydlr.errors import InputError

__all__ = [
    "Loss", "get_loss", "LOSSES", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError",
]

EPS = 1e-7


@dataclass
class Loss:
    """A loss: ``name`` (Keras' name), ``kind`` (what labels it takes) and ``from_logits``.

    ``kind`` is one of "categorical" (one-hot or soft targets, shape (n, k)), "sparse" (integer
    classes, shape (n,)), "binary" (0/1 targets, shape of the output) or "regression".
    """

    name: str
    kind: str
    from_logits: bool = False

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of each sample, shape (n,)."""
        pred = pred.float()
        if self.kind == "categorical":
            logp = (F.log_softmax(pred, dim=-1) if self.from_logits
                    else torch.log(pred.clamp(EPS, 1.0 - EPS)))
            return -(target * logp).sum(dim=-1)
        if self.kind == "sparse":
            logp = (F.log_softmax(pred, dim=-1) if self.from_logits
                    else torch.log(pred.clamp(EPS, 1.0 - EPS)))
            return F.nll_loss(logp, target, reduction="none")
        if self.kind == "binary":
            if self.from_logits:
                per = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
            else:
                p = pred.clamp(EPS, 1.0 - EPS)
                per = -(target * torch.log(p) + (1 - target) * torch.log1p(-p))
            return per.reshape(per.shape[0], -1).mean(dim=1)
        diff = (pred - target).reshape(pred.shape[0], -1)
        if self.name == "mean_absolute_error":
            return diff.abs().mean(dim=1)
        return diff.square().mean(dim=1)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss over the batch; with ``weight`` (n,), Keras' ``sum(w * l) / n``."""
        if weight is None and self.from_logits and self.kind in ("sparse", "categorical"):
            return F.cross_entropy(pred.float(), target)  # one fused kernel: fewer ops per step
        per = self.per_sample(pred, target)
        if weight is not None:
            per = per * weight
        return per.mean()


LOSSES = {
    "categorical_crossentropy": "categorical",
    "sparse_categorical_crossentropy": "sparse",
    "binary_crossentropy": "binary",
    "mse": "regression",
    "mean_squared_error": "regression",
    "mae": "regression",
    "mean_absolute_error": "regression",
}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


def get_loss(loss: str | Loss, from_logits: bool = False) -> Loss:
    """Resolve a Keras loss name (or a `Loss`) to a `Loss`."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in LOSSES:
        key = loss.lower()
        return Loss(_ALIASES.get(key, key), LOSSES[key], from_logits)
    raise InputError("loss", f"one of {sorted(LOSSES)} or a pydlr.train.losses.Loss", loss,
                     where="compile")


def CategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802 - Keras' class name
    """``keras.losses.CategoricalCrossentropy``: one-hot targets."""
    return Loss("categorical_crossentropy", "categorical", from_logits)


def SparseCategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802
    """``keras.losses.SparseCategoricalCrossentropy``: integer class targets."""
    return Loss("sparse_categorical_crossentropy", "sparse", from_logits)


def BinaryCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802
    """``keras.losses.BinaryCrossentropy``: 0/1 targets, one sigmoid output per target."""
    return Loss("binary_crossentropy", "binary", from_logits)


def MeanSquaredError() -> Loss:  # noqa: N802
    """``keras.losses.MeanSquaredError``."""
    return Loss("mean_squared_error", "regression")


def MeanAbsoluteError() -> Loss:  # noqa: N802
    """``keras.losses.MeanAbsoluteError``."""
    return Loss("mean_absolute_error", "regression")
