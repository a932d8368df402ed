"""Sequential models: the seed CNN's exact shapes and counts, Keras' summary text, forward vs. plain torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pydlr import layers, models
from pydlr.errors import InputError
from pydlr.models import summary

SEED_ROWS = [
    ("conv2d", "Conv2D", "(None, 26, 26, 32)", 320),
    ("max_pooling2d", "MaxPooling2D", "(None, 13, 13, 32)", 0),
    ("conv2d_1", "Conv2D", "(None, 11, 11, 64)", 18_496),
    ("max_pooling2d_1", "MaxPooling2D", "(None, 5, 5, 64)", 0),
    ("conv2d_2", "Conv2D", "(None, 3, 3, 64)", 36_928),
]
HEAD_ROWS = [
    ("flatten", "Flatten", "(None, 576)", 0),
    ("dense", "Dense", "(None, 64)", 36_928),
    ("dense_1", "Dense", "(None, 10)", 650),
]

# Keras 3.x prints this for the seed model with a head when the terminal is 80 columns (line_length 76).
KERAS_SEED_SUMMARY = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 13, 13, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_1 (MaxPooling2D)  │ (None, 5, 5, 64)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_2 (Conv2D)               │ (None, 3, 3, 64)       │        36,928 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 576)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 64)             │        36,928 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │           650 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 93,322 (364.54 KB)
 Trainable params: 93,322 (364.54 KB)
 Non-trainable params: 0 (0.00 B)"""


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def _rows(model: models.BaseModel) -> list[tuple]:
    return [(r["layer"], r["type"], r["output_shape"], r["params"]) for r in model.summary_table()]


def test_seed_cnn_shapes_and_counts() -> None:
    model = models.seed_cnn(head=False)
    assert _rows(model) == SEED_ROWS
    assert model.count_params() == 55_744


def test_seed_cnn_with_head_totals_93322() -> None:
    model = models.seed_cnn()
    assert _rows(model) == SEED_ROWS + HEAD_ROWS
    assert model.count_params() == 93_322
    assert (
        summary.param_totals(model)["trainable"] == 93_322 and summary.param_totals(model)["non_trainable"] == 0
    )


def test_seed_cnn_same_padding_first_layer_keeps_size() -> None:
    table = models.seed_cnn(padding="same").summary_table()
    assert table[0]["output_shape"] == "(None, 28, 28, 32)"
    assert [r["output_shape"] for r in table[:5]] == [
        "(None, 28, 28, 32)",
        "(None, 14, 14, 32)",
        "(None, 14, 14, 64)",
        "(None, 7, 7, 64)",
        "(None, 7, 7, 64)",
    ]


def test_summary_text_is_keras_table_plus_sizes() -> None:
    lines: list[str] = []
    model = models.seed_cnn()
    model.summary(line_length=76, print_fn=lines.append)
    text = lines[0]
    assert text.startswith(KERAS_SEED_SUMMARY + "\n")
    assert " Total params: 55,744 (217.75 KB)" in models.seed_cnn(head=False).summary_string(76)
    assert f" Weight memory: {93_322 * 4:,} bytes (float32)" in text
    assert f" Saved weights (safetensors): {summary.saved_weights_size(model):,} bytes" in text
    assert summary.saved_weights_size(model) > 93_322 * 4


def test_summary_width_follows_line_length() -> None:
    text = models.seed_cnn().summary_string(line_length=88)
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│├└"]
    assert {len(line) for line in table_lines} == {88}


def test_keras_style_script_builds_same_model() -> None:
    model = models.Sequential(
        [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        ]
    )
    assert _rows(model) == SEED_ROWS
    old_style = models.Sequential([layers.Conv2D(8, 3, input_shape=(10, 10, 3))])
    assert old_style.summary_table()[0]["output_shape"] == "(None, 8, 8, 8)"


