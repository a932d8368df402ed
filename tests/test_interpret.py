"""pydlr.interpret: filters, activations, Grad-CAM (synthetic and real photo), confusion matrix, top losses,
and the matplotlib figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pydlr
from pydlr import interpret, layers
from pydlr.errors import InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_cnn(channels: int = 1, size: int = 16) -> pydlr.Sequential:
    return pydlr.Sequential([
        layers.Input((size, size, channels)),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a"),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(2, activation="softmax"),
    ])


def square_images(n: int, seed: int, quadrant: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """16x16 noise; class 1 has a bright 4x4 square inside one quadrant (random, or the given one)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.1, (n, 16, 16, 1)).astype(np.float32)
    y = np.arange(n) % 2 if quadrant is None else np.ones(n, np.int64)
    for i in np.flatnonzero(y):
        q = rng.integers(4) if quadrant is None else quadrant
        r0, c0 = 8 * (q // 2) + rng.integers(0, 5), 8 * (q % 2) + rng.integers(0, 5)
        x[i, r0:r0 + 4, c0:c0 + 4, 0] += 1.0
    return x, y.astype(np.int64)


def quadrant_mass(heat: np.ndarray, q: int) -> float:
    h, w = heat.shape[0] // 2, heat.shape[1] // 2
    r, c = divmod(q, 2)
    return float(heat[r * h:(r + 1) * h, c * w:(c + 1) * w].sum() / heat.sum())


@pytest.fixture(scope="module")
def trained_cnn() -> pydlr.Sequential:
    pydlr.utils.set_random_seed(0)
    model = small_cnn()
    x, y = square_images(256, seed=1)
    model.compile(optimizer=pydlr.train.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=16, seed=0, verbose=0)
    return model


def test_filters_grid_and_raw_kernels() -> None:
    model = small_cnn(channels=3)
    conv = model.get_layer("conv_a")
    raw = interpret.filters(model, grid=False)
    assert raw.shape == (8, 3, 3, 3)
    np.testing.assert_array_equal(raw, conv.weight.detach().permute(0, 2, 3, 1).numpy())
    grid = interpret.filters(model, ncol=4)  # 2 rows x 4 columns of 3x3 kernels, 1-px gaps
    assert grid.shape == (2 * 4 - 1, 4 * 4 - 1, 3)
    tile = grid[4:7, 8:11]  # kernel 6 (row 1, column 2), scaled to [0, 1] on its own
    k = raw[6]
    np.testing.assert_allclose(tile, (k - k.min()) / (k.max() - k.min()), atol=1e-6)
    assert np.all(grid[3] == 1.0)  # the gap row
    assert interpret.filters(model, "conv_b", grid=False).shape == (8, 3, 3, 8)
    with pytest.raises(InputError, match="layer"):
        interpret.filters(model, "no_such_layer")
    with pytest.raises(InputError, match="model"):
        interpret.filters(object())


def test_activations_are_the_layers_feature_maps() -> None:
    model = small_cnn()
    x = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
    conv = model.get_layer("conv_a")
    maps = interpret.activations(model, x, "conv_a")
    assert maps.shape == (2, 16, 16, 8)
    expected = F.relu(F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), conv.weight, conv.bias, padding=1))
    np.testing.assert_allclose(maps, expected.permute(0, 2, 3, 1).detach().numpy(), atol=1e-5)
    by_path = interpret.activations(model, x, "layers.1")  # the module path works as well
    assert by_path.shape == (2, 16, 16, 8)
    assert interpret.activations(model, x, model.layers[2]).shape == (2, 8)  # pooled
    with pytest.raises(InputError, match="layer"):
        interpret.activations(model, x, "conv_z")


def test_grad_cam_finds_the_class_evidence_quadrant(trained_cnn: pydlr.Sequential) -> None:
    xv, yv = square_images(64, seed=7)
    assert (trained_cnn.predict_classes(xv) == yv).mean() >= 0.9  # the CNN learned the task
    for q in range(4):
        x, _ = square_images(8, seed=10 + q, quadrant=q)
        heat = interpret.grad_cam(trained_cnn, x, class_index=1, layer="conv_b")
        assert heat.shape == (8, 16, 16) and heat.min() >= 0 and np.allclose(heat.max((1, 2)), 1)
        masses = [quadrant_mass(h, q) for h in heat]
        assert np.median(masses) > 0.75, (q, masses)  # measured >= 0.8 each; chance: 0.25
    # Default layer = the last spatial one (conv_b); default class = the prediction
    x, _ = square_images(2, seed=3, quadrant=2)
    np.testing.assert_allclose(interpret.grad_cam(trained_cnn, x), interpret.grad_cam(
        trained_cnn, x, class_index=1, layer="conv_b"), atol=1e-6)
    with pytest.raises(InputError, match="class_index"):
        interpret.grad_cam(trained_cnn, x, class_index=5)
    with pytest.raises(InputError, match="layer"):
        interpret.grad_cam(trained_cnn, x, layer="dense_999")


