"""MobileNetV2 and ResNet18: torchvision's state-dict keys and shapes, and torchvision's forward semantics.

The expected keys are written here from torchvision's architecture description (independently of
pydlr's code); the forward references evaluate a state dict with plain torch.nn.functional calls.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pydlr import io, layers, models
from pydlr.models import summary

MNV2_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _bn(shapes: dict, prefix: str, c: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.{name}"] = (c,)
    shapes[f"{prefix}.num_batches_tracked"] = ()


def torchvision_mobilenet_v2_shapes(num_classes: int = 1000) -> dict[str, tuple]:
    """torchvision.models.mobilenet_v2's state-dict keys and shapes, in order."""
    shapes: dict[str, tuple] = {}

    def conv_bn(prefix: str, out: int, inp: int, k: int, groups: int = 1) -> None:
        shapes[f"{prefix}.0.weight"] = (out, inp // groups, k, k)
        _bn(shapes, f"{prefix}.1", out)

    conv_bn("features.0", 32, 3, 3)
    inp, index = 32, 1
    for t, c, n, _ in MNV2_SETTING:
        for _ in range(n):
            hidden, prefix, j = inp * t, f"features.{index}.conv", 0
            if t != 1:
                conv_bn(f"{prefix}.0", hidden, inp, 1)
                j = 1
            conv_bn(f"{prefix}.{j}", hidden, hidden, 3, groups=hidden)
            shapes[f"{prefix}.{j + 1}.weight"] = (c, hidden, 1, 1)
            _bn(shapes, f"{prefix}.{j + 2}", c)
            inp, index = c, index + 1
    conv_bn(f"features.{index}", 1280, 320, 1)
    shapes["classifier.1.weight"] = (num_classes, 1280)
    shapes["classifier.1.bias"] = (num_classes,)
    return shapes


def torchvision_resnet18_shapes(num_classes: int = 1000) -> dict[str, tuple]:
    """torchvision.models.resnet18's state-dict keys and shapes, in order."""
    shapes: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}
    _bn(shapes, "bn1", 64)
    inplanes = 64
    for layer, (planes, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
            _bn(shapes, f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            _bn(shapes, f"{p}.bn2", planes)
            if block == 0 and (stride != 1 or inplanes != planes):
                shapes[f"{p}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                _bn(shapes, f"{p}.downsample.1", planes)
            inplanes = planes
    shapes["fc.weight"] = (num_classes, 512)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def random_state(shapes: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """A torchvision-shaped state dict with random values (positive variances)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


def _bn_ref(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[f"{p}.running_mean"],
        sd[f"{p}.running_var"],
        sd[f"{p}.weight"],
        sd[f"{p}.bias"],
        False,
        0.0,
        1e-5,
    )


def mobilenet_v2_reference(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """torchvision's MobileNetV2 forward (eval) on NCHW input, from a state dict."""

    def cbr(p: str, x: torch.Tensor, stride: int = 1, groups: int = 1) -> torch.Tensor:
        w = sd[f"{p}.0.weight"]
        x = F.conv2d(x, w, None, stride, (w.shape[-1] - 1) // 2, 1, groups)
        return F.relu6(_bn_ref(x, sd, f"{p}.1"))

    x = cbr("features.0", x, 2)
    inp, index = 32, 1
    for t, c, n, s in MNV2_SETTING:
        for i in range(n):
            stride, p, j, y = (s if i == 0 else 1), f"features.{index}.conv", 0, x
            if t != 1:
                y, j = cbr(f"{p}.0", y), 1
            y = cbr(f"{p}.{j}", y, stride, groups=inp * t)
            y = _bn_ref(F.conv2d(y, sd[f"{p}.{j + 1}.weight"]), sd, f"{p}.{j + 2}")
            x = x + y if stride == 1 and inp == c else y
            inp, index = c, index + 1
    x = cbr(f"features.{index}", x).mean(dim=(2, 3))
    return F.linear(x, sd["classifier.1.weight"], sd["classifier.1.bias"])


def resnet18_reference(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """torchvision's ResNet18 forward (eval) on NCHW input, from a state dict."""
    x = F.relu(_bn_ref(F.conv2d(x, sd["conv1.weight"], None, 2, 3), sd, "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for layer, stride in enumerate((1, 2, 2, 2), start=1):
        for block in range(2):
            p, s = f"layer{layer}.{block}", (stride if block == 0 else 1)
            out = F.relu(_bn_ref(F.conv2d(x, sd[f"{p}.conv1.weight"], None, s, 1), sd, f"{p}.bn1"))
            out = _bn_ref(F.conv2d(out, sd[f"{p}.conv2.weight"], None, 1, 1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn_ref(
                    F.conv2d(x, sd[f"{p}.downsample.0.weight"], None, s), sd, f"{p}.downsample.1"
                )
            x = F.relu(out + x)
    return F.linear(x.mean(dim=(2, 3)), sd["fc.weight"], sd["fc.bias"])


@pytest.fixture(scope="module")
def mobilenet() -> models.MobileNetV2:
    torch.manual_seed(0)
    return models.mobilenet_v2()


@pytest.fixture(scope="module")
def resnet() -> models.ResNet18:
    torch.manual_seed(0)
    return models.resnet18(num_classes=10)


def test_mobilenet_v2_has_torchvision_keys_and_counts(mobilenet: models.MobileNetV2) -> None:
    expected = torchvision_mobilenet_v2_shapes()
    state = mobilenet.state_dict()
    assert list(state) == list(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert len(state) == 314  # the real torchvision file holds 314 tensors
    assert summary.param_totals(mobilenet)["trainable"] == 3_504_872


def test_mobilenet_v2_loads_torchvision_state_and_matches_its_forward(
    mobilenet: models.MobileNetV2,
) -> None:
    sd = random_state(torchvision_mobilenet_v2_shapes(), seed=1)
    mobilenet.load_state_dict(sd, strict=True)
    mobilenet.eval()
    x = torch.rand(2, 64, 64, 3)
    out = mobilenet(x)
    expected = mobilenet_v2_reference(sd, x.permute(0, 3, 1, 2).contiguous())
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert mobilenet.embed(x).shape == (2, 1280)


def test_mobilenet_v2_summary_lists_layers_at_224(mobilenet: models.MobileNetV2) -> None:
    rows = mobilenet.summary_table()
    assert rows[0] == {
        "layer": "features.0.0",
        "type": "Conv2D",
        "output_shape": "(None, 112, 112, 32)",
        "params": 864,
        "trainable": True,
    }
    assert rows[-3]["output_shape"] == "(None, 7, 7, 1280)"
    assert rows[-1]["layer"] == "classifier.1" and rows[-1]["params"] == 1_281_000
    assert " Trainable params: 3,504,872 (13.37 MB)" in mobilenet.summary_string(88)


def test_resnet18_keys_params_and_forward(resnet: models.ResNet18) -> None:
    expected = torchvision_resnet18_shapes(num_classes=10)
    assert {k: tuple(v.shape) for k, v in resnet.state_dict().items()} == expected
    assert list(resnet.state_dict()) == list(expected)
    full_params = sum(
        v.numel()
        for k, v in random_state(torchvision_resnet18_shapes(), 0).items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert full_params == 11_689_512  # torchvision's resnet18
    sd = random_state(expected, seed=2)
    resnet.load_state_dict(sd, strict=True)
    resnet.eval()
    x = torch.rand(2, 48, 48, 3)
    torch.testing.assert_close(
        resnet(x), resnet18_reference(sd, x.permute(0, 3, 1, 2).contiguous()), rtol=1e-4, atol=1e-4
    )


def test_architecture_save_load_round_trip(resnet: models.ResNet18, tmp_path) -> None:
    loaded = io.load_model(io.save_model(resnet, tmp_path / "r.keras"))
    assert type(loaded) is models.ResNet18
    assert all(
        torch.equal(a, b)
        for a, b in zip(resnet.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def test_native_and_torch_backends_agree_on_mobilenet(mobilenet: models.MobileNetV2) -> None:
    mobilenet.eval()
    x = torch.rand(1, 32, 32, 3)
    with layers.conv_backend("torch"):
        reference = mobilenet(x)
    torch.testing.assert_close(mobilenet(x), reference, rtol=1e-4, atol=1e-4)


def test_backbone_inside_sequential_model() -> None:
    """Keras' transfer-learning pattern: a frozen backbone as the first layer of a new model."""
    torch.manual_seed(0)
    base = models.resnet18(include_top=False, input_shape=(32, 32, 3))
    assert "fc.weight" not in base.state_dict()
    assert base(torch.rand(1, 64, 64, 3)).shape == (1, 2, 2, 512)  # the feature map, channels last
    base.trainable = False
    model = models.Sequential([base, layers.GlobalAveragePooling2D(), layers.Dense(2)])
    rows = model.summary_table()
    assert rows[0]["layer"] == base.name and rows[0]["output_shape"] == "(None, 1, 1, 512)"
    assert rows[0]["trainable"] is False and rows[2]["params"] == 1026
    totals = summary.param_totals(model)
    assert totals["trainable"] == 1026 and totals["non_trainable"] == base.count_params()
    x = torch.rand(2, 32, 32, 3)
    model.eval()
    expected = base.embed(x) @ model.layers[2].weight.t() + model.layers[2].bias
    torch.testing.assert_close(model(x), expected)
