"""keras.metrics objects: values equal scikit-learn's on the same data, Keras' state API, and their use in
compile() with Keras' history keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import pydlr as keras
from pydlr import layers
from pydlr.errors import InputError, NotSupportedError


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def _binary(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1).astype(np.float32)
    p[:20] = np.round(p[:20], 1)  # ties, which the exact area must handle as scikit-learn does
    return y, p


def _multiclass(n: int = 300, k: int = 4, seed: int = 1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p.astype(np.float32)


def _in_batches(metric, y, p, size=64):
    for s in range(0, len(y), size):
        metric.update_state(y[s:s + size], p[s:s + size])
    return float(metric.result())


def test_auc_roc_and_pr_equal_scikit_learn():
    y, p = _binary()
    assert _in_batches(keras.metrics.AUC(), y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    assert _in_batches(keras.metrics.AUC(curve="PR"), y, p) == pytest.approx(
        skm.average_precision_score(y, p), abs=1e-6)


def test_auc_from_logits_and_multi_label():
    y, p = _binary()
    logits = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    assert _in_batches(keras.metrics.AUC(from_logits=True), y, logits) == pytest.approx(
        skm.roc_auc_score(y, p), abs=1e-6)
    yc, pc = _multiclass()
    onehot = np.eye(4)[yc]
    # multi_label=True: the mean of the per-column areas; False: one pooled binary problem (as Keras)
    assert _in_batches(keras.metrics.AUC(multi_label=True), onehot, pc) == pytest.approx(
        skm.roc_auc_score(onehot, pc, average="macro"), abs=1e-6)
    assert _in_batches(keras.metrics.AUC(), onehot, pc) == pytest.approx(
        skm.roc_auc_score(onehot.ravel(), pc.ravel()), abs=1e-6)
    # integer labels with a column per class are one-hot encoded
    assert _in_batches(keras.metrics.AUC(), yc, pc) == pytest.approx(
        skm.roc_auc_score(onehot.ravel(), pc.ravel()), abs=1e-6)


def test_precision_recall_thresholds_class_id_top_k():
    y, p = _binary()
    for t in (0.5, 0.3):
        kw = {} if t == 0.5 else {"thresholds": t}
        assert _in_batches(keras.metrics.Precision(**kw), y, p) == pytest.approx(
            skm.precision_score(y, p > t), abs=1e-6)
        assert _in_batches(keras.metrics.Recall(**kw), y, p) == pytest.approx(
            skm.recall_score(y, p > t), abs=1e-6)
    yc, pc = _multiclass()
    onehot = np.eye(4)[yc]
    assert _in_batches(keras.metrics.Precision(class_id=2), onehot, pc) == pytest.approx(
        skm.precision_score(yc == 2, pc[:, 2] > 0.5), abs=1e-6)
    # top_k=1: each row's largest value is its one candidate positive (kept if above the threshold)
    pred_top1 = np.zeros_like(pc, dtype=bool)
    pred_top1[np.arange(len(yc)), pc.argmax(1)] = True
    pred_top1 &= pc > 0.5
    assert _in_batches(keras.metrics.Recall(top_k=1), onehot, pc) == pytest.approx(
        skm.recall_score(onehot.ravel(), pred_top1.ravel()), abs=1e-6)


def test_f1_score_averages_equal_scikit_learn():
    yc, pc = _multiclass()
    onehot = np.eye(4)[yc]
    for average in ("micro", "macro", "weighted"):
        assert _in_batches(keras.metrics.F1Score(average=average), onehot, pc) == pytest.approx(
            skm.f1_score(yc, pc.argmax(1), average=average), abs=1e-6)
    per_class = keras.metrics.F1Score()
    per_class.update_state(onehot, pc)
    np.testing.assert_allclose(per_class.result().numpy(), skm.f1_score(yc, pc.argmax(1), average=None),
                               atol=1e-6)
    multi = keras.metrics.F1Score(average="macro", threshold=0.3)
    multi.update_state(onehot, pc)
    assert float(multi.result()) == pytest.approx(skm.f1_score(onehot, pc > 0.3, average="macro"), abs=1e-6)


def test_mean_metrics_equal_scikit_learn_with_weights():
    y, p = _binary()
    yc, pc = _multiclass()
    onehot = np.eye(4)[yc]
    assert _in_batches(keras.metrics.BinaryAccuracy(), y, p) == pytest.approx(skm.accuracy_score(y, p > 0.5))
    assert _in_batches(keras.metrics.BinaryAccuracy(threshold=0.3), y, p) == pytest.approx(
        skm.accuracy_score(y, p > 0.3))
    assert _in_batches(keras.metrics.CategoricalAccuracy(), onehot, pc) == pytest.approx(
        skm.accuracy_score(yc, pc.argmax(1)))
    assert _in_batches(keras.metrics.SparseCategoricalAccuracy(), yc, pc) == pytest.approx(
        skm.accuracy_score(yc, pc.argmax(1)))
    assert _in_batches(keras.metrics.TopKCategoricalAccuracy(k=2), onehot, pc) == pytest.approx(
        skm.top_k_accuracy_score(yc, pc, k=2))
    assert _in_batches(keras.metrics.Accuracy(), yc, pc.argmax(1)) == pytest.approx(
        skm.accuracy_score(yc, pc.argmax(1)))
    target = np.random.default_rng(2).random((300, 3)).astype(np.float32)
    pred = target + np.random.default_rng(3).normal(0, 0.1, (300, 3)).astype(np.float32)
    w = np.random.default_rng(4).random(300)
    mse = keras.metrics.MeanSquaredError()
    mse.update_state(target, pred, sample_weight=w)
    assert float(mse.result()) == pytest.approx(skm.mean_squared_error(target, pred, sample_weight=w), rel=1e-5)
    assert _in_batches(keras.metrics.MeanAbsoluteError(), target, pred) == pytest.approx(
        skm.mean_absolute_error(target, pred), rel=1e-5)


def test_state_api_reset_and_names():
    auc, second = keras.metrics.AUC(), keras.metrics.AUC()
    assert (auc.name, second.name) == ("auc", "auc_1")  # Keras' automatic names within a session
    assert keras.metrics.Precision().name == "precision"
    assert keras.metrics.F1Score().name == "f1_score"
    y, p = _binary()
    auc.update_state(y, 1 - p)
    auc.reset_state()
    assert float(auc.result()) == 0.0
    assert _in_batches(auc, y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(InputError, match="curve"):
        keras.metrics.AUC(curve="XY")
    with pytest.raises(InputError, match="thresholds"):
        keras.metrics.Precision(thresholds=1.5)
    with pytest.raises(InputError, match="average"):
        keras.metrics.F1Score(average="sum")
    with pytest.raises(InputError, match="y_true"):
        keras.metrics.AUC().update_state(np.zeros(3), np.zeros(4))
    with pytest.raises(NotSupportedError, match="sample_weight"):
        keras.metrics.AUC().update_state(np.zeros(3), np.zeros(3), sample_weight=np.ones(3))


def _binary_model():
    torch.manual_seed(0)
    model = keras.Sequential([layers.Input((5,)), layers.Dense(1, activation="sigmoid")])
    return model


def _binary_data(n=256):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.float32)
    return x, y


def test_compile_with_metric_objects_logs_keras_names_and_values():
    x, y = _binary_data()
    model = _binary_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(), keras.metrics.Precision(), keras.metrics.Recall(),
                           keras.metrics.F1Score(average="macro", threshold=0.5)])
    hist = model.fit(x, y, epochs=4, batch_size=32, validation_split=0.25, verbose=0)
    assert list(hist.history) == ["loss", "accuracy", "auc", "precision", "recall", "f1_score", "val_loss",
                                  "val_accuracy", "val_auc", "val_precision", "val_recall", "val_f1_score"]
    result = model.evaluate(x, y, batch_size=50, return_dict=True)
    p = model.predict(x, verbose=0).ravel()
    assert result["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-5)
    assert result["precision"] == pytest.approx(skm.precision_score(y, p > 0.5), abs=1e-5)
    assert result["recall"] == pytest.approx(skm.recall_score(y, p > 0.5), abs=1e-5)
    assert result["f1_score"] == pytest.approx(skm.f1_score(y, p > 0.5), abs=1e-5)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, p > 0.5), abs=1e-6)
    assert result["auc"] > 0.8  # the model learned something: the check above is not of a constant


def test_compile_by_class_name_and_saved_model_keeps_metric_objects(tmp_path):
    x, y = _binary_data(64)
    model = _binary_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["auc", keras.metrics.Recall(
        thresholds=0.3, name="recall_at_0.3")])
    before = model.evaluate(x, y, return_dict=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    after = loaded.evaluate(x, y, return_dict=True)
    assert list(after) == ["loss", "auc", "recall_at_0.3"]
    assert after == pytest.approx(before)


def test_metric_named_by_a_string_logs_under_that_string_as_keras(tmp_path):
    # Keras names a string metric by the string itself: scripts written with metrics=["acc"] read
    # history.history["acc"] / ["val_acc"] and monitor "val_acc"
    x, y = _binary_data(64)
    model = _binary_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc", "mae", "AUC"])
    hist = model.fit(x, y, epochs=1, batch_size=32, validation_split=0.25, verbose=0)
    assert list(hist.history) == ["loss", "acc", "mae", "AUC", "val_loss", "val_acc", "val_mae", "val_AUC"]
    result = model.evaluate(x, y, return_dict=True)
    p = model.predict(x, verbose=0).ravel()
    assert result["acc"] == pytest.approx(skm.accuracy_score(y, p > 0.5), abs=1e-6)
    assert result["AUC"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-5)
    model.save(tmp_path / "m.keras")
    assert list(keras.models.load_model(tmp_path / "m.keras").evaluate(x, y, return_dict=True)) == \
        ["loss", "acc", "mae", "AUC"]


def test_f1_score_per_class_in_compile_is_an_input_error():
    model = _binary_model()
    with pytest.raises(InputError, match="average"):
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.F1Score()])


def test_metric_objects_per_output_of_a_two_output_model(tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((5,), name="x")
    h = layers.Dense(8, activation="relu")(inp)
    out_a = layers.Dense(3, activation="softmax", name="kind")(h)
    out_b = layers.Dense(1, activation="sigmoid", name="flag")(h)
    model = keras.Model(inp, [out_a, out_b])
    rng = np.random.default_rng(6)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    ya, yb = x[:, :3].argmax(axis=1), (x[:, 3] > 0).astype(np.float32)
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "binary_crossentropy"],
                  metrics={"kind": [keras.metrics.F1Score(average="macro")],
                           "flag": [keras.metrics.AUC(), keras.metrics.Recall(thresholds=0.4)]})
    model.fit(x, [ya, yb], epochs=1, batch_size=30, verbose=0)
    result = model.evaluate(x, [ya, yb], return_dict=True)
    pa, pb = model.predict(x, verbose=0)
    assert result["flag_auc"] == pytest.approx(skm.roc_auc_score(yb, pb.ravel()), abs=1e-5)
    assert result["flag_recall"] == pytest.approx(skm.recall_score(yb, pb.ravel() > 0.4), abs=1e-5)
    assert result["kind_f1_score"] == pytest.approx(skm.f1_score(ya, pa.argmax(1), average="macro"), abs=1e-5)
    model.save(tmp_path / "two.keras")
    loaded = keras.models.load_model(tmp_path / "two.keras")
    assert loaded.evaluate(x, [ya, yb], return_dict=True) == pytest.approx(result)


def test_accuracy_with_a_regression_loss_is_chosen_from_the_shapes_as_keras():
    # mse on one-hot targets with metrics=["accuracy"]: Keras picks
    # categorical accuracy for (n, k) targets and binary accuracy for one output unit
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = keras.Sequential([layers.Input((5,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    loss, acc = model.evaluate(x, np.eye(3, dtype=np.float32)[y], verbose=0)
    assert acc == pytest.approx(float((model.predict(x, verbose=0).argmax(1) == y).mean()))
    one = _binary_model()
    one.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    xb, yb = _binary_data(64)
    _, acc = one.evaluate(xb, yb, verbose=0)
    assert acc == pytest.approx(skm.accuracy_score(yb, one.predict(xb, verbose=0).ravel() > 0.5))
