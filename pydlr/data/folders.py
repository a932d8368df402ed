"""Image folders: one subfolder per class holding PNG/JPEG files, decoded (plain PNGs natively, a chunk of
files a call, everything else with Pillow) and resized.

``load_image_folder("photos/", image_size=(64, 64))`` returns ``(x, y, class_names)``: x uint8
``(n, height, width, channels)`` (channels-last), y int64 class indices in the alphabetical order of
the subfolders (Keras' ``image_dataset_from_directory`` convention), class_names that order.
The images come in a random order (``shuffle=True``, as Keras' loaders): in folder order every class
would sit in one block, and ``fit(validation_split=...)``, which takes the last samples, would validate
on classes never trained on. Files are read once into memory; augment them on the fly with
``fit(augment=...)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pydlr.data.decode import check_image_spec, decode_image, decode_pngs, resize_array
from pydlr.errors import InputError

__all__ = ["load_image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# This loader's names for Pillow's filters, as the image datasets (keras') call them.
_INTERPOLATIONS = {"bilinear": "bilinear", "nearest": "nearest", "bicubic": "bicubic", "lanczos": "lanczos3"}


def load_image_folder(directory: str | os.PathLike, image_size: tuple[int, int] = (256, 256),
                      color_mode: str = "rgb", interpolation: str = "bilinear",
                      shuffle: bool = True, seed: int | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read every image under ``directory/<class>/`` (see the module docstring).

    Parameters
    ----------
    image_size : (height, width)
        Every image is resized to this size.
    color_mode : {"rgb", "grayscale", "rgba"}
    interpolation : {"bilinear", "nearest", "bicubic", "lanczos"}
    shuffle : bool
        Return the images in a random order (default, as Keras); False keeps folder order (class by
        class, files sorted by path).
    seed : int, optional
        Seed of the shuffle: the same seed gives the same order; None draws a fresh one (as Keras).

    Raises
    ------
    InputError
        A missing folder, no class subfolders, a class without images, an unreadable image.
    """
    where = "load_image_folder"
    root = Path(directory)
    if not root.is_dir():
        raise InputError("directory", "an existing folder with one subfolder per class", str(root),
                         where=where)
    if interpolation not in _INTERPOLATIONS:
        raise InputError("interpolation", "'bilinear', 'nearest', 'bicubic' or 'lanczos'",
                         interpolation, where=where)
    spec = check_image_spec(image_size, color_mode, _INTERPOLATIONS[interpolation], False, where)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise InputError("shuffle", "True or False", shuffle, where=where)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError("seed", "None or an integer >= 0", seed, where=where)
    files, classes = _class_files(root, where)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(files))
        files = [files[i] for i in order]
    x = np.empty((len(files), *spec.shape), dtype=np.uint8)
    y = np.array([k for _, k in files], dtype=np.int64)
    for start in range(0, len(files), _CHUNK):
        _decode_into(x[start:start + _CHUNK], [p for p, _ in files[start:start + _CHUNK]], spec, where)
    return x, y, classes


# Files handed to the native PNG decoder per call: its buffer holds a chunk's images at their own size.
_CHUNK = 256


def _decode_into(out: np.ndarray, paths: list[Path], spec, where: str) -> None:
    """Decode ``paths`` into ``out`` as the streamed image datasets do: plain PNGs in one native call
    (`decode_pngs`), every other file, and every file it does not take, with Pillow (`decode_image`), which
    decodes it or names the problem."""
    names = [os.fspath(p) for p in paths]
    native = decode_pngs(names, spec)
    if isinstance(native, np.ndarray) and native.shape[1:] == spec.shape:
        out[:] = native  # the whole chunk at the target size: no per-file work at all
        return
    for k, (path, arr) in enumerate(zip(names, native, strict=True)):
        try:
            out[k] = decode_image(path, spec) if arr is None else resize_array(arr, spec)
        except OSError as exc:
            raise InputError("directory", "readable PNG/JPEG images",
                             f"{path!r} ({exc})", where=where) from None


def _class_files(root: Path, where: str) -> tuple[list[tuple[Path, int]], list[str]]:
    """Every image under ``root/<class>/`` with its class index, classes in alphabetical order."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError("directory", "a folder with one subfolder per class", str(root), where=where)
    files: list[tuple[Path, int]] = []
    for k, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise InputError("directory", "PNG/JPEG images in every class subfolder",
                             f"no images in {str(root / name)!r}", where=where)
        files += [(p, k) for p in found]
    return files, classes
