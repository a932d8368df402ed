"""matplotlib figures for `pydlr.interpret` (Agg backend: they render without a display).

Each ``plot_*`` returns the Figure and, with ``path``, saves it as PNG.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from pydlr.errors import InputError
from pydlr.interpret.errors_analysis import confusion_matrix, top_losses
from pydlr.interpret.inside import (
    activations,
    conv_layer,
    filter_grid,
    filters,
    grad_cam_details,
    model_input,
)
from pydlr.interpret.patterns import filter_patterns, patterns_as_pixels

__all__ = ["plot_activations", "plot_confusion_matrix", "plot_filter_patterns", "plot_filters", "plot_grad_cam",
           "plot_top_losses"]


def _pyplot() -> Any:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: str | os.PathLike | None) -> Any:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def _display(img: np.ndarray) -> np.ndarray:
    """Scale any image to [0, 1] for display; one channel becomes 2-d."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def _one_image(image: Any, where: str) -> np.ndarray:
    """An image (H, W) or (H, W, C); a batch of one (1, H, W, C), as preprocessing returns, is unwrapped."""
    img = np.asarray(image)
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] not in (1, 3, 4)):
        raise InputError("image", "an image (H, W), (H, W, C) or a batch of one (1, H, W, C)", img, where)
    return img


def plot_filters(model: Any, layer: Any = None, path: str | os.PathLike | None = None) -> Any:
    """A convolution's kernels (default: the first one's) as an image grid.

    First-layer kernels over grey or colour images are drawn as small images; a deeper layer's kernels as
    one grey tile per (filter, input channel), a row per filter (see `filters`).
    """
    plt = _pyplot()
    grid = filters(model, layer)
    conv = conv_layer(model, layer, "plot_filters")
    in_channels = int(conv.weight.shape[1])
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
    name = getattr(conv, "name", str(layer))
    if in_channels in (1, 3):
        ax.set_title(f"Filters of {name}")
    else:
        ax.set_title(f"Filters of {name}\n(rows: {int(conv.weight.shape[0])} filters, "
                     f"columns: {in_channels} input channels)")
    ax.axis("off")
    return _finish(fig, path)


def plot_filter_patterns(model: Any, layer: Any, filters: Any = None, steps: int = 30,
                         learning_rate: float | None = None, size: int | None = None, ncol: int | None = None,
                         path: str | os.PathLike | None = None) -> Any:
    """A grid of `filter_patterns`: what each filter of ``layer`` responds to most, each tile scaled to
    its own range (the filter's number above it)."""
    plt = _pyplot()
    patterns = filter_patterns(model, layer, filters, steps, learning_rate, size)
    pixels = patterns_as_pixels(model, patterns)
    picked = list(range(min(16, len(pixels)))) if filters is None else \
        [int(f) for f in np.atleast_1d(np.asarray(filters))]
    n = len(pixels)
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.9 * ncol, 2.0 * nrow + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            tile = filter_grid(pixels[i:i + 1])
            ax.imshow(tile[..., 0] if tile.shape[-1] == 1 else tile, cmap="gray", interpolation="nearest")
            ax.set_title(f"filter {picked[i]}", fontsize=8)
    fig.suptitle(f"Filter patterns of {layer} (gradient ascent)")
    return _finish(fig, path)


def plot_top_losses(model: Any, x: Any, y: Any, k: int = 9, class_names: Sequence[str] | None = None,
                    images: Any = None, ncol: int | None = None, path: str | os.PathLike | None = None) -> Any:
    """fastai's ``plot_top_losses``: the ``k`` samples with the largest loss, each titled
    "predicted / actual / loss / probability of the actual class".

    ``images`` (default ``x``): what to draw for each sample, e.g. the unnormalized pixels; class names
    default to the model's ``class_names``, else the class numbers.
    """
    plt = _pyplot()
    top = top_losses(model, x, y, k=k)
    shown = np.asarray(x if images is None else images)
    if shown.shape[0] != np.asarray(x).shape[0]:
        raise InputError("images", f"one image per sample of x ({np.asarray(x).shape[0]})", images,
                         "plot_top_losses")
    n = len(top["index"])
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.9 * nrow), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(_display(shown[top["index"][i]]), cmap="gray")
        pred = _short_label(model, int(top["predicted"][i]), class_names)
        actual = _short_label(model, int(top["actual"][i]), class_names)
        ax.set_title(f"{pred} / {actual}\n{top['loss'][i]:.2f} / {top['probability_actual'][i]:.2f}",
                     fontsize=8)
    fig.suptitle("Top losses: predicted / actual, loss / probability of the actual class")
    return _finish(fig, path)


def _short_label(model: Any, index: int, class_names: Sequence[str] | None) -> str:
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    return _wrap(names[index], 18) if names is not None and 0 <= index < len(names) else str(index)


