"""MiniBatchKMeans: scikit-learn's estimator contract, inertia near full k-means and scikit-learn's mini-batch."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans
from sklearn.datasets import make_blobs

from pydlr.cluster import KMeans, MiniBatchKMeans, matched_accuracy
from pydlr.errors import InputError


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=20000, n_features=16, centers=8, cluster_std=2.0, random_state=4)
    return x.astype(np.float32), y


def test_passes_scikit_learns_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(MiniBatchKMeans(n_clusters=3, batch_size=32, random_state=0),
                              expected_failed_checks={}, on_fail=None, on_skip=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert failed == {}


def test_inertia_close_to_full_kmeans_and_sklearns_minibatch(blobs):
    x, y = blobs
    ours = MiniBatchKMeans(8, batch_size=512, n_init=3, random_state=0).fit(x)
    full = KMeans(8, n_init=3, random_state=0).fit(x)
    ref = SkMiniBatchKMeans(8, batch_size=512, n_init=3, random_state=0).fit(x)
    assert ours.inertia_ <= full.inertia_ * 1.02
    assert ours.inertia_ <= ref.inertia_ * 1.02
    assert matched_accuracy(y, ours.labels_) > 0.99
    assert 1 <= ours.n_steps_ <= 100 * len(x) // 512 and ours.n_iter_ >= 1
    # labels_ and inertia_ come from a full pass with the final centers.
    np.testing.assert_array_equal(ours.predict(x), ours.labels_)
    assert ours.score(x) == pytest.approx(-ours.inertia_, rel=1e-4)
    assert ours.withinss_.sum() == pytest.approx(ours.inertia_, rel=1e-4)


def test_float64_input_and_given_centers(blobs):
    x, _ = blobs
    start = x[:8].astype(np.float64)
    a = MiniBatchKMeans(8, init=start, batch_size=256, random_state=1).fit(x.astype(np.float64))
    b = MiniBatchKMeans(8, init=start, batch_size=256, random_state=1).fit(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.transform(x[:3].astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize(("params", "argument"), [
    ({"batch_size": 0}, "batch_size"), ({"max_no_improvement": 0}, "max_no_improvement"),
    ({"init_size": 0}, "init_size"), ({"n_clusters": 0}, "n_clusters"),
])
def test_bad_parameters(params, argument):
    with pytest.raises(InputError, match=argument):
        MiniBatchKMeans(**params).fit(np.random.default_rng(0).random((50, 2)))
    with pytest.raises(InputError, match="`X`"):
        MiniBatchKMeans(2).fit(np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]))
