"""compile/fit/evaluate/predict: Keras' epoch semantics, learning, reproducibility, resume, bad input."""

from __future__ import annotations

import gc
import os
import re
import warnings
import weakref

import numpy as np
import pytest
import torch

from pydlr import engine
from pydlr.errors import InputError, TrainingError
from pydlr.layers import Conv2D, Dense, Flatten, Input
from pydlr.train import losses, optimizers
from pydlr.train.callbacks import Callback as KerasStyleCallback
from pydlr.train.callbacks import CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint
from pydlr.train.events import Callback
from pydlr.utils import set_random_seed, to_categorical

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def quadrant_data(n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 noise images whose class (0-3) is the quadrant holding a bright 4x4 patch."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 0.5, size=(n, 8, 8, 1)).astype(np.float32)
    y = rng.randint(0, 4, size=n)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, r * 4:(r + 1) * 4, q * 4:(q + 1) * 4, 0] += 0.5
    return x, y.astype(np.int64)


def small_model(seed: int = 0, softmax: bool = True) -> engine.Sequential:
    set_random_seed(seed)
    return engine.Sequential([Input((8, 8, 1)), Conv2D(4, (3, 3), activation="relu"), Flatten(),
                              Dense(4, activation="softmax" if softmax else None)])


def weights(model) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


class CountSteps(Callback):
    def __init__(self):
        self.steps, self.sizes, self.seen = 0, [], []

    def after_step(self):
        self.steps += 1
        self.sizes.append(int(self.learn.xb.shape[0]))

    def before_epoch(self):
        self.seen.append(0)


def test_epoch_lengths_follow_the_seed_rules():
    from pydlr.data.batching import epoch_batches

    for n, spe, expected, last in [(2000, None, 100, 20), (2001, None, 101, 1), (2000, 150, 150, 20)]:
        b = epoch_batches(n, 20, spe, True, seed=0, epoch=0)
        assert len(b) == expected and len(b[-1]) == last
        if spe is None:
            assert sorted(torch.cat(b).tolist()) == list(range(n))


def test_one_update_per_batch_and_epoch_lengths():
    for n, bs, spe, expected, last in [(200, 20, None, 10, 20), (201, 20, None, 11, 1),
                                       (200, 20, 15, 15, 20)]:
        x = np.zeros((n, 8, 8, 1), np.float32)
        y = np.zeros(n, np.int64)
        m = small_model()
        m.compile("sgd", "sparse_categorical_crossentropy")
        cb = CountSteps()
        h = m.fit(x, y, batch_size=bs, epochs=1, steps_per_epoch=spe, verbose=0, callbacks=[cb])
        assert cb.steps == expected and cb.sizes[-1] == last
        assert h.params["steps"] == expected


def test_steps_beyond_data_cycle_through_every_sample():
    from pydlr.data.batching import epoch_batches

    batches = epoch_batches(100, 16, 13, True, seed=3, epoch=0)  # 208 samples from 100
    idx = torch.cat(batches)
    assert len(batches) == 13 and all(len(b) == 16 for b in batches)
    assert sorted(idx[:100].tolist()) == list(range(100))  # first pass is a permutation
    assert sorted(idx[100:200].tolist()) == list(range(100))  # then a fresh one


def test_fit_learns_and_evaluate_predict_follow_keras():
    x, y = quadrant_data(512)
    xt, yt = quadrant_data(256, seed=1)
    m = small_model()
    m.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
              metrics=["accuracy", "top_k"])
    h = m.fit(x, to_categorical(y, 4), batch_size=32, epochs=5, validation_split=0.2, verbose=0,
              seed=0)
    assert set(h.history) == {"loss", "accuracy", "top_k_categorical_accuracy", "val_loss",
                              "val_accuracy", "val_top_k_categorical_accuracy"}
    assert h.epoch == [0, 1, 2, 3, 4] and h.history["loss"][-1] < h.history["loss"][0]
    loss, acc, top5 = m.evaluate(xt, to_categorical(yt, 4))
    assert acc >= 0.9 and top5 == 1.0 and loss < 0.5
    d = m.evaluate(xt, to_categorical(yt, 4), return_dict=True)
    assert d == pytest.approx({"loss": loss, "accuracy": acc, "top_k_categorical_accuracy": top5})
    p = m.predict(xt, batch_size=50)
    assert p.shape == (256, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    classes = m.predict_classes(xt)
    assert (classes == p.argmax(1)).all() and (classes == yt).mean() == pytest.approx(acc)


def test_from_logits_loss_and_predict_proba():
    x, y = quadrant_data(256)
    m = small_model(softmax=False)
    m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    m.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0)
    logits = m.predict(x[:10])
    proba = m.predict_proba(x[:10])
    np.testing.assert_allclose(proba, torch.softmax(torch.from_numpy(logits), -1).numpy(), rtol=1e-6)
    assert (m.predict_classes(x[:10]) == logits.argmax(1)).all()


