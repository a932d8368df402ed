"""Keras 3's metric objects (``keras.metrics.AUC()``, ``Precision()``, ...): stateful, with
``update_state(y_true, y_pred, sample_weight=None)``, ``result()`` and ``reset_state()``, and usable in
``compile(metrics=[...])``, where the history keys are their ``name`` as in Keras ("auc", "precision", ...).

Two families:

- Means of a per-sample value (the accuracies, MeanSquaredError, MeanAbsoluteError). In ``fit`` they use the
  Learner's running sums on the device (the same functions as the metrics named by string in
  ``pydlr.train.metrics``), so they cost what ``"accuracy"`` costs.
- Metrics of the whole epoch that are not means of per-sample values (AUC, Precision, Recall, F1Score).
  These are torchmetrics' implementations (exact ROC AUC and average precision as scikit-learn computes them,
  confusion counts for precision, recall and F1); the Learner updates them each batch and reads them when it
  logs. Under torchrun their states are gathered from every process before an epoch's training logs
  (``pydlr.train.distributed``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import unique_name
from pydlr.train.metrics import PER_SAMPLE, Metric

__all__ = [
    "KerasMetric", "MeanMetric", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "MeanSquaredError", "MeanAbsoluteError", "AUC", "Precision", "Recall", "F1Score", "METRIC_CLASSES",
    "metric_from_config",
]


def _tensor(value: Any, argument: str, where: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value if dtype is None else value.to(dtype)
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 (any unconvertible object is the same input error)
        array = None
    if array is None or array.dtype == object or array.ndim == 0 or array.dtype.kind not in "biuf":
        raise InputError(argument, "a numeric array with one row per sample", value, where)
    t = torch.from_numpy(np.ascontiguousarray(array))
    return t if dtype is None else t.to(dtype)


class KerasMetric:
    """Base of Keras' metric objects: ``name``, ``update_state``, ``result``, ``reset_state``,
    ``get_config``."""

    def __init__(self, name: str | None, dtype: Any = None, default: str | None = None):
        where = type(self).__name__
        if dtype not in (None, "float32"):
            raise NotSupportedError(f"{where}: dtype={dtype!r} is not supported; metrics use float32.")
        if name is not None and (not isinstance(name, str) or not name):
            raise InputError("name", "a non-empty string", name, where)
        # Keras names unnamed AUC/Precision/Recall "auc", "auc_1", ... within a session (clear_session resets)
        self.name = name or unique_name(default or type(self).__name__.lower())

    @property
    def where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def _inputs(self, y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
        yt = _tensor(y_true, "y_true", self.where)
        yp = _tensor(y_pred, "y_pred", self.where, torch.float32)
        if yt.shape[0] != yp.shape[0]:
            raise InputError("y_true", f"{yp.shape[0]} rows, one per row of y_pred", yt, self.where)
        return yt, yp

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KerasMetric:
        return cls(**config)

    def saved(self) -> dict[str, Any]:
        """``{"class_name", "config"}``: what compile settings saved with a model hold (`metric_from_config`)."""
        return {"class_name": type(self).__name__, "config": self.get_config()}

    def learner_metric(self, loss_kind: str) -> Metric:
        """The form the Learner runs in ``fit``/``evaluate`` (see pydlr.train.metrics.Metric)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanMetric(KerasMetric):
    """The (weighted) mean of a per-sample value over everything seen since the last ``reset_state``."""

    kind = ""  # the key of the per-sample function in pydlr.train.metrics.PER_SAMPLE

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(name, dtype)
        self.reset_state()

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return PER_SAMPLE[self.kind](pred, target)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        yt, yp = self._inputs(y_true, y_pred)
        values = self.per_sample(yp, yt).double().reshape(-1)
        if sample_weight is None:
            self._total += values.sum().cpu()
            self._count += values.shape[0]
            return
        w = _tensor(sample_weight, "sample_weight", self.where, torch.float64).reshape(-1)
        if w.shape[0] != values.shape[0]:
            raise InputError("sample_weight", f"{values.shape[0]} weights, one per sample", sample_weight,
                             self.where)
        self._total += (values * w.to(values.device)).sum().cpu()
        self._count += float(w.sum())

    def result(self) -> torch.Tensor:
        return (self._total / self._count if self._count else torch.zeros((), dtype=torch.float64)).float()

    def reset_state(self) -> None:
        self._total = torch.zeros((), dtype=torch.float64)
        self._count = 0.0

    def learner_metric(self, loss_kind: str) -> Metric:
        per_sample = self.per_sample
        return Metric(self.name, lambda pred, target: per_sample(pred, target).sum(), config=self.saved())


