"""Clustering: k-means in torch, its scores against known classes, and comparison tables."""

from pydlr.cluster._kmeans import KMeans, NotFittedError
from pydlr.cluster.compare import METHODS, MethodComparison, compare_methods
from pydlr.cluster.metrics import (
    adjusted_rand_index,
    compare,
    matched_accuracy,
    normalized_mutual_info,
    total_sum_of_squares,
)

__all__ = [
    "KMeans",
    "METHODS",
    "MethodComparison",
    "NotFittedError",
    "adjusted_rand_index",
    "compare",
    "compare_methods",
    "matched_accuracy",
    "normalized_mutual_info",
    "total_sum_of_squares",
]
