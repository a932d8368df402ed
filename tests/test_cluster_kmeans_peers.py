"""compare_kmeans: pydlr, scikit-learn and R's stats::kmeans from the same starting centers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs

from pydlr.cluster import compare_kmeans
from pydlr.cluster.kmeans_peers import KMEANS_COLUMNS
from pydlr.errors import InputError


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data, d.target


def test_same_starts_give_the_same_lloyd_result(digits):
    x, y = digits
    table = compare_kmeans(x, 10, y, n_init=2, methods=["pydlr", "scikit-learn"], random_state=3)
    assert list(table.columns) == KMEANS_COLUMNS
    assert list(table["method"]) == ["pydlr", "scikit-learn"]
    # Lloyd from the same centers: same iterations, inertia and partition (float32 vs float64 sums aside).
    assert table["iterations"].nunique() == 1
    assert table["inertia"][0] == pytest.approx(table["inertia"][1], rel=1e-4)
    assert table["ARI"][0] == pytest.approx(table["ARI"][1], abs=1e-3)
    assert (table["ARI"] > 0.5).all() and (table["NMI"] > 0.6).all() and (table["seconds"] > 0).all()


def test_without_labels_scores_are_nan_and_given_centers_are_used():
    x, _ = make_blobs(300, n_features=3, centers=3, random_state=0)
    start = x[[0, 1, 2]]
    table = compare_kmeans(x, 3, init=start, methods="scikit-learn")
    assert len(table) == 1 and np.isnan(table["ARI"][0]) and np.isnan(table["NMI"][0])


def test_r_rows_run_from_the_same_centers(digits):
    pytest.importorskip("rpy2")
    import pydlr.r

    try:
        pydlr.r.robjects()
    except Exception as exc:  # noqa: BLE001 - R or the R package missing: the R rows cannot run here
        pytest.skip(f"R through rpy2 is not available: {exc}")
    x, y = digits
    table = compare_kmeans(x, 10, y, methods=["scikit-learn", "R Lloyd", "R Hartigan-Wong"], random_state=0)
    sk, lloyd, hw = table["inertia"]
    assert lloyd == pytest.approx(sk, rel=1e-6)  # Lloyd is Lloyd, in R as in scikit-learn
    assert hw <= lloyd * 1.01  # Hartigan-Wong reaches a local optimum at least as good, typically
    assert table["iterations"][1] == table["iterations"][0]


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"x": np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 2.0]])}, "`x`"),
    ({"x": np.array([[1.0, np.inf], [0.0, 1.0], [2.0, 2.0]])}, "`x`"),
    ({"x": np.array([["a", "b"]] * 3)}, "`x`"),
    ({"x": np.zeros((0, 2))}, "`x`"),
    ({"k": 0}, "`k`"),
    ({"k": 3, "x": np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])}, "`k`"),
    ({"y": [0, 1]}, "`y`"),
    ({"methods": ["faiss"]}, "`methods`"),
    ({"init": "kmeans||"}, "`init`"),
    ({"init": np.zeros((3, 5))}, "`init`"),
])
def test_bad_input(kwargs, argument):
    args = {"x": np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), "k": 2, **kwargs}
    with pytest.raises(InputError, match=argument):
        compare_kmeans(**args)
