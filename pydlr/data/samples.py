"""Small real images that ship offline with scikit-image: sample photos and the lfw_subset faces.

For trying pretrained models and transfer learning without a download (the R package's
``example_image()`` and ``dataset_lfw_subset()`` read these).
"""

from __future__ import annotations

import numpy as np

from pydlr.errors import InputError

__all__ = ["EXAMPLE_IMAGES", "example_image", "load_lfw_subset"]

EXAMPLE_IMAGES: tuple[str, ...] = ("chelsea", "coffee", "astronaut")


def example_image(name: str = "chelsea") -> np.ndarray:
    """One of scikit-image's sample photos: ``"chelsea"`` (a cat), ``"coffee"`` (an espresso),
    ``"astronaut"``, as uint8 ``(height, width, 3)``."""
    if name not in EXAMPLE_IMAGES:
        raise InputError("name", f"one of {', '.join(EXAMPLE_IMAGES)}", name, "example_image")
    from skimage import data

    return np.asarray(getattr(data, name)())


def load_lfw_subset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's ``lfw_subset``: x float64 ``(200, 25, 25)`` in [0, 1], y int64 with 0 for the 100
    faces (first) and 1 for the 100 non-faces."""
    from skimage import data

    x = np.asarray(data.lfw_subset())
    return x, (np.arange(x.shape[0]) >= 100).astype(np.int64)
