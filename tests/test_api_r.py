"""pydlr.api_r: the narrow API the R package calls (plain values in, plain values out)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pydlr.api_r import cluster, datasets, errors, models, saving, training
from pydlr.errors import InputError, NotSupportedError, TrainingError

SEED_LAYERS = [
    ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
]


def build(layers, input_shape=(28, 28, 1)):
    model = models.Sequential(list(input_shape))
    for kind, config in layers:
        models.add(model, models.layer(kind, config))
    return model


def tiny(loss: str = "sparse_categorical_crossentropy"):
    model = build([("Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2, "activation": "relu"}),
                   ("Flatten", {}), ("Dense", {"units": 3, "activation": "softmax"})], (8, 8, 1))
    training.compile(model, "adam", loss, ["accuracy"])
    return model


def toy_data(n: int = 60, seed: int = 0):
    """Three classes that differ by which third of the image is bright."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.random((n, 8, 8, 1)).astype(np.float32) * 0.2
    for i, label in enumerate(y):
        x[i, :, label * 2:label * 2 + 3, 0] += 1.0
    return x, y.astype(np.int32)


def test_seed_cnn_summary_numbers_through_the_api():
    model = build(SEED_LAYERS)
    table = models.summary_table(model)
    assert list(table) == ["layer", "type", "output_shape", "params", "trainable"]
    assert table["output_shape"] == ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)",
                                     "(None, 5, 5, 64)", "(None, 3, 3, 64)"]
    assert table["params"] == [320, 0, 18496, 0, 36928]
    assert models.count_params(model) == 55744
    assert "Total params: 55,744" in models.summary(model)
    for kind, config in [("Flatten", {}), ("Dense", {"units": 64, "activation": "relu"}),
                         ("Dense", {"units": 10, "activation": "softmax"})]:
        models.add(model, models.layer(kind, config))
    assert models.count_params(model) == 93322


def test_same_padding_and_model_info():
    model = build([("Conv2D", {"filters": 32, "kernel_size": [3, 3], "padding": "same"})])
    assert models.summary_table(model)["output_shape"][0] == "(None, 28, 28, 32)"
    info = models.model_info(model)
    assert info["built"] and not info["compiled"]
    assert info["input_shape"] == [28, 28, 1] and info["n_layers"] == 1 and info["params"] == 320


def test_input_shape_on_the_first_layer_and_only_there():
    model = models.Sequential()
    models.add(model, models.layer("Flatten", {"input_shape": [4, 4]}))
    models.add(model, models.layer("Dense", {"units": 2}))
    assert models.count_params(model) == 34
    with pytest.raises(InputError, match="input_shape"):
        models.add(model, models.layer("Dense", {"units": 2, "input_shape": [3]}))


def test_layers_come_from_the_core_registry_and_bad_ones_raise_before_any_work():
    from pydlr import layers

    assert "Conv2D" in models.layer_names() and "DepthwiseConv2D" in models.layer_names()
    assert all(isinstance(getattr(layers, name), type) for name in models.layer_names())
    assert "InputLayer" not in models.layer_names()
    with pytest.raises(NotSupportedError, match="LSTM"):
        models.layer("LSTM", {"units": 3})
    with pytest.raises(InputError, match="foo"):
        models.layer("Dense", {"units": 3, "foo": 1})
    with pytest.raises(InputError, match="kernel_size"):
        build([("Conv2D", {"filters": 2, "kernel_size": 9})], (5, 5, 1))


def test_a_model_is_added_as_a_layer():
    base = build([("Conv2D", {"filters": 2, "kernel_size": 3})], (6, 6, 1))
    outer = models.Sequential([6, 6, 1])
    models.add(outer, base)
    models.add(outer, models.layer("Flatten"))
    assert models.count_params(outer) == 20 + 0


def test_optimizer_specs_use_the_core_registry():
    model = tiny()
    training.compile(model, {"name": "sgd", "args": {"learning_rate": 0.05, "momentum": 0.9}},
                     "sparse_categorical_crossentropy", ["accuracy"])
    spec = model._optimizer_spec
    assert type(spec).__name__ == "SGD" and spec.learning_rate == 0.05 and spec.momentum == 0.9
    with pytest.raises(InputError, match="adagrad"):
        training.compile(model, {"name": "adagrad", "args": {}}, "mse")
    with pytest.raises(InputError, match="loss"):
        training.compile(model, "adam", None)


