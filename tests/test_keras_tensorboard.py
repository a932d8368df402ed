"""keras.callbacks.TensorBoard: event files in Keras' layout, read back with TensorBoard's own reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import pydlr as keras
from pydlr import layers
from pydlr.errors import InputError, NotSupportedError


def _events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_tensorboard_writes_epoch_batch_scalars_histograms_and_graph(tmp_path):
    layers.clear_session()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 40)
    model = keras.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3, activation="relu"), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    cb = keras.callbacks.TensorBoard(log_dir=tmp_path / "logs", histogram_freq=1, update_freq=2)
    hist = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.25, callbacks=[cb], verbose=0)

    train, valid = _events(tmp_path / "logs" / "train"), _events(tmp_path / "logs" / "validation")
    tags = set(train.Tags()["scalars"])
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss", "batch_accuracy"} <= tags
    for key in ("loss", "accuracy"):
        written = [e.value for e in train.Scalars(f"epoch_{key}")]
        assert [e.step for e in train.Scalars(f"epoch_{key}")] == [0, 1, 2]
        np.testing.assert_allclose(written, hist.history[key], rtol=1e-6)
        np.testing.assert_allclose([e.value for e in valid.Scalars(f"epoch_{key}")], hist.history[f"val_{key}"],
                                   rtol=1e-6)
    # 3 training batches an epoch (30 samples, batch 10), written every 2nd: steps 2, 4, 6, 8
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6, 8]
    np.testing.assert_allclose([e.value for e in train.Scalars("epoch_learning_rate")], 0.01, rtol=1e-6)
    assert "conv2d/weight" in train.Tags()["histograms"] and "dense/bias" in train.Tags()["histograms"]
    assert len(train.Histograms("conv2d/weight")) == 3
    assert train.Tags()["graph"]
    # the tracer reads every attribute: an uncalled layer's `output` must be an AttributeError (as Keras')
    assert not hasattr(layers.Dense(2), "output")


def test_tensorboard_arguments_are_checked(tmp_path):
    with pytest.raises(InputError, match="update_freq"):
        keras.callbacks.TensorBoard(tmp_path, update_freq="sometimes")
    with pytest.raises(InputError, match="histogram_freq"):
        keras.callbacks.TensorBoard(tmp_path, histogram_freq=-1)
    with pytest.raises(NotSupportedError, match="write_images"):
        keras.callbacks.TensorBoard(tmp_path, write_images=True)
