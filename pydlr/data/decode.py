"""Decoding one image file into a uint8 (height, width, channels) array, with keras' resize options.

Pillow decodes (chosen by measurement, see bench/bench_images.py: torchvision.io cannot be installed beside
this project's torch, and imageio reads through Pillow at 3-4x the cost), except that the image datasets hand
a batch's plain 8-bit PNGs to the native decoder (`decode_pngs`: one call a batch, the same pixels; its own
short path with libdeflate or zlib for the common file, libpng for interlaced ones; docs/performance.md has the
measurement). Speed points: plain PNGs skip Pillow's Python chunk parser
(`_open_plain_png`); JPEGs are decoded at a reduced scale when the target is
much smaller (``Image.draft``: libjpeg's DCT scaling, 2-4x less work); the crop of
``crop_to_aspect_ratio`` is the ``box`` of the one resize, not a separate copy.

Meanings follow keras' ``image_dataset_from_directory``: images are converted to ``color_mode`` ("grayscale"
1 channel, "rgb" 3, "rgba" 4), then resized to ``image_size`` = (height, width) with ``interpolation``;
``crop_to_aspect_ratio=True`` first takes the largest centred crop with the target's aspect ratio, and
``pad_to_aspect_ratio=True`` instead fits the whole image inside the target and pads it with zeros, so the
image is not distorted either way.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from pydlr.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "COLOR_MODES", "INTERPOLATIONS", "ImageSpec", "decode_image", "decode_pngs",
           "decode_warp_pngs", "resize_array", "check_image_spec"]

# keras' ALLOWLIST_FORMATS; other files in the folders are not images and are left out (and counted)
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}
# keras' names; "lanczos3"/"lanczos5" both map to Pillow's 3-lobe Lanczos (Pillow has no 5-lobe one)
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5")


class ImageSpec:
    """How every image of a dataset is decoded: size, colour mode, interpolation, crop."""

    __slots__ = ("height", "width", "mode_name", "mode", "channels", "interpolation", "crop_to_aspect_ratio",
                 "pad_to_aspect_ratio", "_resample")

    def __init__(self, image_size: tuple[int, int], color_mode: str, interpolation: str,
                 crop_to_aspect_ratio: bool, pad_to_aspect_ratio: bool = False):
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.mode_name = color_mode  # keras' name ("rgb"); mode is Pillow's ("RGB")
        self.mode, self.channels = COLOR_MODES[color_mode]
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self._resample: int | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def resample(self) -> int:
        if self._resample is None:
            self._resample = self._pillow_filter()
        return self._resample

    def _pillow_filter(self) -> int:
        from PIL import Image

        return {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC,
                "area": Image.BOX, "lanczos3": Image.LANCZOS, "lanczos5": Image.LANCZOS,
                }[self.interpolation]


def check_image_spec(image_size: Any, color_mode: Any, interpolation: Any, crop_to_aspect_ratio: Any,
                     where: str, pad_to_aspect_ratio: Any = False) -> ImageSpec:
    """Validate keras' image arguments (InputError naming the argument) and return the ImageSpec."""
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                       for v in image_size)):
        raise InputError("image_size", "(height, width) as two positive integers", image_size, where=where)
    if color_mode not in COLOR_MODES:
        raise InputError("color_mode", "'grayscale', 'rgb' or 'rgba'", color_mode, where=where)
    if interpolation not in INTERPOLATIONS:
        raise InputError("interpolation", f"one of {', '.join(map(repr, INTERPOLATIONS))}",
                         interpolation, where=where)
    for name, flag in (("crop_to_aspect_ratio", crop_to_aspect_ratio), ("pad_to_aspect_ratio", pad_to_aspect_ratio)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputError(name, "True or False", flag, where=where)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise InputError("pad_to_aspect_ratio", "False when crop_to_aspect_ratio is True (one or the other)",
                         pad_to_aspect_ratio, where=where)
    return ImageSpec(tuple(image_size), color_mode, interpolation, bool(crop_to_aspect_ratio),
                     bool(pad_to_aspect_ratio))


def crop_box(w: int, h: int, target_w: int, target_h: int) -> tuple[float, float, float, float]:
    """The largest centred box of (w, h) with the aspect ratio target_w : target_h."""
    crop_w = min(w, h * target_w / target_h)
    crop_h = min(h, w * target_h / target_w)
    left, top = (w - crop_w) / 2, (h - crop_h) / 2
    return (left, top, left + crop_w, top + crop_h)


def decode_image(path: str | os.PathLike, spec: ImageSpec, resize: bool = True) -> np.ndarray:
    """Read ``path`` into a uint8 array of ``spec.shape`` (``resize=False``: of the file's own height and
    width, in spec's colour mode, for a caller that resamples the batch itself: `resize_array`).

    Raises OSError (Pillow's UnidentifiedImageError, a truncated file, ...) for a file that is not a
    readable image; the caller names the file.
    """
    from PIL import Image

    fast = _open_plain_png(path) if os.fspath(path).lower().endswith(".png") else None
    if fast is not None:
        return _fit(fast, spec, resize)
    with Image.open(path) as img:
        if img.format == "JPEG" and (img.width >= 2 * spec.width and img.height >= 2 * spec.height):
            img.draft(spec.mode, (spec.width, spec.height))  # decode at 1/2..1/8 scale, never below target
        if img.mode == spec.mode:
            img.load()  # decode now: errors surface here, inside the with block
        return _fit(img, spec, resize)


def decode_pngs(paths: list[str], spec: ImageSpec) -> list[np.ndarray | None] | np.ndarray:
    """The files ``paths`` named .png decoded in one native call as ``decode_image(path, spec, resize=False)``
    would (own size, spec's colour mode, the same pixels), None for every other file and each one the native
    decoder does not take (not a plain 8-bit PNG, or unreadable): the caller decodes those with `decode_image`,
    which decodes them or raises the error that names the problem. When every file was decoded and all have one
    size, one (n, h, w, channels) array instead (a view of the decoded buffer: no per-file arrays). All None
    where pydlr was built without libpng."""
    from pydlr import ops

    out: list[np.ndarray | None] = [None] * len(paths)
    pngs = [k for k, p in enumerate(paths) if p[-4:].lower() == ".png"]
    if not pngs or not _native_png():
        return out
    pixels, meta, errors = ops.decode_png_batch([paths[k] for k in pngs], spec.channels)
    flat, sizes, c = pixels.numpy(), meta.numpy()[:, :2], spec.channels
    if len(pngs) == len(paths) and not any(errors) and (sizes == sizes[0]).all():
        h0, w0 = sizes[0].tolist()
        return flat.reshape(len(paths), h0, w0, c)  # images lie one after the other, in order
    for k, err, (h, w, off) in zip(pngs, errors, meta.tolist(), strict=True):
        if not err:
            out[k] = flat[off:off + h * w * c].reshape(h, w, c)
    return out


def decode_warp_pngs(paths: list[str], spec: ImageSpec, theta, xs, ys, out, warp: tuple[int, int, float],
                     resize: bool) -> bool:
    """Decode the files ``paths`` (all .png) natively and warp each straight into ``out[i]`` (float32 NHWC of
    spec's size, values 0-255) with the affine matrices ``theta``, as `decode_pngs` followed by
    ``Augment.apply`` would (``warp``: `Augment.warp_codes`; ``xs``/``ys``: `augment.pixel_centres`).
    ``resize``: a file of another size (not below half the target's) is resampled onto spec's size by the same
    warp, else every file must have spec's size. True when every file was taken; False (``out`` partly
    written) when any was not: not a .png, not a plain 8-bit PNG, unreadable, of a size not taken, or pydlr
    built without libpng. The caller then prepares the batch the other way, which decodes or names each file."""
    from pydlr import ops

    if not paths or not _native_png() or any(p[-4:].lower() != ".png" for p in paths):
        return False
    errors = ops.decode_png_warp_batch(paths, spec.channels, theta, xs, ys, out, *warp, resize)
    return not any(errors)


@functools.cache
def _native_png() -> bool:
    from pydlr import ops

    return ops.png_decoder_available()


def resize_array(arr: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """A ``decode_image(..., resize=False)`` array resized as ``decode_image`` would have (same pixels)."""
    from PIL import Image

    if arr.shape == spec.shape:
        return arr
    return _fit(Image.fromarray(arr[..., 0] if spec.channels == 1 else arr, spec.mode), spec)


def _fit(img: Any, spec: ImageSpec, resize: bool = True) -> np.ndarray:
    """An opened image in spec's colour mode and size (its own size without ``resize``), as a uint8
    array."""
    if img.mode != spec.mode:
        # palette images with transparency go through RGBA so the transparent colour is not kept as-is
        if img.mode == "P" and "transparency" in img.info and spec.mode != "RGBA":
            img = img.convert("RGBA")
        img = img.convert(spec.mode)
    if not resize:
        return _pixels(img).reshape(img.height, img.width, spec.channels)
    size = (spec.width, spec.height)
    if spec.pad_to_aspect_ratio and img.size != size:
        return _padded(img, spec)
    if img.size != size:
        box = (crop_box(img.width, img.height, spec.width, spec.height)
               if spec.crop_to_aspect_ratio else None)
        img = img.resize(size, spec.resample(), box=box)
    return _pixels(img).reshape(spec.shape)


def _pixels(img: Any) -> np.ndarray:
    """The image's 8-bit samples as a flat read-only array: ``np.asarray(img)`` gives the same through
    Pillow's ``__array_interface__``, with more Python per call (measured on 32x32 grey images, loaded
    machine, 2026-12-04: 13-17 against 8-12 us)."""
    return np.frombuffer(img.tobytes(), dtype=np.uint8)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # colour type -> Pillow mode (8-bit samples)


def _open_plain_png(path: str | os.PathLike) -> Any:
    """A plain PNG (8-bit grey/RGB/grey+alpha/RGBA, not interlaced, no palette or tRNS chunk) decoded by
    Pillow's own C decoder for PNG data ("zip": zlib + row filters) without Pillow's chunk parser, which
    is Python and costs more than the decoding for small images (measured 2026-12-04, 28x28 grey PNGs,
    decode + resize: 197-311 vs 265-675 us on a loaded machine; identical pixels). Anything else, and any
    file this parser cannot follow, returns None: Image.open then decodes it or names the problem."""
    import struct

    from PIL import Image

    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:8] != _PNG_SIGNATURE:
            return None
        pos, mode, size, idat = 8, None, None, []
        while pos + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            body = data[pos + 8:pos + 8 + length]
            if kind == b"IHDR":
                w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
                mode, size = _PNG_MODES.get(ctype), (w, h)
                if depth != 8 or interlace or mode is None:
                    return None
            elif kind == b"IDAT":
                idat.append(body)
            elif kind == b"IEND":
                break
            elif kind in (b"PLTE", b"tRNS"):
                return None
            pos += 12 + length
        if mode is None or not idat:
            return None
        return Image.frombytes(mode, size, b"".join(idat), "zip", mode)
    except Exception:  # noqa: BLE001 - any surprise: let Pillow's reference path decode or explain it
        return None


def _padded(img: Any, spec: ImageSpec) -> np.ndarray:
    """The whole image resized to fit inside the target, centred on zeros (keras' pad_to_aspect_ratio)."""
    scale = min(spec.width / img.width, spec.height / img.height)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    small = np.asarray(img.resize((w, h), spec.resample()), dtype=np.uint8).reshape(h, w, spec.channels)
    out = np.zeros(spec.shape, dtype=np.uint8)
    top, left = (spec.height - h) // 2, (spec.width - w) // 2
    out[top:top + h, left:left + w] = small
    return out
