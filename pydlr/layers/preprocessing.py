"""Keras' image preprocessing and augmentation layers: RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast (random in training, the identity at inference), and Resizing,
CenterCrop (always applied; they change the output shape).

The random layers are `pydlr.data.Augment` with one transform switched on: the same code as
``fit(augment=...)`` and R's ``augmentation()``, run inside the model on its device. Their draws come from
a generator of their own when ``seed`` is given, else from torch's global generator (``fit(seed=...)`` and
``torch.manual_seed`` make them reproducible).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from pydlr.data.augment import Augment
from pydlr.data.decode import crop_box
from pydlr.errors import InputError, NotSupportedError
from pydlr.layers.base import Layer, Shape, format_shape, positive_int, to_internal, to_public

__all__ = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "Resizing",
           "CenterCrop"]

_RESIZE_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic", "area": "area"}


def _image_shape(input_shape: Shape, where: str) -> Shape:
    if len(input_shape) != 3:
        raise InputError("input shape", "images (height, width, channels)", format_shape(input_shape), where)
    return tuple(input_shape)


def _keras_only(where: str, data_format: Any = None, fill_mode: str | None = None) -> None:
    """Keras values pydlr does not offer: said at once rather than ignored."""
    if data_format not in (None, "channels_last"):
        raise NotSupportedError(f"{where}: data_format={data_format!r} is not supported; pydlr layers are "
                                "channels-last (move the channel axis with numpy.moveaxis).")
    if fill_mode == "wrap":
        raise NotSupportedError(f"{where}: fill_mode='wrap' is not supported; use 'reflect', 'nearest' or "
                                "'constant'.")


def _augment(where: str, **settings: Any) -> Augment:
    """An `Augment` whose argument errors name this layer (its checks are the ones augmentation() has)."""
    try:
        return Augment(**settings)
    except InputError as err:
        raise InputError(err.argument, err.expected, err.received, where) from None


class _RandomLayer(Layer):
    """Base of the random augmentation layers: ``augment`` (an `Augment`) applied in training only."""

    # Keras' call(..., training=True): a model called directly (model(x), no training=) keeps these random
    # while its Dropout and BatchNormalization run in inference (`pydlr.models.base.BaseModel.forward`)
    keras_default_training: ClassVar[bool] = True

    def __init__(self, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer, float))
                                 or int(seed) != seed or seed < 0):
            raise InputError("seed", "None or a non-negative integer", seed, self.where)
        self.seed = None if seed is None else int(seed)
        self.generator = None if seed is None else torch.Generator().manual_seed(self.seed)
        self.augment: Augment | None = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return _image_shape(input_shape, self.where)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        out = self.augment(to_public(x if x.is_floating_point() else x.float()), self.generator)
        return to_internal(out)


class RandomFlip(_RandomLayer):
    """Keras' ``RandomFlip(mode="horizontal_and_vertical", seed=None)``: flips each image with probability
    1/2 along each axis of ``mode`` ("horizontal" left-right, "vertical" up-down)."""

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None, data_format: Any = None,
                 **kwargs: Any):
        super().__init__(seed, **kwargs)
        _keras_only(self.where, data_format)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise InputError("mode", '"horizontal", "vertical" or "horizontal_and_vertical"', mode, self.where)
        self.mode = mode
        self.augment = _augment(self.where, flip=mode)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


class _Geometric(_RandomLayer):
    """The fill and interpolation arguments the geometric layers share."""

    def __init__(self, fill_mode: str, interpolation: str, seed: int | None, fill_value: float,
                 data_format: Any, **kwargs: Any):
        super().__init__(seed, **kwargs)
        _keras_only(self.where, data_format, fill_mode)
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value

    def _build_augment(self, **transform: Any) -> Augment:
        return _augment(self.where, fill_mode=self.fill_mode, interpolation=self.interpolation,
                        fill_value=self.fill_value, **transform)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


def _factor(value: Any) -> Any:
    """Keras' factor: a number z (the range -z..z) or a range [lower, upper] (a tuple for Augment)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _config_factor(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class RandomRotation(_Geometric):
    """Keras' ``RandomRotation(factor, fill_mode="reflect", interpolation="bilinear", seed=None,
    fill_value=0.0)``: rotates by a random fraction of a full turn in [-factor, factor] (or
    [lower, upper] for a pair; positive turns counter-clockwise)."""

    def __init__(self, factor: Any, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, data_format: Any = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _factor(factor)
        try:
            self.augment = self._build_augment(rotation=self.factor)
        except InputError as err:
            argument = "factor" if err.argument == "rotation" else err.argument
            raise InputError(argument, err.expected, err.received, self.where) from None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": _config_factor(self.factor)}


class RandomZoom(_Geometric):
    """Keras' ``RandomZoom(height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear",
    seed=None, fill_value=0.0)``: zooms by a random amount in [-factor, factor] (or [lower, upper]);
    positive zooms out, negative zooms in. ``width_factor`` None keeps the aspect ratio."""

    def __init__(self, height_factor: Any, width_factor: Any = None, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None, fill_value: float = 0.0,
                 data_format: Any = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = _factor(height_factor), _factor(width_factor)
        try:
            self.augment = self._build_augment(zoom=self.height_factor, zoom_width=self.width_factor)
        except InputError as err:  # Augment's argument names are not this layer's
            argument = {"zoom": "height_factor", "zoom_width": "width_factor"}.get(err.argument, err.argument)
            raise InputError(argument, err.expected, err.received, self.where) from None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height_factor": _config_factor(self.height_factor),
                "width_factor": _config_factor(self.width_factor)}


class RandomTranslation(_Geometric):
    """Keras' ``RandomTranslation(height_factor, width_factor, fill_mode="reflect",
    interpolation="bilinear", seed=None, fill_value=0.0)``: shifts by a random fraction of the height and
    width in [-factor, factor] (or [lower, upper]; positive moves down / right)."""

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None, fill_value: float = 0.0,
                 data_format: Any = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = _factor(height_factor), _factor(width_factor)
        for argument, value in (("height_factor", self.height_factor), ("width_factor", self.width_factor)):
            try:
                _augment(self.where, shift=(value, 0.0))
            except InputError as err:
                raise InputError(argument, err.expected, err.received, self.where) from None
        self.augment = self._build_augment(shift=(self.height_factor, self.width_factor))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height_factor": _config_factor(self.height_factor),
                "width_factor": _config_factor(self.width_factor)}


