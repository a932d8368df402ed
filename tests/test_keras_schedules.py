"""keras.optimizers.schedules: Keras' formulas, accepted as learning_rate= of optimizers, saved as JSON."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pydlr as keras
from pydlr import layers
from pydlr.errors import InputError

schedules = keras.optimizers.schedules


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def test_formulas_match_keras():
    exp = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert exp(0) == pytest.approx(0.1) and exp(10) == pytest.approx(0.05) and exp(5) == pytest.approx(
        0.1 * 0.5 ** 0.5)
    stair = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert stair(9) == pytest.approx(0.1) and stair(10) == pytest.approx(0.05)
    cos = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert cos(0) == pytest.approx(1.0) and cos(100) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
    assert cos(50) == pytest.approx(0.9 * 0.5 + 0.1)
    warm = schedules.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    assert [warm(s) for s in (0, 2, 4)] == pytest.approx([0.0, 0.5, 1.0])
    assert warm(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    pw = schedules.PiecewiseConstantDecay([3, 6], [1.0, 0.5, 0.1])
    assert [pw(s) for s in (0, 3, 4, 6, 7, 100)] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.1, 0.1])
    assert isinstance(pw, schedules.LearningRateSchedule)


def test_bad_arguments():
    with pytest.raises(InputError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5)
    with pytest.raises(InputError, match="one more value"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0, 0.5])
    with pytest.raises(InputError, match="learning_rate"):
        keras.optimizers.SGD(learning_rate="fast")


class _Rates(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(self.model.optimizer.learning_rate)


def _model(optimizer):
    torch.manual_seed(0)
    model = keras.Sequential([layers.Input((6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n: int = 40):
    rng = np.random.default_rng(0)
    return rng.random((n, 6), dtype=np.float32), rng.integers(0, 3, n)


def test_a_schedule_sets_each_steps_rate_over_fits():
    sched = schedules.PiecewiseConstantDecay([2, 5], [0.1, 0.01, 0.001])
    model, rates = _model(keras.optimizers.SGD(learning_rate=sched)), _Rates()
    model.fit(*_data(), epochs=1, batch_size=10, verbose=0, callbacks=[rates])
    model.fit(*_data(), epochs=1, batch_size=10, verbose=0, callbacks=[rates])  # steps 4..7
    assert rates.rates == pytest.approx([0.01, 0.01, 0.001, 0.001])
    assert model.optimizer.iterations == 8


def test_a_schedule_is_saved_and_goes_on_after_load(tmp_path: Path):
    sched = schedules.ExponentialDecay(0.01, decay_steps=4, decay_rate=0.5)
    model = _model(keras.optimizers.Adam(learning_rate=sched))
    rates = _Rates()
    model.fit(*_data(), epochs=1, batch_size=10, verbose=0, callbacks=[rates])
    assert rates.rates == pytest.approx([sched(s) for s in range(4)])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    spec = loaded.get_compile_config()["optimizer"]
    assert spec["learning_rate"] == {"class_name": "ExponentialDecay", "config": sched.get_config()}
    assert isinstance(loaded._optimizer_spec.learning_rate, schedules.ExponentialDecay)
    assert loaded.optimizer.iterations == 4  # the schedule goes on where it was
    rates = _Rates()
    loaded.fit(*_data(), epochs=1, batch_size=10, verbose=0, callbacks=[rates])
    assert rates.rates == pytest.approx([sched(s) for s in range(4, 8)])
    assert keras.models.load_model(tmp_path / "m.keras", compile=False).pending_optimizer_state["iterations"] == 4


class _StopAt(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if self.model.optimizer.iterations == 6:
            raise KeyboardInterrupt


def test_a_resumed_fit_follows_the_same_rates(tmp_path: Path):
    sched = schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)
    x, y = _data()
    ref = _model(keras.optimizers.SGD(learning_rate=sched))
    ref.fit(x, y, epochs=3, batch_size=10, verbose=0, seed=1)
    run = _model(keras.optimizers.SGD(learning_rate=sched))
    with pytest.raises(KeyboardInterrupt):  # in epoch 2, after the checkpoint of epoch 1 (4 steps)
        run.fit(x, y, epochs=3, batch_size=10, verbose=0, seed=1, resume=tmp_path / "run.ckpt",
                callbacks=[_StopAt()])
    fresh = _model(keras.optimizers.SGD(learning_rate=sched))
    rates = _Rates()
    fresh.fit(x, y, epochs=3, batch_size=10, verbose=0, seed=1, resume=tmp_path / "run.ckpt", callbacks=[rates])
    assert rates.rates == pytest.approx([sched(s) for s in range(4, 12)])
    assert fresh.optimizer.iterations == ref.optimizer.iterations == 12
    for a, b in zip(ref.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
