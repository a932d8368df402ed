"""Keras' inputs and extension points on pydlr's engine: several inputs and outputs, generators and
DataLoaders, custom losses and metrics, subclassed models and layers, Lambda, SeparableConv2D, plot_model
and MobileNetV2's preprocess_input (``import pydlr as keras``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import pydlr as keras
from pydlr.errors import InputError, NotSupportedError


def _two_in_two_out(seed: int = 0):
    keras.utils.set_random_seed(seed)
    a, b = keras.Input((6,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.concatenate([keras.layers.Dense(8, activation="relu")(a), b])
    out_a = keras.layers.Dense(4, activation="softmax", name="out_a")(h)
    out_b = keras.layers.Dense(1, name="out_b")(h)
    return keras.Model([a, b], [out_a, out_b])


def _data(n: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    xa, xb = rng.random((n, 6), dtype=np.float32), rng.random((n, 3), dtype=np.float32)
    ya = (xa[:, :4].argmax(axis=1)).astype(np.int64)
    yb = (xb.sum(axis=1, keepdims=True)).astype(np.float32)
    return xa, xb, ya, yb


# ----- the namespaces -------------------------------------------------------------------------------
def test_keras_model_classes_are_the_trainable_ones():
    for cls in (keras.Sequential, keras.Model, keras.models.Sequential, keras.models.Model):
        for method in ("compile", "fit", "evaluate", "predict", "train_on_batch", "save", "save_weights"):
            assert callable(getattr(cls, method, None)), (cls, method)
    assert callable(getattr(keras.models.seed_cnn(), "fit", None))
    model = keras.models.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    assert len(model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0).history["loss"]) == 1


def test_keras_names_outside_the_subset_say_what_pydlr_offers():
    # keras.layers.LSTM and keras.regularizers.l2 say why they fail, as R's layer_lstm() does
    with pytest.raises(NotSupportedError, match="no recurrent or text layers"):
        keras.layers.LSTM(4)
    with pytest.raises(NotSupportedError, match="ZeroPadding2D is not in pydlr; its layers are: .*Conv2D"):
        keras.layers.ZeroPadding2D()
    with pytest.raises(NotSupportedError, match=r"AdamW\(weight_decay"):
        keras.regularizers.l2(0.01)
    with pytest.raises(NotSupportedError, match='precision="bfloat16"'):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    # still AttributeErrors, so feature probes work
    assert not hasattr(keras.layers, "LSTM") and getattr(keras, "initializers", None) is None
    assert not hasattr(keras.layers, "lowercase_name") and hasattr(keras.layers, "Conv2D")


def test_every_public_subpackage_is_an_attribute_of_pydlr():
    # the README's pydlr.pretrained.load(...), pydlr.cluster.KMeans after a plain `import pydlr`; a fresh
    # interpreter, since another test may have imported them already
    code = ("import sys, pydlr; assert 'sklearn' not in sys.modules and 'pydlr.pretrained' not in sys.modules; "
            "print(pydlr.pretrained.load.__module__, pydlr.cluster.KMeans.__name__, "
            "pydlr.compare.compare_methods.__name__, pydlr.interpret.__name__, pydlr.applications.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["pydlr.pretrained.applications", "KMeans", "compare_methods", "pydlr.interpret", "pydlr.applications"]


def test_keras_loss_functions_compile_to_the_built_in_losses(tmp_path):
    # Keras' classic MNIST script: compile(loss=keras.losses.categorical_crossentropy, optimizer=Adadelta())
    y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]], np.float32)
    np.testing.assert_allclose(keras.losses.categorical_crossentropy(y, p).numpy(), -np.log((y * p).sum(1)),
                               rtol=1e-6)
    np.testing.assert_allclose(keras.losses.sparse_categorical_crossentropy(y.argmax(1), p).numpy(),
                               -np.log((y * p).sum(1)), rtol=1e-6)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=keras.losses.categorical_crossentropy, metrics=["accuracy"])
    x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
    model.fit(x, np.eye(3, dtype=np.float32)[np.arange(8) % 3], epochs=1, verbose=0)
    assert model.get_compile_config()["loss"]["name"] == "categorical_crossentropy"  # saved, not a user function
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").evaluate(x, np.eye(3)[np.arange(8) % 3], verbose=0)
    with pytest.raises(NotSupportedError, match=r"torch\.optim\.Adadelta\(model\.parameters\(\)\)"):
        keras.optimizers.Adadelta()


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
                                  "mean_squared_error", "mean_absolute_error", "mse", "mae"])
def test_keras_loss_functions_refuse_a_bad_from_logits(name):
    with pytest.raises(InputError, match="`from_logits` must be True or False"):
        getattr(keras.losses, name)(np.zeros((2, 3)), np.full((2, 3), 0.5), from_logits="yes")


# ----- several inputs and outputs -----------------------------------------------------------------
def test_two_inputs_two_outputs_fit_predict_and_history_keys():
    xa, xb, ya, yb = _data()
    model = _two_in_two_out()
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"],
                  metrics=[["accuracy"], ["mae"]])
    history = model.fit([xa, xb], [ya, yb], epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    keys = ["loss", "out_a_loss", "out_b_loss", "out_a_accuracy", "out_b_mae"]
    assert list(history.history) == keys + [f"val_{k}" for k in keys]
    assert all(len(v) == 2 for v in history.history.values())
    assert model.input_names == ["a", "b"] and model.output_names == ["out_a", "out_b"]
    pred_a, pred_b = model.predict({"a": xa, "b": xb}, batch_size=40)
    assert pred_a.shape == (96, 4) and pred_b.shape == (96, 1)
    np.testing.assert_allclose(pred_a.sum(axis=1), 1.0, rtol=1e-5)
    same = model.predict([xa, xb])  # a list in the inputs' order gives the same as the dict
    np.testing.assert_array_equal(same[0], pred_a)
    np.testing.assert_allclose(model.predict_on_batch([xa[:5], xb[:5]])[1], pred_b[:5], rtol=1e-5, atol=1e-6)


def test_metrics_names_and_loss_name_evaluate_and_compile_as_keras():
    # Keras scripts read dict(zip(model.metrics_names, model.evaluate(...))) and model.loss
    xa, xb, ya, yb = _data()
    model = _two_in_two_out()
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["acc"], ["mae"]])
    scores = model.evaluate([xa, xb], [ya, yb], verbose=0)
    assert dict(zip(model.metrics_names, scores, strict=True)) == model.evaluate([xa, xb], [ya, yb], verbose=0,
                                                                                   return_dict=True)
    assert model.metrics_names == ["loss", "out_a_loss", "out_b_loss", "out_a_acc", "out_b_mae"]
    assert model.loss == ["sparse_categorical_crossentropy", "mse"]
    one = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="softmax")])
    assert one.loss is None
    one.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert one.loss == "sparse_categorical_crossentropy" and one.metrics_names == ["loss", "accuracy"]


def test_loss_weights_weigh_the_total_loss():
    xa, xb, ya, yb = _data()
    results = []
    for weights in ({"out_a": 1.0, "out_b": 1.0}, {"out_a": 0.25, "out_b": 3.0}):
        model = _two_in_two_out(seed=1)
        model.compile(optimizer="sgd", loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
                      loss_weights=weights)
        logs = model.evaluate({"a": xa, "b": xb}, {"out_a": ya, "out_b": yb}, return_dict=True)
        assert logs["loss"] == pytest.approx(weights["out_a"] * logs["out_a_loss"]
                                             + weights["out_b"] * logs["out_b_loss"], rel=1e-5)
        results.append(logs)
    # same initial weights: the per-output losses agree, the totals differ as the weights say
    assert results[0]["out_a_loss"] == pytest.approx(results[1]["out_a_loss"], rel=1e-6)
    assert results[0]["loss"] != pytest.approx(results[1]["loss"], rel=1e-3)


def test_two_output_model_saves_and_loads_compiled(tmp_path: Path):
    xa, xb, ya, yb = _data()
    model = _two_in_two_out()
    model.compile(optimizer="adam", loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
                  loss_weights=[0.3, 2.0], metrics={"out_a": ["accuracy"]})
    model.fit([xa, xb], [ya, yb], epochs=1, verbose=0)
    model.save(tmp_path / "two.keras")
    loaded = keras.models.load_model(tmp_path / "two.keras")
    assert loaded.evaluate([xa, xb], [ya, yb], return_dict=True) == model.evaluate([xa, xb], [ya, yb],
                                                                                    return_dict=True)


def test_a_zero_loss_weight_leaves_that_output_untrained():
    xa, xb, ya, yb = _data()
    model = _two_in_two_out(seed=2)
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.0])
    before = model.get_layer("out_b").get_weights()[0].copy()
    model.fit([xa, xb], [ya, yb], epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(model.get_layer("out_b").get_weights()[0], before)


def test_several_inputs_are_checked_before_training():
    xa, xb, ya, yb = _data()
    model = _two_in_two_out()
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(InputError, match=r"x.*2 arrays, one per model input \(a, b\)"):
        model.fit([xa], [ya, yb], verbose=0)
    with pytest.raises(InputError, match=r"keys \['a', 'b'\].*\['a', 'c'\]"):
        model.fit({"a": xa, "c": xb}, [ya, yb], verbose=0)
    with pytest.raises(InputError, match=r"x\['b'\].*96 samples"):
        model.fit({"a": xa, "b": xb[:50]}, [ya, yb], verbose=0)
    with pytest.raises(InputError, match=r"y\['out_a'\].*labels in 0..3"):
        model.fit([xa, xb], [ya + 10, yb], verbose=0)
    with pytest.raises(InputError, match="class_weight"):
        model.fit([xa, xb], [ya, yb], class_weight={0: 2.0}, verbose=0)


def test_dicts_by_name_for_a_one_input_one_output_model():
    xa, _, ya, _ = _data()
    inputs = keras.Input((6,), name="features")
    outputs = keras.layers.Dense(4, activation="softmax", name="label")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss={"label": "sparse_categorical_crossentropy"}, metrics=["accuracy"])
    history = model.fit({"features": xa}, {"label": ya}, epochs=1, verbose=0)
    assert list(history.history) == ["loss", "accuracy"]
    np.testing.assert_array_equal(model.predict({"features": xa}), model.predict(xa))
    with pytest.raises(InputError, match=r"keys \['label'\]"):
        model.fit(xa, {"labels": ya}, verbose=0)


def test_a_list_for_a_one_input_model_is_named_not_an_object_array():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss="mse")
    xa, xb, _, _ = _data()
    with pytest.raises(InputError, match=r"x.*one array \(the model has one input.*shapes \[\(96, 6\), \(96, 3\)\]"):
        model.fit([xa, xb], np.zeros((96, 4)), verbose=0)


# ----- generators and DataLoaders -----------------------------------------------------------------
def _small_classifier(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_generator_fit_draws_exactly_steps_per_epoch_batches():
    xa, _, ya, _ = _data()
    drawn = []

    def batches():
        i = 0
        while True:
            drawn.append(i)
            idx = np.arange(i * 8, i * 8 + 8) % 96
            i += 1
            yield xa[idx], ya[idx]

    model = _small_classifier()
    history = model.fit(batches(), steps_per_epoch=5, epochs=3, verbose=0)
    assert len(drawn) == 15 and history.params["steps"] == 5
    with pytest.raises(InputError, match="sample_weight"):
        model.fit(batches(), steps_per_epoch=5, sample_weight=np.ones(8), verbose=0)
    assert model.optimizer.iterations == 15
    with pytest.raises(InputError, match="steps_per_epoch"):
        model.fit(batches(), epochs=1, verbose=0)


def test_a_generator_that_runs_out_is_named():
    xa, _, ya, _ = _data()
    model = _small_classifier()
    finite = ((xa[i:i + 8], ya[i:i + 8]) for i in range(0, 24, 8))  # 3 batches
    with pytest.raises(InputError, match="ran out of data in epoch 2"):
        model.fit(finite, steps_per_epoch=2, epochs=2, verbose=0)


def test_class_weight_applies_to_generator_batches():
    xa, _, ya, _ = _data()
    weights = {0: 4.0, 1: 1.0, 2: 1.0, 3: 0.5}
    results = []
    for source in ("arrays", "generator"):
        model = _small_classifier(seed=4)
        if source == "arrays":
            model.fit(xa, ya, batch_size=96, shuffle=False, class_weight=weights, verbose=0)
        else:
            model.fit(iter([(xa, ya)]), steps_per_epoch=1, class_weight=weights, verbose=0)
        results.append(model.get_weights()[0])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-7)


def test_dataloader_fit_evaluate_predict_match_the_arrays():
    xa, _, ya, _ = _data()
    model = _small_classifier()
    loader = DataLoader(TensorDataset(torch.from_numpy(xa), torch.from_numpy(ya)), batch_size=32, shuffle=True)
    history = model.fit(loader, epochs=2, verbose=0, validation_data=loader)
    assert history.params["steps"] == 3 and len(history.history["val_loss"]) == 2
    ordered = DataLoader(TensorDataset(torch.from_numpy(xa), torch.from_numpy(ya)), batch_size=32)
    loss, acc = model.evaluate(ordered)
    ref_loss, ref_acc = model.evaluate(xa, ya, batch_size=32)
    assert loss == pytest.approx(ref_loss, rel=1e-5) and acc == pytest.approx(ref_acc)
    np.testing.assert_allclose(model.predict(ordered), model.predict(xa), rtol=1e-6)
    assert model.predict(ordered, steps=2).shape == (64, 4)
    assert model.evaluate(ordered, steps=1, return_dict=True).keys() == {"loss", "accuracy"}


def test_pydataset_style_sequence_gives_its_batches_and_hears_epoch_ends():
    xa, _, ya, _ = _data()

    class Batches:  # Keras' PyDataset protocol: len() batches, batch i is self[i], on_epoch_end()
        epochs_ended = 0

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return xa[i * 24:(i + 1) * 24], ya[i * 24:(i + 1) * 24]

        def on_epoch_end(self):
            self.epochs_ended += 1

    source = Batches()
    model = _small_classifier()
    history = model.fit(source, epochs=2, verbose=0)
    assert history.params["steps"] == 4 and model.optimizer.iterations == 8 and source.epochs_ended == 2
    assert model.evaluate(source) == pytest.approx(model.evaluate(xa, ya, batch_size=24), rel=1e-5)


def test_generator_of_two_input_two_output_batches_with_sample_weights():
    xa, xb, ya, yb = _data()
    model = _two_in_two_out()
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])

    def batches():
        while True:
            for s in range(0, 96, 24):
                yield ({"a": xa[s:s + 24], "b": xb[s:s + 24]}, [ya[s:s + 24], yb[s:s + 24]],
                       np.ones(24, np.float32))

    history = model.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0, validation_data=batches(),
                        validation_steps=2)
    assert set(history.history) == {"loss", "out_a_loss", "out_b_loss", "val_loss", "val_out_a_loss",
                                    "val_out_b_loss"}


# ----- custom losses and metrics ------------------------------------------------------------------
def test_custom_loss_and_metric_functions_match_the_built_in_ones():
    xa, _, ya, _ = _data()

    def my_crossentropy(y_true, y_pred):
        return F.nll_loss(torch.log(y_pred.clamp(1e-7, 1 - 1e-7)), y_true, reduction="none")

    def my_accuracy(y_true, y_pred):
        return (y_pred.argmax(dim=-1) == y_true).float()

    model = _small_classifier()
    builtin = model.evaluate(xa, ya, return_dict=True, batch_size=20)
    model.compile(optimizer="adam", loss=my_crossentropy, metrics=[my_accuracy, "accuracy"])
    custom = model.evaluate(xa, ya, return_dict=True, batch_size=20)
    assert list(custom) == ["loss", "my_accuracy", "accuracy"]
    assert custom["loss"] == pytest.approx(builtin["loss"], rel=1e-5)
    assert custom["my_accuracy"] == pytest.approx(builtin["accuracy"]) == custom["accuracy"]
    weights = np.where(ya == 0, 3.0, 1.0).astype(np.float32)  # per-sample values: sample weights apply
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ref = model.evaluate(xa, ya, sample_weight=weights)
    model.compile(optimizer="adam", loss=my_crossentropy)
    assert model.evaluate(xa, ya, sample_weight=weights) == pytest.approx(ref, rel=1e-5)


def test_torch_module_as_metric():
    xa, _, _, yb = _data()
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=[torch.nn.L1Loss(reduction="none"), "mae"])
    logs = model.evaluate(xa, yb, return_dict=True)
    assert list(logs) == ["loss", "l1_loss", "mae"] and logs["l1_loss"] == pytest.approx(logs["mae"], rel=1e-6)


def test_torch_loss_module_on_logits():
    xa, _, ya, _ = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref = model.evaluate(xa, ya)
    model.compile(optimizer="adam", loss=torch.nn.CrossEntropyLoss(), metrics=["accuracy"])
    logs = model.evaluate(xa, ya, return_dict=True)
    assert logs["loss"] == pytest.approx(ref, rel=1e-5)
    assert logs["accuracy"] == pytest.approx(float((model.predict(xa).argmax(1) == ya).mean()))
    assert model.get_compile_config() is None  # a function cannot be saved: the model is saved uncompiled


# ----- subclassing --------------------------------------------------------------------------------
class _ChannelScale(keras.layers.Layer):
    def build(self, input_shape):
        self.seen_shape = tuple(input_shape)
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        assert inputs.shape[-1] == self.scale.shape[0]  # channels last, as in Keras
        return inputs * self.scale


class _Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3, activation="relu")
        self.scale = _ChannelScale()
        self.flatten = keras.layers.Flatten()
        self.out = keras.layers.Dense(2, activation="softmax")

    def call(self, inputs, training=False):
        x = self.scale(self.conv(inputs))
        self.last_shape = tuple(x.shape[1:])
        return self.out(self.flatten(x))


def test_subclassed_model_trains_predicts_and_round_trips_weights(tmp_path: Path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 3), dtype=np.float32)
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = _Net()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.last_shape == (6, 6, 4) and model.scale.seen_shape == (None, 6, 6, 4)
    assert model.predict(x).shape == (64, 2)
    assert model.count_params() == (3 * 9 * 4 + 4) + 4 + (6 * 6 * 4 * 2 + 2)
    path = tmp_path / "net.weights.safetensors"
    model.save_weights(path)
    again = _Net()
    again.build((None, 8, 8, 3))
    again.load_weights(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    with pytest.raises(NotSupportedError, match="save_weights"):
        model.save(tmp_path / "net.keras")


def test_subclassed_model_with_two_inputs():
    xa, xb, _, _ = _data()

    class TwoInputs(keras.Model):
        def __init__(self):
            super().__init__()
            self.join = keras.layers.Concatenate()
            self.dense = keras.layers.Dense(3)

        def call(self, inputs):
            a, b = inputs
            return self.dense(self.join([a, b]))

    model = TwoInputs()
    model.compile(optimizer="adam", loss="mse")
    model.fit([xa, xb], np.zeros((96, 3), np.float32), epochs=1, verbose=0)
    assert model.count_params() == 9 * 3 + 3 and model.predict([xa, xb]).shape == (96, 3)


def test_user_layer_in_a_functional_model_counts_its_weights():
    inputs = keras.Input((5, 5, 3))
    outputs = _ChannelScale()(keras.layers.Conv2D(6, 1)(inputs))
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 5, 5, 6)
    assert model.count_params() == 3 * 6 + 6 + 6
    x = np.random.default_rng(1).random((2, 5, 5, 3), dtype=np.float32)
    model.layers[-1].scale.data[:] = torch.arange(6.0)
    plain = keras.Model(inputs, model.layers[1].output).predict(x)
    np.testing.assert_allclose(model.predict(x), plain * np.arange(6.0), rtol=1e-6)


def test_user_layer_in_sequential_gets_the_training_flag():
    class NoisyDrop(keras.layers.Layer):
        def call(self, inputs, training=None):
            self.modes.append(training)
            return inputs * 0.5 if training else inputs

    layer = NoisyDrop()
    layer.modes = []
    model = keras.Sequential([keras.Input((3,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    assert model.output_shape == (None, 1)
    x = np.ones((4, 3), np.float32)
    layer.modes.clear()
    model.fit(x, np.zeros((4, 1)), batch_size=4, verbose=0)
    model.predict(x)
    assert layer.modes == [True, False]


def test_lambda_works_on_channels_last_tensors():
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Lambda(lambda t: t[..., :2] * 2.0)(inputs)
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 4, 4, 2)
    x = np.random.default_rng(2).random((3, 4, 4, 3), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x), x[..., :2] * 2.0, rtol=1e-6)
    with pytest.raises(NotSupportedError, match="Lambda"):
        model.get_config()


# ----- SeparableConv2D ----------------------------------------------------------------------------
@pytest.mark.parametrize("filters,kernel,channels,multiplier,bias,keras_params", [
    (64, 3, 32, 1, True, 2400),  # 3*3*32 + 32*64 + 64
    (8, (5, 3), 3, 2, True, 90 + 48 + 8),
    (16, 3, 8, 1, False, 72 + 128),
])
def test_separable_conv2d_counts_and_weights_as_keras(filters, kernel, channels, multiplier, bias,
                                                      keras_params):
    layer = keras.layers.SeparableConv2D(filters, kernel, depth_multiplier=multiplier, use_bias=bias,
                                         padding="same")
    model = keras.Sequential([keras.Input((10, 10, channels)), layer])
    assert model.count_params() == keras_params
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    shapes = [w.shape for w in layer.get_weights()]
    assert shapes == [(kh, kw, channels, multiplier), (1, 1, channels * multiplier, filters)] + (
        [(filters,)] if bias else [])
    assert model.output_shape == (None, 10, 10, filters)


def test_separable_conv2d_computes_depthwise_then_pointwise():
    keras.utils.set_random_seed(3)
    layer = keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, strides=2, activation="relu")
    model = keras.Sequential([keras.Input((9, 9, 3)), layer])
    dw, pw, b = layer.get_weights()
    b[:] = np.linspace(-0.5, 0.5, 5)
    layer.set_weights([dw, pw, b])
    x = np.random.default_rng(4).random((2, 9, 9, 3), dtype=np.float32)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    depth = F.conv2d(xt, torch.from_numpy(dw).permute(2, 3, 0, 1).reshape(6, 1, 3, 3), stride=2, groups=3)
    point = F.conv2d(depth, torch.from_numpy(pw).permute(3, 2, 0, 1), torch.from_numpy(b))
    np.testing.assert_allclose(model.predict(x), torch.relu(point).permute(0, 2, 3, 1).numpy(), atol=1e-5)


# ----- plot_model and preprocess_input ------------------------------------------------------------
def test_plot_model_writes_a_png(tmp_path: Path):
    keras.clear_session()  # Keras' automatic names from the start: dense, concatenate
    model = _two_in_two_out()
    path = tmp_path / "model.png"
    keras.utils.plot_model(model, to_file=str(path), show_shapes=True, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from pydlr.interpret.model_plot import model_graph

    rows, edges = model_graph(model)
    names = [r["layer"] for r in rows]
    assert sorted((names[a], names[b]) for a, b in edges) == sorted([
        ("a", "dense"), ("dense", "concatenate"), ("b", "concatenate"), ("concatenate", "out_a"),
        ("concatenate", "out_b")])
    with pytest.raises(InputError, match="pydot"):
        keras.utils.plot_model(model, to_file=str(tmp_path / "model.dot"))
    with pytest.raises(InputError, match="argument `to_file` must be a file in an existing folder"):
        keras.utils.plot_model(model, to_file=str(tmp_path / "missing" / "model.png"))


def test_mobilenet_v2_preprocess_input_keeps_the_shape_and_works_in_a_model():
    from pydlr.applications import mobilenet_v2

    x = np.random.default_rng(5).integers(0, 256, (2, 40, 50, 3)).astype(np.float32)
    out = mobilenet_v2.preprocess_input(x)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, (x / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    inputs = keras.Input((40, 50, 3))
    model = keras.Model(inputs, mobilenet_v2.preprocess_input(inputs))
    np.testing.assert_allclose(model.predict(x), out, rtol=1e-5, atol=1e-5)


def test_a_direct_model_call_runs_in_keras_inference_default_with_random_augmentation():
    # model(x) without training=: Keras runs Dropout/BatchNorm in inference (torch's training mode would give
    # random outputs and move BatchNormalization's statistics) and keeps RandomFlip & co. random (their
    # call(training=True))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dropout(0.5), keras.layers.BatchNormalization(),
                              keras.layers.Dense(2)])
    x = np.random.default_rng(0).random((16, 8), dtype=np.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(x).detach().numpy()
    np.testing.assert_allclose(out, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # statistics untouched
    assert not np.allclose(model(x, training=True).detach().numpy(), out)  # training=True still trains
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.zeros((16, 2), np.float32), epochs=1, verbose=0)
    np.testing.assert_allclose(model(x).detach().numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    flip = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=1)])
    images = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    flipped = [not np.array_equal(flip(images).numpy(), images) for _ in range(8)]
    assert any(flipped)  # random in a direct call, as Keras'
    assert np.array_equal(flip(images, training=False).numpy(), images)


def test_a_mode_set_by_the_user_is_kept_by_direct_calls_as_in_torch():
    # a hand-written torch loop (model.train(); model(x)) must train with Dropout and batch statistics,
    # whereas a model never put in a mode by its user runs a direct call in Keras' inference default
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dropout(0.5)])
    model = keras.Sequential([keras.Input((8,)), inner, keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    x = torch.from_numpy(np.random.default_rng(0).random((16, 8), dtype=np.float32))
    assert torch.equal(model(x), model(x))  # Keras' default: deterministic
    model.train()
    before = model.layers[1].running_mean.clone()
    assert not torch.equal(model(x), model(x))  # the nested model's Dropout is active too
    assert not torch.equal(before, model.layers[1].running_mean)  # batch statistics used and tracked
    model.eval()
    assert torch.equal(model(x), model(x))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x.numpy(), np.zeros((16, 2), np.float32), epochs=1, verbose=0)
    assert torch.equal(model(x), model(x)) and not model.training  # fit restores the user's eval()


def test_a_layer_called_on_its_own_runs_in_keras_default_unless_the_user_set_its_mode():
    x = torch.ones(64, 32)
    drop = keras.layers.Dropout(0.5)
    assert torch.equal(drop(x), x)  # Keras: a direct call without training= is inference
    assert not torch.equal(drop(x, training=True), x)
    drop.train()  # torch's way: the mode set by the user holds
    assert not torch.equal(drop(x), x)
    inputs = keras.Input((32,))
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Dropout(0.5)(inputs)))
    model.train()  # a Dropout placed in a functional graph from user code is not frozen in inference
    out = model(x)
    assert not torch.equal(out, model(x))


class _FailsOnDemand(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)
        self.fail = False

    def call(self, inputs):
        if self.fail:
            raise ValueError("the user's call failed")
        return self.dense(inputs)


def test_a_failed_inference_call_leaves_the_model_in_its_training_mode():
    # predict, build and summary switch to eval mode for their pass; a user's call that raises must not
    # leave the model there (it would then train without Dropout and with frozen BatchNormalization).
    model = _FailsOnDemand()
    x = np.ones((4, 3), np.float32)
    model.build((None, 3))
    model.train()
    model.fail = True
    with pytest.raises(ValueError, match="the user's call failed"):
        model.predict(x)
    assert model.training is True
    with pytest.raises(ValueError, match="the user's call failed"):
        model.predict_on_batch(x)
    assert model.training is True
    fresh = _FailsOnDemand()
    fresh.fail = True
    with pytest.raises(ValueError, match="the user's call failed"):
        fresh.build((None, 3))
    assert fresh.training is True
