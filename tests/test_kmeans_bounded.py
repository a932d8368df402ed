"""Lloyd with Hamerly's bounds (algorithm="hamerly", the CPU default) against the plain step (algorithm="lloyd"):
the same labels at every iteration, the same centers, inertia and iteration counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pydlr import ops
from pydlr.cluster import KMeans
from pydlr.errors import InputError


@pytest.fixture(scope="module")
def fashion() -> np.ndarray:
    from pydlr.data.datasets import load_fashion_mnist

    try:
        (x, _), _ = load_fashion_mnist()
    except InputError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return x[:3000].reshape(3000, -1).astype(np.float32)


def _both(x: np.ndarray, start: np.ndarray, **params) -> tuple[KMeans, KMeans]:
    plain = KMeans(len(start), init=start, algorithm="lloyd", **params).fit(x)
    bounded = KMeans(len(start), init=start, algorithm="hamerly", **params).fit(x)
    return plain, bounded


def _assert_same(plain: KMeans, bounded: KMeans, rtol: float = 0.0, inertia_rtol: float = 1e-12) -> None:
    assert bounded.n_iter_ == plain.n_iter_
    np.testing.assert_array_equal(bounded.labels_, plain.labels_)
    np.testing.assert_allclose(bounded.cluster_centers_, plain.cluster_centers_, rtol=rtol, atol=0)
    assert bounded.inertia_ == pytest.approx(plain.inertia_, rel=inertia_rtol)
    np.testing.assert_allclose(bounded.withinss_, plain.withinss_, rtol=inertia_rtol)
    assert bounded.totss_ == pytest.approx(plain.totss_, rel=1e-12)


def _plain_labels(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    labels = torch.full((x.shape[0],), -1, dtype=torch.int64)
    ops.kmeans_step(x, (x * x).sum(dim=1), centers, labels, torch.empty(x.shape[0], dtype=x.dtype), False)
    return labels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_iteration_labels_match_the_plain_step_and_rows_are_skipped(fashion, dtype) -> None:
    # The kernel driven by hand: after every bounded step, the plain step from the same centers gives the same
    # labels; and the bounds do their job: late iterations compute the distances of a minority of the rows.
    x = torch.from_numpy(fashion).to(dtype)
    n, d = x.shape
    k = 10
    centers = x[torch.arange(0, 10 * 97, 97)].clone()
    labels = torch.full((n,), -1, dtype=torch.int64)
    upper, lower, norms = (torch.empty(n, dtype=torch.float64) for _ in range(3))
    sums, counts = torch.zeros(k, d, dtype=torch.float64), torch.zeros(k, dtype=torch.int64)
    moved = torch.zeros(k, dtype=torch.float64)
    evaluated = []
    for _ in range(25):
        changed, rows = ops.kmeans_bounded_step(x, centers, moved, labels, upper, lower, norms, sums, counts)
        evaluated.append(rows)
        torch.testing.assert_close(labels, _plain_labels(x, centers), rtol=0, atol=0)
        # incremental sums and counts equal sums over the current labels
        ref = torch.zeros(k, d, dtype=torch.float64).index_add_(0, labels, x.double())
        torch.testing.assert_close(sums, ref, rtol=1e-12, atol=1e-6)
        torch.testing.assert_close(counts, torch.bincount(labels, minlength=k), rtol=0, atol=0)
        new = (sums / counts.unsqueeze(1)).to(dtype)
        moved = (new.double() - centers.double()).square().sum(dim=1).sqrt() * (1 + 1e-12)
        centers = new
        if changed == 0:
            break
    assert evaluated[0] == n
    assert max(evaluated[-5:]) < n // 3, evaluated


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_own_center_distances_are_the_plain_steps(fashion, dtype) -> None:
    x = torch.from_numpy(fashion).to(dtype)
    x_sq = (x * x).sum(dim=1)
    centers = x[:10] + 0.5
    labels = torch.full((x.shape[0],), -1, dtype=torch.int64)
    plain = torch.empty(x.shape[0], dtype=dtype)
    ops.kmeans_step(x, x_sq, centers, labels, plain, False)
    own = torch.empty_like(plain)
    ops.kmeans_own_dists(x, x_sq, centers, labels, own)
    assert torch.equal(own, plain)  # the inertia of both algorithms is the same number
    other = (labels + 3) % 10
    ops.kmeans_own_dists(x, x_sq, centers, other, own)
    ref = ((x.double() - centers.double()[other]) ** 2).sum(dim=1)
    torch.testing.assert_close(own.double(), ref, rtol=1e-5, atol=20.0)
    with pytest.raises(RuntimeError, match="labels must lie in"):
        ops.kmeans_own_dists(x, x_sq, centers, other + 10, own)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fashion_fits_are_identical_at_every_iteration_count(fashion, dtype) -> None:
    x = fashion.astype(dtype)
    start = x[np.arange(0, 10 * 131, 131)]
    for max_iter in (1, 2, 3, 5, 8, 13, 21, 300):
        _assert_same(*_both(x, start, max_iter=max_iter, tol=0.0))
    _assert_same(*_both(x, start, max_iter=300, tol=1e-4))


def test_many_clusters_without_the_center_separation_test(fashion) -> None:
    # k > n / 64: the kernel skips its center-to-center distances and tests rows on their lower bound alone.
    x = fashion[:3000]
    start = x[np.arange(0, 3000, 30)]
    for max_iter in (2, 6, 300):
        _assert_same(*_both(x, start, max_iter=max_iter, tol=0.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_plusplus_and_n_init_give_the_same_fit(fashion, dtype) -> None:
    x = fashion[:1500].astype(dtype)
    plain = KMeans(6, n_init=3, random_state=7, algorithm="lloyd").fit(x)
    for algorithm in ("hamerly", "auto"):
        _assert_same(plain, KMeans(6, n_init=3, random_state=7, algorithm=algorithm).fit(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_duplicates_and_empty_clusters(dtype) -> None:
    # Small integers: every sum is exact in both paths, so the centers agree bit for bit and so must the labels,
    # including rows exactly halfway between two centers (first index wins in both).
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 4, size=(400, 3)).astype(dtype)
    x = np.concatenate([grid, grid[:50], np.zeros((30, 3), dtype)])  # duplicate rows
    starts = [
        np.array([[0, 0, 0], [2, 0, 0], [1, 0, 0], [40, 40, 40]], dtype),  # ties at x = 1; a far, empty center
        np.array([[1, 1, 1], [1, 1, 1], [2, 2, 2]], dtype),  # duplicate centers: one empties, then is relocated
        np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [3, 3, 3]], dtype),
    ]
    for start in starts:
        for max_iter in (1, 2, 4, 300):
            _assert_same(*_both(x, start, max_iter=max_iter, tol=0.0))


def test_float64_general_data_matches_to_rounding() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(loc, 1.0, (700, 9)) for loc in (0.0, 2.5, 5.0, 1e3)]) + 1e4
    start = x[rng.choice(len(x), 7, replace=False)]
    for max_iter in (1, 3, 300):
        # The sums differ in their last bits (summed in another order), so do the centers; the distances come
        # from ||x||^2 - 2 x.c + ||c||^2 with ||x||^2 ~ 1e9, where a last-bit change of a center moves a
        # distance by ~1e-7: the inertia agrees to ~1e-9, the per-cluster sums of ~700 rows to ~1e-8.
        _assert_same(*_both(x, start, max_iter=max_iter, tol=0.0), rtol=1e-12, inertia_rtol=1e-7)


def test_float32_general_data_gives_the_same_centers() -> None:
    # Both algorithms sum float rows in float64, so the float32 centers agree although the sums are added in
    # another order; with float32 block sums in the plain step, centers differed in their last bits and the
    # inertia in its 7th digit on this kind of data.
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(loc, 1.0, (3000, 16)) for loc in (0.0, 1.5, 3.0, 4.5)]).astype(np.float32)
    start = x[rng.choice(len(x), 8, replace=False)]
    for max_iter in (1, 4, 300):
        _assert_same(*_both(x, start, max_iter=max_iter, tol=0.0), inertia_rtol=1e-9)


def test_one_cluster_and_one_row() -> None:
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    _assert_same(*_both(x, x[:1], max_iter=5, tol=0.0))
    _assert_same(*_both(x[:1], x[:1], max_iter=5, tol=0.0))


def test_algorithm_is_checked() -> None:
    with pytest.raises(InputError, match="algorithm"):
        KMeans(2, algorithm="elkan").fit(np.eye(3))
    with pytest.raises(InputError, match="algorithm"):
        KMeans(2, algorithm=None).fit(np.eye(3))
    assert KMeans().get_params()["algorithm"] == "auto"
