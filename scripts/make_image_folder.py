"""Write Fashion-MNIST as PNG files in class folders: the example image folder for tests, examples and benches.

    python scripts/make_image_folder.py OUT [--split train|test] [--limit N] [--copies K] [--size S] [--rgb]

Class folders are named ``<index>_<name>`` (``0_t-shirt_top``, ``1_trouser``, ...) so that their
alphanumeric order (the order keras and pydlr give labels) is Fashion-MNIST's label order. ``--limit`` keeps
the first N images of the split; ``--copies K`` adds K - 1 more names for every PNG as hard links (many files,
no more disk, e.g. 200,000 files from 40,000 images); ``--size`` resizes (bilinear) and ``--rgb`` writes three
channels, for pretrained models. Nothing is downloaded: the data come from Debian's dataset-fashion-mnist.
Re-running over an existing folder rewrites it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pydlr.data.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist  # noqa: E402


def class_folder(k: int) -> str:
    return f"{k}_" + re.sub(r"[^a-z0-9]+", "_", FASHION_MNIST_CLASSES[k].lower()).strip("_")


def make_image_folder(out: str | os.PathLike, split: str = "train", limit: int | None = None,
                      copies: int = 1, size: int | None = None, rgb: bool = False) -> dict[str, int]:
    """Write the PNGs; returns the number of files per class folder."""
    (x_tr, y_tr), (x_te, y_te) = load_fashion_mnist()
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    root = Path(out)
    counts: dict[str, int] = {}
    for k in range(len(FASHION_MNIST_CLASSES)):
        (root / class_folder(k)).mkdir(parents=True, exist_ok=True)
    for i, (img, k) in enumerate(zip(x, y, strict=True)):
        folder = root / class_folder(int(k))
        im = Image.fromarray(np.ascontiguousarray(img), mode="L")
        if size is not None:
            im = im.resize((size, size), Image.BILINEAR)
        if rgb:
            im = im.convert("RGB")
        first = folder / f"{split}_{i:06d}.png"
        im.save(first, optimize=False)
        for c in range(1, copies):
            link = folder / f"{split}_{i:06d}_c{c}.png"
            if link.exists():
                link.unlink()
            os.link(first, link)
        counts[folder.name] = counts.get(folder.name, 0) + copies
    return dict(sorted(counts.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--split", choices=("train", "test"), default="train")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--rgb", action="store_true")
    a = ap.parse_args()
    counts = make_image_folder(a.out, a.split, a.limit, a.copies, a.size, a.rgb)
    print(f"wrote {sum(counts.values())} PNG names in {len(counts)} class folders under {a.out}")


if __name__ == "__main__":
    main()
