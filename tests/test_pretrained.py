"""pydlr.pretrained: real ImageNet MobileNetV2 weights (offline), checksum, cache, predictions, transfer.

Data: skimage's chelsea (a cat) and coffee photos, and lfw_subset (100 faces / 100 non-faces, 25x25).
Kept small (64 px inputs for the transfer tests) so the file runs in about a minute on 2 cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data
from sklearn.linear_model import LogisticRegression

from pydlr import applications, callbacks, io, pretrained
from pydlr.errors import InputError
from pydlr.pretrained import registry

NAME = "mobilenet_v2"
SPEC = registry.REGISTRY[NAME]


@pytest.fixture(scope="module")
def cache(module_cache: Path) -> Path:
    """A fresh cache folder for this module (PYDLR_CACHE), so the first load converts."""
    return module_cache


@pytest.fixture(scope="module")
def imagenet_model(cache: Path) -> pretrained.MobileNetV2:
    return pretrained.load(NAME)


@pytest.fixture(scope="module")
def lfw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """64-px preprocessed faces (label 0) / non-faces (1), a balanced held-out split."""
    images = data.lfw_subset()
    labels = (np.arange(200) >= 100).astype(np.int64)
    order = np.random.default_rng(0).permutation(200)
    train, test = order[:120], order[120:]
    x = pretrained.preprocess(images, size=64)
    return x[train], labels[train], x[test], labels[test]


def test_registry_names_an_installed_file_with_the_expected_checksum(cache: Path) -> None:
    source = registry.source_path(NAME)
    assert source.name == "mobilenet_v2-b0353104.pth" and source.stat().st_size == SPEC.n_bytes
    assert registry.sha256_file(source) == SPEC.sha256
    assert registry.cache_path(NAME).parent == cache


def test_corrupted_copy_raises_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "copy.pth"
    shutil.copyfile(registry.source_path(NAME), copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte in the middle of the tensors
    copy.write_bytes(bytes(raw))

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load ran on an unverified file")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(registry.ChecksumError, match="differs from the expected"):
        registry.convert(NAME, source=copy)
    with pytest.raises(InputError, match="mobilenet_v2"):
        pretrained.load("no_such_model")


def test_cache_is_written_once_and_equals_the_pth_bit_exactly(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = registry.cache_path(NAME)
    path.unlink(missing_ok=True)
    first = registry.state_dict(NAME)  # converts: verify, torch.load(weights_only=True), write
    assert path.is_file() and not list(cache.glob("*.tmp"))  # atomic: no temporary left behind
    reference = torch.load(registry.source_path(NAME), map_location="cpu", weights_only=True)

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load ran although the cache exists")

    monkeypatch.setattr(torch, "load", no_load)
    cached = registry.state_dict(NAME)
    assert sorted(cached) == sorted(reference) and len(cached) == 314  # safetensors sorts keys
    for key, tensor in reference.items():
        assert cached[key].dtype == tensor.dtype and torch.equal(cached[key], tensor), key
        assert torch.equal(first[key], tensor)
    # Models loaded from the cache hold exactly the original tensors
    model = pretrained.load(NAME)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, reference[key]), key


def test_stale_or_broken_cache_is_rebuilt(cache: Path) -> None:
    path = registry.cache_path(NAME)
    path.write_bytes(b"not a safetensors file")
    state = registry.state_dict(NAME)
    assert len(state) == 314 and registry._read_cache(NAME, path) is not None


def test_edited_cache_is_refused_and_rebuilt(cache: Path) -> None:
    """A cache whose tensors were changed but that is still valid safetensors with the right source
    checksum is not used: it is rebuilt from the verified source file."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = registry.cache_path(NAME)
    registry.state_dict(NAME)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    key = next(iter(state))
    original = state[key].clone()
    state[key] = state[key] + 1.0
    save_file(state, str(path), metadata=meta)
    assert registry._read_cache(NAME, path) is None
    rebuilt = registry.state_dict(NAME)
    assert torch.equal(rebuilt[key], original)
    assert torch.equal(registry._read_cache(NAME, path)[key], original)