def test_grad_cam_on_imagenet_mobilenet_follows_the_cat(tmp_path: Path, monkeypatch) -> None:
    import skimage.data as skdata

    from pydlr import pretrained

    monkeypatch.setenv("PYDLR_CACHE", str(tmp_path / "cache"))
    model = pretrained.load("mobilenet_v2")
    cat = pretrained.preprocess(skdata.chelsea(), size=112, normalize=False)[0]
    for q in (0, 3):  # the cat pasted into one quadrant of a grey canvas
        canvas = np.full((224, 224, 3), 0.5, np.float32)
        r, c = divmod(q, 2)
        canvas[r * 112:(r + 1) * 112, c * 112:(c + 1) * 112] = cat
        x = pretrained.preprocess(canvas)
        assert pretrained.decode_predictions(model.predict(x), 1)[0][0][0] == 285
        heat = interpret.grad_cam(model, x, class_index=285)[0]
        assert quadrant_mass(heat, q) > 0.6, q  # measured 0.73 and 0.88; chance 0.25
    path = tmp_path / "cam.png"
    interpret.plot_grad_cam(model, x, 285, image=canvas, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_confusion_matrix_matches_scikit_learn() -> None:
    import sklearn.metrics as sk
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    cm = interpret.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(cm, sk.confusion_matrix(y_true, y_pred))
    assert cm.sum() == 200 and cm.dtype == np.int64
    scores = np.eye(4)[y_pred] * 0.9 + 0.025  # class scores: argmax taken
    np.testing.assert_array_equal(interpret.confusion_matrix(y_true, scores), cm)
    assert interpret.confusion_matrix([0, 1], [1, 1], num_classes=3).tolist() == [[0, 1, 0], [0, 1, 0],
                                                                                  [0, 0, 0]]
    with pytest.raises(InputError, match="y_pred"):
        interpret.confusion_matrix([0, 1, 2], [0, 1])
    with pytest.raises(InputError, match="y_true"):
        interpret.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(InputError, match="num_classes"):
        interpret.confusion_matrix([0, 3], [0, 1], num_classes=2)


class FixedModel:
    """A stand-in with predict(): known probabilities."""

    def __init__(self, probs: np.ndarray):
        self.probs = probs

    def predict(self, x, batch_size=32):
        return self.probs


def test_top_losses_ranks_by_cross_entropy() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01]])
    y = np.array([0, 0, 1, 1])
    top = interpret.top_losses(FixedModel(probs), np.zeros((4, 1)), y, k=2)
    assert top["index"].tolist() == [3, 1]
    np.testing.assert_allclose(top["loss"], [-np.log(0.01), -np.log(0.2)])
    assert top["actual"].tolist() == [1, 0] and top["predicted"].tolist() == [0, 1]
    np.testing.assert_allclose(top["probability"], [0.99, 0.8])
    logits = np.log(probs)  # logits are softmaxed first
    np.testing.assert_allclose(interpret.top_losses(FixedModel(logits), None, y, k=4)["loss"][:2],
                               top["loss"], rtol=1e-6)
    with pytest.raises(InputError, match="k"):
        interpret.top_losses(FixedModel(probs), None, y, k=0)


def test_plots_write_png_files(trained_cnn: pydlr.Sequential, tmp_path: Path) -> None:
    x, y = square_images(16, seed=5)
    files = {
        "filters": interpret.plot_filters(trained_cnn, path=tmp_path / "filters.png"),
        "activations": interpret.plot_activations(trained_cnn, x, "conv_b", index=1,
                                                  path=tmp_path / "activations.png"),
        "grad_cam": interpret.plot_grad_cam(trained_cnn, x[1:2], 1, path=tmp_path / "grad_cam.png"),
        "confusion": interpret.plot_confusion_matrix(y, trained_cnn.predict_classes(x),
                                                     class_names=["noise", "square"],
                                                     path=tmp_path / "confusion.png"),
    }
    import matplotlib.pyplot as plt

    for name, fig in files.items():
        path = tmp_path / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000, name
        assert len(fig.axes) >= 1
        plt.close(fig)


