"""Looking inside a network: first-layer filters, feature maps, and Grad-CAM heatmaps.

Layers are found by their pydlr name (``"conv2d_1"``) or by module path (``"features.18"``, also
``"layers.0.features.18"`` inside a Sequential); hooks read the internal (NCHW) tensors and results are
returned channels-last, as everything public in pydlr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pydlr.errors import InputError
from pydlr.layers import Conv2D
from pydlr.layers.base import Layer
from pydlr.models import BaseModel
from pydlr.models.modes import evaluating

__all__ = [
    "activations", "cam_from", "check_classes", "check_image_model", "conv_layer", "filter_grid", "filters",
    "find_layer", "grad_cam", "grad_cam_details", "last_spatial_module", "layer_names", "model_input",
]


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model", model, where)


def check_image_model(model: Any, where: str) -> tuple[int, int, int]:
    """The (height, width, channels) of an image model's input; InputError for any other model."""
    _check_model(model, where)
    shape = model.declared_input_shape
    if shape is None or len(shape) != 3 or shape[-1] not in (1, 3):
        raise InputError("model", "an image model (input height x width x 1 or 3 channels)",
                         f"a model with input shape {shape}", where)
    return int(shape[0]), int(shape[1]), int(shape[2])


def model_input(model: BaseModel, x: Any, preprocess: bool, where: str) -> Any:
    """``x`` as the model takes it: as given, or (``preprocess``) raw images put through the model's own
    preprocessing (the ImageNet networks': resize, centre crop, their scaling)."""
    if not preprocess:
        return x
    from pydlr.pretrained.imagenet import model_mode
    from pydlr.pretrained.imagenet import preprocess as imagenet_preprocess

    mode = model_mode(model)
    if mode is None:
        raise InputError("preprocess", "False for a model without preprocessing of its own (only the "
                         "ImageNet networks have one: scale the images as the model was trained)",
                         preprocess, where)
    h, _w, _c = check_image_model(model, where)
    return imagenet_preprocess(x, size=h, mode=mode)


def find_layer(model: BaseModel, layer: Any, where: str = "interpret") -> nn.Module:
    """The module for ``layer``: a module of the model, a pydlr layer name, or a module path."""
    if isinstance(layer, nn.Module):
        if any(m is layer for m in model.modules()):
            return layer
        raise InputError("layer", "a layer of this model", layer, where)
    if isinstance(layer, str):
        for path, module in model.named_modules():
            if layer == path or (isinstance(module, Layer) and layer == module.name):
                return module
    names = layer_names(model)
    shown = ", ".join(names) if len(names) <= 20 else \
        ", ".join(names[:16]) + f", ... ({len(names)} in all: the model's summary lists them)"
    raise InputError("layer", f"a layer name or module path of the model: {shown}", layer, where)


def layer_names(model: BaseModel) -> list[str]:
    """The names of the model's pydlr layers, in module order (nested models' layers included)."""
    return [m.name for m in model.modules() if isinstance(m, Layer) and m is not model]


def _first_conv(model: BaseModel, where: str) -> Conv2D:
    for m in model.modules():
        if isinstance(m, Conv2D) and getattr(m, "weight", None) is not None:
            return m
    raise InputError("model", "a model with a Conv2D layer", model, where)


