"""Data sets from R, with Keras' shapes and R's integer type (R has no uint8 or int64)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pydlr import utils
from pydlr.api_r._convert import c_array
from pydlr.data import datasets, folders, samples


def _int32(splits: Any) -> dict[str, np.ndarray]:
    (x_train, y_train), (x_test, y_test) = splits
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return {k: c_array(v, np.int32) for k, v in arrays.items()}


def load_fashion_mnist() -> dict[str, np.ndarray]:
    """``pydlr.data.load_fashion_mnist()`` as int32 arrays: x_train (60000, 28, 28), y_train, x_test, y_test."""
    return _int32(datasets.load_fashion_mnist())


def load_mnist() -> dict[str, np.ndarray]:
    """``pydlr.data.load_mnist()`` as int32 arrays: x_train (4000, 28, 28), y_train, x_test, y_test."""
    return _int32(datasets.load_mnist())


def load_lfw_subset() -> dict[str, np.ndarray]:
    """``pydlr.data.samples.load_lfw_subset()``: x (200, 25, 25) doubles, y int32 (0 face, 1 not)."""
    x, y = samples.load_lfw_subset()
    return {"x": c_array(x), "y": c_array(y, np.int32)}


def example_image(name: str) -> np.ndarray:
    """``pydlr.data.samples.example_image(name)`` as int32 (height, width, 3), values 0-255."""
    return c_array(samples.example_image(name), np.int32)


def load_image_folder(directory: str, image_size: Any = (256, 256), color_mode: str = "rgb",
                      interpolation: str = "bilinear", shuffle: bool = True,
                      seed: int | None = None) -> dict[str, Any]:
    """``pydlr.data.load_image_folder`` for R: x int32 (n, h, w, c) (R has no uint8), y int32, class_names."""
    x, y, names = folders.load_image_folder(
        str(directory), tuple(int(v) for v in image_size), color_mode, interpolation,
        shuffle=bool(shuffle), seed=None if seed is None else int(seed),
    )
    return {"x": c_array(x, np.int32), "y": c_array(y, np.int32), "class_names": list(names)}


def image_load(path: str, color_mode: str = "rgb", target_size: Any = None, interpolation: str = "nearest",
               keep_aspect_ratio: bool = False) -> np.ndarray:
    """keras3's ``image_load()`` for R: ``pydlr.utils.load_img``'s image as int32 (height, width, channels),
    values 0-255. R holds the pixels, not a PIL image, so they cross once, as `example_image`'s."""
    size = None if target_size is None else tuple(int(v) for v in target_size)
    img = utils.load_img(path, color_mode=color_mode, target_size=size, interpolation=interpolation,
                         keep_aspect_ratio=bool(keep_aspect_ratio))
    return c_array(utils.img_to_array(img, dtype="int32"), np.int32)