def test_fit_forwards_by_name_and_returns_plain_history():
    x, y = toy_data()
    model = tiny()
    lines: list[tuple[str, str]] = []
    out = training.fit(model, x, y, batch_size=20, epochs=3, validation_split=0.2, verbose=2, seed=1,
                       print_fn=lambda text, end="\n": lines.append((text, end)), dynamic_progress=False)
    assert set(out) == {"metrics", "epoch", "params", "warnings"} and out["warnings"] == []
    assert out["epoch"] == [1, 2, 3]  # 1-based for R
    assert set(out["metrics"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(isinstance(v, float) for v in out["metrics"]["loss"])
    assert out["params"]["epochs"] == 3 and out["params"]["batch_size"] == 20
    epoch_lines = [text for text, _ in lines if text.startswith("Epoch")]
    assert len(epoch_lines) == 3 and "loss:" in epoch_lines[-1]


def test_fit_defaults_are_the_engines():
    """R sends no batch size and verbose = "auto": the engine's own defaults decide (32, 1)."""
    x, y = toy_data(70)
    model = tiny()
    out = training.fit(model, x, y, epochs=1, batch_size=None, verbose="auto",
                       print_fn=lambda text, end="\n": None, dynamic_progress=False)
    assert out["params"]["batch_size"] == 32 and out["params"]["steps"] == 3
    assert out["params"]["verbose"] == 1


def test_fit_evaluate_predict_learn_the_toy_problem():
    x, y = toy_data(90)
    model = tiny()
    training.fit(model, x, y, batch_size=10, epochs=15, seed=0, verbose=0)
    score = training.evaluate(model, x, y)["metrics"]
    assert list(score) == ["loss", "accuracy"] and score["accuracy"] >= 0.9
    probs = training.predict(model, x)["out"]
    assert probs.shape == (90, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    classes = training.predict_classes(model, x)["out"]
    assert classes.dtype == np.int32 and np.array_equal(classes, probs.argmax(axis=1))


def test_fortran_ordered_views_like_the_r_bridge_gives():
    x, y = toy_data()
    xf = np.asfortranarray(x.astype(np.float64))  # R's column-major doubles, same indices
    model = tiny()
    ref = training.predict(model, np.ascontiguousarray(x))["out"]
    assert np.allclose(training.predict(model, xf)["out"], ref, atol=1e-6)
    with pytest.raises(InputError, match="x"):
        training.fit(model, [[1, 2]], y, verbose=0)


def test_lambda_callbacks_get_plain_arguments():
    x, y = toy_data()
    model = tiny()
    calls = []
    cb = training.callback("LambdaCallback",
                           {"on_epoch_end": lambda epoch, logs: calls.append((epoch, logs))})
    training.fit(model, x, y, epochs=2, callbacks=[cb], verbose=0)
    assert [c[0] for c in calls] == [0, 1]  # Keras' 0-based epochs
    assert isinstance(calls[0][1]["loss"], float)
    with pytest.raises(NotSupportedError, match="RemoteMonitor"):
        training.callback("RemoteMonitor", {})


def test_keras_callbacks_by_class_name(tmp_path):
    assert {"EarlyStopping", "ModelCheckpoint", "CSVLogger", "LambdaCallback",
            "LearningRateScheduler"} <= set(training.callback_names())
    x, y = toy_data()
    model = tiny()
    stop = training.callback("EarlyStopping", {"monitor": "loss", "min_delta": 100.0, "patience": 0})
    csv = training.callback("CSVLogger", {"filename": str(tmp_path / "log.csv")})
    rates = []
    sched = training.callback("LearningRateScheduler",
                              {"schedule": lambda epoch, lr: rates.append(lr) or [lr / 2]})
    out = training.fit(model, x, y, epochs=6, callbacks=[stop, csv, sched], verbose=0)
    assert len(out["epoch"]) < 6 and rates
    assert (tmp_path / "log.csv").read_text().count("\n") == len(out["epoch"]) + 1


def test_save_load_round_trip_bit_exact(tmp_path):
    x, y = toy_data()
    model = tiny()
    training.fit(model, x, y, epochs=1, seed=0, verbose=0)
    path = str(tmp_path / "m.pydlr")
    assert saving.save_model(model, path) == path
    loaded = saving.load_model(path)
    for a, b in zip(models.get_weights(loaded), models.get_weights(model), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(training.predict(loaded, x)["out"], training.predict(model, x)["out"])


def test_plain_python_models_load_as_trainable(tmp_path):
    from pydlr import io
    from pydlr import models as core_models

    path = str(tmp_path / "seed.pydlr")
    io.save_model(core_models.seed_cnn(), path)
    loaded = saving.load_model(path)
    assert hasattr(loaded, "fit") and models.count_params(loaded) == 93322


def test_datasets_are_int32_with_keras_shapes():
    data = datasets.load_mnist()
    assert data["x_train"].shape == (4000, 28, 28) and data["x_test"].shape == (1000, 28, 28)
    assert data["x_train"].dtype == np.int32 and data["y_train"].dtype == np.int32
    assert data["x_train"].flags["C_CONTIGUOUS"]
    lfw = datasets.load_lfw_subset()
    assert lfw["x"].shape == (200, 25, 25) and lfw["y"].sum() == 100 and lfw["y"][0] == 0
    cat = datasets.example_image("chelsea")
    assert cat.dtype == np.int32 and cat.shape[2] == 3 and cat.max() <= 255
    with pytest.raises(InputError, match="name"):
        datasets.example_image("lena")


def test_error_info_carries_class_notes_and_fields():
    info = errors.error_info(InputError("filters", "a positive integer", -3, where="Conv2D"))
    assert info["r_class"] == "pydlr_input_error" and info["argument"] == "filters"
    assert info["python_class"] == "pydlr.errors.InputError" and info["notes"] == []
    assert "received -3" in info["message"]
    assert errors.error_info(NotSupportedError("x"))["r_class"] == "pydlr_not_supported_error"
    assert errors.error_info(TrainingError("nan"))["r_class"] == "pydlr_training_error"
    exc = RuntimeError("boom")
    exc.add_note("(raised by callback my_cb at after_epoch, epoch 2)")
    info = errors.error_info(exc)
    assert info == {"r_class": None, "pydlr": False, "python_class": "RuntimeError", "message": "boom",
                    "notes": ["(raised by callback my_cb at after_epoch, epoch 2)"]}


def test_get_weights_are_keras_layout_copies():
    model = tiny()
    weights = models.get_weights(model)
    assert [w.shape for w in weights] == [(3, 3, 1, 4), (4,), (36, 3), (3,)]
    assert all(w.flags["C_CONTIGUOUS"] for w in weights)
    for a, b in zip(weights, model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    weights[0][...] = 0
    assert not torch.all(next(iter(model.state_dict().values())) == 0)


def test_kmeans_fits_in_one_call_with_r_kmeans_fields():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    out = cluster.kmeans(x, 2, random_state=0)
    assert out["centers"].shape == (2, 2) and out["labels"].dtype == np.int32
    assert len(set(out["labels"][:30])) == 1 and out["labels"][0] != out["labels"][-1]
    assert abs(sum(out["withinss"]) - out["inertia"]) < 1e-4 * out["inertia"] and out["totss"] > out["inertia"]
    assert np.array_equal(cluster.predict(out["model"], x), out["labels"])
    table = cluster.compare({"km": {"labels": out["labels"]}}, np.repeat([0, 1], 30))
    assert table["method"] == ["km"] and table["accuracy"] == [1.0]


def test_error_messages_for_r_give_their_advice_in_r_syntax():
    from pydlr.data.image_workers import BadImageError

    info = errors.error_info(BadImageError("/data/cats/x.png", "OSError: image file is truncated"))
    assert info["r_class"] == "pydlr_training_error"
    assert "on_bad_file = \"skip\"" in info["message"] and "on_bad_file='skip'" not in info["message"]
    assert '"/data/cats/x.png"' in info["message"]  # a quoted value in R's quotes
    assert errors.in_r_syntax("pass shuffle=True, seed=None or label_mode='int'.") == \
        'pass shuffle = TRUE, seed = NULL or label_mode = "int".'
    assert errors.in_r_syntax("received {'a': 1} and Dense(3)") == "received {'a': 1} and Dense(3)"
    # what R passed as NULL / TRUE is named so, not as Python's None / True
    info = errors.error_info(InputError("rdzv_endpoint", "'host:port'", None, where="pydlr_torchrun()"))
    assert info["message"].endswith("received NULL.")
    assert errors.error_info(InputError("shuffle", "a flag", True))["message"].endswith("received TRUE.")
    assert errors.error_info(InputError("x", "y", "None"))["message"].endswith('received "None".')


def test_error_messages_for_r_quote_values_and_name_the_function_as_r_does():
    info = errors.error_info(InputError("device", "'auto', 'cpu' or 'cuda[:i]'", "tpu", where="fit"))
    assert info["message"] == 'fit(): argument `device` must be "auto", "cpu" or "cuda[:i]"; received "tpu".'
    # apostrophes, lists and dicts (Python's repr, whole), and names that already say () stay as they are
    assert errors.in_r_syntax("the model's outputs (Keras' rule): ['a', 'b'] {'k': 1}") == \
        "the model's outputs (Keras' rule): c(\"a\", \"b\") {'k': 1}"
    assert errors.in_r_syntax("pydlr_torchrun(): x") == "pydlr_torchrun(): x"
    # flat lists as R's c(); indexing, nested lists and dicts as written
    assert errors.in_r_syntax("got [1, -2.5] and [] not [[1], [2]], x[0] or {'a': [1]}") == \
        "got c(1, -2.5) and c() not [[1], [2]], x[0] or {'a': [1]}"


def test_error_messages_for_r_name_the_r_functions_users_call():
    # where an error was raised and the callbacks and classes it mentions, by their R names
    assert errors.in_r_syntax("Conv2D: got 'same'") == 'layer_conv_2d(): got "same"'
    assert errors.in_r_syntax("ModelCheckpoint: x") == "callback_model_checkpoint(): x"
    assert errors.in_r_syntax("KMeans.fit: x") == "pydlr_kmeans(): x"
    assert errors.in_r_syntax('Conv2D "conv2d_3": x') == 'layer_conv_2d(): layer "conv2d_3": x'
    assert errors.in_r_syntax("Conv2D 'c1': x") == 'layer_conv_2d(): layer "c1": x'
    assert errors.in_r_syntax("Sequential 'seq': x") == 'model "seq": x'
    # a model's method in advice as R's verb; advice in both languages as R's part
    assert errors.in_r_syntax("(call model.compile(optimizer=..., loss=...) first)") == \
        "(call compile(model, optimizer = ..., loss = ...) first)"
    assert errors.in_r_syntax("x: for one sample: x[None] in Python, array(x, c(1, dim(x))) in R; got") == \
        "x(): for one sample: array(x, c(1, dim(x))); got"
    assert errors.in_r_syntax("move them with np.moveaxis(x, 1, -1) in Python, aperm(x, c(1, 3, 4, 2)) in R") == \
        "move them with aperm(x, c(1, 3, 4, 2))"
    assert errors.in_r_syntax("fit: pass an Augment or an ImageDataset; Augment(flip='horizontal')") == (
        'fit(): pass an augmentation() or an image dataset from image_dataset_from_directory(); '
        'Augment(flip = "horizontal")')
    exc = InputError("monitor", "one of the logged values ['accuracy', 'loss']", "val_acc", where="EarlyStopping")
    exc.add_note("(raised by callback EarlyStopping at after_epoch, epoch 1, batch 19)")
    info = errors.error_info(exc)
    assert info["message"] == ('callback_early_stopping(): argument `monitor` must be one of the logged values '
                               'c("accuracy", "loss"); received "val_acc".')
    assert info["notes"] == ["(raised by callback_early_stopping() at after_epoch, epoch 1, batch 19)"]


def test_layer_classes_map_to_the_r_functions_the_package_exports():
    root = Path(__file__).resolve().parents[1] / "r-package"
    exports = set(re.findall(r"^export\(([^)]+)\)", (root / "NAMESPACE").read_text(), re.M))
    used = {m for f in (root / "R").glob("*.R") for m in re.findall(r'\.layer\(\w+, "(\w+)"', f.read_text())}
    assert len(used) >= 20
    assert {c: errors.r_function(c) for c in used if errors.r_function(c) not in exports} == {}
    assert set(errors.R_FUNCTIONS.values()) - exports == set()


def test_error_messages_for_r_use_r_argument_names():
    info = errors.error_info(InputError("path", "a pydlr model file (use load_weights for a bare weights file)",
                                        "/tmp/w.safetensors", where="load_model"))
    assert info["argument"] == "filepath"
    assert info["message"] == ('load_model(): argument `filepath` must be a pydlr model file (use '
                               'load_model_weights() for a bare weights file); received "/tmp/w.safetensors".')


def test_error_messages_for_r_count_list_elements_from_one():
    info = errors.error_info(InputError("validation_data[1]", "class labels in 0..9", "labels in 1..10",
                                        where="fit"))
    assert info["argument"] == "validation_data[[2]]"
    assert errors.error_info(InputError("validation_data[[2]]", "z", 1, where="fit"))["argument"] == "validation_data[[2]]"
    assert info["message"] == "fit(): argument `validation_data[[2]]` must be class labels in 0..9; received labels in 1..10."
    x, y = toy_data(30)
    with pytest.raises(InputError) as caught:
        training.fit(tiny(), x, y, epochs=1, verbose=0, validation_data=(x[:, :2], y))
    assert errors.error_info(caught.value)["message"].startswith("fit(): argument `validation_data[[1]]` must be")


def test_error_messages_for_r_describe_what_came_as_r_would():
    def received(value):
        return errors.error_info(InputError("y", "z", value, where="fit"))["message"].split("; received ")[1]

    assert received("labels in 1..10") == "labels in 1..10."  # a description, not a value
    assert received(20.0) == "20." and received(0.25) == "0.25." and received(float("nan")) == "NaN."
    assert received("cpu") == '"cpu".' and received("/my photos/a.png") == '"/my photos/a.png".'
    assert received(np.zeros((600, 10), np.float32)) == "a double matrix of dim c(600, 10)."
    assert received(torch.zeros(5, dtype=torch.int64)) == "an integer vector of length 5."
    assert received(np.zeros((2, 3, 4), bool)) == "a logical array of dim c(2, 3, 4)."
    assert received(["a", "b"]) == 'c("a", "b").'
    model = tiny()
    assert received(model) == f'the model "{model.name}".' and received(model.layers[0]).startswith('the layer "')
