"""Image augmentation done per batch (one batched affine_grid + grid_sample), as Keras' preprocessing layers.

Factors follow Keras' RandomFlip / RandomRotation / RandomTranslation / RandomZoom / RandomBrightness /
RandomContrast: ``rotation=0.1`` rotates by up to +-0.1 * 360 degrees, ``shift=0.1`` translates by up
to 10% of the height and width, ``zoom=0.1`` scales by 0.9-1.1, ``brightness=0.2`` adds up to +-20% of
the value range, ``contrast=0.2`` scales the deviation from each image's mean by 0.8-1.2.
Geometric transforms sample with ``fill_mode`` "reflect" (Keras' default), "nearest" or "constant".

Every draw comes from the ``torch.Generator`` passed in, so a batch's augmentation depends only on that
generator's seed (pydlr derives it from the fit seed, the epoch and the step: the same whatever the
number of worker processes, and reproducible on resume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pydlr.errors import InputError

__all__ = ["Augment", "augment_beforehand"]

_FLIPS = (None, "horizontal", "vertical", "horizontal_and_vertical")
_FILL = {"reflect": "reflection", "nearest": "border", "constant": "zeros"}


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
    """

    flip: str | None = None
    rotation: float = 0.0
    shift: float | tuple[float, float] = 0.0
    zoom: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    value_range: tuple[float, float] | None = None
    fill_mode: str = "reflect"

    def __post_init__(self) -> None:
        if self.flip not in _FLIPS:
            raise InputError("flip", f"one of {_FLIPS}", self.flip, where="Augment")
        if self.fill_mode not in _FILL:
            raise InputError("fill_mode", f"one of {sorted(_FILL)}", self.fill_mode, where="Augment")
        for name in ("rotation", "zoom", "brightness", "contrast"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0 or v >= (1.0 if name != "rotation" else 0.5 + 1e-9):
                raise InputError(name, "a number in [0, 1)", v, where="Augment")
        sh = self.shift if isinstance(self.shift, (tuple, list)) else (self.shift, self.shift)
        if len(sh) != 2 or any(not isinstance(s, (int, float)) or not 0 <= s < 1 for s in sh):
            raise InputError("shift", "a fraction in [0, 1) or a pair of them", self.shift,
                             where="Augment")
        self.shift = (float(sh[0]), float(sh[1]))

    @property
    def geometric(self) -> bool:
        return bool(self.flip or self.rotation or self.shift[0] or self.shift[1] or self.zoom)

    def with_range(self, x: torch.Tensor) -> Augment:
        """A copy whose value_range is set from the data when it was left None."""
        if self.value_range is not None:
            return self
        hi = 1.0 if float(x.max()) <= 1.0 else 255.0
        lo = -1.0 if float(x.min()) < 0 else 0.0
        return Augment(self.flip, self.rotation, self.shift, self.zoom, self.brightness,
                       self.contrast, (lo, hi), self.fill_mode)

    def draw(self, n: int, g: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The random numbers of ``n`` images, uniform in [-1, 1), in the order ``__call__`` draws them:
        geometric (n, 6) (None without a geometric transform), then photometric (n, 2) (None without
        brightness or contrast)."""
        geo = torch.rand(n, 6, generator=g) * 2 - 1 if self.geometric else None
        photo = torch.rand(n, 2, generator=g) * 2 - 1 if (self.brightness or self.contrast) else None
        return geo, photo

    def theta(self, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
        """(n, 2, 3) affine matrices mapping output to input coordinates (normalised, as affine_grid)."""
        return self.theta_from(torch.rand(n, 6, generator=g) * 2 - 1, h, w)

    def theta_from(self, u: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """`theta` from the geometric draws ``u`` (n, 6) of `draw`."""
        n = u.shape[0]
        angle = u[:, 0] * (self.rotation * 2 * math.pi)
        scale = 1 + u[:, 1] * self.zoom
        tx = u[:, 2] * (2 * self.shift[1])
        ty = u[:, 3] * (2 * self.shift[0])
        fx = torch.ones(n)
        fy = torch.ones(n)
        if self.flip in ("horizontal", "horizontal_and_vertical"):
            fx = torch.where(u[:, 4] < 0, -1.0, 1.0)
        if self.flip in ("vertical", "horizontal_and_vertical"):
            fy = torch.where(u[:, 5] < 0, -1.0, 1.0)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale  # (n,) each, on the CPU
        # rotation in pixel space, expressed in normalised coordinates (correct for h != w)
        theta = torch.stack([
            torch.stack([cos * fx, -sin * (h / w) * fy, tx], dim=1),
            torch.stack([sin * (w / h) * fx, cos * fy, ty], dim=1),
        ], dim=1)
        return theta

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Augment a batch ``x`` (n, h, w, c) float32; returns a new NHWC tensor."""
        # random draws come from the (CPU) generator; the warp itself runs where x is
        geo, photo = self.draw(x.shape[0], g)
        theta = None if geo is None else self.theta_from(geo, x.shape[1], x.shape[2])
        return self.apply(x, None if theta is None else theta.to(x.device, non_blocking=True),
                          None if photo is None else photo.to(x.device, non_blocking=True))

    def apply(self, x: torch.Tensor, theta: torch.Tensor | None, photo: torch.Tensor | None) -> torch.Tensor:
        """Augment ``x`` with given parameters: ``theta`` (n, 2, 3) from `theta_from`, ``photo`` (n, 2) from
        `draw`, both on x's device (None where the transform is off)."""
        n, h, w = x.shape[0], x.shape[1], x.shape[2]
        out = x
        if theta is not None:
            nchw = x.permute(0, 3, 1, 2)
            grid = F.affine_grid(theta, [n, x.shape[3], h, w], align_corners=False)
            out = F.grid_sample(nchw, grid, mode="bilinear", padding_mode=_FILL[self.fill_mode],
                                align_corners=False).permute(0, 2, 3, 1)
        if photo is not None:
            lo, hi = self.value_range or (0.0, 1.0)
            u = photo
            if self.contrast:
                c = (1 + u[:, 1] * self.contrast).view(n, 1, 1, 1)
                mean = out.mean(dim=(1, 2), keepdim=True)
                out = (out - mean) * c + mean
            if self.brightness:
                out = out + (u[:, 0] * self.brightness * (hi - lo)).view(n, 1, 1, 1)
            out = out.clamp(lo, hi)
        return out.contiguous()


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
