"""pydlr.compare.compare_methods: k-means, classic classifiers and the seed CNN on a few hundred Fashion-MNIST images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pydlr.cluster.methods import COLUMNS, METHODS, MethodComparison, verdict
from pydlr.compare import compare_methods
from pydlr.errors import InputError

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def fashion():
    from pydlr.data.datasets import load_fashion_mnist

    try:
        (x, y), (xt, yt) = load_fashion_mnist()
    except InputError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return x[:1500], y[:1500], xt[:300], yt[:300]


@pytest.fixture(scope="module")
def table(fashion):
    x, y, xt, yt = fashion
    return compare_methods(x, y, xt, yt, epochs=1, batch_size=8, n_estimators=20, random_state=0)


def test_columns_rows_and_ranges(table):
    assert isinstance(table, pd.DataFrame) and isinstance(table, MethodComparison)
    assert list(table.columns) == COLUMNS
    assert len(table) == len(METHODS)
    assert set(table["kind"]) == {"unsupervised", "supervised", "deep"}
    for column in ("accuracy", "NMI"):
        assert table[column].between(0, 1).all()
    assert table["ARI"].between(-1, 1).all()
    assert (table[["train_seconds", "predict_seconds", "size_mb"]] > 0).all().all()
    # Ten clusters of 784 float32 pixels: 31,360 bytes.
    assert table.loc[table["method"] == "k-means (pixels)", "size_mb"].item() == pytest.approx(0.03136)
    # Every supervised method on pixels is far above chance (0.1) on 300 test images.
    assert (table.loc[table["kind"] == "supervised", "accuracy"] > 0.5).all()


def test_cnn_beats_kmeans_on_pixels(table):
    cnn = table.loc[table["method"] == "CNN", "accuracy"].item()
    kmeans = table.loc[table["method"] == "k-means (pixels)", "accuracy"].item()
    print(table)
    assert cnn > kmeans + 0.05


def test_print_ends_with_a_verdict_and_plot_draws_two_panels(table, tmp_path):
    text = repr(table)
    last = text.strip().splitlines()[-1]
    assert last.startswith("Verdict: ") and "CNN" in last
    assert "k-means (pixels)" in text
    fig = table.plot(features="pixels", path=tmp_path / "pixels.png")
    assert len(fig.axes) == 2 and (tmp_path / "pixels.png").stat().st_size > 1000
    fig = table.plot(projection="tsne", max_points=150)
    assert len(fig.axes[0].collections[0].get_offsets()) == 150
    with pytest.raises(InputError, match="projection"):
        table.plot(projection="umap")


def test_verdict_words():
    rows = pd.DataFrame({"method": ["CNN", "random forest (pixels)"], "kind": ["deep", "supervised"],
                         "accuracy": [0.9, 0.8], "train_seconds": [10.0, 1.0]})
    assert "pays off" in verdict(rows)
    rows["accuracy"] = [0.81, 0.8]
    assert "not needed" in verdict(rows)
    rows["accuracy"] = [0.6, 0.8]
    assert "loses" in verdict(rows)
    # a classic model on the CNN's own embedding is not "without deep learning"
    rows = pd.DataFrame({"method": ["CNN", "random forest (pixels)", "logistic regression (embedding)"],
                         "kind": ["deep", "supervised", "supervised"], "accuracy": [0.88, 0.83, 0.884],
                         "train_seconds": [10.0, 1.0, 1.0]})
    line = verdict(rows)
    assert "pays off" in line and "random forest (pixels)" in line
    assert "logistic regression (embedding) matches it" in line
    # Without the CNN the advice names only what is missing (it asked for "a method on pixels" beside two).
    rows = rows.iloc[1:]
    assert verdict(rows).endswith("add the CNN to decide between deep learning and the rest.")
    only_cnn = pd.DataFrame({"method": ["CNN"], "kind": ["deep"], "accuracy": [0.9], "train_seconds": [1.0]})
    assert verdict(only_cnn).endswith("add a method on pixels to decide between deep learning and the rest.")


def test_subset_with_a_given_embedding_and_time_budget(fashion):
    x, y, xt, yt = fashion
    out = compare_methods(x[:200], y[:200], methods=["kmeans_embedding", "logistic_pixels"],
                          embedding=lambda imgs: imgs.reshape(len(imgs), -1)[:, ::4], time_budget=5,
                          random_state=0)
    assert list(out["method"]) == ["k-means (embedding)", "logistic regression (pixels)"]
    assert len(out.details.y_test) == 50  # a quarter held out, stratified
    assert out.details.features["embedding"].shape == (50, 196)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"x": np.full((20, 4, 4), np.nan)}, "`x`"),
    ({"x": np.array([["a"] * 4] * 20)}, "`x`"),
    ({"x": np.zeros((0, 4, 4))}, "`x`"),
    ({"y": np.arange(19) % 2}, "`y`"),
    ({"time_budget": 0}, "`time_budget`"),
    ({"time_budget": -1.5}, "`time_budget`"),
    ({"n_clusters": 0}, "`n_clusters`"),
    ({"n_clusters": 5}, "`n_clusters`"),  # 3 distinct training images
    ({"methods": ["svm"]}, "`methods`"),
    ({"x_test": np.zeros((5, 4, 4))}, "`y_test`"),
    # a torch-layout batch: refused with the fix, before k-means runs on it and the CNN fails inside a layer
    ({"x": np.zeros((20, 3, 8, 8))}, r"`x` must be images with the channels last.*np\.moveaxis\(x, 1, -1\)"),
])
def test_bad_input_is_refused_before_work(kwargs, argument):
    x = np.tile(np.eye(4, dtype=np.float32)[None], (20, 1, 1))
    x[::3] *= 2
    x[1::3] *= 3
    args = {"x": x, "y": np.arange(20) % 2, "methods": ["kmeans_pixels"], **kwargs}
    with pytest.raises(InputError, match=argument):
        compare_methods(**args)


def test_nan_row_is_named():
    x = np.random.default_rng(0).random((30, 4, 4))
    x[7, 1, 1] = np.inf
    with pytest.raises(InputError, match="index 7"):
        compare_methods(x, np.arange(30) % 3, methods=["kmeans_pixels"])


def test_integer_pixels_are_scaled_as_bytes(fashion):
    x, y, xt, yt = fashion
    as_bytes = compare_methods(x[:300], y[:300], xt[:100], yt[:100], methods=["kmeans_pixels"])
    as_ints = compare_methods(x[:300].astype(np.int32), y[:300], xt[:100].astype(np.int64), yt[:100],
                              methods=["kmeans_pixels"])
    as_floats = compare_methods(x[:300] / np.float32(255), y[:300], xt[:100] / np.float32(255), yt[:100],
                                methods=["kmeans_pixels"])
    assert as_ints["accuracy"][0] == as_bytes["accuracy"][0] == as_floats["accuracy"][0]
    assert as_ints.details.features["pixels"].max() <= 1.0


def test_a_trained_model_is_used_as_it_is_with_epochs_0(fashion, table):
    import torch

    from pydlr.engine import Sequential
    from pydlr.models import seed_cnn
    from pydlr.train import losses

    x, y, xt, yt = fashion
    torch.manual_seed(0)
    model = seed_cnn(model_class=Sequential)
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:600] / np.float32(255), y[:600], epochs=1, batch_size=16, verbose=0, seed=0)
    before = model.predict_classes(xt / np.float32(255))
    out = compare_methods(x[:600], y[:600], xt, yt, model=model, epochs=0, methods=["cnn", "kmeans_embedding"])
    assert np.isnan(out["train_seconds"][0]) and out["train_seconds"][1] > 0
    assert out["accuracy"][0] == pytest.approx(np.mean(before == yt))  # not trained further
    assert out.verdict.startswith("Verdict: ") and " x" not in out.verdict
    with pytest.raises(InputError, match="`epochs`"):
        compare_methods(x[:50], y[:50], epochs=0, methods=["cnn"])


def test_a_pydlr_model_as_the_embedding():
    from pydlr.engine import Sequential
    from pydlr.layers import Conv2D, Flatten, Input

    rng = np.random.default_rng(1)
    x = rng.random((120, 8, 8), dtype=np.float32)
    y = np.arange(120) % 3
    x[y == 1, :4] += 2
    base = Sequential([Input((8, 8, 1)), Conv2D(4, (3, 3), activation="relu"), Flatten()])
    out = compare_methods(x, y, embedding=base, methods=["kmeans_embedding", "logistic_embedding"])
    assert out.details.features["embedding"].shape == (30, 6 * 6 * 4)
    assert out["accuracy"][1] > 0.5 and out["size_mb"][0] > 0


def test_images_too_small_for_the_seed_cnn_are_refused_before_any_work():
    x = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
    y = np.repeat([0, 1], 20)
    with pytest.raises(InputError, match=r"at least 18 x 18 pixels.*received 'images of 8 x 8 pixels'"):
        compare_methods(x, y, methods=["kmeans_pixels", "cnn"])
    with pytest.raises(InputError, match="channels first"):  # not "images of 1 x 28 pixels"
        compare_methods(np.zeros((40, 1, 28, 28), np.float32), y)
    table = compare_methods(x, y, methods=["kmeans_pixels", "logistic_pixels"])
    assert list(table["method"]) == ["k-means (pixels)", "logistic regression (pixels)"]
