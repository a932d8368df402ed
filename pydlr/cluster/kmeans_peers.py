"""``compare_kmeans``: pydlr's KMeans beside scikit-learn's and R's ``stats::kmeans`` on the same data and starts.

Equal work: every implementation starts from the same centers (one set per ``n_init`` draw, drawn once by
scikit-learn's ``kmeans_plusplus`` or as distinct random rows) and keeps its best run; the drawing is not
timed, so ``seconds`` is the Lloyd (or Hartigan-Wong) work alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pydlr.cluster._kmeans import KMeans, _as_matrix, _check_int
from pydlr.cluster.metrics import adjusted_rand_index, normalized_mutual_info
from pydlr.errors import InputError

_WHERE = "compare_kmeans"
KMEANS_METHODS = ("pydlr", "scikit-learn", "R Hartigan-Wong", "R Lloyd")
KMEANS_COLUMNS = ["method", "seconds", "iterations", "inertia", "ARI", "NMI"]


def compare_kmeans(
    x: Any, k: int, y: Any = None, *, init: Any = "k-means++", n_init: int = 1, max_iter: int = 100,
    random_state: int = 0, methods: Sequence[str] | None = None, device: str = "cpu",
) -> pd.DataFrame:
    """k-means by pydlr, scikit-learn and R's ``stats::kmeans`` (Hartigan-Wong and Lloyd) side by side.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Numbers, no NaN or Inf.
    k : int
        Number of clusters, between 1 and the number of distinct rows.
    y : array-like, optional
        True classes: adds the ARI and NMI of each clustering (NaN without).
    init : {"k-means++", "random"}, array or list of arrays
        How the shared starting centers are drawn, or the starting centers themselves: one (k, n_features)
        array, or a list of them (then ``n_init`` is their number).
    n_init : int
        Starting sets; each method runs from each and keeps its lowest inertia.
    max_iter : int
        Iteration limit of every method (R's ``iter.max``).
    random_state : int
        Seed of the starting centers.
    methods : list of str, optional
        A subset of ``KMEANS_METHODS`` (default: all; the R rows need rpy2 and R, and are left out with
        a warning where they are missing).
    device : str
        pydlr's device.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``seconds`` (all runs), ``iterations`` (of the kept run), ``inertia`` (sum of squared
        distances to the centers, float64), ``ARI``, ``NMI``. R's seconds are its own ``system.time``
        of ``kmeans()`` (the data's trip to R is not counted).
    """
    chosen = list(KMEANS_METHODS) if methods is None else list(dict.fromkeys([methods] if isinstance(
        methods, str) else methods))
    if not chosen or any(m not in KMEANS_METHODS for m in chosen):
        raise InputError("methods", f"a non-empty list of {', '.join(KMEANS_METHODS)}", methods, where=_WHERE)
    for name, value, low in (("n_init", n_init, 1), ("max_iter", max_iter, 1), ("random_state", random_state, 0)):
        _check_int(value, name, low, _WHERE)
    data = _as_matrix(x, "x", _cpu(), where=_WHERE).double().numpy()
    _check_int(k, "k", 1, _WHERE)
    distinct = len(np.unique(data, axis=0))
    if k > distinct:
        raise InputError("k", f"at most the number of distinct rows of x ({distinct})", k, where=_WHERE)
    truth = None
    if y is not None:
        truth = np.asarray(y)
        if truth.ndim != 1 or len(truth) != len(data):
            raise InputError("y", f"{len(data)} classes (one per row of x)", truth, where=_WHERE)
    starts = _starts(data, k, init, n_init, random_state)
    runners = {"pydlr": _pydlr(device), "scikit-learn": _sklearn, "R Hartigan-Wong": _r("Hartigan-Wong"),
               "R Lloyd": _r("Lloyd")}
    rows = []
    for method in chosen:
        seconds, best = 0.0, None
        for start in starts:
            started = time.perf_counter()
            labels, inertia, n_iter, own = runners[method](data, start, max_iter)
            seconds += time.perf_counter() - started if own is None else own
            if best is None or inertia < best[1]:
                best = (labels, inertia, n_iter)
        labels, inertia, n_iter = best
        rows.append({"method": method, "seconds": seconds, "iterations": int(n_iter), "inertia": float(inertia),
                     "ARI": adjusted_rand_index(truth, labels) if truth is not None else float("nan"),
                     "NMI": normalized_mutual_info(truth, labels) if truth is not None else float("nan")})
    return pd.DataFrame(rows, columns=KMEANS_COLUMNS)


def _cpu() -> Any:
    import torch

    return torch.device("cpu")


def _starts(x: np.ndarray, k: int, init: Any, n_init: int, seed: int) -> list[np.ndarray]:
    """The shared starting centers: ``n_init`` draws, or the given ones checked against (k, n_features)."""
    if not isinstance(init, str):
        given = [init] if isinstance(init, np.ndarray) and np.ndim(init) == 2 else list(init)
        starts = [_as_matrix(c, "init", _cpu(), where=_WHERE).double().numpy() for c in given]
        if not starts or any(c.shape != (k, x.shape[1]) for c in starts):
            raise InputError("init", f"(k, n_features) = ({k}, {x.shape[1]}) arrays of centers", init, where=_WHERE)
        return starts
    if init not in ("k-means++", "random"):
        raise InputError("init", '"k-means++", "random" or starting centers', init, where=_WHERE)
    rng = np.random.default_rng(seed)
    if init == "random":
        return [x[rng.choice(len(x), k, replace=False)].copy() for _ in range(n_init)]
    from sklearn.cluster import kmeans_plusplus

    return [kmeans_plusplus(x, k, random_state=int(rng.integers(2**31)))[0] for _ in range(n_init)]


def _pydlr(device: str) -> Any:
    def run(x: np.ndarray, start: np.ndarray, max_iter: int) -> tuple[np.ndarray, float, int, float | None]:
        km = KMeans(len(start), init=start, max_iter=max_iter, device=device).fit(x)
        return km.labels_, km.inertia_, km.n_iter_, None

    return run


def _sklearn(x: np.ndarray, start: np.ndarray, max_iter: int) -> tuple[np.ndarray, float, int, float | None]:
    from sklearn.cluster import KMeans as SkKMeans

    km = SkKMeans(len(start), init=start, n_init=1, max_iter=max_iter, algorithm="lloyd").fit(x)
    return km.labels_, float(km.inertia_), int(km.n_iter_), None


def _r(algorithm: str) -> Any:
    def run(x: np.ndarray, start: np.ndarray, max_iter: int) -> tuple[np.ndarray, float, int, float | None]:
        from pydlr.bridge.rpy2 import kmeans

        fit = kmeans(x, start, max_iter=max_iter, algorithm=algorithm)
        # R's own elapsed time for kmeans(): the data's trip to R is the bridge's cost, not R's.
        return fit["labels"], fit["inertia"], fit["n_iter"], fit["seconds"]

    return run