class RandomContrast(_RandomLayer):
    """Keras' ``RandomContrast(factor, value_range=(0, 255), seed=None)``: scales each image's deviation from
    its per-channel mean by a random factor in [1 - lower, 1 + upper] (``factor`` a number: lower = upper),
    then clips to ``value_range``."""

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(seed, **kwargs)
        if isinstance(value_range, (list, tuple)) and len(value_range) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range) \
                and value_range[0] < value_range[1]:
            self.value_range = (float(value_range[0]), float(value_range[1]))
        else:
            raise InputError("value_range", "(low, high) with low < high", value_range, self.where)
        self.factor = _factor(factor)
        if isinstance(self.factor, tuple):
            if len(self.factor) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
                                            for v in self.factor):
                raise InputError("factor", "a number in [0, 1) or (lower, upper) of them", factor, self.where)
            # Keras' (lower, upper) is the range 1 - lower .. 1 + upper: Augment's (-lower, upper)
            contrast = (-float(self.factor[0]), float(self.factor[1]))
            contrast = contrast[1] if contrast[0] == -contrast[1] else contrast
        else:
            contrast = self.factor
        try:
            self.augment = _augment(self.where, contrast=contrast, value_range=self.value_range)
        except InputError as err:
            raise InputError("factor", "a number in [0, 1) or (lower, upper) of them", factor, self.where) \
                from err

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": _config_factor(self.factor),
                "value_range": list(self.value_range)}