def plot_activations(model: Any, x: Any, layer: Any, max_maps: int = 16, index: int = 0,
                     path: str | os.PathLike | None = None, preprocess: bool = False) -> Any:
    """The first ``max_maps`` feature maps of ``layer`` for sample ``index`` of ``x`` (raw images with
    ``preprocess=True``: the model's own preprocessing is applied, see `activations`)."""
    plt = _pyplot()
    maps = activations(model, np.asarray(x)[index:index + 1], layer, preprocess=preprocess)[0]
    if maps.ndim != 3:
        raise InputError("layer", "a layer with feature maps (a 4-d output)", layer, "plot_activations")
    n = min(int(max_maps), maps.shape[-1])
    ncol = int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.8 * ncol, 1.8 * nrow), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[..., i], cmap="viridis")
            ax.set_title(str(i), fontsize=8)
    fig.suptitle(f"Activations of {layer}")
    return _finish(fig, path)


def plot_grad_cam(model: Any, x: Any, class_index: Any = None, layer: Any = None,
                  image: Any = None, title: str | None = None,
                  path: str | os.PathLike | None = None,
                  class_names: Sequence[str] | None = None, preprocess: bool = False) -> Any:
    """The image of ``x[0]`` (or ``image``: e.g. the unnormalized pixels) beside its Grad-CAM overlay.

    ``preprocess=True``: ``x`` is a raw photo (e.g. ``example_image("chelsea")``) for an ImageNet network;
    the model's own preprocessing is applied and the heatmap is drawn over the original photo (the same
    centre crop, unnormalized).

    The title names the class explained (given or predicted) by ``class_names`` (default: the model's
    ``class_names``, e.g. ImageNet's for a pretrained model with its top) with its probability; a colour
    bar gives the scale of the evidence (0 to 1, the image's maximum).
    """
    plt = _pyplot()
    if preprocess:
        raw = np.asarray(x)
        raw = raw[:1] if raw.ndim == 4 else raw
        x = model_input(model, raw, True, "plot_grad_cam")
        if image is None:
            from pydlr.pretrained.imagenet import preprocess as imagenet_preprocess

            image = imagenet_preprocess(raw, size=x.shape[1], normalize=False)[0]
    x = np.asarray(x)[:1]
    explained = grad_cam_details(model, x, class_index, layer)
    heat = explained["heatmaps"][0]
    img = _display(x[0] if image is None else _one_image(image, "plot_grad_cam"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
    axes[0].imshow(img, cmap="gray")
    axes[0].set_title("input")
    axes[1].imshow(img, cmap="gray")
    shown = axes[1].imshow(heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0,
                           extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5))
    label = _class_label(model, int(explained["classes"][0]), class_names)
    axes[1].set_title(title or f"Grad-CAM: {label}, p = {float(explained['probabilities'][0]):.2f}")
    for ax in axes:
        ax.axis("off")
    fig.colorbar(shown, ax=axes[1], fraction=0.046, label="evidence for the class (0-1)")
    return _finish(fig, path)


def _class_label(model: Any, index: int, class_names: Sequence[str] | None) -> str:
    """``"tabby (class 281)"`` from ``class_names`` or the model's own ``class_names``, else ``"class 281"``."""
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    if names is not None and 0 <= index < len(names):
        return f"{names[index]} (class {index})"
    return f"class {index}"


def _wrap(name: str, width: int = 20) -> str:
    """A class name broken at spaces into lines of ``width`` characters, so long names show whole."""
    return "\n".join(textwrap.wrap(str(name), width)) or str(name)


def plot_confusion_matrix(y_true: Any, y_pred: Any = None, class_names: Sequence[str] | None = None,
                          normalize: bool = False, path: str | os.PathLike | None = None) -> Any:
    """Heatmap of the confusion matrix with counts; ``y_true`` may be a ready matrix (y_pred None).

    Long class names are wrapped onto lines at spaces; the cells and the figure grow with them and the
    layout is constrained, so no name is cut or overlaps another, and the axis titles stay clear of them.
    Predicted names are written vertically unless they are short (up to 4 characters).
    """
    plt = _pyplot()
    cm = np.asarray(y_true) if y_pred is None else confusion_matrix(y_true, y_pred)
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    k = cm.shape[0]
    names = [_wrap(n) for n in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise InputError("class_names", f"{k} names (one per class)", class_names, "plot_confusion_matrix")
    # Sizes in inches for 10-pt text: ~0.085 per character, ~0.2 per line.
    chars = max(len(line) for n in names for line in n.split("\n"))
    lines = max(n.count("\n") + 1 for n in names)
    cell = max(0.55, 0.2 * lines + 0.1)
    vertical = chars > 4
    label_w, label_h = 0.085 * chars + 0.3, (0.085 * chars if vertical else 0.2 * lines) + 0.3
    fig, ax = plt.subplots(figsize=(1.6 + cell * k + label_w + 1.2, 1.2 + cell * k + label_h),
                           layout="constrained")
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the row" if normalize else "count")
    ax.set_xticks(range(k), names, rotation=90 if vertical else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    peak = shown.max() if shown.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(int(cm[i, j]))
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if shown[i, j] > peak / 2 else "black", fontsize=8)
    ax.set_title("Confusion matrix")
    return _finish(fig, path)
