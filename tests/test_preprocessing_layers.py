"""Keras' preprocessing and augmentation layers: Keras' directions and shapes, random only in training,
the same transforms as fit(augment=...), trainable inside a Sequential model and usable in dataset.map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pydlr as keras
from pydlr import layers
from pydlr.data.augment import Augment
from pydlr.errors import InputError, NotSupportedError


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


IMG = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)


def _run(layer, x=IMG, training=True):
    model = keras.Sequential([layers.Input(x.shape[1:]), layer])
    model.train(training)
    return model(torch.from_numpy(x)).detach().numpy()


def test_random_layers_follow_keras_directions():
    # a quarter turn counter-clockwise is numpy's rot90; 0.2 of the height down is one row of 5
    np.testing.assert_array_equal(_run(layers.RandomRotation((0.25, 0.25), interpolation="nearest"))[0, :, :, 0],
                                  np.rot90(IMG[0, :, :, 0]))
    moved = _run(layers.RandomTranslation((0.2, 0.2), 0.0, fill_mode="constant", fill_value=-1.0,
                                          interpolation="nearest"))[0, :, :, 0]
    np.testing.assert_array_equal(moved[1:], IMG[0, :4, :, 0])
    np.testing.assert_array_equal(moved[0], -1.0)
    zoomed = _run(layers.RandomZoom((-0.5, -0.5), interpolation="nearest"))[0, :, :, 0]
    assert zoomed[2, 2] == 12 and zoomed.min() >= 6 and zoomed.max() <= 18  # zoomed in on the centre
    flipped = _run(layers.RandomFlip("horizontal", seed=0), np.repeat(IMG, 16, axis=0))[:, :, :, 0]
    kinds = {("same" if np.array_equal(f, IMG[0, :, :, 0]) else "flipped" if np.array_equal(
        f, IMG[0, :, ::-1, 0]) else "other") for f in flipped}
    assert kinds == {"same", "flipped"}


def test_random_contrast_range_and_clip():
    x = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)
    out = _run(layers.RandomContrast((0.5, 0.5), value_range=(0, 1)), x)
    mean = x.mean(axis=(1, 2), keepdims=True)
    factors = ((out - mean) / (x - mean)).reshape(6, -1)
    unclipped = (out > 0) & (out < 1)
    f = np.array([np.median(r[u.reshape(-1)]) for r, u in zip(factors, unclipped.reshape(6, -1), strict=True)])
    assert np.all((f >= 0.5 - 1e-4) & (f <= 1.5 + 1e-4)) and f.std() > 0.01
    assert out.min() >= 0 and out.max() <= 1


def test_random_layers_are_identity_at_inference_and_reproducible_with_seed():
    x = np.random.default_rng(1).random((4, 9, 9, 2)).astype(np.float32)
    for layer in (layers.RandomFlip(), layers.RandomRotation(0.2), layers.RandomZoom(0.3),
                  layers.RandomTranslation(0.2, 0.2), layers.RandomContrast(0.4)):
        np.testing.assert_array_equal(_run(layer, x, training=False), x)
        assert not np.allclose(_run(layer, x, training=True), x)
    a = _run(layers.RandomRotation(0.2, seed=7), x)
    b = _run(layers.RandomRotation(0.2, seed=7), x)
    np.testing.assert_array_equal(a, b)


def test_random_layer_is_augment_with_one_transform():
    # one piece of code: the layer's output equals Augment's with the same draws
    x = torch.from_numpy(np.random.default_rng(2).random((3, 7, 6, 1)).astype(np.float32))
    out = _run(layers.RandomZoom(0.3, width_factor=(-0.2, 0.1), seed=5), x.numpy())
    expected = Augment(zoom=0.3, zoom_width=(-0.2, 0.1))(x, torch.Generator().manual_seed(5))
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-6)


def test_resizing_and_center_crop_shapes_values_and_summary():
    x = np.random.default_rng(3).random((2, 6, 8, 3)).astype(np.float32)
    up = _run(layers.Resizing(12, 16), x, training=False)
    pil = np.stack([np.asarray(Image.fromarray(x[0, :, :, c], mode="F").resize((16, 12), Image.BILINEAR))
                    for c in range(3)], axis=-1)
    np.testing.assert_allclose(up[0], pil, atol=1e-5)  # half-pixel bilinear, as Keras (and PIL upscaling)
    crop = _run(layers.CenterCrop(4, 4), x, training=False)
    np.testing.assert_array_equal(crop, x[:, 1:5, 2:6])
    square = _run(layers.Resizing(6, 6, crop_to_aspect_ratio=True), x, training=False)
    np.testing.assert_array_equal(square, x[:, :, 1:7])  # the centred 6 x 6 box, no resampling needed
    padded = _run(layers.Resizing(8, 8, pad_to_aspect_ratio=True, fill_value=-1.0), x, training=False)
    np.testing.assert_array_equal(padded[:, 1:7], x)
    np.testing.assert_array_equal(padded[:, 0], -1.0)
    model = keras.Sequential([layers.Input((6, 8, 3)), layers.Resizing(12, 16), layers.CenterCrop(10, 10),
                              layers.RandomFlip()])
    table = model.summary_table()
    assert [r["output_shape"] for r in table] == ["(None, 12, 16, 3)", "(None, 10, 10, 3)", "(None, 10, 10, 3)"]


def test_augmentation_layers_train_in_a_sequential_model_and_save(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 64)
    x = (0.3 + 0.4 * y[:, None, None, None] + 0.2 * rng.random((64, 8, 8, 1))).astype(np.float32)
    model = keras.Sequential([
        layers.Input((8, 8, 1)), layers.RandomRotation(0.02, seed=1), layers.RandomZoom(0.05, seed=2),
        layers.RandomContrast(0.1, value_range=(0, 1), seed=3), layers.Resizing(10, 10), layers.CenterCrop(8, 8),
        layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0, seed=0)
    assert hist.history["accuracy"][-1] > 0.9
    p1 = model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, model.predict(x, verbose=0))  # inference: no randomness
    model.save(tmp_path / "aug.keras")
    loaded = keras.models.load_model(tmp_path / "aug.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), p1, atol=1e-6)
    rotation = next(layer for layer in loaded.layers if isinstance(layer, layers.RandomRotation))
    assert (rotation.get_config()["factor"], rotation.seed) == (0.02, 1)


def test_layers_serve_dataset_map(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            ramp = np.tile(np.arange(6, dtype=np.uint8) * 40 + i, (6, 1))
            Image.fromarray(ramp).save(tmp_path / c / f"{i}.png")
    ds = keras.utils.image_dataset_from_directory(tmp_path, image_size=(6, 6), color_mode="grayscale",
                                                  batch_size=6, shuffle=False, workers=0)
    augment = keras.Sequential([layers.RandomFlip("horizontal", seed=0)])
    plain = next(iter(ds))[0].numpy()
    xb, yb = next(iter(ds.map(lambda x, y: (augment(x), y))))
    assert tuple(xb.shape) == (6, 6, 6, 1) and yb.tolist() == [0, 0, 0, 1, 1, 1]
    flipped = [np.allclose(a, p[:, ::-1], atol=1e-3) for a, p in zip(xb.numpy(), plain, strict=True)]
    same = [np.allclose(a, p, atol=1e-3) for a, p in zip(xb.numpy(), plain, strict=True)]
    assert all(f or s for f, s in zip(flipped, same, strict=True)) and any(flipped)


def test_bad_arguments_name_the_argument():
    with pytest.raises(InputError, match="mode"):
        layers.RandomFlip("diagonal")
    with pytest.raises(InputError, match="factor"):
        layers.RandomRotation(0.9)
    with pytest.raises(InputError, match="height_factor"):
        layers.RandomZoom((0.3, 0.1))
    with pytest.raises(InputError, match="width_factor"):
        layers.RandomTranslation(0.1, 1.5)
    with pytest.raises(InputError, match="interpolation"):
        layers.Resizing(4, 4, interpolation="lanczos9")
    with pytest.raises(InputError, match="height"):
        layers.CenterCrop(0, 4)
    with pytest.raises(NotSupportedError, match="wrap"):
        layers.RandomRotation(0.1, fill_mode="wrap")


def test_a_layer_called_on_its_own_takes_nhwc_images_as_keras_does():
    """Keras' tutorials call augmentation layers on a batch directly (``RandomFlip("horizontal")(images)``):
    the images are NHWC there as everywhere in the public API. A grey batch must be flipped left-right, the
    channels of an RGB batch left alone, and a Conv2D called on its own must equal the same layer in a model."""
    import numpy as np

    from pydlr import layers, models

    grey = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4, 1)
    flip = layers.RandomFlip("horizontal", seed=0)
    outs = [flip(grey) for _ in range(8)]
    assert all(o.shape == grey.shape for o in outs)
    for o in outs:  # each image is itself or its mirror image along the width
        for k in range(2):
            assert _same(o[k], grey[k]) or _same(o[k], grey[k].flip(1))
    assert any(not _same(o, grey) for o in outs)
    rgb = torch.rand(4, 5, 6, 3)
    for o in (flip(rgb) for _ in range(4)):
        for k in range(4):  # never the channels' order
            assert _same(o[k], rgb[k]) or _same(o[k], rgb[k].flip(1))
    torch.manual_seed(0)
    conv = layers.Conv2D(4, 3, activation="relu")
    x = np.random.default_rng(0).random((2, 7, 7, 3), dtype=np.float32)
    alone = conv(x)  # a NumPy batch too
    model = models.Sequential([layers.Input((7, 7, 3)), conv])
    assert alone.shape == (2, 5, 5, 4)
    torch.testing.assert_close(alone, model(x))


def _same(a, b):
    return torch.allclose(a, b, atol=1e-5)  # a flip through the sampling grid, up to float rounding
