"""pydlr.r: Python drives R through rpy2 on the bridge's Arrow path (R runs inside the test process)."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from pydlr.errors import InputError


@pytest.fixture(scope="module")
def pr():
    import pydlr.r

    pydlr.r.robjects()  # starts R and loads the R package pydlr
    return pydlr.r


def _r_true(pr, code, **values) -> bool:
    f = pr.r(f"function({', '.join(values)}) isTRUE({code})")
    return bool(f(*values.values())[0])


def test_numpy_to_r_keeps_dims_values_and_order(pr):
    c = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    assert _r_true(pr, "identical(x, array(c(0, 12, 4, 16, 8, 20, 1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22, "
                       "3, 15, 7, 19, 11, 23), c(2, 3, 4)))", x=pr.to_r(c))
    m = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    assert _r_true(pr, "identical(x, matrix(c(1L, 4L, 2L, 5L, 3L, 6L), 2, 3))", x=pr.to_r(m))
    assert _r_true(pr, "identical(x, matrix(c(1L, 4L, 2L, 5L, 3L, 6L), 2, 3))", x=pr.to_r(np.asfortranarray(m)))
    assert _r_true(pr, "identical(x, c(TRUE, FALSE))", x=pr.to_r(np.array([True, False])))


def test_from_r_views_r_memory_without_copy(pr):
    rx = pr.r("matrix(as.double(1:6), 2, 3)")
    v = pr.from_r(rx)
    assert v.shape == (2, 3) and v.flags.f_contiguous and not v.flags.writeable
    assert v.ctypes.data == pr.data_address(rx)
    np.testing.assert_array_equal(v, [[1, 3, 5], [2, 4, 6]])
    ri = pr.r("c(5L, 6L, 7L)")
    vi = pr.from_r(ri)
    assert vi.dtype == np.int32 and vi.ctypes.data == pr.data_address(ri)
    t = pr.from_r(rx, as_="torch")
    assert t.data_ptr() == pr.data_address(rx)
    np.testing.assert_array_equal(pr.from_r(pr.r("c(1L, NA)")), [1.0, np.nan])  # NA: float64 with NaN
    np.testing.assert_array_equal(pr.from_r(pr.r("c(TRUE, FALSE)")), [True, False])


def test_r_objects_are_released_when_python_drops_views(pr):
    gc.collect()
    base = pr.live_count()
    views = [pr.from_r(pr.r(f"as.double(1:{k + 10})")) for k in range(5)]
    assert pr.live_count() == base + 5
    del views
    gc.collect()
    assert pr.live_count() == base


def test_data_frame_round_trip_through_pandas_is_exact(pr):
    rdf = pr.r(
        'data.frame(x = c(1.5, NA, 3), f = factor(c("b", NA, "a"), levels = c("b", "a", "zz")),'
        ' s = c("\u00e9t\u00e9", NA, "\u65e5\u672c"), d = as.Date(c("2020-01-01", NA, "1969-12-31")),'
        ' l = c(TRUE, NA, FALSE), i = c(1L, NA, 3L), stringsAsFactors = FALSE)'
    )
    pdf = pr.from_r(rdf, as_="pandas")
    assert list(pdf.columns) == ["x", "f", "s", "d", "l", "i"]
    assert list(pdf["f"].cat.categories) == ["b", "a", "zz"]
    assert pdf["s"].iloc[0] == "\u00e9t\u00e9" and pd.isna(pdf["s"].iloc[1])
    back = pr.to_r(pdf)
    # pandas holds the integer column as float64 (NaN for NA): compare it as double in R
    assert _r_true(pr, "identical(transform(a, i = as.double(i)), b)", a=rdf, b=back)
    batch = pr.from_r(rdf)
    assert batch.num_rows == 3 and batch.column(0).null_count == 1


def test_call_runs_r_functions_on_numpy_data(pr):
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(pr.call("colSums", x), x.sum(axis=0))
    np.testing.assert_array_equal(pr.call("function(m, k) m * k", x, 2.0), x * 2)


def test_kmeans_with_r_stats_on_numpy_matrix(pr):
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    x = np.vstack([rng.normal(c, 0.5, size=(40, 2)) for c in centers])
    fit = pr.kmeans(x, 3, n_init=3, seed=1)
    labels = fit["labels"]
    assert labels.shape == (120,) and labels.min() == 0 and labels.max() == 2
    for g in range(3):  # each true blob is exactly one cluster
        assert len(set(labels[g * 40:(g + 1) * 40])) == 1
    assert len(set(labels)) == 3
    inertia = sum(((x[labels == k] - fit["cluster_centers"][k]) ** 2).sum() for k in range(3))
    assert fit["inertia"] == pytest.approx(inertia, rel=1e-10)
    assert fit["ifault"] == 0 and fit["n_iter"] >= 1
    with pytest.raises(InputError, match="n_clusters"):
        pr.kmeans(x, 0)


def test_bad_input_raises_and_r_survives(pr):
    with pytest.raises(InputError, match="torch tensor, NumPy array"):
        pr.to_r([1, 2, 3])
    from rpy2.rinterface_lib.embedded import RRuntimeError

    with pytest.raises(RRuntimeError, match="column `l` is a list"):
        pr.from_r(pr.r("data.frame(a = 1:2, l = I(list(1, 'x')))"))
    with pytest.raises(RRuntimeError, match="R type 'complex'"):
        pr.from_r(pr.r("complex(real = 1, imaginary = 2)"))
    assert _r_true(pr, "identical(x, c(1, 2))", x=pr.to_r(np.array([1.0, 2.0])))


def test_r_list_results_convert_to_dicts(pr):
    x = np.random.default_rng(0).normal(size=(60, 2))
    fit = pr.call("kmeans", x, centers=3)
    assert isinstance(fit, dict)
    assert set(fit) == {"cluster", "centers", "totss", "withinss", "tot.withinss", "betweenss", "size",
                        "iter", "ifault"}
    assert sorted(np.unique(fit["cluster"]).tolist()) == [1, 2, 3] and fit["centers"].shape == (3, 2)
    assert isinstance(fit["tot.withinss"], float) and isinstance(fit["iter"], int)
    assert fit["tot.withinss"] == pytest.approx(float(np.sum(fit["withinss"])))
    assert pr.call("list", 1.5, "a", None) == [1.5, "a", None]  # unnamed: a list; NULL: None
    nested = pr.from_r(pr.r("list(a = 1:3, b = list(c = 'x', f = function(v) v + 1))"))
    assert nested["a"].tolist() == [1, 2, 3] and nested["b"]["c"] == "x"
    assert pr.from_r(nested["b"]["f"](2.0)).tolist() == [3.0]  # an R function comes back callable
    assert pr.from_r(pr.r("NULL")) is None


def test_r_errors_carry_rs_message(pr):
    from rpy2.rinterface_lib.embedded import RRuntimeError

    with pytest.raises(RRuntimeError, match="^Error: boom$"):
        pr.r("stop('boom')")
    with pytest.raises(RRuntimeError, match="Error in log\\(-1\\)|NaNs|non-numeric"):
        pr.call("log", "a")