def torch_seed_cnn(model: models.Sequential) -> nn.Sequential:
    """The seed CNN in plain torch (NCHW) with the model's weights copied in (bench/bench_models.py uses it)."""
    c1, _, c2, _, c3, _, d1, d2 = model.layers
    ref = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(576, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    with torch.no_grad():
        for dst, src in ((ref[0], c1), (ref[3], c2), (ref[6], c3), (ref[11], d2)):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        # Keras flattens (H, W, C); torch flattens (C, H, W): permute Dense's input columns accordingly.
        w = d1.weight.reshape(64, 3, 3, 64).permute(0, 3, 1, 2).reshape(64, 576)
        ref[9].weight.copy_(w)
        ref[9].bias.copy_(d1.bias)
    return ref


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_forward_equals_plain_torch(backend: str) -> None:
    torch.manual_seed(0)
    model = models.seed_cnn().eval()
    x = torch.rand(5, 28, 28, 1)
    with layers.conv_backend(backend):
        out = model(x)
    expected = torch_seed_cnn(model)(x.permute(0, 3, 1, 2).contiguous())
    assert out.shape == (5, 10)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_native_and_torch_backends_agree_per_layer_option() -> None:
    torch.manual_seed(1)
    native = models.seed_cnn(padding="same")
    via_torch = models.seed_cnn(padding="same")
    via_torch.load_state_dict(native.state_dict())
    for layer in via_torch.layers:
        if isinstance(layer, layers.Conv2D):
            layer.backend = "torch"
    x = torch.rand(3, 28, 28, 1)
    torch.testing.assert_close(native(x), via_torch(x), rtol=1e-5, atol=1e-5)


def test_input_layout_is_a_view_and_3d_batches_accepted() -> None:
    model = models.seed_cnn()
    x = torch.rand(2, 28, 28, 1)
    internal = model.prepare_input(x)
    assert internal.shape == (2, 1, 28, 28)
    assert internal.data_ptr() == x.data_ptr()
    assert internal.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x[..., 0]), model(x))
    out = model(np.random.default_rng(0).integers(0, 255, (2, 28, 28), dtype=np.uint8))
    assert out.dtype == torch.float32


def test_wrong_input_shape_names_model_and_shapes() -> None:
    model = models.seed_cnn()
    with pytest.raises(
        InputError, match=r"Sequential 'sequential'.*\(None, 28, 28, 1\).*\(2, 32, 32, 3\)"
    ):
        model(torch.rand(2, 32, 32, 3))


def test_kernel_larger_than_input_raises_at_add() -> None:
    model = models.Sequential(input_shape=(4, 4, 1))
    model.add(layers.Conv2D(8, 3))
    with pytest.raises(
        InputError, match=r"Conv2D 'conv2d_1'.*kernel_size.*\(None, 2, 2, 8\).*output size 0"
    ):
        model.add(layers.Conv2D(8, 3))
    assert len(model.layers) == 1


def test_unbuilt_model_builds_from_first_batch() -> None:
    model = models.Sequential([layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(2)])
    assert model.summary_table()[0]["output_shape"] == "?"
    assert "0 (unbuilt)" in model.summary_string(76)
    assert model(torch.rand(1, 6, 6, 2)).shape == (1, 2)
    assert model.count_params() == (4 * 2 * 9 + 4) + (4 * 16 * 2 + 2)


def test_config_round_trip_recreates_architecture() -> None:
    model = models.seed_cnn(padding="same")
    clone = models.Sequential.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert _rows(clone) == _rows(model)


def test_summary_counts_optimizer_state_as_keras_does() -> None:
    model = models.seed_cnn(head=False)
    model.optimizer = torch.optim.Adam(model.parameters())
    assert "Optimizer params" not in model.summary_string(76)  # Keras: not before the first update
    model(torch.rand(2, 28, 28, 1)).sum().backward()
    model.optimizer.step()
    text = model.summary_string(76)
    optimizer = 2 * 55_744 + 2  # Adam's m and v, plus iterations and learning_rate
    assert f" Optimizer params: {optimizer:,} (" in text
    assert f" Total params: {55_744 + optimizer:,} (" in text


def test_keras_conveniences() -> None:
    model = models.seed_cnn()
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert model.get_layer("conv2d_1") is model.layers[2] and model.get_layer(index=-1).units == 10
    with pytest.raises(InputError, match="`name`"):
        model.get_layer("conv9")
    model.trainable = False
    assert summary.param_totals(model)["trainable"] == 0 and not model.trainable
    assert summary.param_totals(model)["non_trainable"] == 93_322
    model.trainable = True
    assert all(p.requires_grad for p in model.parameters())


def test_functional_multi_input_shared_layer_and_config_round_trip() -> None:
    torch.manual_seed(0)
    left, right = layers.Input((5,), name="left"), layers.Input((5,), name="right")
    shared = layers.Dense(3, activation="tanh", name="shared")
    merged = layers.Concatenate()([shared(left), shared(right)])
    model = models.Model([left, right], [layers.Dense(2)(merged), merged])
    rows = model.summary_table()
    assert [r["layer"] for r in rows] == ["left", "right", "shared", "concatenate", "dense"]
    assert model.count_params() == 18 + 14  # the shared Dense counted once
    assert "left[0][0], right[0][0]" in model.summary_string(line_length=200)
    assert "shared[0][0], shared[1][0]" in model.summary_string(line_length=200)
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    out, features = model([a, b])
    expected = torch.tanh(
        torch.cat([a @ shared.weight.t(), b @ shared.weight.t()], dim=1) + shared.bias.repeat(2)
    )
    torch.testing.assert_close(features, expected)
    assert out.shape == (4, 2)
    clone = models.Model.from_config(model.get_config())
    clone.load_state_dict(model.state_dict())
    assert clone.get_config() == model.get_config()
    torch.testing.assert_close(clone([a, b])[0], out)
    with pytest.raises(InputError, match="2 input arrays"):
        model(a)


