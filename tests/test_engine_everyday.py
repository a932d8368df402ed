"""The everyday workflow's engine defects, each pinned: the optimizer's rate set from a callback, compile
atomic, validation_split on sorted classes, a loss that does not fit the outputs, Learner.validate."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_train_engine import quadrant_data, small_model, weights

from pydlr import engine
from pydlr.errors import InputError
from pydlr.layers import Dense, Flatten, Input
from pydlr.train import optimizers
from pydlr.train.callbacks import Callback as KerasStyleCallback
from pydlr.utils import set_random_seed

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


class ZeroRate(KerasStyleCallback):
    """Keras' way of changing the rate from a callback."""

    def on_train_begin(self, logs=None):
        self.before = self.model.optimizer.learning_rate
        self.model.optimizer.learning_rate = 0.0


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adamw"])
def test_learning_rate_set_in_a_callback_changes_the_real_optimizer(optimizer):
    x, y = quadrant_data(64)
    m = small_model()
    m.compile(optimizer, "sparse_categorical_crossentropy")
    assert isinstance(m.optimizer, torch.optim.Optimizer)  # there after compile, as in Keras
    before = weights(m)
    cb = ZeroRate()
    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb], seed=0)
    assert cb.before == pytest.approx(0.01 if optimizer == "sgd" else 0.001)
    assert m.optimizer.learning_rate == 0.0
    assert all(g["lr"] == 0.0 for g in m.optimizer.param_groups)
    # no update at all (AdamW's decoupled weight decay is scaled by the rate too)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))


def test_learning_rate_of_a_torch_optimizer_passed_to_compile():
    x, y = quadrant_data(64)
    m = small_model()
    m.compile(torch.optim.SGD(m.parameters(), lr=0.05), "sparse_categorical_crossentropy")
    assert m.optimizer.learning_rate == pytest.approx(0.05)
    before = weights(m)
    m.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ZeroRate()])
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    with pytest.raises(InputError, match="learning_rate"):
        m.optimizer.learning_rate = -1.0


def test_optimizer_of_a_model_without_weights_yet_is_the_spec_until_fit():
    x, y = quadrant_data(64)
    m = engine.Sequential([Flatten(), Dense(4, activation="softmax")])  # no input shape: no weights
    m.compile(optimizers.SGD(learning_rate=0.5), "sparse_categorical_crossentropy")
    assert m.optimizer is not None and m.optimizer.learning_rate == 0.5
    m.optimizer.learning_rate = 0.0  # before the first fit: the spec's rate is the one built
    m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert isinstance(m.optimizer, torch.optim.Optimizer) and m.optimizer.learning_rate == 0.0


def test_a_failed_compile_changes_nothing():
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    config, optimizer = m.get_compile_config(), m.optimizer
    for kwargs, text in [(dict(optimizer="adma", loss="mse"), "optimizer"),
                         (dict(optimizer="sgd", loss="mse", metrics=["acuracy"]), "metric"),
                         (dict(optimizer="sgd", loss="hinge_of_doom"), "loss"),
                         (dict(optimizer="sgd", loss="mse", run_eagerly=True), "compile arguments")]:
        with pytest.raises(InputError, match=text):
            m.compile(**kwargs)
        assert m.get_compile_config() == config and m.optimizer is optimizer
    fresh = small_model()
    with pytest.raises(InputError):
        fresh.compile(optimizer="adma", loss="mse")
    assert not getattr(fresh, "compiled", False) and getattr(fresh, "optimizer", None) is None


def sorted_by_class(per_class: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """40 samples of each class, class after class (what a folder reader returns)."""
    x, y = quadrant_data(400)
    idx = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(4)])
    return x[idx], y[idx]


def test_validation_split_of_data_sorted_by_class_warns_with_the_fix():
    x, y = sorted_by_class()
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    with pytest.warns(UserWarning, match=r"class\(es\) in it \(3\) never occur.*[Ss]huffle"):
        h = m.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
    assert len(h.history["val_accuracy"]) == 1  # Keras' rule is kept: the last 25% validate
    order = np.random.RandomState(0).permutation(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(x[order], y[order], epochs=1, verbose=0, validation_split=0.25)  # shuffled: silent


def test_a_probability_loss_on_a_last_layer_without_activation_warns():
    from pydlr.train import losses

    x, y = sorted_by_class()
    m = small_model(softmax=False)
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match='last layer has no activation: give it a "softmax" activation'):
        m.fit(x, y, epochs=1, verbose=0, shuffle=False)
    m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))  # logits said so: silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(x, y, epochs=1, verbose=0)
        soft = small_model()
        soft.compile("adam", "sparse_categorical_crossentropy")
        soft.fit(x, y, epochs=1, verbose=0)