def test_filters_of_a_deeper_layer_tile_each_filter_and_input_channel(tmp_path: Path) -> None:
    """conv_b sees 8 channels: not an image; one grey tile per (filter, channel), a row per filter."""
    model = small_cnn(channels=1)
    raw = interpret.filters(model, "conv_b", grid=False)  # (8 filters, 3, 3, 8 channels)
    grid = interpret.filters(model, "conv_b")
    assert grid.shape == (8 * 4 - 1, 8 * 4 - 1, 1)
    f, c = 5, 2  # row 5, column 2: filter 5's kernel over input channel 2, on filter 5's common scale
    k = raw[f]
    np.testing.assert_allclose(grid[4 * f:4 * f + 3, 4 * c:4 * c + 3, 0],
                               (k[..., c] - k.min()) / (k.max() - k.min()), atol=1e-6)
    import matplotlib.pyplot as plt

    fig = interpret.plot_filters(model, "conv_b", path=tmp_path / "deep.png")
    assert (tmp_path / "deep.png").read_bytes()[:8] == PNG_MAGIC
    assert "8 input channels" in fig.axes[0].get_title()
    plt.close(fig)


def test_plot_grad_cam_accepts_an_image_with_its_sample_axis(trained_cnn, tmp_path: Path) -> None:
    """imagenet_preprocess_input(..., normalize=False) keeps the (1, H, W, C) batch axis."""
    import matplotlib.pyplot as plt

    x, _ = square_images(2, seed=7)
    fig = interpret.plot_grad_cam(trained_cnn, x[1:2], 1, image=x[1:2] * 255,
                                  path=tmp_path / "gc.png")
    assert (tmp_path / "gc.png").read_bytes()[:8] == PNG_MAGIC
    plt.close(fig)
    with pytest.raises(InputError, match="image"):
        interpret.plot_grad_cam(trained_cnn, x[1:2], 1, image=np.zeros((2, 16, 16, 1)))


def _texts_inside_and_apart(fig, texts) -> tuple[int, int]:
    """(texts outside the figure, pairs of texts whose boxes overlap) after drawing."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
    frame = fig.bbox
    outside = sum(b.x0 < frame.x0 - 0.5 or b.y0 < frame.y0 - 0.5 or b.x1 > frame.x1 + 0.5
                  or b.y1 > frame.y1 + 0.5 for b in boxes)
    overlaps = sum(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))
    return outside, overlaps


@pytest.mark.parametrize(("k", "length"), [(2, 60), (3, 35), (10, 80), (10, 1)])
def test_confusion_plot_shows_long_class_names_whole_and_apart(tmp_path: Path, k: int, length: int) -> None:
    import matplotlib.pyplot as plt

    names = [(" ".join(["longword"] * 12))[:length] + str(i) for i in range(k)]
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, 100)
    fig = interpret.plot_confusion_matrix(y, y[::-1], class_names=names, path=tmp_path / "cm.png")
    ax = fig.axes[0]
    for ticks, title in ((ax.get_xticklabels(), ax.xaxis.label), (ax.get_yticklabels(), ax.yaxis.label)):
        assert _texts_inside_and_apart(fig, [*ticks, title]) == (0, 0)  # none cut, none on another
    assert [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()] == names  # whole names
    assert ax.get_position().width > 0.3 and ax.get_position().height > 0.3  # the matrix keeps its room
    assert (tmp_path / "cm.png").read_bytes()[:8] == PNG_MAGIC
    plt.close(fig)


def test_grad_cam_plot_names_the_class_and_has_a_colour_key(trained_cnn, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    x, _ = square_images(2, seed=7)
    fig = interpret.plot_grad_cam(trained_cnn, x[1:2], class_names=["noise", "square"],
                                  path=tmp_path / "gc.png")
    details = interpret.grad_cam_details(trained_cnn, x[1:2])
    c, p = int(details["classes"][0]), float(details["probabilities"][0])
    assert fig.axes[1].get_title() == f"Grad-CAM: {['noise', 'square'][c]} (class {c}), p = {p:.2f}"
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and colorbars[0].get_ylim() == (0.0, 1.0)
    assert "evidence" in colorbars[0].get_ylabel()
    plt.close(fig)
    fig = interpret.plot_grad_cam(trained_cnn, x[1:2], 0)  # no names known: the class number
    assert fig.axes[1].get_title().startswith("Grad-CAM: class 0, p = ")
    plt.close(fig)


def test_grad_cam_on_a_model_in_training_mode_leaves_batchnorm_statistics_alone() -> None:
    # Finding the default layer ran a forward pass in the caller's (training) mode: BatchNormalization's
    # running mean and variance moved towards the explained images, silently changing later predictions.
    pydlr.utils.set_random_seed(0)
    model = pydlr.Sequential([layers.Input((16, 16, 1)), layers.Conv2D(4, 3, activation="relu"),
                              layers.BatchNormalization(), layers.Dropout(0.5),
                              layers.GlobalAveragePooling2D(), layers.Dense(2)])
    x, _ = square_images(4, seed=3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    heat_train = interpret.grad_cam(model, x + 5.0)
    after = model.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert model.training
    model.eval()
    np.testing.assert_allclose(heat_train, interpret.grad_cam(model, x + 5.0), atol=1e-6)
