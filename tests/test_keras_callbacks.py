"""Keras' callbacks on pydlr's loop: LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pydlr as keras
from pydlr import layers
from pydlr.errors import InputError, TrainingError


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def _model(lr: float = 0.01):
    torch.manual_seed(0)
    model = keras.Sequential([layers.Input((6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy")
    return model


def _data(n: int = 40):
    rng = np.random.default_rng(0)
    return rng.random((n, 6), dtype=np.float32), rng.integers(0, 3, n)


class _Rates(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(self.model.optimizer.learning_rate)


def test_learning_rate_scheduler_is_in_keras_callbacks():
    model, rates = _model(0.1), _Rates()
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 1 else lr * 0.5)
    model.fit(*_data(), epochs=3, batch_size=10, verbose=0, callbacks=[sched, rates])
    assert rates.rates == pytest.approx([0.1, 0.05, 0.025])


def test_reduce_lr_on_plateau_follows_keras_rules():
    # min_delta=1.0: no epoch after the first counts as an improvement, so the rule alone sets the rates.
    model, rates = _model(1e-3), _Rates()
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, cooldown=1, min_lr=2e-4,
                                           min_delta=1.0)
    model.fit(*_data(), epochs=8, batch_size=40, verbose=0, shuffle=False, callbacks=[cb, rates])
    # rates as read at each epoch's end, before the reduction of that epoch: epoch 3 halves (patience 2),
    # the cooldown epoch counts as a wait too (Keras' rule), so epochs 5 and 7 halve; min_lr is the floor.
    assert rates.rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2e-4])
    assert model.optimizer.learning_rate == pytest.approx(2e-4)


def test_reduce_lr_on_plateau_waits_while_improving():
    model, rates = _model(0.5), _Rates()
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, min_delta=0.0)
    model.fit(*_data(), epochs=3, batch_size=40, verbose=0, shuffle=False, callbacks=[cb, rates])
    assert rates.rates == pytest.approx([0.5, 0.5, 0.5])  # full-batch descent improves every epoch


def test_reduce_lr_on_plateau_bad_arguments_and_monitor():
    for kwargs, name in (({"factor": 1.0}, "factor"), ({"patience": -1}, "patience"),
                         ({"min_lr": -1.0}, "min_lr"), ({"mode": "up"}, "mode")):
        with pytest.raises(InputError, match=name):
            keras.callbacks.ReduceLROnPlateau(**kwargs)
    with pytest.raises(InputError, match="monitor"):
        _model().fit(*_data(), epochs=1, verbose=0, callbacks=[keras.callbacks.ReduceLROnPlateau()])


def test_monitored_callbacks_skip_epochs_that_validation_freq_leaves_out(tmp_path):
    # Keras' callbacks skip an epoch without val_loss (validation_freq=2 validates epochs 2 and 4) instead of
    # stopping the fit with an error about the monitor
    x, y = _data()
    stop, model = keras.callbacks.EarlyStopping(patience=0), _model(lr=1e-9)
    hist = model.fit(x, y, epochs=4, verbose=0, validation_split=0.25, validation_freq=2, callbacks=[
        stop, keras.callbacks.ModelCheckpoint(str(tmp_path / "save_at_{epoch}.keras"), save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(patience=0, factor=0.5)])
    assert len(hist.history["loss"]) == 4 and len(hist.history["val_loss"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["save_at_2.keras"]  # lr 1e-9: epoch 4 is no better
    # epochs 2 and 4 counted: stopped (patience 0) and the rate halved once, at the non-improving epoch 4
    assert stop.stopped_epoch == 3 and model.optimizer.learning_rate == pytest.approx(5e-10)
    for cb in (keras.callbacks.EarlyStopping(monitor="val_los"),
               keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), monitor="val_los", save_best_only=True),
               keras.callbacks.ReduceLROnPlateau(monitor="val_los")):
        with pytest.raises(InputError, match="monitor"):  # a name never logged is still an error
            _model().fit(x, y, epochs=2, verbose=0, validation_split=0.25, validation_freq=2, callbacks=[cb])


def _diverging():
    """A regression whose first step, at a learning rate of 1e35, makes the weights infinite: the loss of
    the second batch is not finite."""
    torch.manual_seed(0)
    model = keras.Sequential([layers.Input((6,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e35), loss="mse")
    x, _ = _data()
    return model, x, np.full((len(x), 1), 1e3, dtype=np.float32)


def test_terminate_on_nan_stops_without_error():
    model, x, y = _diverging()
    seen = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, shuffle=False,
              callbacks=[keras.callbacks.TerminateOnNaN(), cb])
    assert model.history.epoch == []  # stopped inside the first epoch
    assert seen == [0, 1]  # batch 1 (the first with a non-finite loss) is the last one
    model, x, y = _diverging()
    with pytest.raises(TrainingError, match="loss became"):  # without it, fit stops with an error (nan_check)
        model.fit(x, y, epochs=1, batch_size=10, verbose=0, shuffle=False)


def test_lambda_callback_takes_keras3_batch_names():
    begun, ended = [], []
    cb = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: begun.append(batch),
                                        on_train_batch_end=lambda batch, logs: ended.append(logs["loss"]))
    _model().fit(*_data(), epochs=2, batch_size=20, verbose=0, callbacks=[cb])
    assert begun == [0, 1, 0, 1] and len(ended) == 4 and all(v > 0 for v in ended)
    with pytest.raises(InputError, match="not both"):
        keras.callbacks.LambdaCallback(on_batch_end=print, on_train_batch_end=print)


@pytest.mark.parametrize("callback", [
    lambda _: keras.callbacks.EarlyStopping(),  # Keras' default monitor is "val_loss"
    lambda _: keras.callbacks.ReduceLROnPlateau(),
    lambda folder: keras.callbacks.ModelCheckpoint(folder / "best.safetensors", save_best_only=True),
])
def test_a_validation_monitor_without_validation_data_is_refused_before_training(callback, tmp_path):
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(InputError, match=r"without validation data .* such as 'loss'; received 'val_loss'"):
        model.fit(*_data(), epochs=2, verbose=0, callbacks=[callback(tmp_path)])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    model.fit(*_data(), epochs=1, verbose=0, validation_split=0.25, callbacks=[callback(tmp_path)])
