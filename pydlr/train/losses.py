"""Keras' losses by name, computed per sample (the Learner applies class weights and the mean).

Like Keras, each loss takes ``from_logits``: False (the default) means the model ends in a softmax /
sigmoid and outputs probabilities, which are clipped to ``[eps, 1 - eps]`` (Keras' epsilon 1e-7) before
the log; True means the model outputs logits and the loss applies log-softmax / log-sigmoid itself
(numerically safer and slightly faster). As Keras on TensorFlow does, the cross-entropies given the output of
pydlr's softmax activation (a 2-D output: samples x classes) or sigmoid activation compute from the logits it
remembers instead (pydlr.layers.activations.LOGITS_ATTRIBUTE): the same loss without the clipping, whose clipped
samples would get no gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from pydlr import ops
from pydlr.errors import InputError
from pydlr.layers.activations import LOGITS_ATTRIBUTE

__all__ = [
    "Loss", "get_loss", "LOSSES", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "CustomLoss", "MultiOutputLoss",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy", "mean_squared_error",
    "mean_absolute_error", "mse", "mae",
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

    def __post_init__(self) -> None:
        # a string such as "yes" would silently mean True and train on the wrong transform
        if not isinstance(self.from_logits, bool):
            raise InputError("from_logits", "True or False", self.from_logits, where=self.name)

    def _logits_of(self, pred: torch.Tensor) -> torch.Tensor | None:
        """The logits behind a softmax output (for the categorical cross-entropies, a 2-D output whose softmax ran
        over the class axis) or a sigmoid output (for the binary one), which this loss then uses instead; else
        None."""
        if self.from_logits:
            return None
        remembered = getattr(pred, LOGITS_ATTRIBUTE, None)
        if not isinstance(remembered, tuple) or len(remembered) != 2:
            return None
        activation, logits = remembered
        wanted = {"sparse": "softmax", "categorical": "softmax", "binary": "sigmoid"}.get(self.kind)
        if activation != wanted or (wanted == "softmax" and pred.dim() != 2):
            return None
        return logits if isinstance(logits, torch.Tensor) and logits.shape == pred.shape else None

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of each sample, shape (n,)."""
        logits = self._logits_of(pred)
        if logits is not None:
            return Loss(self.name, self.kind, from_logits=True).per_sample(logits, target)
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
        logits = self._logits_of(pred)
        if logits is not None:
            return Loss(self.name, self.kind, from_logits=True)(logits, target, weight)
        if weight is None and self.from_logits and self.kind in ("sparse", "categorical"):
            pred = pred.float()
            if self.kind == "sparse":  # one autograd node (torch's cross_entropy where it is not native)
                return ops.softmax_cross_entropy(pred, target)
            return F.cross_entropy(pred, target)  # one fused kernel: fewer ops per step
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


def get_loss(loss: Any, from_logits: bool = False) -> Loss:
    """Resolve a Keras loss name (or a `Loss`) to a `Loss`; a callable ``fn(y_true, y_pred)`` or a torch
    loss module ``module(input, target)`` becomes a `CustomLoss`."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in LOSSES:
        key = loss.lower()
        return Loss(_ALIASES.get(key, key), LOSSES[key], from_logits)
    if isinstance(getattr(loss, "keras_loss_name", None), str):  # keras.losses.categorical_crossentropy and kin
        return get_loss(loss.keras_loss_name, from_logits)
    if callable(loss) and not isinstance(loss, (str, type)):
        return CustomLoss(loss)
    raise InputError("loss", f"one of {sorted(LOSSES)}, a pydlr.train.losses.Loss, a function "
                     "fn(y_true, y_pred) or a torch loss module", loss, where="compile")


def _callable_name(fn: Any) -> str:
    from pydlr.layers.base import to_snake_case

    name = getattr(fn, "__name__", None) or to_snake_case(type(fn).__name__)
    return "custom_loss" if name == "<lambda>" else name


def per_sample_values(value: Any, n: int, argument: str) -> torch.Tensor:
    """A user function's result as one value per sample (n,), or a 0-d batch mean: Keras' loss and metric
    functions return either; extra axes are averaged as Keras' reduction does."""
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=torch.float32)
    value = value.float()
    if value.dim() == 0:
        return value
    if value.shape[0] != n:
        raise InputError(argument, f"a function returning one value per sample ({n}) or one number",
                         f"a result of shape {tuple(value.shape)}", where="fit")
    return value.reshape(n, -1).mean(dim=1)