def test_info_reports_params_and_megabytes(cache: Path) -> None:
    info = pretrained.info(NAME)
    assert info["params"] == 3_504_872 and info["tensors"] == 314
    assert 14.0 < info["memory_mb"] < 14.3 and info["sha256"] == SPEC.sha256
    assert info["disk_mb"] == round(registry.cache_path(NAME).stat().st_size / 1e6, 2)
    assert info["disk_mb"] >= info["memory_mb"] and info["source_mb"] == 14.21


def test_imagenet_predictions_on_real_photos(imagenet_model: pretrained.MobileNetV2) -> None:
    x = np.concatenate([pretrained.preprocess(data.chelsea()), pretrained.preprocess(data.coffee())])
    assert x.shape == (2, 224, 224, 3) and x.dtype == np.float32
    probs = imagenet_model.predict(x)
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)  # softmax, as keras.applications
    cat, coffee = pretrained.decode_predictions(probs, top=5)
    assert cat[0][0] in {285, 281, 282} and cat[0][1] == "Egyptian cat" and cat[0][2] > 0.5
    assert {c[0] for c in cat[:3]} == {285, 281, 282}  # Egyptian cat, tiger cat, tabby
    assert "tabby" in pretrained.class_names()[281]
    assert coffee[0][:2] == (967, "espresso") and coffee[0][2] > 0.9
    assert [c[2] for c in cat] == sorted((c[2] for c in cat), reverse=True)


def test_preprocess_conventions() -> None:
    img = data.chelsea()  # (300, 451, 3) uint8
    raw = pretrained.preprocess(img, normalize=False)
    assert raw.shape == (1, 224, 224, 3) and 0.0 <= raw.min() and raw.max() <= 1.0
    # Same pixels as float [0, 1] or 0-255 floats give the same result
    np.testing.assert_allclose(pretrained.preprocess(img / 255.0), pretrained.preprocess(img), atol=1e-5)
    norm = pretrained.preprocess(img)
    mean, std = np.array(pretrained.imagenet.IMAGENET_MEAN), np.array(pretrained.imagenet.IMAGENET_STD)
    np.testing.assert_allclose(norm, (raw - mean) / std, atol=1e-5)
    grey = pretrained.preprocess(data.lfw_subset()[:3], size=32)  # 3 grey 25x25 images
    assert grey.shape == (3, 32, 32, 3) and np.allclose(grey[..., 0] * 0.229 + 0.485,
                                                        grey[..., 1] * 0.224 + 0.456, atol=1e-5)
    with pytest.raises(InputError, match="images"):
        pretrained.preprocess(np.zeros((2, 2, 2, 2, 2)))
    with pytest.raises(InputError, match="size"):
        pretrained.preprocess(img, size=0)
    with pytest.raises(InputError, match="probs"):
        pretrained.decode_predictions(np.zeros((1, 10)))


@pytest.mark.parametrize("mode", ["torch", "tflite"])
def test_preprocessing_preprocessed_images_again_is_refused(mode: str) -> None:
    # Preprocessed twice, chelsea (a cat) came out as a confident "matchstick" with no error or warning.
    once = pretrained.preprocess(data.chelsea(), size=64, mode=mode)
    with pytest.raises(InputError, match=r"argument `images` must be raw pixels .*received 'values down to -"):
        pretrained.preprocess(once, size=64, mode=mode)
    # Raw pixels a resize left slightly below 0 are still pixels.
    assert pretrained.preprocess(np.clip(once, -0.05, 1.0), size=64, mode=mode).shape == (1, 64, 64, 3)


