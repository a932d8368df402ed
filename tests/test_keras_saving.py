"""Keras 3's saving names on pydlr's io: model.save/save_weights/load_weights/set_weights/to_json,
keras.models.load_model/model_from_json, keras.saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pydlr as keras
from pydlr import layers
from pydlr.errors import InputError, NotSupportedError


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def _data(n: int = 32):
    rng = np.random.default_rng(0)
    return rng.random((n, 10, 10, 1), dtype=np.float32), rng.integers(0, 3, n)


def _trained(functional: bool = False):
    torch.manual_seed(0)
    if functional:
        inputs = layers.Input((10, 10, 1))
        h = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
        h = layers.BatchNormalization()(h)
        outputs = layers.Dense(3, activation="softmax")(layers.Flatten()(h))
        model = keras.Model(inputs, outputs)
    else:
        model = keras.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3, activation="relu", name="conv"),
                                  layers.BatchNormalization(), layers.Flatten(),
                                  layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    return model


def _same_state(a, b, floats_only: bool = False) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    if floats_only:
        sa = {k: v for k, v in sa.items() if v.is_floating_point()}
        sb = {k: v for k, v in sb.items() if v.is_floating_point()}
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["m.keras", "m.safetensors", "saved_dir"])
@pytest.mark.parametrize("functional", [False, True])
def test_model_save_and_keras_load_model(tmp_path: Path, name: str, functional: bool) -> None:
    model = _trained(functional)
    model.save(tmp_path / name)
    loaded = keras.models.load_model(tmp_path / name)
    assert type(loaded) is type(model) and _same_state(model, loaded)
    assert getattr(loaded, "compiled", False)  # compiled as saved, optimizer state restored: training goes on
    opt_a, opt_b = model.optimizer.state_dict()["state"], loaded.optimizer.state_dict()["state"]
    assert opt_a.keys() == opt_b.keys() and torch.equal(opt_a[0]["exp_avg"], opt_b[0]["exp_avg"])
    x, y = _data(8)
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert not getattr(keras.models.load_model(tmp_path / name, compile=False), "compiled", False)


def test_keras_saving_namespace(tmp_path: Path) -> None:
    model = _trained()
    keras.saving.save_model(model, tmp_path / "a.keras")
    assert _same_state(model, keras.saving.load_model(tmp_path / "a.keras"))
    keras.models.save_model(model, tmp_path / "b.keras")
    assert _same_state(model, keras.models.load_model(tmp_path / "b.keras"))
    with pytest.raises(InputError, match="overwrite=True"):
        keras.saving.save_model(model, tmp_path / "b.keras", overwrite=False)
    with pytest.raises(NotSupportedError, match="custom_objects"):
        keras.models.load_model(tmp_path / "a.keras", custom_objects={"X": object})


@pytest.mark.parametrize("functional", [False, True])
def test_save_weights_load_weights_round_trip(tmp_path: Path, functional: bool) -> None:
    model = _trained(functional)
    model.save_weights(tmp_path / "w.weights.safetensors")
    other = keras.models.model_from_json(model.to_json())
    assert not _same_state(model, other)
    assert other.load_weights(tmp_path / "w.weights.safetensors") is None  # Keras returns nothing
    assert _same_state(model, other)
    # Keras' load_weights also reads a whole-model save
    model.save(tmp_path / "m.keras")
    fresh = keras.models.model_from_json(model.to_json())
    fresh.load_weights(tmp_path / "m.keras")
    assert _same_state(model, fresh)
    with pytest.raises(InputError, match="overwrite=True"):
        model.save_weights(tmp_path / "w.weights.safetensors", overwrite=False)


def test_load_weights_mismatch_and_skip_mismatch(tmp_path: Path) -> None:
    model = _trained()
    model.save_weights(tmp_path / "w.safetensors")
    wider = keras.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3, activation="relu"),
                              layers.BatchNormalization(), layers.Flatten(),
                              layers.Dense(5, activation="softmax")])
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(InputError, match="shape"):
        wider.load_weights(tmp_path / "w.safetensors")
    wider.load_weights(tmp_path / "w.safetensors", skip_mismatch=True)
    state, saved = wider.state_dict(), model.state_dict()
    assert torch.equal(state["layers.0.weight"], saved["layers.0.weight"])  # the convolution came in
    dense_w = [k for k in state if k.endswith("weight") and state[k].dim() == 2][0]
    assert torch.equal(state[dense_w], before[dense_w])  # the mismatched Dense was left as it was


@pytest.mark.parametrize("call,advice", [
    (lambda m, p: m.save_weights(p / "w.weights.h5"), 'model.save_weights("w.weights.safetensors")'),
    (lambda m, p: m.load_weights(p / "w.weights.h5"), 'model.load_weights("w.weights.safetensors")'),
    (lambda m, p: m.save(p / "m.h5"), 'model.save("m.safetensors")'),
    (lambda m, p: keras.models.load_model(p / "m.h5"), 'keras.models.load_model("m.safetensors")'),
    (lambda m, p: keras.saving.save_model(m, p / "m.hdf5"),
     'keras.models.save_model(model, "m.safetensors")'),
])
def test_hdf5_names_are_refused_with_the_line_to_write(tmp_path: Path, call, advice: str) -> None:
    model = _trained()
    with pytest.raises(InputError, match="never HDF5") as err:
        call(model, tmp_path)
    assert advice in str(err.value) and "filepath" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_set_weights_is_the_inverse_of_get_weights() -> None:
    model = _trained()
    other = keras.models.model_from_json(model.to_json())
    other.set_weights(model.get_weights())
    # every Keras weight; BatchNormalization's step counter is torch's, not a Keras weight
    assert _same_state(model, other, floats_only=True)
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    weights = model.get_weights()
    assert weights[0].shape == (3, 3, 1, 4)  # Keras' kernel layout (h, w, in, out)
    weights[0] = weights[0] + 1.0
    other.set_weights(weights)
    np.testing.assert_array_equal(other.get_weights()[0], weights[0])


def test_set_weights_checks_before_changing_anything() -> None:
    model = _trained()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    weights = model.get_weights()
    with pytest.raises(InputError, match=f"a list of {len(weights)} arrays"):
        model.set_weights(weights[:-1])
    bad = [np.zeros(w.shape) for w in weights]
    bad[-1] = np.zeros(7)
    with pytest.raises(InputError, match=rf"weights\[{len(weights) - 1}\]"):
        model.set_weights(bad)
    with pytest.raises(InputError, match="list of arrays"):
        model.set_weights(np.zeros(3))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_to_json_and_model_from_json() -> None:
    import json

    model = _trained(functional=True)
    text = model.to_json(indent=2)
    doc = json.loads(text)
    assert doc["class_name"].endswith("Model") and "compile_config" not in doc
    rebuilt = keras.models.model_from_json(text)
    assert type(rebuilt) is type(model) and not getattr(rebuilt, "compiled", False)
    assert rebuilt.get_config() == model.get_config() and rebuilt.count_params() == model.count_params()
    with pytest.raises(InputError, match="json_string"):
        keras.models.model_from_json("{not json")
    with pytest.raises(InputError, match="pydlr model document"):
        keras.models.model_from_json('{"class_name": "Sequential"}')


def test_a_failed_first_fit_leaves_the_model_unbuilt_and_its_save_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = keras.Sequential([layers.Conv2D(4, 3, activation="relu"), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _data(16)
    with pytest.raises(InputError, match=r"Conv2D .*a 4-d batch"):
        model.fit(x[..., 0], y, verbose=0)  # (n, 10, 10): Conv2D needs channels
    assert model.input_shape is None and not model.built
    model.save(tmp_path / "unbuilt.keras")  # an unbuilt model's file loads: unbuilt, the same layers
    unbuilt = keras.models.load_model(tmp_path / "unbuilt.keras")
    assert unbuilt.input_shape is None and [type(m) for m in unbuilt.layers] == [type(m) for m in model.layers]
    for call in (lambda: model.predict(x[..., 0], verbose=0), lambda: model.evaluate(x[..., 0], y, verbose=0)):
        with pytest.raises(InputError, match=r"Conv2D .*a 4-d batch"):
            call()
        assert model.input_shape is None
    history = model.fit(x, y, verbose=0, seed=0)  # the right data then trains
    assert model.input_shape == (None, 10, 10, 1) and np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.input_shape == (None, 10, 10, 1) and _same_state(model, loaded)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_save_refuses_an_unbuilt_model_whose_layers_hold_weights(tmp_path: Path) -> None:
    model = _trained()
    features = keras.Sequential(model.layers[:2])  # built layers, no recorded input shape yet
    assert not features.built
    with pytest.raises(InputError, match=r"argument `model` must be a built model.*model\.build"):
        features.save(tmp_path / "f.keras")
    assert not (tmp_path / "f.keras").exists()  # nothing written
    x, _ = _data(4)
    out = features.predict(x, verbose=0)  # one call builds it (on the layers' weights, shared with model)
    features.save(tmp_path / "f.keras")
    loaded = keras.models.load_model(tmp_path / "f.keras")
    assert _same_state(features, loaded)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), out)
