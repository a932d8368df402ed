"""Keras' small utilities: `to_categorical`, `set_random_seed`, `image_dataset_from_directory` (and
`image_dataset_from_dataframe`, its table-of-files form; see `pydlr.data.image_dataset`), `load_img` and
`img_to_array` (one image for ``predict``)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from pydlr.data.decode import check_image_spec, crop_box
from pydlr.data.image_dataset import image_dataset_from_dataframe, image_dataset_from_directory
from pydlr.errors import InputError, NotSupportedError

__all__ = ["to_categorical", "set_random_seed", "image_dataset_from_directory",
           "image_dataset_from_dataframe", "plot_model", "load_img", "img_to_array"]


def plot_model(model: Any, to_file: Any = "model.png", **kwargs: Any) -> None:
    """Keras' ``keras.utils.plot_model``, drawn with matplotlib (no pydot or Graphviz needed): see
    `pydlr.interpret.model_plot.plot_model`."""
    from pydlr.interpret.model_plot import plot_model as draw

    draw(model, to_file, **kwargs)


def to_categorical(y: Any, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot encode integer class labels, as ``keras.utils.to_categorical``.

    Parameters
    ----------
    y : array-like of int
        Class labels in ``0 .. num_classes - 1``, any shape; a trailing axis of length 1 is dropped
        (Keras does the same).
    num_classes : int, optional
        Number of classes; ``max(y) + 1`` when omitted.
    dtype : str
        NumPy dtype of the result.

    Returns
    -------
    numpy.ndarray
        ``y.shape + (num_classes,)`` array of zeros with a one at each label.

    Raises
    ------
    InputError
        Non-integer or negative labels, or labels >= ``num_classes``.
    """
    arr = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)) or np.any(
            arr != np.round(arr)
        ):
            raise InputError("y", "integer class labels", arr, where="to_categorical")
    arr = arr.astype(np.int64)
    if arr.ndim > 1 and arr.shape[-1] == 1:
        arr = arr.reshape(arr.shape[:-1])
    if arr.size and arr.min() < 0:
        raise InputError("y", "labels >= 0", f"minimum label {arr.min()}", where="to_categorical")
    if num_classes is None:
        num_classes = int(arr.max()) + 1 if arr.size else 0
    elif not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise InputError("num_classes", "a positive integer", num_classes, where="to_categorical")
    if arr.size and arr.max() >= num_classes:
        raise InputError(
            "y", f"labels < num_classes = {num_classes}", f"maximum label {arr.max()}",
            where="to_categorical",
        )
    out = np.zeros(arr.shape + (int(num_classes),), dtype=dtype)
    np.put_along_axis(out, arr[..., None], 1, axis=-1)
    return out


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators (``keras.utils.set_random_seed``).

    Call it before building a model to make weight initialisation reproducible; ``fit(seed=)`` then
    controls shuffling, dropout and augmentation.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InputError("seed", "a non-negative integer", seed, where="set_random_seed")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def load_img(path: str | os.PathLike, color_mode: str = "rgb", target_size: tuple[int, int] | None = None,
             interpolation: str = "nearest", keep_aspect_ratio: bool = False) -> Any:
    """Keras' ``keras.utils.load_img``: one image file as a PIL image in ``color_mode``, resized to
    ``target_size`` = (height, width) when given (``keep_aspect_ratio``: from the largest centred crop of
    that aspect ratio), with Keras' defaults (nearest-neighbour resampling)."""
    from PIL import Image

    where = "load_img"
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise InputError("path", "an existing image file", path, where=where)
    if target_size is not None and (
            not isinstance(target_size, (tuple, list)) or len(target_size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in target_size)):
        raise InputError("target_size", "(height, width) as two positive integers, or None", target_size,
                         where=where)
    # the same colour modes, filters and crop as image_dataset_from_directory (the size is checked above)
    spec = check_image_spec(tuple(target_size or (1, 1)), color_mode, interpolation, keep_aspect_ratio, where)
    try:
        with Image.open(path) as img:
            out = img.convert(spec.mode) if img.mode != spec.mode else img.copy()
    except OSError as err:  # Pillow's UnidentifiedImageError, a truncated file
        raise InputError("path", "an image file Pillow reads", f"{os.fspath(path)} ({err})", where=where) from None
    if target_size is None:
        return out
    box = crop_box(out.width, out.height, spec.width, spec.height) if spec.crop_to_aspect_ratio else None
    return out.resize((spec.width, spec.height), resample=spec.resample(), box=box)


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """Keras' ``keras.utils.img_to_array``: a PIL image as a (height, width, channels) array, float32 by
    default (a grey image gets its channel axis, as Keras)."""
    if data_format not in (None, "channels_last"):
        raise NotSupportedError(f"img_to_array(data_format={data_format!r}): pydlr is channels-last; "
                                "transpose the array yourself if you need channels first")
    if not hasattr(img, "mode") or not hasattr(img, "size"):
        raise InputError("img", "a PIL image (from keras.utils.load_img)", img, where="img_to_array")
    arr = np.asarray(img, dtype=dtype or "float32")
    return arr[..., None] if arr.ndim == 2 else arr