def test_softmax_and_sigmoid_outputs_train_on_their_logits_as_keras_on_tensorflow():
    # A softmax head with from_logits=False (Keras' default) computes the cross-entropy from the softmax's input:
    # the value of clipped probabilities where they are not clipped, and a gradient where clipping gives none.
    from pydlr.layers.activations import LOGITS_ATTRIBUTE, get

    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [40.0, 0.0, 0.0, 0.0]], requires_grad=True)
    probs = get("softmax")(logits)
    assert getattr(probs, LOGITS_ATTRIBUTE)[1] is logits
    target = torch.tensor([1, 2])  # the second sample's class has probability e^-40: clipped at 1e-7
    for loss in (losses.get_loss("sparse_categorical_crossentropy"), losses.get_loss("categorical_crossentropy")):
        t = target if loss.kind == "sparse" else torch.nn.functional.one_hot(target, 4).float()
        value = loss(probs, t)
        torch.testing.assert_close(value, torch.nn.functional.cross_entropy(logits, target))
        clipped = loss(probs.detach().clone().requires_grad_(), t)  # a plain tensor: Keras' clipped formula
        assert clipped.item() == pytest.approx((-np.log(np.exp(1) / np.exp([0, 1, 2, 3]).sum()) - np.log(1e-7)) / 2,
                                               rel=1e-5)
        grad, = torch.autograd.grad(value, logits)
        assert grad[1].abs().sum() > 0.5  # the confidently wrong sample still teaches
        per = loss.per_sample(probs, t)
        torch.testing.assert_close(per, torch.nn.functional.cross_entropy(logits, target, reduction="none"))
    # Anything computed from the softmax output is probabilities only: the clipped formula.
    sliced = probs[:, :4] * 1.0
    assert getattr(sliced, LOGITS_ATTRIBUTE, None) is None
    # A sigmoid output's logits serve the binary cross-entropy, never the categorical ones (nor softmax's the
    # binary one).
    z = torch.tensor([[-30.0], [2.0]], requires_grad=True)
    p = get("sigmoid")(z)
    yb = torch.tensor([[1.0], [0.0]])
    bce = losses.get_loss("binary_crossentropy")
    torch.testing.assert_close(bce(p, yb), torch.nn.functional.binary_cross_entropy_with_logits(z, yb))
    assert torch.autograd.grad(bce(p, yb), z)[0][0].abs() > 0.4  # p = 1e-13 for a positive: clipping gives 0
    two = get("sigmoid")(torch.tensor([[0.2, 0.9]]))
    sparse = losses.get_loss("sparse_categorical_crossentropy")
    assert sparse(two, torch.tensor([1])).item() == pytest.approx(-np.log(torch.sigmoid(torch.tensor(0.9)).item()),
                                                                  rel=1e-6)  # the probabilities, as given
    soft = get("softmax")(torch.tensor([[0.2, 0.9]]))
    assert bce(soft, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy(soft, torch.tensor([[0.0, 1.0]])).item(), rel=1e-6)
    # Fitted, the softmax head and the logits head with from_logits=True follow the same losses.
    x, y = quadrant_data(256)
    histories = []
    for softmax in (True, False):
        m = small_model(softmax=softmax)
        m.compile("adam", "sparse_categorical_crossentropy" if softmax
                  else losses.SparseCategoricalCrossentropy(from_logits=True))
        histories.append(m.fit(x, y, batch_size=32, epochs=2, verbose=0, seed=0).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-5)


