"""k-means from R: ``pydlr.cluster.KMeans`` fitted in one call, with what R's ``kmeans`` objects hold."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from pydlr import cluster
from pydlr.api_r._convert import c_array, strings
from pydlr.data.columns import on_columns
from pydlr.errors import InputError


def kmeans(x: Any, n_clusters: int, batch_size: int | None = None, **params: Any) -> dict[str, Any]:
    """``pydlr.cluster.KMeans(n_clusters, **params).fit(x)`` (``params``: the estimator's own names), or
    ``MiniBatchKMeans`` with ``batch_size``, and its fitted attributes, plus ``totss`` and the seconds
    ``fit`` took; ``model`` is the estimator. ``algorithm`` (Lloyd's) is dropped with ``batch_size``."""
    if batch_size is None:
        model = cluster.KMeans(n_clusters=n_clusters, **params)
    else:
        params.pop("algorithm", None)
        model = cluster.MiniBatchKMeans(n_clusters=n_clusters, batch_size=int(batch_size), **params)
    started = time.perf_counter()
    with warnings.catch_warnings():  # R says it of the result (empty clusters), in R's words
        warnings.simplefilter("ignore", ConvergenceWarning)
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
        "totss": float(model.totss_),
        "seconds": seconds,
    }


def predict(model: Any, x: Any, column_names: Any = None, trained_column_names: Any = None) -> np.ndarray:
    """``model.predict(x)``: the closest center of each row, 0-based, as int32. x's columns, named
    ``column_names``, are read by the names of the training data's (``trained_column_names``; R keeps them as
    the centers' column names), as predict.lm() does (`pydlr.data.columns`)."""
    x = on_columns(x, strings(trained_column_names), "predict", "newdata", names=strings(column_names),
                   fitter="pydlr_kmeans()")
    return c_array(model.predict(x), np.int32)


def compare(results: Mapping[str, Any], y_true: Any) -> dict[str, list[Any]]:
    """``pydlr.cluster.compare(results, y_true)`` as columns for an R data.frame."""
    return _columns(cluster.compare(dict(results), y_true=np.asarray(y_true)))


def _columns(table: Any) -> dict[str, list[Any]]:
    return {str(k): list(v) for k, v in table.to_dict("list").items()}


def compare_methods(x: Any, y: Any, x_test: Any = None, y_test: Any = None, model: Any = None,
                    embedding: Any = None, methods: Any = None, **params: Any) -> dict[str, Any]:
    """``pydlr.compare.compare_methods``: the table as columns, the verdict, and the result object (for
    ``plot``); ``methods`` may come from R as one string or a list."""
    from pydlr.compare import compare_methods as run

    chosen = [methods] if isinstance(methods, str) else methods
    result = run(x, y, x_test, y_test, model=model, embedding=embedding, methods=chosen,
                                     **params)
    return {"table": _columns(result), "verdict": result.verdict, "result": result}


def projection(result: Any, features: str, projection: str, max_points: int, random_state: int = 0
               ) -> dict[str, Any]:
    """The 2-D points R draws for ``plot(<pydlr_comparison>)``: x, y, class code and k-means cluster."""
    from pydlr.cluster.methods import project_2d

    feats = result.details.features
    if features not in feats:
        raise InputError("features", f"one of {', '.join(repr(k) for k in feats)}", features, where="plot")
    if projection not in ("pca", "tsne"):
        raise InputError("projection", '"pca" or "tsne"', projection, where="plot")
    xy, keep = project_2d(feats[features], projection, int(max_points), int(random_state))
    clusters = result.details.clusters.get(features)
    return {"x": c_array(xy[:, 0], np.float64).tolist(), "y": c_array(xy[:, 1], np.float64).tolist(),
            "class": c_array(result.details.y_test[keep], np.int32).tolist(),
            "cluster": None if clusters is None else c_array(clusters[keep], np.int32).tolist()}


def kmeans_starts(x: Any, k: int, init: str, n_init: int, random_state: int) -> list[np.ndarray]:
    """The shared starting centers of ``compare_kmeans`` (R runs ``stats::kmeans`` from them itself)."""
    from pydlr.cluster._kmeans import _as_matrix, _check_int
    from pydlr.cluster.kmeans_peers import _cpu, _starts

    for name, value in (("k", k), ("n_init", n_init)):
        _check_int(value, name, 1, "compare_kmeans")
    data = _as_matrix(x, "x", _cpu(), where="compare_kmeans").double().numpy()
    return [c_array(s, np.float64) for s in _starts(data, int(k), init, int(n_init), int(random_state))]


def compare_kmeans(x: Any, k: int, y: Any = None, methods: Any = None, **params: Any) -> dict[str, list[Any]]:
    """``pydlr.cluster.compare_kmeans`` as columns for an R data.frame."""
    chosen = [methods] if isinstance(methods, str) else methods
    return _columns(cluster.compare_kmeans(x, int(k), y, methods=chosen, **params))


def scores(y_true: Any, labels: Any) -> dict[str, float]:
    """ARI and NMI of ``labels`` against ``y_true`` (scikit-learn's), for rows R computes itself."""
    return {"ARI": cluster.adjusted_rand_index(y_true, labels), "NMI": cluster.normalized_mutual_info(y_true, labels)}
