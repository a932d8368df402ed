"""pydlr.api_r: the narrow API the R package calls (plain values in, plain values out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pydlr import api_r
from pydlr.errors import InputError, NotSupportedError, TrainingError

SEED_LAYERS = [
    ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
]
HEAD = [("Flatten", {}), ("Dense", {"units": 64, "activation": "relu"}),
        ("Dense", {"units": 10, "activation": "softmax"})]


def build(layers, input_shape=(28, 28, 1)):
    model = api_r.new_sequential(list(input_shape))
    for kind, config in layers:
        api_r.add_layer(model, kind, config)
    return model


def tiny(loss: str = "sparse_categorical_crossentropy"):
    model = build([("Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2, "activation": "relu"}),
                   ("Flatten", {}), ("Dense", {"units": 3, "activation": "softmax"})], (8, 8, 1))
    api_r.compile_model(model, "adam", loss, ["accuracy"])
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
    table = api_r.summary_table(model)
    assert list(table) == ["layer", "type", "output_shape", "params", "trainable"]
    assert table["output_shape"] == ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)",
                                     "(None, 5, 5, 64)", "(None, 3, 3, 64)"]
    assert table["params"] == [320, 0, 18496, 0, 36928]
    assert api_r.count_params(model) == 55744
    assert "Total params: 55,744" in api_r.summary_text(model)
    api_r.add_layer(model, "Flatten", {})
    api_r.add_layer(model, "Dense", {"units": 64, "activation": "relu"})
    api_r.add_layer(model, "Dense", {"units": 10, "activation": "softmax"})
    assert api_r.count_params(model) == 93322


def test_same_padding_and_model_info():
    first = [("Conv2D", {"filters": 32, "kernel_size": [3, 3], "padding": "same"})]
    model = build(first)
    assert api_r.summary_table(model)["output_shape"][0] == "(None, 28, 28, 32)"
    info = api_r.model_info(model)
    assert info["built"] and not info["compiled"]
    assert info["input_shape"] == [28, 28, 1] and info["n_layers"] == 1 and info["params"] == 320


def test_input_shape_on_the_first_layer_and_only_there():
    model = api_r.new_sequential()
    api_r.add_layer(model, "Flatten", {"input_shape": [4, 4]})
    api_r.add_layer(model, "Dense", {"units": 2})
    assert api_r.count_params(model) == 34
    with pytest.raises(InputError, match="input_shape"):
        api_r.add_layer(model, "Dense", {"units": 2, "input_shape": [3]})


def test_bad_layers_raise_before_any_work():
    model = build([])
    with pytest.raises(NotSupportedError, match="LSTM"):
        api_r.add_layer(model, "LSTM", {"units": 3})
    with pytest.raises(InputError, match="foo"):
        api_r.add_layer(model, "Dense", {"units": 3, "foo": 1})
    with pytest.raises(InputError, match="kernel_size"):
        build([("Conv2D", {"filters": 2, "kernel_size": 9})], (5, 5, 1))
    with pytest.raises(InputError, match="model"):
        api_r.count_params("not a model")


def test_optimizer_specs_from_r():
    model = tiny()
    api_r.compile_model(model, {"name": "sgd", "args": {"learning_rate": 0.05, "momentum": 0.9}},
                        "sparse_categorical_crossentropy", "accuracy")
    spec = model._optimizer_spec
    assert type(spec).__name__ == "SGD" and spec.learning_rate == 0.05 and spec.momentum == 0.9
    with pytest.raises(NotSupportedError, match="adagrad"):
        api_r.compile_model(model, {"name": "adagrad", "args": {}}, "mse")
    with pytest.raises(InputError, match="loss"):
        api_r.compile_model(model, "adam", None)


def test_fit_returns_plain_history_and_prints_through_print_fn():
    x, y = toy_data()
    model = tiny()
    lines: list[tuple[str, str]] = []
    out = api_r.fit(model, x, y, batch_size=20, epochs=3, validation_split=0.2, verbose=2, seed=1,
                    print_fn=lambda text, end="\n": lines.append((text, end)), dynamic=False)
    assert set(out) == {"metrics", "epoch", "params"}
    assert out["epoch"] == [1, 2, 3]  # 1-based for R
    assert set(out["metrics"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(isinstance(v, float) for v in out["metrics"]["loss"])
    assert out["params"]["epochs"] == 3
    epoch_lines = [text for text, _ in lines if text.startswith("Epoch")]
    assert len(epoch_lines) == 3 and "loss:" in epoch_lines[-1]


def test_fit_evaluate_predict_learn_the_toy_problem():
    x, y = toy_data(90)
    model = tiny()
    api_r.fit(model, x, y, batch_size=10, epochs=15, seed=0)
    score = api_r.evaluate(model, x, y)
    assert list(score) == ["loss", "accuracy"] and score["accuracy"] >= 0.9
    probs = api_r.predict(model, x)
    assert probs.shape == (90, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    classes = api_r.predict(model, x, classes=True)
    assert classes.dtype == np.int32 and np.array_equal(classes, probs.argmax(axis=1))


def test_fortran_ordered_views_like_the_r_bridge_gives():
    x, y = toy_data()
    xf = np.asfortranarray(x.astype(np.float64))  # R's column-major doubles, same indices
    model = tiny()
    ref = api_r.predict(model, np.ascontiguousarray(x))
    assert np.allclose(api_r.predict(model, xf), ref, atol=1e-6)
    with pytest.raises(InputError, match="x"):
        api_r.fit(model, [[1, 2]], y)


def test_lambda_callbacks_get_plain_arguments():
    x, y = toy_data()
    model = tiny()
    calls = []
    cb = api_r.make_callback("lambda", {"on_epoch_end": lambda epoch, logs: calls.append((epoch, logs))})
    api_r.fit(model, x, y, epochs=2, callbacks=[cb])
    assert [c[0] for c in calls] == [0, 1]  # Keras' 0-based epochs
    assert isinstance(calls[0][1]["loss"], float)
    with pytest.raises(NotSupportedError, match="tensorboard"):
        api_r.make_callback("tensorboard", {})
    with pytest.raises(InputError, match="on_step"):
        api_r.make_callback("lambda", {"on_step": print})


def test_keras_callbacks_by_name(tmp_path):
    x, y = toy_data()
    model = tiny()
    stop = api_r.make_callback("early_stopping", {"monitor": "loss", "min_delta": 100.0, "patience": 0})
    csv = api_r.make_callback("csv_logger", {"filename": str(tmp_path / "log.csv")})
    out = api_r.fit(model, x, y, epochs=6, callbacks=[stop, csv])
    assert len(out["epoch"]) < 6
    assert (tmp_path / "log.csv").read_text().count("\n") == len(out["epoch"]) + 1


def test_save_load_round_trip_bit_exact(tmp_path):
    x, y = toy_data()
    model = tiny()
    api_r.fit(model, x, y, epochs=1, seed=0)
    path = str(tmp_path / "m.pydlr")
    assert api_r.save_model(model, path) == path
    loaded = api_r.load_model(path)
    assert api_r.weight_names(loaded) == api_r.weight_names(model)
    for a, b in zip(api_r.get_weights(loaded), api_r.get_weights(model), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(api_r.predict(loaded, x), api_r.predict(model, x))


def test_plain_python_models_load_as_trainable(tmp_path):
    from pydlr import io, models

    path = str(tmp_path / "seed.pydlr")
    io.save_model(models.seed_cnn(), path)
    loaded = api_r.load_model(path)
    assert hasattr(loaded, "fit") and api_r.count_params(loaded) == 93322


def test_load_dataset_int32_keras_shapes():
    data = api_r.load_dataset("mnist")
    assert data["x_train"].shape == (4000, 28, 28) and data["x_test"].shape == (1000, 28, 28)
    assert data["x_train"].dtype == np.int32 and data["y_train"].dtype == np.int32
    assert data["x_train"].flags["C_CONTIGUOUS"]
    with pytest.raises(InputError, match="name"):
        api_r.load_dataset("cifar10")


def test_error_info_for_r_conditions():
    info = api_r.error_info(InputError("filters", "a positive integer", -3, where="Conv2D"))
    assert info["kind"] == "input_error" and info["argument"] == "filters"
    assert "received -3" in info["message"]
    assert api_r.error_info(NotSupportedError("x"))["kind"] == "not_supported_error"
    assert api_r.error_info(TrainingError("nan"))["kind"] == "training_error"
    assert api_r.error_info(RuntimeError("boom")) == {"kind": "error", "type": "RuntimeError",
                                                       "message": "boom"}


def test_get_weights_are_copies_in_state_dict_order():
    model = tiny()
    weights = api_r.get_weights(model)
    names = api_r.weight_names(model)
    assert len(weights) == len(names) and names[0].endswith("weight")
    weights[0][...] = 0
    assert not torch.all(next(iter(model.state_dict().values())) == 0)
