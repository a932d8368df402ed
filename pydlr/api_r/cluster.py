"""k-means from R: ``pydlr.cluster.KMeans`` fitted in one call, with what R's ``kmeans`` objects hold."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from pydlr import cluster
from pydlr.api_r._convert import c_array


def kmeans(x: Any, n_clusters: int, **params: Any) -> dict[str, Any]:
    """``pydlr.cluster.KMeans(n_clusters, **params).fit(x)`` (``params``: the estimator's own names) and
    its fitted attributes, plus ``totss`` and the seconds ``fit`` took; ``model`` is the estimator."""
    model = cluster.KMeans(n_clusters=n_clusters, **params)
    started = time.perf_counter()
    model.fit(x)
    seconds = time.perf_counter() - started
    return {
        "model": model,
        "centers": c_array(model.cluster_centers_, np.float64),
        "labels": c_array(model.labels_, np.int32),
        "withinss": c_array(model.withinss_, np.float64).tolist(),
        "inertia": float(model.inertia_),
        "n_iter": int(model.n_iter_),
        "device": str(model.device_),
        "totss": float(cluster.total_sum_of_squares(x)),
        "seconds": seconds,
    }


def predict(model: Any, x: Any) -> np.ndarray:
    """``model.predict(x)``: the closest center of each row, 0-based, as int32."""
    return c_array(model.predict(x), np.int32)


def compare(results: Mapping[str, Any], y_true: Any) -> dict[str, list[Any]]:
    """``pydlr.cluster.compare(results, y_true)`` as columns for an R data.frame."""
    table = cluster.compare(dict(results), y_true=np.asarray(y_true))
    return {str(k): list(v) for k, v in table.to_dict("list").items()}
