"""Keras' ``keras.metrics`` namespace: metric objects with Keras 3's names and arguments, for
``compile(metrics=[...])`` and for use on their own (``update_state`` / ``result`` / ``reset_state``)::

    import pydlr as keras
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(), keras.metrics.Precision(), keras.metrics.Recall()])
"""

from pydlr.train.metric_objects import (
    AUC,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    F1Score,
    MeanAbsoluteError,
    MeanSquaredError,
    Precision,
    Recall,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from pydlr.train.metric_objects import KerasMetric as Metric

__all__ = [
    "AUC", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "F1Score", "MeanAbsoluteError",
    "MeanSquaredError", "Metric", "Precision", "Recall", "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy",
]
