"""Layers: Keras arguments and defaults, shapes, values against torch, both conv backends, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pydlr import layers, models
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import inside_model, keras_shape, to_internal
from pydlr.models import summary


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def run(layer: layers.Layer, x_nhwc: torch.Tensor) -> torch.Tensor:
    """Apply a layer to channels-last data, as user code calls it (it converts to the internal layout)."""
    return layer(x_nhwc)


def tf_same_reference(
    x: torch.Tensor, w: torch.Tensor, stride: int, dilation: int = 1
) -> torch.Tensor:
    """TensorFlow's SAME convolution written out: pad (total // 2 before, the rest after), then valid conv."""
    pads = []
    for size, k in ((x.shape[3], w.shape[3]), (x.shape[2], w.shape[2])):
        eff = dilation * (k - 1) + 1
        total = max((math.ceil(size / stride) - 1) * stride + eff - size, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), w, None, stride, 0, dilation)


def test_keras_names_and_clear_session() -> None:
    names = [
        layers.Conv2D(1, 1).name,
        layers.Conv2D(1, 1).name,
        layers.MaxPooling2D().name,
        layers.BatchNormalization().name,
        layers.GlobalAveragePooling2D().name,
        layers.DepthwiseConv2D(3).name,
        layers.Dense(1).name,
    ]
    assert names == [
        "conv2d",
        "conv2d_1",
        "max_pooling2d",
        "batch_normalization",
        "global_average_pooling2d",
        "depthwise_conv2d",
        "dense",
    ]
    layers.clear_session()
    assert layers.Conv2D(1, 1).name == "conv2d"
    assert layers.Conv2D(1, 1, name="mine").name == "mine"


def test_conv2d_keras_defaults() -> None:
    conv = layers.Conv2D(32, (3, 3))
    cfg = conv.get_config()
    assert (cfg["strides"], cfg["padding"], cfg["dilation_rate"], cfg["groups"]) == (
        [1, 1],
        "valid",
        [1, 1],
        1,
    )
    assert (cfg["activation"], cfg["use_bias"]) == ("linear", True)
    assert (cfg["kernel_initializer"], cfg["bias_initializer"]) == ("glorot_uniform", "zeros")


