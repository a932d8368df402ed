"""Filter patterns by gradient ascent (seed CNN and MobileNetV2), the static views with the model's own
preprocessing, top losses with their images, and the bad input of all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pydlr
from pydlr import interpret, layers, pretrained
from pydlr.data.samples import example_image
from pydlr.errors import InputError
from pydlr.interpret.patterns import _layer_output

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mnist_cnn():
    return pretrained.load("seed_cnn_mnist")


@pytest.fixture(scope="module")
def mobilenet(module_cache):
    return pydlr.applications.MobileNetV2(weights="imagenet")


def mean_activations(model, layer, x, filters) -> np.ndarray:
    """(images, filters): each filter's mean activation on each image."""
    xt = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = _layer_output(model.eval(), interpret.find_layer(model, layer), xt)
    return out.mean(dim=(2, 3))[:, filters].numpy()


def assert_patterns_select_their_filter(model, layer, filters, patterns, random_inputs):
    own = mean_activations(model, layer, patterns, filters)
    noise = mean_activations(model, layer, random_inputs, filters)
    for i, f in enumerate(filters):
        others = np.delete(own[:, i], i)
        assert own[i, i] > noise[:, i].max(), (layer, f, own[i, i], noise[:, i].max())
        assert own[i, i] > others.max(), (layer, f, own[:, i])


def name(model, i: int) -> str:
    """The name of layer ``i`` (names count up across a session's models, so tests look them up)."""
    return model.layers[i].name


@pytest.mark.parametrize("index", [2, 4])  # the second and third convolutions
def test_seed_cnn_patterns_activate_their_filter_most(mnist_cnn, index):
    layer = name(mnist_cnn, index)
    filters = [0, 1, 2, 3, 5]
    patterns = interpret.filter_patterns(mnist_cnn, layer, filters, steps=30)
    assert patterns.shape == (5, 28, 28, 1) and patterns.dtype == np.float32
    assert patterns.min() >= 0.0 and patterns.max() <= 1.0  # the images the model was trained on
    rng = np.random.default_rng(1)
    assert_patterns_select_their_filter(mnist_cnn, layer, filters, patterns,
                                        rng.random((16, 28, 28, 1)).astype(np.float32))
    again = interpret.filter_patterns(mnist_cnn, layer, filters, steps=30)
    np.testing.assert_array_equal(patterns, again)  # seeded


def test_mobilenet_patterns_activate_their_filter_most(mobilenet, tmp_path: Path):
    filters = [0, 1, 2]
    patterns = interpret.filter_patterns(mobilenet, "features.3", filters, steps=15, size=48)
    assert patterns.shape == (3, 48, 48, 3)
    lo, hi = interpret.patterns.pattern_bounds(mobilenet, 3)[:2]
    assert (patterns >= lo.numpy().reshape(1, 1, 1, 3) - 1e-6).all()  # within what preprocessing makes
    assert (patterns <= hi.numpy().reshape(1, 1, 1, 3) + 1e-6).all()
    rng = np.random.default_rng(2)
    photos = np.stack([pretrained.preprocess(p, size=48, resize=48) for p in
                       rng.integers(0, 256, (8, 48, 48, 3)).astype(np.uint8)])[:, 0]
    assert photos.shape == (8, 48, 48, 3)
    assert_patterns_select_their_filter(mobilenet, "features.3", filters, patterns, photos)
    path = tmp_path / "patterns.png"
    interpret.plot_filter_patterns(mobilenet, "features.3", filters, steps=2, size=32, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_filter_patterns_bad_input(mnist_cnn):
    dense = pydlr.Sequential([layers.Input((4,)), layers.Dense(2)])
    with pytest.raises(InputError, match="an image model"):
        interpret.filter_patterns(dense, "x")
    listed = ", ".join(name(mnist_cnn, i) for i in range(8))
    with pytest.raises(InputError, match=listed) as err:
        interpret.filter_patterns(mnist_cnn, "conv9")
    assert err.value.argument == "layer"
    with pytest.raises(InputError, match=r"0\.\.63"):
        interpret.filter_patterns(mnist_cnn, name(mnist_cnn, 2), [0, 64])
    with pytest.raises(InputError, match="feature maps"):
        interpret.filter_patterns(mnist_cnn, name(mnist_cnn, 6))
    for arg, value in [("steps", 0), ("learning_rate", -1.0), ("size", 4)]:
        with pytest.raises(InputError, match=arg):
            interpret.filter_patterns(mnist_cnn, name(mnist_cnn, 2), **{arg: value})


def test_static_views_apply_the_models_own_preprocessing(mobilenet, mnist_cnn, tmp_path: Path):
    cat = example_image("chelsea")
    x = pydlr.applications.preprocess_inputs(mobilenet, cat)
    np.testing.assert_allclose(interpret.activations(mobilenet, cat, "features.2", preprocess=True),
                               interpret.activations(mobilenet, x, "features.2"), atol=1e-5)
    details = interpret.grad_cam_details(mobilenet, cat, preprocess=True)
    assert int(details["classes"][0]) in (281, 282, 285)
    np.testing.assert_allclose(details["heatmaps"], interpret.grad_cam(mobilenet, x), atol=1e-5)
    fig = interpret.plot_grad_cam(mobilenet, cat, preprocess=True, path=tmp_path / "cam.png")
    under = fig.axes[1].images[0].get_array()
    assert under.shape[:2] == (224, 224) and float(np.max(under)) <= 1.0  # the photo, not normalized input
    assert "cat" in fig.axes[1].get_title()
    interpret.plot_activations(mobilenet, cat, "features.2", preprocess=True, path=tmp_path / "act.png")
    assert (tmp_path / "act.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(InputError, match="preprocess"):
        interpret.activations(mnist_cnn, np.zeros((1, 28, 28, 1)), name(mnist_cnn, 0), preprocess=True)


def test_bad_images_and_classes_are_input_errors(mnist_cnn):
    with pytest.raises(InputError, match=r"28, 28, 1\).*received 'data of shape \(1, 32, 32, 1\)"):
        interpret.activations(mnist_cnn, np.zeros((1, 32, 32, 1)), name(mnist_cnn, 0))
    with pytest.raises(InputError, match=r"28, 28, 1\).*received 'data of shape \(1, 28, 28, 3\)"):
        interpret.grad_cam(mnist_cnn, np.zeros((1, 28, 28, 3)))
    with pytest.raises(InputError, match=r"0\.\.9"):
        interpret.grad_cam(mnist_cnn, np.zeros((1, 28, 28, 1)), class_index=10)


def test_top_losses_with_images(mnist_cnn, tmp_path: Path):
    (_x, _y), (xt, yt) = pydlr.data.load_mnist()
    x = xt[:300].astype(np.float32)[..., None] / 255.0
    top = interpret.top_losses(mnist_cnn, x, yt[:300], k=6)
    probs = mnist_cnn.predict(x[top["index"]])
    np.testing.assert_allclose(top["probability_actual"], probs[np.arange(6), top["actual"]], rtol=1e-5)
    assert (top["predicted"] != top["actual"]).sum() >= 1  # the worst are mistakes
    fig = interpret.plot_top_losses(mnist_cnn, x, yt[:300], k=6, images=xt[:300], path=tmp_path / "top.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 6 and titles[0].startswith(f"{top['predicted'][0]} / {top['actual'][0]}")
    assert (tmp_path / "top.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(InputError, match="images"):
        interpret.plot_top_losses(mnist_cnn, x, yt[:300], images=xt[:10])