def test_headless_model_and_embeddings(cache: Path, imagenet_model: pretrained.MobileNetV2) -> None:
    base = pretrained.load(NAME, include_top=False, pooling="avg")
    x = pretrained.preprocess(data.coffee(), size=96)
    feats = pretrained.embed_images(base, x)
    assert feats.shape == (1, 1280) and feats.dtype == np.float32
    with torch.no_grad():
        np.testing.assert_allclose(feats, base(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(feats, pretrained.embed_images(imagenet_model, x), rtol=1e-5, atol=1e-5)
    assert "classifier.1.weight" not in base.state_dict()
    with pytest.raises(InputError, match="x"):
        pretrained.embed_images(base, np.zeros((1, 64, 64, 5), np.float32))


def test_embeddings_and_logistic_regression_separate_faces(lfw) -> None:
    x_train, y_train, x_test, y_test = lfw
    base = pretrained.load(NAME, include_top=False, input_shape=(64, 64, 3))
    clf = LogisticRegression(max_iter=2000).fit(pretrained.embed_images(base, x_train), y_train)
    accuracy = clf.score(pretrained.embed_images(base, x_test), y_test)
    assert accuracy >= 0.95, accuracy


def test_fine_tune_faces_vs_non_faces(lfw, tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = lfw
    torch.manual_seed(0)
    base = pretrained.load(NAME, include_top=False, input_shape=(64, 64, 3))
    before = base.features[0][0].weight.detach().clone()
    bn_mean = base.features[1].conv[0][1].running_mean.clone()
    head_w = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: head_w.append(
        base.features[0][0].weight.detach().clone()))
    model = pretrained.fine_tune(base, (x_train[:64], y_train[:64]), 1, 3, 3e-3, batch_size=8, seed=0,
                                 callbacks=[record])
    hist = model.fine_tune_history
    assert len(hist["frozen"].history["loss"]) == 3 and len(hist["unfrozen"].history["loss"]) == 1
    assert all(torch.equal(w, before) for w in head_w[:3])  # frozen phase: the body did not move
    assert not torch.equal(base.features[0][0].weight, before)  # the unfrozen phase moved the base
    assert torch.equal(base.features[1].conv[0][1].running_mean, bn_mean)  # BatchNorm stayed frozen
    # discriminative rates: early layers at base_lr / 2 / 100, the head at base_lr / 2 (fastai's halving)
    assert model.fine_tune_lrs == pytest.approx([1.5e-5, 1.5e-4, 1.5e-3])
    accuracy = float((model.predict_classes(x_test) == y_test).mean())
    assert accuracy >= 0.9, accuracy
    # The fine-tuned model saves and loads through pydlr.io with identical predictions
    io.save_model(model, tmp_path / "faces")
    again = io.load_model(tmp_path / "faces")
    np.testing.assert_allclose(again.predict(x_test[:4]), model.predict(x_test[:4]), atol=1e-6)
    with pytest.raises(InputError, match="pooling"):
        pretrained.fine_tune(pretrained.load(NAME, include_top=False, pooling="avg"), (x_train, y_train))
    with pytest.raises(InputError, match="x"):  # wrong channel count, refused before training
        pretrained.fine_tune(pretrained.load(NAME, include_top=False), (x_train[..., :1], y_train))
    with pytest.raises(InputError, match="data"):
        pretrained.fine_tune(base, x_train)


def test_fine_tune_with_a_seed_is_reproducible_within_one_process(lfw) -> None:
    """Two calls with seed=0 on equal bases give the same losses and weights (the head's init was unseeded)."""
    x_train, y_train, _, _ = lfw
    runs = []
    for _ in range(2):
        base = pretrained.load(NAME, include_top=False, input_shape=(32, 32, 3))
        model = pretrained.fine_tune(base, x_train[:24, :32, :32], y=y_train[:24], epochs=1,
                                     freeze_epochs=1, batch_size=8, seed=0)
        hist = model.fine_tune_history
        runs.append((hist["frozen"].history["loss"] + hist["unfrozen"].history["loss"],
                     model.layers[-1].weight.detach().clone()))
        torch.rand(5)  # whatever the caller draws in between must not matter
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_fine_tune_replaces_the_head_of_a_full_network_and_takes_image_folder_data(lfw) -> None:
    """fastai's order: an application network with its ImageNet top loses it; (x, y, class_names) data (as
    load_image_folder returns) sizes the new head and names its classes; layer groups split the body."""
    x_train, y_train, x_test, y_test = lfw
    net = applications.EfficientNetLite0(input_shape=(64, 64, 3))
    model = pretrained.fine_tune(net, (x_train[:48], y_train[:48], ["face", "other"]), epochs=1,
                                 freeze_epochs=1, batch_size=16, seed=0)
    assert not net.include_top and not hasattr(net, "_fc")
    assert model.predict(x_test[:3]).shape == (3, 2) and model.class_names == ("face", "other")
    groups = pretrained.transfer.layer_groups(model, 3)
    sizes = [sum(p.numel() for p in g) for g in groups]
    assert len(groups) == 3 and sizes[-1] == 1280 * 2 + 2 and abs(sizes[0] - sizes[1]) < 0.5 * sum(sizes)
    assert sum(sizes) == sum(p.numel() for p in model.parameters())


def test_pretrained_weights_beat_the_same_network_from_scratch(lfw) -> None:
    """The seed's advice measured small: same architecture, data, epochs and recipe; only the starting
    weights differ (ImageNet vs random)."""
    x_train, y_train, x_test, y_test = lfw
    scores = {}
    for weights in ("imagenet", None):
        net = applications.MobileNetV2(weights=weights, include_top=False, input_shape=(64, 64, 3))
        model = pretrained.fine_tune(net, (x_train[:64], y_train[:64]), 1, 2, 3e-3, batch_size=8, seed=0)
        scores[weights] = float((model.predict_classes(x_test) == y_test).mean())
    assert scores["imagenet"] >= 0.9 and scores["imagenet"] >= scores[None] + 0.15, scores


def _imagenet_scale(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    std = torch.tensor([0.229, 0.224, 0.225]) * 255
    return (images - mean) / std, labels


def test_fine_tune_takes_an_image_dataset(tmp_path: Path) -> None:
    """An image dataset from a folder (labels and batches come with it) runs both phases; its class names
    size and name the new head."""
    from PIL import Image

    from pydlr.data.image_dataset import image_dataset_from_directory

    faces = (data.lfw_subset() * 255).astype(np.uint8)
    for cls, idx in (("face", range(0, 12)), ("other", range(100, 112))):
        (tmp_path / cls).mkdir()
        for i in idx:
            Image.fromarray(faces[i]).save(tmp_path / cls / f"{i}.png")
    ds = image_dataset_from_directory(str(tmp_path), image_size=(32, 32), batch_size=8, seed=0,
                                      color_mode="rgb").map(_imagenet_scale)
    model = pretrained.fine_tune(applications.MobileNetV2(input_shape=(32, 32, 3)), ds, epochs=1,
                                 freeze_epochs=1)
    assert list(model.fine_tune_history) == ["frozen", "unfrozen"] and model.class_names == ("face", "other")
    assert model.predict(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 2)
    with pytest.raises(InputError, match="data"):
        pretrained.fine_tune(applications.MobileNetV2(input_shape=(32, 32, 3)), ds, y=np.zeros(24))


def test_a_fine_tuned_network_predicts_with_batchnorm_folded(lfw) -> None:
    """fine_tune's Sequential predicts as the application networks do: on a copy with every BatchNormalization
    folded into its convolution and ReLU6 fused (fewer parameters: BN's scale and shift become conv biases),
    with the outputs of the unfolded network; a plain stack of layers is left unfolded."""
    from pydlr import Sequential, layers
    from pydlr.layers import BatchNormalization, Conv2D, DepthwiseConv2D

    x_train, y_train, x_test, _ = lfw
    net = applications.MobileNetV2(include_top=False, input_shape=(64, 64, 3))
    model = pretrained.fine_tune(net, (x_train[:32], y_train[:32]), epochs=1, freeze_epochs=1, batch_size=16,
                                 seed=0, train_batchnorm=True)  # BN statistics move: the fold must follow
    with torch.inference_mode():
        unfolded = model.eval()(torch.from_numpy(x_test[:8])).numpy()
    folded = model.inference_model()
    bns = [m for m in model.modules() if isinstance(m, BatchNormalization)]
    assert len(bns) == 52 and not any(isinstance(m, BatchNormalization) for m in folded.modules())
    convs = [m for m in folded.modules() if isinstance(m, (Conv2D, DepthwiseConv2D))]
    assert sum(c.activation == "relu6" for c in convs) == 35
    n_params = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in folded.parameters()) == n_params - sum(bn.weight.numel() for bn in bns)
    np.testing.assert_allclose(model.predict(x_test[:8]), unfolded, atol=1e-5)
    assert model.predict(x_test[:8]).shape == (8, 2) and model.inference_model() is folded  # cached
    plain = Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3), layers.BatchNormalization()])
    assert not plain.fold_inference
