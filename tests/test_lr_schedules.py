"""Keras' learning-rate schedules as an optimizer's rate, and ReduceLROnPlateau."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from pydlr.errors import InputError
from pydlr.train import (
    CosineDecay,
    ExponentialDecay,
    PiecewiseConstantDecay,
    ReduceLROnPlateau,
)

sys.path.insert(0, os.path.dirname(__file__))


def test_schedules_give_keras_rates():
    e = ExponentialDecay(0.1, 10, 0.5)
    assert [e(s) for s in (0, 10, 20)] == pytest.approx([0.1, 0.05, 0.025])
    assert ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)
    c = CosineDecay(0.1, 100, alpha=0.1)
    assert [c(s) for s in (0, 50, 100, 1000)] == pytest.approx([0.1, 0.055, 0.01, 0.01])
    w = CosineDecay(0.0, 100, warmup_target=0.2, warmup_steps=10)
    assert [w(s) for s in (0, 5, 10, 60)] == pytest.approx([0.0, 0.1, 0.2, 0.1])
    p = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [p(s) for s in (10, 11, 21)] == [1.0, 0.5, 0.1]
    with pytest.raises(InputError):
        PiecewiseConstantDecay([10, 20], [1.0, 0.5])
    with pytest.raises(InputError):
        ExponentialDecay(0.1, 0, 0.5)


def _model(lr):
    from pydlr import engine
    from pydlr.layers import Dense, Input
    from pydlr.train.optimizers import SGD
    from pydlr.utils import set_random_seed

    set_random_seed(3)
    m = engine.Sequential([Input((4,)), Dense(3, activation="softmax")])
    m.compile(SGD(learning_rate=lr), "sparse_categorical_crossentropy")
    return m


def _data():
    rng = np.random.RandomState(5)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def _flat(m):
    return np.concatenate([w.ravel() for w in m.get_weights()])


def test_a_schedule_as_learning_rate_sets_the_rate_of_each_batch():
    x, y = _data()
    sched = _model(PiecewiseConstantDecay([1], [0.5, 1e-30]))
    sched.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    two = _model(0.5)
    two.fit(x, y, batch_size=16, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(_flat(sched), _flat(two), atol=1e-7)


def test_reduce_lr_on_plateau_reduces_after_patience_and_respects_min_lr():
    x, y = _data()
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9, min_lr=0.2)
    m = _model(1.0)
    m.fit(x, y, batch_size=16, epochs=4, seed=1, verbose=0, callbacks=[cb])
    # epoch 1 improves on inf; epochs 2, 3 halve (0.5, 0.25); epoch 4 stops at min_lr
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
    with pytest.raises(InputError):
        ReduceLROnPlateau(factor=1.5)
