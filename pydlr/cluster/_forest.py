"""The random forest of `run_methods`: scikit-learn's, grown within a time budget, and its size."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def fit_forest(x: np.ndarray, y: np.ndarray, n_estimators: int, budget: float | None, seed: int) -> Any:
    """scikit-learn's RandomForestClassifier; under a budget it grows 10 trees at a time (warm start)
    until ``n_estimators`` or the budget, whichever comes first."""
    from sklearn.ensemble import RandomForestClassifier

    if budget is None:
        return RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=-1).fit(x, y)
    started = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=min(10, n_estimators), random_state=seed, n_jobs=-1,
                                    warm_start=True).fit(x, y)
    while forest.n_estimators < n_estimators and time.perf_counter() - started < budget:
        forest.set_params(n_estimators=min(forest.n_estimators + 10, n_estimators))
        forest.fit(x, y)
    return forest


def forest_megabytes(forest: Any) -> float:
    """Megabytes of the trees' node and value arrays (what predicting needs)."""
    total = 0
    for tree in forest.estimators_:
        state = tree.tree_.__getstate__()
        total += state["nodes"].nbytes + state["values"].nbytes
    return total / 1e6
