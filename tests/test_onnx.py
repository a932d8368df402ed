"""ONNX export: the seed CNN, MobileNetV2 and EfficientNet-Lite0 as standard ONNX graphs that onnxruntime
runs with the same outputs as pydlr (max abs difference <= 1e-4 on real images); inexpressible layers and
bad arguments are refused with clear errors."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from skimage import data

from pydlr import applications, io, layers
from pydlr.engine import Sequential
from pydlr.errors import InputError, NotSupportedError
from pydlr.models import seed_cnn


@pytest.fixture(scope="module", autouse=True)
def cache(module_cache: Path) -> Path:
    return module_cache


def ops(path: Path) -> collections.Counter:
    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_seed_cnn_exports_as_conv_relu_maxpool_and_matches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = seed_cnn(model_class=Sequential)
    x = data.camera()[::18, ::18][None, :28, :28, None].astype(np.float32) / 255  # a real photo, 28 x 28
    x = np.concatenate([x, x[:, ::-1]])
    path = io.export_onnx(model, tmp_path / "seed.onnx")
    counts = ops(path)
    assert counts["Conv"] == 3 and counts["MaxPool"] == 2 and counts["Gemm"] == 2
    assert not any(op.startswith("pydlr") for op in counts)  # no custom domain left
    got = io.onnxruntime_predict(path, x)
    assert got.shape == (2, 10) and np.abs(got - model.predict(x)).max() <= 1e-4


@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetLite0"])
def test_imagenet_networks_export_with_folded_batchnorm_and_match(name: str, tmp_path: Path) -> None:
    model = getattr(applications, name)()
    x = np.concatenate([applications.preprocess_inputs(model, img) for img in (data.chelsea(), data.coffee())])
    expected = model.predict(x)
    path = io.export_onnx(model, tmp_path / f"{name}.onnx")
    counts = ops(path)
    # every convolution a Conv node, every ReLU6 a Clip, each BatchNormalization folded into its Conv
    assert (counts["Conv"], counts["Clip"]) == ((52, 35) if name == "MobileNetV2" else (49, 33))
    assert "BatchNormalization" not in counts
    got = io.onnxruntime_predict(path, x)
    assert np.abs(got - expected).max() <= 1e-4
    assert got[0].argmax() in (281, 282, 285) and got[1].argmax() == 967
    assert model.predict(x).tolist() == expected.tolist()  # the model's own backend is restored


class _Cumulative(layers.Layer):
    """A layer ONNX cannot express (a stand-in for user code)."""

    def call_internal(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(1)


def test_an_unbuilt_model_is_built_from_input_shape_before_the_export(tmp_path: Path) -> None:
    # built inside the tracer it failed once ("state_dict changed after running the tracer"), then worked
    model = Sequential([layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(3)])
    path = io.export_onnx(model, tmp_path / "u.onnx", input_shape=(12, 12, 1))
    x = np.random.default_rng(0).random((2, 12, 12, 1), dtype=np.float32)
    np.testing.assert_allclose(io.onnxruntime_predict(path, x), model.predict(x, verbose=0), atol=1e-5)


def test_inexpressible_layer_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    model = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(2, 3)])
    model.add(layers.Flatten())
    model.add(_Cumulative())
    path = tmp_path / "bad.onnx"
    with pytest.raises(NotSupportedError, match=r"_Cumulative.*no ONNX translation.*Conv2D"):
        io.export_onnx(model, path)
    assert not path.exists()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    model = seed_cnn(model_class=Sequential)
    with pytest.raises(InputError, match="model"):
        io.export_onnx("model", tmp_path / "x.onnx")
    with pytest.raises(InputError, match="path"):
        io.export_onnx(model, tmp_path / "missing" / "x.onnx")
    with pytest.raises(InputError, match="opset"):
        io.export_onnx(model, tmp_path / "x.onnx", opset=7)
    with pytest.raises(InputError, match="path"):
        io.onnxruntime_predict(tmp_path / "none.onnx", np.zeros((1, 28, 28, 1)))


def test_onnxruntime_predict_names_the_argument_onnxruntime_refuses(tmp_path: Path) -> None:
    # onnxruntime's own errors (InvalidArgument "Invalid rank for input", InvalidProtobuf) came through raw.
    model = seed_cnn(model_class=Sequential)
    path = io.export_onnx(model, tmp_path / "seed.onnx")
    assert io.onnxruntime_predict(path, np.zeros((3, 28, 28, 1))).shape == (3, 10)  # any batch size
    for bad in (np.zeros((2, 28, 28)), np.zeros((2, 28, 28, 3)), np.zeros((28, 28, 1))):
        with pytest.raises(InputError, match=r"onnxruntime_predict: argument `x` must be an array of shape "
                                             r"\(N, 28, 28, 1\), as the exported model takes"):
            io.onnxruntime_predict(path, bad)
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("not a graph")
    with pytest.raises(InputError, match=r"argument `path` must be an ONNX file \(as export_onnx writes\)"):
        io.onnxruntime_predict(not_onnx, np.zeros((1, 28, 28, 1)))