def test_a_class_loss_on_sigmoid_outputs_or_a_one_unit_softmax_warns():
    # Dense(4, activation="sigmoid") with categorical_crossentropy: Keras-TF trains it as a softmax, Keras-torch
    # divides by the sum, pydlr reads the raw sigmoids; Dense(1, activation="softmax") outputs 1 always
    x, y = quadrant_data(32)
    set_random_seed(0)
    m = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(4, activation="sigmoid")])
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match='activation is "sigmoid", whose outputs do not sum to 1'):
        m.fit(x, y, epochs=1, verbose=0)
    one = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(1, activation="softmax")])
    one.compile("adam", "binary_crossentropy")
    with pytest.warns(UserWarning, match="softmax over one unit: its output is always 1"):
        one.fit(x, (y > 1).astype(np.float32), epochs=1, verbose=0)
    sig = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(1, activation="sigmoid")])
    sig.compile("adam", "binary_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sig.fit(x, (y > 1).astype(np.float32), epochs=1, verbose=0)


def test_one_sample_without_its_batch_axis_gets_the_fix_in_the_error():
    x, y = quadrant_data(8)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(InputError, match=r"a batch of one: x\[None\] in Python, x\[i, , , , drop = FALSE\] or"):
        m.predict(x[0])  # (8, 8, 1)
    # (8, 8): from grey n x 8 x 8 data, or R's x[1, , , ] that drops the channel too
    with pytest.raises(InputError, match=r"x\[i, , , drop = FALSE\] \(x\[i, , , , drop = FALSE\] for data with a "):
        m.predict(x[0, :, :, 0])
    with pytest.raises(InputError) as err:  # another shape: no such advice
        m.predict(x[:, :6])
    assert "batch of one" not in str(err.value)
    assert m.predict(x[0][None]).shape == (1, 4)


def test_validation_split_warns_for_one_hot_labels_too():
    from pydlr.utils import to_categorical

    x, y = sorted_by_class()
    m = small_model()
    m.compile("adam", "categorical_crossentropy")
    with pytest.warns(UserWarning, match="never occur"):
        m.fit(x, to_categorical(y, 4), epochs=1, verbose=0, validation_split=0.25)


def ten_class_model(activation="softmax"):
    return engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(10, activation=activation)])


def test_mse_with_class_labels_against_ten_outputs_fails_at_fit_start():
    x, y = quadrant_data(10)
    m = ten_class_model()
    m.compile("adam", "mse")
    before = weights(m)
    # 10 samples and 10 outputs: torch would broadcast (10,) against (10, 10) without a word
    with pytest.raises(InputError, match=r"\(n, 10\).*sparse_categorical_crossentropy") as err:
        m.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert "must match" not in str(err.value)
    with pytest.raises(InputError, match="sparse_categorical_crossentropy"):
        m.evaluate(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))


@pytest.mark.parametrize("as_type", [np.asarray, torch.as_tensor, list])
def test_logical_labels_for_a_multiclass_softmax_fail_before_training(as_type):
    x, y = quadrant_data(16)
    logical = as_type(np.asarray(y) > 1)
    m = ten_class_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    before = weights(m)
    with pytest.raises(InputError, match=r"`y` must be class indices 0 to 9 .* 10-unit softmax; .*"
                                         r"Dense\(1, activation='sigmoid'\)") as err:
        m.fit(x, logical, epochs=1, verbose=0)
    assert "bool" in str(err.value) or "True" in str(err.value)  # says what came
    with pytest.raises(InputError, match="10-unit softmax"):
        m.evaluate(x, logical)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m), strict=True))
    from pydlr.utils import to_categorical
    m.compile("adam", "categorical_crossentropy")
    m.fit(x, to_categorical(np.asarray(y), 10).astype(bool), epochs=1, verbose=0)  # one-hot: fine
    sigmoid = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(1, activation="sigmoid")])
    sigmoid.compile("adam", "binary_crossentropy")
    sigmoid.fit(x, logical, epochs=1, verbose=0)  # two classes: what True/False mean


def test_binary_crossentropy_on_a_softmax_fails_at_compile():
    m = ten_class_model()
    with pytest.raises(InputError, match="10-unit softmax"):
        m.compile("adam", "binary_crossentropy")
    assert not getattr(m, "compiled", False)
    ten_class_model("sigmoid").compile("adam", "binary_crossentropy")  # multi-label: fine


