"""pydlr.cluster: KMeans against scikit-learn's, the metrics against known values and sklearn's ARI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from pydlr.cluster import KMeans, NotFittedError, adjusted_rand_index, compare, matched_accuracy
from pydlr.errors import InputError


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=3000, n_features=12, centers=6, cluster_std=2.5, random_state=3)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.data.astype(np.float32), data.target


def test_inertia_within_one_percent_of_sklearn_on_blobs(blobs):
    x, y = blobs
    ours = KMeans(6, n_init=3, random_state=0).fit(x)
    ref = SkKMeans(6, init="k-means++", n_init=3, random_state=0).fit(x)
    assert abs(ours.inertia_ / ref.inertia_ - 1) < 0.01
    # The same partition as scikit-learn's, and the true one, up to label names.
    assert adjusted_rand_index(ref.labels_, ours.labels_) > 0.99
    assert matched_accuracy(y, ours.labels_) > 0.99
    # inertia_ is the sum of squared distances to the reported centers.
    direct = ((x.astype(np.float64) - ours.cluster_centers_[ours.labels_]) ** 2).sum()
    assert ours.inertia_ == pytest.approx(direct, rel=1e-5)
    per_cluster = [((x[ours.labels_ == j] - ours.cluster_centers_[j]) ** 2).sum() for j in range(6)]
    np.testing.assert_allclose(ours.withinss_, per_cluster, rtol=1e-5)


def test_inertia_not_worse_than_sklearn_on_digits(digits):
    x, _ = digits
    ours = KMeans(10, n_init=4, random_state=1).fit(x)
    ref = SkKMeans(10, init="k-means++", n_init=4, random_state=1).fit(x)
    assert ours.inertia_ <= ref.inertia_ * 1.01
    assert 1 <= ours.n_iter_ <= 300


def test_given_centers_match_sklearn_lloyd_exactly(digits):
    x, _ = digits
    start = x[:: len(x) // 10][:10].copy()
    ours = KMeans(10, init=start, random_state=0).fit(x)
    ref = SkKMeans(10, init=start, n_init=1, algorithm="lloyd").fit(x)
    assert adjusted_rand_index(ref.labels_, ours.labels_) == 1.0
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-4, atol=1e-3)


def test_predict_transform_fit_predict_agree(blobs):
    x, _ = blobs
    km = KMeans(6, random_state=0)
    labels = km.fit_predict(x)
    np.testing.assert_array_equal(km.predict(x), labels)
    distances = km.transform(x[:100])
    assert distances.shape == (100, 6)
    np.testing.assert_array_equal(distances.argmin(axis=1), labels[:100])
    assert km.score(x) == pytest.approx(-km.inertia_, rel=1e-5)
    assert km.labels_.dtype == np.int64 and km.cluster_centers_.shape == (6, 12)
    assert km.n_features_in_ == 12 and km.device_ == "cpu"


def test_random_state_reproducible_and_seeds_differ(digits):
    x, _ = digits
    a = KMeans(10, random_state=7).fit(x)
    b = KMeans(10, random_state=7).fit(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_
    c = KMeans(10, init="random", random_state=8).fit(x)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


def test_n_init_keeps_the_best_run(digits):
    x, _ = digits
    singles = [KMeans(10, random_state=s).fit(x).inertia_ for s in range(3)]
    best = KMeans(10, n_init=3, random_state=0).fit(x).inertia_
    assert best <= max(singles)


def test_n_init_auto_is_scikit_learns_count(digits):
    # scikit-learn's default since 1.4, written in most of its examples: one run for k-means++ and given
    # centers, 10 for random seeding (MiniBatchKMeans: 3)
    from pydlr.cluster import MiniBatchKMeans

    x, _ = digits
    for init, runs in (("k-means++", 1), ("random", 10), (x[:10], 1)):
        auto = KMeans(10, init=init, n_init="auto", random_state=0).fit(x)
        counted = KMeans(10, init=init, n_init=runs, random_state=0).fit(x)
        np.testing.assert_array_equal(auto.cluster_centers_, counted.cluster_centers_)
    auto = MiniBatchKMeans(10, init="random", n_init="auto", random_state=0, batch_size=256).fit(x)
    counted = MiniBatchKMeans(10, init="random", n_init=3, random_state=0, batch_size=256).fit(x)
    np.testing.assert_array_equal(auto.cluster_centers_, counted.cluster_centers_)
    assert not np.array_equal(KMeans(10, init="random", n_init=1, random_state=0).fit(x).cluster_centers_,
                              KMeans(10, init="random", n_init="auto", random_state=0).fit(x).cluster_centers_)
    with pytest.raises(InputError, match="n_init"):
        KMeans(10, n_init="best").fit(x)


def test_inputs_tensor_uint8_fortran_readonly_and_empty_cluster_relocation():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(400, 5), dtype=np.uint8)
    from_uint8 = KMeans(3, random_state=0).fit(x)
    from_tensor = KMeans(3, random_state=0).fit(torch.from_numpy(x.astype(np.float32)))
    np.testing.assert_array_equal(from_uint8.labels_, from_tensor.labels_)
    column_major = np.asfortranarray(x.astype(np.float64))  # as R's matrices arrive through the bridge
    column_major.setflags(write=False)
    from_r_layout = KMeans(3, random_state=0).fit(column_major)
    np.testing.assert_array_equal(from_r_layout.labels_, from_uint8.labels_)
    # R's call: column-major doubles computed in float32 (the native transpose), bit-equal to row-major ones
    r_call = KMeans(3, random_state=0, dtype="float32").fit(column_major)
    row_major = KMeans(3, random_state=0, dtype="float32").fit(np.ascontiguousarray(column_major))
    np.testing.assert_array_equal(r_call.cluster_centers_, row_major.cluster_centers_)
    np.testing.assert_array_equal(r_call.labels_, row_major.labels_)
    assert r_call.inertia_ == row_major.inertia_
    # Two identical starting centers: one cluster starts empty and must be re-seeded, not NaN.
    start = np.stack([x[0], x[0], x[1]]).astype(np.float32)
    km = KMeans(3, init=start).fit(x)
    assert np.isfinite(km.cluster_centers_).all()
    assert len(np.unique(km.labels_)) == 3


def test_estimator_protocol():
    km = KMeans(n_clusters=-1, tol="nonsense")  # __init__ only stores
    assert km.get_params()["n_clusters"] == -1
    km.set_params(n_clusters=4, tol=1e-3)
    assert km.get_params()["n_clusters"] == 4 and km.tol == 1e-3
    copy = clone(KMeans(5, n_init=2, random_state=3))
    assert copy.get_params() == KMeans(5, n_init=2, random_state=3).get_params()
    assert repr(KMeans(5, random_state=3)) == "KMeans(n_clusters=5, random_state=3)"
    with pytest.raises(InputError, match="n_jobs"):
        km.set_params(n_jobs=2)


@pytest.mark.parametrize(
    ("params", "argument"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": "3"}, "n_clusters"),
        ({"n_clusters": 3, "init": "bogus"}, "init"),
        ({"n_clusters": 3, "n_init": 0}, "n_init"),
        ({"n_clusters": 3, "max_iter": 2.5}, "max_iter"),
        ({"n_clusters": 3, "tol": -1.0}, "tol"),
        ({"n_clusters": 3, "random_state": "seed"}, "random_state"),
        ({"n_clusters": 3, "init": np.zeros((2, 4))}, "init"),
    ],
)
def test_bad_parameters_raise_input_error_at_fit(params, argument):
    x = np.random.default_rng(0).normal(size=(50, 4))
    km = KMeans(**params)
    with pytest.raises(InputError) as info:
        km.fit(x)
    assert info.value.argument == argument
    assert not hasattr(km, "labels_")


def test_bad_data_raise_input_error():
    with pytest.raises(InputError, match="2-d"):
        KMeans(2).fit(np.arange(10.0))
    with pytest.raises(InputError, match="finite"):
        KMeans(2).fit(np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 2.0]]))
    with pytest.raises(InputError, match="at least n_clusters=5"):
        KMeans(5).fit(np.ones((3, 2)))
    with pytest.raises(InputError, match="numeric"):
        KMeans(2).fit(np.array([["a", "b"], ["c", "d"]]))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device"):
            KMeans(2, device="cuda").fit(np.ones((4, 2)))
    with pytest.raises(InputError, match='`device` must be "auto", "cpu" or "cuda"'):  # torch's own error before
        KMeans(2, device="mps").fit(np.ones((4, 2)))
    with pytest.raises(InputError, match="device"):
        KMeans(2, device=f"cuda:{torch.cuda.device_count() + 7}").fit(np.ones((4, 2)))
    km = KMeans(2, random_state=0)
    with pytest.raises(NotFittedError):
        km.predict(np.ones((3, 2)))
    km.fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(InputError, match="3 features"):
        km.predict(np.ones((3, 2)))


def test_matched_accuracy_known_values():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    permuted = np.array([2, 0, 1])[y]  # the same partition, other names
    assert matched_accuracy(y, permuted) == 1.0
    assert matched_accuracy(["a", "a", "b"], [5, 5, 9]) == 1.0
    # Clusters 1->0 (2 right), 2->2 (2 right), 0->1 (1 right): 5 of 7.
    assert matched_accuracy(y, np.array([1, 1, 0, 2, 2, 2, 0])) == pytest.approx(5 / 7)
    # More clusters than classes: the unmatched cluster's samples count as errors.
    assert matched_accuracy([0, 0, 1, 1], [0, 1, 2, 2]) == pytest.approx(3 / 4)
    with pytest.raises(InputError, match="as many as y_true"):
        matched_accuracy([0, 1], [0, 1, 1])


def test_adjusted_rand_index_equals_sklearn():
    rng = np.random.default_rng(0)
    for n, ka, kb in [(50, 3, 3), (500, 10, 7), (200, 2, 20)]:
        a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
        mixed = np.where(rng.random(n) < 0.7, a, rng.integers(0, ka, n))
        assert adjusted_rand_index(a, mixed) == pytest.approx(adjusted_rand_score(a, mixed), abs=1e-12)
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert adjusted_rand_index([0, 0, 0], [0, 0, 0]) == adjusted_rand_score([0, 0, 0], [0, 0, 0])
    assert adjusted_rand_index([0, 1, 2], [0, 1, 2]) == adjusted_rand_score([0, 1, 2], [0, 1, 2])
    assert adjusted_rand_index([0, 0, 1, 2], [0, 1, 1, 1]) == pytest.approx(
        adjusted_rand_score([0, 0, 1, 2], [0, 1, 1, 1])
    )


def test_compare_builds_a_table(blobs):
    x, y = blobs
    km = KMeans(6, random_state=0).fit(x)
    table = compare({"pydlr": {"labels": km.labels_, "seconds": 0.5}, "truth": y}, y_true=y)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["method", "accuracy", "ARI", "NMI", "seconds"]
    assert list(table["method"]) == ["pydlr", "truth"]
    assert table.loc[1, "accuracy"] == 1.0 and table.loc[1, "ARI"] == 1.0 and table.loc[1, "NMI"] == 1.0
    assert table.loc[0, "NMI"] == pytest.approx(normalized_mutual_info_score(y, km.labels_))
    assert table.loc[0, "seconds"] == 0.5 and np.isnan(table.loc[1, "seconds"])
    listed = compare([{"method": "km", "labels": km.labels_}], y)
    assert listed.loc[0, "ARI"] == pytest.approx(adjusted_rand_score(y, km.labels_))
    with pytest.raises(InputError, match="labels"):
        compare({"bad": {"seconds": 1.0}}, y)
    with pytest.raises(InputError, match="method"):
        compare([{"labels": y}], y)


def test_total_sum_of_squares_in_float64_on_any_layout():
    from pydlr.cluster import total_sum_of_squares

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 7)) * 1e3 + 1e4  # a large mean: a naive sum(x^2) - n*mean^2 loses digits
    expected = float(((x - x.mean(axis=0)) ** 2).sum())
    for data in (x, np.asfortranarray(x), x.astype(np.int64), x[::-1]):
        got = total_sum_of_squares(data)
        want = expected if data.dtype == np.float64 else float(((data - data.mean(axis=0)) ** 2).sum())
        assert abs(got - want) <= 1e-10 * want
    with pytest.raises(InputError, match="`X`"):
        total_sum_of_squares(np.zeros((0, 3)))


# ---- a proper scikit-learn estimator: pipelines, model selection, scikit-learn's own checks ----
def test_passes_scikit_learns_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    # None waived: check_array_api_input is skipped by scikit-learn itself unless SCIPY_ARRAY_API is set.
    results = check_estimator(KMeans(n_clusters=3, random_state=0), expected_failed_checks={},
                              on_fail=None, on_skip=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert failed == {}
    assert sum(r["status"] == "passed" for r in results) >= 45


def test_works_in_pipeline_grid_search_and_cross_val_score(blobs):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = blobs
    pipe = make_pipeline(StandardScaler(), KMeans(6, random_state=0)).fit(x)
    assert matched_accuracy(y, pipe.predict(x)) > 0.99
    assert pipe.transform(x[:5]).shape == (5, 6)
    assert list(pipe.get_feature_names_out()) == [f"kmeans{i}" for i in range(6)]
    scores = cross_val_score(KMeans(6, random_state=0), x, cv=3)
    assert np.isfinite(scores).all() and (scores < 0).all()
    search = GridSearchCV(KMeans(random_state=0), {"n_clusters": [2, 6]}, cv=3).fit(x)
    assert search.best_params_ == {"n_clusters": 6}  # the higher score (lower inertia)
    assert KMeans().__sklearn_tags__().estimator_type == "clusterer"


def test_dataframe_columns_and_non_numeric_data():
    frame = pd.DataFrame({"a": [0.0, 0.1, 5.0, 5.1], "b": [0.0, 0.2, 5.0, 5.2]})
    km = KMeans(2, random_state=0).fit(frame)
    assert list(km.feature_names_in_) == ["a", "b"]
    with pytest.raises(ValueError, match="feature names should match"):
        km.predict(frame.rename(columns={"a": "c"}))
    with pytest.warns(UserWarning, match="fitted with feature names"):
        km.predict(frame.to_numpy())
    objects = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], dtype=object)
    assert KMeans(2, random_state=0).fit(objects).labels_.shape == (3,)
    objects[0, 0] = {"x": 1}
    with pytest.raises(InputError, match="must be a string or a real number") as info:
        KMeans(2).fit(objects)
    assert isinstance(info.value, TypeError) and info.value.argument == "X"
    with pytest.raises(InputError, match="Reshape your data"):
        km.predict(np.ones(2))


def test_fewer_distinct_points_than_clusters_warns_as_scikit_learn():
    # An empty cluster (its center a copy of another's) came back without a word; scikit-learn warns.
    from sklearn.exceptions import ConvergenceWarning

    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(2\) found smaller than n_clusters \(3\)"):
        km = KMeans(3, random_state=0, n_init=1).fit(x)
    assert sorted(np.bincount(km.labels_, minlength=3)) == [0, 10, 10]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        KMeans(2, random_state=0, n_init=1).fit(x)