class Accuracy(MeanMetric):
    """Keras' ``Accuracy``: how often ``y_pred`` equals ``y_true`` exactly."""

    kind = "equal"

    def __init__(self, name: str = "accuracy", dtype: Any = None):
        super().__init__(name, dtype)


class BinaryAccuracy(MeanMetric):
    """Keras' ``BinaryAccuracy(threshold=0.5)``: how often ``y_pred > threshold`` matches a 0/1 label."""

    kind = "binary"

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise InputError("threshold", "a number", threshold, "BinaryAccuracy")
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return PER_SAMPLE["binary"](pred, target, self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(MeanMetric):
    """Keras' ``CategoricalAccuracy``: the arg-max of ``y_pred`` equals that of one-hot ``y_true``."""

    kind = "categorical"

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None):
        super().__init__(name, dtype)


class SparseCategoricalAccuracy(MeanMetric):
    """Keras' ``SparseCategoricalAccuracy``: the arg-max of ``y_pred`` equals the integer label."""

    kind = "sparse"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None):
        super().__init__(name, dtype)


class TopKCategoricalAccuracy(MeanMetric):
    """Keras' ``TopKCategoricalAccuracy(k=5)``: one-hot ``y_true``'s class is among the ``k`` largest."""

    kind = "categorical"

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer, float)) or int(k) != k or k < 1:
            raise InputError("k", "a positive integer", k, type(self).__name__)
        self.k = int(k)
        super().__init__(name, dtype)

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return PER_SAMPLE["top_k"](pred, target, self.k, self.kind)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Keras' ``SparseTopKCategoricalAccuracy(k=5)``: the integer label is among the ``k`` largest."""

    kind = "sparse"

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(k, name, dtype)


class MeanSquaredError(MeanMetric):
    """Keras' ``MeanSquaredError`` metric."""

    kind = "mse"

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(name, dtype)


class MeanAbsoluteError(MeanMetric):
    """Keras' ``MeanAbsoluteError`` metric."""

    kind = "mae"

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(name, dtype)