def test_binary_and_mse_losses_train():
    x, y = quadrant_data(256)
    yb = (y % 2).astype(np.float32)
    set_random_seed(0)
    m = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = m.fit(x, yb, batch_size=16, epochs=8, verbose=0, seed=1)
    assert h.history["accuracy"][-1] > 0.8
    assert set(np.unique(m.predict_classes(x))) <= {0, 1}
    r = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(1)])
    r.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    h = r.fit(x, yb, batch_size=16, epochs=3, verbose=0, seed=1)
    assert h.history["loss"][-1] < h.history["loss"][0] and "mae" in h.history


def test_class_weight_changes_the_loss():
    x, y = quadrant_data(128)
    res = []
    for cw in (None, {0: 5.0, 1: 1.0, 2: 1.0, 3: 1.0}):
        m = small_model()
        m.compile("sgd", "sparse_categorical_crossentropy")
        res.append(m.fit(x, y, epochs=1, verbose=0, seed=0, class_weight=cw).history["loss"][0])
    assert res[1] > res[0] * 1.3


def test_class_weight_keys_and_weights_are_checked_before_any_work():
    # a class the model does not have was ignored, a negative weight taken: both silently
    x, y = quadrant_data(64)
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    before = weights(m)
    for cw, said in (({12: 2.0}, "keyed by class index 0..3 .*received 'the key 12'"),
                     ({"a": 1.0}, "keyed by class index 0..3"),
                     ({0: -1.0}, "finite weights >= 0; received '-1.0 for class 0'"),
                     ({1: float("nan")}, "finite weights >= 0")):
        for split in (0.0, 0.25):  # weighed before the split, or after it (the training part only)
            with pytest.raises(InputError, match=f"argument `class_weight` must be a dict|{said}") as caught:
                m.fit(x, y, epochs=1, verbose=0, class_weight=cw, validation_split=split)
            assert re.search(said, str(caught.value))
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    m.fit(x, y, epochs=1, verbose=0, class_weight={0: 2.0, np.int64(3): 1})  # NumPy keys, classes left out


def test_same_seed_gives_bit_identical_weights_other_seed_differs():
    x, y = quadrant_data(256)
    runs = []
    for seed in (7, 7, 8):
        m = small_model(0)
        m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        m.fit(x, y, batch_size=32, epochs=2, verbose=0, seed=seed)
        runs.append(weights(m))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2], strict=True))


class Interrupt(Callback):
    def __init__(self, epoch: int, batch: int, exc: type[BaseException]):
        self.at, self.exc = (epoch, batch), exc

    def before_batch(self):
        if (self.learn.epoch, self.learn.iter) == self.at:
            raise self.exc()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_resume_after_interrupt_is_bit_identical(tmp_path, exc):
    x, y = quadrant_data(256)
    ref = small_model(0)
    ref.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    ref.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=5,
            resume=tmp_path / "new" / "ref.ckpt")  # its folder is created at the first write
    assert (tmp_path / "new" / "ref.ckpt").is_file()

    path = tmp_path / "run.ckpt"
    m = small_model(0)
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    with pytest.raises(exc):
        m.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=5, resume=path,
              callbacks=[Interrupt(1, 3, exc)])
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        import json

        assert json.loads(f.metadata()["meta"])["epoch"] == 1  # the last complete epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "run.ckpt"]  # no temp file left

    fresh = small_model(123)  # other initial weights: the checkpoint restores them
    fresh.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    h = fresh.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=5, resume=path)
    assert h.epoch == [0, 1, 2]
    assert h.history["loss"] == ref.history.history["loss"]
    assert all(torch.equal(a, b) for a, b in zip(weights(ref), weights(fresh), strict=True))