def conv_layer(model: Any, layer: Any, where: str) -> nn.Module:
    """The convolution ``layer`` names (default: the model's first Conv2D), checked to have 4-d kernels."""
    _check_model(model, where)
    conv = _first_conv(model, where) if layer is None else find_layer(model, layer, where)
    weight = getattr(conv, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise InputError("layer", "a convolution layer with 4-d kernels", layer, where)
    return conv


def filter_grid(kernels: np.ndarray, ncol: int | None = None, pad: int = 1, shared: int = 1) -> np.ndarray:
    """Tile kernels (n, kh, kw, c) into one image, scaled to [0, 1] per group of ``shared`` tiles.

    ``shared=1`` scales each kernel on its own; consecutive groups of ``shared`` tiles share one scale (the
    input channels of one filter, see `filters`). Returns (rows * (kh + pad) - pad, ncol * (kw + pad) - pad,
    c) float32; gaps are 1 (white).
    """
    n, kh, kw, c = kernels.shape
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    grid = np.ones((nrow * (kh + pad) - pad, ncol * (kw + pad) - pad, c), dtype=np.float32)
    groups = kernels.reshape(n // shared, -1)
    lo = np.repeat(groups.min(axis=1), shared)[:, None, None, None]
    hi = np.repeat(groups.max(axis=1), shared)[:, None, None, None]
    scaled = (kernels - lo) / np.where(hi > lo, hi - lo, 1.0)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[r * (kh + pad):r * (kh + pad) + kh, q * (kw + pad):q * (kw + pad) + kw] = scaled[i]
    return grid


def filters(model: Any, layer: Any = None, grid: bool = True, ncol: int | None = None) -> np.ndarray:
    """A convolution's kernels (default: the first Conv2D's), which for a first layer are image patches.

    Parameters
    ----------
    model : BaseModel
    layer : str or module, optional
        A convolution layer; default the model's first.
    grid : bool
        True: one image (see `filter_grid`). Kernels over 1 or 3 input channels (grey or colour images, a
        first layer) are tiles of that many channels, each scaled to [0, 1] on its own, ``ncol`` per row.
        Kernels over any other number of channels (deeper layers) are not images: the grid then has one grey
        tile per (filter, input channel), a row per filter and a column per input channel, each filter's
        tiles scaled together so its channels compare (a channel mean would let weights of opposite sign
        cancel and hide them). False: the raw kernels (filters, kh, kw, in_channels).
    """
    kernels = conv_layer(model, layer, "filters").weight.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (out, kh, kw, in)
    if not grid:
        return np.ascontiguousarray(kernels)
    n, kh, kw, c = kernels.shape
    if c in (1, 3):
        return filter_grid(kernels, ncol)
    tiles = kernels.transpose(0, 3, 1, 2).reshape(n * c, kh, kw, 1)  # filter-major: row f, column channel
    return filter_grid(tiles, ncol=c, shared=c)


@contextmanager
def _capture(module: nn.Module, keep_grad: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Records the module's output of the next forward pass under key "out"."""
    box: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            box["out"] = out
            if keep_grad and out.requires_grad:
                out.retain_grad()

    handle = module.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def _public(t: torch.Tensor) -> np.ndarray:
    t = t.detach().float().cpu()
    if t.dim() == 4:
        t = t.permute(0, 2, 3, 1)
    return np.ascontiguousarray(t.numpy())


def activations(model: Any, x: Any, layer: Any, preprocess: bool = False) -> np.ndarray:
    """The output of ``layer`` for inputs ``x`` (inference mode): feature maps (N, h, w, channels).

    ``preprocess=True``: ``x`` are raw images (0-255 or [0, 1]), put through the model's own preprocessing
    first (the ImageNet networks: MobileNetV2, EfficientNet-Lite, ...; see `model_input`).
    """
    where = "activations"
    _check_model(model, where)
    module = find_layer(model, layer, where)
    xt = model.prepare_input(model_input(model, x, preprocess, where))
    with evaluating(model), torch.no_grad(), _capture(module) as box:
        model.call_internal(xt)
    if "out" not in box:
        raise InputError("layer", "a layer the model's forward pass runs", layer, where)
    return _public(box["out"])


def last_spatial_module(model: BaseModel, xt: torch.Tensor, where: str = "grad_cam") -> nn.Module:
    """The last pydlr layer (in execution order) whose output is a feature map (4-d); ``where`` names the
    caller in the error for a model without one."""
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda m, _i, o: order.append(m) if isinstance(o, torch.Tensor)
                                and o.dim() == 4 else None)
        for m in model.modules() if isinstance(m, Layer) and not isinstance(m, BaseModel)
    ]
    try:
        with evaluating(model), torch.no_grad():
            model.call_internal(xt[:1])
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise InputError("model", "a model with convolutional feature maps", model, where)
    return order[-1]


def _looks_like_probabilities(out: torch.Tensor) -> bool:
    return bool(out.dim() == 2 and out.shape[1] > 1 and (out >= 0).all()
                and torch.allclose(out.sum(1), torch.ones_like(out.sum(1)), atol=1e-3))


def grad_cam(model: Any, x: Any, class_index: Any = None, layer: Any = None,
             upsample: bool = True, preprocess: bool = False) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

    The feature maps A_k of ``layer`` (default: the last layer with a spatial output) are weighted by the
    spatially averaged gradient of the class score, ``relu(sum_k mean(dS/dA_k) * A_k)``, and scaled to
    [0, 1] per image. The class score is the logit, or the log-probability when the model ends in softmax.

    Parameters
    ----------
    model : BaseModel
    x : array
        Preprocessed channels-last images (N, H, W, C).
    class_index : int or sequence of int, optional
        Class per image (or one for all); default each image's predicted class.
    layer : str or module, optional
    upsample : bool
        Resize the heatmap to the input's H x W (bilinear); False keeps the layer's resolution.
    preprocess : bool
        ``x`` are raw images, put through the model's own preprocessing first (see `activations`).

    Returns
    -------
    numpy.ndarray
        float32 (N, H, W) heatmaps in [0, 1].
    """
    return grad_cam_details(model, x, class_index, layer, upsample, preprocess)["heatmaps"]


def grad_cam_details(model: Any, x: Any, class_index: Any = None, layer: Any = None,
                     upsample: bool = True, preprocess: bool = False) -> dict[str, Any]:
    """`grad_cam` and what it explained: ``heatmaps`` (N, H, W), ``classes`` (N,) int64 (the given or the
    predicted class of each image) and ``probabilities`` (N,) of those classes (the softmax of the outputs
    when they are logits), for titles that name the class."""
    where = "grad_cam"
    _check_model(model, where)
    xt = model.prepare_input(model_input(model, x, preprocess, where))
    n = xt.shape[0]
    module = last_spatial_module(model, xt) if layer is None else find_layer(model, layer, where)
    with evaluating(model), torch.enable_grad(), _capture(module) as box:
        out = model.call_internal(xt)
        if "out" not in box or box["out"].dim() != 4:
            raise InputError("layer", "a layer with a spatial (4-d) output", layer, where)
        if out.dim() != 2:
            raise InputError("model", "a classifier with outputs (N, classes)", model, where)
        classes = check_classes(class_index, out, n, where)
        scores, probabilities = scores_for_cam(out)
        picked = scores.gather(1, classes[:, None]).sum()
        fmap = box["out"]
        (grad,) = torch.autograd.grad(picked, fmap)
    cam = cam_from(fmap.detach(), grad, tuple(xt.shape[2:]) if upsample else None)
    probs = out.detach() if probabilities else torch.softmax(out.detach(), dim=1)
    return {
        "heatmaps": np.ascontiguousarray(cam.float().cpu().numpy()),
        "classes": classes.cpu().numpy().astype(np.int64),
        "probabilities": probs.gather(1, classes[:, None])[:, 0].float().cpu().numpy(),
    }


def cam_from(fmap: torch.Tensor, grad: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Grad-CAM heatmaps (N, h, w) in [0, 1] from feature maps (N, C, h, w) and the class score's
    gradient with respect to them, resized (bilinear) to ``size`` when given."""
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * fmap).sum(dim=1, keepdim=True))
    if size is not None:
        cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
    cam = cam[:, 0]
    return cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]


def scores_for_cam(out: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The class scores Grad-CAM differentiates (log-probabilities when the model ends in softmax, else the
    logits) and whether ``out`` were probabilities."""
    probabilities = _looks_like_probabilities(out)
    return (out.log() if probabilities else out), probabilities


def check_classes(class_index: Any, out: torch.Tensor, n: int, where: str) -> torch.Tensor:
    k = out.shape[1]
    if class_index is None:
        return out.detach().argmax(dim=1)
    idx = np.atleast_1d(np.asarray(class_index))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or len(idx) not in (1, n) or idx.min() < 0 \
            or idx.max() >= k:
        # The values themselves (an array would be described by its shape alone, hiding the 1000 of 0..999)
        shown = idx.tolist() if idx.size <= 8 else class_index
        raise InputError("class_index", f"an integer in 0..{k - 1} (one, or one per image)",
                         shown[0] if isinstance(shown, list) and len(shown) == 1 else shown, where)
    return torch.as_tensor(np.broadcast_to(idx, (n,)).astype(np.int64), device=out.device)
