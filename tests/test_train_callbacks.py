"""Schedules, the LR finder, checkpoints through pydlr.io, on-the-fly augmentation in fit, bf16."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_train_engine import quadrant_data, small_model, weights

from pydlr import io
from pydlr.data import Augment
from pydlr.errors import InputError
from pydlr.train.callbacks import ModelCheckpoint
from pydlr.train.lr_find import lr_find
from pydlr.train.schedules import (
    LearningRateScheduler,
    ParamScheduler,
    cosine,
    fit_one_cycle,
    one_cycle,
    step,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def test_schedules_are_pure_functions():
    f = one_cycle(0.1, pct_start=0.25, div=25, div_final=1e4)
    assert f(0) == pytest.approx(0.004) and f(0.25) == pytest.approx(0.1)
    assert f(1) == pytest.approx(1e-5) and f(0.5) < 0.1
    c = cosine(1.0, 0.0)
    assert c(0) == 1.0 and c(0.5) == pytest.approx(0.5) and c(1) == pytest.approx(0.0)
    s = step(0.1, factor=0.5, every=2)
    assert [s(e) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_param_and_epoch_schedulers_set_the_optimizer_rate():
    x, y = quadrant_data(64)
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    sched = ParamScheduler(cosine(0.1, 0.0))
    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[sched])
    assert len(sched.lrs) == 8 and sched.lrs[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(sched.lrs, sched.lrs[1:], strict=False))
    seen = []
    m.fit(x, y, batch_size=16, epochs=3, verbose=0,
          callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1)),
                     ParamSpy(seen)])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])
    for number in (np.float32(0.02), torch.tensor(0.02)):  # as Keras takes them
        seen.clear()
        m.fit(x, y, batch_size=16, epochs=1, verbose=0,
              callbacks=[LearningRateScheduler(lambda epoch, lr, n=number: n), ParamSpy(seen)])
        assert seen == pytest.approx([0.02])
    with pytest.raises(InputError, match="positive learning rate"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: "0.1")])
    h = fit_one_cycle(m, x, y, epochs=2, max_lr=0.05, batch_size=16, verbose=0)
    assert len(h.epoch) == 2


class ParamSpy(LearningRateScheduler.__mro__[1]):  # a Learner callback
    order = 20

    def __init__(self, out):
        self.out = out

    def before_train(self):
        self.out.append(self.learn.opt.param_groups[0]["lr"])


def test_lr_find_records_a_curve_suggests_a_rate_and_restores_the_model():
    x, y = quadrant_data(256)
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    before = weights(m)
    res = lr_find(m, x, y, start_lr=1e-4, end_lr=100.0, num_it=60)
    assert 5 < len(res.lrs) <= 60 and res.lrs == sorted(res.lrs)
    assert 1e-4 <= res.suggestion <= 100 and math.isfinite(res.min_lr)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    assert not m.optimizer.state and m.optimizer.learning_rate == 0.01  # as compile left it
    ax = res.plot()
    assert ax.get_xscale() == "log"


def test_lr_find_and_one_cycle_leave_the_optimizer_as_a_later_fit_expects():
    # a schedule reads the optimizer's step count: lr_find's 30 steps made a later fit's decay start at
    # step 30; fit_one_cycle left its last rate (max_lr / 1e5), at which every later fit() trained
    from pydlr.train import optimizers

    x, y = quadrant_data(256)
    m = small_model()
    m.compile(optimizers.SGD(learning_rate=optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
              "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=64, verbose=0, seed=0)  # 4 steps
    assert m.optimizer.iterations == 4
    lr_find(m, x, y, num_it=30)
    assert m.optimizer.iterations == 4
    m2 = small_model()
    m2.compile(optimizers.SGD(learning_rate=0.05), "sparse_categorical_crossentropy")
    fit_one_cycle(m2, x, y, epochs=1, max_lr=1.0)
    assert m2.optimizer.learning_rate == 0.05


def test_model_checkpoint_saves_loadable_models(tmp_path):
    x, y = quadrant_data(128)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    cb = ModelCheckpoint(tmp_path / "m-{epoch:02d}.safetensors", monitor="loss")
    m.fit(x, y, epochs=2, verbose=0, seed=0, callbacks=[cb])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-01.safetensors", "m-02.safetensors"]
    loaded = io.load_model(tmp_path / "m-02.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(weights(m), weights(loaded), strict=True))
    np.testing.assert_allclose(loaded.evaluate(x, y), m.evaluate(x, y), rtol=1e-6)
    # continues training exactly as the original would (optimizer state saved and restored)
    m.fit(x, y, epochs=1, verbose=0, seed=9)
    loaded.fit(x, y, epochs=1, verbose=0, seed=9)
    assert all(torch.equal(a, b) for a, b in zip(weights(m), weights(loaded), strict=True))


def test_fit_with_augmentation_in_a_worker_matches_inline_and_learns():
    x, y = quadrant_data(256)
    aug = Augment(shift=0.05, brightness=0.05, value_range=(0, 1))
    runs = []
    for workers in (0, 1):
        m = small_model()
        m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        h = m.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=2, augment=aug, workers=workers)
        runs.append((weights(m), h.history["loss"]))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0], strict=True))
    assert runs[0][1] == runs[1][1] and runs[0][1][-1] < runs[0][1][0]


def test_bfloat16_autocast_on_cpu_trains():
    x, y = quadrant_data(256)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    h = m.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0, precision="bfloat16")
    assert h.history["loss"][-1] < h.history["loss"][0]
    # autocast leaves the weights float32 (master weights), and predict() answers in float32
    assert all(t.dtype == torch.float32 for t in m.state_dict().values() if t.is_floating_point())
    assert m.predict(x[:8], verbose=0).dtype == np.float32
    with pytest.raises(Exception, match="precision"):
        m.fit(x, y, epochs=1, verbose=0, precision="float16")


def test_model_checkpoint_formats_log_placeholders_like_keras(tmp_path):
    x, y = quadrant_data(128)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    cb = ModelCheckpoint(tmp_path / "ckpt_{epoch:02d}_{val_loss:.3f}.weights.safetensors",
                         save_weights_only=True)
    h = m.fit(x, y, epochs=2, verbose=0, seed=0, validation_split=0.25, callbacks=[cb])
    expected = [f"ckpt_{e + 1:02d}_{v:.3f}.weights.safetensors" for e, v in enumerate(h.history["val_loss"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    assert cb.last_saved == str(tmp_path / expected[-1])


def test_model_checkpoint_pattern_errors_name_the_fix(tmp_path):
    with pytest.raises(InputError, match=r'ModelCheckpoint\(".*ckpt_\{epoch:02d\}_\{val_loss:\.3f\}\.weights\.safetensors"\)'):
        ModelCheckpoint(tmp_path / "ckpt_{epoch:02d}_{val_loss:.3f}.weights.h5")  # HDF5: never written
    with pytest.raises(InputError, match="filepath"):
        ModelCheckpoint(tmp_path / "ckpt_{val_loss:02d}.safetensors")  # a float cannot format as :02d
    with pytest.raises(InputError, match="names"):
        ModelCheckpoint(tmp_path / "ckpt_{}.safetensors")
    x, y = quadrant_data(64)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    cb = ModelCheckpoint(tmp_path / "ckpt_{val_acc:.2f}.safetensors")  # not logged: named at the first save
    with pytest.raises(InputError, match=r"\{val_acc\}.*|val_acc") as info:
        m.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert "'loss'" in str(info.value)