def test_bad_input_fails_before_training(tmp_path):
    x, y = quadrant_data(64)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    before = weights(m)
    bad = x.copy()
    bad[3, 2, 2, 0] = np.nan
    cases = [
        (dict(x=x, y=y + 4), "labels in 0..3"),
        (dict(x=x, y=y[:-1]), "64 samples"),
        (dict(x=bad, y=y), "finite"),
        (dict(x=x[:, :6], y=y), "shape"),
        (dict(x=x, y=y, batch_size=0), "batch_size"),
        (dict(x=x, y=y, batch_size=-3), "batch_size"),
        (dict(x=x, y=y, resume="/proc/pydlr/ckpt"), "resume"),
        (dict(x=x, y=y, callbacks=["nope"]), "callbacks"),
        (dict(x=x, y=y, device="mps"), "device` must be 'auto', 'cpu' or 'cuda"),  # torch's own error before
        (dict(x=x, y=y, device="meta"), "device"),
    ]
    for kwargs, text in cases:
        with pytest.raises(InputError, match=text):
            m.fit(verbose=0, **kwargs)
    with pytest.raises(InputError, match="filepath"):
        ModelCheckpoint("/proc/pydlr/best.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    assert not os.path.exists("/proc/pydlr")
    with pytest.raises(InputError, match="compiled"):
        small_model().fit(x, y, verbose=0)
    with pytest.raises(InputError, match="loss"):
        m.compile("adam", "hinge_of_doom")


@pytest.mark.parametrize("shuffle", ["yes", "batch", 1, None])
def test_fit_refuses_a_shuffle_that_is_not_true_or_false(shuffle):
    x, y = quadrant_data(32)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    before = weights(m)
    with pytest.raises(InputError, match=r"fit: argument `shuffle` must be True or False; received "
                       + repr(shuffle).replace("'", "'?")):
        m.fit(x, y, verbose=0, shuffle=shuffle)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    for ok in (False, np.bool_(True)):
        assert len(m.fit(x, y, verbose=0, shuffle=ok, epochs=1).history["loss"]) == 1


@pytest.mark.parametrize("as_tensor", [False, True])
def test_complex_x_is_refused_before_any_work(as_tensor):
    x, y = quadrant_data(32)
    xc = (x + 1j * x).astype(np.complex64)
    xc = torch.from_numpy(xc) if as_tensor else xc
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    before = weights(m)
    calls = {"fit": lambda: m.fit(xc, y, verbose=0), "predict": lambda: m.predict(xc, verbose=0),
             "evaluate": lambda: m.evaluate(xc, y, verbose=0)}
    for where, call in calls.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no torch "discards the imaginary part" warning on the way
            with pytest.raises(InputError, match=rf"{where}: argument `x` must be a real numeric array; "
                               r"received (ndarray|Tensor) of shape \(32, 8, 8, 1\) and dtype .*complex64"):
                call()
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    np.testing.assert_allclose(m.predict(np.real(xc.numpy() if as_tensor else xc), verbose=0).sum(axis=1), 1,
                               rtol=1e-5)  # the real part goes through


def test_nan_loss_stops_with_a_clear_message():
    class PoisonLoss(Callback):
        def after_loss(self):
            if self.learn.iter == 2:
                self.learn.loss = self.learn.loss * float("nan")

    x, y = quadrant_data(64)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, batch 3"):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[PoisonLoss()])


def test_callbacks_early_stopping_checkpoint_csv_lambda(tmp_path):
    x, y = quadrant_data(128)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    seen = []
    csv_path = tmp_path / "log.csv"
    best = tmp_path / "best.safetensors"
    cbs = [EarlyStopping(monitor="loss", mode="max", patience=1),  # loss falls: stops at epoch 3
           ModelCheckpoint(best, monitor="loss", save_best_only=True),
           CSVLogger(csv_path), LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))]
    h = m.fit(x, y, epochs=10, verbose=0, seed=0, callbacks=cbs)
    assert h.epoch == [0, 1] and seen == [0, 1]
    assert best.exists()
    # Keras' `best`: the highest loss for mode "max" (the first epoch's), the lowest for the checkpoint
    assert cbs[0].best == h.history["loss"][0] and cbs[1].best == min(h.history["loss"])
    rows = csv_path.read_text().strip().splitlines()
    assert rows[0] == "epoch,loss,accuracy" and len(rows) == 3

    class StopAfterBatches(KerasStyleCallback):
        def on_train_batch_end(self, batch, logs=None):
            assert "loss" in logs and self.params["steps"] == 4
            if batch == 1:
                self.model.stop_training = True

    counter = CountSteps()
    m.fit(x, y, epochs=3, verbose=0, callbacks=[StopAfterBatches(), counter])
    assert counter.steps == 2


