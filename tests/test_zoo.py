"""pydlr's own zoo: the seed CNN trained on Fashion-MNIST and MNIST, shipped as safetensors + JSON.

The shipped files load (checksum verified) and score the test accuracy their metadata records; a short
training run made twice gives bit-identical files (the property scripts/train_zoo.py relies on to reproduce
the shipped ones); a changed weights file is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pydlr import pretrained
from pydlr.errors import InputError, InputScaleWarning
from pydlr.pretrained import zoo
from pydlr.pretrained.registry import ChecksumError, sha256_file


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_shipped_model_scores_its_recorded_test_accuracy(name: str) -> None:
    info = pretrained.info(name)
    path = zoo.weights_dir() / f"{name}.safetensors"
    assert info["bytes"] == path.stat().st_size and info["sha256"] == sha256_file(path)
    assert info["params"] == 93_322 and info["conv_params"] == 55_744
    assert 0.35 < info["disk_mb"] < 0.40 and 0.35 < info["memory_mb"] < 0.40  # a few hundred KB
    assert info["seed"] == 0 and info["epochs"] >= 3 and info["threads"] == 2 and info["conv_backend"] == "native"
    model = pretrained.load(name)
    (_, _), (x_test, y_test) = zoo.ZOO[name].loader()
    accuracy = float((model.predict(x_test.astype(np.float32)[..., None] / 255).argmax(1) == y_test).mean())
    assert accuracy == pytest.approx(info["test_accuracy"], abs=1e-4)
    assert accuracy > (0.88 if "fashion" in name else 0.9)
    # trained on x / 255: test pixels left at 0-255 get the warning a model trained here gives
    assert info["input_scale"] == model.input_scale == 1.0
    with pytest.warns(InputScaleWarning, match="reaches 255 but the training data reached 1"):
        model.predict(x_test[:8].astype(np.float32)[..., None])


def test_short_training_is_bit_identical_twice(tmp_path: Path) -> None:
    digests = []
    for run in range(2):
        model, meta = zoo.train("seed_cnn_mnist", epochs=1, n_train=640)
        weights, meta_path = zoo.write(model, meta, tmp_path / str(run))
        digests.append((sha256_file(weights), json.loads(meta_path.read_text())["test_accuracy"]))
    assert digests[0] == digests[1]
    assert meta["n_train"] == 640 and meta["epochs"] == 1 and meta["input_scale"] == 1.0


def test_changed_weights_are_refused(tmp_path: Path) -> None:
    name = "seed_cnn_mnist"
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(zoo.weights_dir() / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    path = tmp_path / f"{name}.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="differs from its metadata"):
        zoo.load(name, tmp_path)
    path.write_bytes(bytes(raw[: len(raw) // 2]))  # truncated
    with pytest.raises(ChecksumError):
        zoo.load(name, tmp_path)
    with pytest.raises(InputError, match="seed_cnn_fashion_mnist"):
        pretrained.load("seed_cnn_cifar")
