"""fine_tune's inputs as new users give them: grey images, grey images for a colour network, and a whole
classifier as the base. Each is accepted under fit's rule or refused before any work, naming fine_tune, the
argument and what to do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pydlr import Sequential, applications, pretrained
from pydlr.errors import InputError


@pytest.fixture
def grey() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((24, 28, 28), dtype=np.float32), np.arange(24) % 2


def test_grey_images_are_one_channel_as_fit_takes_them(grey) -> None:
    """(N, 28, 28) for a base taking (28, 28, 1), also a body cut from the zoo model (no input of its own):
    fine_tune refused it ("Conv2D 'conv2d_3' ... received '(None, 28, 28)'") while fit and predict take it."""
    x, y = grey
    zoo = pretrained.load("seed_cnn_fashion_mnist")
    zoo.predict(x[:2], verbose=0)  # fit's and predict's rule: one channel implied
    body = Sequential(list(zoo.layers[:5]))
    assert body.input_spec is None
    model = pretrained.fine_tune(body, (x, y), epochs=1, freeze_epochs=1, batch_size=8,
                                 validation_data=(x[:8], y[:8]))
    assert body.input_spec == (28, 28, 1)  # built for the shape its first layer was built for
    hist = model.fine_tune_history
    assert len(hist["frozen"].history["loss"]) == 1 and len(hist["unfrozen"].history["val_loss"]) == 1
    np.testing.assert_array_equal(model.predict(x[:4], verbose=0), model.predict(x[:4, ..., None], verbose=0))
    assert model.predict(x[:4], verbose=0).shape == (4, 2)


def test_grey_images_for_a_colour_network_are_refused_with_how(grey) -> None:
    base = applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None)
    before = [p.detach().clone() for p in base.parameters()]
    rng = np.random.default_rng(1)
    for x in (rng.random((40, 25, 25)), rng.random((40, 25, 25, 1))):
        with pytest.raises(InputError) as info:
            pretrained.fine_tune(base, (x, np.arange(40) % 2))
        message = str(info.value)
        assert info.value.argument == "data" and message.startswith("fine_tune: argument `data`")
        assert f"received ndarray of shape {x.shape}" in message  # the shape as it came, not (1, 25, 25)
        assert "colour images (n, height, width, 3)" in message
        assert "applications.preprocess_inputs(model, x) in Python" in message
        assert "application_preprocess_inputs(model, x) in R" in message
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters(), strict=True))  # no work done
    # The advice works: the grey channel repeated, resized to 32 x 32, scaled
    x = applications.preprocess_inputs(base, rng.random((16, 25, 25)))
    assert x.shape == (16, 32, 32, 3)
    model = pretrained.fine_tune(base, (x, np.arange(16) % 2), epochs=0, freeze_epochs=1, batch_size=8)
    assert len(model.fine_tune_history["frozen"].history["loss"]) == 1


def test_other_shapes_say_the_shape_as_it_came(grey) -> None:
    x, y = grey
    body = Sequential(list(pretrained.load("seed_cnn_fashion_mnist").layers[:5]))
    with pytest.raises(InputError, match=r"^fine_tune: argument `data` must be data of shape \(None, 28, 28, 1\)"
                       r".*received ndarray of shape \(24, 25, 25\)"):
        pretrained.fine_tune(body, (x[:, :25, :25], y))


def test_a_classifier_as_base_is_refused_naming_model(grey) -> None:
    """The whole zoo model (output (None, 10)) failed in GlobalAveragePooling2D, a layer the user never made."""
    x, y = grey
    zoo = pretrained.load("seed_cnn_fashion_mnist")
    before = [p.detach().clone() for p in zoo.parameters()]
    with pytest.raises(InputError) as info:
        pretrained.fine_tune(zoo, (x, y))
    message = str(info.value)
    assert info.value.argument == "model" and message.startswith("fine_tune: argument `model` must be ")
    assert "a convolutional base whose output is a feature map (batch, h, w, channels)" in message
    assert "a model whose output is (None, 10)" in message
    assert "Sequential(list(model.layers[:5])) in Python" in message
    assert "global_average_pooling" not in message.lower()
    assert all(torch.equal(a, b) for a, b in zip(before, zoo.parameters(), strict=True))
    # A pooled application network keeps its own message (pooling=None), checked before this one
    with pytest.raises(InputError, match="pooling"):
        pretrained.fine_tune(applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None,
                                                      pooling="avg"), (x, y))