def test_early_stopping_restores_the_best_weights_also_when_all_epochs_ran():
    # Keras 3 restores in on_train_end whether or not the fit stopped early: a fit that ran out of epochs
    # after its best one kept the last epoch's weights here, silently the worse model
    x, y = quadrant_data(128)
    m = small_model()
    m.compile(optimizers.SGD(learning_rate=5.0), "sparse_categorical_crossentropy")  # a rate that wanders
    snapshots = []
    keep = LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(
        {k: v.detach().clone() for k, v in m.state_dict().items()}))
    stop = EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    h = m.fit(x, y, epochs=6, verbose=0, seed=0, validation_split=0.25, callbacks=[keep, stop])
    assert len(h.epoch) == 6 and stop.stopped_epoch == 0  # no early stop
    best = int(np.argmin(h.history["val_loss"]))
    assert best < 5 and stop.best_epoch == best and stop.best == min(h.history["val_loss"])
    assert all(torch.equal(v, snapshots[best][k]) for k, v in m.state_dict().items())


def test_progress_lines_dynamic_and_plain():
    x, y = quadrant_data(64)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    out: list[str] = []
    m.fit(x, y, batch_size=16, epochs=2, verbose=1, print_fn=lambda s, end="\n": out.append(s + end),
          dynamic_progress=False)
    text = "".join(out)
    assert len(out) == 2  # one line an epoch: "Epoch i/n" and the finished bar together (knitr, logs)
    assert out[1].startswith("Epoch 2/2 - 4/4 [")
    assert "\r" not in text and text.count("Epoch ") == 2 and text.count("4/4 [") == 2
    assert "loss: " in text and "accuracy: " in text
    out.clear()
    m.fit(x, y, batch_size=16, epochs=1, verbose=1, print_fn=lambda s, end="\n": out.append(s + end),
          dynamic_progress=True)
    assert "\r" in "".join(out)
    out.clear()
    m.fit(x, y, epochs=1, verbose=2, print_fn=lambda s, end="\n": out.append(s + end))
    assert len(out) == 1 and out[0].startswith("Epoch 1/1 - ")
    out.clear()
    m.fit(x, y, epochs=1, verbose=0, print_fn=lambda s, end="\n": out.append(s))
    assert out == []


def test_learner_and_mixin_work_on_a_plain_torch_module():
    from torch import nn

    from pydlr.data.batching import ArrayBatches
    from pydlr.train import Learner
    from pydlr.train.losses import get_loss
    from pydlr.train.metrics import get_metric

    class Net(engine.TrainingMixin, nn.Module):  # NHWC in, logits out
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 4)

        def forward(self, x):
            h = torch.relu(self.conv(x.permute(0, 3, 1, 2)))
            return self.fc(h.flatten(1))

    x, y = quadrant_data(256)
    torch.manual_seed(0)
    net = Net()
    net.compile(optimizers.Adam(learning_rate=0.01),
                losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    h = net.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0)
    assert h.history["accuracy"][-1] > 0.8 and net.predict(x[:5]).shape == (5, 4)

    torch.manual_seed(0)
    raw = Net()
    learn = Learner(raw, get_loss("sparse_categorical_crossentropy", from_logits=True),
                    torch.optim.Adam(raw.parameters(), lr=0.01),
                    [get_metric("accuracy", "sparse", True)])
    data = ArrayBatches(torch.from_numpy(x), torch.from_numpy(y), 32, seed=0)
    hist = learn.fit(3, data)
    assert hist.history["accuracy"][-1] > 0.8 and hist.epoch == [0, 1, 2]