class CustomLoss(Loss):
    """A user's loss: a function ``fn(y_true, y_pred)`` (Keras' argument order) or a torch loss module
    called ``module(input, target)`` (torch's order), on public-layout tensors. Targets are passed as
    given: integer labels as int64, the rest as float32 (kind "custom")."""

    def __init__(self, fn: Callable[..., Any]):
        if not callable(fn):
            raise InputError("fn", "a function fn(y_true, y_pred) or a torch loss module", fn, where="CustomLoss")
        super().__init__(_callable_name(fn), "custom", False)
        self.fn = fn

    def _raw(self, pred: torch.Tensor, target: torch.Tensor) -> Any:
        return self.fn(pred, target) if isinstance(self.fn, torch.nn.Module) else self.fn(target, pred)

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        values = per_sample_values(self._raw(pred, target), pred.shape[0], "loss")
        if values.dim() == 0:
            raise InputError("loss", "a loss returning one value per sample when sample_weight or "
                             "class_weight is used (torch modules: reduction='none')", self.name, where="fit")
        return values

    def __call__(self, pred: torch.Tensor, target: torch.Tensor,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is not None:
            return (self.per_sample(pred, target) * weight).mean()
        return per_sample_values(self._raw(pred, target), pred.shape[0], "loss").mean()


class MultiOutputLoss(Loss):
    """Keras' losses for a model with several outputs: one `Loss` per output (``parts``, in output order,
    named by the output layers), the total ``sum(loss_weights[i] * loss_i)``. The unweighted loss of each
    output of the last batch is kept in ``last`` for the per-output history entries (``out_a_loss``)."""

    def __init__(self, names: Sequence[str], parts: Sequence[Loss], weights: Sequence[float]):
        super().__init__("+".join(p.name for p in parts), "multi", False)
        self.names, self.parts = list(names), list(parts)
        self.weights = [float(w) for w in weights]
        self.last: list[torch.Tensor] = []

    def per_sample(self, pred: Any, target: Any) -> torch.Tensor:
        return sum(w * loss.per_sample(p, t)
                   for loss, w, p, t in zip(self.parts, self.weights, pred, target, strict=True))

    def __call__(self, pred: Any, target: Any, weight: torch.Tensor | None = None) -> torch.Tensor:
        values = [loss(p, t, weight) for loss, p, t in zip(self.parts, pred, target, strict=True)]
        self.last = [v.detach() for v in values]
        return sum(w * v for w, v in zip(self.weights, values, strict=True))


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


def _keras_loss_function(name: str) -> Callable[..., torch.Tensor]:
    """Keras' loss function ``keras.losses.<name>(y_true, y_pred, from_logits=False)``: each sample's loss.
    Given to ``compile(loss=...)`` it is the built-in loss of that name (saved with the model, fused
    kernels), not a user function."""
    def fn(y_true: Any, y_pred: Any, from_logits: bool = False) -> torch.Tensor:
        loss = get_loss(name, from_logits)
        pred = torch.as_tensor(y_pred, dtype=torch.float32)
        target = torch.as_tensor(y_true)
        target = target.long().reshape(-1) if loss.kind == "sparse" else target.float()
        return loss.per_sample(pred, target)

    fn.__name__ = fn.__qualname__ = name
    fn.keras_loss_name = name  # type: ignore[attr-defined]
    return fn


categorical_crossentropy = _keras_loss_function("categorical_crossentropy")
sparse_categorical_crossentropy = _keras_loss_function("sparse_categorical_crossentropy")
binary_crossentropy = _keras_loss_function("binary_crossentropy")
mean_squared_error = mse = _keras_loss_function("mean_squared_error")
mean_absolute_error = mae = _keras_loss_function("mean_absolute_error")
