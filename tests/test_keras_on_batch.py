"""Keras' one-batch methods (train_on_batch, test_on_batch, predict_on_batch) and feature extraction
(model.inputs, model.get_layer(), layer.output)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pydlr as keras
from pydlr import layers
from pydlr.errors import InputError, NotSupportedError


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def _model(optimizer="adam"):
    torch.manual_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    outputs = layers.Dense(3, activation="softmax", name="head")(layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n: int = 16):
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


def test_train_on_batch_steps_and_reports_the_batch():
    model, (x, y) = _model(), _data()
    before = [w.copy() for w in model.get_weights()]
    first = model.train_on_batch(x, y)
    assert isinstance(first, list) and len(first) == 2 and 0 <= first[1] <= 1
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    for _ in range(30):
        last = model.train_on_batch(x, y, return_dict=True)
    assert set(last) == {"loss", "accuracy"} and last["loss"] < first[0] - 0.1  # it learns the batch
    assert model.training  # the model's mode is left as it was


def test_test_on_batch_does_not_update_and_matches_evaluate():
    model, (x, y) = _model(), _data()
    model.train_on_batch(x, y)
    before = model.get_weights()
    got = model.test_on_batch(x, y)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert got == pytest.approx(model.evaluate(x, y, batch_size=len(x)))
    assert model.test_on_batch(x, y, return_dict=True)["loss"] == pytest.approx(got[0])


def test_predict_on_batch_matches_predict():
    model, (x, _) = _model(), _data()
    out = model.predict_on_batch(x)
    assert isinstance(out, np.ndarray) and out.shape == (16, 3)
    np.testing.assert_allclose(out, model.predict(x), rtol=1e-6)


def test_train_on_batch_follows_a_schedule():
    sched = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.5, 0.0])
    model, (x, y) = _model(keras.optimizers.SGD(learning_rate=sched)), _data()
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)  # step 1: rate 0.5 still (the boundary step keeps the earlier value)
    frozen = model.get_weights()
    model.train_on_batch(x, y)  # step 2: rate 0, no change
    for a, b in zip(frozen, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 3


def test_on_batch_errors_before_work():
    torch.manual_seed(0)
    model = keras.Sequential([layers.Input((4,)), layers.Dense(2)])
    with pytest.raises(InputError, match="compiled"):
        model.train_on_batch(np.zeros((2, 4), np.float32), np.zeros(2))
    compiled, (x, y) = _model(), _data()
    with pytest.raises(InputError, match="y"):
        compiled.train_on_batch(x, y[:3])
    with pytest.raises(InputError, match="shape"):
        compiled.predict_on_batch(np.zeros((2, 5, 5, 1), np.float32))


def test_feature_extractor_from_layer_output():
    model, (x, _) = _model(), _data()
    assert [t.shape for t in model.inputs] == [(None, 8, 8, 1)]
    conv = model.get_layer("conv")
    assert conv.output.shape == (None, 6, 6, 4) and conv.input is model.inputs[0]
    features = keras.Model(inputs=model.inputs, outputs=conv.output)
    assert features.get_layer("conv") is conv  # the weights are shared, as Keras'
    seen = []
    handle = conv.register_forward_hook(lambda _m, _i, out: seen.append(out.permute(0, 2, 3, 1).numpy()))
    try:
        model.predict(x)
    finally:
        handle.remove()
    np.testing.assert_allclose(features.predict(x), seen[0], rtol=1e-6)
    multi = keras.Model(inputs=model.inputs, outputs=[conv.output, model.get_layer("head").output])
    maps, probs = multi(torch.from_numpy(x))
    assert tuple(maps.shape) == (16, 6, 6, 4) and tuple(probs.shape) == (16, 3)


def test_layer_output_needs_exactly_one_call():
    shared = layers.Dense(2, name="shared")
    a, b = keras.Input((3,)), keras.Input((3,))
    shared(a)
    shared(b)
    with pytest.raises(NotSupportedError, match="called 2 times"):
        _ = shared.output
    with pytest.raises(NotSupportedError, match="called 0 times"):
        _ = layers.Dense(2).output
