"""Image augmentation done per batch (one batched affine_grid + grid_sample), as Keras' preprocessing layers.

Factors follow Keras' RandomFlip / RandomRotation / RandomTranslation / RandomZoom / RandomBrightness /
RandomContrast: ``rotation=0.1`` rotates by up to +-0.1 * 360 degrees, ``shift=0.1`` translates by up
to 10% of the height and width, ``zoom=0.1`` scales by 0.9-1.1, ``brightness=0.2`` adds up to +-20% of
the value range, ``contrast=0.2`` scales the deviation from each image's mean by 0.8-1.2.
Geometric transforms sample with ``fill_mode`` "reflect" (Keras' default), "nearest" or "constant" (with
``fill_value``) and ``interpolation`` "bilinear" (default), "nearest" or "bicubic". Each factor may also be
a range ``(lower, upper)`` as Keras' layers take it (``rotation=(0.0, 0.1)`` rotates counter-clockwise only,
``zoom=(-0.3, -0.1)`` zooms in, ``contrast=(lo, hi)`` scales by 1 + lo .. 1 + hi); ``zoom_width`` draws the
width's zoom separately (Keras' RandomZoom ``width_factor``). The preprocessing layers
(``pydlr.layers.RandomFlip``, ``RandomRotation``, ...) are this class with one transform switched on.

Every draw comes from the ``torch.Generator`` passed in, so a batch's augmentation depends only on that
generator's seed (pydlr derives it from the fit seed, the epoch and the step: the same whatever the
number of worker processes, and reproducible on resume).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pydlr.errors import InputError

__all__ = ["Augment", "affine_grid", "augment_beforehand", "pixel_centres"]

_FLIPS = (None, "horizontal", "vertical", "horizontal_and_vertical")
_FILL = {"reflect": "reflection", "nearest": "border", "constant": "zeros"}
INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
Factor = float | tuple[float, float]


def factor_range(value: Factor) -> tuple[float, float]:
    """(centre, half-width) of a factor: a number z is the range (-z, z), a pair the range it names."""
    if isinstance(value, (tuple, list)):
        return (value[0] + value[1]) / 2, (value[1] - value[0]) / 2
    return 0.0, float(value)


def _check_value_range(value_range: Any) -> tuple[float, float]:
    """(low, high) with low < high, finite: the pixels' range, which brightness shifts within (a reversed
    pair clipped every image to one value, all zeros, without a word)."""
    pair = tuple(value_range) if isinstance(value_range, (tuple, list)) else ()
    ok = len(pair) == 2 and all(not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
                                for v in pair) and pair[0] < pair[1]
    if not ok:
        raise InputError("value_range", "(low, high) with low < high, e.g. (0, 255) or (0, 1)", value_range,
                         where="Augment")
    return float(pair[0]), float(pair[1])


def _check_factor(value, name: str, low: float, high: float) -> Factor:
    """A number in [0, high) or a range (lower, upper) with low < lower <= upper < high."""
    where = "Augment"
    if isinstance(value, (tuple, list)):
        ok = (len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
              and low < value[0] <= value[1] < high)
        if not ok:
            raise InputError(name, f"a number in [0, {high:g}) or a range (lower, upper) within ({low:g}, "
                             f"{high:g})", value, where=where)
        return (float(value[0]), float(value[1]))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < high:
        raise InputError(name, f"a number in [0, {high:g})", value, where=where)
    return float(value)


@dataclass
class Augment:
    """Random augmentation of NHWC image batches.

    Parameters
    ----------
    flip : {None, "horizontal", "vertical", "horizontal_and_vertical"}
    rotation : float
        Keras' RandomRotation factor (fraction of a full turn), 0 = off.
    shift : float or (float, float)
        Translation as a fraction of (height, width), 0 = off.
    zoom : float
        Scale drawn from [1 - zoom, 1 + zoom], 0 = off.
    brightness, contrast : float
        Keras' RandomBrightness / RandomContrast factors, 0 = off.
    value_range : (float, float), optional
        Pixel range for brightness and clipping; inferred from the data by ``fit`` when None
        ((0, 1) if the data's maximum is <= 1, else (0, 255)).
    fill_mode : {"reflect", "nearest", "constant"}
    interpolation : {"bilinear", "nearest", "bicubic"}
    fill_value : float
        The value outside the image with ``fill_mode="constant"``.
    zoom_width : float or (float, float), optional
        The width's zoom, drawn separately; None: the width zooms as the height (aspect kept).
    """

    flip: str | None = None
    rotation: Factor = 0.0
    shift: float | tuple = 0.0
    zoom: Factor = 0.0
    brightness: float = 0.0
    contrast: Factor = 0.0
    value_range: tuple[float, float] | None = None
    fill_mode: str = "reflect"
    interpolation: str = "bilinear"
    fill_value: float = 0.0
    zoom_width: Factor | None = None

    def __post_init__(self) -> None:
        if self.flip not in _FLIPS:
            raise InputError("flip", f"one of {_FLIPS}", self.flip, where="Augment")
        if self.fill_mode not in _FILL:
            raise InputError("fill_mode", f"one of {sorted(_FILL)}", self.fill_mode, where="Augment")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError("interpolation", f"one of {INTERPOLATIONS}", self.interpolation, where="Augment")
        if isinstance(self.fill_value, bool) or not isinstance(self.fill_value, (int, float)):
            raise InputError("fill_value", "a number", self.fill_value, where="Augment")
        self.rotation = _check_factor(self.rotation, "rotation", -0.5 - 1e-9, 0.5 + 1e-9)
        self.zoom = _check_factor(self.zoom, "zoom", -1.0, 1.0)
        if self.zoom_width is not None:
            self.zoom_width = _check_factor(self.zoom_width, "zoom_width", -1.0, 1.0)
        self.brightness = _check_factor(self.brightness, "brightness", 0.0, 1.0)
        if isinstance(self.brightness, tuple):
            raise InputError("brightness", "a number in [0, 1)", self.brightness, where="Augment")
        self.contrast = _check_factor(self.contrast, "contrast", -1.0, 1.0)
        # shift: one factor for both axes, or (height, width), each a number or a range
        sh = tuple(self.shift) if isinstance(self.shift, (tuple, list)) else (self.shift, self.shift)
        if len(sh) != 2:
            raise InputError("shift", "a fraction in [0, 1) or a pair of them", self.shift, where="Augment")
        self.shift = (_check_factor(sh[0], "shift", -1.0, 1.0), _check_factor(sh[1], "shift", -1.0, 1.0))
        if self.value_range is not None:
            self.value_range = _check_value_range(self.value_range)

    def get_config(self) -> dict:
        """The settings as JSON values (`from_config` rebuilds the same Augment)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> Augment:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})

    @property
    def geometric(self) -> bool:
        return bool(self.flip or self.rotation or self.shift[0] or self.shift[1] or self.zoom
                    or self.zoom_width)

    def with_range(self, x: torch.Tensor) -> Augment:
        """A copy whose value_range is set from the data when it was left None."""
        if self.value_range is not None:
            return self
        hi = 1.0 if float(x.max()) <= 1.0 else 255.0
        lo = -1.0 if float(x.min()) < 0 else 0.0
        return dataclasses.replace(self, value_range=(lo, hi))

    def draw(self, n: int, g: torch.Generator | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The random numbers of ``n`` images, uniform in [-1, 1), in the order ``__call__`` draws them:
        geometric (n, 6) (n, 7 with ``zoom_width``; None without a geometric transform), then photometric
        (n, 2) (None without brightness or contrast). ``g`` None draws from torch's global generator."""
        cols = 6 if self.zoom_width is None else 7
        geo = torch.rand(n, cols, generator=g) * 2 - 1 if self.geometric else None
        photo = torch.rand(n, 2, generator=g) * 2 - 1 if (self.brightness or self.contrast) else None
        return geo, photo

    def warp_codes(self) -> tuple[int, int, float] | None:
        """The geometric warp as the native fused decoder takes it (`pydlr.ops.decode_png_warp_batch`):
        (interpolation 0 bilinear / 1 nearest, padding 0 zeros / 1 border / 2 reflection, constant fill
        value), or None where it does not (no geometric transform, or bicubic)."""
        if not self.geometric or self.interpolation == "bicubic":
            return None
        fill = float(self.fill_value) if self.fill_mode == "constant" else 0.0
        return (("bilinear", "nearest").index(self.interpolation),
                ("zeros", "border", "reflection").index(_FILL[self.fill_mode]), fill)

    def theta(self, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
        """(n, 2, 3) affine matrices mapping output to input coordinates (normalised, as affine_grid)."""
        return self.theta_from(torch.rand(n, 6, generator=g) * 2 - 1, h, w)

    def theta_from(self, u: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """`theta` from the geometric draws ``u`` (n, 6) of `draw`, float32 on u's device.

        Computed in NumPy (float64, then float32): a batch's few dozen numbers went through about twenty
        torch operators, whose fixed cost per call made this 1.1 us an image of a 64-image batch (one
        thread, 2026-12-05); NumPy's is a fraction of it."""
        v = u.detach().to("cpu", torch.float64).numpy()
        # a value drawn in a range is centre + u * half; positive angles turn counter-clockwise, positive
        # zooms zoom out, positive shifts move the content down / right (Keras' directions)
        (rc, rh), (zc, zh) = factor_range(self.rotation), factor_range(self.zoom)
        (yc, yh), (xc, xh) = factor_range(self.shift[0]), factor_range(self.shift[1])
        angle = rc * (2 * math.pi) + v[:, 0] * (rh * 2 * math.pi)
        scale = 1 + zc + v[:, 1] * zh
        fx = np.where(v[:, 4] < 0, -1.0, 1.0) if self.flip in ("horizontal", "horizontal_and_vertical") else 1.0
        fy = np.where(v[:, 5] < 0, -1.0, 1.0) if self.flip in ("vertical", "horizontal_and_vertical") else 1.0
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        if self.zoom_width is not None:
            wc, wh = factor_range(self.zoom_width)
            fx = fx * ((1 + wc + v[:, 6] * wh) / scale)  # the width's own zoom
        # rotation in pixel space, expressed in normalised coordinates (correct for h != w)
        theta = np.empty((v.shape[0], 2, 3), np.float32)
        theta[:, 0, 0] = cos * fx
        theta[:, 0, 1] = -sin * (h / w) * fy
        theta[:, 0, 2] = v[:, 2] * (2 * xh) - 2 * xc
        theta[:, 1, 0] = sin * (w / h) * fx
        theta[:, 1, 1] = cos * fy
        theta[:, 1, 2] = v[:, 3] * (2 * yh) - 2 * yc
        out = torch.from_numpy(theta)
        return out if u.device.type == "cpu" else out.to(u.device)

    def __call__(self, x: torch.Tensor, g: torch.Generator, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Augment a batch ``x`` (n, h, w, c) float32; returns a new NHWC tensor, of ``size`` = (height,
        width) when given (geometric augmentation only: the one resampling also resizes the images)."""
        # random draws come from the (CPU) generator; the warp itself runs where x is
        geo, photo = self.draw(x.shape[0], g)
        h, w = size or (x.shape[1], x.shape[2])
        theta = None if geo is None else self.theta_from(geo, h, w)
        return self.apply(x, None if theta is None else theta.to(x.device, non_blocking=True),
                          None if photo is None else photo.to(x.device, non_blocking=True), size)

    def apply(self, x: torch.Tensor, theta: torch.Tensor | None, photo: torch.Tensor | None,
              size: tuple[int, int] | None = None) -> torch.Tensor:
        """Augment ``x`` with given parameters: ``theta`` (n, 2, 3) from `theta_from`, ``photo`` (n, 2) from
        `draw`, both on x's device (None where the transform is off); ``size`` as in ``__call__``."""
        n = x.shape[0]
        h, w = size or (x.shape[1], x.shape[2])
        if theta is None and (h, w) != tuple(x.shape[1:3]):
            raise ValueError("Augment: a new size needs a geometric transform (the resampling resizes)")
        out = x
        if theta is not None:
            # constant fill with a value v: sample x - v with zeros outside, then add v back
            shift = self.fill_value if self.fill_mode == "constant" and self.fill_value else 0.0
            nchw = x.permute(0, 3, 1, 2)
            grid = affine_grid(theta, h, w)  # normalised coordinates: any input size maps onto (h, w)
            out = F.grid_sample(nchw - shift if shift else nchw, grid, mode=self.interpolation,
                                padding_mode=_FILL[self.fill_mode], align_corners=False).permute(0, 2, 3, 1)
            if shift:
                out = out + shift
        if photo is not None:
            lo, hi = self.value_range or (0.0, 1.0)
            u = photo
            if self.contrast:
                cc, ch = factor_range(self.contrast)
                c = (1 + cc + u[:, 1] * ch).view(n, 1, 1, 1)
                mean = out.mean(dim=(1, 2), keepdim=True)
                out = (out - mean) * c + mean
            if self.brightness:
                out = out + (u[:, 0] * self.brightness * (hi - lo)).view(n, 1, 1, 1)
            out = out.clamp(lo, hi)
        return out.contiguous()


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (n, c, h, w), align_corners=False)`` computed elementwise: each output pixel's
    source is ``theta @ (x, y, 1)``, the sum of a per-column and a per-row term. affine_grid builds a base
    grid and runs a batched matrix product instead, which measured 8 us an image of a 64-image batch of
    28 x 28 (one thread, 2026-12-05), nearly three times the grid_sample that follows; this took 0.9.
    Same values up to float rounding (4.8e-7). The two coordinates are stored as planes, (2, n, h, w),
    and returned as the (n, h, w, 2) view grid_sample takes (it reads the strides: no copy, the same
    samples): one full-size pass writes both, where the interleaved layout took one strided pass each."""
    n = theta.shape[0]
    xs = _pixel_centres(w, theta.dtype, theta.device)
    ys = _pixel_centres(h, theta.dtype, theta.device)
    per_col = theta[:, :, 0:1] * xs  # (n, 2, w)
    per_row = torch.addcmul(theta[:, :, 2:3], theta[:, :, 1:2], ys.view(1, 1, h))  # (n, 2, h)
    planes = torch.empty((2, n, h, w), dtype=theta.dtype, device=theta.device)
    torch.add(per_col.transpose(0, 1).unsqueeze(2), per_row.transpose(0, 1).unsqueeze(3), out=planes)
    return planes.permute(1, 2, 3, 0)


def pixel_centres(n: int) -> torch.Tensor:
    """The normalised output pixel centres `affine_grid` uses along an axis of ``n`` pixels (float32, CPU;
    read-only)."""
    return _pixel_centres(n, torch.float32, torch.device("cpu"))


@functools.lru_cache(maxsize=32)
def _pixel_centres(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """affine_grid's base coordinates, computed as torch computes them (linspace, then the scale): the same
    floats, so an exact flip or quarter turn samples exactly at pixel centres, as with affine_grid. Cached:
    a few sizes per process, each used every batch (read-only)."""
    if n <= 1:
        return torch.zeros(1, dtype=dtype, device=device)
    return torch.linspace(-1, 1, n, dtype=dtype, device=device) * (n - 1) / n


def augment_beforehand(
    x, y=None, augment: Augment | None = None, copies: int = 1, seed: int = 0,
    include_original: bool = True, batch_size: int = 512,
):
    """Augment once, "beforehand": a materialised data set of the originals plus ``copies`` augmented
    versions of every image (the seed's alternative to augmenting on the fly, for comparison).

    Returns ``(x_aug, y_aug)`` as NumPy arrays (float32 x in NHWC; y repeated alongside), or only
    ``x_aug`` when y is None.
    """
    from pydlr.data.arrays import as_x_tensor

    if augment is None:
        raise InputError("augment", "an Augment(...)", augment, where="augment_beforehand")
    if not isinstance(copies, int) or copies < 1:
        raise InputError("copies", "a positive integer", copies, where="augment_beforehand")
    xt = as_x_tensor(x, where="augment_beforehand")
    if xt.ndim != 4:
        raise InputError("x", "images of shape (n, height, width, channels)", xt,
                         where="augment_beforehand")
    aug = augment.with_range(xt)
    parts = [xt] if include_original else []
    for c in range(copies):
        chunks = []
        for start in range(0, xt.shape[0], batch_size):
            g = torch.Generator().manual_seed(seed * 1_000_003 + c * 65_537 + start)
            chunks.append(aug(xt[start:start + batch_size], g))
        parts.append(torch.cat(chunks))
    x_out = torch.cat(parts).numpy()
    if y is None:
        return x_out
    y_arr = np.asarray(y)
    return x_out, np.concatenate([y_arr] * len(parts))