# ----- metrics of the whole epoch, on torchmetrics -------------------------------------------------------
class EpochMetric(KerasMetric):
    """A metric whose value needs every prediction of the epoch (not a mean of per-sample values): the
    torchmetrics object behind it is built on the first update, when the number of columns is known."""

    def __init__(self, name: str | None, dtype: Any, default: str):
        super().__init__(name, dtype, default)
        self._metric: Any = None
        self._columns: int | None = None

    def build(self, columns: int) -> Any:
        """The torchmetrics object for predictions with ``columns`` columns."""
        raise NotImplementedError

    def prepare(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(preds, target) in the form ``build``'s object takes."""
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if sample_weight is not None:
            raise NotSupportedError(f"{self.where}: sample_weight is not supported by this metric; compile's "
                                    "metrics are unweighted in fit, as Keras' `metrics` are.")
        yt, yp = self._inputs(y_true, y_pred)
        columns = 1 if yp.dim() == 1 else int(np.prod(yp.shape[1:]))
        if self._metric is None:
            self._metric = self.build(columns).to(yp.device)
            self._columns = columns
        elif columns != self._columns:
            raise InputError("y_pred", f"{self._columns} columns as in the earlier updates", yp, self.where)
        preds, target = self.prepare(yt, yp.reshape(yp.shape[0], columns))
        self._metric.update(preds, target)

    def result(self) -> torch.Tensor:
        if self._metric is None or not self._metric.update_called:
            return torch.zeros((), dtype=torch.float32)
        return self._metric.compute().float().cpu()

    def reset_state(self) -> None:
        if self._metric is not None:
            self._metric.reset()

    def sync(self) -> None:
        """Gather the states of every process (torchrun) so that `result` covers all of them."""
        if self._metric is not None:
            self._metric.sync()

    def learner_metric(self, loss_kind: str) -> Metric:
        return Metric(self.name, None, state=self, config=self.saved())

    @staticmethod
    def _options() -> dict[str, Any]:
        # no sync inside compute (the Learner syncs once an epoch, on every process at the same point),
        # no cached result (a progress bar reads it mid-epoch), no per-batch checks that read values back
        return {"sync_on_compute": False, "compute_with_cache": False, "validate_args": False}


def _binary_targets(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """0/1 targets shaped as ``y_pred`` (n, columns); integer class labels are one-hot encoded when the
    predictions have a column per class (a model trained with sparse_categorical_crossentropy)."""
    n, columns = y_pred.shape
    if (y_true.dim() == 1 or (y_true.dim() == 2 and y_true.shape[1] == 1)) and columns > 1:
        labels = y_true.reshape(-1).long()
        return torch.nn.functional.one_hot(labels, columns).to(y_pred.device)
    target = y_true.reshape(n, -1)
    if target.shape[1] != columns:
        raise InputError("y_true", f"labels of shape ({n}, {columns}) as y_pred, or integer classes",
                         y_true, "metric")
    return (target > 0.5).long().to(y_pred.device)


class AUC(EpochMetric):
    """Keras' ``AUC``: the area under the ROC curve (``curve="ROC"``) or the precision-recall curve
    (``curve="PR"``, computed as average precision), over all predictions since the last reset.

    pydlr computes the exact area, as scikit-learn's ``roc_auc_score`` / ``average_precision_score`` do, where
    Keras approximates it on ``num_thresholds`` bins (the two differ by ~1e-3); ``num_thresholds`` is
    accepted and checked for compatibility, and ``thresholds`` (a list) gives the binned computation on those
    thresholds. ``multi_label=False`` treats every column as binary predictions of one pooled problem, as
    Keras; ``True`` averages the per-column areas (``label_weights`` not supported).
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, dtype: Any = None, thresholds: Any = None, multi_label: bool = False,
                 num_labels: int | None = None, label_weights: Any = None, from_logits: bool = False):
        where = "AUC"
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer, float)) \
                or int(num_thresholds) != num_thresholds or num_thresholds < 2:
            raise InputError("num_thresholds", "an integer > 1", num_thresholds, where)
        if not isinstance(curve, str) or curve.upper() not in ("ROC", "PR"):
            raise InputError("curve", '"ROC" or "PR"', curve, where)
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise InputError("summation_method", '"interpolation", "minoring" or "majoring"', summation_method,
                             where)
        if thresholds is not None:
            values = np.asarray(thresholds, dtype=float).reshape(-1) if not isinstance(thresholds, str) else None
            if values is None or values.size == 0 or np.any((values < 0) | (values > 1)):
                raise InputError("thresholds", "a list of numbers in [0, 1]", thresholds, where)
            thresholds = sorted({0.0, 1.0, *values.tolist()})
        if label_weights is not None:
            raise NotSupportedError("AUC: label_weights is not supported; leave it None.")
        for arg, value in (("multi_label", multi_label), ("from_logits", from_logits)):
            if not isinstance(value, (bool, np.bool_)):
                raise InputError(arg, "True or False", value, where)
        super().__init__(name, dtype, "auc")
        self.num_thresholds, self.curve = int(num_thresholds), curve.upper()
        self.summation_method, self.thresholds = summation_method, thresholds
        self.multi_label, self.num_labels, self.from_logits = bool(multi_label), num_labels, bool(from_logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "thresholds": self.thresholds,
                "multi_label": self.multi_label, "num_labels": self.num_labels, "from_logits": self.from_logits}

    def build(self, columns: int) -> Any:
        from torchmetrics import classification as tmc

        opts = {**self._options(), "thresholds": self.thresholds}
        if self.multi_label and columns > 1:
            cls = tmc.MultilabelAUROC if self.curve == "ROC" else tmc.MultilabelAveragePrecision
            return cls(num_labels=columns, average="macro", **opts)
        return (tmc.BinaryAUROC if self.curve == "ROC" else tmc.BinaryAveragePrecision)(**opts)

    def prepare(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = _binary_targets(y_true, y_pred)
        # probabilities as given (clipped to [0, 1] as Keras' thresholds do); torchmetrics would otherwise
        # apply a sigmoid to a batch with any value outside [0, 1], and not to the others
        preds = torch.sigmoid(y_pred) if self.from_logits else y_pred.clamp(0.0, 1.0)
        if self.multi_label and y_pred.shape[1] > 1:
            return preds, target
        return preds.reshape(-1), target.reshape(-1)


def _check_threshold(value: Any, argument: str, where: str, none_ok: bool = True) -> float | None:
    if value is None and none_ok:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0 <= value <= 1:
        raise InputError(argument, "one number in [0, 1]" + (" or None" if none_ok else ""), value, where)
    return float(value)


class _ConfusionMetric(EpochMetric):
    """Keras' ``Precision`` / ``Recall``: predictions above ``thresholds`` (0.5 by default) count as
    positives; with ``top_k`` the k largest of a row are the positives; with ``class_id`` only that column
    counts. Every column is one pooled binary problem, as in Keras."""

    stat = ""

    def __init__(self, thresholds: Any = None, top_k: int | None = None, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        where = type(self).__name__
        threshold = _check_threshold(thresholds, "thresholds", where)
        for arg, value in (("top_k", top_k), ("class_id", class_id)):
            minimum = 1 if arg == "top_k" else 0
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer, float))
                                      or int(value) != value or value < minimum):
                raise InputError(arg, f"None or an integer >= {minimum}", value, where)
        super().__init__(name, dtype, self.stat)
        self.thresholds = threshold
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = None if class_id is None else int(class_id)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.thresholds, "top_k": self.top_k,
                "class_id": self.class_id}

    def build(self, columns: int) -> Any:
        from torchmetrics import classification as tmc

        if self.class_id is not None and self.class_id >= columns:
            raise InputError("class_id", f"a column of y_pred (0 to {columns - 1})", self.class_id, self.where)
        cls = tmc.BinaryPrecision if self.stat == "precision" else tmc.BinaryRecall
        return cls(**self._options())

    def prepare(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = _binary_targets(y_true, y_pred)
        if self.top_k is not None:
            k = min(self.top_k, y_pred.shape[1])
            top = torch.zeros_like(y_pred, dtype=torch.bool).scatter_(1, y_pred.topk(k, dim=1).indices, True)
            # Keras keeps the top-k values and thresholds them; the others never count
            positive = top & (y_pred > (0.5 if self.thresholds is None else self.thresholds))
        else:
            positive = y_pred > (0.5 if self.thresholds is None else self.thresholds)
        if self.class_id is not None:
            positive, target = positive[:, self.class_id], target[:, self.class_id]
        return positive.reshape(-1).long(), target.reshape(-1)


class Precision(_ConfusionMetric):
    """Keras' ``Precision(thresholds=None, top_k=None, class_id=None)``: TP / (TP + FP)."""

    stat = "precision"


class Recall(_ConfusionMetric):
    """Keras' ``Recall(thresholds=None, top_k=None, class_id=None)``: TP / (TP + FN)."""

    stat = "recall"


class F1Score(EpochMetric):
    """Keras' ``F1Score(average=None, threshold=None)`` for one-hot (or integer) labels.

    ``threshold=None``: each row's arg-max is its predicted class; a number: every column above it is a
    positive (multi-label). One column of predictions (a sigmoid output) is thresholded at ``threshold``
    (0.5 when None), where Keras' arg-max of a single column would call every sample positive. ``average`` "micro", "macro", "weighted", or None (one value per class from
    ``result()``; ``fit`` logs one number per metric, so compile takes the averaged forms).
    """

    def __init__(self, average: str | None = None, threshold: float | None = None, name: str = "f1_score",
                 dtype: Any = None):
        where = "F1Score"
        if average not in (None, "micro", "macro", "weighted"):
            raise InputError("average", 'None, "micro", "macro" or "weighted"', average, where)
        self.threshold = _check_threshold(threshold, "threshold", where)
        self.average = average
        super().__init__(name, dtype, "f1_score")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "average": self.average, "threshold": self.threshold}

    def build(self, columns: int) -> Any:
        from torchmetrics import classification as tmc

        average = self.average or "none"
        if columns == 1:
            return tmc.BinaryF1Score(**self._options())
        if self.threshold is None:
            return tmc.MulticlassF1Score(num_classes=columns, average=average, **self._options())
        return tmc.MultilabelF1Score(num_labels=columns, average=average, **self._options())

    def prepare(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = _binary_targets(y_true, y_pred)
        threshold = 0.5 if self.threshold is None else self.threshold
        if y_pred.shape[1] == 1:
            return (y_pred > threshold).reshape(-1).long(), target.reshape(-1)
        if self.threshold is None:
            return y_pred.argmax(dim=1), target.argmax(dim=1)
        return (y_pred > threshold).long(), target

    def learner_metric(self, loss_kind: str) -> Metric:
        if self.average is None:
            raise InputError("metrics", 'F1Score(average="macro"), "micro" or "weighted" (fit logs one number '
                             "per metric; average=None gives one per class, from update_state() and result())",
                             self, "compile")
        return super().learner_metric(loss_kind)


METRIC_CLASSES: dict[str, type[KerasMetric]] = {
    cls.__name__: cls for cls in (
        Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError, AUC, Precision, Recall, F1Score)
}


def metric_from_config(config: dict[str, Any]) -> KerasMetric:
    """A metric object from ``{"class_name": ..., "config": {...}}`` (compile settings saved with a model)."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in METRIC_CLASSES:
        raise InputError("metrics", f"a metric class, one of {', '.join(METRIC_CLASSES)}", config, "compile")
    return METRIC_CLASSES[name].from_config(dict(config.get("config") or {}))
