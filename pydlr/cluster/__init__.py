"""Clustering: k-means in torch, its scores against known classes, and comparison tables."""

from pydlr.cluster._kmeans import KMeans, NotFittedError
from pydlr.cluster.metrics import (
    adjusted_rand_index,
    compare,
    matched_accuracy,
    total_sum_of_squares,
)

__all__ = [
    "KMeans",
    "NotFittedError",
    "adjusted_rand_index",
    "compare",
    "matched_accuracy",
    "total_sum_of_squares",
]