# ----- Resizing and CenterCrop: applied in training and inference ---------------------------------------
def resize_images(x: torch.Tensor, size: tuple[int, int], interpolation: str = "bilinear",
                  crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
                  fill_value: float = 0.0, antialias: bool = False) -> torch.Tensor:
    """Resize an (n, c, h, w) batch to ``size`` (height, width) as Keras' Resizing does: optionally first
    crop the largest centred box, or pad (with ``fill_value``) to the target's aspect ratio."""
    h, w = x.shape[2], x.shape[3]
    th, tw = size
    if crop_to_aspect_ratio:
        left, top, right, bottom = (round(v) for v in crop_box(w, h, tw, th))
        x = x[:, :, top:bottom, left:right]
    elif pad_to_aspect_ratio:
        ph = max(h, math.ceil(w * th / tw)) - h
        pw = max(w, math.ceil(h * tw / th)) - w
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=fill_value)
    if tuple(x.shape[2:]) == (th, tw):
        return x
    mode = _RESIZE_MODES[interpolation]
    smooth = antialias and mode in ("bilinear", "bicubic")
    kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x.float(), size=(th, tw), mode=mode, antialias=smooth, **kw)


class Resizing(Layer):
    """Keras' ``Resizing(height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False)``."""

    def __init__(self, height: int, width: int, interpolation: str = "bilinear",
                 crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
                 fill_mode: str = "constant", fill_value: float = 0.0, antialias: bool = False,
                 data_format: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        _keras_only(self.where, data_format)
        self.height, self.width = positive_int(height, "height", self.where), positive_int(width, "width",
                                                                                             self.where)
        if interpolation not in _RESIZE_MODES:
            raise InputError("interpolation", f"one of {', '.join(map(repr, _RESIZE_MODES))}", interpolation,
                             self.where)
        for argument, flag in (("crop_to_aspect_ratio", crop_to_aspect_ratio),
                               ("pad_to_aspect_ratio", pad_to_aspect_ratio), ("antialias", antialias)):
            if not isinstance(flag, (bool, np.bool_)):
                raise InputError(argument, "True or False", flag, self.where)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise InputError("pad_to_aspect_ratio", "False when crop_to_aspect_ratio is True", True, self.where)
        if fill_mode != "constant":
            raise InputError("fill_mode", '"constant" (the padding of pad_to_aspect_ratio)', fill_mode,
                             self.where)
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float)):
            raise InputError("fill_value", "a number", fill_value, self.where)
        self.interpolation, self.fill_value, self.antialias = interpolation, float(fill_value), bool(antialias)
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_value": self.fill_value,
                "antialias": self.antialias}

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.height, self.width, _image_shape(input_shape, self.where)[2])

    def check_input_shape(self, input_shape: Shape) -> None:
        _image_shape(input_shape, self.where)  # any height and width: the layer resizes them

    def call(self, x: torch.Tensor) -> torch.Tensor:
        out = resize_images(x, (self.height, self.width), self.interpolation, self.crop_to_aspect_ratio,
                            self.pad_to_aspect_ratio, self.fill_value, self.antialias)
        return out.contiguous(memory_format=torch.channels_last)


class CenterCrop(Layer):
    """Keras' ``CenterCrop(height, width)``: the central ``height`` x ``width`` window; an image smaller than
    that on an axis is resized to it after a crop to the target's aspect ratio, as Keras does."""

    def __init__(self, height: int, width: int, data_format: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        _keras_only(self.where, data_format)
        self.height, self.width = positive_int(height, "height", self.where), positive_int(width, "width",
                                                                                             self.where)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width}

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.height, self.width, _image_shape(input_shape, self.where)[2])

    def check_input_shape(self, input_shape: Shape) -> None:
        _image_shape(input_shape, self.where)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        if h < self.height or w < self.width:
            out = resize_images(x, (self.height, self.width), crop_to_aspect_ratio=True)
        else:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            out = x[:, :, top:top + self.height, left:left + self.width]
        return out.contiguous(memory_format=torch.channels_last)
