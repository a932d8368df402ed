"""predict() and evaluate() warn when images come on another scale than the model's training images
(pydlr.data.scale): pixels left at 0-255 for a model trained on x / 255 give wrong predictions without any error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_train_engine import quadrant_data, small_model

from pydlr import applications
from pydlr.api_r import training as api_training
from pydlr.data.scale import SAMPLES, InputScaleWarning, data_scale, other_scale
from pydlr.io.saving import load_model, save_model


def fitted(scale: float = 1.0):
    x, y = quadrant_data(64)  # values in [0, 1]
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x * scale, y, epochs=1, batch_size=32, verbose=0, seed=0)
    return m, x, y


def scale_warnings(fn) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if issubclass(w.category, InputScaleWarning)]


def test_pixels_left_at_0_255_are_named_with_the_fix():
    m, x, y = fitted()
    assert m.input_scale == pytest.approx(float(np.abs(x).max()))
    caught = scale_warnings(lambda: m.predict(x * 255))
    assert len(caught) == 1
    w = caught[0]
    assert w.filename == __file__  # shown at the user's line, not inside pydlr
    assert str(w.message).startswith("`x` reaches 255 but the training data reached 1: scale it as the training data")
    assert w.message.seen == pytest.approx(float(np.abs(x * 255).max())) and w.message.trained == m.input_scale
    assert len(scale_warnings(lambda: m.evaluate(x * 255, y, verbose=0))) == 1
    assert len(scale_warnings(lambda: m.predict_classes(x * 255))) == 1
    assert len(scale_warnings(lambda: m.predict(torch.from_numpy(x * 255)))) == 1  # tensors too
    assert len(scale_warnings(lambda: m.predict((x * 255).astype(np.uint8)))) == 1  # and integer pixels


def test_the_right_scale_and_darker_images_are_silent():
    m, x, y = fitted()
    assert not scale_warnings(lambda: m.predict(x))
    assert not scale_warnings(lambda: m.predict(x * 0.5))  # a darker image is not another scale
    assert not scale_warnings(lambda: m.evaluate(np.asfortranarray(x.astype(np.float64)), y, verbose=0))


def test_trained_on_0_255_and_predicted_on_0_1():
    m, x, _ = fitted(scale=255.0)
    caught = scale_warnings(lambda: m.predict(x))
    assert len(caught) == 1 and "reaches 1 but the training data reached 255" in str(caught[0].message)


def test_tables_and_unfitted_models_are_not_checked():
    m, x, _ = fitted()
    table = np.random.default_rng(0).uniform(size=(20, 4)).astype(np.float32)
    assert data_scale(table) is None
    assert not scale_warnings(lambda: small_model().predict(x * 255))  # never fitted: nothing to compare with
    assert not other_scale(None, 1.0) and not other_scale(0.0, 1.0) and not other_scale(255.0, 0.0)
    assert other_scale(21.0, 1.0) and not other_scale(19.0, 1.0) and other_scale(1.0, 21.0)


def test_the_scale_is_saved_with_the_model(tmp_path):
    m, x, _ = fitted()
    path = tmp_path / "m.pydlr"
    save_model(m, path)
    loaded = load_model(path)
    assert loaded.input_scale == m.input_scale
    assert len(scale_warnings(lambda: loaded.predict(x * 255))) == 1


def test_imagenet_networks_want_preprocessed_photos():
    model = applications.MobileNetV2((32, 32, 3), weights=None)
    photos = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype(np.float32)
    caught = scale_warnings(lambda: model.predict(photos))
    assert len(caught) == 1 and "pydlr.applications.preprocess_inputs(model, x)" in str(caught[0].message)
    ready = applications.preprocess_inputs(model, photos)
    assert not scale_warnings(lambda: model.predict(ready))


def test_r_says_it_in_r_words_so_the_r_door_stays_quiet():
    m, x, y = fitted()
    assert not scale_warnings(lambda: api_training.predict(m, x * 255))
    assert not scale_warnings(lambda: api_training.predict_classes(m, x * 255))
    assert not scale_warnings(lambda: api_training.evaluate(m, x * 255, y))
    assert len(scale_warnings(lambda: m.predict(x * 255))) == 1  # the filter ended with the call


def test_r_gets_the_warning_beside_the_result_in_r_syntax():
    m, x, y = fitted()
    with pytest.warns(InputScaleWarning) as shown:
        probs, classes = m.predict(x * 255), m.predict_classes(x * 255)
    said = str(shown[0].message)
    assert said.startswith(f"`x` reaches {float(np.abs(x * 255).max()):.3g} but the training data reached "
                           f"{m.input_scale:.3g}: scale it as the training data was (e.g. x / 255 for pixels)")
    out = api_training.predict(m, x * 255)
    np.testing.assert_array_equal(out["out"], probs)
    assert out["warnings"] == [said]  # the same words, once
    np.testing.assert_array_equal(api_training.predict_classes(m, x * 255)["out"], classes)
    assert api_training.predict_classes(m, x * 255)["warnings"] == [said]
    assert api_training.evaluate(m, x * 255, y)["warnings"] == [said]
    assert api_training.predict(m, x)["warnings"] == [] and api_training.evaluate(m, x, y)["warnings"] == []
    # an ImageNet network's advice, as R calls it
    model = applications.MobileNetV2((32, 32, 3), weights=None)
    (pretrained,) = api_training.predict(model, np.full((1, 32, 32, 3), 255.0))["warnings"]
    assert "preprocess it with application_preprocess_inputs(model, x)" in pretrained
    assert "pydlr.applications" not in pretrained


def test_the_r_door_shows_other_warnings_as_usual():
    m, x, _ = fitted()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with api_training._pydlr_warnings() as caught:
            m.predict(x * 255)
            warnings.warn("something else", RuntimeWarning, stacklevel=1)
    assert [type(w.message) for w in shown] == [RuntimeWarning] and caught[0].startswith("`x` reaches 255")


def test_values_beyond_float32_are_refused_not_taken_for_a_scale():
    m, x, _ = fitted()
    bad = x.astype(np.float64)
    bad[0, 0, 0, 0] = 1e39  # infinite once float32: predict refuses it, and says nothing of a scale
    assert data_scale(bad) == pytest.approx(float(np.abs(x).max()))


def test_the_scale_reads_r_s_samples_in_memory_order():
    """R's check reads x[round(seq(1, n, length.out = 10000))] of its column-major array: the same values."""
    rng = np.random.default_rng(1)
    x = np.asfortranarray(rng.uniform(0, 1, size=(300, 9, 7)))
    n = x.size
    positions = np.round(np.linspace(1, n, SAMPLES)).astype(np.int64) - 1  # R's 1-based seq, rounded
    assert data_scale(x) == float(np.abs(x.ravel(order="F")[positions]).max())
    x[0, 0, 0] = np.nan  # non-finite values are left out
    assert np.isfinite(data_scale(x))


def test_validation_images_on_another_scale_warn_as_predict_does():
    m, x, y = fitted()
    caught = scale_warnings(lambda: m.fit(x, y, validation_data=(x * 255, y), epochs=1, verbose=0))
    assert len(caught) == 1 and str(caught[0].message).startswith(
        "`validation_data[0]` reaches 255 but the training data reached 1: scale it as the training data was")
    assert caught[0].filename == __file__  # shown at the user's line
    assert not scale_warnings(lambda: m.fit(x, y, validation_data=(x * 0.5, y), epochs=1, verbose=0))
    # from R: caught as the fit's warnings, in R's words
    out = api_training.fit(m, x, y, validation_data=[x * 255, y], epochs=1, verbose=0)
    assert len(out["warnings"]) == 1 and out["warnings"][0].startswith("`validation_data[[1]]` reaches 255")
