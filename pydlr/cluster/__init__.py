"""Clustering: k-means in torch, its scores against known classes, and comparison tables.

``compare_methods`` (k-means beside classic classifiers and a CNN) lives in ``pydlr.compare``: it trains a
network, and cluster/ never imports the training engine."""

from pydlr.cluster._kmeans import KMeans, NotFittedError
from pydlr.cluster.kmeans_peers import KMEANS_METHODS, compare_kmeans
from pydlr.cluster.methods import METHODS, MethodComparison
from pydlr.cluster.metrics import (
    adjusted_rand_index,
    compare,
    matched_accuracy,
    normalized_mutual_info,
    total_sum_of_squares,
)
from pydlr.cluster.minibatch import MiniBatchKMeans

__all__ = [
    "KMEANS_METHODS",
    "KMeans",
    "METHODS",
    "MethodComparison",
    "MiniBatchKMeans",
    "NotFittedError",
    "adjusted_rand_index",
    "compare",
    "compare_kmeans",
    "matched_accuracy",
    "normalized_mutual_info",
    "total_sum_of_squares",
]