def test_functional_chain_uses_sequential_style_summary() -> None:
    inputs = layers.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    model = models.Model(inputs, layers.Flatten()(x))
    text = model.summary_string(line_length=76)
    assert (
        "Connected to" not in text
        and "│ input_layer (InputLayer)        │ (None, 28, 28, 1)" in text
    )
    assert "Connected to" in models.Model(inputs, layers.Add()([x, x])).summary_string()


def test_training_call_argument_switches_mode_for_one_call() -> None:
    model = models.Sequential([layers.Input((100,)), layers.Dropout(0.5)])
    model.eval()
    x = torch.ones(2, 100)
    assert torch.equal(model(x), x)
    dropped = model(x, training=True)
    assert (dropped == 0).any() and set(dropped.unique().tolist()) <= {0.0, 2.0}
    assert not model.training and torch.equal(model(x, training=False), x)


def test_nested_models_in_sequential_and_functional_save_and_load(tmp_path) -> None:
    from pydlr import io

    torch.manual_seed(0)
    backbone = models.Sequential(
        [
            layers.Input((8, 8, 3)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
        ]
    )
    model = models.Sequential([backbone, layers.Flatten(), layers.Dense(2)])
    assert model.input_shape == (None, 8, 8, 3)
    assert model.summary_table()[0] == {
        "layer": backbone.name,
        "type": "Sequential",
        "output_shape": "(None, 6, 6, 4)",
        "params": 4 * 27 + 4 + 16,
        "trainable": True,
    }
    x = torch.rand(2, 8, 8, 3)
    model.eval()
    torch.testing.assert_close(model(x), model.layers[2](backbone(x).reshape(2, -1)))
    loaded = io.load_model(io.save_model(model, tmp_path / "nested.keras"))
    assert type(loaded.layers[0]) is models.Sequential
    assert torch.equal(loaded.eval()(x), model(x))
    inputs = layers.Input((8, 8, 3))
    functional = models.Model(inputs, layers.Dense(1)(layers.Flatten()(backbone(inputs))))
    assert functional.summary_table()[1]["output_shape"] == "(None, 6, 6, 4)"
    assert functional(x).shape == (2, 1)
    with pytest.raises(InputError, match=r"\(None, 8, 8, 3\)"):
        backbone(layers.Input((9, 9, 3)))


# ---- call-time `training` in functional graphs (Keras: the call argument wins over the model's mode) ----
def _bn_base() -> models.Sequential:
    base = models.Sequential([layers.Input((4,)), layers.Dense(6), layers.BatchNormalization()])
    with torch.no_grad():
        bn = base.layers[-1]
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(2.0)
    return base


def test_base_called_with_training_false_keeps_batchnorm_frozen_in_fit():
    """keras.io's transfer-learning recipe: base(x, training=False), then base.trainable = True."""
    import pydlr

    base = _bn_base()
    inputs = layers.Input((4,))
    outputs = layers.Dense(2)(base(inputs, training=False))
    model = pydlr.Model(inputs, outputs)
    base.trainable = True
    bn = base.layers[-1]
    before = bn.running_mean.clone(), bn.running_var.clone()
    gamma = bn.weight.detach().clone()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(3.0, 1.0, (64, 4)).astype("float32")
    model.fit(x, np.zeros((64, 2), "float32"), epochs=1, batch_size=16, verbose=0)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == 0
    assert not torch.equal(bn.weight, gamma)  # still trained: only the statistics are frozen
    # in train mode the graph uses the moving statistics, i.e. the same function as in inference
    model.train()
    xt = torch.from_numpy(x[:8])
    y_train_mode = model(xt)
    model.eval()
    torch.testing.assert_close(y_train_mode, model(xt))
    assert base.layers[-1].training is False and model.training is False


def test_layer_called_with_training_false_in_a_graph_uses_moving_statistics():
    inputs = layers.Input((3,))
    bn = layers.BatchNormalization()
    model = models.Model(inputs, bn(inputs, training=False))
    model.train()
    x = torch.randn(16, 3) * 4 + 10
    out = model(x)
    torch.testing.assert_close(bn.running_mean, torch.zeros(3))
    torch.testing.assert_close(out, x / torch.sqrt(torch.tensor(1.0 + 1e-3)))
    assert model.training and bn.training  # modes restored after the call


def test_dropout_called_with_training_true_stays_active_in_inference():
    inputs = layers.Input((200,))
    model = models.Model(inputs, layers.Dropout(0.5)(inputs, training=True))
    model.eval()
    out = model(torch.ones(4, 200))
    zeros = float((out == 0).float().mean())
    assert 0.3 < zeros < 0.7
    torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], 2.0))
    # and the recorded argument survives get_config / from_config
    clone = models.Model.from_config(model.get_config())
    clone.eval()
    assert float((clone(torch.ones(4, 200)) == 0).float().mean()) > 0.3


