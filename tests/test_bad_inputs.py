"""Bad inputs for the Python entry points whose own test modules do not try one (docs/reliability.md).

Each case is one row of tests/bad_inputs.toml: the entry point (the test id), the call, the error class and a
pattern its message must match. Errors come before any work: the message names the argument, what was
expected and what came.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pydlr
from pydlr import (
    applications,
    callbacks,
    data,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    saving,
    utils,
)
from pydlr.errors import InputError, NotSupportedError


def _model() -> pydlr.Sequential:
    model = pydlr.Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    return model


def _enter(context) -> None:
    with context:
        pass


CASES = [
    ("pydlr.Model", lambda: pydlr.Model(inputs=3, outputs=4), InputError, r"argument `inputs` must be .*received 3"),
    ("pydlr.models.Model", lambda: models.Model(inputs=3, outputs=4), InputError, r"`inputs`"),
    ("pydlr.Sequential", lambda: pydlr.Sequential("dense"), InputError, r"argument `layers` must be a list"),
    ("pydlr.models.Sequential", lambda: models.Sequential("dense"), InputError, r"`layers`"),
    ("pydlr.Input", lambda: pydlr.Input((28, 28, 1.5)), InputError, r"`shape` must be .*positive integers"),
    ("pydlr.layers.Input", lambda: layers.Input("28x28"), InputError, r"`shape`.*received '28x28'"),
    ("pydlr.models.seed_cnn", lambda: models.seed_cnn(padding="full"), InputError,
     r"`padding` must be \"valid\", \"same\""),
    ("pydlr.callbacks.save_weights", lambda: callbacks.save_weights(3, "w.safetensors"), InputError,
     r"`model` must be a pydlr model or a torch.nn.Module; received 3"),
    ("pydlr.save_weights", lambda: pydlr.save_weights("m", "w.safetensors"), InputError,
     r"`model` must be a pydlr model"),
    ("pydlr.layers.Lambda", lambda: layers.Lambda("x"), InputError, r"`function` must be a callable"),
    ("pydlr.layers.RandomContrast", lambda: layers.RandomContrast(-0.5), InputError, r"`factor` must be a number"),
    ("pydlr.layers.SeparableConv2D", lambda: layers.SeparableConv2D(0, 3), InputError,
     r"`filters` must be a positive integer; received 0"),
    ("pydlr.layers.SeparableConvolution2D", lambda: layers.SeparableConvolution2D(8, 0), InputError,
     r"`kernel_size`"),
    ("pydlr.layers.add", lambda: layers.add("x"), InputError, r"add: argument `inputs` must be a list of tensors"),
    ("pydlr.layers.concatenate", lambda: layers.concatenate("x"), InputError, r"`inputs` must be a list of tensors"),
    ("pydlr.losses.CustomLoss", lambda: losses.CustomLoss("x"), InputError,
     r"`fn` must be a function fn\(y_true, y_pred\) or a torch loss module"),
    ("pydlr.losses.MultiOutputLoss", lambda: losses.MultiOutputLoss("x"), TypeError, r"missing 2 required"),
    ("pydlr.metrics.Accuracy", lambda: metrics.Accuracy(name=3), InputError, r"`name` must be a non-empty string"),
    ("pydlr.metrics.BinaryAccuracy", lambda: metrics.BinaryAccuracy(threshold="high"), InputError,
     r"`threshold` must be a number"),
    ("pydlr.metrics.CategoricalAccuracy", lambda: metrics.CategoricalAccuracy(name=3), InputError, r"`name`"),
    ("pydlr.metrics.MeanAbsoluteError", lambda: metrics.MeanAbsoluteError(name=3), InputError, r"`name`"),
    ("pydlr.metrics.MeanSquaredError", lambda: metrics.MeanSquaredError(name=3), InputError, r"`name`"),
    ("pydlr.metrics.Metric", lambda: metrics.Metric(name=3), InputError, r"`name` must be a non-empty string"),
    ("pydlr.metrics.Recall", lambda: metrics.Recall(thresholds=2), InputError,
     r"`thresholds` must be one number in \[0, 1\] or None"),
    ("pydlr.metrics.SparseCategoricalAccuracy", lambda: metrics.SparseCategoricalAccuracy(name=3), InputError,
     r"`name`"),
    ("pydlr.metrics.SparseTopKCategoricalAccuracy", lambda: metrics.SparseTopKCategoricalAccuracy(k=0), InputError,
     r"`k` must be a positive integer; received 0"),
    ("pydlr.metrics.TopKCategoricalAccuracy", lambda: metrics.TopKCategoricalAccuracy(k=0), InputError,
     r"`k` must be a positive integer"),
    ("pydlr.models.Input", lambda: models.Input((0, 3)), InputError, r"`shape` must be .*positive integers"),
    ("pydlr.layers.InputLayer", lambda: layers.InputLayer(shape=(-1, 2)), InputError, r"`shape`.*\(-1, 2\)"),
    ("pydlr.Model.predict_on_batch", lambda: _model().predict_on_batch(np.zeros((2, 5))), InputError,
     r"argument `x` must be data of shape \(None, 4\).*\(2, 5\)"),
    ("pydlr.Model.test_on_batch", lambda: _model().test_on_batch(np.zeros((2, 4)), np.zeros(3)), InputError,
     r"`y` must be 2 samples.*3 samples"),
    ("pydlr.applications.EfficientNetLite1", lambda: applications.EfficientNetLite1(weights="imagenet21k"),
     InputError, r"`weights` must be \"imagenet\" or None"),
    ("pydlr.applications.get", lambda: applications.get("vgg16"), InputError, r"`name` must be one of.*vgg16"),
    ("pydlr.applications.preprocess_inputs", lambda: applications.preprocess_inputs("mobilenet_v2", np.zeros(3)),
     InputError, r"`model` must be an application model"),
    ("pydlr.callbacks.BackupAndRestore", lambda: callbacks.BackupAndRestore(3), InputError,
     r"`resume` must be a file path.*received 3"),
    ("pydlr.callbacks.CSVLogger", lambda: callbacks.CSVLogger(None), InputError, r"`filename` must be a file path"),
    ("pydlr.callbacks.EarlyStopping", lambda: callbacks.EarlyStopping(patience=-1), InputError,
     r"`patience` must be a non-negative integer; received -1"),
    ("pydlr.callbacks.LearningRateScheduler", lambda: callbacks.LearningRateScheduler(0.1), InputError,
     r"`schedule` must be a function"),
    ("pydlr.callbacks.TerminateOnNaN", lambda: callbacks.TerminateOnNaN(1), TypeError, r"takes no arguments"),
    ("pydlr.data.ArrayBatches", lambda: data.ArrayBatches(torch.zeros(4, 2), torch.zeros(3), batch_size=2),
     InputError, r"`y` must be 4 samples.*3 samples"),
    ("pydlr.data.epoch_batches", lambda: data.epoch_batches(10, 0, None, True, 0, 0), InputError,
     r"`batch_size` must be a positive integer"),
    ("pydlr.data.augment_beforehand",
     lambda: data.augment_beforehand(np.zeros((2, 2)), None, data.Augment(flip="horizontal")), InputError,
     r"`x` must be images of shape \(n, height, width, channels\)"),
    ("pydlr.data.load_fashion_mnist", lambda: data.load_fashion_mnist("/nonexistent/folder"), InputError,
     r"`path` must be a folder with the Fashion-MNIST idx files"),
    ("pydlr.layers.AveragePooling2D", lambda: layers.AveragePooling2D(pool_size=0), InputError, r"`pool_size`"),
    ("pydlr.layers.AvgPool2D", lambda: layers.AvgPool2D(strides=-1), InputError, r"`strides`"),
    ("pydlr.layers.MaxPool2D", lambda: layers.MaxPool2D(pool_size=(2, 2, 2)), InputError, r"`pool_size`"),
    ("pydlr.layers.BatchNormalization", lambda: layers.BatchNormalization(momentum=2), InputError,
     r"`momentum` must be a number in \[0, 1\]"),
    ("pydlr.layers.Concatenate", lambda: layers.Concatenate(axis="x"), InputError, r"`axis`"),
    ("pydlr.layers.Convolution2D", lambda: layers.Convolution2D(filters=0, kernel_size=3), InputError,
     r"`filters`"),
    ("pydlr.layers.DepthwiseConv2D", lambda: layers.DepthwiseConv2D(kernel_size=0), InputError, r"`kernel_size`"),
    ("pydlr.layers.Flatten", lambda: layers.Flatten(data_format="channels_first"), NotSupportedError,
     r"channels_first"),
    ("pydlr.layers.GlobalAveragePooling2D", lambda: layers.GlobalAveragePooling2D(data_format="channels_first"),
     NotSupportedError, r"use channels_last"),
    ("pydlr.layers.GlobalAvgPool2D", lambda: layers.GlobalAvgPool2D(data_format="channels_first"),
     NotSupportedError, r"channels_last"),
    ("pydlr.layers.GlobalMaxPooling2D", lambda: layers.GlobalMaxPooling2D(data_format="channels_first"),
     NotSupportedError, r"use channels_last"),
    ("pydlr.layers.GlobalMaxPool2D", lambda: layers.GlobalMaxPool2D(data_format="channels_first"),
     NotSupportedError, r"channels_last"),
    ("pydlr.layers.ReLU", lambda: layers.ReLU(max_value=-1), NotSupportedError, r"max_value=None or 6"),
    ("pydlr.layers.Rescaling", lambda: layers.Rescaling("x"), InputError, r"`scale` must be a number"),
    ("pydlr.layers.conv_backend", lambda: _enter(layers.conv_backend("cudnn")), InputError,
     r"`backend` must be one of"),
    ("pydlr.layers.set_conv_backend", lambda: layers.set_conv_backend("cudnn"), InputError, r"`backend`"),
    ("pydlr.layers.layer_fusion", lambda: _enter(layers.layer_fusion("yes")), InputError,
     r"`enabled` must be True or False; received 'yes'"),
    ("pydlr.layers.set_layer_fusion", lambda: layers.set_layer_fusion(1), InputError, r"`enabled`"),
    ("pydlr.layers.Layer", lambda: layers.Layer(unit=3), InputError, r"`unit` must be one of Layer.s arguments"),
    ("pydlr.losses.BinaryCrossentropy", lambda: losses.BinaryCrossentropy(from_logits="yes"), InputError,
     r"`from_logits` must be True or False"),
    ("pydlr.losses.CategoricalCrossentropy", lambda: losses.CategoricalCrossentropy(from_logits=1), InputError,
     r"`from_logits`"),
    ("pydlr.losses.SparseCategoricalCrossentropy", lambda: losses.SparseCategoricalCrossentropy(from_logits=2),
     InputError, r"`from_logits`"),
    ("pydlr.losses.MeanSquaredError", lambda: losses.MeanSquaredError(reduction="sum"), TypeError,
     r"unexpected keyword argument 'reduction'"),
    ("pydlr.losses.MeanAbsoluteError", lambda: losses.MeanAbsoluteError(reduction="sum"), TypeError,
     r"unexpected keyword argument 'reduction'"),
    ("pydlr.losses.Loss", lambda: losses.Loss("mse", "regression", from_logits="no"), InputError,
     r"`from_logits`"),
    ("pydlr.losses.get_loss", lambda: losses.get_loss("hinge_of_doom"), InputError,
     r"`loss` must be one of .*hinge_of_doom"),
    ("pydlr.models.MobileNetV2", lambda: models.MobileNetV2(num_classes=0), InputError,
     r"`num_classes` must be a positive integer; received 0"),
    ("pydlr.models.ResNet18", lambda: models.ResNet18(input_shape=(32, 32, 1)), InputError, r"`input_shape`"),
    ("pydlr.models.mobilenet_v2", lambda: models.mobilenet_v2(num_classes=-1), InputError, r"`num_classes`"),
    ("pydlr.models.resnet18", lambda: models.resnet18(num_classes="ten"), InputError, r"`num_classes`"),
    ("pydlr.optimizers.Optimizer", lambda: optimizers.Optimizer(learning_rate=0), InputError,
     r"`learning_rate` must be a positive number"),
    ("pydlr.optimizers.AdamW", lambda: optimizers.AdamW(learning_rate=-1), InputError, r"`learning_rate`"),
    ("pydlr.optimizers.AdamW", lambda: optimizers.AdamW(weight_decay=-0.1), InputError, r"`weight_decay`"),
    ("pydlr.optimizers.RMSprop", lambda: optimizers.RMSprop(rho=2), InputError,
     r"`rho` must be a number in \[0, 1\]; received 2"),
    ("pydlr.optimizers.NativeAdam", lambda: optimizers.NativeAdam([torch.zeros(2, requires_grad=True)], lr=-1),
     ValueError, r"Invalid learning rate: -1"),
    ("pydlr.optimizers.get_optimizer", lambda: optimizers.get_optimizer("adamax_of_doom"), InputError,
     r"`optimizer` must be one of"),
    ("pydlr.optimizers.with_learning_rate", lambda: optimizers.with_learning_rate("sgd"), InputError,
     r"`optimizer` must be a torch.optim.Optimizer; received 'sgd'"),
    ("pydlr.saving.load_model", lambda: saving.load_model("/nonexistent.keras"), InputError,
     r"`path` must be an existing pydlr save"),
    ("pydlr.saving.model_from_json", lambda: saving.model_from_json("{not json"), InputError,
     r"`json_string` must be JSON text"),
    ("pydlr.utils.set_random_seed", lambda: utils.set_random_seed(-1), InputError,
     r"`seed` must be a non-negative integer; received -1"),
]


@pytest.mark.parametrize(("entry", "call", "error", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_entry_point_refuses_bad_input(entry: str, call, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern) as info:
        call()
    if error is InputError:
        assert "`" in str(info.value) and "received" in str(info.value)


def test_numeric_optimizer_settings_are_checked_where_written() -> None:
    """torch would refuse these only when fit builds the optimizer; the spec refuses them at once."""
    for make, argument in ((lambda: optimizers.SGD(momentum=-0.5), "momentum"),
                           (lambda: optimizers.Adam(beta_1=1.0), "beta_1"),
                           (lambda: optimizers.Adam(epsilon=-1e-8), "epsilon"),
                           (lambda: optimizers.RMSprop(momentum="high"), "momentum")):
        with pytest.raises(InputError, match=f"`{argument}`"):
            make()
    spec = optimizers.RMSprop(rho=0.0, momentum=1.0)  # the closed ends are allowed
    assert spec.rho == 0.0 and spec.momentum == 1.0


def test_array_batches_refuse_a_bad_batch_size() -> None:
    with pytest.raises(InputError, match="`batch_size` must be a positive integer"):
        data.ArrayBatches(torch.zeros(4, 2), torch.zeros(4), batch_size=0)
    batches = data.ArrayBatches(torch.zeros(5, 2), torch.arange(5.0), batch_size=2, shuffle=False)
    assert batches.batch_size == 2


def test_input_error_keeps_the_end_of_a_long_received_value():
    """A long received value (a corrupt file's path deep in a folder tree) keeps its end, where the file name
    is, so the message still says which file it was."""
    from pydlr.errors import InputError

    path = "/data/" + "/".join(f"level{i:02d}" for i in range(30)) + "/class_a/broken_image_0042.png"
    message = str(InputError("directory", "readable PNG/JPEG images", f"{path!r} (truncated file)"))
    assert "broken_image_0042.png" in message
    assert "/data/level00" in message
    assert len(message) < 220


def test_input_error_describes_a_tuple_of_arrays_by_shapes():
    # validation_data=(x_val,): the message names the arrays' shapes, not their values
    import numpy as np

    from pydlr.errors import InputError

    message = str(InputError("validation_data", "a tuple (x_val, y_val)", (np.zeros((200, 28, 28, 1)),)))
    assert message.endswith("received a tuple of 1: (ndarray of shape (200, 28, 28, 1) and dtype float64).")