def test_binary_targets_must_match_the_outputs():
    x, y = quadrant_data(64)
    m = ten_class_model("sigmoid")
    m.compile("adam", "binary_crossentropy")
    with pytest.raises(InputError, match=r"targets of shape \(n, 10\)"):
        m.fit(x, (y > 1).astype(np.float32), epochs=1, verbose=0)


def test_class_loss_on_one_output_fails_at_compile():
    m = engine.Sequential([Input((8, 8, 1)), Flatten(), Dense(1, activation="sigmoid")])
    with pytest.raises(InputError, match="binary_crossentropy"):
        m.compile("adam", "sparse_categorical_crossentropy")


def test_unbuilt_model_is_checked_when_fit_builds_it():
    x, y = quadrant_data(32)
    m = engine.Sequential([Flatten(), Dense(10, activation="softmax")])
    m.compile("adam", "binary_crossentropy")  # no shapes yet: fit checks
    with pytest.raises(InputError, match="10-unit softmax"):
        m.fit(x, y, epochs=1, verbose=0)


def test_evaluate_is_learner_validate():
    from pydlr.data.batching import ArrayBatches
    from pydlr.train import Learner

    x, y = quadrant_data(96)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=2, verbose=0, seed=0)
    m.train()
    logs = m.evaluate(x, y, batch_size=20, return_dict=True)
    assert m.training  # evaluate restores the mode it found
    learn = Learner(m, m._loss, m.optimizer, m._metrics)
    data = ArrayBatches(torch.from_numpy(x), torch.from_numpy(y), 20, shuffle=False)
    assert learn.validate(data) == pytest.approx(logs)
    assert set(logs) == {"loss", "accuracy"} and 0 <= logs["accuracy"] <= 1


def test_verbose_auto_is_one_rule():
    from pydlr.train.progress import resolve_verbose

    assert resolve_verbose("auto", True, "fit") == (1, True)
    assert resolve_verbose("auto", False, "fit") == (1, False)
    assert resolve_verbose(2, None, "fit")[0] == 2
    with pytest.raises(InputError, match="verbose"):
        resolve_verbose(True, None, "fit")
    x, y = quadrant_data(32)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    out: list[str] = []
    m.fit(x, y, epochs=1, print_fn=lambda s, end="\n": out.append(s), dynamic_progress=False)
    # "auto" is 1; its line is not live, so the epoch header and the finished bar share one line an epoch
    assert len(out) == 1 and out[0].startswith("Epoch 1/1 - 1/1 [=====")


def test_default_batch_size_is_written_once():
    from pydlr.data.batching import DEFAULT_BATCH_SIZE

    x, y = quadrant_data(100)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    h = m.fit(x, y, epochs=1, verbose=0)
    assert DEFAULT_BATCH_SIZE == 32 and h.params["steps"] == 4 and h.params["batch_size"] == 32


_FIRST_FIT = """
import sys
import numpy as np
from pydlr import engine
from pydlr.layers import Dense, Flatten, Input
layers = [Flatten(), Dense(4, activation="softmax")]
model = engine.Sequential(([Input((8, 8, 1))] if sys.argv[1] == "built" else []) + layers)
model.compile("adam", "sparse_categorical_crossentropy")
compiled = set(sys.modules)
x, y = np.random.rand(64, 8, 8, 1).astype("float32"), np.random.randint(0, 4, 64)
model.fit(x, y, epochs=1, verbose=0)
print("dynamo at compile:", "torch._dynamo" in compiled)
print("dynamo modules imported by the first fit:", sum(m.startswith("torch._dynamo") for m in set(sys.modules) - compiled))
"""