def test_functional_model_trains_like_sequential():
    set_random_seed(0)
    inp = Input((8, 8, 1))
    h = Flatten()(Conv2D(4, (3, 3), activation="relu")(inp))
    m = engine.Model(inp, Dense(4, activation="softmax")(h))
    m.compile(optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy", ["accuracy"])
    x, y = quadrant_data(256)
    h = m.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0)
    assert h.history["accuracy"][-1] > 0.8 and m.evaluate(x, y)[1] > 0.8


def test_a_keras_style_script_runs_with_the_import_line_changed():
    import pydlr as keras
    from pydlr import layers

    x, y = quadrant_data(320)
    y_cat = keras.utils.to_categorical(y, 4)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x, y_cat, batch_size=16, epochs=6, validation_split=0.1, verbose=0)
    score = model.evaluate(x, y_cat, verbose=0)
    assert isinstance(score, list) and len(score) == 2 and score[1] >= 0.8
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]


def test_optimizers_use_keras_defaults():
    params = [torch.nn.Parameter(torch.zeros(3))]
    adam = optimizers.get("adam").build(params).param_groups[0]
    assert adam["lr"] == 1e-3 and adam["eps"] == 1e-7 and adam["betas"] == (0.9, 0.999)
    rms = optimizers.get("rmsprop").build(params).param_groups[0]
    assert rms["lr"] == 1e-3 and rms["alpha"] == 0.9 and rms["eps"] == 1e-7 and rms["momentum"] == 0
    adamw = optimizers.get("adamw").build(params).param_groups[0]
    assert adamw["weight_decay"] == 0.004 and adamw["eps"] == 1e-7
    sgd = optimizers.get("sgd", momentum=0.9, nesterov=True).build(params).param_groups[0]
    assert sgd["lr"] == 0.01 and sgd["momentum"] == 0.9 and sgd["nesterov"]
    with pytest.raises(InputError, match="optimizer"):
        optimizers.get("adagrad")
    with pytest.raises(InputError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1)


def test_optimizer_arguments_keras_renamed_or_pydlr_lacks_are_named():
    # Keras 2 tutorials write Adam(lr=...): the error names the argument and the Keras 3 spelling
    from pydlr.errors import NotSupportedError

    with pytest.raises(InputError, match=r"argument `lr` must be written learning_rate="):
        optimizers.Adam(lr=1e-3)
    with pytest.raises(InputError, match="InverseTimeDecay"):
        optimizers.SGD(learning_rate=0.1, decay=1e-6)
    with pytest.raises(NotSupportedError, match=r"RMSprop\(clipvalue=...\) is not supported.*learning_rate"):
        optimizers.RMSprop(clipvalue=1.0)
    with pytest.raises(NotSupportedError, match="clipnorm"):
        optimizers.get("adam", clipnorm=1.0)
    with pytest.raises(InputError, match="argument `betas` must be one of Adam's arguments: amsgrad, beta_1"):
        optimizers.Adam(betas=(0.9, 0.99))
    assert optimizers.SGD(learning_rate=0.1, nesterov=True, momentum=0.9).nesterov  # its own arguments pass


class HoldsFitData(Callback):
    """Weak references to the fit's batch sources and training tensor (taken at the start of the fit)."""

    def before_fit(self):
        self.refs = [weakref.ref(self.learn.train_data), weakref.ref(self.learn.valid_data),
                     weakref.ref(self.learn.train_data.x)]


def test_fit_frees_its_data_when_it_returns_without_the_cyclic_collector():
    # The Learner and its callbacks refer to each other (a cycle); the float32 copy of x must not wait for
    # Python's cyclic collector, whose timing depends on everything the process did before.
    x, y = quadrant_data(256)
    x = x.astype(np.float64)  # converted by fit: the float32 tensor is fit's own
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    spy = HoldsFitData()
    gc.collect()
    gc.disable()
    try:
        model.fit(x, y, batch_size=32, epochs=1, validation_split=0.25, verbose=0, callbacks=[spy])
        alive = [ref() is not None for ref in spy.refs]
    finally:
        gc.enable()
    assert len(spy.refs) == 3 and alive == [False, False, False]
    assert spy.learn is not None and spy.learn.xb is None and spy.learn.pred is None