def test_training_argument_is_checked():
    with pytest.raises(InputError, match="training"):
        layers.Dense(2)(layers.Input((3,)), training="no")


@pytest.mark.parametrize("first_call", ["build", "call", "compute_output_shape"])
def test_a_failed_first_build_records_nothing_and_the_right_shape_then_builds(first_call: str) -> None:
    # Dense builds on (6, 6) before Conv2D refuses the 2-d (6, 4): the whole build is undone, Dense included
    model = models.Sequential([layers.Dense(4), layers.Conv2D(3, 3), layers.Flatten(), layers.Dense(2)])
    wrong = torch.rand(2, 6, 6)
    call = {"build": lambda: model.build((None, 6, 6)), "call": lambda: model(wrong),
            "compute_output_shape": lambda: model.compute_output_shape((6, 6))}[first_call]
    with pytest.raises(InputError, match=r"Conv2D .*height, width, channels"):
        call()
    assert model.input_spec is None and not model.built
    assert [layer.built for layer in model.layers] == [False] * 4
    assert model.count_params() == 0 and model.layers[0].input_shape is None
    assert model(torch.rand(2, 6, 6, 1)).shape == (2, 2)  # the right data builds it, from scratch
    assert model.input_spec == (6, 6, 1)
    assert model.layers[0].kernel.shape == (1, 4)  # built for 1 feature, not the refused 6
    assert model.count_params() == (1 * 4 + 4) + (9 * 4 * 3 + 3) + (4 * 4 * 3 * 2 + 2)


def test_a_layer_refused_at_add_leaves_the_model_as_it_was() -> None:
    model = models.Sequential([layers.Conv2D(4, 3, input_shape=(4, 4, 1))])
    with pytest.raises(InputError, match="kernel_size"):
        model.add(layers.Conv2D(2, 3))
    assert len(model.layers) == 1 and model.input_spec == (4, 4, 1) and model.built
    empty = models.Sequential()
    with pytest.raises(InputError, match="kernel_size"):
        empty.add(layers.Conv2D(2, 7, input_shape=(4, 4, 1)))
    assert len(empty.layers) == 0 and empty.input_spec is None  # the declared shape went with the layer


def test_a_refused_input_leaves_a_multi_input_model_with_no_input_spec() -> None:
    a, b = layers.Input((3,)), layers.Input((2,))
    model = models.Model([a, b], layers.Dense(1)(layers.Concatenate()([a, b])))
    with pytest.raises(InputError, match="x"):
        model([torch.rand(4, 3), torch.rand(4, 5)])
    assert model.input_spec is None and model.input_shape is None
    assert model([torch.rand(4, 3), torch.rand(4, 2)]).shape == (4, 1)


@pytest.mark.parametrize("kind", ["ModuleList", "tuple", "generator"])
def test_sequential_takes_any_iterable_of_layers_sharing_them(kind: str) -> None:
    torch.manual_seed(0)
    base = models.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(3, 3, name="c"), layers.Flatten(),
                              layers.Dense(2)])
    part = {"ModuleList": lambda: base.layers[:2], "tuple": lambda: tuple(base.layers[:2]),
            "generator": lambda: (layer for layer in base.layers[:2])}[kind]()
    if kind == "ModuleList":
        assert isinstance(part, nn.ModuleList)
    features = models.Sequential(part)
    assert [layer.name for layer in features.layers] == ["c", base.layers[1].name]
    assert all(a is b for a, b in zip(features.layers, base.layers[:2], strict=True))  # the same objects
    x = torch.rand(5, 6, 6, 1)
    out = features(x)
    expected = base.layers[1](base.layers[0](x))  # the layers called on their own, from user code
    assert out.shape == (5, 4 * 4 * 3)
    torch.testing.assert_close(out, expected)
    with torch.no_grad():
        base.layers[0].bias.add_(1.0)  # weights are shared, as in Keras: a change shows in both models
    torch.testing.assert_close(features(x), out + 1.0)  # Flatten keeps the values: each one moved by 1


@pytest.mark.parametrize("bad", ["dense", 3, {"a": 1}])
def test_sequential_still_refuses_what_is_not_an_iterable_of_layers(bad) -> None:
    with pytest.raises(InputError, match=r"argument `layers` must be a list of layers"):
        models.Sequential(bad)
    with pytest.raises(InputError, match=r"argument `layers` must be a list of layers"):
        models.Sequential(layers.Dense(2))  # one layer, not in a list
    with pytest.raises(InputError, match=r"argument `layer` must be a single-input pydlr layer"):
        models.Sequential((layers.Dense(2), "relu"))
