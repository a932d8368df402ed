"""The native k-means kernels (native/kmeans_cpu.cpp) against plain NumPy references in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SkKMeans

from pydlr import ops
from pydlr.cluster import KMeans


def _reference_step(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, squared distances, per-cluster sums and counts, from explicit differences in float64."""
    dist = ((x[:, None, :].astype(np.float64) - c[None, :, :].astype(np.float64)) ** 2).sum(axis=2)
    labels = dist.argmin(axis=1)
    sums = np.zeros(c.shape, dtype=np.float64)
    np.add.at(sums, labels, x.astype(np.float64))
    return labels, dist[np.arange(len(x)), labels], sums, np.bincount(labels, minlength=len(c))


def _run_step(x: np.ndarray, c: np.ndarray, previous: np.ndarray | None = None):
    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    labels = torch.from_numpy(previous.copy()) if previous is not None else torch.full((len(x),), -1)
    min_dist = torch.empty(len(x), dtype=xt.dtype)
    sums, counts, changed = ops.kmeans_step(xt, (xt * xt).sum(dim=1), ct, labels, min_dist, True)
    return labels.numpy(), min_dist.numpy(), sums.numpy(), counts.numpy(), changed


# n: not multiples of the 4-row blocks, of the 1024-row flushes, or of the per-thread slabs; d: below, at and
# past the vector widths (8 doubles, 16 floats); k: one center, and more than one group of at most 6 centers.
@pytest.mark.parametrize(("n", "d", "k"), [(1, 1, 1), (5, 1, 3), (37, 3, 1), (257, 17, 7), (1031, 16, 13),
                                           (4099, 33, 10), (2053, 8, 6)])
def test_float64_step_matches_reference(n: int, d: int, k: int) -> None:
    rng = np.random.default_rng(n + d + k)
    x = rng.normal(size=(n, d))
    c = x[rng.choice(n, k, replace=False)] + rng.normal(scale=0.01, size=(k, d)) if k <= n else rng.normal(size=(k, d))
    labels, min_dist, sums, counts, changed = _run_step(x, c)
    ref_labels, ref_dist, ref_sums, ref_counts = _reference_step(x, c)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(min_dist, ref_dist, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(counts, ref_counts)
    assert changed == n  # every label changed from -1


def test_changed_counts_only_moved_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(999, 5))
    c = rng.normal(size=(4, 5))
    ref_labels = _reference_step(x, c)[0]
    previous = ref_labels.copy()
    previous[:17] = (previous[:17] + 1) % 4
    assert _run_step(x, c, previous)[4] == 17