@pytest.mark.parametrize("model", ["built", "unbuilt"])
def test_first_fit_of_a_process_pays_no_one_time_import(model):
    """torch imports torch._dynamo (~800 modules, ~1 s) when a process builds its first optimizer: compile
    pays it, so a process's first fit runs like the later ones (it used to fall in the first fit)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT, model], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    assert "dynamo at compile: True" in out
    assert "dynamo modules imported by the first fit: 0" in out


def test_freezing_after_compile_rebuilds_the_optimizer_with_the_rate_set():
    x, y = quadrant_data(64)
    m = small_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.optimizer.learning_rate = 0.05
    conv = m.layers[0]
    conv.trainable = False
    frozen = [t.detach().clone() for t in conv.parameters()]
    m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    held = {id(p) for g in m.optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in m.parameters() if p.requires_grad} and m.optimizer.learning_rate == 0.05
    assert all(torch.equal(a, b) for a, b in zip(frozen, conv.parameters(), strict=True))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_loops_own_callbacks_leave_the_step_capturable(precision):
    """History, seeding, the NaN check and autocast act outside the training step, so a CUDA graph can
    capture it (pydlr.train.cuda_graphs refuses steps with callbacks inside)."""
    from pydlr.train import Learner
    from pydlr.train.cuda_graphs import _STEP_EVENTS
    from pydlr.train.losses import get_loss

    m = small_model()
    learn = Learner(m, get_loss("sparse_categorical_crossentropy"), torch.optim.SGD(m.parameters()),
                    precision=precision, nan_check_every=50)
    learn._build_handlers()
    assert {type(cb).__name__ for cb in learn.cbs} >= {"Recorder", "EpochSeed", "NanCheck"}
    assert all(not learn._handlers[e] for e in _STEP_EVENTS)


def test_output_shape_of_torchvision_style_models_needs_no_forward():
    from pydlr import models
    from pydlr.data.prepare import output_shape

    top = models.mobilenet_v2(num_classes=3, input_shape=(32, 32, 3))
    pooled = models.resnet18(include_top=False, pooling="avg", input_shape=(32, 32, 3))
    for model in (top, pooled):
        model.call_internal = None  # any forward pass would fail now
    assert output_shape(top, (32, 32, 3)) == (3,) and top.output_shape == (None, 3)
    assert output_shape(pooled, (32, 32, 3)) == (512,)
    assert models.mobilenet_v2(include_top=False, pooling="max",
                               input_shape=(32, 32, 3)).output_shape == (None, 1280)


def test_a_sequential_ending_in_a_nested_model_reports_its_output_shape():
    from pydlr import models

    inner = models.Sequential([Input((8,)), Dense(3)])
    outer = engine.Sequential([Input((8,)), inner])
    assert outer.output_shape == (None, 3)  # was (None, None, 3)
    outer.compile("adam", "mse")
    x, y = np.random.rand(16, 8).astype(np.float32), np.random.rand(16, 3).astype(np.float32)
    assert len(outer.fit(x, y, epochs=1, verbose=0).history["loss"]) == 1


@pytest.mark.parametrize("route", ["arrays", "dict_y"])
def test_validation_split_takes_keras_count_of_last_samples(route):
    # Keras trains on floor(n * (1 - split)) samples and validates on the rest: 90 / 11 of 101 at 0.1
    x, y = quadrant_data(101)
    if route == "dict_y":  # y keyed by output name: the structured-data route of fit
        inp = Input((8, 8, 1))
        m = engine.Model(inp, Dense(4, activation="softmax", name="out")(Flatten()(inp)))
    else:
        m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    targets = {"out": y} if route == "dict_y" else y
    h = m.fit(x, targets, batch_size=16, epochs=1, verbose=0, validation_split=0.1, shuffle=True, seed=0)
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(x[90:], y[90:], verbose=0), rel=1e-5)
    assert h.history["val_loss"][0] != pytest.approx(m.evaluate(x[91:], y[91:], verbose=0), rel=1e-5)


@pytest.mark.parametrize("route", ["arrays", "dict_y"])
def test_class_weight_weighs_training_only_and_sample_weight_both_parts(route):
    # Keras applies class_weight to the training part of a validation_split; sample_weight is split with x and
    # y and weighs the validation loss too
    x, y = quadrant_data(100)
    sw = np.linspace(0.1, 2.0, 100).astype(np.float32)
    for kwargs, tail_weights in (({"class_weight": {0: 5.0, 1: 0.1}}, None),
                                 ({"class_weight": {0: 5.0}, "sample_weight": sw}, sw[80:])):
        if route == "dict_y":
            inp = Input((8, 8, 1))
            m = engine.Model(inp, Dense(4, activation="softmax", name="out")(Flatten()(inp)))
        else:
            m = small_model()
        m.compile("adam", "sparse_categorical_crossentropy")
        targets = {"out": y} if route == "dict_y" else y
        h = m.fit(x, targets, batch_size=16, epochs=1, verbose=0, validation_split=0.2, seed=0, **kwargs)
        expected = m.evaluate(x[80:], y[80:], sample_weight=tail_weights, verbose=0)
        assert h.history["val_loss"][0] == pytest.approx(expected, rel=1e-5)


def test_channels_first_images_get_the_fix_in_the_error():
    x, y = quadrant_data(16)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(InputError, match=r"look channels first.*np\.moveaxis\(x, 1, -1\).*aperm"):
        m.fit(np.moveaxis(x, -1, 1), y, verbose=0)
    with pytest.raises(InputError) as err:  # another shape: no such advice
        m.predict(x[:, :6])
    assert "channels first" not in str(err.value)