@pytest.mark.parametrize(
    "kernel,stride,size", [(2, 1, 7), (4, 1, 8), (3, 2, 7), (4, 2, 9), (2, 3, 10)]
)
def test_conv2d_same_padding_matches_tensorflow_rule(kernel: int, stride: int, size: int) -> None:
    torch.manual_seed(0)
    conv = layers.Conv2D(5, kernel, strides=stride, padding="same", use_bias=False)
    x = torch.randn(2, size, size, 3)
    out = run(conv, x)
    assert out.shape == (2, math.ceil(size / stride), math.ceil(size / stride), 5)
    expected = tf_same_reference(x.permute(0, 3, 1, 2), conv.weight, stride).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize(
    "config",
    [
        {"filters": 6, "kernel_size": 3, "dilation_rate": 2},
        {"filters": 6, "kernel_size": (3, 1), "strides": (2, 1), "groups": 3},
        {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"filters": 4, "kernel_size": 5, "padding": 2, "activation": "relu6"},
    ],
)
def test_conv2d_equals_torch_conv(config: dict, backend: str) -> None:
    torch.manual_seed(0)
    conv = layers.Conv2D(**config, backend=backend)
    x = torch.randn(2, 11, 9, 6)
    out = run(conv, x)
    pad = config.get("padding", "valid")
    pad = {"valid": 0, "same": 1}.get(pad, pad) if isinstance(pad, str) else pad
    ref = F.conv2d(
        x.permute(0, 3, 1, 2),
        conv.weight,
        conv.bias,
        config.get("strides", 1),
        pad,
        config.get("dilation_rate", 1),
        config.get("groups", 1),
    )
    act = config.get("activation")
    ref = {"relu": F.relu, "relu6": F.relu6}.get(act, lambda t: t)(ref)
    torch.testing.assert_close(out, ref.permute(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_native_and_torch_backends_agree_with_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 10, 10, 4)
    results = {}
    for backend in ("native", "torch"):
        torch.manual_seed(1)
        layers.clear_session()
        conv = layers.Conv2D(8, 3, padding="same", activation="relu")
        xi = x.clone().requires_grad_(True)
        with layers.conv_backend(backend):
            out = run(conv, xi)
        out.square().sum().backward()
        results[backend] = (out.detach(), xi.grad, conv.weight.grad, conv.bias.grad)
    for a, b in zip(results["native"], results["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert layers.get_conv_backend() == "auto"


def test_auto_backend_takes_the_native_kernel_where_it_is_faster() -> None:
    from pydlr import ops

    model = models.seed_cnn(head=False)
    x = torch.randn(2, 28, 28, 1)
    model(x)
    first, second = model.layers[0], model.layers[2]
    # The 1->32 first layer runs on a direct kernel (faster than oneDNN); 32->64 at 13x13 on a batch of 2 (too
    # few tiles for Winograd, which takes it from 8 images: test_ops) is a GEMM-bound shape the native op hands to
    # oneDNN with the ReLU as a post-op (native for a fused activation, torch's without one); 64->64 with a 3x3
    # output is one where pydlr's GEMM path, batching whole images, is faster.
    onednn = "absent" not in ops.build_info()["onednn"]  # torch builds without oneDNN: torch's conv there
    assert set(first._auto_choice.values()) == {"native"}
    assert set(second._auto_choice.values()) == {"native" if onednn else "torch"}
    assert set(model.layers[4]._auto_choice.values()) == {"native"}
    internal = to_internal(torch.randn(2, 13, 13, 32))
    path = ops._C.conv2d_cpu_path(internal, second.weight, [1, 1], [0, 0], [1, 1], 1)
    assert path == ("onednn" if onednn else "gemm_nhwc")
    assert ops.native_wins(internal, second.weight, activation="relu") == onednn
    assert not ops.native_wins(internal, second.weight)  # nothing to fuse: torch's own call
    assert ops.native_wins(internal.double(), second.weight.double())  # torch has no fast float64 conv
    assert not ops.native_wins(internal.to("meta"), second.weight.to("meta"))  # CPU only
    depthwise = layers.DepthwiseConv2D(3)
    run(depthwise, torch.randn(2, 8, 8, 16))
    assert set(depthwise._auto_choice.values()) == {"native"}
    with layers.conv_backend("native"), inside_model():
        y = second(first(to_internal(x)))  # as in a model: internal (NCHW-shaped, channels-last) tensors
    assert y.grad_fn.name().endswith("Conv2dFunction>")


def test_conv_output_keeps_channels_last_memory() -> None:
    conv = layers.Conv2D(8, 3, activation="relu")
    with inside_model():
        y = conv(to_internal(torch.randn(2, 12, 12, 3)))
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_depthwise_conv2d_params_values_and_keras_layout() -> None:
    torch.manual_seed(0)
    dw = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
    x = torch.randn(2, 7, 7, 3)
    out = run(dw, x)
    assert out.shape == (2, 7, 7, 6)
    assert dw.count_params() == 3 * 3 * 3 * 2 + 6
    ref = F.conv2d(x.permute(0, 3, 1, 2), dw.weight, dw.bias, 1, 1, 1, 3).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    kernel, bias = dw.get_weights()
    assert kernel.shape == (3, 3, 3, 2) and bias.shape == (6,)
    # output channel c * multiplier + m is input channel c's m-th filter, as in Keras
    np.testing.assert_array_equal(kernel[:, :, 1, 1], dw.weight[1 * 2 + 1, 0].detach().numpy())
    clone = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
    clone.build_from((7, 7, 3))
    clone.set_weights([kernel, bias])
    torch.testing.assert_close(run(clone, x), out)


def test_max_pooling_same_pads_with_minus_infinity() -> None:
    pool = layers.MaxPooling2D(pool_size=2, padding="same")
    x = -torch.arange(1.0, 10.0).reshape(
        1, 3, 3, 1
    )  # all negative: zero padding would show up as 0
    out = run(pool, x)
    assert out.shape == (1, 2, 2, 1)
    assert out[0, :, :, 0].tolist() == [[-1.0, -3.0], [-7.0, -9.0]]
    assert run(layers.MaxPooling2D(), torch.randn(1, 5, 5, 2)).shape == (1, 2, 2, 2)


def test_average_pooling_same_excludes_padding() -> None:
    pool = layers.AveragePooling2D(pool_size=2, padding="same")
    x = torch.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    out = run(pool, x)[0, :, :, 0]
    assert out.tolist() == [[(1 + 2 + 4 + 5) / 4, (3 + 6) / 2], [(7 + 8) / 2, 9.0]]
    valid = run(layers.AveragePooling2D(pool_size=(2, 2), strides=1), x)[0, :, :, 0]
    assert valid.tolist() == [[3.0, 4.0], [6.0, 7.0]]


def test_global_pooling_flatten_dense() -> None:
    x = torch.randn(2, 4, 5, 3)
    torch.testing.assert_close(run(layers.GlobalAveragePooling2D(), x), x.mean(dim=(1, 2)))
    assert run(layers.GlobalAveragePooling2D(keepdims=True), x).shape == (2, 1, 1, 3)
    torch.testing.assert_close(run(layers.GlobalMaxPooling2D(), x), x.amax(dim=(1, 2)))
    # Flatten follows Keras' (H, W, C) order: the same as reshaping the NHWC data
    assert torch.equal(run(layers.Flatten(), x), x.reshape(2, -1))
    dense = layers.Dense(7)
    y = run(dense, x)  # Keras applies Dense to the last axis
    assert y.shape == (2, 4, 5, 7)
    torch.testing.assert_close(y, x @ dense.weight.t() + dense.bias)
    assert dense.get_weights()[0].shape == (3, 7)


def test_batch_normalization_keras_defaults_and_counts() -> None:
    bn = layers.BatchNormalization()
    assert (bn.momentum, bn.epsilon) == (0.99, 1e-3)
    x = torch.randn(8, 3, 3, 4) * 2 + 5
    bn.train()
    out = run(bn, x)
    mean = x.mean(dim=(0, 1, 2))
    torch.testing.assert_close(bn.running_mean, 0.01 * mean)
    expected = (x - mean) / torch.sqrt(x.var(dim=(0, 1, 2), unbiased=False) + 1e-3)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert bn.count_params() == 16 and int(bn.num_batches_tracked) == 1
    model = models.Sequential([layers.Input((3, 3, 4)), layers.BatchNormalization()])
    totals = summary.param_totals(model)
    assert (totals["trainable"], totals["non_trainable"]) == (8, 8)
    bn.trainable = False  # frozen BatchNormalization runs in inference mode, as in Keras 3
    before = bn.running_mean.clone()
    run(bn, x)
    assert torch.equal(bn.running_mean, before)
    assert not bn.weight.requires_grad


def test_activations_by_keras_name() -> None:
    x = torch.linspace(-8, 8, 33).reshape(1, 33)

    def act(name: str) -> torch.Tensor:
        return layers.Activation(name)(x)

    assert act("relu6").max() == 6 and act("relu6").min() == 0
    torch.testing.assert_close(act("leaky_relu")[0, 0], torch.tensor(-8 * 0.2))
    torch.testing.assert_close(act("gelu"), 0.5 * x * (1 + torch.erf(x / math.sqrt(2))))
    torch.testing.assert_close(act("sigmoid"), torch.sigmoid(x))
    torch.testing.assert_close(act("tanh"), torch.tanh(x))
    assert torch.equal(act("linear"), x)
    # softmax normalizes Keras' last axis: the channels of an image batch
    img = torch.randn(2, 3, 4, 5)
    soft = run(layers.Activation("softmax"), img)
    torch.testing.assert_close(soft.sum(dim=-1), torch.ones(2, 3, 4))
    assert torch.equal(
        run(layers.Rescaling(1 / 255, offset=-1.0), torch.full((1, 2), 255.0)), torch.zeros(1, 2)
    )


def test_initializers_follow_keras_fans() -> None:
    torch.manual_seed(0)
    conv = layers.Conv2D(64, 3, kernel_initializer="glorot_uniform")
    conv.build_from((8, 8, 32))
    limit = math.sqrt(6 / (9 * 32 + 9 * 64))
    assert conv.weight.abs().max() <= limit and conv.weight.abs().max() > 0.95 * limit
    assert torch.equal(conv.bias, torch.zeros(64))
    he = layers.Conv2D(256, 3, kernel_initializer="he_normal")
    he.build_from((8, 8, 64))
    std = math.sqrt(2 / (9 * 64))
    assert abs(he.weight.std().item() - std) < 0.05 * std
    assert he.weight.abs().max() <= 2 * std / 0.87962566103423978 + 1e-6


def test_functional_residual_and_concatenate() -> None:
    torch.manual_seed(0)
    inputs = layers.Input(shape=(6, 6, 4))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    added = layers.Add()([inputs, x])
    joined = layers.Concatenate()([added, x])
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(joined))
    model = models.Model(inputs, outputs)
    rows = model.summary_table()
    assert [r["layer"] for r in rows] == [
        "input_layer",
        "conv2d",
        "add",
        "concatenate",
        "global_average_pooling2d",
        "dense",
    ]
    assert rows[3]["output_shape"] == "(None, 6, 6, 8)"
    data = torch.randn(2, 6, 6, 4)
    conv, dense = model.layers[1], model.layers[-1]
    y = run(conv, data)
    expected = torch.cat([data + y, y], dim=-1).mean(dim=(1, 2)) @ dense.weight.t() + dense.bias
    torch.testing.assert_close(model(data), expected)
    assert "conv2d[0][0]" in model.summary_string()
    with pytest.raises(InputError, match=r"Add 'add_1'.*\(None, 6, 6, 4\), \(None, 6, 6, 8\)"):
        layers.Add()([inputs, joined])


def test_layer_configs_round_trip() -> None:
    for layer in [
        layers.Conv2D(3, (2, 3), strides=2, padding="same", activation="gelu", groups=1),
        layers.DepthwiseConv2D(3, depth_multiplier=2),
        layers.MaxPooling2D(3, strides=1),
        layers.AveragePooling2D(),
        layers.Dense(4, activation="softmax", use_bias=False),
        layers.Dropout(0.3),
        layers.BatchNormalization(momentum=0.9, center=False),
        layers.Activation("tanh"),
        layers.Rescaling(0.5),
        layers.Concatenate(axis=1),
    ]:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "make,argument",
    [
        (lambda: layers.Conv2D(0, 3), "filters"),
        (lambda: layers.Conv2D(-2, 3), "filters"),
        (lambda: layers.Conv2D(2.5, 3), "filters"),
        (lambda: layers.Conv2D(8, 0), "kernel_size"),
        (lambda: layers.Conv2D(8, 3, activation="relu7"), "activation"),
        (lambda: layers.Conv2D(8, 3, padding="full"), "padding"),
        (lambda: layers.Conv2D(8, 3, kernel_initializer="glorot"), "kernel_initializer"),
        (lambda: layers.Conv2D(8, 3, groups=3), "groups"),
        (lambda: layers.Conv2D(8, 3, backend="cuda"), "backend"),
        (lambda: layers.Conv2D(8, 3, filter_size=3), "filter_size"),
        (lambda: layers.Dense(0), "units"),
        (lambda: layers.Dropout(1.0), "rate"),
        (lambda: layers.MaxPooling2D(padding="causal"), "padding"),
        (lambda: layers.Activation("swishy"), "activation"),
    ],
)
def test_bad_arguments_raise_input_error_at_once(make, argument: str) -> None:
    with pytest.raises(InputError, match=f"`{argument}`") as info:
        make()
    assert info.value.argument == argument


def test_unsupported_keras_features_say_so() -> None:
    with pytest.raises(NotSupportedError, match="kernel_regularizer"):
        layers.Conv2D(8, 3, kernel_regularizer="l2")
    with pytest.raises(NotSupportedError, match="channels_last"):
        layers.Conv2D(8, 3, data_format="channels_first")


def test_shape_errors_name_layer_and_shapes() -> None:
    conv = layers.Conv2D(8, 5)
    with pytest.raises(
        InputError, match=r"Conv2D 'conv2d'.*kernel_size.*\(5, 5\).*\(None, 4, 4, 1\)"
    ):
        conv.build_from((4, 4, 1))
    assert not conv.built
    conv.build_from((9, 9, 1))
    with pytest.raises(
        InputError, match=r"Conv2D 'conv2d'.*\(None, height, width, 1\).*\(None, 9, 9, 3\)"
    ):
        conv(torch.randn(1, 9, 9, 3))  # NHWC, as user code holds images
    dense = layers.Dense(4)
    dense.build_from((10,))
    with pytest.raises(InputError, match=r"Dense 'dense'.*\(None, 10\).*\(None, 12\)"):
        dense(torch.randn(2, 12))


def test_keras_shape_of_internal_tensor() -> None:
    x = torch.randn(2, 5, 6, 3)
    assert keras_shape(to_internal(x)) == (5, 6, 3)
    assert to_internal(x).data_ptr() == x.data_ptr()


def test_integral_numbers_from_r_are_accepted() -> None:
    # R passes numbers as doubles: 32 and c(3, 3) arrive as 32.0 and [3.0, 3.0]
    model = models.Sequential(input_shape=[28.0, 28.0, 1.0])
    model.add(layers.Conv2D(32.0, [3.0, 3.0], strides=np.int64(1), padding=[1.0, 1.0]))
    model.add(layers.MaxPooling2D(pool_size=[2.0, 2.0]))
    assert model.summary_table()[1]["output_shape"] == "(None, 14, 14, 32)"
    with pytest.raises(InputError, match="`filters`"):
        layers.Conv2D(32.5, 3)


def test_native_backend_fuses_relu_into_the_op(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydlr import ops

    calls = []
    original = ops.conv2d

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(kwargs.get("activation", "none"))
        return original(*args, **kwargs)

    monkeypatch.setattr(ops, "conv2d", spy)
    conv = layers.Conv2D(4, 3, activation="relu6", backend="native")
    x = torch.randn(1, 6, 6, 2) * 10
    out = run(conv, x)
    assert calls == ["relu6"]
    ref = F.relu6(F.conv2d(x.permute(0, 3, 1, 2), conv.weight, conv.bias)).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    run(layers.Conv2D(4, 3, activation="tanh", backend="native"), x)
    assert calls == ["relu6", "none"]  # other activations run after the op
    run(layers.Conv2D(4, 3, activation="relu", backend="torch"), x)
    assert len(calls) == 2  # the torch backend does not call pydlr.ops


def test_keras_weight_views() -> None:
    conv = layers.Conv2D(8, (3, 2))
    conv.build_from((9, 9, 4))
    assert conv.kernel.shape == (3, 2, 4, 8) and conv.kernel.data_ptr() == conv.weight.data_ptr()
    np.testing.assert_array_equal(conv.kernel.detach().numpy(), conv.get_weights()[0])
    dense = layers.Dense(5)
    dense.build_from((7,))
    assert dense.kernel.shape == (7, 5)
    bn = layers.BatchNormalization()
    bn.build_from((3,))
    assert len(bn.weights) == 4 and len(bn.trainable_weights) == 2
    assert [w.shape for w in bn.non_trainable_weights] == [(3,), (3,)]
    model = models.Sequential([layers.Input((3,)), bn, dense.__class__(2)])
    assert len(model.weights) == 6 and len(model.trainable_weights) == 4