@pytest.mark.parametrize(("n", "d", "k"), [(3001, 784, 10), (1029, 20, 3), (7, 1, 1)])
def test_float32_step_matches_reference(n: int, d: int, k: int) -> None:
    rng = np.random.default_rng(d)
    x = rng.normal(size=(n, d)).astype(np.float32)
    c = rng.normal(size=(k, d)).astype(np.float32)
    labels, min_dist, sums, counts, _ = _run_step(x, c)
    dist = ((x[:, None, :].astype(np.float64) - c[None].astype(np.float64)) ** 2).sum(axis=2)
    ref_labels = dist.argmin(axis=1)
    # float32 may swap near-ties only: the chosen center is within float32 rounding of the best one
    ordered = np.sort(dist, axis=1)
    clear = ordered[:, 1] - ordered[:, 0] > 1e-4 * ordered[:, 0] if k > 1 else np.ones(n, bool)
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(labels[clear], ref_labels[clear])
    np.testing.assert_allclose(min_dist, dist[np.arange(n), labels], rtol=1e-4, atol=1e-3)
    ref_sums = np.zeros((k, d))
    np.add.at(ref_sums, labels, x.astype(np.float64))
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(counts, np.bincount(labels, minlength=k))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pp_dists_matches_reference(dtype: type) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1037, 19)).astype(dtype)
    points = x[[3, 500, 1036]].copy()
    closest = rng.uniform(0, 40, size=1037).astype(dtype)
    xt = torch.from_numpy(x)
    mins, pots = ops.kmeans_pp_dists(xt, (xt * xt).sum(dim=1), torch.from_numpy(points), torch.from_numpy(closest))
    dist = ((points[:, None, :].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(axis=2)
    ref = np.minimum(dist, closest.astype(np.float64)[None])
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(mins, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(pots.numpy(), ref.sum(axis=1), rtol=tol)
    assert abs(float(mins[0, 3])) < tol and abs(float(mins[2, 1036])) < tol  # a point is its own nearest


def _numpy_lloyd(x: np.ndarray, centers: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain Lloyd in float64 (no empty clusters on the data used): centers after ``iters`` updates, labels."""
    for _ in range(iters):
        labels = _reference_step(x, centers)[0]
        centers = np.stack([x[labels == j].mean(axis=0) for j in range(len(centers))])
    return centers, _reference_step(x, centers)[0]


def test_float64_fit_computes_in_float64() -> None:
    # An offset of 1e4 with unit-scale structure: float32 keeps ~3 decimals of it, float64 all.
    rng = np.random.default_rng(2)
    x = 1e4 + np.concatenate([rng.normal(0, 1, (300, 4)), rng.normal(3, 1, (300, 4))])
    start = x[[0, 599]].copy()
    fit = KMeans(2, init=start, max_iter=4, tol=0.0).fit(x)
    centers, labels = _numpy_lloyd(x, start, fit.n_iter_)
    assert fit.cluster_centers_.dtype == np.float64
    np.testing.assert_allclose(fit.cluster_centers_, centers, rtol=1e-13)
    np.testing.assert_array_equal(fit.labels_, labels)
    # distances come from ||x||^2 - 2 x.c + ||c||^2 (as scikit-learn's): ||x||^2 ~ 4e8 here, so float64
    # cancellation leaves ~1e-8 per sample; float32 would leave ~10
    assert fit.inertia_ == pytest.approx(((x - centers[labels]) ** 2).sum(), rel=1e-7)
    assert fit.transform(x).dtype == np.float64


def test_same_iterations_as_scikit_learn_from_same_centers() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 12)) + rng.integers(0, 4, size=(2000, 1)) * 3.0
    start = x[rng.choice(2000, 5, replace=False)]
    ours = KMeans(5, init=start, max_iter=6, tol=0.0).fit(x)
    theirs = SkKMeans(5, init=start, n_init=1, max_iter=6, tol=0.0, algorithm="lloyd").fit(x)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-10)


def test_empty_cluster_relocated_as_scikit_learn() -> None:
    # The third start is far from every sample: its cluster is empty after the first assignment; the sample
    # farthest from its center moves there and leaves its old cluster (sums and counts).
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0, 1, (200, 3)), rng.normal(6, 1, (200, 3))])
    start = np.array([[0.0, 0, 0], [6.0, 6, 6], [100.0, 100, 100]])
    for iters in (1, 2, 10):
        ours = KMeans(3, init=start, max_iter=iters, tol=0.0).fit(x)
        theirs = SkKMeans(3, init=start, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd").fit(x)
        np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(ours.labels_, theirs.labels_)
        assert np.bincount(ours.labels_, minlength=3).min() >= 1


def test_kmeans_plusplus_on_one_feature_and_one_cluster() -> None:
    x = np.arange(50, dtype=np.float64).reshape(-1, 1)
    fit = KMeans(1, random_state=0).fit(x)
    np.testing.assert_allclose(fit.cluster_centers_, [[24.5]])
    assert fit.inertia_ == pytest.approx(((x - 24.5) ** 2).sum())
    fit3 = KMeans(3, random_state=0, n_init=3).fit(x)
    # in one dimension Lloyd's clusters are intervals of roughly a third of the points each
    assert np.count_nonzero(np.diff(fit3.labels_)) == 2
    assert min(np.bincount(fit3.labels_)) >= 14


@pytest.mark.parametrize("max_iter", [1, 2, 300])  # stopped early (a final assignment pass) and converged
def test_totss_without_another_pass_matches_two_pass(max_iter: int) -> None:
    from pydlr.cluster import MiniBatchKMeans, total_sum_of_squares

    rng = np.random.default_rng(5)
    x = 50.0 + np.concatenate([rng.normal(0, 1, (500, 6)), rng.normal(4, 2, (700, 6))])
    fit = KMeans(4, max_iter=max_iter, tol=0.0, random_state=0).fit(x)
    assert fit.totss_ == pytest.approx(total_sum_of_squares(x), rel=1e-9)
    assert fit.totss_ == pytest.approx(((x - x.mean(axis=0)) ** 2).sum(), rel=1e-9)
    mini = MiniBatchKMeans(4, batch_size=128, random_state=0).fit(x)
    assert mini.totss_ == pytest.approx(total_sum_of_squares(x), rel=1e-9)


def test_dtype_chooses_the_precision_and_is_checked() -> None:
    from pydlr.errors import InputError

    x = np.random.default_rng(6).normal(size=(200, 3))
    assert KMeans(2, random_state=0).fit(x).cluster_centers_.dtype == np.float64
    assert KMeans(2, random_state=0, dtype="float32").fit(x).cluster_centers_.dtype == np.float32
    assert KMeans(2, random_state=0, dtype="float64").fit(x.astype(np.float32)).cluster_centers_.dtype == np.float64
    assert KMeans(2, random_state=0).fit((x * 10).astype(np.int64)).cluster_centers_.dtype == np.float32
    with pytest.raises(InputError, match="dtype"):
        KMeans(2, dtype="half").fit(x)
    with pytest.raises(InputError, match="dtype"):
        KMeans(2, dtype=["float32"]).fit(x)


def test_torch_path_for_gpus_agrees_with_the_native_kernel() -> None:
    # The GPU route is plain torch: run it on CPU tensors against the native kernel (float64, same inputs).
    from pydlr.cluster._kmeans import _torch_pp_dists, _torch_step

    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.normal(size=(3001, 9)))
    x_sq = (x * x).sum(dim=1)
    c = x[:6].clone()
    previous = torch.from_numpy(rng.integers(0, 6, 3001))
    native, torch_path = [previous.clone(), torch.empty(3001, dtype=x.dtype)], [previous.clone(),
                                                                              torch.empty(3001, dtype=x.dtype)]
    s1, n1, ch1 = ops.kmeans_step(x, x_sq, c, native[0], native[1], True)
    s2, n2, ch2 = _torch_step(x, x_sq, c, torch_path[0], torch_path[1], 1024, True)
    torch.testing.assert_close(torch_path[0], native[0], rtol=0, atol=0)
    torch.testing.assert_close(torch_path[1], native[1], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(s2, s1, rtol=1e-12, atol=1e-9)
    assert n2.tolist() == n1.tolist() and ch2 == ch1
    closest = torch.full((3001,), 5.0, dtype=x.dtype)
    m1, p1 = ops.kmeans_pp_dists(x, x_sq, x[10:13].clone(), closest)
    m2, p2 = _torch_pp_dists(x, x_sq, x[10:13].clone(), closest, 1024)
    torch.testing.assert_close(m2, m1, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(p2, p1, rtol=1e-12, atol=1e-9)
